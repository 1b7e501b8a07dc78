//! Degradation: a slow store fails only the flags that need it, the continuity-override write
//! never holds a `/flags` response, and a committed change that failed to go live is retried
//! until it does.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vexil_server::Settings;
use vexil_store::Store;

use crate::faulty::{Faults, FaultyStore};
use crate::support::TestApp;

async fn spawn_faulty() -> (TestApp, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let wrap = {
        let faults = Arc::clone(&faults);
        move |inner: Arc<dyn Store>| -> Arc<dyn Store> { Arc::new(FaultyStore { inner, faults }) }
    };
    (
        TestApp::spawn_wrapped(Settings::default(), wrap).await,
        faults,
    )
}

#[tokio::test]
async fn a_lookup_timeout_fails_only_the_flags_that_need_stored_data() {
    let (app, faults) = spawn_faulty().await;
    app.put_flag(
        "request-only",
        json!({"groups": [{"properties": [{"key": "email", "operator": "regex", "value": "^a@"}]}]}),
    )
    .await;
    app.put_flag("everyone", json!({"groups": [{"rollout_percentage": 100}]}))
        .await;
    app.put_flag(
        "stored-plan",
        json!({"groups": [{"properties": [{"key": "plan", "value": "pro"}]}]}),
    )
    .await;
    // Past the 100 ms deadline.
    faults.lookup_delay_ms.store(1_000, Ordering::SeqCst);
    let request =
        json!({"token": app.token(), "distinct_id": "u", "person_properties": {"email": "a@b"}});
    let started = Instant::now();
    let (status, body) = app.post("/flags?v=2", &request).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "answered at the deadline"
    );
    assert_eq!(body["errorsWhileComputingFlags"], json!(true));
    let flags = &body["flags"];
    for key in ["request-only", "everyone"] {
        assert_eq!(flags[key]["enabled"], json!(true), "{key}: {body}");
        assert!(flags[key].get("failed").is_none(), "{key}: {body}");
    }
    assert_eq!(flags["stored-plan"]["failed"], json!(true), "{body}");
    assert_eq!(flags["stored-plan"]["enabled"], json!(false));
    assert_eq!(flags["stored-plan"]["reason"]["code"], json!("timeout"));

    // Without the delay the same request evaluates everything, with no error.
    faults.lookup_delay_ms.store(0, Ordering::SeqCst);
    let (_, body) = app.post("/flags?v=2", &request).await;
    assert_eq!(body["errorsWhileComputingFlags"], json!(false), "{body}");
    assert!(body["flags"]["stored-plan"].get("failed").is_none());
    app.stop().await;
}

#[tokio::test]
async fn the_continuity_override_write_is_off_the_request_path() {
    let (app, faults) = spawn_faulty().await;
    let flag = vexil_store::NewFlag {
        ensure_experience_continuity: true,
        ..vexil_store::NewFlag::new(
            "sticky",
            json!({"groups": [{"rollout_percentage": 100}],
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
    let variant = |body: &Value| body["flags"]["sticky"]["variant"].clone();
    let (anon, anon_variant) = app.identify_from_another_bucket("user-1", variant).await;

    // The override write takes far longer than the lookup deadline.
    faults
        .override_write_delay_ms
        .store(1_500, Ordering::SeqCst);
    let started = Instant::now();
    let (_, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": "user-1", "$anon_distinct_id": anon}),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "waited for the write"
    );
    assert_eq!(body["errorsWhileComputingFlags"], json!(false), "{body}");
    assert!(body["flags"]["sticky"].get("failed").is_none(), "{body}");
    assert_eq!(variant(&body), anon_variant);

    // Once written, the override keeps the bucket without the anonymous id.
    app.state.overrides.flush().await;
    let (_, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": "user-1"}),
        )
        .await;
    assert_eq!(variant(&body), anon_variant);
    app.stop().await;
}

const COHORTS: &str = "/api/projects/@current/cohorts/";
const FLAGS: &str = "/api/projects/@current/feature_flags/";

fn plan_cohort(plan: &str) -> Value {
    json!({"properties": {"type": "AND", "values": [
        {"type": "AND", "values": [{"key": "plan", "type": "person", "value": plan}]}]}})
}

fn cohort_filter(id: &Value) -> Value {
    json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": id}], "rollout_percentage": 100}]})
}

/// `beta`'s value for a person on the enterprise plan.
async fn beta_for_enterprise(app: &TestApp) -> Value {
    let request = json!({"token": app.token(), "distinct_id": "u", "person_properties": {"plan": "enterprise"}});
    let (status, body) = app.post("/flags?v=2", &request).await;
    assert_eq!(status, 200);
    body["flags"]["beta"]["enabled"].clone()
}

/// Waits (up to 10 s) until `beta` is on for the enterprise person.
async fn until_live(app: &TestApp) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if beta_for_enterprise(app).await == json!(true) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn a_cohort_change_whose_refresh_fails_goes_live_once_the_store_answers() {
    let (app, faults) = spawn_faulty().await;
    let (status, cohort) = app
        .api(
            reqwest::Method::POST,
            COHORTS,
            Some(&json!({"name": "Plan", "filters": plan_cohort("pro")})),
        )
        .await;
    assert_eq!(status, 201, "{cohort}");
    let flag = json!({"key": "beta", "filters": cohort_filter(&cohort["id"])});
    let (status, body) = app.api(reqwest::Method::POST, FLAGS, Some(&flag)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(beta_for_enterprise(&app).await, json!(false));

    // The change commits, but the next reloads fail (the first in the request itself).
    faults.failing_reloads.store(5, Ordering::SeqCst);
    let path = format!("{COHORTS}{}/", cohort["id"]);
    let patch = json!({"filters": plan_cohort("enterprise")});
    let (status, body) = app.api(reqwest::Method::PATCH, &path, Some(&patch)).await;
    assert_eq!(status, 200, "{body}");
    // Meanwhile the project is reported stale and serves the older definition.
    assert_eq!(app.state.catalog.stale_count(), 1);
    assert!(app.state.catalog.failed_publications() >= 1);
    assert_eq!(beta_for_enterprise(&app).await, json!(false));

    assert!(
        until_live(&app).await,
        "the committed change never went live"
    );
    assert_eq!(faults.failing_reloads.load(Ordering::SeqCst), 0);
    assert_eq!(app.state.catalog.stale_count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_flag_change_whose_reload_fails_goes_live_once_the_store_answers() {
    let (app, faults) = spawn_faulty().await;
    let (status, cohort) = app
        .api(
            reqwest::Method::POST,
            COHORTS,
            Some(&json!({"name": "Plan", "filters": plan_cohort("enterprise")})),
        )
        .await;
    assert_eq!(status, 201, "{cohort}");
    let off = json!({"key": "beta", "filters": {"groups": [{"rollout_percentage": 0}]}});
    let (status, flag) = app.api(reqwest::Method::POST, FLAGS, Some(&off)).await;
    assert_eq!(status, 201, "{flag}");
    assert_eq!(beta_for_enterprise(&app).await, json!(false));

    // Referencing a cohort makes the write reload the project; those reloads fail for a while.
    faults.failing_reloads.store(5, Ordering::SeqCst);
    let path = format!("{FLAGS}{}/", flag["id"]);
    let patch = json!({"filters": cohort_filter(&cohort["id"])});
    let (status, body) = app.api(reqwest::Method::PATCH, &path, Some(&patch)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.state.catalog.stale_count(), 1);
    assert_eq!(beta_for_enterprise(&app).await, json!(false));

    assert!(
        until_live(&app).await,
        "the committed change never went live"
    );
    assert_eq!(app.state.catalog.stale_count(), 0);
    app.stop().await;
}
