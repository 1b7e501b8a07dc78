//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// Methods a probe answers.
pub const ALLOW: &str = "GET, HEAD";

/// The 405 detail of a probe.
pub const REFUSED: &str = "This method is not allowed on this path.";

/// `/_liveness`: the process is up.
pub async fn liveness() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `/_readiness`: snapshots are loaded and the store answers.
pub async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.store.list_projects().await {
        Ok(projects) => (
            StatusCode::OK,
            Json(
                json!({"status": "ready", "projects": projects.len(), "loaded": state.catalog.len()}),
            ),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "detail": e.to_string()})),
        ),
    }
}
