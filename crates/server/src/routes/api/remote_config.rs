//! `GET feature_flags/{id or key}/remote_config`: the payload of a remote-configuration flag,
//! as posthog-python's `get_remote_config_payload` and posthog-node's `getRemoteConfigPayload`
//! fetch it. Authorised by the project's personal key, or by its secret key together with the
//! `token` query parameter (server SDKs configured for local evaluation hold either).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;
use vexil_store::{KeyKind, Project, PERSONAL_KEY_PREFIX, SECRET_KEY_PREFIX};

use crate::error::ApiError;
use crate::extract::auth::{bearer, token_param};
use crate::routes::json_response;
use crate::state::AppState;

/// The handler.
pub async fn remote_config(
    State(state): State<AppState>,
    Path((project_id, flag)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = authorise(&state, &headers, uri.query()).await?;
    if project_id != "@current" && project_id.parse::<i64>().ok() != Some(project.id.0) {
        return Err(ApiError::not_found("Project"));
    }
    let stored = match flag.parse::<i64>() {
        Ok(id) => state.store.get_flag(project.id, id).await?,
        Err(_) => None,
    };
    let stored = match stored {
        Some(f) => Some(f),
        None => state.store.get_flag_by_key(project.id, &flag).await?,
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

async fn authorise(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Project, ApiError> {
    let Some(credential) = bearer(headers) else {
        return Err(ApiError::not_authenticated(
            "Authentication credentials were not provided.",
        ));
    };
    if credential.starts_with(PERSONAL_KEY_PREFIX) {
        return state
            .store
            .project_by_personal_key(credential)
            .await?
            .ok_or_else(|| ApiError::authentication_failed("Personal API key is invalid."));
    }
    if credential.starts_with(SECRET_KEY_PREFIX) {
        let token = token_param(query).ok_or_else(|| {
            ApiError::authentication_failed(
                "The token query parameter is required with a secret key.",
            )
        })?;
        let project = state
            .store
            .project_by_token(&token)
            .await?
            .ok_or_else(|| ApiError::authentication_failed("Secret API token is invalid."))?;
        if state
            .store
            .verify_key(project.id, KeyKind::Secret, credential)
            .await?
        {
            return Ok(project);
        }
        return Err(ApiError::authentication_failed(
            "Secret API token is invalid.",
        ));
    }
    Err(ApiError::authentication_failed(
        "Use a personal API key (phx_…) or the project secret key (phs_…).",
    ))
}
