//! The published posthog-rs SDK (its async client) against a live Vexil: remote evaluation
//! (`evaluate_flags` and the older `get_feature_flag*`), variants, payloads, local evaluation from
//! `/flags/definitions` with the personal key, capture (`$set` reaching the next evaluation,
//! `$feature_flag_called` stored), and GeoIP targeting through a trusted proxy. Flags come from
//! the management API; run through `scripts/compat.sh`, which sets the environment and starts the
//! server with `--geoip-db` (the database `src/main.rs` writes) and `--trusted-proxies`
//! `127.0.0.1/32`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use posthog_rs::{ClientOptionsBuilder, EvaluateFlagsOptions, Event, FlagValue};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run these tests through scripts/compat.sh"))
}

fn host() -> String {
    env("VEXIL_HOST").trim_end_matches('/').to_owned()
}

/// A unique suffix, so reruns against one server never collide.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos:x}")
}

/// The management API with the personal key.
async fn api(method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}/api/projects/@current/{path}", host());
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(env("VEXIL_PERSONAL_KEY"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {body}");
    body
}

async fn create_flag(key: &str, filters: Value) -> i64 {
    let flag = json!({"key": key, "name": key, "filters": filters});
    api(reqwest::Method::POST, "feature_flags/", Some(flag)).await["id"]
        .as_i64()
        .unwrap()
}

fn person_is(key: &str, value: &str) -> Value {
    json!({"groups": [{"properties": [{"key": key, "type": "person", "operator": "exact",
                                        "value": [value]}],
                       "rollout_percentage": 100}]})
}

/// A remote-evaluation client (no personal key), optionally through `headers`.
async fn remote_client(headers: Option<HeaderMap>) -> posthog_rs::Client {
    let mut options = ClientOptionsBuilder::default();
    options.host(host()).api_key(env("VEXIL_TOKEN"));
    if let Some(headers) = headers {
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        options.http_client(http);
    }
    posthog_rs::client(options.build().unwrap()).await
}

fn props(pairs: &[(&str, Value)]) -> Option<HashMap<String, Value>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

#[tokio::test]
async fn remote_evaluation_variants_and_payloads() {
    let pro = unique("rs-pro");
    let variant = unique("rs-variant");
    create_flag(
        &pro,
        json!({"groups": [{"properties": [{"key": "plan", "type": "person", "operator": "exact",
                                            "value": ["pro"]}], "rollout_percentage": 100}],
               "payloads": {"true": "{\"seats\": 5}"}}),
    )
    .await;
    create_flag(
        &variant,
        json!({"groups": [{"rollout_percentage": 100, "variant": "blue"}],
               "multivariate": {"variants": [
                   {"key": "blue", "rollout_percentage": 50},
                   {"key": "green", "rollout_percentage": 50}]},
               "payloads": {"blue": "\"sky\""}}),
    )
    .await;
    let client = remote_client(None).await;

    let options = EvaluateFlagsOptions {
        person_properties: props(&[("plan", json!("pro"))]),
        ..EvaluateFlagsOptions::default()
    };
    let flags = client.evaluate_flags("rs-user", options).await.unwrap();
    assert!(flags.is_enabled(&pro));
    assert_eq!(flags.get_flag_payload(&pro), Some(json!({"seats": 5})));
    assert_eq!(
        flags.get_flag(&variant),
        Some(FlagValue::String("blue".to_owned()))
    );
    assert_eq!(flags.get_flag_payload(&variant), Some(json!("sky")));

    // Another plan: off. An unknown flag: absent, not an error.
    let options = EvaluateFlagsOptions {
        person_properties: props(&[("plan", json!("free"))]),
        ..EvaluateFlagsOptions::default()
    };
    let flags = client.evaluate_flags("rs-user", options).await.unwrap();
    assert!(!flags.is_enabled(&pro));
    assert_eq!(flags.get_flag("no-such-flag"), None);

    // The older per-flag calls, still widely used.
    #[allow(deprecated)]
    {
        let value = client
            .get_feature_flag(
                &pro,
                "rs-user",
                None,
                props(&[("plan", json!("pro"))]),
                None,
            )
            .await
            .unwrap();
        assert_eq!(value, Some(FlagValue::Boolean(true)));
        // This call hands back the payload as the wire carries it (a JSON-encoded string, as
        // PostHog sends it); `evaluate_flags` above parses it.
        let payload = client
            .get_feature_flag_payload(&variant, "rs-user")
            .await
            .unwrap();
        assert_eq!(payload, Some(json!("\"sky\"")));
    }
    client.shutdown().await;
}

#[tokio::test]
async fn local_evaluation_uses_the_definitions_with_the_personal_key() {
    let key = unique("rs-local");
    let id = create_flag(&key, person_is("country", "NZ")).await;
    let options = ClientOptionsBuilder::default()
        .host(host())
        .api_key(env("VEXIL_TOKEN"))
        .secret_key(env("VEXIL_PERSONAL_KEY"))
        .enable_local_evaluation(true)
        // Nothing may come from /flags: a value proves the definitions were read and evaluated.
        .local_evaluation_only(true)
        .poll_interval_seconds(1)
        .build()
        .unwrap();
    let client = posthog_rs::client(options).await;
    let nz = props(&[("country", json!("NZ"))]);
    let deadline = Instant::now() + Duration::from_secs(15);
    #[allow(deprecated)]
    let value = loop {
        let value = client
            .get_feature_flag(&key, "rs-local-user", None, nz.clone(), None)
            .await
            .unwrap();
        if value.is_some() || Instant::now() > deadline {
            break value;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(value, Some(FlagValue::Boolean(true)));
    #[allow(deprecated)]
    let other = client
        .get_feature_flag(
            &key,
            "rs-local-user",
            None,
            props(&[("country", json!("DE"))]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(other, Some(FlagValue::Boolean(false)));

    // A change reaches the client on its next poll.
    api(
        reqwest::Method::PATCH,
        &format!("feature_flags/{id}/"),
        Some(json!({"filters": person_is("country", "DE")})),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        #[allow(deprecated)]
        let value = client
            .get_feature_flag(
                &key,
                "rs-local-user",
                None,
                props(&[("country", json!("DE"))]),
                None,
            )
            .await
            .unwrap();
        if value == Some(FlagValue::Boolean(true)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change never reached the client: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.shutdown().await;
}

#[tokio::test]
async fn captured_properties_and_flag_calls_reach_the_server() {
    let key = unique("rs-captured");
    let id = create_flag(&key, person_is("tier", "gold")).await;
    let user = unique("rs-person");
    let client = remote_client(None).await;

    // Not gold yet.
    let flags = client
        .evaluate_flags(user.as_str(), EvaluateFlagsOptions::default())
        .await
        .unwrap();
    assert!(!flags.is_enabled(&key));

    // `$set` on a captured event makes the person gold for the next evaluation.
    let mut event = Event::new("upgraded", user.as_str());
    event.insert_prop("$set", json!({"tier": "gold"})).unwrap();
    client.capture(event);
    client.flush().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let flags = client
            .evaluate_flags(user.as_str(), EvaluateFlagsOptions::default())
            .await
            .unwrap();
        if flags.is_enabled(&key) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the captured $set never reached evaluation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.flush().await;

    // The reads above sent `$feature_flag_called`, stored with the SDK's facts.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls = api(
            reqwest::Method::GET,
            &format!("feature_flags/{id}/calls/"),
            None,
        )
        .await;
        let mine: Vec<&Value> = calls["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["distinct_id"] == json!(user))
            .collect();
        if mine.iter().any(|c| c["response"] == json!(true)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no $feature_flag_called stored: {calls}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.shutdown().await;
}

async fn german_client(forwarded_for: &str) -> posthog_rs::Client {
    // The SDK behind a proxy: the server trusts 127.0.0.1, so X-Forwarded-For names the client.
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_str(forwarded_for).unwrap(),
    );
    remote_client(Some(headers)).await
}

#[tokio::test]
async fn users_in_germany_by_their_address() {
    let key = unique("rs-germany");
    create_flag(&key, person_is("$geoip_country_code", "DE")).await;
    let in_germany = german_client("5.9.1.2").await;
    let in_france = german_client("90.1.1.1").await;

    let flags = in_germany
        .evaluate_flags("rs-geo", EvaluateFlagsOptions::default())
        .await
        .unwrap();
    assert!(flags.is_enabled(&key));
    let flags = in_france
        .evaluate_flags("rs-geo", EvaluateFlagsOptions::default())
        .await
        .unwrap();
    assert!(!flags.is_enabled(&key));

    // The SDK's GeoIP switch, per call (sent as `geoip_disable`): nothing added, not in Germany.
    let options = EvaluateFlagsOptions {
        disable_geoip: Some(true),
        ..EvaluateFlagsOptions::default()
    };
    let flags = in_germany.evaluate_flags("rs-geo", options).await.unwrap();
    assert!(!flags.is_enabled(&key));
    in_germany.shutdown().await;

    // The client-wide switch, which the older per-flag calls send as `disable_geoip` (a spelling
    // PostHog's server ignores; Vexil honours it).
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_static("5.9.1.2"));
    let options = ClientOptionsBuilder::default()
        .host(host())
        .api_key(env("VEXIL_TOKEN"))
        .disable_geoip(true)
        .http_client(
            reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let no_geoip = posthog_rs::client(options).await;
    #[allow(deprecated)]
    let value = no_geoip
        .get_feature_flag(&key, "rs-geo", None, None, None)
        .await
        .unwrap();
    assert_eq!(value, Some(FlagValue::Boolean(false)));
    no_geoip.shutdown().await;
    in_france.shutdown().await;
}
