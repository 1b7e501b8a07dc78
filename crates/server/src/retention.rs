//! Retention: a background task deleting events and flag calls older than the configured
//! window, in small chunks with a pause between them, so the single SQLite writer is never held
//! for long and capture keeps flowing while a large backlog is deleted.

use std::sync::Arc;
use std::time::Duration;

use vexil_store::Store;

/// Rows per table deleted in one transaction.
const CHUNK: u64 = 1_000;
/// Pause between chunks, leaving the writer to capture.
const PAUSE: Duration = Duration::from_millis(10);

/// Every `interval`, deletes what is older than `keep` (until the task is aborted).
pub(crate) async fn run(store: Arc<dyn Store>, keep: Duration, interval: Duration) {
    let Ok(keep) = chrono::TimeDelta::from_std(keep) else {
        return; // a window past chrono's range keeps everything
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let before = chrono::Utc::now() - keep;
        let mut deleted = 0;
        loop {
            match store.purge_events(before, CHUNK).await {
                Ok(n) => {
                    deleted += n;
                    if n < CHUNK {
                        break;
                    }
                    tokio::time::sleep(PAUSE).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention: deleting old events failed");
                    break;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, %before, "retention: old events and flag calls deleted");
        }
    }
}
