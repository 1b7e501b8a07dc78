//! The outermost layer of every request: gives it a request id (the client's `X-Request-Id` when
//! valid, else a new one, echoed in the response), times it into its route's histogram and
//! writes one structured access-log event — for a sampled share of requests, and for every 5xx.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;
use vexil_store::ProjectId;

use crate::metrics::{Metrics, UNMATCHED_ROUTE};
use crate::overload::Shed;

/// `X-Request-Id`, read from requests and set on every response.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied request id kept; a longer one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The tracing target of access-log events (filter with `RUST_LOG=vexil::access=…`).
pub const TARGET: &str = "vexil::access";

/// Which requests the access log records.
#[derive(Debug)]
pub struct AccessLog {
    /// Share of non-5xx requests logged, 0.0–1.0.
    rate: f64,
    /// Requests seen, for the sampling sequence.
    seen: AtomicU64,
}

impl AccessLog {
    /// Logs `rate` (clamped to 0.0–1.0) of the requests answered below 500, and every 5xx.
    pub fn new(rate: f64) -> Self {
        AccessLog {
            rate: if rate.is_nan() {
                0.0
            } else {
                rate.clamp(0.0, 1.0)
            },
            seen: AtomicU64::new(0),
        }
    }

    /// Whether to log the next non-5xx request. A Weyl sequence (request number × the golden
    /// ratio, mod 1) keeps exactly `rate` of any long run of requests, spread evenly, with one
    /// atomic add and no random number generator.
    fn sampled(&self) -> bool {
        if self.rate >= 1.0 {
            return true;
        }
        if self.rate <= 0.0 {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        let fraction = (n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) as f64 / (1u64 << 53) as f64;
        fraction < self.rate
    }
}

/// The route template a request matched, carried from the router to [`observe`] on the
/// response.
#[derive(Debug, Clone)]
struct Route(MatchedPath);

/// Route layer: passes the matched route template out to [`observe`] on the response (routing
/// happens inside the layers [`observe`] wraps, so it cannot see the template itself).
pub async fn mark_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Handlers that know the request's project put it in the response's extensions for the log.
#[derive(Debug, Clone, Copy)]
pub struct LoggedProject(pub ProjectId);

/// Middleware around the whole app: request id, route latency, access log.
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    mut req: Request,
    next: Next,
) -> Response {
    let observed = Observed::start(&mut req);
    let mut response = next.run(req).await;
    let route = response.extensions().get::<Route>().cloned();
    observed.finish(
        &metrics,
        route.as_ref().map(|r| r.0.as_str()),
        &mut response,
    );
    response
}

/// One request under observation: what [`observe`] keeps from the request for its response.
/// The connection's direct `/flags` path ([`crate::routes::App`]) observes with it too.
#[derive(Debug)]
pub struct Observed {
    started: Instant,
    id: HeaderValue,
    method: Method,
}

impl Observed {
    /// Starts the clock and gives `req` its request id: the client's when valid, else a new
    /// one, set on the request's headers for the handler (the `/flags` envelope's
    /// `requestId`) to read.
    pub fn start<B>(req: &mut axum::http::Request<B>) -> Self {
        let started = Instant::now();
        let id = match req.headers().get(&REQUEST_ID) {
            Some(id) if valid_request_id(id) => id.clone(),
            _ => {
                let id = new_request_id();
                req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
                id
            }
        };
        Observed {
            started,
            id,
            method: req.method().clone(),
        }
    }

    /// Times the request into `route`'s histogram (no route: the unmatched one), writes its
    /// access-log event when sampled or a server error, and echoes the request id.
    pub fn finish(self, metrics: &Metrics, route: Option<&str>, response: &mut Response) {
        let elapsed = self.started.elapsed();
        let route = route.unwrap_or(UNMATCHED_ROUTE);
        let status = response.status();
        metrics.route(route).record(&self.method, status, elapsed);
        // Every server error is logged, except shed requests: the shed metrics count them.
        let failed = status.is_server_error() && response.extensions().get::<Shed>().is_none();
        if failed || metrics.access.sampled() {
            let project = response.extensions().get::<LoggedProject>().map(|p| p.0);
            tracing::info!(
                target: TARGET,
                request_id = self.id.to_str().unwrap_or_default(),
                method = %self.method,
                route,
                status = status.as_u16(),
                duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                bytes = response.body().size_hint().exact(),
                project = project.map(|p| p.0),
                "request"
            );
        }
        response.headers_mut().insert(REQUEST_ID.clone(), self.id);
    }
}

/// A client's request id is kept if it is 1–128 characters of `A–Z a–z 0–9 - _ . : /`: enough
/// for UUIDs, trace ids and `service/123`-style ids, nothing that could forge a log line.
fn valid_request_id(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    (1..=MAX_REQUEST_ID_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
}

/// A fresh UUID (v4) request id.
fn new_request_id() -> HeaderValue {
    let uuid = crate::random::fast_v4();
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid.hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}
