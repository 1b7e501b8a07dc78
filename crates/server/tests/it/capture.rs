//! Capture (`/batch/`, `/e/`, …) through the real server: every body encoding SDKs send, person
//! and group side effects seen by `/flags`, idempotency, auth, errors and durability.

use std::io::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use vexil_server::Settings;

use crate::support::TestApp;

const JSON: (&str, &str) = ("content-type", "application/json");
const TEXT: (&str, &str) = ("content-type", "text/plain");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const GZIP: (&str, &str) = ("content-encoding", "gzip");

/// The recorded posthog-python batch, addressed to `app`'s project.
fn python_batch(app: &TestApp) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance/wire_examples/python_batch_request.json"
    );
    let example: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut body = example["body"].clone();
    body["api_key"] = json!(app.token());
    body
}

fn gzip(body: &Value) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body.to_string().as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// `data=<percent-encoded standard base64 of the JSON>`, as old posthog-js sends it.
fn form(body: &Value) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = body.to_string().into_bytes();
    let mut b64 = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let encoded: String = form_urlencoded::byte_serialize(b64.as_bytes()).collect();
    format!("data={encoded}").into_bytes()
}

fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(0, 0).unwrap()
}

/// How many `event` events `distinct_id` has in `app`'s project.
async fn count(app: &TestApp, distinct_id: &str, event: &str) -> u64 {
    app.store
        .count_events(app.project.project.id, distinct_id, event, epoch())
        .await
        .unwrap()
}

async fn person_properties(app: &TestApp, distinct_id: &str) -> Value {
    let person = app
        .store
        .get_person(app.project.project.id, distinct_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no person for {distinct_id}"));
    Value::Object(person.properties)
}

async fn flag_enabled(app: &TestApp, request: Value) -> Value {
    let (status, body) = app.post("/flags?v=2", &request).await;
    assert_eq!(status, 200, "{body}");
    body["flags"].clone()
}

#[tokio::test]
async fn python_batch_is_stored_with_its_person_updates() {
    let app = TestApp::spawn().await;
    let before = Utc::now();
    let (status, body) = app.post("/batch/", &python_batch(&app)).await;
    assert_eq!((status, body), (200, json!({"status": 1})));

    assert_eq!(count(&app, "user-123", "order completed").await, 1);
    assert_eq!(count(&app, "user-123", "$set").await, 1);
    // The top-level `$set` of posthog-python's `set()` reached the person.
    let props = person_properties(&app, "user-123").await;
    assert_eq!(props["email"], json!("person@example.com"));
    assert_eq!(props["plan"], json!("pro"));
    // `sent_at` equals the events' timestamps, so clock-skew correction stamps them "now".
    let recent = app
        .store
        .count_events(
            app.project.project.id,
            "user-123",
            "order completed",
            before - chrono::TimeDelta::seconds(1),
        )
        .await
        .unwrap();
    assert_eq!(recent, 1);
    // `$groups` registered the group type.
    let types = app.store.group_types(app.project.project.id).await.unwrap();
    assert_eq!(types.len(), 1);
    assert_eq!(types[0].name, "company");
    app.stop().await;
}

#[tokio::test]
async fn every_path_and_encoding_sdks_use_is_accepted() {
    let app = TestApp::spawn().await;
    let token = app.token().to_owned();
    let batch = |id: &str| {
        let event = json!({"event": "enc", "distinct_id": id, "properties": {}});
        json!({"api_key": token, "batch": [event]})
    };
    let js_array = |id: &str| {
        json!([{"event": "enc", "properties": {"token": token, "distinct_id": id, "$lib": "web"},
                "timestamp": "2026-01-02T03:04:05.000Z", "uuid": uuid::Uuid::new_v4().to_string()}])
    };
    let single = |id: &str| json!({"api_key": token, "event": "enc", "distinct_id": id});
    // (path, headers, body, distinct id)
    #[rustfmt::skip]
    let cases = vec![
        ("/batch", vec![JSON, GZIP], gzip(&batch("py-gzip")), "py-gzip"),
        ("/batch/", vec![JSON], batch("py-plain").to_string().into_bytes(), "py-plain"),
        // posthog-js 1.449: gzip as text/plain, no parameter, no header: magic bytes only.
        ("/e/", vec![TEXT], gzip(&js_array("js-magic")), "js-magic"),
        ("/i/v0/e/?compression=gzip-js", vec![TEXT], gzip(&js_array("js-gzip-js")), "js-gzip-js"),
        ("/e/?compression=base64", vec![FORM], form(&js_array("js-form")), "js-form"),
        ("/e", vec![FORM], form(&js_array("js-form-bare")), "js-form-bare"),
        ("/i/v0/e", vec![JSON], js_array("js-plain").to_string().into_bytes(), "js-plain"),
        ("/capture/", vec![JSON], single("single").to_string().into_bytes(), "single"),
        ("/capture", vec![], single("no-type").to_string().into_bytes(), "no-type"),
        ("/track/", vec![JSON], js_array("track").to_string().into_bytes(), "track"),
        ("/track", vec![GZIP], gzip(&single("track-gzip")), "track-gzip"),
    ];
    for (path, headers, body, id) in cases {
        let (status, answer) = app.post_bytes(path, &headers, body).await;
        assert_eq!(
            (status, answer),
            (200, json!({"status": 1})),
            "{path} {headers:?}"
        );
        assert_eq!(count(&app, id, "enc").await, 1, "{path} {headers:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn identify_merges_the_anonymous_person_for_flags() {
    let app = TestApp::spawn().await;
    app.put_flag(
        "pro-only",
        json!({"groups": [{"properties": [{"key": "plan", "value": "pro", "type": "person"}],
                           "rollout_percentage": 100}]}),
    )
    .await;
    let token = app.token().to_owned();
    let js_event = |event: &str, id: &str, props: Value| {
        let mut properties = json!({"token": token, "distinct_id": id});
        properties
            .as_object_mut()
            .unwrap()
            .extend(props.as_object().unwrap().clone());
        json!({"event": event, "properties": properties})
    };
    let (status, _) = app
        .post(
            "/e/",
            &json!([js_event(
                "$pageview",
                "anon-1",
                json!({"$set": {"plan": "pro"}})
            )]),
        )
        .await;
    assert_eq!(status, 200);
    let user_1 = json!({"token": app.token(), "distinct_id": "user-1"});
    assert_eq!(
        flag_enabled(&app, user_1.clone()).await["pro-only"]["enabled"],
        json!(false)
    );

    // posthog-js's identify: `$anon_distinct_id` plus `$set` / `$set_once` in properties.
    let identify = js_event(
        "$identify",
        "user-1",
        json!({"$anon_distinct_id": "anon-1", "$set": {"email": "u@example.com"},
               "$set_once": {"first_seen": "today"}}),
    );
    let (status, _) = app.post("/e/", &json!([identify])).await;
    assert_eq!(status, 200);
    assert_eq!(
        flag_enabled(&app, user_1).await["pro-only"]["enabled"],
        json!(true)
    );
    let person = app
        .store
        .get_person(app.project.project.id, "user-1")
        .await
        .unwrap()
        .unwrap();
    assert!(person.is_identified);
    assert!(person.distinct_ids.contains(&"anon-1".to_owned()));
    assert_eq!(person.properties["email"], json!("u@example.com"));
    assert_eq!(person.properties["first_seen"], json!("today"));

    // Personless events (posthog-js `person_profiles: "identified_only"`) touch no person.
    let personless = js_event(
        "$pageview",
        "anon-2",
        json!({"$process_person_profile": false, "$set": {"plan": "pro"}}),
    );
    let (status, _) = app.post("/e/", &json!([personless])).await;
    assert_eq!(status, 200);
    assert_eq!(count(&app, "anon-2", "$pageview").await, 1);
    let anon = app
        .store
        .get_person(app.project.project.id, "anon-2")
        .await
        .unwrap();
    assert!(anon.is_none());
    app.stop().await;
}

#[tokio::test]
async fn groupidentify_creates_the_group_type_and_properties_for_group_flags() {
    let app = TestApp::spawn().await;
    // The flag targets group type 0 before any group type exists: the mapping must reach the
    // snapshot through capture.
    app.put_flag(
        "enterprise",
        json!({"aggregation_group_type_index": 0,
               "groups": [{"properties": [{"key": "tier", "value": "enterprise", "type": "group",
                                           "group_type_index": 0}],
                           "rollout_percentage": 100}]}),
    )
    .await;
    let request = json!({"token": app.token(), "distinct_id": "u", "groups": {"company": "acme"}});
    assert_eq!(
        flag_enabled(&app, request.clone()).await["enterprise"]["enabled"],
        json!(false)
    );
    // posthog-python's `group_identify`.
    let body = json!({"api_key": app.token(), "batch": [{
        "event": "$groupidentify", "distinct_id": "$company_acme",
        "properties": {"$group_type": "company", "$group_key": "acme",
                       "$group_set": {"tier": "enterprise"}, "$lib": "posthog-python"}}]});
    let (status, _) = app.post("/batch/", &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        flag_enabled(&app, request).await["enterprise"]["enabled"],
        json!(true)
    );
    let group = app
        .store
        .get_group(app.project.project.id, 0, "acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(group.properties["tier"], json!("enterprise"));
    app.stop().await;
}

#[tokio::test]
async fn side_effects_the_store_refuses_are_skipped_and_the_event_kept() {
    let app = TestApp::spawn().await;
    let groups = json!({"a": "1", "b": "1", "c": "1", "d": "1", "e": "1"});
    let batch = json!({"api_key": app.token(), "batch": [
        {"event": "five", "distinct_id": "u", "properties": {"$groups": groups}},
        // A sixth group type and an empty group key: PostHog ignores both.
        {"event": "$groupidentify", "distinct_id": "u",
         "properties": {"$group_type": "sixth", "$group_key": "k", "$group_set": {"x": 1}}},
        {"event": "$groupidentify", "distinct_id": "u",
         "properties": {"$group_type": "a", "$group_key": "", "$group_set": {"x": 1}}},
    ]});
    let (status, body) = app.post("/batch/", &batch).await;
    assert_eq!((status, body), (200, json!({"status": 1})));
    assert_eq!(count(&app, "u", "$groupidentify").await, 2);
    let types = app.store.group_types(app.project.project.id).await.unwrap();
    let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    app.stop().await;
}

#[tokio::test]
async fn feature_flag_called_events_are_recorded_as_flag_calls() {
    let app = TestApp::spawn().await;
    let body = json!({"api_key": app.token(), "batch": [{
        "event": "$feature_flag_called", "distinct_id": "u",
        "properties": {"$feature_flag": "beta", "$feature_flag_response": true,
                       "$feature/beta": true, "locally_evaluated": false}}]});
    let (status, _) = app.post("/batch/", &body).await;
    assert_eq!(status, 200);
    let calls = app
        .store
        .last_flag_calls(app.project.project.id)
        .await
        .unwrap();
    assert!(calls.contains_key("beta"), "{calls:?}");
    assert_eq!(count(&app, "u", "$feature_flag_called").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_retried_batch_is_stored_once() {
    let app = TestApp::spawn().await;
    let body = python_batch(&app);
    for _ in 0..2 {
        let (status, _) = app.post("/batch/", &body).await;
        assert_eq!(status, 200);
    }
    assert_eq!(count(&app, "user-123", "order completed").await, 1);
    assert_eq!(count(&app, "user-123", "$set").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn events_go_only_to_the_project_of_their_token() {
    let app = TestApp::spawn().await;
    let event =
        |token: &str| json!({"api_key": token, "batch": [{"event": "routed", "distinct_id": "u"}]});
    let (status, body) = app.post("/batch/", &event("phc_not_a_project")).await;
    assert_eq!(
        (status, body["code"].clone()),
        (401, json!("authentication_failed"))
    );
    assert_eq!(count(&app, "u", "routed").await, 0);

    let other = app.store.create_project("Other").await.unwrap();
    app.state
        .catalog
        .refresh(app.store.as_ref(), other.project.id)
        .await
        .unwrap();
    let (status, _) = app.post("/batch/", &event(&other.project.api_token)).await;
    assert_eq!(status, 200);
    assert_eq!(count(&app, "u", "routed").await, 0);
    let in_other = app
        .store
        .count_events(other.project.id, "u", "routed", epoch())
        .await
        .unwrap();
    assert_eq!(in_other, 1);
    app.stop().await;
}

#[tokio::test]
async fn malformed_requests_are_rejected_whole() {
    let app = TestApp::spawn().await;
    let token = app.token().to_owned();
    let ok = json!({"event": "bad", "distinct_id": "ok"});
    // (path, body, status, code, attr)
    let cases: Vec<(&str, String, u16, &str, Value)> = vec![
        (
            "/batch/",
            "{not json".into(),
            400,
            "parse_error",
            Value::Null,
        ),
        ("/batch/", "42".into(), 400, "invalid_input", Value::Null),
        (
            "/batch/",
            json!({"api_key": token, "batch": [ok, {"event": "bad"}]}).to_string(),
            400,
            "invalid_input",
            json!("batch[1].distinct_id"),
        ),
        (
            "/batch/",
            json!({"api_key": token, "batch": [ok, {"event": "bad", "distinct_id": ""}]})
                .to_string(),
            400,
            "invalid_input",
            json!("batch[1].distinct_id"),
        ),
        (
            "/batch/",
            json!({"api_key": token, "batch": [ok, {"distinct_id": "x"}]}).to_string(),
            400,
            "invalid_input",
            json!("batch[1].event"),
        ),
        (
            "/e/",
            json!([ok, {"event": "bad", "distinct_id": "x", "timestamp": 5, "token": token}])
                .to_string(),
            400,
            "invalid_input",
            json!("[1].timestamp"),
        ),
        (
            "/batch/",
            json!({"api_key": token, "batch": {}}).to_string(),
            400,
            "invalid_input",
            json!("batch"),
        ),
        (
            "/batch/",
            json!({"api_key": token, "batch": []}).to_string(),
            400,
            "invalid_input",
            Value::Null,
        ),
        (
            "/e/?compression=lz64",
            json!([ok]).to_string(),
            400,
            "parse_error",
            Value::Null,
        ),
        (
            "/e/",
            json!([ok]).to_string(),
            401,
            "not_authenticated",
            Value::Null,
        ),
    ];
    for (path, body, status, code, attr) in cases {
        let (got, answer) = app
            .post_bytes(path, &[JSON], body.clone().into_bytes())
            .await;
        assert_eq!(
            (got, answer["code"].clone(), answer["attr"].clone()),
            (status, json!(code), attr),
            "{path} {body}: {answer}"
        );
    }
    assert_eq!(count(&app, "ok", "bad").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let settings = Settings {
        max_body_bytes: 2_048,
        ..Settings::default()
    };
    let app = TestApp::spawn_with(settings).await;
    let event =
        json!({"event": "big", "distinct_id": "u", "properties": {"pad": "x".repeat(4_000)}});
    let big = json!({"api_key": app.token(), "batch": [event]});
    let (status, body) = app.post("/batch/", &big).await;
    assert_eq!(
        (status, body["code"].clone()),
        (413, json!("payload_too_large"))
    );
    // Small on the wire, too large once inflated.
    let (status, body) = app.post_bytes("/batch/", &[JSON, GZIP], gzip(&big)).await;
    assert_eq!(
        (status, body["code"].clone()),
        (413, json!("payload_too_large"))
    );
    assert_eq!(count(&app, "u", "big").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn methods_answer_like_posthog_capture() {
    let app = TestApp::spawn().await;
    let send = |method: reqwest::Method, headers: &[(&'static str, &'static str)]| {
        let mut req = app.client.request(method, app.url("/e/"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send()
    };
    // GET is read like POST: without a body it is a bad request.
    let resp = send(reqwest::Method::GET, &[]).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // OPTIONS, preflight or not, is answered by the CORS layer.
    let resp = send(reqwest::Method::OPTIONS, &[]).await.unwrap();
    assert!(resp.status().is_success());
    let resp = send(
        reqwest::Method::OPTIONS,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ],
    )
    .await
    .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let resp = send(reqwest::Method::PUT, &[]).await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST, OPTIONS");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], json!("method_not_allowed"));
    app.stop().await;
}

#[tokio::test]
async fn a_storage_failure_is_503_and_nothing_is_acknowledged() {
    let app = TestApp::spawn().await;
    app.store.close().await;
    let (status, body) = app.post("/batch/", &python_batch(&app)).await;
    assert_eq!((status, body["code"].clone()), (503, json!("unavailable")));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_batches_are_all_durable() {
    const REQUESTS: usize = 20;
    const EVENTS: usize = 25;
    let app = Arc::new(TestApp::spawn().await);
    let data_dir = app.data_dir().to_owned();
    let project = app.project.project.id;
    let requests = (0..REQUESTS).map(|r| {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let batch: Vec<Value> = (0..EVENTS)
                .map(|e| {
                    json!({"event": "load", "distinct_id": format!("user-{}", e % 5),
                           "uuid": uuid::Uuid::new_v4().to_string(),
                           "properties": {"request": r, "$set": {"last_request": r}}})
                })
                .collect();
            app.post("/batch/", &json!({"api_key": app.token(), "batch": batch}))
                .await
        })
    });
    let answers = futures_join(requests.collect()).await;
    for (status, body) in answers {
        assert_eq!((status, body), (200, json!({"status": 1})));
    }
    let stored = |store: Arc<dyn vexil_store::Store>| async move {
        let mut total = 0;
        for user in 0..5 {
            total += store
                .count_events(project, &format!("user-{user}"), "load", epoch())
                .await
                .unwrap();
        }
        total
    };
    assert_eq!(
        stored(Arc::clone(&app.store)).await,
        (REQUESTS * EVENTS) as u64
    );

    // Acknowledged means on disk: stop, reopen the same directory, count again.
    let app = Arc::into_inner(app).expect("all requests finished");
    let dir = app.stop_keeping_data().await;
    assert_eq!(dir.path(), data_dir);
    let reopened = vexil_store::open_data_dir(&data_dir).await.unwrap();
    assert_eq!(
        stored(Arc::clone(&reopened)).await,
        (REQUESTS * EVENTS) as u64
    );
    reopened.close().await;
}

/// Awaits every task, in order.
async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn capture_v1_protocol_with_bearer_token_options_and_compression() {
    let app = TestApp::spawn().await;
    let body = json!({"created_at": Utc::now().to_rfc3339(), "batch": [
        {"event": "signed_up", "uuid": "00000000-0000-4000-8000-0000000000a1", "distinct_id": "v1-user",
         "timestamp": Utc::now().to_rfc3339(), "options": {}, "properties": {"$set": {"plan": "pro"}}},
        {"event": "$pageview", "uuid": "00000000-0000-4000-8000-0000000000a2", "distinct_id": "v1-anon",
         "timestamp": Utc::now().to_rfc3339(), "session_id": "s-1",
         "options": {"process_person_profile": false}, "properties": {"$set": {"plan": "x"}}}
    ]});
    let send = |encoding: &'static str, bytes: Vec<u8>, auth: String| {
        let req = app
            .client
            .post(app.url("/i/v1/analytics/events"))
            .header("content-type", "application/json")
            .header("posthog-sdk-info", "posthog-python/7.91.1")
            .header("authorization", auth);
        let req = if encoding.is_empty() {
            req
        } else {
            req.header("content-encoding", encoding)
        };
        req.body(bytes).send()
    };
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(body.to_string().as_bytes()).unwrap();
    let resp = send(
        "deflate",
        z.finish().unwrap(),
        format!("Bearer {}", app.token()),
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"results": {}}));
    assert_eq!(count(&app, "v1-user", "signed_up").await, 1);
    assert_eq!(
        person_properties(&app, "v1-user").await["plan"],
        json!("pro")
    );
    // `process_person_profile: false` keeps the anonymous event personless.
    assert_eq!(count(&app, "v1-anon", "$pageview").await, 1);
    assert!(app
        .store
        .get_person(app.project.project.id, "v1-anon")
        .await
        .unwrap()
        .is_none());
    // gzip works too; a retry of the same uuids is stored once.
    let resp = send("gzip", gzip(&body), format!("Bearer {}", app.token()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(count(&app, "v1-user", "signed_up").await, 1);
    // No or a wrong token, zstd: refused with JSON errors.
    let resp = send("", body.to_string().into_bytes(), String::new())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = send("", body.to_string().into_bytes(), "Bearer phc_nope".into())
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = send("zstd", vec![1, 2, 3], format!("Bearer {}", app.token()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert!(resp.json::<Value>().await.is_ok());
    app.stop().await;
}
