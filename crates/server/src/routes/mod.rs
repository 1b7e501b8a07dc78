//! The router: one module per path family.

pub mod api;
pub mod capture;
pub mod definitions;
pub mod flags;
pub mod health;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde::Serialize;
use tower_http::cors::CorsLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// Serialises `body` as a JSON response.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            ApiError::internal().into_response()
        }
    }
}

/// Every route of the service, with permissive CORS (origin and headers mirrored, credentials
/// allowed) as PostHog serves it.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::very_permissive().expose_headers([header::HeaderName::from_static(
        "x-posthog-rate-limit-warning",
    )]);
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
        .layer(cors)
        .with_state(state)
}
