//! `/flags`, `/decide` and the definitions feed against a live server.

use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn flags_v2_evaluates_with_request_and_stored_properties() {
    let app = TestApp::spawn().await;
    app.put_flag(
        "beta",
        json!({"groups": [{"properties": [{"key": "plan", "value": "pro"}], "rollout_percentage": 100}],
               "payloads": {"true": "{\"a\":1}"}}),
    )
    .await;
    let (status, body) = app
        .post("/flags?v=2", &json!({"token": app.token(), "distinct_id": "u1", "person_properties": {"plan": "pro"}}))
        .await;
    assert_eq!(status, 200);
    let rec = &body["flags"]["beta"];
    assert_eq!(rec["enabled"], json!(true));
    assert_eq!(rec["reason"]["code"], json!("condition_match"));
    assert_eq!(rec["metadata"]["payload"], json!("{\"a\":1}"));
    assert!(body["requestId"].is_string());

    // Stored properties are used when the request does not send them.
    let update = vexil_store::PersonUpdate {
        set: json!({"plan": "pro"}).as_object().unwrap().clone(),
        ..Default::default()
    };
    app.store
        .apply_person_update(app.project.project.id, "u2", &update)
        .await
        .unwrap();
    let (_, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": "u2"}),
        )
        .await;
    assert_eq!(body["flags"]["beta"]["enabled"], json!(true));
    let (_, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": "u3"}),
        )
        .await;
    assert_eq!(body["flags"]["beta"]["enabled"], json!(false));
    app.stop().await;
}

#[tokio::test]
async fn response_shapes_follow_the_version_rules() {
    let app = TestApp::spawn().await;
    app.put_flag("on", json!({"groups": [{"rollout_percentage": 100}]}))
        .await;
    let req = json!({"api_key": app.token(), "distinct_id": "u"});
    let (_, v1) = app.post("/flags?v=1", &req).await;
    assert_eq!(v1["featureFlags"], json!({"on": true}));
    let (_, default) = app.post("/flags", &req).await;
    assert!(
        default["flags"]["on"].is_object(),
        "no v and no config → v2"
    );
    let (_, decide1) = app.post("/decide/", &req).await;
    assert_eq!(decide1["featureFlags"], json!(["on"]));
    assert!(decide1.get("errorsWhileComputingFlags").is_none());
    let (_, decide4) = app.post("/decide/?v=4", &req).await;
    assert!(decide4["flags"]["on"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_and_never_leak() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("/flags", &json!({"distinct_id": "u"})).await;
    assert_eq!(
        (status, body["code"].clone()),
        (401, json!("not_authenticated"))
    );
    let (status, body) = app
        .post("/flags", &json!({"token": "phc_nope", "distinct_id": "u"}))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (401, json!("authentication_failed"))
    );
    let (status, body) = app.post("/flags", &json!({"token": app.token()})).await;
    assert_eq!((status, body["attr"].clone()), (400, json!("distinct_id")));
    let resp = app
        .client
        .post(app.url("/flags"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("Failed to decode request"));
    app.stop().await;
}

#[tokio::test]
async fn definitions_feed_requires_a_key_and_honours_etags() {
    let app = TestApp::spawn().await;
    app.put_flag("f", json!({"groups": [{"rollout_percentage": 30}]}))
        .await;
    let url = app.url(&format!(
        "/flags/definitions?token={}&send_cohorts",
        app.token()
    ));
    let resp = app.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = app
        .client
        .get(&url)
        .bearer_auth(&app.project.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["flags"][0]["key"], json!("f"));
    let resp = app
        .client
        .get(&url)
        .bearer_auth(app.personal_key())
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 304);
    // A change produces a new ETag.
    app.put_flag("g", json!({"groups": [{}]})).await;
    let resp = app
        .client
        .get(&url)
        .bearer_auth(&app.project.secret_key)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_wrong_methods_get_json_errors() {
    let settings = vexil_server::Settings {
        max_flags_body_bytes: 1024,
        ..Default::default()
    };
    let app = TestApp::spawn_with(settings).await;
    let big = json!({"token": app.token(), "distinct_id": "u", "person_properties": {"x": "y".repeat(4096)}});
    let (status, body) = app.post("/flags", &big).await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], json!("payload_too_large"));
    let resp = app.client.delete(app.url("/flags")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST, OPTIONS, HEAD");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], json!("method_not_allowed"));
    let resp = app.client.post(app.url("/_liveness")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert!(resp.json::<serde_json::Value>().await.is_ok());
    let resp = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert!(resp.json::<serde_json::Value>().await.is_ok());
    app.stop().await;
}

#[tokio::test]
async fn browser_style_requests_work_gzip_text_plain_and_cors() {
    use std::io::Write;
    let app = TestApp::spawn().await;
    app.put_flag("on", json!({"groups": [{}]})).await;
    let body = json!({"token": app.token(), "distinct_id": "u"}).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(body.as_bytes()).unwrap();
    let resp = app
        .client
        .post(app.url("/flags/?v=2"))
        .header("content-type", "text/plain")
        .header("origin", "https://app.example.com")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["flags"]["on"]["enabled"], json!(true));
    app.stop().await;
}

#[tokio::test]
async fn experience_continuity_keeps_the_anonymous_bucket_after_identify() {
    let app = TestApp::spawn().await;
    let flag = vexil_store::NewFlag {
        ensure_experience_continuity: true,
        ..vexil_store::NewFlag::new(
            "sticky",
            json!({"groups": [{"rollout_percentage": 50}],
                   "multivariate": {"variants": [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}]}}),
        )
    };
    let project = app.project.project.id;
    app.store.create_flag(project, &flag).await.unwrap();
    app.state
        .catalog
        .refresh(app.store.as_ref(), project)
        .await
        .unwrap();
    let value = |body: &serde_json::Value| {
        let rec = &body["flags"]["sticky"];
        if rec["variant"].is_null() {
            rec["enabled"].clone()
        } else {
            rec["variant"].clone()
        }
    };
    // An anonymous id whose bucket differs from the identified user's own bucket.
    let (anon, anon_value) = app.identify_from_another_bucket("user-1", value).await;
    let (_, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": "user-1", "$anon_distinct_id": anon}),
        )
        .await;
    assert_eq!(value(&body), anon_value);
    // The override is written in the background; once it is stored, later requests without
    // the anonymous id keep the bucket.
    app.state.overrides.flush().await;
    let (_, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": "user-1"}),
        )
        .await;
    assert_eq!(value(&body), anon_value);
    app.stop().await;
}

/// Deterministic pseudo-random inputs (xorshift), so a failure reproduces.
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed & 0xff) as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_bodies_never_cause_server_errors() {
    let app = TestApp::spawn().await;
    app.put_flag(
        "f",
        json!({"groups": [{"properties": [{"key": "email", "operator": "regex", "value": "^a"}]}]}),
    )
    .await;
    let valid =
        json!({"token": app.token(), "distinct_id": "u", "person_properties": {"email": "a@b"}})
            .to_string();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let content_types = [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "image/png",
    ];
    for i in 0..300 {
        let body = match i % 3 {
            0 => noise(&mut seed, (i * 7) % 300),
            1 => {
                // Flip a few bytes of a valid body.
                let mut b = valid.clone().into_bytes();
                for byte in noise(&mut seed, 4) {
                    let at = usize::from(byte) % b.len();
                    b[at] = byte;
                }
                b
            }
            _ => {
                let mut b = b"\x1f\x8b".to_vec();
                b.extend(noise(&mut seed, 64));
                b
            }
        };
        let path = [
            "/flags?v=2",
            "/decide?v=3",
            "/flags?compression=base64",
            "/flags?compression=gzip-js",
        ][i % 4];
        let resp = app
            .client
            .post(app.url(path))
            .header("content-type", content_types[i % content_types.len()])
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert!(status < 500, "request {i} to {path}: status {status}");
        let parsed: Result<serde_json::Value, _> = resp.json().await;
        assert!(parsed.is_ok(), "request {i}: body is not JSON");
    }
    app.stop().await;
}

#[tokio::test]
async fn every_method_of_flags_answers_as_posthog_does() {
    let app = TestApp::spawn().await;
    let on = app.put_flag("on", json!({"groups": [{}]})).await;
    let off = app
        .put_flag("off", json!({"groups": [{"rollout_percentage": 0}]}))
        .await;
    let req = json!({"token": app.token(), "distinct_id": "u"});
    let (_, decide2) = app.post("/decide/?v=2", &req).await;
    assert_eq!(decide2["featureFlags"], json!({"on": true}));
    let (_, v1) = app.post("/flags?v=1", &req).await;
    assert_eq!(v1["featureFlags"], json!({"on": true, "off": false}));
    // GET never evaluates: the minimal body with config fields.
    let get: serde_json::Value = app
        .client
        .get(app.url("/flags?v=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(get["flags"], json!({}));
    assert_eq!(get["supportedCompression"], json!(["gzip", "gzip-js"]));
    let head = app.client.head(app.url("/flags")).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-type"], "application/json");
    // `config=true` adds the remote-config fields.
    let (_, config) = app.post("/flags?v=2&config=true", &req).await;
    assert_eq!(config["hasFeatureFlags"], json!(true));
    // `disable_flags` evaluates nothing and needs no distinct id.
    let (status, disabled) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "disable_flags": true}),
        )
        .await;
    assert_eq!((status, disabled["flags"].clone()), (200, json!({})));
    // `flag_keys` limits the answer.
    let (_, only) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": "u", "flag_keys": ["off"]}),
        )
        .await;
    assert_eq!(only["flags"].as_object().unwrap().len(), 1);
    assert_eq!(only["flags"]["off"]["key"], "off");
    assert_eq!(only["flags"]["off"]["enabled"], false);
    // A requested flag's dependencies are evaluated (so it can match) but not returned; unknown
    // keys are ignored.
    let depends_on = |id: i64| {
        json!({"groups": [{"properties": [{"key": id.to_string(), "type": "flag",
            "operator": "flag_evaluates_to", "value": true}]}]})
    };
    app.put_flag("needs-on", depends_on(on)).await;
    app.put_flag("needs-off", depends_on(off)).await;
    let req = json!({"token": app.token(), "distinct_id": "u",
        "flag_keys": ["needs-on", "needs-off", "no-such-flag"]});
    let (_, v1) = app.post("/flags?v=1", &req).await;
    assert_eq!(
        v1["featureFlags"],
        json!({"needs-on": true, "needs-off": false})
    );
    let (_, v2) = app.post("/flags?v=2", &req).await;
    let mut keys: Vec<&str> = v2["flags"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["needs-off", "needs-on"]);
    assert_eq!(v2["flags"]["needs-on"]["reason"]["code"], "condition_match");
    assert_eq!(
        v2["flags"]["needs-off"]["reason"]["code"],
        "no_condition_match"
    );
    app.stop().await;
}

#[tokio::test]
async fn stored_group_properties_are_found_for_numeric_group_keys() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let index = app
        .store
        .ensure_group_type(project, "company")
        .await
        .unwrap();
    let props = json!({"seats": 50});
    app.store
        .upsert_group(project, index, "42", props.as_object().unwrap())
        .await
        .unwrap();
    app.put_flag(
        "big-orgs",
        json!({"aggregation_group_type_index": index, "groups": [{"properties": [
            {"key": "seats", "type": "group", "group_type_index": index, "operator": "gte", "value": "10"}]}]}),
    )
    .await;
    for key in [json!(42), json!("42")] {
        let (_, body) = app
            .post(
                "/flags?v=2",
                &json!({"token": app.token(), "distinct_id": "u", "groups": {"company": key}}),
            )
            .await;
        assert_eq!(
            body["flags"]["big-orgs"]["enabled"],
            json!(true),
            "group key {key}"
        );
    }
    app.stop().await;
}

/// A flag limited to one runtime is served only to requests that evaluate for it: the body's
/// `evaluation_runtime`, else the runtime the `User-Agent` and browser headers suggest; a
/// request whose runtime cannot be told sees only the flags for every runtime. While no flag
/// is limited, every request sees every flag (the server then skips detecting the runtime),
/// and a flag limited or freed by a PATCH takes effect on the next request.
#[tokio::test]
async fn runtime_limited_flags_are_served_to_their_runtime() {
    use reqwest::Method;
    const FLAGS: &str = "/api/projects/@current/feature_flags/";
    let app = TestApp::spawn().await;
    let create = |key: &'static str, runtime: &'static str| {
        let body = json!({"key": key, "filters": {"groups": [{"rollout_percentage": 100}]},
                          "evaluation_runtime": runtime});
        let app = &app;
        async move {
            let (status, body) = app.api(Method::POST, FLAGS, Some(&body)).await;
            assert_eq!(status, 201, "{body}");
            body["id"].as_i64().unwrap()
        }
    };
    let set_runtime = |id: i64, runtime: &'static str| {
        let app = &app;
        async move {
            let path = format!("{FLAGS}{id}/");
            let body = json!({"evaluation_runtime": runtime});
            let (status, body) = app.api(Method::PATCH, &path, Some(&body)).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    // The keys of the flags `/flags?v=2` serves to a request with these headers and body fields.
    let seen = |headers: &'static [(&'static str, &'static str)], fields: serde_json::Value| {
        let app = &app;
        async move {
            let mut body = json!({"token": app.token(), "distinct_id": "u"});
            for (k, v) in fields.as_object().unwrap() {
                body[k] = v.clone();
            }
            let mut headers = headers.to_vec();
            headers.push(("content-type", "application/json"));
            let (status, body) = app
                .post_bytes("/flags?v=2", &headers, body.to_string().into_bytes())
                .await;
            assert_eq!(status, 200, "{body}");
            let mut keys: Vec<String> =
                body["flags"].as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        }
    };
    const PYTHON: &[(&str, &str)] = &[("user-agent", "posthog-python/6.7.0")];
    const BROWSER: &[(&str, &str)] = &[("user-agent", "Mozilla/5.0 (X11; Linux) Chrome/120.0")];
    const ORIGIN: &[(&str, &str)] = &[("origin", "https://app.example.com")];

    create("anywhere", "all").await;
    let backend = create("backend", "all").await;
    for headers in [&[][..], PYTHON, BROWSER] {
        assert_eq!(seen(headers, json!({})).await, ["anywhere", "backend"]);
    }

    set_runtime(backend, "server").await;
    let frontend = create("frontend", "client").await;
    assert_eq!(seen(&[], json!({})).await, ["anywhere"], "unknown runtime");
    assert_eq!(seen(PYTHON, json!({})).await, ["anywhere", "backend"]);
    assert_eq!(seen(BROWSER, json!({})).await, ["anywhere", "frontend"]);
    assert_eq!(seen(ORIGIN, json!({})).await, ["anywhere", "frontend"]);
    let explicit = json!({"evaluation_runtime": "client"});
    assert_eq!(seen(PYTHON, explicit).await, ["anywhere", "frontend"]);
    let every = json!({"evaluation_runtime": "all"});
    assert_eq!(seen(&[], every).await, ["anywhere", "backend", "frontend"]);

    set_runtime(backend, "all").await;
    set_runtime(frontend, "all").await;
    assert_eq!(
        seen(&[], json!({})).await,
        ["anywhere", "backend", "frontend"]
    );
    app.stop().await;
}
