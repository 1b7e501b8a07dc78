//! Definition limits through the live server: writes over a limit are 400s naming the field and
//! the limit; definitions stored over a limit (rows older than the limit) fail their flags alone,
//! and the server keeps serving.

use reqwest::Method;
use serde_json::{json, Value};
use vexil_engine::limits::{MAX_COHORT_DEPTH, MAX_REGEX_LENGTH, MAX_VARIANTS};

use crate::support::TestApp;

const FLAGS: &str = "/api/projects/@current/feature_flags/";
const COHORTS: &str = "/api/projects/@current/cohorts/";
const CHAIN: usize = 3_000;

fn leaf() -> Value {
    json!({"properties": {"type": "AND", "values": [{"key": "email", "value": "a@x.com"}]}})
}

fn referencing(id: i64) -> Value {
    json!({"properties": {"type": "AND", "values": [{"key": "id", "type": "cohort", "value": id}]}})
}

fn on_cohort(id: i64) -> Value {
    json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": id}], "rollout_percentage": 100}]})
}

/// `/flags` v2 for a person with `email = a@x.com` sent in the request.
async fn flags(app: &TestApp) -> Value {
    let body = json!({"token": app.token(), "distinct_id": "u", "person_properties": {"email": "a@x.com"}});
    let (status, body) = app.post("/flags?v=2", &body).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A 400 `validation_error` with `attr` whose detail names `limit`.
fn assert_refused(status: u16, err: &Value, attr: &str, limit: &str) {
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["type"], "validation_error", "{err}");
    assert_eq!(err["attr"], attr, "{err}");
    let detail = err["detail"].as_str().unwrap();
    assert!(detail.contains(limit), "{detail}");
}

#[tokio::test]
async fn a_cohort_chain_is_refused_at_the_depth_limit() {
    let app = TestApp::spawn().await;
    // MAX_COHORT_DEPTH writes build a chain exactly as deep as allowed; the next one is refused.
    let mut top: Option<i64> = None;
    for _ in 0..MAX_COHORT_DEPTH {
        let filters = top.map_or_else(leaf, referencing);
        let body = json!({"name": "link", "filters": filters});
        let (status, cohort) = app.api(Method::POST, COHORTS, Some(&body)).await;
        assert_eq!(status, 201, "{cohort}");
        top = cohort["id"].as_i64();
    }
    let top = top.unwrap();
    let body = json!({"name": "one too deep", "filters": referencing(top)});
    let (status, err) = app.api(Method::POST, COHORTS, Some(&body)).await;
    assert_refused(
        status,
        &err,
        "filters",
        &format!("cohorts nest at most {MAX_COHORT_DEPTH} levels (MAX_COHORT_DEPTH)"),
    );

    // The chain at the limit is served.
    let (status, flag) = app
        .api(
            Method::POST,
            FLAGS,
            Some(&json!({"key": "deep", "filters": on_cohort(top)})),
        )
        .await;
    assert_eq!(status, 201, "{flag}");
    assert_eq!(flags(&app).await["flags"]["deep"]["enabled"], true);
    app.stop().await;
}

#[tokio::test]
async fn an_over_long_regex_and_too_many_variants_are_refused() {
    let app = TestApp::spawn().await;
    let regex = |pattern: String| {
        json!({"key": "r", "filters": {"groups": [{"properties": [
            {"key": "email", "type": "person", "operator": "regex", "value": pattern}]}]}})
    };
    let (status, err) = app
        .api(
            Method::POST,
            FLAGS,
            Some(&regex("a".repeat(MAX_REGEX_LENGTH + 1))),
        )
        .await;
    assert_refused(
        status,
        &err,
        "filters.groups[0].properties[0].value",
        &format!("the limit is {MAX_REGEX_LENGTH} (MAX_REGEX_LENGTH)"),
    );
    let (status, err) = app
        .api(Method::POST, FLAGS, Some(&regex(r"\w{50}".to_owned())))
        .await;
    assert_refused(
        status,
        &err,
        "filters.groups[0].properties[0].value",
        "(REGEX_SIZE_LIMIT)",
    );
    let (status, body) = app
        .api(
            Method::POST,
            FLAGS,
            Some(&regex("a".repeat(MAX_REGEX_LENGTH))),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let variants: Vec<Value> = (0..=MAX_VARIANTS)
        .map(
            |i| json!({"key": format!("v{i}"), "rollout_percentage": if i == 0 { 100 } else { 0 }}),
        )
        .collect();
    let body =
        json!({"key": "many", "filters": {"groups": [{}], "multivariate": {"variants": variants}}});
    let (status, err) = app.api(Method::POST, FLAGS, Some(&body)).await;
    assert_refused(
        status,
        &err,
        "filters.multivariate.variants",
        "(MAX_VARIANTS)",
    );
    app.stop().await;
}

/// Rows written before the limits existed: a cohort chain 3,000 deep (the depth the issue saw
/// served) straight in the store. Evaluating it recursively overflows a 2 MiB worker stack and
/// aborts the server (debug build); instead the flag on it fails alone, the one on a chain
/// within the limit matches, and the local-evaluation payload is still served. (The CLI test
/// runs a 10,000-deep chain from a definitions file; 10,000 store writes take half a minute.)
#[tokio::test]
async fn a_stored_3_000_deep_chain_fails_its_flag_alone() {
    let app = TestApp::spawn().await;
    let project = app.project.project.id;
    let mut ids = Vec::new();
    for i in 0..CHAIN {
        let cohort = vexil_store::NewCohort {
            name: format!("link {i}"),
            description: String::new(),
            filters: ids.last().map_or_else(leaf, |&id| referencing(id)),
            is_static: false,
            created_by: None,
        };
        ids.push(app.store.create_cohort(project, &cohort).await.unwrap().id);
    }
    app.put_flag("deep", on_cohort(ids[ids.len() - 1])).await;
    app.put_flag("at-limit", on_cohort(ids[MAX_COHORT_DEPTH - 1]))
        .await;
    app.put_flag(
        "plain",
        json!({"groups": [{"properties": [], "rollout_percentage": 100}]}),
    )
    .await;

    let body = flags(&app).await;
    assert_eq!(body["errorsWhileComputingFlags"], true, "{body}");
    let flag = |key: &str| {
        let f = &body["flags"][key];
        (f["enabled"].clone(), f["failed"].as_bool().unwrap_or(false))
    };
    assert_eq!(flag("deep"), (json!(false), true));
    assert_eq!(flag("at-limit"), (json!(true), false));
    assert_eq!(flag("plain"), (json!(true), false));

    let url = format!("/flags/definitions?token={}&send_cohorts", app.token());
    let resp = app
        .client
        .get(app.url(&url))
        .bearer_auth(app.personal_key())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let definitions: Value = resp.json().await.unwrap();
    assert_eq!(definitions["cohorts"].as_object().unwrap().len(), CHAIN);
    app.stop().await;
}
