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

/// `/_readiness`: 200 `"ready"` when every component answers — the store (a query) and the
/// capture writer — with the project counts and `capture_restarts` (how many times the capture
/// writer failed and was restarted since start-up).
///
/// 200 `"degraded"` when the store does not answer but the node holds definitions, or when it
/// serves the copy saved on disk (it started while the store was unreachable and has not
/// reloaded yet): it still answers `/flags`, `/decide` and the definitions feed, so a load
/// balancer should keep sending it traffic. `"definitions"` says where they come from:
/// `"store"`, or `"last_known"` with a `"last_known"` list of `{project, revision, saved_at}`
/// and a `"detail"` sentence.
///
/// Otherwise 503 `{"status": "unavailable", "components": {"store": "down", "capture": "up"}}`.
/// Why a component is down is logged, never answered: error text can carry paths and internals.
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
    let last_known = state.last_known.serving();
    let loaded = state.catalog.len();
    match (projects, last_known) {
        (Some(projects), None) if capture => (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "components": components,
                "projects": projects,
                "loaded": loaded,
                "capture_restarts": state.ingest.status().restarts,
            })),
        ),
        (_, last_known) if capture && loaded > 0 => {
            let mut body = json!({
                "status": "degraded",
                "components": components,
                "loaded": loaded,
                "definitions": if last_known.is_some() { "last_known" } else { "store" },
            });
            if let Some(saved) = last_known {
                let detail = saved
                    .iter()
                    .map(|s| {
                        format!(
                            "project {}: serving last known definitions (revision {}, saved at {})",
                            s.project,
                            s.revision,
                            s.saved_at
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                body["detail"] = json!(detail);
                body["last_known"] = saved
                    .iter()
                    .map(|s| json!({"project": s.project, "revision": s.revision, "saved_at": s.saved_at}))
                    .collect();
            }
            (StatusCode::OK, Json(body))
        }
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "components": components})),
        ),
    }
}
