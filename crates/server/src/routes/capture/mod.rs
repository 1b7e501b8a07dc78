//! Event capture (spec §10.4): `/batch/`, `/capture/`, `/e/`, `/i/v0/e/`, `/track/` and the AI
//! events path `/i/v0/ai/batch/` (posthog-python's `capture_ai`, same batch body), each with and
//! without the trailing slash; and capture v1 `/i/v1/analytics/events` (see [`v1`]).
//!
//! A request is read as PostHog's capture reads it: the body goes through the one decoder (JSON,
//! gzip by header, parameter or magic bytes, base64 and form `data=`), then
//! [`vexil_wire::capture::parse`] (a batch, an array of events or one event; the token on the body
//! or on the events). The token must name a loaded project, else 401 and nothing is stored. Each
//! event becomes a `NewEvent` ([`events::new_event`]) and the whole request goes to the capture
//! pipeline; `{"status": 1}` is answered only once its events are durable. A store failure is a
//! 503 and nothing is acknowledged, so SDKs retry; retries are harmless because events are
//! deduplicated by uuid.
//!
//! Choices, where PostHog leaves room:
//! * One invalid event (no or empty distinct id, no name, a field of the wrong type) rejects the
//!   request with a 400 naming it (`batch[3].distinct_id`), as PostHog's capture does; nothing of
//!   the request is stored.
//! * Caps ([`limits`]: events per request, bytes per event, bytes per person property value,
//!   and the store's properties per person) refuse a request whole, naming the limit.
//! * A missing or unparsable `uuid` gets a fresh v4 (PostHog rejects unparsable ones).
//! * `GET` is handled like `POST`, as PostHog's capture does: the body is what counts, so a GET
//!   without one is a 400. `OPTIONS` is answered by the CORS layer (every `OPTIONS`, preflight or
//!   not); other methods get a JSON 405.

mod batch;
mod events;
mod limits;
mod v1;

use axum::routing::post;
use axum::Router;

use crate::error::refuse;
use crate::state::AppState;

/// The capture paths PostHog serves, without their trailing slash.
const PATHS: [&str; 6] = [
    "/batch",
    "/capture",
    "/e",
    "/i/v0/e",
    "/i/v0/ai/batch",
    "/track",
];

/// Methods a capture path answers.
const ALLOW: &str = "GET, POST, OPTIONS";

/// Capture routes (merged into the main router).
pub fn router() -> Router<AppState> {
    let refused = refuse(ALLOW, "Use POST to send events.");
    let batch = post(batch::capture)
        .get(batch::capture)
        // Only reached without the CORS layer, which answers every OPTIONS; PostHog's answer.
        .options(batch::acknowledged)
        .head(refused.clone())
        .fallback(refused);
    let v1 = post(v1::capture_v1).fallback(refuse("POST", "Use POST to send events."));
    PATHS
        .iter()
        .fold(Router::new(), |router, path| {
            router
                .route(path, batch.clone())
                .route(&format!("{path}/"), batch.clone())
        })
        .route("/i/v1/analytics/events", v1.clone())
        .route("/i/v1/analytics/events/", v1)
}
