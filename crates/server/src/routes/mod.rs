//! The router: one module per path family, each owning its methods.

mod api;
mod array;
mod capture;
mod definitions;
mod early_access;
mod flags;
mod health;
mod ofrep;
mod stream;
mod test_clock;
mod ui;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::access;
use crate::cors;
use crate::error::{refuse, ApiError};
use crate::metrics;
use crate::overload;
use crate::state::AppState;

/// Every route of the service: the public SDK endpoints open to every origin, the management
/// API only to configured ones (see [`crate::cors`]).
pub fn router(state: AppState) -> Router {
    let origins = &state.settings.cors_allowed_origins;
    // Raw bodies may be compressed; the decoder enforces the decoded-size cap itself.
    let body_limit = DefaultBodyLimit::max(state.settings.max_body_bytes);
    let mut router = Router::new();
    // Shedding comes first: past the in-flight cap nothing is read or decoded.
    let shed = middleware::from_fn_with_state(Arc::clone(&state.overload), overload::shed);
    for path in overload::FLAGS_PATHS {
        router = router.route(path, flags::methods().layer(shed.clone()));
    }
    for path in [
        "/flags/definitions",
        "/flags/definitions/",
        "/api/feature_flag/local_evaluation",
        "/api/feature_flag/local_evaluation/",
    ] {
        router = router.route(path, definitions::methods());
    }
    for (path, methods) in array::routes() {
        router = router.route(path, methods);
    }
    for path in ["/api/early_access_features", "/api/early_access_features/"] {
        router = router.route(path, early_access::methods());
    }
    // Streams take no evaluation slot: they are not behind `shed`.
    router = router
        .route("/flags/definitions/stream", stream::definitions_methods())
        .route(crate::streams::OFREP_STREAM_PATH, stream::ofrep_methods());
    if state.settings.clock.is_adjustable() {
        router = router.route("/_test/clock", post(test_clock::advance));
    }
    if state.settings.metrics_endpoint {
        router = router.route("/metrics", get(metrics::render));
    }
    let observe = middleware::from_fn_with_state(Arc::clone(&state.metrics), access::observe);
    let routes = router
        .route(
            "/_liveness",
            get(health::liveness).fallback(refuse(health::ALLOW, health::REFUSED)),
        )
        .route(
            "/_readiness",
            get(health::readiness).fallback(refuse(health::ALLOW, health::REFUSED)),
        )
        .merge(capture::router())
        .merge(ofrep::router().layer(shed))
        .layer(cors::public(origins))
        .merge(api::router().layer(cors::management(origins)))
        .merge(ui::router())
        .route_layer(middleware::from_fn(access::mark_route))
        .fallback(|| async { ApiError::not_found("Route") })
        .with_state(state);
    // The layers every request passes wrap the router once instead of each route:
    // `Router::layer` nests every route's boxed service one level deeper, and each request
    // clones the whole boxed stack of its route (BENCHMARKS.md, "Instructions per request").
    let outer = ServiceBuilder::new()
        // Outermost, so that panics (500s) and shed requests are timed and logged too.
        .layer(observe)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal().into_response()
        }))
        .layer(body_limit)
        .service(routes);
    Router::new().fallback_service(outer)
}
