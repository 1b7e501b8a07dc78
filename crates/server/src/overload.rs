//! Overload protection: a cap on evaluations in flight, past which requests are shed at once
//! (503 with `Retry-After`) instead of queueing until every answer is late, and per-project
//! token buckets for evaluation, capture and the management API (429 with `Retry-After`, the
//! body PostHog sends).
//!
//! Buckets are keyed by the id of a project whose token or key already checked out, so their
//! number is bounded by the number of projects: unknown tokens are 401s and never get one.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use vexil_store::ProjectId;

use crate::error::ApiError;

/// A token bucket: a sustained rate and a burst. A zero rate turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests allowed at once on a full bucket (at least one).
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const OFF: Rate = Rate {
        per_second: 0,
        burst: 0,
    };
}

/// The overload settings.
#[derive(Debug, Clone)]
pub struct OverloadLimits {
    /// Most `/flags` and `/decide` requests handled at once; the next ones are shed (503).
    /// Zero turns shedding off.
    pub max_in_flight_evaluations: usize,
    /// Per project: `/flags` and `/decide` evaluations.
    pub evaluation_rate: Rate,
    /// Per project: capture requests (a batch counts once).
    pub capture_rate: Rate,
    /// Per project: management API requests.
    pub management_rate: Rate,
}

impl Default for OverloadLimits {
    /// Generous: far above what one process serves for one project, so that they only ever
    /// stop a runaway client.
    fn default() -> Self {
        OverloadLimits {
            max_in_flight_evaluations: 1_024,
            evaluation_rate: Rate {
                per_second: 50_000,
                burst: 100_000,
            },
            capture_rate: Rate {
                per_second: 20_000,
                burst: 40_000,
            },
            management_rate: Rate {
                per_second: 1_000,
                burst: 2_000,
            },
        }
    }
}

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy)]
pub enum Bucket {
    /// `/flags`, `/decide`.
    Evaluation,
    /// The capture endpoints.
    Capture,
    /// The management API.
    Management,
}

/// The live limiters, shared by every request.
pub struct Overload {
    in_flight: Option<Arc<Semaphore>>,
    evaluation: Option<DefaultKeyedRateLimiter<ProjectId>>,
    capture: Option<DefaultKeyedRateLimiter<ProjectId>>,
    management: Option<DefaultKeyedRateLimiter<ProjectId>>,
}

impl std::fmt::Debug for Overload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overload").finish_non_exhaustive()
    }
}

impl Overload {
    /// Builds the limiters the settings ask for.
    pub fn new(limits: &OverloadLimits) -> Self {
        let bucket = |rate: Rate| {
            let per_second = NonZeroU32::new(rate.per_second)?;
            let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
            Some(RateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            ))
        };
        Overload {
            in_flight: (limits.max_in_flight_evaluations > 0)
                .then(|| Arc::new(Semaphore::new(limits.max_in_flight_evaluations))),
            evaluation: bucket(limits.evaluation_rate),
            capture: bucket(limits.capture_rate),
            management: bucket(limits.management_rate),
        }
    }

    /// Takes one request from `project`'s bucket, or the 429 to answer.
    pub fn check(&self, bucket: Bucket, project: ProjectId) -> Result<(), ApiError> {
        let limiter = match bucket {
            Bucket::Evaluation => &self.evaluation,
            Bucket::Capture => &self.capture,
            Bucket::Management => &self.management,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(&project).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::rate_limited(retry_after(wait))
        })
    }
}

/// Whole seconds to wait, rounded up, at least one (`Retry-After` has no fractions).
fn retry_after(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1_000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Middleware of the evaluation routes: runs the request if an in-flight slot is free, else
/// answers 503 at once.
pub async fn shed(State(overload): State<Arc<Overload>>, req: Request, next: Next) -> Response {
    let Some(slots) = &overload.in_flight else {
        return next.run(req).await;
    };
    match slots.try_acquire() {
        Ok(_slot) => next.run(req).await,
        Err(_) => ApiError::overloaded().into_response(),
    }
}
