//! `/batch/`, `/capture/`, `/e/`, `/i/v0/e/`, `/i/v0/ai/batch/`, `/track/`: decode → parse →
//! resolve the project → store → `{"status": 1}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::events::store_batch;
use crate::error::ApiError;
use crate::extract::body::DecodedBody;
use crate::response::json_response;
use crate::state::AppState;

/// `GET` and `POST` of every batch path: the body is what counts.
pub async fn capture(
    State(state): State<AppState>,
    body: DecodedBody,
) -> Result<Response, ApiError> {
    store_batch(&state, body.json, body.query.sent_at).await?;
    Ok(acknowledged().await)
}

/// PostHog's capture success body.
pub async fn acknowledged() -> Response {
    json_response(StatusCode::OK, &json!({"status": 1}))
}
