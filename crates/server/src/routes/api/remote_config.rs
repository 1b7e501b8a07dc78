//! `GET feature_flags/{id or key}/remote_config`: the payload of a remote-configuration flag,
//! as posthog-python's `get_remote_config_payload` and posthog-node's `getRemoteConfigPayload`
//! fetch it. Authorised by the project's personal key, or by its secret key together with the
//! `token` query parameter (server SDKs configured for local evaluation hold either).
//!
//! Answered as PostHog answers it: the stored `payloads.true` (a JSON-encoded string, so SDKs
//! decode twice); for a flag with encrypted payloads, the payload only to a personal key and
//! PostHog's redaction marker to a secret key; an empty body (200) when there is no payload.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use vexil_store::KeyKind;

use crate::error::ApiError;
use crate::extract::auth::server_key_access;
use crate::response::json_response;
use crate::state::AppState;

/// What PostHog answers in place of an encrypted payload to a caller that may not read it
/// (a JSON string whose text is itself a JSON string).
const REDACTED_PAYLOAD: &str = "\"********* (encrypted)\"";

/// The handler.
pub async fn remote_config(
    State(state): State<AppState>,
    Path((project_id, flag)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The same credentials as the local-evaluation feed: a server SDK holds one of them.
    let (project, key) = server_key_access(&state, &headers, uri.query()).await?;
    if project_id != "@current" && project_id.parse::<i64>().ok() != Some(project.0) {
        return Err(ApiError::not_found("Project"));
    }
    let stored = match flag.parse::<i64>() {
        Ok(id) => state.store.get_flag(project, id).await?,
        Err(_) => None,
    };
    let stored = match stored {
        Some(f) => Some(f),
        None => state.store.get_flag_by_key(project, &flag).await?,
    };
    let Some(stored) = stored.filter(|f| !f.deleted && f.is_remote_configuration) else {
        return Err(ApiError::not_found("Remote configuration flag"));
    };
    let payload = stored.filters.get("payloads").and_then(|p| p.get("true"));
    let payload = match payload {
        Some(p) if stored.has_encrypted_payloads && key != KeyKind::Personal && truthy(p) => {
            Value::String(REDACTED_PAYLOAD.to_owned())
        }
        Some(p) if truthy(p) => p.clone(),
        // PostHog answers `payloads["true"] or None` as an empty body.
        _ => return Ok(empty_json()),
    };
    Ok(json_response(StatusCode::OK, &payload))
}

/// Python's truthiness of a JSON value (PostHog's `payload or None`).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// 200 with a JSON content type and no body: what PostHog's `Response(None)` sends.
fn empty_json() -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::empty(),
    )
        .into_response()
}
