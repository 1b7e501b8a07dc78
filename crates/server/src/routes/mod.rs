//! The router: one module per path family, each owning its methods.

mod api;
mod capture;
mod definitions;
mod flags;
mod health;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::error::{refuse, ApiError};
use crate::state::AppState;

/// Every route of the service, with permissive CORS (origin and headers mirrored, credentials
/// allowed) as PostHog serves it.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::very_permissive().expose_headers([header::HeaderName::from_static(
        "x-posthog-rate-limit-warning",
    )]);
    // Raw bodies may be compressed; the decoder enforces the decoded-size cap itself.
    let body_limit = DefaultBodyLimit::max(state.settings.max_body_bytes);
    let mut router = Router::new();
    for path in ["/flags", "/flags/", "/decide", "/decide/"] {
        router = router.route(path, flags::methods());
    }
    for path in [
        "/flags/definitions",
        "/flags/definitions/",
        "/api/feature_flag/local_evaluation",
        "/api/feature_flag/local_evaluation/",
    ] {
        router = router.route(path, definitions::methods());
    }
    router
        .route(
            "/_liveness",
            get(health::liveness).fallback(refuse(health::ALLOW, health::REFUSED)),
        )
        .route(
            "/_readiness",
            get(health::readiness).fallback(refuse(health::ALLOW, health::REFUSED)),
        )
        .merge(api::router())
        .merge(capture::router())
        .fallback(|| async { ApiError::not_found("Route") })
        .layer(body_limit)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .layer(cors)
        .with_state(state)
}
