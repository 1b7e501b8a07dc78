//! Change streams (server-sent events): `GET /flags/definitions/stream` (same keys and `token`
//! query parameter as `/flags/definitions`: the full payload, then a `change` event per committed
//! change) and `GET /ofrep/v1/stream` (OFREP's `refetchEvaluation` messages, advertised in bulk
//! responses as `eventStreams`). Both resume from `Last-Event-ID`: exactly the missed events, or
//! the full state when the id is older than the project's replay ring.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use vexil_store::ProjectId;

use crate::error::{refuse, ApiError};
use crate::extract::auth::definitions_access;
use crate::extract::ofrep::stream_token;
use crate::overload::Bucket;
use crate::state::AppState;
use crate::streams::Format;

const ALLOW: &str = "GET, OPTIONS";

/// The methods of `/flags/definitions/stream`.
pub fn definitions_methods() -> MethodRouter<AppState> {
    get(definitions)
        .options(|| async { (StatusCode::NO_CONTENT, [(header::ALLOW, ALLOW)]) })
        .fallback(refuse(ALLOW, "Use GET to stream flag definitions."))
}

/// The methods of the OFREP stream.
pub fn ofrep_methods() -> MethodRouter<AppState> {
    get(ofrep)
        .options(|| async { (StatusCode::NO_CONTENT, [(header::ALLOW, ALLOW)]) })
        .fallback(refuse(ALLOW, "Use GET to stream flag changes."))
}

/// `GET /flags/definitions/stream?token=phc_…` with the secret or personal key.
async fn definitions(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let project = match definitions_access(&state, &headers, uri.query()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    open(&state, project, Format::Definitions, &headers)
        .await
        .unwrap_or_else(|e| e.into_response())
}

/// `GET /ofrep/v1/stream?token=phc_…` (or the token in `Authorization: Bearer` / `X-API-Key`,
/// as for evaluation).
async fn ofrep(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(token) = stream_token(&headers, uri.query()) else {
        return ApiError::not_authenticated(
            "No project token provided. Send it as the `token` query parameter, `Authorization: Bearer <token>` or `X-API-Key: <token>`.",
        )
        .into_response();
    };
    let Some(snapshot) = state.catalog.by_token(&token) else {
        return ApiError::authentication_failed(
            "The provided project token is invalid. Please check it and try again.",
        )
        .into_response();
    };
    open(&state, snapshot.project.id, Format::Ofrep, &headers)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn open(
    state: &AppState,
    project: ProjectId,
    format: Format,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let last_event_id = last_event_id(headers)?;
    state.overload.check(Bucket::Evaluation, project).await?;
    let Some(slot) = state.streams.slot() else {
        return Err(ApiError::overloaded());
    };
    let subscription = state
        .catalog
        .subscribe(project, last_event_id)
        .ok_or_else(|| {
            ApiError::unavailable("Flag definitions are not loaded yet; retry shortly.")
        })?;
    let etag = HeaderValue::from_str(subscription.0.etag()).ok();
    let body = state.streams.body(
        Arc::clone(&state.catalog),
        slot,
        format,
        subscription,
        last_event_id,
    );
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Proxies that buffer responses (nginx) would hold events back.
            (
                HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response();
    if let (Format::Definitions, Some(etag)) = (format, etag) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// The `Last-Event-ID` header: an event id this service sent (a revision), or none.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().map(str::trim).unwrap_or("?");
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>().map(Some).map_err(|_| {
        ApiError::invalid(format!(
            "Last-Event-ID must be the id of an event this stream sent (an integer), not {text:?}."
        ))
        .attr("Last-Event-ID")
    })
}
