//! `/batch/`, `/capture/`, `/e/`, `/i/v0/e/`, `/i/v0/ai/batch/`, `/track/`: decode → parse →
//! resolve the project → store → `{"status": 1}`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use vexil_wire::request::FlagsQuery;

use super::events::{check_token, store_batch};
use crate::budget::Endpoint;
use crate::error::ApiError;
use crate::extract::body::read_json;
use crate::response::json_response;
use crate::state::AppState;

/// `GET` and `POST` of every batch path: the body is what counts. Its token is checked on the
/// decoded text, before the events are parsed.
pub async fn capture(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    // `compression` says how the body is encoded; `_` is posthog-js's `sent_at`.
    let query = FlagsQuery::parse(req.uri().query().unwrap_or(""));
    let (_, (), json) = read_json(req, &state, Endpoint::Capture, &query, |text| {
        check_token(&state, text)
    })
    .await?;
    store_batch(&state, json, query.sent_at).await?;
    Ok(acknowledged().await)
}

/// PostHog's capture success body.
pub async fn acknowledged() -> Response {
    json_response(StatusCode::OK, &json!({"status": 1}))
}
