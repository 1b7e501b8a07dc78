//! The router: one module per path family.

pub mod api;
pub mod capture;
pub mod capture_v1;
pub mod definitions;
pub mod flags;
pub mod health;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Serialises `body` as a JSON response.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, json_bytes(bytes)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            ApiError::internal().into_response()
        }
    }
}

/// A 200 response carrying already-serialised JSON.
pub fn json_bytes(bytes: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// Every route of the service, with permissive CORS (origin and headers mirrored, credentials
/// allowed) as PostHog serves it.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::very_permissive().expose_headers([header::HeaderName::from_static(
        "x-posthog-rate-limit-warning",
    )]);
    // Raw bodies may be compressed; the decoder enforces the decoded-size cap itself.
    let body_limit = DefaultBodyLimit::max(state.settings.max_body_bytes);
    Router::new()
        .route("/flags", any(flags::flags))
        .route("/flags/", any(flags::flags))
        .route("/decide", any(flags::decide))
        .route("/decide/", any(flags::decide))
        .route("/flags/definitions", any(definitions::definitions))
        .route("/flags/definitions/", any(definitions::definitions))
        .route(
            "/api/feature_flag/local_evaluation",
            any(definitions::definitions),
        )
        .route(
            "/api/feature_flag/local_evaluation/",
            any(definitions::definitions),
        )
        .route("/_liveness", get(health::liveness))
        .route("/_readiness", get(health::readiness))
        .merge(api::router())
        .merge(capture::router())
        .fallback(|| async { ApiError::not_found("Route") })
        .method_not_allowed_fallback(|| async {
            ApiError::method_not_allowed("This method is not allowed on this path.")
        })
        .layer(body_limit)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .layer(cors)
        .with_state(state)
}

/// Maps a failure to read the request body (too large, connection error) to a JSON error.
pub fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("The request body is too large.")
    } else {
        ApiError::parse(format!("Failed to read the request body: {rejection}."))
    }
}
