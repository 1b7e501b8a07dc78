//! Capture v1 (`POST /i/v1/analytics/events`): the opt-in protocol of posthog-python
//! (`capture_mode="v1"`) and posthog-node (`POSTHOG_CAPTURE_MODE=v1`).
//!
//! Differences from `/batch/`, all absorbed here before the events take the same path as every
//! other capture request ([`super::events::store_batch`]):
//! * the project token comes only as `Authorization: Bearer phc_…`;
//! * the body is `{created_at, batch: [{event, uuid, distinct_id, timestamp, options,
//!   properties, session_id?, window_id?}], historical_migration?}`, optionally compressed with
//!   `Content-Encoding: gzip` or zlib `deflate` (read by the one body decoder; `zstd` is refused
//!   with 415);
//! * a few `$` properties travel as typed `options` / top-level fields and `$lib` comes from the
//!   `PostHog-Sdk-Info` header; they are put back into `properties`;
//! * the answer is a per-event `results` map; events absent from it count as accepted, so a
//!   fully stored batch answers `{"results": {}}` (once durable).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use vexil_wire::request::FlagsQuery;

use super::events::{store_batch, unknown_token};
use crate::budget::Endpoint;
use crate::error::ApiError;
use crate::extract::auth::bearer;
use crate::extract::body::read_json;
use crate::response::json_response;
use crate::state::AppState;

/// `options` keys and the properties they stand for.
const OPTIONS: [(&str, &str); 4] = [
    ("cookieless_mode", "$cookieless_mode"),
    ("disable_skew_correction", "$ignore_sent_at"),
    ("product_tour_id", "$product_tour_id"),
    ("process_person_profile", "$process_person_profile"),
];

/// Top-level event fields and the properties they stand for.
const TOP_LEVEL: [(&str, &str); 2] = [("session_id", "$session_id"), ("window_id", "$window_id")];

/// The handler.
pub async fn capture_v1(State(state): State<AppState>, req: Request) -> Response {
    match handle(&state, req).await {
        Ok(()) => json_response(StatusCode::OK, &json!({"results": {}})),
        Err(e) => e.into_response(),
    }
}

/// The token (a header) is checked before the body is read.
async fn handle(state: &AppState, req: Request) -> Result<(), ApiError> {
    let headers = req.headers();
    let token = bearer(headers)
        .ok_or_else(|| {
            ApiError::not_authenticated("Send the project token as `Authorization: Bearer phc_…`.")
        })?
        .to_owned();
    if state.catalog.by_token(&token).is_none() {
        return Err(unknown_token());
    }
    if headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|e| e.to_ascii_lowercase().contains("zstd"))
    {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ..ApiError::invalid(
                "zstd bodies are not supported: send gzip, deflate or no compression.",
            )
        });
    }
    // The one decoder: gzip or zlib (`Content-Encoding: deflate`), size cap, JSON.
    let (headers, (), parsed) = read_json(
        req,
        state,
        Endpoint::Capture,
        &FlagsQuery::default(),
        |_| Ok(()),
    )
    .await?;
    let sdk = headers
        .get("posthog-sdk-info")
        .and_then(|v| v.to_str().ok());
    let batch = legacy_batch(parsed, &token, sdk)?;
    store_batch(state, batch, None).await
}

/// Rewrites a v1 body into the `/batch/` shape the capture parser reads.
fn legacy_batch(body: Value, token: &str, sdk: Option<&str>) -> Result<Value, ApiError> {
    let Value::Object(mut body) = body else {
        return Err(ApiError::invalid("The body must be a JSON object."));
    };
    let Some(Value::Array(events)) = body.remove("batch") else {
        return Err(ApiError::invalid("`batch` must be a list of events.").attr("batch"));
    };
    let (lib, lib_version) = sdk_info(sdk);
    let mut batch = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
        let Value::Object(mut event) = event else {
            return Err(
                ApiError::invalid("Each event must be an object.").attr(format!("batch[{i}]"))
            );
        };
        let mut properties = match event.remove("properties") {
            Some(Value::Object(p)) => p,
            None | Some(Value::Null) => Map::new(),
            Some(_) => {
                return Err(ApiError::invalid("`properties` must be an object.")
                    .attr(format!("batch[{i}].properties")))
            }
        };
        if let Some(Value::Object(options)) = event.remove("options") {
            for (option, property) in OPTIONS {
                if let Some(v) = options.get(option) {
                    properties.insert(property.to_owned(), v.clone());
                }
            }
        }
        for (field, property) in TOP_LEVEL {
            if let Some(v) = event.remove(field) {
                properties.insert(property.to_owned(), v);
            }
        }
        if let Some(lib) = &lib {
            properties
                .entry("$lib")
                .or_insert_with(|| Value::String(lib.clone()));
        }
        if let Some(version) = &lib_version {
            properties
                .entry("$lib_version")
                .or_insert_with(|| Value::String(version.clone()));
        }
        event.insert("properties".to_owned(), Value::Object(properties));
        batch.push(Value::Object(event));
    }
    let mut legacy = Map::new();
    legacy.insert("api_key".to_owned(), Value::String(token.to_owned()));
    legacy.insert("batch".to_owned(), Value::Array(batch));
    // `created_at` is the client's send time: the clock-skew reference, like `sent_at`.
    if let Some(created_at) = body.remove("created_at") {
        legacy.insert("sent_at".to_owned(), created_at);
    }
    Ok(Value::Object(legacy))
}

/// `PostHog-Sdk-Info: posthog-python/7.91.1` → (`posthog-python`, `7.91.1`).
fn sdk_info(header: Option<&str>) -> (Option<String>, Option<String>) {
    match header.map(str::trim).filter(|h| !h.is_empty()) {
        None => (None, None),
        Some(h) => match h.split_once('/') {
            Some((lib, version)) => (Some(lib.to_owned()), Some(version.to_owned())),
            None => (Some(h.to_owned()), None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_top_level_fields_become_properties() {
        let body = json!({"created_at": "2026-01-01T00:00:00Z", "batch": [{
            "event": "e", "uuid": "00000000-0000-4000-8000-000000000001", "distinct_id": "u",
            "timestamp": "2026-01-01T00:00:00Z", "session_id": "s1",
            "options": {"process_person_profile": false}, "properties": {"$set": {"a": 1}}
        }]});
        let legacy = legacy_batch(body, "phc_x", Some("posthog-python/7.91.1")).unwrap();
        let props = &legacy["batch"][0]["properties"];
        assert_eq!(props["$process_person_profile"], json!(false));
        assert_eq!(props["$session_id"], json!("s1"));
        assert_eq!(props["$lib"], json!("posthog-python"));
        assert_eq!(props["$set"], json!({"a": 1}));
        assert_eq!(legacy["api_key"], json!("phc_x"));
        assert_eq!(legacy["sent_at"], json!("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn bad_shapes_are_named() {
        let e = legacy_batch(json!({"batch": [1]}), "t", None).unwrap_err();
        assert_eq!(e.attr.as_deref(), Some("batch[0]"));
        assert!(legacy_batch(json!([]), "t", None).is_err());
    }
}
