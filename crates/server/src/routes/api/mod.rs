//! The management API (`/api/projects/{project_id}/…`, `/api/environments/{project_id}/…`).

use axum::Router;

use crate::state::AppState;

/// Management routes (merged into the main router).
pub fn router() -> Router<AppState> {
    Router::new()
}
