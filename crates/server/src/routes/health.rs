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

/// `/_readiness`: 200 when every component answers — the store (a query) and the capture
/// writer — with the project counts and `capture_restarts` (how many times the capture writer
/// failed and was restarted since start-up); otherwise 503 `{"status": "unavailable", "components":
/// {"store": "down", "capture": "up"}}`. Why a component is down is logged, never answered:
/// error text can carry paths and internals.
pub async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let projects = match state.store.list_projects().await {
        Ok(projects) => Some(projects.len()),
        Err(e) => {
            tracing::error!(error = %e, "readiness: the store does not answer");
            None
        }
    };
    let capture = state.ingest.is_running();
    if !capture {
        tracing::error!("readiness: the capture writer is not running");
    }
    let state_of = |up: bool| if up { "up" } else { "down" };
    let components = json!({"store": state_of(projects.is_some()), "capture": state_of(capture)});
    match projects {
        Some(projects) if capture => (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "components": components,
                "projects": projects,
                "loaded": state.catalog.len(),
                "capture_restarts": state.ingest.status().restarts,
            })),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "components": components})),
        ),
    }
}
