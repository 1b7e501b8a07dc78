//! The server's clock: the one `now` of flag evaluation (relative dates, behavioural windows)
//! and of capture (event timestamps).
//!
//! The system clock by default. Tests use an adjustable clock ([`Clock::adjustable`]) and move
//! it forward instead of sleeping; the `vexil` binary offers it only when built with its
//! `test-clock` feature, so no normal build can run a server whose time a request can change.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// A source of `now`: the system clock, or the system clock plus an offset tests advance.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system time; `None` for the plain system clock.
    offset_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that starts at the system time and moves ahead with [`Clock::advance`] (shared
    /// by every clone).
    pub fn adjustable() -> Clock {
        Clock {
            offset_ms: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// Whether [`Clock::advance`] can move this clock.
    pub fn is_adjustable(&self) -> bool {
        self.offset_ms.is_some()
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        match &self.offset_ms {
            None => now,
            Some(offset) => now
                .checked_add_signed(Duration::milliseconds(offset.load(Ordering::Acquire)))
                .unwrap_or(now),
        }
    }

    /// Moves an adjustable clock `by` ahead; returns `false` (and does nothing) on the system
    /// clock.
    pub fn advance(&self, by: Duration) -> bool {
        match &self.offset_ms {
            None => false,
            Some(offset) => {
                offset.fetch_add(by.num_milliseconds(), Ordering::AcqRel);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_adjustable_clock_moves() {
        let system = Clock::system();
        assert!(!system.advance(Duration::hours(1)));
        assert!(system.now() - Utc::now() < Duration::seconds(5));

        let clock = Clock::adjustable();
        let shared = clock.clone();
        assert!(shared.advance(Duration::hours(1)));
        let ahead = clock.now() - Utc::now();
        assert!(ahead > Duration::minutes(59) && ahead < Duration::minutes(61));
    }
}
