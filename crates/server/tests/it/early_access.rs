//! posthog-js's other endpoints: the remote config (`/array/{token}/config` and `config.js`)
//! and early access features (the management API, the public list, and enrollment through a
//! captured `$set` flipping the linked flag on the next `/flags`).

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::TestApp;

const EAF: &str = "/api/projects/@current/early_access_feature/";

async fn get(app: &TestApp, path: &str) -> (u16, Option<String>, String) {
    let resp = app.client.get(app.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, kind, resp.text().await.unwrap())
}

async fn flag_value(app: &TestApp, distinct_id: &str, key: &str) -> Value {
    let (status, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": distinct_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["flags"][key]["enabled"].clone()
}

#[tokio::test]
async fn remote_config_json_and_script() {
    let app = TestApp::spawn().await;
    let token = app.token().to_owned();
    let (status, kind, body) = get(&app, &format!("/array/{token}/config")).await;
    assert_eq!(status, 200);
    assert!(kind.unwrap().starts_with("application/json"));
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["token"], token.as_str());
    assert_eq!(config["hasFeatureFlags"], false);
    assert_eq!(config["sessionRecording"], false);
    assert_eq!(config["supportedCompression"], json!(["gzip", "gzip-js"]));

    app.put_flag("on", json!({"groups": [{"rollout_percentage": 100}]}))
        .await;
    let (_, _, body) = get(&app, &format!("/array/{token}/config")).await;
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["hasFeatureFlags"], true);

    let (status, kind, script) = get(&app, &format!("/array/{token}/config.js")).await;
    assert_eq!(status, 200);
    assert_eq!(kind.as_deref(), Some("application/javascript"));
    let prefix = format!("window._POSTHOG_REMOTE_CONFIG['{token}'] = {{\n    config: ");
    let start = script.find(&prefix).unwrap() + prefix.len();
    let end = script.rfind(",\n    siteApps: []").unwrap();
    let in_script: Value = serde_json::from_str(&script[start..end]).unwrap();
    assert_eq!(in_script["hasFeatureFlags"], true);
    assert!(in_script.get("siteApps").is_none());

    // Bad tokens: JSON errors, never another project's config.
    for (path, want) in [
        ("/array/phc_unknown/config".to_owned(), 404),
        ("/array/phc_unknown/config.js".to_owned(), 404),
        ("/array/bad%20token/config".to_owned(), 400),
        (format!("/array/{}/config", "a".repeat(201)), 400),
    ] {
        let (status, kind, body) = get(&app, &path).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(kind.unwrap().starts_with("application/json"), "{path}");
        assert!(serde_json::from_str::<Value>(&body).unwrap()["detail"].is_string());
    }
    let resp = app
        .client
        .post(app.url(&format!("/array/{token}/config")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    app.stop().await;
}

#[tokio::test]
async fn beta_feature_gates_its_flag_and_enrollment_flips_it() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .api(
            Method::POST,
            EAF,
            Some(
                &json!({"name": "New Editor", "description": "Try it", "stage": "beta",
                         "documentation_url": "https://example.com/editor",
                         "payload": {"icon": "pen"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let flag = &created["feature_flag"];
    assert_eq!(flag["key"], "new-editor");
    assert_eq!(flag["filters"]["feature_enrollment"], true);
    assert_eq!(flag["filters"]["groups"][0]["rollout_percentage"], json!(0));
    let id = created["id"].as_str().unwrap().to_owned();

    // The public list posthog-js reads (beta by default).
    let list = |query: String| {
        let app = &app;
        async move {
            let (status, _, body) = get(app, &format!("/api/early_access_features/?{query}")).await;
            (status, serde_json::from_str::<Value>(&body).unwrap())
        }
    };
    let (status, body) = list(format!("token={}", app.token())).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["earlyAccessFeatures"],
        json!([{"id": id, "name": "New Editor", "description": "Try it", "stage": "beta",
                "documentationUrl": "https://example.com/editor", "flagKey": "new-editor",
                "payload": {"icon": "pen"}, "assignee": null}])
    );
    let (_, body) = list(format!("token={}&stage=alpha", app.token())).await;
    assert_eq!(body["earlyAccessFeatures"], json!([]));
    let (status, body) = list(format!("token={}&stage=gamma", app.token())).await;
    assert_eq!((status, body["attr"].as_str()), (400, Some("stage")));
    let (status, _) = list("token=phc_nope".into()).await;
    assert_eq!(status, 401);
    let (status, _) = list(String::new()).await;
    assert_eq!(status, 401);

    // Not enrolled: off. posthog-js's updateEarlyAccessFeatureEnrollment captures this event.
    assert_eq!(flag_value(&app, "ada", "new-editor").await, false);
    let enroll = |on: bool| {
        json!({"api_key": app.token(), "batch": [{
            "event": "$feature_enrollment_update", "distinct_id": "ada",
            "properties": {"$feature_flag": "new-editor", "$feature_enrollment": on,
                           "$set": {"$feature_enrollment/new-editor": on}}}]})
    };
    let (status, _) = app.post("/batch/", &enroll(true)).await;
    assert_eq!(status, 200);
    assert_eq!(flag_value(&app, "ada", "new-editor").await, true);
    assert_eq!(flag_value(&app, "bob", "new-editor").await, false);
    let (status, _) = app.post("/batch/", &enroll(false)).await;
    assert_eq!(status, 200);
    assert_eq!(flag_value(&app, "ada", "new-editor").await, false);
    app.post("/batch/", &enroll(true)).await;

    // Leaving the active stages removes the gate; general availability with rollout_to_all
    // rolls the flag out to everyone.
    let item = format!("{EAF}{id}/");
    let (status, body) = app
        .api(Method::PATCH, &item, Some(&json!({"stage": "archived"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["feature_flag"]["filters"]
        .get("feature_enrollment")
        .is_none());
    assert_eq!(flag_value(&app, "ada", "new-editor").await, false);
    let (_, body) = app
        .api(Method::PATCH, &item, Some(&json!({"stage": "beta"})))
        .await;
    assert_eq!(body["feature_flag"]["filters"]["feature_enrollment"], true);
    assert_eq!(flag_value(&app, "ada", "new-editor").await, true);
    let (_, body) = app
        .api(
            Method::PATCH,
            &item,
            Some(&json!({"stage": "general-availability", "rollout_to_all": true})),
        )
        .await;
    assert_eq!(body["stage"], "general-availability");
    assert_eq!(flag_value(&app, "bob", "new-editor").await, true);

    let (status, body) = app.api(Method::GET, EAF, None).await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(1)));
    let (status, _) = app.api(Method::DELETE, &item, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.api(Method::GET, &item, None).await;
    assert_eq!(status, 404);
    let (status, _) = app.api(Method::DELETE, &item, None).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn linking_an_existing_flag_and_bad_input() {
    let app = TestApp::spawn().await;
    let plain = app
        .put_flag(
            "plain",
            json!({"groups": [{"rollout_percentage": 0}],
                                  "super_groups": [{"properties": []}]}),
        )
        .await;
    let multi = app
        .put_flag(
            "multi",
            json!({"groups": [{"rollout_percentage": 100}],
            "multivariate": {"variants": [{"key": "a", "rollout_percentage": 100}]}}),
        )
        .await;
    let group = app
        .put_flag(
            "org",
            json!({"aggregation_group_type_index": 0,
                                "groups": [{"rollout_percentage": 100}]}),
        )
        .await;
    let bad = |body: Value, attr: &'static str| {
        let app = &app;
        async move {
            let (status, answer) = app.api(Method::POST, EAF, Some(&body)).await;
            assert_eq!(status, 400, "{body} → {answer}");
            assert_eq!(answer["attr"], attr, "{body} → {answer}");
        }
    };
    bad(json!({"stage": "beta"}), "name").await;
    bad(json!({"name": "x"}), "stage").await;
    bad(json!({"name": "x", "stage": "ga"}), "stage").await;
    bad(json!({"name": "", "stage": "beta"}), "name").await;
    bad(json!({"name": "x".repeat(201), "stage": "beta"}), "name").await;
    bad(json!({"name": "!!!", "stage": "beta"}), "name").await;
    bad(
        json!({"name": "x", "stage": "beta", "documentation_url": "not a url"}),
        "documentation_url",
    )
    .await;
    bad(
        json!({"name": "x", "stage": "beta", "payload": [1]}),
        "payload",
    )
    .await;
    bad(
        json!({"name": "x", "stage": "beta", "feature_flag_id": "7"}),
        "feature_flag_id",
    )
    .await;
    bad(
        json!({"name": "x", "stage": "beta", "feature_flag_id": 999_999}),
        "feature_flag_id",
    )
    .await;
    bad(
        json!({"name": "x", "stage": "beta", "feature_flag_id": multi}),
        "feature_flag_id",
    )
    .await;
    bad(
        json!({"name": "x", "stage": "beta", "feature_flag_id": group}),
        "feature_flag_id",
    )
    .await;

    let (status, created) = app
        .api(
            Method::POST,
            EAF,
            Some(&json!({"name": "Plain", "stage": "alpha", "feature_flag_id": plain})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["feature_flag"]["id"], plain);
    let filters = &created["feature_flag"]["filters"];
    assert_eq!(filters["feature_enrollment"], true);
    assert!(filters.get("super_groups").is_none(), "{filters}");
    // Linked once only.
    bad(
        json!({"name": "y", "stage": "beta", "feature_flag_id": plain}),
        "feature_flag_id",
    )
    .await;
    // Unknown and malformed ids are 404s; bad updates are 400s.
    let (status, _) = app
        .api(Method::GET, &format!("{EAF}not-a-uuid/"), None)
        .await;
    assert_eq!(status, 404);
    let item = format!("{EAF}{}/", created["id"].as_str().unwrap());
    let (status, body) = app
        .api(Method::PATCH, &item, Some(&json!({"stage": 3})))
        .await;
    assert_eq!((status, body["attr"].as_str()), (400, Some("stage")));
    // Another project's key sees nothing.
    let (status, _) = app
        .api(Method::GET, &EAF.replace("@current", "999999"), None)
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}
