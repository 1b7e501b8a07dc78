//! Capture bodies (spec §10.4): server-SDK batches, posthog-js single events and arrays.

use serde_json::json;
use vexil_wire::capture::parse;
use vexil_wire::CaptureError;

#[test]
fn server_sdk_batch() {
    let b = parse(json!({
        "api_key": "phc_1",
        "batch": [
            {"event": "$feature_flag_called", "distinct_id": "u1", "uuid": "u-1",
             "timestamp": "2026-01-02T03:04:05+00:00",
             "properties": {"$feature_flag": "beta", "$feature_flag_response": true}},
            {"event": "$identify", "distinct_id": 42, "$set": {"plan": "pro"},
             "$set_once": {"first": "x"}, "properties": {}}
        ],
        "sent_at": "2026-01-02T03:04:06+00:00",
        "historical_migration": true
    }))
    .unwrap();
    assert_eq!(b.token, "phc_1");
    assert_eq!(b.sent_at.as_deref(), Some("2026-01-02T03:04:06+00:00"));
    assert!(b.historical_migration);
    assert_eq!(b.events.len(), 2);
    let e = &b.events[0];
    assert_eq!(e.event, "$feature_flag_called");
    assert_eq!(e.distinct_id, "u1");
    assert_eq!(e.uuid.as_deref(), Some("u-1"));
    assert_eq!(e.properties["$feature_flag"], "beta");
    assert_eq!(e.person_set(), None);
    let e = &b.events[1];
    assert_eq!(e.distinct_id, "42");
    assert_eq!(e.person_set().unwrap()["plan"], "pro");
    assert_eq!(e.person_set_once().unwrap()["first"], "x");
}

#[test]
fn posthog_js_events() {
    // A single event with the token and distinct id inside its properties.
    let b = parse(json!({
        "event": "$pageview", "offset": 120,
        "properties": {"token": "phc_js", "distinct_id": "anon-1",
                       "$set": {"email": "a@b.c"}}
    }))
    .unwrap();
    assert_eq!(b.token, "phc_js");
    assert_eq!(b.events[0].distinct_id, "anon-1");
    assert_eq!(b.events[0].offset, Some(120));
    assert_eq!(b.events[0].timestamp, None);
    assert_eq!(b.events[0].person_set().unwrap()["email"], "a@b.c");

    // An array of events.
    let b = parse(json!([
        {"event": "a", "properties": {"token": "phc_js", "distinct_id": "d"}},
        {"event": "b", "properties": {"$token": "phc_js", "$distinct_id": 7}}
    ]))
    .unwrap();
    assert_eq!(b.token, "phc_js");
    assert_eq!(b.events[1].distinct_id, "7");

    // Top-level token on a single event (python `/capture/`).
    let b = parse(json!({"api_key": "phc_py", "event": "e", "distinct_id": "d"})).unwrap();
    assert_eq!(b.token, "phc_py");
}

#[test]
fn token_rules() {
    let e = |t: &str| json!({"event": "e", "distinct_id": "d", "properties": {"token": t}});
    assert_eq!(
        parse(json!([e("phc_a"), e("phc_b")])),
        Err(CaptureError::MultipleTokens)
    );
    // A batch token settles it.
    let b = parse(json!({"token": "phc_top", "batch": [e("phc_a"), e("phc_b")]})).unwrap();
    assert_eq!(b.token, "phc_top");
    assert_eq!(
        parse(json!({"event": "e", "distinct_id": "d"})),
        Err(CaptureError::MissingToken)
    );
    assert_eq!(
        parse(json!({"api_key": "", "batch": [{"event": "e", "distinct_id": "d"}]})),
        Err(CaptureError::MissingToken)
    );
}

#[test]
fn errors_name_the_event() {
    assert_eq!(parse(json!("x")), Err(CaptureError::InvalidShape));
    assert_eq!(parse(json!([])), Err(CaptureError::EmptyBatch));
    assert_eq!(
        parse(json!({"api_key": "k", "batch": []})),
        Err(CaptureError::EmptyBatch)
    );
    let err = parse(
        json!({"api_key": "k", "batch": [{"event": "e", "distinct_id": "d"}, {"event": "e"}]}),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "batch[1].distinct_id is missing");
    let err = parse(json!([{"distinct_id": "d"}])).unwrap_err();
    assert_eq!(err.to_string(), "[0].event is missing");
    let err = parse(
        json!({"api_key": "k", "batch": [{"event": "e", "distinct_id": "d", "properties": []}]}),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "batch[0].properties must be an object");
    let err = parse(json!({"api_key": "k", "batch": [{"event": "e", "distinct_id": {"a": 1}}]}))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "batch[0].distinct_id must be a string or number"
    );
    let err = parse(json!({"event": "e", "properties": {"distinct_id": true}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "properties.distinct_id must be a string or number"
    );
    let err = parse(json!({"api_key": "k", "batch": "nope"})).unwrap_err();
    assert_eq!(err.to_string(), "batch must be an array");
    let err = parse(json!({"api_key": "k", "batch": [3]})).unwrap_err();
    assert_eq!(err.to_string(), "batch[0] must be an object");
    let err =
        parse(json!({"event": "e", "distinct_id": "d", "timestamp": 5, "token": "k"})).unwrap_err();
    assert_eq!(err.to_string(), "timestamp must be a string");
}

#[test]
fn long_distinct_ids_are_truncated() {
    let b = parse(json!({"token": "k", "event": "e", "distinct_id": "x".repeat(500)})).unwrap();
    assert_eq!(b.events[0].distinct_id.len(), 200);
}
