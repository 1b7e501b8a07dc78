//! The change feed on PostgreSQL: one connection `LISTEN`ing on [`CHANGES_CHANNEL`], kept open
//! by a background task that reconnects (with backoff) whenever it is lost.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;

use super::CHANGES_CHANNEL;
use crate::watch::{self, Change, Changes};

/// Announcements buffered for a slow reader before the listener waits for it.
const BUFFER: usize = 4_096;
/// First and longest wait between attempts to re-subscribe.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Starts the feed on a connection of `pool` (held for as long as the feed runs).
pub(super) fn start(pool: PgPool) -> Changes {
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(run(pool, tx));
    rx
}

async fn run(pool: PgPool, tx: mpsc::Sender<Change>) {
    let (first, longest) = BACKOFF;
    let mut wait = first;
    loop {
        if pool.is_closed() || tx.is_closed() {
            return;
        }
        let mut listener = match subscribe(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "change feed: cannot subscribe");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(longest);
                continue;
            }
        };
        wait = first;
        if tx.send(Change::Resubscribed).await.is_err() {
            return;
        }
        // A lost connection is `Ok(None)` (sqlx reconnects, but announcements made meanwhile
        // are gone) or an error (e.g. the backend was terminated): either way, start over on a
        // fresh subscription so the reader hears `Resubscribed` only once it listens again.
        let lost = loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => match watch::parse(notification.payload()) {
                    Some(change) => {
                        if tx.send(change).await.is_err() {
                            return;
                        }
                    }
                    None => tracing::warn!(
                        payload = notification.payload(),
                        "change feed: ignored a malformed announcement"
                    ),
                },
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        if pool.is_closed() {
            return;
        }
        match lost {
            Some(e) => tracing::warn!(error = %e, "change feed: connection lost"),
            None => tracing::warn!("change feed: connection lost"),
        }
        drop(listener);
        if tx.send(Change::Lost).await.is_err() {
            return;
        }
    }
}

async fn subscribe(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    Ok(listener)
}
