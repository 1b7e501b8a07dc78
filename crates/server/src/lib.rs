//! Vexil's HTTP service: PostHog-compatible `/flags` and `/decide`, local evaluation,
//! capture and the management API, around the pure `vexil-engine`.
//!
//! [`router`] builds the app from an [`AppState`]; [`serve`] runs it on a listener until a
//! shutdown future resolves, so tests start the real server on port 0:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! let store = vexil_store::connect("sqlite::memory:").await?;
//! let state = vexil_server::AppState::new(store, vexil_server::Settings::default()).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! vexil_server::serve(listener, state, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod error;
pub mod extract;
mod ingest;
pub mod routes;
pub mod snapshot;
mod state;

use std::future::Future;

pub use error::ApiError;
pub use ingest::Ingest;
pub use routes::router;
pub use state::{AppState, Settings};

/// Serves the app on `listener` until `shutdown` resolves, then drains in-flight requests and
/// flushes the capture pipeline.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ingest = state.ingest.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    ingest.shutdown().await;
    Ok(())
}
