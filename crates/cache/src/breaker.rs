//! The circuit breaker: after a failure, calls fail at once until a cooldown has passed, so a
//! dead Redis costs one timeout per cooldown instead of one per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Breaker {
    started: Instant,
    cooldown: Duration,
    /// Milliseconds since `started` until which calls are refused (0: closed).
    open_until: AtomicU64,
    failures: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(cooldown: Duration) -> Breaker {
        Breaker {
            started: Instant::now(),
            cooldown,
            open_until: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn is_open(&self) -> bool {
        self.now_ms() < self.open_until.load(Ordering::Relaxed)
    }

    pub(crate) fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let cooldown = u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX);
        self.open_until
            .store(self.now_ms().saturating_add(cooldown), Ordering::Relaxed);
    }

    pub(crate) fn success(&self) {
        self.open_until.store(0, Ordering::Relaxed);
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}
