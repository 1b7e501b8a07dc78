//! OFREP through the live server: every reason and error code, auth by project token in either
//! header, the rate limit, the bulk ETag and the groups mapping.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use vexil_server::{OverloadLimits, Rate, Settings};
use vexil_store::NewFlag;

use crate::support::TestApp;

const ONE: &str = "/ofrep/v1/evaluate/flags/";
const ALL: &str = "/ofrep/v1/evaluate/flags";

/// POSTs `body` (raw) to `path` with `headers`; the status, the response headers and the body.
async fn call(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, HeaderMap, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

/// Evaluates `key` with `context`, authenticated by `Authorization: Bearer`.
async fn one(app: &TestApp, key: &str, context: Value) -> (u16, Value) {
    let auth = format!("Bearer {}", app.token());
    let body = json!({"context": context}).to_string();
    let (status, _, body) = call(
        app,
        &format!("{ONE}{key}"),
        &[("authorization", &auth)],
        &body,
    )
    .await;
    (status, body)
}

/// Stores `flag` and refreshes the snapshot.
async fn store(app: &TestApp, flag: NewFlag) {
    let project = app.project.project.id;
    app.store.create_flag(project, &flag).await.unwrap();
    app.state
        .catalog
        .refresh(app.store.as_ref(), project)
        .await
        .unwrap();
}

fn plan_is(plan: &str, rollout: u32) -> Value {
    json!({"groups": [{"properties": [{"key": "plan", "type": "person", "operator": "exact",
                                       "value": plan}],
                       "rollout_percentage": rollout}],
           "payloads": {"true": "{\"seats\": 10}"}})
}

#[tokio::test]
async fn each_reason_with_its_value_variant_and_metadata() {
    let app = TestApp::spawn().await;
    let pro = app.put_flag("pro", plan_is("pro", 100)).await;
    app.put_flag("nobody", plan_is("pro", 0)).await;
    app.put_flag(
        "colour",
        json!({"groups": [{"rollout_percentage": 100}],
               "multivariate": {"variants": [{"key": "blue", "rollout_percentage": 100}]}}),
    )
    .await;
    let mut off = NewFlag::new("off", plan_is("pro", 100));
    off.active = false;
    store(&app, off).await;
    let mut limits = NewFlag::new(
        "limits",
        json!({"groups": [], "payloads": {"true": "{\"max\": 3}"}}),
    );
    limits.is_remote_configuration = true;
    store(&app, limits).await;
    // A dependency on a flag that does not exist (the management API refuses it; the store does not).
    app.put_flag(
        "orphan",
        json!({"groups": [{"properties": [{"key": "999999", "type": "flag",
                                           "operator": "flag_evaluates_to", "value": true}]}]}),
    )
    .await;

    let ctx = json!({"targetingKey": "alice", "plan": "pro"});
    let (status, body) = one(&app, "pro", ctx.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"key": "pro", "value": true, "reason": "TARGETING_MATCH", "variant": null,
               "metadata": {"flagId": pro, "version": 1, "payload": "{\"seats\": 10}"}})
    );
    let (_, free) = one(
        &app,
        "pro",
        json!({"targetingKey": "alice", "plan": "free"}),
    )
    .await;
    assert_eq!(
        (&free["value"], &free["reason"]),
        (&json!(false), &json!("DEFAULT"))
    );
    assert_eq!(free["metadata"].get("payload"), None);
    let (_, nobody) = one(&app, "nobody", ctx.clone()).await;
    assert_eq!(
        (&nobody["value"], &nobody["reason"]),
        (&json!(false), &json!("SPLIT"))
    );
    let (_, colour) = one(&app, "colour", ctx.clone()).await;
    assert_eq!(
        (&colour["value"], &colour["variant"], &colour["reason"]),
        (&json!("blue"), &json!("blue"), &json!("SPLIT"))
    );
    let (status, off) = one(&app, "off", ctx.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&off["value"], &off["reason"]),
        (&json!(false), &json!("DISABLED"))
    );
    // A remote-configuration flag is its payload, parsed, for any context (even none).
    let (status, limits) = one(&app, "limits", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&limits["value"], &limits["reason"]),
        (&json!({"max": 3}), &json!("STATIC"))
    );
    let (_, orphan) = one(&app, "orphan", ctx).await;
    assert_eq!(
        (&orphan["value"], &orphan["reason"]),
        (&json!(false), &json!("UNKNOWN"))
    );
    app.stop().await;
}

#[tokio::test]
async fn each_error_code_with_its_status() {
    let app = TestApp::spawn().await;
    app.put_flag("pro", plan_is("pro", 100)).await;
    app.put_flag(
        "broken",
        json!({"groups": [{"properties": [{"key": "x", "type": "person",
                                           "operator": "no_such_operator", "value": 1}]}]}),
    )
    .await;
    let auth = format!("Bearer {}", app.token());
    let auth = [("authorization", auth.as_str())];

    let (status, body) = one(&app, "missing", json!({"targetingKey": "a"})).await;
    assert_eq!(status, 404);
    assert_eq!(body["key"], "missing");
    assert_eq!(body["errorCode"], "FLAG_NOT_FOUND");
    assert!(body["errorDetails"].as_str().unwrap().contains("missing"));

    let (status, _, body) = call(&app, &format!("{ONE}pro"), &auth, "{\"context\": {").await;
    assert_eq!(
        (status, &body["key"], &body["errorCode"]),
        (400, &json!("pro"), &json!("PARSE_ERROR"))
    );
    let (status, _, body) = call(&app, ALL, &auth, "not json").await;
    assert_eq!((status, &body["errorCode"]), (400, &json!("PARSE_ERROR")));

    let (status, body) = one(&app, "pro", json!({"plan": "pro"})).await;
    assert_eq!(
        (status, &body["errorCode"]),
        (400, &json!("TARGETING_KEY_MISSING"))
    );
    let (status, _, body) = call(&app, ALL, &auth, "{\"context\": {}}").await;
    assert_eq!(
        (status, &body["errorCode"]),
        (400, &json!("TARGETING_KEY_MISSING"))
    );

    let (status, body) = one(
        &app,
        "pro",
        json!({"targetingKey": "a", "groups": ["acme"]}),
    )
    .await;
    assert_eq!(
        (status, &body["errorCode"]),
        (400, &json!("INVALID_CONTEXT"))
    );
    assert!(
        body["errorDetails"]
            .as_str()
            .unwrap()
            .contains("context.groups"),
        "{body}"
    );

    let (status, body) = one(&app, "broken", json!({"targetingKey": "a"})).await;
    assert_eq!(
        (status, &body["key"], &body["errorCode"]),
        (500, &json!("broken"), &json!("GENERAL"))
    );
    app.stop().await;
}

#[tokio::test]
async fn the_project_token_authenticates_in_either_header() {
    let app = TestApp::spawn().await;
    app.put_flag("pro", plan_is("pro", 100)).await;
    let body = json!({"context": {"targetingKey": "a", "plan": "pro"}}).to_string();
    let path = format!("{ONE}pro");
    let bearer = format!("Bearer {}", app.token());
    for headers in [
        [("authorization", bearer.as_str())],
        [("x-api-key", app.token())],
    ] {
        let (status, _, answer) = call(&app, &path, &headers, &body).await;
        assert_eq!(
            (status, &answer["value"]),
            (200, &json!(true)),
            "{headers:?}"
        );
    }
    for headers in [
        &[][..],
        &[("authorization", "Bearer phc_not_a_project")][..],
        &[("x-api-key", "phc_not_a_project")][..],
        // Secret and personal keys are not project tokens.
        &[("authorization", &*format!("Bearer {}", app.personal_key()))][..],
    ] {
        let (status, _, _) = call(&app, &path, headers, &body).await;
        assert_eq!(status, 401, "{headers:?}");
    }
    // Browser providers call cross-origin: the token header must pass a preflight.
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url(&path))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, x-api-key, content-type",
        )
        .send()
        .await
        .unwrap();
    let allowed = |name: &str| preflight.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(
        allowed("access-control-allow-origin"),
        "https://shop.example"
    );
    assert!(allowed("access-control-allow-headers").contains("x-api-key"));
    app.stop().await;
}

#[tokio::test]
async fn past_the_project_rate_a_429_with_retry_after() {
    let app = TestApp::spawn_with(Settings {
        overload: OverloadLimits {
            evaluation_rate: Rate {
                per_second: 1,
                burst: 1,
            },
            ..OverloadLimits::default()
        },
        ..Settings::default()
    })
    .await;
    app.put_flag("pro", plan_is("pro", 100)).await;
    let (first, _) = one(&app, "pro", json!({"targetingKey": "a"})).await;
    assert_eq!(first, 200);
    let auth = format!("Bearer {}", app.token());
    let (status, headers, _) = call(
        &app,
        ALL,
        &[("authorization", &auth)],
        "{\"context\": {\"targetingKey\": \"a\"}}",
    )
    .await;
    assert_eq!(status, 429);
    let seconds: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&seconds), "Retry-After: {seconds}");
    app.stop().await;
}

#[tokio::test]
async fn past_the_in_flight_cap_a_503_shared_with_flags() {
    let app = TestApp::spawn_with(Settings {
        overload: OverloadLimits {
            max_in_flight_evaluations: 1,
            ..OverloadLimits::default()
        },
        ..Settings::default()
    })
    .await;
    // A /flags request whose body is still on its way holds the only slot.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let head = "POST /flags?v=2 HTTP/1.1\r\nHost: vexil\r\nContent-Length: 100\r\n\r\n{";
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, headers, _) = call(&app, ALL, &[("x-api-key", app.token())], "{}").await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    drop(slow);
    app.stop().await;
}

#[tokio::test]
async fn bulk_lists_every_flag_with_an_etag_and_answers_304_while_it_holds() {
    let app = TestApp::spawn().await;
    app.put_flag("pro", plan_is("pro", 100)).await;
    let mut off = NewFlag::new("off", plan_is("pro", 100));
    off.active = false;
    store(&app, off).await;
    let mut limits = NewFlag::new("limits", json!({"groups": [], "payloads": {"true": "7"}}));
    limits.is_remote_configuration = true;
    store(&app, limits).await;
    let auth = format!("Bearer {}", app.token());
    let body = json!({"context": {"targetingKey": "a", "plan": "pro"}}).to_string();

    let (status, headers, all) = call(&app, ALL, &[("authorization", &auth)], &body).await;
    assert_eq!(status, 200);
    let summary: Vec<(&str, &Value, &str)> = all["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap(),
                &f["value"],
                f["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("pro", &json!(true), "TARGETING_MATCH"),
            ("off", &json!(false), "DISABLED"),
            ("limits", &json!(7), "STATIC"),
        ]
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();

    let (status, again, empty) = call(
        &app,
        ALL,
        &[("authorization", &auth), ("if-none-match", &etag)],
        &body,
    )
    .await;
    assert_eq!((status, &empty), (304, &Value::Null));
    assert_eq!(again["etag"].to_str().unwrap(), etag);
    // Another context's answer differs, and so does its tag.
    let other = json!({"context": {"targetingKey": "a", "plan": "free"}}).to_string();
    let (status, _, _) = call(
        &app,
        ALL,
        &[("authorization", &auth), ("if-none-match", &etag)],
        &other,
    )
    .await;
    assert_eq!(status, 200);
    // So does the answer after a change.
    app.put_flag("new", plan_is("pro", 100)).await;
    let (status, changed, all) = call(
        &app,
        ALL,
        &[("authorization", &auth), ("if-none-match", &etag)],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(changed["etag"].to_str().unwrap(), etag);
    assert_eq!(all["flags"].as_array().unwrap().len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn groups_and_group_properties_reach_group_flags() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let index = app
        .store
        .ensure_group_type(project, "company")
        .await
        .unwrap();
    app.put_flag(
        "big-orgs",
        json!({"aggregation_group_type_index": index, "groups": [{"properties": [
            {"key": "seats", "type": "group", "group_type_index": index, "operator": "gte",
             "value": "10"}]}]}),
    )
    .await;
    let (status, big) = one(
        &app,
        "big-orgs",
        json!({"targetingKey": "u", "groups": {"company": "acme"},
               "groupProperties": {"company": {"seats": 50}}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&big["value"], &big["reason"]),
        (&json!(true), &json!("TARGETING_MATCH"))
    );
    let (_, small) = one(
        &app,
        "big-orgs",
        json!({"targetingKey": "u", "groups": {"company": "tiny"},
               "groupProperties": {"company": {"seats": 2}}}),
    )
    .await;
    assert_eq!(
        (&small["value"], &small["reason"]),
        (&json!(false), &json!("DEFAULT"))
    );
    // Without the group, the group's conditions are not evaluated.
    let (_, none) = one(&app, "big-orgs", json!({"targetingKey": "u", "seats": 50})).await;
    assert_eq!(
        (&none["value"], &none["reason"]),
        (&json!(false), &json!("DEFAULT"))
    );
    app.stop().await;
}
