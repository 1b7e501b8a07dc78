//! The OpenFeature Rust SDK with the official OFREP provider (`open-feature-ofrep`) against a live
//! Vexil: boolean, string, integer, float and object flags, targeting by context attributes, an
//! unknown flag, a change seen on the next evaluation, and auth failures. Flags come from the
//! management API; run through `scripts/compat.sh`, which sets the environment.
//!
//! The provider reports every success as `STATIC` and drops `metadata`, so reasons and metadata
//! are checked by the node and Python suites, not here.

use std::time::Duration;

use open_feature::{
    Client, EvaluationContext, EvaluationErrorCode, OpenFeature, StructValue, Value,
};
use open_feature_ofrep::{OfrepOptions, OfrepProvider};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value as Json};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run these tests through scripts/compat.sh"))
}

fn host() -> String {
    env("VEXIL_HOST").trim_end_matches('/').to_owned()
}

/// A client of its own provider (the SDK's API is a process-wide singleton; each test names its
/// provider so that tests running in parallel do not share one), sending `header: value`.
async fn client(name: &str, header: &'static str, value: &str) -> Client {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static(header),
        HeaderValue::from_str(value).unwrap(),
    );
    let provider = OfrepProvider::new(OfrepOptions {
        base_url: host(),
        headers,
        connect_timeout: Duration::from_secs(5),
        ..OfrepOptions::default()
    })
    .await
    .unwrap();
    let mut api = OpenFeature::singleton_mut().await;
    api.set_named_provider(name, provider).await;
    api.create_named_client(name)
}

async fn bearer_client(name: &str) -> Client {
    client(
        name,
        "authorization",
        &format!("Bearer {}", env("VEXIL_TOKEN")),
    )
    .await
}

/// The management API with the personal key; the created or changed flag.
async fn api(method: reqwest::Method, path: &str, body: Json) -> Json {
    let url = format!("{}/api/projects/@current/{path}", host());
    let response = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(env("VEXIL_PERSONAL_KEY"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Json = response.json().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

async fn create_flag(key: &str, filters: Json, remote_configuration: bool) -> Json {
    let flag = json!({"key": key, "name": key, "filters": filters,
                      "is_remote_configuration": remote_configuration});
    api(reqwest::Method::POST, "feature_flags/", flag).await
}

fn plan_is(plan: &str) -> Json {
    json!({"groups": [{"properties": [{"key": "plan", "type": "person", "operator": "exact",
                                       "value": plan}],
                       "rollout_percentage": 100}]})
}

fn person(id: &str, plan: &str) -> EvaluationContext {
    EvaluationContext::default()
        .with_targeting_key(id)
        .with_custom_field("plan", plan)
}

#[tokio::test]
async fn boolean_flags_target_by_attribute() {
    create_flag("ofrep-rs-pro", plan_is("pro"), false).await;
    let client = bearer_client("boolean").await;
    let pro = person("alice", "pro");
    assert_eq!(
        client
            .get_bool_value("ofrep-rs-pro", Some(&pro), None)
            .await,
        Ok(true)
    );
    let free = person("bob", "free");
    assert_eq!(
        client
            .get_bool_value("ofrep-rs-pro", Some(&free), None)
            .await,
        Ok(false)
    );
}

#[tokio::test]
async fn string_flags_are_the_variant_key() {
    let mut filters = plan_is("pro");
    filters["groups"][0]["variant"] = json!("gold");
    filters["groups"]
        .as_array_mut()
        .unwrap()
        .push(json!({"rollout_percentage": 100}));
    filters["multivariate"] = json!({"variants": [{"key": "grey", "rollout_percentage": 100},
                                                  {"key": "gold", "rollout_percentage": 0}]});
    create_flag("ofrep-rs-colour", filters, false).await;
    let client = bearer_client("string").await;
    let gold = client
        .get_string_details("ofrep-rs-colour", Some(&person("alice", "pro")), None)
        .await
        .unwrap();
    assert_eq!(
        (gold.value.as_str(), gold.variant.as_deref()),
        ("gold", Some("gold"))
    );
    let grey = client
        .get_string_value("ofrep-rs-colour", Some(&person("bob", "free")), None)
        .await;
    assert_eq!(grey.as_deref(), Ok("grey"));
}

#[tokio::test]
async fn numbers_and_objects_are_remote_configuration_payloads() {
    let everyone = |payload: &str| json!({"groups": [{"rollout_percentage": 100}], "payloads": {"true": payload}});
    create_flag("ofrep-rs-limit", everyone("42"), true).await;
    create_flag("ofrep-rs-ratio", everyone("0.25"), true).await;
    create_flag(
        "ofrep-rs-theme",
        everyone(r#"{"theme": "dark", "columns": 3}"#),
        true,
    )
    .await;
    let client = bearer_client("typed").await;
    let ctx = person("bob", "free");
    assert_eq!(
        client
            .get_int_value("ofrep-rs-limit", Some(&ctx), None)
            .await,
        Ok(42)
    );
    assert_eq!(
        client
            .get_float_value("ofrep-rs-ratio", Some(&ctx), None)
            .await,
        Ok(0.25)
    );
    let theme = client
        .get_struct_details::<StructValue>("ofrep-rs-theme", Some(&ctx), None)
        .await
        .unwrap()
        .value;
    assert_eq!(
        theme.fields.get("theme"),
        Some(&Value::String("dark".into()))
    );
    assert_eq!(theme.fields.get("columns"), Some(&Value::Int(3)));
}

#[tokio::test]
async fn an_unknown_flag_is_flag_not_found() {
    let client = bearer_client("unknown").await;
    let missing = client
        .get_bool_value("ofrep-rs-no-such-flag", Some(&person("alice", "pro")), None)
        .await
        .unwrap_err();
    assert_eq!(missing.code, EvaluationErrorCode::FlagNotFound);
    // The caller's default, the SDK's way.
    assert!(client
        .get_bool_value("ofrep-rs-no-such-flag", None, None)
        .await
        .unwrap_or(true));
}

#[tokio::test]
async fn a_change_is_seen_on_the_next_evaluation() {
    // The provider does not cache: every evaluation asks the server.
    let flag = create_flag("ofrep-rs-change", plan_is("pro"), false).await;
    let client = bearer_client("change").await;
    let bob = person("bob", "free");
    assert_eq!(
        client
            .get_bool_value("ofrep-rs-change", Some(&bob), None)
            .await,
        Ok(false)
    );
    let path = format!("feature_flags/{}/", flag["id"]);
    api(
        reqwest::Method::PATCH,
        &path,
        json!({"filters": plan_is("free")}),
    )
    .await;
    assert_eq!(
        client
            .get_bool_value("ofrep-rs-change", Some(&bob), None)
            .await,
        Ok(true)
    );
}

#[tokio::test]
async fn the_token_in_x_api_key_works_and_a_wrong_token_fails() {
    create_flag("ofrep-rs-auth", plan_is("pro"), false).await;
    let ctx = person("alice", "pro");
    let by_key = client("x-api-key", "x-api-key", &env("VEXIL_TOKEN")).await;
    assert_eq!(
        by_key
            .get_bool_value("ofrep-rs-auth", Some(&ctx), None)
            .await,
        Ok(true)
    );
    let wrong = client("wrong-token", "authorization", "Bearer phc_not_a_project").await;
    let refused = wrong
        .get_bool_value("ofrep-rs-auth", Some(&ctx), None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused.code, EvaluationErrorCode::General(_)),
        "{refused:?}"
    );
}
