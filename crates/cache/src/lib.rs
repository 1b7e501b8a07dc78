//! Vexil's shared hot state on Redis: per-project rate-limit buckets ([`Redis::take`]),
//! behavioural counters ([`Redis::record`], [`Redis::read`]) and cookieless mode's daily salts
//! ([`Redis::daily_salt`]) that every node of a deployment sees, so that two nodes together
//! allow what one would, an event captured on one node flips a flag on every node, and a
//! cookieless visitor hashes alike on every node. This is the only crate that knows Redis.
//!
//! Redis is optional and may fail at any time: every call answers within
//! [`RedisConfig::timeout`] or fails with a [`CacheError`], and after a failure a short circuit
//! breaker ([`RedisConfig::cooldown`]) fails calls at once instead of making every request wait
//! for a dead server; the first call after the cooldown tries again. Callers keep a local
//! fallback (`vexil-server` does: local buckets, in-memory counters) and use it on any error.
//!
//! ```no_run
//! # async fn run() -> Result<(), vexil_cache::CacheError> {
//! use vexil_cache::{Redis, RedisConfig};
//!
//! let redis = Redis::new(RedisConfig::new("redis://127.0.0.1:6379"))?;
//! let taken = redis.take(1, "evaluation", 100, 200).await?;
//! assert!(taken.allowed);
//! # Ok(()) }
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod breaker;
mod bucket;
mod counters;
mod salt;

use std::future::Future;
use std::sync::RwLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use bucket::Taken;
pub use counters::{CounterHit, CounterRead, Rebuild, MAX_BUCKETS_PER_SERIES};

use breaker::Breaker;

/// How to reach Redis and how long to wait for it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prefix of every key (so that deployments, or tests, can share a server).
    pub namespace: String,
    /// Longest wait for one call (connecting included).
    pub timeout: Duration,
    /// After a failure, calls fail at once for this long before Redis is tried again.
    pub cooldown: Duration,
}

impl RedisConfig {
    /// The defaults for `url`: namespace `vexil`, 50 ms per call, 1 s cooldown.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            namespace: "vexil".to_owned(),
            timeout: Duration::from_millis(50),
            cooldown: Duration::from_secs(1),
        }
    }
}

/// Why a call to Redis did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis answered with an error, or the connection failed.
    #[error("Redis failed: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within the configured timeout.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// A recent failure opened the circuit breaker: Redis is not tried until the cooldown ends.
    #[error("Redis is unavailable (circuit open after a recent failure)")]
    CircuitOpen,
    /// Redis answered something this crate did not write.
    #[error("unexpected answer from Redis: {0}")]
    Unexpected(&'static str),
}

/// A shared Redis connection with a timeout on every call and a circuit breaker.
pub struct Redis {
    client: redis::Client,
    conn: RwLock<Option<ConnectionManager>>,
    connecting: tokio::sync::Mutex<()>,
    breaker: Breaker,
    config: RedisConfig,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("namespace", &self.config.namespace)
            .field("available", &self.is_available())
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Checks the URL; connects on first use (a Redis down at start is one more failure the
    /// callers fall back from, not a reason not to start).
    pub fn new(config: RedisConfig) -> Result<Redis, CacheError> {
        let client = redis::Client::open(config.url.as_str()).map_err(CacheError::Url)?;
        Ok(Redis {
            client,
            conn: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            breaker: Breaker::new(config.cooldown),
            config,
        })
    }

    /// Whether calls go to Redis now (false while the circuit breaker is open).
    pub fn is_available(&self) -> bool {
        !self.breaker.is_open()
    }

    /// Failures so far (each one opened the breaker).
    pub fn failures(&self) -> u64 {
        self.breaker.failures()
    }

    /// Checks that Redis answers (`PING`).
    pub async fn ping(&self) -> Result<(), CacheError> {
        self.call(|mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await?;
            Ok(())
        })
        .await
    }

    fn key(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}:{}", self.config.namespace, rest)
    }

    /// Runs `op` on the connection under the timeout and the breaker.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, CacheError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, CacheError>>,
    {
        if self.breaker.is_open() {
            return Err(CacheError::CircuitOpen);
        }
        let timeout = self.config.timeout;
        let run = async {
            let conn = self.connection().await?;
            op(conn).await
        };
        let result = match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(CacheError::Timeout(timeout)),
        };
        match &result {
            Ok(_) => self.breaker.success(),
            // An error answer of a script is a bug here, not an outage: no reason to stop
            // calling; everything else (IO, timeout) opens the breaker.
            Err(CacheError::Redis(e)) if e.kind() == redis::ErrorKind::ResponseError => {}
            Err(_) => self.breaker.failure(),
        }
        result
    }

    async fn connection(&self) -> Result<ConnectionManager, CacheError> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.config.timeout)
            .set_response_timeout(self.config.timeout)
            .set_number_of_retries(1)
            .set_max_delay(
                self.config
                    .cooldown
                    .as_millis()
                    .try_into()
                    .unwrap_or(u64::MAX),
            );
        let conn = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *self
            .conn
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(conn.clone());
        Ok(conn)
    }

    fn current(&self) -> Option<ConnectionManager> {
        self.conn
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
