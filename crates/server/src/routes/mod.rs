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

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::Method;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::FutureExt as _;
use tower::{Layer as _, ServiceBuilder, ServiceExt as _};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::access::{self, Observed};
use crate::cors;
use crate::error::{refuse, ApiError};
use crate::metrics;
use crate::overload;
use crate::state::AppState;

/// What the connection serves: [`router`], except for the hottest request, a `POST` to
/// `/flags` or `/decide`, which takes a direct path to its handler. The direct path passes the
/// same steps as the router's stack, in the same order — observation ([`Observed`]: request
/// id, route histogram, access log), the panic guard, the public CORS policy, the evaluation
/// shed ([`overload::Overload::admit`]) and the handler ([`flags::serve`]) — without the
/// router's per-request service clones, boxed futures and route lookup, which cost this
/// request about a fifth of its CPU time (BENCHMARKS.md, "The direct `/flags` path"). The
/// router's body limit is not among the steps: it only bounds axum's body extractors, and the
/// handler reads its body under its own limit ([`crate::extract::body::read`]).
#[derive(Clone)]
pub struct App(Arc<Parts>);

struct Parts {
    router: Router,
    state: AppState,
    cors: CorsLayer,
}

impl App {
    /// The app of `state`: its router and the direct `/flags` path.
    pub fn new(state: AppState) -> Self {
        App(Arc::new(Parts {
            router: router(state.clone()),
            cors: cors::public(&state.settings.cors_allowed_origins),
            state,
        }))
    }

    /// Answers `req`.
    pub async fn serve(&self, req: Request) -> Response {
        if req.method() == Method::POST {
            let path = req.uri().path();
            if let Some(route) = overload::FLAGS_PATHS.into_iter().find(|p| *p == path) {
                return self.flags(route, req).await;
            }
        }
        match self.0.router.clone().oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// The direct path of `POST /flags` and `/decide`; `route` is the path, which is also
    /// the route's template.
    async fn flags(&self, route: &'static str, mut req: Request) -> Response {
        let observed = Observed::start(&mut req);
        let Parts { state, cors, .. } = &*self.0;
        let handler = tower::service_fn(|req: Request| async {
            let response = match state.overload.admit() {
                Ok(_slot) => flags::serve(state.clone(), req).await,
                Err(shed) => shed.into_response(),
            };
            Ok::<_, Infallible>(response)
        });
        let mut response = guarded(async {
            match cors.layer(handler).oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
        .await;
        observed.finish(&state.metrics, Some(route), &mut response);
        response
    }
}

/// `answer`'s response, or a 500 if it panics: the direct path's equivalent of the router's
/// `CatchPanicLayer`.
async fn guarded(answer: impl Future<Output = Response>) -> Response {
    AssertUnwindSafe(answer)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| panic_response())
}

/// The answer to a request whose handler panicked.
fn panic_response() -> Response {
    ApiError::internal().into_response()
}

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
        .layer(CatchPanicLayer::custom(|_| panic_response()))
        .layer(body_limit)
        .service(routes);
    Router::new().fallback_service(outer)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    fn explode() -> Response {
        panic!("a handler failed");
    }

    #[tokio::test]
    async fn a_panic_on_the_direct_path_is_a_500_with_a_json_body() {
        let response = guarded(async { explode() }).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "server_error", "{body}");
    }

    #[tokio::test]
    async fn an_answer_that_does_not_panic_passes_through() {
        let response = guarded(async { StatusCode::IM_A_TEAPOT.into_response() }).await;
        assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    }
}
