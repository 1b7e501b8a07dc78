//! Overload protection: evaluations are shed at once (503 with `Retry-After`) instead of
//! queueing until every answer is late — past a cap on evaluations in flight, while the
//! runtime runs late, and a share of them while the workers have had no idle moment for too
//! long and ready connections wait for them (saturation) — and per-project
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

use std::cell::Cell;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit};
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
    /// A share of evaluations is shed while the runtime's workers have not been idle for
    /// longer than this and connections with a request to read wait half as long for a worker,
    /// growing while it lasts and shrinking once they idle again or requests stop waiting.
    /// Under overload the backlog is connections whose request has arrived, queued for a
    /// worker, where the in-flight count does not see it; a closed-loop client that merely
    /// keeps the server at capacity keeps the workers busy but its few connections wait
    /// little, and does not trip it. Needs `idleness`; zero turns it off.
    pub max_busy: Duration,
    /// The runtime's idle time, measured by its park hooks ([`Idleness`]); `None` (a runtime
    /// without the hooks) turns the saturation signal off.
    pub idleness: Option<Arc<Idleness>>,
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
            max_busy: Duration::from_millis(100),
            idleness: None,
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
    shed_saturated: AtomicU64,
    /// By [`Bucket`].
    limited: [AtomicU64; 3],
    /// Checks answered by the local bucket because the shared one (Redis) failed.
    local_fallbacks: AtomicU64,
}

impl Refusals {
    /// Evaluations shed: `(reason, count)`.
    pub fn shed(&self) -> [(&'static str, u64); 3] {
        [
            ("in_flight", self.shed_in_flight.load(Ordering::Relaxed)),
            ("queue_delay", self.shed_queue_delay.load(Ordering::Relaxed)),
            ("saturated", self.shed_saturated.load(Ordering::Relaxed)),
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
    saturation: Option<Saturation>,
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
            saturation: limits
                .idleness
                .clone()
                .filter(|_| !limits.max_busy.is_zero())
                .map(|idleness| Saturation::new(idleness, limits.max_busy)),
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

    /// Where the connection layer reports how long ready connections wait for a worker, when
    /// the saturation signal is on.
    pub fn ready_wait(&self) -> Option<Arc<ReadyWait>> {
        self.saturation.as_ref().map(|s| Arc::clone(&s.ready_wait))
    }

    /// Whether a `method` request for `path`, just read by the connection layer, is among the share of
    /// evaluations shed for saturation (counted if so). Refusing it there, before routing,
    /// middleware and the access log, keeps a refusal cheap: under overload refusals are most
    /// of the work.
    pub fn sheds_at_admission(&self, method: &axum::http::Method, path: &str) -> bool {
        // A CORS preflight is never shed: refused, it would read as a CORS failure.
        let shed = method != axum::http::Method::OPTIONS
            && is_evaluation(path)
            && self.saturation.as_ref().is_some_and(Saturation::sheds);
        if shed {
            self.refusals.shed_saturated.fetch_add(1, Ordering::Relaxed);
        }
        shed
    }

    /// Requests refused so far.
    pub fn refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// The share of evaluations shed for saturation right now, from 0.0 to 1.0.
    pub fn saturation_shed_share(&self) -> f64 {
        self.saturation.as_ref().map_or(0.0, |s| {
            f64::from(s.share.load(Ordering::Relaxed)) / f64::from(SCALE)
        })
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

/// The paths of `/flags` and `/decide` (mounted behind [`shed`] by the router): one list, so
/// the connection layer's early refusal and the routes cannot drift apart.
pub const FLAGS_PATHS: [&str; 4] = ["/flags", "/flags/", "/decide", "/decide/"];

/// The OpenFeature bulk evaluation path; single-flag evaluation is below it (`…/{key}`).
pub const OFREP_EVALUATE_PATH: &str = "/ofrep/v1/evaluate/flags";

/// Whether `path` is one of the evaluation endpoints.
fn is_evaluation(path: &str) -> bool {
    FLAGS_PATHS.contains(&path) || path.starts_with(OFREP_EVALUATE_PATH)
}

/// Marks a response as a shed request's: counted by the shed metrics, so the access log does
/// not also write a line for each (under overload that would be most of its work).
#[derive(Debug, Clone, Copy)]
pub struct Shed;

/// The 503 of a shed evaluation.
impl IntoResponse for Shed {
    fn into_response(self) -> Response {
        shed_response()
    }
}

/// The 503 of a shed evaluation, marked [`Shed`].
pub(crate) fn shed_response() -> Response {
    let mut response = ApiError::overloaded().into_response();
    response.extensions_mut().insert(Shed);
    response
}

/// Middleware of the evaluation routes: runs the request if [`Overload::admit`] lets it in,
/// else answers 503 at once.
pub async fn shed(State(overload): State<Arc<Overload>>, req: Request, next: Next) -> Response {
    match overload.admit() {
        Ok(_slot) => next.run(req).await,
        Err(shed) => shed.into_response(),
    }
}

impl Overload {
    /// An evaluation's way in: its in-flight slot (none without an in-flight cap), held until
    /// dropped, or [`Shed`] (a 503) when the runtime runs late or every slot is taken. (The
    /// share shed for saturation is refused earlier, by the connection layer:
    /// [`Overload::sheds_at_admission`].)
    pub fn admit(&self) -> Result<Option<SemaphorePermit<'_>>, Shed> {
        if self.lag.as_ref().is_some_and(Lag::late) {
            self.refusals
                .shed_queue_delay
                .fetch_add(1, Ordering::Relaxed);
            return Err(Shed);
        }
        let Some(slots) = &self.in_flight else {
            return Ok(None);
        };
        match slots.try_acquire() {
            Ok(slot) => Ok(Some(slot)),
            Err(_) => {
                self.refusals.shed_in_flight.fetch_add(1, Ordering::Relaxed);
                Err(Shed)
            }
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

/// Measures the runtime's lateness and saturation every [`TICK`] while the server runs.
pub async fn watch_lag(overload: Arc<Overload>) {
    if overload.lag.is_none() && overload.saturation.is_none() {
        return;
    }
    loop {
        let before = Instant::now();
        tokio::time::sleep(TICK).await;
        let late = before.elapsed().saturating_sub(TICK);
        if let Some(saturation) = &overload.saturation {
            saturation.tick();
        }
        let Some(lag) = &overload.lag else {
            continue;
        };
        let now = lag.now_ms();
        lag.last_tick.store(now, Ordering::Relaxed);
        if late > lag.max {
            let late = u64::try_from(late.as_millis()).unwrap_or(u64::MAX);
            lag.shed_until
                .store(now.saturating_add(late), Ordering::Relaxed);
        }
    }
}

/// How long the runtime's worker threads had nothing to do: the binary feeds it from the
/// runtime's `on_thread_park` / `on_thread_unpark` hooks ([`Idleness::parking`],
/// [`Idleness::unparked`]).
#[derive(Debug, Default)]
pub struct Idleness {
    /// Nanoseconds spent parked so far, all workers together (parks that have ended).
    parked_ns: AtomicU64,
    /// Workers parked right now.
    parked_now: AtomicUsize,
}

thread_local! {
    /// When this worker thread parked, while it is parked.
    static PARKED_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

impl Idleness {
    /// The `on_thread_park` hook: this worker found nothing to do.
    pub fn parking(&self) {
        PARKED_AT.with(|at| at.set(Some(Instant::now())));
        self.parked_now.fetch_add(1, Ordering::Relaxed);
    }

    /// The `on_thread_unpark` hook: this worker has work again.
    pub fn unparked(&self) {
        if let Some(at) = PARKED_AT.with(Cell::take) {
            let parked = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.parked_ns.fetch_add(parked, Ordering::Relaxed);
            self.parked_now.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// How long connections whose request has arrived wait for a worker to read it: the
/// connection layer ([`crate::connection`]) times each read from the readiness wake-up of its
/// connection to the read, and the saturation controller takes the longest once per tick.
/// Under overload this is where the backlog waits — ready connections queued for the workers
/// (and past the runtime's local queue, in its global one) — while a ticker in the local queue
/// sees only a few milliseconds of it.
#[derive(Debug, Default)]
pub struct ReadyWait {
    /// The longest wait since the controller's last tick, in microseconds plus one (0: no
    /// read was timed since).
    longest_us: AtomicU64,
}

impl ReadyWait {
    /// A connection with a request to read waited `waited` for a worker.
    pub fn record(&self, waited: Duration) {
        let us = u64::try_from(waited.as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        // Most waits are shorter than the longest already seen: read before writing.
        if us > self.longest_us.load(Ordering::Relaxed) {
            self.longest_us.fetch_max(us, Ordering::Relaxed);
        }
    }
}

/// Shares are fixed-point fractions of `SCALE`.
const SCALE: u32 = 1 << 16;
/// Added to the shed share per busy tick past `max_busy` (≈ 6%: 3× overload is met in ~120 ms).
const STEP_UP: u32 = SCALE / 16;
/// The most ever shed for saturation: a few requests always get through to show recovery.
const MAX_SHARE: u32 = SCALE - SCALE / 64;
/// Parked for less than this in a tick, the tick was busy: a worker that parks with events
/// already pending comes straight back, so a busy runtime still parks for a few µs at a time.
const IDLE_PER_TICK: Duration = Duration::from_micros(200);
/// Taken from the shed share per tick while the workers are busy but requests do not wait.
const STEP_DOWN: u32 = SCALE / 64;

/// The saturation controller. Busy workers alone do not mean overload: a closed-loop client
/// (a fixed number of connections, each waiting for its answer) keeps a server at capacity
/// busy, but the queue it builds is bounded by its connections, so each waits little. Overload
/// is busy **and** waiting: while the workers have had no idle moment for longer than
/// `max_busy` and a connection whose request had arrived waited half of that for a worker
/// ([`ReadyWait`]), the share of evaluations shed grows by [`STEP_UP`] per tick; a busy tick
/// without such a wait takes [`STEP_DOWN`] off it and each tick with idle time a quarter
/// (additive increase, multiplicative decrease), so it settles near the share the server
/// cannot serve and lets go soon after the overload ends.
struct Saturation {
    idleness: Arc<Idleness>,
    ready_wait: Arc<ReadyWait>,
    max_busy: Duration,
    started: Instant,
    /// `Idleness::parked_ns` at the previous tick.
    last_parked_ns: AtomicU64,
    /// Milliseconds since `started`: the previous tick.
    last_tick_ms: AtomicU64,
    /// Milliseconds since `started` since when the workers have not idled (`NOT_BUSY`: they
    /// idled in the last tick).
    busy_since_ms: AtomicU64,
    /// The share of evaluations to shed, out of `SCALE`.
    share: AtomicU32,
}

const NOT_BUSY: u64 = u64::MAX;

impl Saturation {
    fn new(idleness: Arc<Idleness>, max_busy: Duration) -> Self {
        Saturation {
            idleness,
            ready_wait: Arc::default(),
            max_busy,
            started: Instant::now(),
            last_parked_ns: AtomicU64::new(0),
            last_tick_ms: AtomicU64::new(0),
            busy_since_ms: AtomicU64::new(NOT_BUSY),
            share: AtomicU32::new(0),
        }
    }

    /// One tick of the controller (only [`watch_lag`] calls it).
    fn tick(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let longest = self.ready_wait.longest_us.swap(0, Ordering::Relaxed);
        let waited = longest.checked_sub(1).map(Duration::from_micros);
        self.tick_at(now, waited);
    }

    /// A tick at `now` milliseconds since `started`; since the previous one, a connection with
    /// a request to read waited at most `waited` for a worker (`None`: no read was timed — a
    /// busy tick without one says nothing either way, and leaves the share as it is).
    fn tick_at(&self, now: u64, waited: Option<Duration>) {
        let previous_tick = self.last_tick_ms.swap(now, Ordering::Relaxed);
        let parked = self.idleness.parked_ns.load(Ordering::Relaxed);
        let idle = parked.saturating_sub(self.last_parked_ns.swap(parked, Ordering::Relaxed));
        let busy = idle < u64::try_from(IDLE_PER_TICK.as_nanos()).unwrap_or(u64::MAX)
            && self.idleness.parked_now.load(Ordering::Relaxed) == 0;
        let share = self.share.load(Ordering::Relaxed);
        let share = if busy {
            let mut since = self.busy_since_ms.load(Ordering::Relaxed);
            if since == NOT_BUSY {
                since = previous_tick;
                self.busy_since_ms.store(since, Ordering::Relaxed);
            }
            let max_busy = u64::try_from(self.max_busy.as_millis()).unwrap_or(u64::MAX);
            match waited {
                Some(waited) if waited < self.max_busy / 2 => share.saturating_sub(STEP_DOWN),
                Some(_) if now.saturating_sub(since) > max_busy => {
                    share.saturating_add(STEP_UP).min(MAX_SHARE)
                }
                _ => share,
            }
        } else {
            self.busy_since_ms.store(NOT_BUSY, Ordering::Relaxed);
            share.saturating_mul(3) / 4
        };
        self.share.store(share, Ordering::Relaxed);
    }

    /// Whether this request is among the share shed now.
    fn sheds(&self) -> bool {
        let share = self.share.load(Ordering::Relaxed);
        share > 0 && (crate::random::next_u64() % u64::from(SCALE)) < u64::from(share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long a ready connection waits for a worker behind a growing backlog.
    const WAITED: Option<Duration> = Some(Duration::from_millis(60));

    /// How long a ready connection waits for a worker of a server at capacity.
    const SHORT: Option<Duration> = Some(Duration::from_millis(2));

    fn share(s: &Saturation) -> u32 {
        s.share.load(Ordering::Relaxed)
    }

    #[test]
    fn busy_workers_whose_connections_wait_little_are_at_capacity_not_overloaded() {
        let idleness = Arc::new(Idleness::default());
        let s = Saturation::new(Arc::clone(&idleness), Duration::from_millis(100));
        // A closed-loop client keeps every worker busy, but its queue is bounded by its
        // connections: each waits a few milliseconds for a worker, under half of `max_busy`.
        for t in 1..=100 {
            s.tick_at(t * 10, SHORT);
        }
        assert_eq!(share(&s), 0);
        // Overloaded for a while, then waits short again while still busy: the share runs down.
        for t in 101..=130 {
            s.tick_at(t * 10, WAITED);
        }
        let overloaded = share(&s);
        assert!(overloaded > 0);
        s.tick_at(1_310, SHORT);
        assert_eq!(share(&s), overloaded - STEP_DOWN);
        // A tick in which no read was timed changes nothing.
        s.tick_at(1_320, None);
        assert_eq!(share(&s), overloaded - STEP_DOWN);
        for t in 133..=300 {
            s.tick_at(t * 10, SHORT);
        }
        assert_eq!(share(&s), 0);
    }

    #[test]
    fn the_shed_share_grows_while_busy_and_falls_once_idle() {
        let idleness = Arc::new(Idleness::default());
        let s = Saturation::new(Arc::clone(&idleness), Duration::from_millis(100));
        // No idle time: nothing is shed until the workers have been busy for over 100 ms.
        for t in 1..=10 {
            s.tick_at(t * 10, WAITED);
        }
        assert_eq!(share(&s), 0);
        s.tick_at(110, WAITED);
        assert_eq!(share(&s), STEP_UP);
        for t in 12..=40 {
            s.tick_at(t * 10, WAITED);
        }
        assert_eq!(share(&s), MAX_SHARE, "capped below everything");
        assert!((0..1_000).filter(|_| s.sheds()).count() > 900);
        // Idle time in every tick: the share falls by a quarter per tick, to nothing.
        idleness.parked_ns.fetch_add(1_000_000, Ordering::Relaxed);
        s.tick_at(410, WAITED);
        assert_eq!(share(&s), MAX_SHARE * 3 / 4);
        for t in 42..=90 {
            idleness.parked_ns.fetch_add(1_000_000, Ordering::Relaxed);
            s.tick_at(t * 10, WAITED);
        }
        assert_eq!(share(&s), 0);
        assert!(!(0..1_000).any(|_| s.sheds()));
        // Busy again: the 100 ms count starts afresh.
        for t in 91..=100 {
            s.tick_at(t * 10, WAITED);
        }
        assert_eq!(share(&s), 0);
    }

    #[test]
    fn parks_of_a_few_microseconds_are_not_idle_time_but_a_parked_worker_is() {
        let idleness = Arc::new(Idleness::default());
        let s = Saturation::new(Arc::clone(&idleness), Duration::from_millis(20));
        // A busy runtime parks with events already pending and comes straight back.
        for t in 1..=10 {
            idleness.parked_ns.fetch_add(50_000, Ordering::Relaxed);
            s.tick_at(t * 10, WAITED);
        }
        let busy = share(&s);
        assert!(busy > 0);
        // A worker asleep right now (its park not yet summed) is idle capacity.
        let asleep = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    idleness.parking();
                    s.tick_at(110, WAITED);
                    let share = share(&s);
                    idleness.unparked();
                    share
                })
                .join()
        });
        assert!(matches!(asleep, Ok(n) if n == busy * 3 / 4), "{asleep:?}");
        assert_eq!(idleness.parked_now.load(Ordering::Relaxed), 0);
    }
}
