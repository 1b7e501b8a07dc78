//! Overload protection: evaluations are shed at once (503 with `Retry-After`) instead of
//! queueing until every answer is late — past a cap on evaluations in flight, and while the
//! runtime runs late — and per-project
//! token buckets for evaluation, capture and the management API (429 with `Retry-After`, the
//! body PostHog sends).
//!
//! Buckets are keyed by the id of a project whose token or key already checked out, so their
//! number is bounded by the number of projects: unknown tokens are 401s and never get one.
//!
//! With Redis (`--redis-url`) the buckets are shared by every node ([`vexil_cache::Redis::take`],
//! one round trip per request), so N nodes together allow what one would. When Redis fails,
//! or its circuit breaker is open, each node falls back to its own local bucket (so the
//! deployment allows up to N times the rate until Redis answers again).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use vexil_cache::Redis;
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
    /// Evaluations are also shed while the runtime runs later than this. An evaluation is
    /// CPU work that does not wait, so under overload requests do not pile up *in* the handler
    /// (the in-flight count stays low) but before it, as ready tasks and unread sockets; how
    /// late a 10 ms ticker wakes up measures that queue. Zero turns it off.
    pub max_queue_delay: Duration,
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
            max_queue_delay: Duration::from_millis(500),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// `/flags`, `/decide`.
    Evaluation,
    /// The capture endpoints.
    Capture,
    /// The management API.
    Management,
}

impl Bucket {
    /// The bucket's name (in metrics and in Redis keys).
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Evaluation => "evaluation",
            Bucket::Capture => "capture",
            Bucket::Management => "management",
        }
    }
}

/// Requests refused so far, by cause (read by `/metrics`).
#[derive(Debug, Default)]
pub struct Refusals {
    shed_in_flight: AtomicU64,
    shed_queue_delay: AtomicU64,
    /// By [`Bucket`].
    limited: [AtomicU64; 3],
    /// Checks answered by the local bucket because the shared one (Redis) failed.
    local_fallbacks: AtomicU64,
}

impl Refusals {
    /// Evaluations shed: `(reason, count)`.
    pub fn shed(&self) -> [(&'static str, u64); 2] {
        [
            ("in_flight", self.shed_in_flight.load(Ordering::Relaxed)),
            ("queue_delay", self.shed_queue_delay.load(Ordering::Relaxed)),
        ]
    }

    /// Requests rate-limited: `(bucket, count)`.
    pub fn limited(&self) -> [(&'static str, u64); 3] {
        let n = |b: Bucket| self.limited[b as usize].load(Ordering::Relaxed);
        [Bucket::Evaluation, Bucket::Capture, Bucket::Management].map(|b| (b.name(), n(b)))
    }

    /// Rate-limit checks answered locally because the shared buckets were unavailable.
    pub fn local_fallbacks(&self) -> u64 {
        self.local_fallbacks.load(Ordering::Relaxed)
    }
}

/// The live limiters, shared by every request.
pub struct Overload {
    refusals: Refusals,
    in_flight: Option<Arc<Semaphore>>,
    lag: Option<Lag>,
    evaluation: Option<DefaultKeyedRateLimiter<ProjectId>>,
    capture: Option<DefaultKeyedRateLimiter<ProjectId>>,
    management: Option<DefaultKeyedRateLimiter<ProjectId>>,
    rates: [Rate; 3],
    shared: Option<Arc<Redis>>,
}

impl std::fmt::Debug for Overload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overload").finish_non_exhaustive()
    }
}

impl Overload {
    /// Builds the limiters the settings ask for; the buckets are shared through `redis` when
    /// given (the local ones then only answer while it fails).
    pub fn new(limits: &OverloadLimits, redis: Option<Arc<Redis>>) -> Self {
        let bucket = |rate: Rate| {
            let per_second = NonZeroU32::new(rate.per_second)?;
            let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
            Some(RateLimiter::keyed(
                Quota::per_second(per_second).allow_burst(burst),
            ))
        };
        Overload {
            refusals: Refusals::default(),
            in_flight: (limits.max_in_flight_evaluations > 0)
                .then(|| Arc::new(Semaphore::new(limits.max_in_flight_evaluations))),
            lag: (!limits.max_queue_delay.is_zero()).then(|| Lag::new(limits.max_queue_delay)),
            evaluation: bucket(limits.evaluation_rate),
            capture: bucket(limits.capture_rate),
            management: bucket(limits.management_rate),
            rates: [
                limits.evaluation_rate,
                limits.capture_rate,
                limits.management_rate,
            ],
            shared: redis,
        }
    }

    /// Requests refused so far.
    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// Takes one request from `project`'s bucket, or the 429 to answer: from the shared bucket
    /// when there is one and Redis answers, else from this node's.
    pub async fn check(&self, bucket: Bucket, project: ProjectId) -> Result<(), ApiError> {
        let limiter = match bucket {
            Bucket::Evaluation => &self.evaluation,
            Bucket::Capture => &self.capture,
            Bucket::Management => &self.management,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if let Some(redis) = &self.shared {
            let rate = self.rates[bucket as usize];
            match redis
                .take(project.0, bucket.name(), rate.per_second, rate.burst)
                .await
            {
                Ok(taken) if taken.allowed => return Ok(()),
                Ok(taken) => return Err(self.limited(bucket, taken.retry_after)),
                Err(e) => {
                    self.refusals
                        .local_fallbacks
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "shared rate limit unavailable; local bucket used");
                }
            }
        }
        limiter.check_key(&project).map_err(|not_until| {
            self.limited(
                bucket,
                not_until.wait_time_from(DefaultClock::default().now()),
            )
        })
    }

    fn limited(&self, bucket: Bucket, wait: Duration) -> ApiError {
        self.refusals.limited[bucket as usize].fetch_add(1, Ordering::Relaxed);
        ApiError::rate_limited(retry_after(wait))
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
    if overload.lag.as_ref().is_some_and(Lag::late) {
        overload
            .refusals
            .shed_queue_delay
            .fetch_add(1, Ordering::Relaxed);
        return ApiError::overloaded().into_response();
    }
    let Some(slots) = &overload.in_flight else {
        return next.run(req).await;
    };
    match slots.try_acquire() {
        Ok(_slot) => next.run(req).await,
        Err(_) => {
            overload
                .refusals
                .shed_in_flight
                .fetch_add(1, Ordering::Relaxed);
            ApiError::overloaded().into_response()
        }
    }
}

/// How late the runtime runs: a ticker records when it last woke up and, when it woke up late,
/// sheds until as long again has passed (a late runtime drains its queue at about the rate it
/// built it up).
struct Lag {
    max: Duration,
    started: Instant,
    /// Milliseconds since `started`: the ticker's last wake-up.
    last_tick: AtomicU64,
    /// Milliseconds since `started` until which evaluations are shed.
    shed_until: AtomicU64,
}

/// The ticker's period.
const TICK: Duration = Duration::from_millis(10);

impl Lag {
    fn new(max: Duration) -> Self {
        Lag {
            max,
            started: Instant::now(),
            last_tick: AtomicU64::new(0),
            shed_until: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the runtime runs late now: the ticker saw it late recently, or has not woken up
    /// for longer than it should.
    fn late(&self) -> bool {
        let now = self.now_ms();
        let max = u64::try_from(self.max.as_millis()).unwrap_or(u64::MAX);
        let tick = u64::try_from(TICK.as_millis()).unwrap_or(0);
        now < self.shed_until.load(Ordering::Relaxed)
            || now.saturating_sub(self.last_tick.load(Ordering::Relaxed)) > tick + max
    }
}

/// Measures the runtime's lateness every [`TICK`] while the server runs.
pub async fn watch_lag(overload: Arc<Overload>) {
    let Some(lag) = &overload.lag else {
        return;
    };
    loop {
        let before = Instant::now();
        tokio::time::sleep(TICK).await;
        let late = before.elapsed().saturating_sub(TICK);
        let now = lag.now_ms();
        lag.last_tick.store(now, Ordering::Relaxed);
        if late > lag.max {
            let late = u64::try_from(late.as_millis()).unwrap_or(u64::MAX);
            lag.shed_until
                .store(now.saturating_add(late), Ordering::Relaxed);
        }
    }
}
