//! Rotating and revoking the project's keys: `POST keys/{kind}/rotate/` issues a new secret
//! (`phs_…`) or personal (`phx_…`) key and answers it once; `POST keys/{kind}/revoke/` disables
//! the key without a replacement. The old key is refused from the next request on, by every
//! process sharing the database (credential checks always read the store).
//!
//! PostHog has per-resource actions for this (`rotate_secret_token`, personal keys' `roll`);
//! Vexil's two keys belong to the project, so both live under it with one shape. Revoking the
//! personal key locks the API out: `vexil project rotate-key` issues a new one offline.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use vexil_store::KeyKind;

use super::keys::no_store;
use crate::error::ApiError;
use crate::extract::auth::ManagedProject;
use crate::response::json_response;
use crate::state::AppState;

fn kind(name: &str) -> Result<KeyKind, ApiError> {
    KeyKind::from_name(name).ok_or_else(|| {
        ApiError::invalid(format!(
            "Unknown key kind \"{name}\": use \"secret\" or \"personal\"."
        ))
        .attr("kind")
    })
}

/// `POST keys/{kind}/rotate/` → `{"project_id", "kind", "key"}`.
pub async fn rotate(
    State(state): State<AppState>,
    caller: ManagedProject,
    Path((_, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = kind(&name)?;
    let project = caller.project.id;
    let issued = state.store.rotate_key(project, kind).await?;
    tracing::info!(project = %project, kind = %kind, by = %caller.actor, "key rotated");
    Ok(no_store(json_response(
        StatusCode::OK,
        &json!({"project_id": project.0, "kind": kind.as_str(), "key": issued.key}),
    )))
}

/// `POST keys/{kind}/revoke/` → `{"project_id", "kind", "revoked": true}`.
pub async fn revoke(
    State(state): State<AppState>,
    caller: ManagedProject,
    Path((_, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = kind(&name)?;
    let project = caller.project.id;
    state.store.revoke_key(project, kind).await?;
    tracing::info!(project = %project, kind = %kind, by = %caller.actor, "key revoked");
    Ok(json_response(
        StatusCode::OK,
        &json!({"project_id": project.0, "kind": kind.as_str(), "revoked": true}),
    ))
}
