//! Behavioural cohorts decided at flag-check time: events acknowledged by capture change the
//! next `/flags` answer, windows close on the (adjustable) server clock, counts follow merged
//! persons and survive a restart, unsupported shapes are refused, and the definitions feed
//! sends local evaluators to `/flags`.

use chrono::Duration;
use serde_json::{json, Value};
use vexil_server::{Clock, Settings};

use crate::support::TestApp;

const COHORTS: &str = "/api/projects/@current/cohorts/";
const FLAGS: &str = "/api/projects/@current/feature_flags/";

fn settings(clock: &Clock) -> Settings {
    Settings {
        clock: clock.clone(),
        ..Settings::default()
    }
}

/// "performed `purchase` at least 3 times in the last 5 minutes", with extra leaf fields.
fn purchases(extra: Value) -> Value {
    let mut leaf = json!({"key": "purchase", "type": "behavioral", "value": "performed_event_multiple",
                          "operator": "gte", "operator_value": 3, "event_type": "events",
                          "time_value": 5, "time_interval": "minute"});
    if let (Some(leaf), Some(extra)) = (leaf.as_object_mut(), extra.as_object()) {
        leaf.extend(extra.clone());
    }
    leaf
}

/// Creates the cohort `leaf` and a flag `buyer` on it; returns the cohort id.
async fn behavioral_flag(app: &TestApp, leaf: Value) -> i64 {
    let (status, cohort) = app
        .api(
            reqwest::Method::POST,
            COHORTS,
            Some(
                &json!({"name": "buyers", "filters": {"properties": {"type": "AND", "values": [
                {"type": "AND", "values": [leaf]}]}}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{cohort}");
    let id = cohort["id"].as_i64().unwrap();
    let (status, flag) = app
        .api(
            reqwest::Method::POST,
            FLAGS,
            Some(
                &json!({"key": "buyer", "filters": {"groups": [{"properties": [
                {"key": "id", "type": "cohort", "value": id}], "rollout_percentage": 100}]}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{flag}");
    id
}

/// Captures `n` events `name` for `distinct_id` through `/batch/` (acknowledged = committed).
async fn capture(app: &TestApp, distinct_id: &str, name: &str, n: usize, properties: Value) {
    let now = app.state.settings.clock.now().to_rfc3339();
    let batch: Vec<Value> = (0..n)
        .map(|_| {
            json!({"event": name, "distinct_id": distinct_id, "properties": properties,
                   "uuid": uuid::Uuid::new_v4().to_string(), "timestamp": now})
        })
        .collect();
    let (status, body) = app
        .post(
            "/batch/",
            &json!({"api_key": app.token(), "batch": batch, "sent_at": now}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn buyer(app: &TestApp, distinct_id: &str) -> bool {
    let (status, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": distinct_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["flags"]["buyer"]["enabled"].as_bool().unwrap()
}

#[tokio::test]
async fn three_purchases_flip_the_next_check_and_the_window_closes_on_the_clock() {
    let clock = Clock::adjustable();
    let app = TestApp::spawn_with(settings(&clock)).await;
    behavioral_flag(&app, purchases(json!({}))).await;
    assert!(!buyer(&app, "alice").await);

    capture(&app, "alice", "purchase", 3, json!({})).await;
    capture(&app, "bob", "purchase", 2, json!({})).await;
    capture(&app, "bob", "signup", 5, json!({})).await;
    assert!(buyer(&app, "alice").await, "3 purchases in the window");
    assert!(!buyer(&app, "bob").await, "2 purchases (and other events)");

    clock.advance(Duration::minutes(4));
    assert!(buyer(&app, "alice").await, "still inside the 5 minutes");
    // The window is exact to a 10-second bucket.
    clock.advance(Duration::seconds(70));
    assert!(!buyer(&app, "alice").await, "the window has passed");
    app.stop().await;
}

#[tokio::test]
async fn identify_merges_count_the_events_of_every_distinct_id() {
    let app = TestApp::spawn().await;
    behavioral_flag(&app, purchases(json!({}))).await;
    capture(&app, "anon-1", "purchase", 2, json!({})).await;
    capture(&app, "alice", "purchase", 1, json!({})).await;
    assert!(!buyer(&app, "alice").await);
    capture(
        &app,
        "alice",
        "$identify",
        1,
        json!({"$anon_distinct_id": "anon-1"}),
    )
    .await;
    assert!(buyer(&app, "alice").await, "2 as anon-1 + 1 as alice");
    assert!(buyer(&app, "anon-1").await, "the same person");
    app.stop().await;
}

#[tokio::test]
async fn a_restart_rebuilds_the_counts_from_stored_events() {
    let app = TestApp::spawn().await;
    behavioral_flag(&app, purchases(json!({}))).await;
    capture(&app, "alice", "purchase", 3, json!({})).await;
    assert!(buyer(&app, "alice").await);
    let project = app.project.clone();
    let dir = app.stop_keeping_data().await;

    let app = TestApp::respawn(dir, project, Settings::default()).await;
    assert!(buyer(&app, "alice").await, "counts rebuilt before serving");
    capture(&app, "bob", "purchase", 3, json!({})).await;
    assert!(buyer(&app, "bob").await, "and counted after the restart");
    app.stop().await;
}

#[tokio::test]
async fn a_cohort_created_after_the_events_counts_them() {
    let app = TestApp::spawn().await;
    capture(&app, "alice", "purchase", 3, json!({})).await;
    behavioral_flag(&app, purchases(json!({}))).await;
    // Any capture of the project lets the writer replay the new cohort's past first.
    capture(&app, "someone", "$pageview", 1, json!({})).await;
    assert!(buyer(&app, "alice").await);
    // Replayed once: the next events add to the replayed ones, not to a second copy.
    capture(&app, "carol", "purchase", 2, json!({})).await;
    assert!(!buyer(&app, "carol").await);
    app.stop().await;
}

#[tokio::test]
async fn event_filters_count_only_matching_events() {
    let app = TestApp::spawn().await;
    behavioral_flag(
        &app,
        purchases(json!({"event_filters": [
            {"key": "plan", "type": "event", "value": "pro"},
            {"key": "amount", "type": "event", "operator": "gt", "value": "10"}]})),
    )
    .await;
    capture(
        &app,
        "alice",
        "purchase",
        3,
        json!({"plan": "free", "amount": 50}),
    )
    .await;
    capture(
        &app,
        "alice",
        "purchase",
        3,
        json!({"plan": "pro", "amount": 5}),
    )
    .await;
    assert!(!buyer(&app, "alice").await);
    capture(
        &app,
        "alice",
        "purchase",
        3,
        json!({"plan": "pro", "amount": 50}),
    )
    .await;
    assert!(buyer(&app, "alice").await);
    app.stop().await;
}

#[tokio::test]
async fn negated_and_not_performed_leaves() {
    let app = TestApp::spawn().await;
    behavioral_flag(
        &app,
        json!({"key": "churn", "type": "behavioral", "value": "not_performed_event",
               "time_value": 1, "time_interval": "day"}),
    )
    .await;
    assert!(buyer(&app, "alice").await, "never churned");
    capture(&app, "alice", "churn", 1, json!({})).await;
    assert!(!buyer(&app, "alice").await);
    app.stop().await;
}

#[tokio::test]
async fn unsupported_behavioral_shapes_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let path = "filters.properties.values[0].values[0]";
    for (extra, attr) in [
        (json!({"value": "performed_event_first_time"}), "value"),
        (json!({"value": "performed_event_regularly"}), "value"),
        (json!({"event_type": "actions"}), "event_type"),
        (json!({"explicit_datetime": "-30d"}), "explicit_datetime"),
        (
            json!({"time_interval": "month", "time_value": 1}),
            "time_value",
        ),
        (
            json!({"time_interval": "day", "time_value": 31}),
            "time_value",
        ),
        (json!({"operator": "between"}), "operator"),
        (
            json!({"event_filters": [{"key": "plan", "type": "person", "value": "x"}]}),
            "event_filters[0].type",
        ),
    ] {
        let (status, body) = app
            .api(
                reqwest::Method::POST,
                COHORTS,
                Some(
                    &json!({"name": "x", "filters": {"properties": {"type": "AND", "values": [
                    {"type": "AND", "values": [purchases(extra.clone())]}]}}}),
                ),
            )
            .await;
        assert_eq!(status, 400, "{extra}: {body}");
        assert_eq!(body["attr"], format!("{path}.{attr}"), "{extra}: {body}");
    }
    let (_, body) = app
        .api(
            reqwest::Method::POST,
            COHORTS,
            Some(&json!({"name": "x", "filters": {"properties": {"type": "AND", "values": [
                {"type": "AND", "values": [purchases(json!({"time_interval": "day", "time_value": 31}))]}]}}})),
        )
        .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("MAX_BEHAVIORAL_WINDOW_DAYS"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_definitions_feed_sends_behavioral_flags_to_the_server() {
    let app = TestApp::spawn().await;
    let behavioral = behavioral_flag(&app, purchases(json!({}))).await;
    let (status, static_like) = app
        .api(
            reqwest::Method::POST,
            COHORTS,
            Some(
                &json!({"name": "pros", "filters": {"properties": {"type": "AND", "values": [
                {"key": "plan", "type": "person", "value": "pro"}]}}}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let dynamic = static_like["id"].as_i64().unwrap();
    let (status, _) = app
        .api(
            reqwest::Method::POST,
            FLAGS,
            Some(
                &json!({"key": "pro", "filters": {"groups": [{"properties": [
                {"key": "id", "type": "cohort", "value": dynamic}], "rollout_percentage": 100}]}}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let feed: Value = app
        .client
        .get(app.url("/flags/definitions"))
        .bearer_auth(app.personal_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cohorts = feed["cohorts"].as_object().unwrap();
    assert!(cohorts.contains_key(&dynamic.to_string()), "{feed}");
    assert!(!cohorts.contains_key(&behavioral.to_string()), "{feed}");
    let keys: Vec<&str> = feed["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    assert!(
        keys.contains(&"buyer"),
        "the flag stays, its cohort is missing: {feed}"
    );
    app.stop().await;
}
