//! Vexil's HTTP service: PostHog-compatible `/flags` and `/decide`, local evaluation,
//! capture and the management API, around the pure `vexil-engine`.
//!
//! [`router`] builds the app from an [`AppState`]; [`serve`] runs it on a listener until a
//! shutdown future resolves, so tests start the real server on port 0:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = vexil_store::connect("sqlite::memory:").await?;
//! let state = vexil_server::AppState::new(store, vexil_server::Settings::default()).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! vexil_server::serve(listener, state, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod access;
mod address;
pub mod behavior;
mod budget;
mod changes;
mod clock;
mod connection;
mod continuity;
pub mod cookieless;
mod cors;
mod error;
mod evaluate;
mod extract;
pub mod geoip;
mod ingest;
mod metrics;
mod openapi;
mod overload;
mod propagation;
mod random;
mod response;
mod retention;
mod routes;
mod saved;
mod snapshot;
mod state;
mod streams;
mod usage;
mod verified;

use std::future::Future;
use std::sync::Arc;

pub use budget::{
    Bodies, DEFAULT_DECODE_BUDGET_BYTES, DEFAULT_MAX_FLAGS_BODY_BYTES,
    MAX_UNAUTHENTICATED_BODY_BYTES,
};
pub use clock::Clock;
pub use connection::ConnectionLimits;
pub use continuity::OverrideWriter;
pub use cors::{AllowedOrigin, InvalidOrigin};
pub use error::ApiError;
pub use geoip::{GeoIp, GeoIpError};
pub use ingest::{Ingest, IngestConfig, IngestError, WriterStatus};
pub use ipnet::IpNet;
pub use metrics::Metrics;
pub use overload::{Idleness, OverloadLimits, Rate};
pub use routes::router;
pub use saved::{LastKnown, SavedInfo};
pub use state::{
    AppState, Settings, SharedState, DEFAULT_ACCESS_LOG_SAMPLE_RATE, DEFAULT_EVENT_RETENTION,
    DEFAULT_REVISION_CHECK_INTERVAL, DEFAULT_USAGE_FLUSH_INTERVAL,
};
pub use streams::{StreamLimits, DEFAULT_STREAM_REPLAY};

/// Serves the app on `listener` until `shutdown` resolves, then drains in-flight requests and
/// flushes the capture pipeline, the flag usage counts and the queued continuity-override
/// writes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ingest = state.ingest.clone();
    let overrides = state.overrides.clone();
    let propagation = tokio::spawn(propagation::run(state.clone()));
    let saver = state.settings.snapshot_dir.clone().map(|dir| {
        tokio::spawn(saved::keep_saved(
            state.clone(),
            saved::SnapshotDir::new(dir),
            state.settings.snapshot_save_interval,
        ))
    });
    let retention = state.settings.event_retention.map(|keep| {
        tokio::spawn(retention::run(
            state.store.clone(),
            keep,
            state.settings.retention_interval,
        ))
    });
    let usage_stop = Arc::new(tokio::sync::Notify::new());
    let usage = tokio::spawn(usage::run(
        state.clone(),
        state.settings.usage_flush_interval,
        Arc::clone(&usage_stop),
    ));
    let lag = tokio::spawn(overload::watch_lag(Arc::clone(&state.overload)));
    let evict = tokio::spawn(evict_counters(state.clone()));
    let limits = state.settings.connections.clone();
    let streams = Arc::clone(&state.streams);
    // Streams never finish on their own: end them when shutdown starts, so connections drain.
    let shutdown = async move {
        shutdown.await;
        streams.close();
    };
    let overload = Arc::clone(&state.overload);
    let served = connection::run(
        listener,
        routes::App::new(state),
        &limits,
        overload,
        shutdown,
    )
    .await;
    propagation.abort();
    if let Some(saver) = saver {
        saver.abort();
    }
    lag.abort();
    evict.abort();
    if let Some(retention) = retention {
        retention.abort();
    }
    // The evaluations answered since the last flag-usage write, added once more.
    usage_stop.notify_one();
    if tokio::time::timeout(std::time::Duration::from_secs(5), usage)
        .await
        .is_err()
    {
        tracing::warn!("flag usage counts not written at shutdown: the store did not answer");
    }
    ingest.shutdown().await;
    // Continuity overrides are best-effort: give the queued ones a moment, never hang on them.
    if tokio::time::timeout(std::time::Duration::from_secs(5), overrides.flush())
        .await
        .is_err()
    {
        tracing::warn!("continuity override writes still queued at shutdown were dropped");
    }
    served
}

/// Drops expired behavioural-count buckets and idle persons, every minute.
async fn evict_counters(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.counters.evict(state.settings.clock.now()).await;
    }
}
