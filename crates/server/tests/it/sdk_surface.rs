//! What current SDKs read and send (issue 16): remote-configuration flags in `/flags` and the
//! definitions feed, encrypted payloads only through `remote_config` with a personal key,
//! `/flags?v=4` typed records, and `evaluation_contexts` in requests, the management API and the
//! feed.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::TestApp;

const FLAGS: &str = "/api/projects/@current/feature_flags/";

/// Creates a flag through the management API; its JSON.
async fn create(app: &TestApp, body: Value) -> Value {
    let (status, flag) = app.api(Method::POST, FLAGS, Some(&body)).await;
    assert_eq!(status, 201, "{flag}");
    flag
}

fn everyone_with_payload(payload: &str) -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": 100}],
           "payloads": {"true": payload}})
}

/// A plain and an encrypted remote-configuration flag, a remote-configuration flag without a
/// payload, and an ordinary flag.
async fn remote_configs(app: &TestApp) {
    create(
        app,
        json!({"key": "settings", "is_remote_configuration": true,
               "filters": everyone_with_payload("{\"theme\":\"dark\"}")}),
    )
    .await;
    create(
        app,
        json!({"key": "vault", "is_remote_configuration": true, "has_encrypted_payloads": true,
               "filters": everyone_with_payload("{\"api_key\":\"s3cret\"}")}),
    )
    .await;
    create(
        app,
        json!({"key": "empty", "is_remote_configuration": true,
               "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}),
    )
    .await;
    create(
        app,
        json!({"key": "ordinary", "filters": everyone_with_payload("1")}),
    )
    .await;
}

async fn flags(app: &TestApp, query: &str, body: Value) -> Value {
    let (status, body) = app.post(&format!("/flags{query}"), &body).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn definitions(app: &TestApp, key: &str) -> Value {
    let resp = app
        .client
        .get(app.url(&format!("/flags/definitions?token={}", app.token())))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.unwrap()
}

fn keys(feed: &Value) -> Vec<&str> {
    feed["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn plain_remote_config_flags_are_served_like_any_flag_encrypted_ones_are_not() {
    let app = TestApp::spawn().await;
    remote_configs(&app).await;

    let body = flags(
        &app,
        "?v=2",
        json!({"token": app.token(), "distinct_id": "u1"}),
    )
    .await;
    let served = body["flags"].as_object().unwrap();
    assert_eq!(
        served["settings"]["metadata"]["payload"], "{\"theme\":\"dark\"}",
        "get_feature_flag_payload(\"settings\") reads this"
    );
    assert_eq!(served["settings"]["enabled"], true);
    assert!(served.contains_key("empty") && served.contains_key("ordinary"));
    assert!(
        !served.contains_key("vault"),
        "encrypted: only remote_config"
    );
    let legacy = flags(
        &app,
        "?v=1",
        json!({"token": app.token(), "distinct_id": "u1"}),
    )
    .await;
    assert_eq!(
        legacy["featureFlagPayloads"]["settings"],
        "{\"theme\":\"dark\"}"
    );
    assert!(legacy["featureFlags"].get("vault").is_none());

    for key in [app.personal_key(), app.project.secret_key.as_str()] {
        let feed = definitions(&app, key).await;
        assert_eq!(keys(&feed), ["settings", "empty", "ordinary"]);
        assert!(!feed.to_string().contains("s3cret"));
    }

    // OFREP: a plain one is its payload (STATIC); an encrypted one does not exist there.
    let ofrep = |key: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(app.url(&format!("/ofrep/v1/evaluate/flags/{key}")))
                .bearer_auth(app.token())
                .json(&json!({"context": {"targetingKey": "u1"}}))
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, settings) = ofrep("settings").await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["value"], json!({"theme": "dark"}));
    assert_eq!(settings["reason"], "STATIC");
    let (status, vault) = ofrep("vault").await;
    assert_eq!(
        (status, &vault["errorCode"]),
        (404, &json!("FLAG_NOT_FOUND"))
    );
    let resp = app
        .client
        .post(app.url("/ofrep/v1/evaluate/flags"))
        .bearer_auth(app.token())
        .json(&json!({"context": {"targetingKey": "u1"}}))
        .send()
        .await
        .unwrap();
    let bulk: Value = resp.json().await.unwrap();
    let reasons: Vec<(String, String)> = bulk["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_owned(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let reason = |key: &str| {
        reasons
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, r)| r.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(reason("settings"), ["STATIC"], "once, as its payload");
    assert_eq!(reason("vault"), Vec::<&str>::new());
    assert_eq!(reason("ordinary"), ["TARGETING_MATCH"]);

    // Turning a flag into an encrypted remote configuration takes it out at once.
    let (status, list) = app.api(Method::GET, FLAGS, None).await;
    assert_eq!(status, 200);
    let settings = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "settings")
        .unwrap();
    let (status, _) = app
        .api(
            Method::PATCH,
            &format!("{FLAGS}{}/", settings["id"]),
            Some(&json!({"has_encrypted_payloads": true})),
        )
        .await;
    assert_eq!(status, 200);
    let body = flags(
        &app,
        "?v=2",
        json!({"token": app.token(), "distinct_id": "u1"}),
    )
    .await;
    assert!(body["flags"].get("settings").is_none(), "{body}");
    assert_eq!(
        keys(&definitions(&app, app.personal_key()).await),
        ["empty", "ordinary"]
    );
    app.stop().await;
}

/// GET `remote_config` of `flag` with `key`; status, content type and raw body.
async fn remote_config(app: &TestApp, flag: &str, key: &str) -> (u16, String, String) {
    let resp = app
        .client
        .get(app.url(&format!(
            "{FLAGS}{flag}/remote_config?token={}",
            app.token()
        )))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

#[tokio::test]
async fn remote_config_decrypts_for_a_personal_key_and_redacts_for_a_secret_key() {
    let app = TestApp::spawn().await;
    remote_configs(&app).await;
    let personal = app.personal_key().to_owned();
    let secret = app.project.secret_key.clone();
    let json = "application/json".to_owned();

    let plain = r#""{\"theme\":\"dark\"}""#.to_owned();
    for key in [&personal, &secret] {
        assert_eq!(
            remote_config(&app, "settings", key).await,
            (200, json.clone(), plain.clone())
        );
    }
    assert_eq!(
        remote_config(&app, "vault", &personal).await,
        (
            200,
            json.clone(),
            r#""{\"api_key\":\"s3cret\"}""#.to_owned()
        )
    );
    assert_eq!(
        remote_config(&app, "vault", &secret).await,
        (
            200,
            json.clone(),
            r#""\"********* (encrypted)\"""#.to_owned()
        ),
        "PostHog's redaction marker for a secret key"
    );
    assert_eq!(
        remote_config(&app, "empty", &personal).await,
        (200, json.clone(), String::new()),
        "no payload: an empty body, as PostHog answers `None`"
    );
    let (status, _, body) = remote_config(&app, "ordinary", &personal).await;
    assert_eq!(status, 404, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn only_remote_config_flags_have_encrypted_payloads() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .api(
            Method::POST,
            FLAGS,
            Some(&json!({"key": "x", "has_encrypted_payloads": true,
                         "filters": everyone_with_payload("1")})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["attr"], "has_encrypted_payloads");
    app.stop().await;
}

#[tokio::test]
async fn flags_v4_answers_typed_records() {
    let app = TestApp::spawn().await;
    create(
        &app,
        json!({"key": "layout", "filters": {
            "groups": [{"properties": [], "rollout_percentage": 100, "variant": "compact"}],
            "multivariate": {"variants": [{"key": "control", "rollout_percentage": 50},
                                          {"key": "compact", "rollout_percentage": 50}]},
            "payloads": {"compact": "{\"density\":\"compact\"}"}}}),
    )
    .await;
    create(
        &app,
        json!({"key": "beta", "filters": {"groups": [{"properties": [
            {"key": "plan", "type": "person", "value": "pro"}], "rollout_percentage": 100}]}}),
    )
    .await;
    let request = json!({"api_key": app.token(), "distinct_id": "u1",
                         "person_properties": {"plan": "free"}});
    let typed = flags(&app, "/?v=4", request.clone()).await;
    assert_eq!(typed["flags"]["layout"]["value"], "compact");
    assert_eq!(typed["flags"]["layout"]["metadata"]["config_version"], 1);
    assert_eq!(
        typed["flags"]["layout"]["metadata"]["payload"],
        "{\"density\":\"compact\"}"
    );
    assert_eq!(typed["flags"]["beta"]["value"], false);
    assert_eq!(
        typed["flags"]["beta"]["reason"]["code"],
        "no_condition_match"
    );
    assert!(typed["flags"]["beta"].get("enabled").is_none());
    assert!(typed["requestId"].is_string() && typed["evaluatedAt"].is_i64());
    assert_eq!(typed["errorsWhileComputingFlags"], false);
    // v=2 and v=3 keep the v2 records; `/decide?v=4` is flags v2 too.
    for path in ["/flags/?v=2", "/flags/?v=3", "/decide/?v=4"] {
        let (status, body) = app.post(path, &request).await;
        assert_eq!(status, 200);
        assert_eq!(body["flags"]["layout"]["variant"], "compact", "{path}");
        assert!(body["flags"]["layout"].get("value").is_none(), "{path}");
    }
    // GET (minimal) with v=4: the typed envelope, no flags.
    let resp = app.client.get(app.url("/flags/?v=4")).send().await.unwrap();
    let minimal: Value = resp.json().await.unwrap();
    assert_eq!(minimal["flags"], json!({}));
    app.stop().await;
}

#[tokio::test]
async fn evaluation_contexts_in_requests_management_api_and_feed() {
    let app = TestApp::spawn().await;
    let web = create(
        &app,
        json!({"key": "web-only", "evaluation_contexts": ["web"],
               "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}),
    )
    .await;
    assert_eq!(web["evaluation_contexts"], json!(["web"]));
    assert_eq!(
        web["evaluation_tags"],
        json!(["web"]),
        "the legacy name too"
    );
    create(
        &app,
        json!({"key": "docs-only", "evaluation_tags": ["docs"],
               "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}),
    )
    .await;
    create(
        &app,
        json!({"key": "untagged",
               "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}),
    )
    .await;
    let (status, patched) = app
        .api(
            Method::PATCH,
            &format!("{FLAGS}{}/", web["id"]),
            Some(&json!({"evaluation_contexts": ["web", "app"]})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["evaluation_contexts"], json!(["web", "app"]));

    let served = |body: &Value| {
        let mut keys: Vec<String> = body["flags"].as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    for field in ["evaluation_contexts", "evaluation_environments"] {
        let body = flags(
            &app,
            "?v=2",
            json!({"token": app.token(), "distinct_id": "u", field: ["app"]}),
        )
        .await;
        assert_eq!(served(&body), ["untagged", "web-only"], "{field}");
    }
    let all = flags(
        &app,
        "?v=2",
        json!({"token": app.token(), "distinct_id": "u"}),
    )
    .await;
    assert_eq!(served(&all).len(), 3, "no contexts: no filtering");

    let feed = definitions(&app, app.personal_key()).await;
    let tags: Vec<(&Value, &Value)> = feed["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (&f["evaluation_contexts"], &f["evaluation_tags"]))
        .collect();
    assert_eq!(
        tags,
        [
            (&json!(["web", "app"]), &json!(["web", "app"])),
            (&json!(["docs"]), &json!(["docs"])),
            (&json!([]), &json!([])),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn feature_flag_called_properties_are_stored_and_queryable() {
    let app = TestApp::spawn().await;
    let flag = create(
        &app,
        json!({"key": "checkout", "filters": everyone_with_payload("{\"a\":1}")}),
    )
    .await;
    let event = |uuid: &str, ts: &str, properties: Value| {
        json!({"event": "$feature_flag_called", "distinct_id": "u1", "uuid": uuid,
               "timestamp": ts, "properties": properties})
    };
    let (status, body) = app
        .post(
            "/batch/",
            &json!({"api_key": app.token(), "batch": [
                event("0190c2a0-0000-7000-8000-000000000001", "2026-11-30T10:00:00Z", json!({
                    "$feature_flag": "checkout", "$feature_flag_response": true,
                    "locally_evaluated": false, "$feature_flag_id": flag["id"],
                    "$feature_flag_version": 1, "$feature_flag_reason": "Matched condition set 1",
                    "$feature_flag_request_id": "550e8400-e29b-41d4-a716-446655440000",
                    "$feature_flag_evaluated_at": 1_764_496_800_000_i64,
                    "$feature_flag_has_experiment": false,
                    "$feature_flag_payload": {"a": 1},
                    "$lib": "posthog-node", "$lib_version": "5.70.0"})),
                event("0190c2a0-0000-7000-8000-000000000002", "2026-11-30T11:00:00Z", json!({
                    "$feature_flag": "checkout", "$feature_flag_response": null,
                    "$feature_flag_error": "errors_while_computing_flags,api_error_503,flag_missing",
                    "$lib": "posthog-python", "$lib_version": "7.91.1"})),
                event("0190c2a0-0000-7000-8000-000000000003", "2026-11-30T12:00:00Z", json!({
                    "$feature_flag": "other", "$feature_flag_response": true})),
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, calls) = app
        .api(Method::GET, &format!("{FLAGS}{}/calls/", flag["id"]), None)
        .await;
    assert_eq!(status, 200, "{calls}");
    let results = calls["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "only this flag's calls: {calls}");
    let (newest, oldest) = (&results[0], &results[1]);
    assert_eq!(newest["uuid"], "0190c2a0-0000-7000-8000-000000000002");
    assert_eq!(newest["response"], Value::Null);
    assert_eq!(
        newest["errors"],
        json!([
            "errors_while_computing_flags",
            "api_error_503",
            "flag_missing"
        ])
    );
    assert_eq!(newest["lib"], "posthog-python");
    assert_eq!(newest["locally_evaluated"], Value::Null, "not reported");
    assert_eq!(oldest["response"], true);
    assert_eq!(oldest["locally_evaluated"], false);
    assert_eq!(oldest["flag_id"], flag["id"]);
    assert_eq!(oldest["flag_version"], 1);
    assert_eq!(oldest["reason"], "Matched condition set 1");
    assert_eq!(oldest["request_id"], "550e8400-e29b-41d4-a716-446655440000");
    assert_eq!(oldest["evaluated_at"], 1_764_496_800_000_i64);
    assert_eq!(oldest["has_experiment"], false);
    assert_eq!(oldest["errors"], json!([]));
    assert_eq!(oldest["payload"], json!({"a": 1}));
    assert_eq!(oldest["lib_version"], "5.70.0");
    assert_eq!(oldest["properties"]["$feature_flag"], "checkout");
    assert_eq!(oldest["timestamp"], "2026-11-30T10:00:00.000000Z");

    let (status, one) = app
        .api(
            Method::GET,
            &format!("{FLAGS}{}/calls/?limit=1", flag["id"]),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["results"].as_array().unwrap().len(), 1);
    // By key too, also for a key no flag has (an SDK calling a missing or deleted flag).
    let (status, by_key) = app
        .api(Method::GET, &format!("{FLAGS}other/calls/"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        by_key["results"][0]["uuid"],
        "0190c2a0-0000-7000-8000-000000000003"
    );
    let (status, none) = app
        .api(Method::GET, &format!("{FLAGS}999999/calls/"), None)
        .await;
    assert_eq!((status, &none["results"]), (200, &json!([])));
    app.stop().await;
}
