//! `POST /_test/clock {"advance_seconds": N}`: moves an adjustable server clock forward, so
//! that an out-of-process test (the real PostHog SDKs against `vexil serve`) can let a
//! behavioural window pass without sleeping. Routed only when the clock is adjustable, which
//! only a `vexil` binary built with its `test-clock` feature can ask for.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::response::json_response;
use crate::state::AppState;

/// The request body.
#[derive(Debug, Deserialize)]
pub struct Advance {
    advance_seconds: i64,
}

/// Advances the clock; answers the new `now`.
pub async fn advance(
    State(state): State<AppState>,
    Json(body): Json<Advance>,
) -> Result<Response, ApiError> {
    let by = Duration::try_seconds(body.advance_seconds)
        .filter(|d| *d >= Duration::zero())
        .ok_or_else(|| {
            ApiError::invalid("advance_seconds must be a non-negative number of seconds.")
                .attr("advance_seconds")
        })?;
    if !state.settings.clock.advance(by) {
        return Err(ApiError::not_found("Route"));
    }
    let now = state.settings.clock.now().to_rfc3339();
    Ok(json_response(
        axum::http::StatusCode::OK,
        &json!({ "now": now }),
    ))
}
