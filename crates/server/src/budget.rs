//! Bounded work before trust: per-endpoint body limits and one process-wide budget of request
//! body bytes held or being decoded at once.
//!
//! A body is charged to the budget as its chunks arrive and, before it is decompressed, for the
//! most its decoded text may take (the endpoint's limit); the charge is released when the
//! extractor is done. So however many clients send bodies at once, the bytes they make the
//! process hold stay under the budget (plus one endpoint limit, see [`DecodeBudget::new`]).
//! A request that cannot get its share within a short wait is shed with the overload 503
//! (`Retry-After: 1`). Waiting is by polling, not in a queue: a small body (a `/flags` call)
//! gets through as soon as any room frees up instead of waiting behind large ones.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;
use vexil_wire::decode::Decoder;

use crate::error::ApiError;

/// Default budget: 64 MiB of bodies held or being decoded at once.
pub const DEFAULT_DECODE_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// Default limit on a `/flags` or `/decide` body, raw and decoded: 2 MiB. A real SDK request is
/// a distinct id and person/group properties, a few KiB.
pub const DEFAULT_MAX_FLAGS_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Most a management request without an `Authorization` header may send: its key can then only
/// be in the body (`personal_api_key`), which is read before anything is trusted.
pub const MAX_UNAUTHENTICATED_BODY_BYTES: usize = 64 * 1024;

/// How long a request waits for its share of the budget before it is shed.
const BUDGET_WAIT: Duration = Duration::from_secs(1);

/// How often a waiting request looks for room again.
const BUDGET_POLL: Duration = Duration::from_millis(5);

/// The budget is counted in KiB so that a `u32` permit count covers any body.
const UNIT: usize = 1024;

/// Which limit a body is read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/flags`, `/decide`.
    Flags,
    /// Every capture path, v1 included.
    Capture,
    /// A management request before its key is known to be valid.
    Unauthenticated,
}

/// The body limits and the decode budget, built once from the settings.
#[derive(Debug)]
pub struct Bodies {
    flags: Decoder,
    capture: Decoder,
    unauthenticated: Decoder,
    /// The process-wide budget.
    pub budget: DecodeBudget,
}

impl Bodies {
    /// Limits of `max_flags` bytes for `/flags` and `max_capture` for capture (raw and decoded
    /// alike), and a budget of `budget` bytes (0: none).
    pub fn new(max_flags: usize, max_capture: usize, budget: usize) -> Self {
        Bodies {
            flags: Decoder::new(max_flags),
            capture: Decoder::new(max_capture),
            unauthenticated: Decoder::new(MAX_UNAUTHENTICATED_BODY_BYTES),
            budget: DecodeBudget::new(budget),
        }
    }

    /// The decoder of `endpoint`, whose cap is also its limit on the raw body.
    pub fn decoder(&self, endpoint: Endpoint) -> &Decoder {
        match endpoint {
            Endpoint::Flags => &self.flags,
            Endpoint::Capture => &self.capture,
            Endpoint::Unauthenticated => &self.unauthenticated,
        }
    }
}

/// Bytes of request bodies held or being decoded at once, across the process.
#[derive(Debug)]
pub struct DecodeBudget {
    permits: Option<Arc<Semaphore>>,
    units: usize,
}

impl DecodeBudget {
    /// A budget of `bytes` (rounded up to KiB); 0 turns it off. One request may take the whole
    /// budget but never more: a body limit above the budget is charged as the whole budget, so
    /// the bound on held bytes is the larger of the budget and one endpoint limit.
    pub fn new(bytes: usize) -> Self {
        let units = bytes.div_ceil(UNIT).min(Semaphore::MAX_PERMITS);
        DecodeBudget {
            permits: (units > 0).then(|| Arc::new(Semaphore::new(units))),
            units,
        }
    }

    /// An empty reservation to grow as a body is read and decoded.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            permits: self.permits.clone(),
            units: self.units,
            held: None,
        }
    }
}

/// A request's share of the budget; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    permits: Option<Arc<Semaphore>>,
    units: usize,
    held: Option<OwnedSemaphorePermit>,
}

impl Reservation {
    fn held(&self) -> usize {
        self.held
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Grows the reservation to cover `bytes` in all, waiting up to a second for room; past
    /// that the request is shed (503, `Retry-After: 1`).
    pub async fn cover(&mut self, bytes: usize) -> Result<(), ApiError> {
        let Some(permits) = &self.permits else {
            return Ok(());
        };
        let wanted = bytes.div_ceil(UNIT).min(self.units);
        let Some(more) = wanted.checked_sub(self.held()).filter(|&n| n > 0) else {
            return Ok(());
        };
        let more = u32::try_from(more).unwrap_or(u32::MAX);
        let deadline = Instant::now() + BUDGET_WAIT;
        let permit = loop {
            match Arc::clone(permits).try_acquire_many_owned(more) {
                Ok(permit) => break permit,
                Err(TryAcquireError::Closed) => return Ok(()),
                Err(TryAcquireError::NoPermits) if Instant::now() >= deadline => {
                    return Err(ApiError::overloaded());
                }
                Err(TryAcquireError::NoPermits) => tokio::time::sleep(BUDGET_POLL).await,
            }
        };
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }

    /// Gives back what is held beyond `bytes`.
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = bytes.div_ceil(UNIT);
        if let Some(held) = &mut self.held {
            let surplus = held.num_permits().saturating_sub(keep);
            // Dropping the split-off part returns it to the budget.
            drop(held.split(surplus));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reservation_grows_shrinks_and_is_returned_on_drop() {
        let budget = DecodeBudget::new(8 * UNIT);
        let mut a = budget.reservation();
        a.cover(5 * UNIT).await.unwrap();
        a.cover(3 * UNIT).await.unwrap();
        assert_eq!(a.held(), 5, "covering less keeps what is held");
        a.shrink_to(UNIT + 1);
        assert_eq!(a.held(), 2);
        let mut b = budget.reservation();
        b.cover(6 * UNIT).await.unwrap();
        drop(a);
        b.cover(8 * UNIT).await.unwrap();
        assert_eq!(b.held(), 8);
    }

    #[tokio::test]
    async fn a_full_budget_sheds_after_the_wait() {
        let budget = DecodeBudget::new(4 * UNIT);
        let mut a = budget.reservation();
        a.cover(100 * UNIT).await.unwrap();
        assert_eq!(
            a.held(),
            4,
            "a body over the budget takes all of it, not more"
        );
        let err = budget.reservation().cover(1).await.unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.retry_after, Some(1));
    }

    #[tokio::test]
    async fn no_budget_never_waits() {
        let budget = DecodeBudget::new(0);
        budget.reservation().cover(usize::MAX).await.unwrap();
    }
}
