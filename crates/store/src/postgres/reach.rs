//! Whether the database can be reached: a breaker, so that calls made while it is down fail at
//! once instead of each waiting out the pool's acquire timeout.
//!
//! When a connection cannot be had because the database is gone (refused, reset, not answering,
//! shutting down), the breaker opens: from then on calls fail with [`StoreError::Unavailable`]
//! without touching the network, except one probe per [`PROBE_INTERVAL`], which tries for
//! real. The first call that gets a connection closes it again. A slow hand-out is checked
//! with a direct connection attempt after [`SLOW_ACQUIRE`], so the calls waiting when the
//! database went away fail within about that time, not the pool's acquire timeout.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, PgConnection};

use crate::{Result, StoreError};

/// How long a connection may take to be handed out before the breaker checks whether the
/// database is there at all. Under the evaluation path's 100 ms lookup deadline, so lookups
/// made while the database goes away open the breaker too.
const SLOW_ACQUIRE: Duration = Duration::from_millis(60);

/// How long the direct connection attempt that tells a busy pool from an unreachable database
/// may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// How often a call is let through to try the database while it is down.
pub(super) const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// The breaker's state, shared by every clone of the store.
#[derive(Debug)]
pub(super) struct Reach {
    down: AtomicBool,
    /// When the next probe may start, in milliseconds since `epoch`.
    next_probe_ms: AtomicU64,
    /// When the next direct check of a slow acquire may start, likewise.
    next_check_ms: AtomicU64,
    epoch: Instant,
}

impl Reach {
    pub(super) fn new() -> Reach {
        Reach {
            down: AtomicBool::new(false),
            next_probe_ms: AtomicU64::new(0),
            next_check_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Whether the last attempt to reach the database failed.
    pub(super) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Runs `connect` (a call that opens or takes a pooled connection) unless the breaker is
    /// open and it is not yet time for a probe; records whether it reached the database.
    ///
    /// A `connect` still waiting after [`SLOW_ACQUIRE`] may be a busy pool or a database that
    /// went away (sqlx retries a refused connection until the acquire timeout): one direct
    /// connection attempt (at most one per [`PROBE_INTERVAL`] across callers) tells which, so
    /// the breaker opens within about that time rather than after the acquire timeout.
    pub(super) async fn call<T>(
        &self,
        options: &PgConnectOptions,
        connect: impl Future<Output = std::result::Result<T, sqlx::Error>>,
    ) -> Result<T> {
        let probing = self.is_down();
        if probing && !self.probe_turn() {
            return Err(StoreError::Unavailable);
        }
        let mut connect = std::pin::pin!(connect);
        let mut wait = SLOW_ACQUIRE;
        let result = loop {
            if let Ok(result) = tokio::time::timeout(wait, &mut connect).await {
                break result;
            }
            if self.check_turn() {
                tokio::select! {
                    result = &mut connect => break result,
                    gone = database_gone(options) => if gone {
                        self.open();
                        return Err(StoreError::Unavailable);
                    }
                }
            } else if !probing && self.is_down() {
                // Another caller's check found the database gone meanwhile (a probe, though,
                // waits for its own answer: a slow connection is not a dead database).
                return Err(StoreError::Unavailable);
            }
            wait = Duration::from_millis(
                self.next_check_ms
                    .load(Ordering::Acquire)
                    .saturating_sub(self.now_ms())
                    .max(10),
            );
        };
        match result {
            Ok(value) => {
                self.down.store(false, Ordering::Release);
                Ok(value)
            }
            Err(e) if unreachable(&e, options).await => {
                self.open();
                Err(StoreError::Unavailable)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn open(&self) {
        self.next_probe_ms
            .store(self.now_ms() + millis(PROBE_INTERVAL), Ordering::Release);
        self.down.store(true, Ordering::Release);
    }

    /// Claims the direct connection check of the current interval, if nobody has.
    fn check_turn(&self) -> bool {
        claim(&self.next_check_ms, self.now_ms())
    }

    /// Claims the probe of the current interval, if nobody has.
    fn probe_turn(&self) -> bool {
        claim(&self.next_probe_ms, self.now_ms())
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }
}

/// Moves `next` (a time in ms) one [`PROBE_INTERVAL`] past `now` if it is due; whether this
/// caller did.
fn claim(next: &AtomicU64, now: u64) -> bool {
    let due = next.load(Ordering::Acquire);
    now >= due
        && next
            .compare_exchange(
                due,
                now + millis(PROBE_INTERVAL),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether `e`, from taking a connection, means the database cannot be reached (rather than a
/// busy pool or a refused statement). A pool timeout is ambiguous: a direct attempt settles it.
async fn unreachable(e: &sqlx::Error, options: &PgConnectOptions) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::PoolTimedOut => database_gone(options).await,
        _ => false,
    }
}

/// One direct connection attempt, outside the pool: whether the database refused it, did not
/// answer in time, or is shutting down or starting up ("cannot connect now").
async fn database_gone(options: &PgConnectOptions) -> bool {
    let attempt = tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(options));
    match attempt.await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            false
        }
        Ok(Err(sqlx::Error::Io(_) | sqlx::Error::Tls(_))) | Err(_) => true,
        Ok(Err(sqlx::Error::Database(e))) => e.code().as_deref() == Some("57P03"),
        Ok(Err(_)) => false,
    }
}
