//! `GET feature_flags/{id or key}/remote_config`: the payload of a remote-configuration flag,
//! as posthog-python's `get_remote_config_payload` and posthog-node's `getRemoteConfigPayload`
//! fetch it. Authorised by the project's personal key, or by its secret key together with the
//! `token` query parameter (server SDKs configured for local evaluation hold either).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use crate::error::ApiError;
use crate::extract::auth::definitions_access;
use crate::response::json_response;
use crate::state::AppState;

/// The handler.
pub async fn remote_config(
    State(state): State<AppState>,
    Path((project_id, flag)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The same credentials as the local-evaluation feed: a server SDK holds one of them.
    let project = definitions_access(&state, &headers, uri.query()).await?;
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
    let payload = stored
        .filters
        .get("payloads")
        .and_then(|p| p.get("true"))
        .cloned()
        .unwrap_or(Value::Null);
    Ok(json_response(StatusCode::OK, &payload))
}
