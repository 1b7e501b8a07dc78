//! Event capture (spec §10.4).

use axum::Router;

use crate::state::AppState;

/// Capture routes (merged into the main router).
pub fn router() -> Router<AppState> {
    Router::new()
}
