//! Prometheus metrics: what the request path counts (plain atomics in handles registered before
//! the request that uses them, so recording takes no lock and looks up no label), and
//! `GET /metrics`, which renders those and the state other modules keep anyway (writer
//! restarts, queue depth, stale projects, snapshot versions) in the Prometheus text format.
//!
//! Per-flag evaluation counts live in one counter per `(project, flag id)`, shared by every
//! snapshot of the project: a snapshot resolves its flags' counters once, on its first
//! evaluation ([`Metrics::count_evaluations`]), and an evaluation then adds to them by flag
//! position. Counts therefore survive snapshot swaps (a flag edit keeps its id) and are
//! labelled with the flag's current key when scraped.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use vexil_engine::{Evaluation, ReasonCode};
use vexil_store::{ProjectId, StoreError};

use crate::access::AccessLog;
use crate::snapshot::{CatchUp, ProjectSnapshot};
use crate::state::AppState;

/// Upper bounds of the latency histograms, in nanoseconds: 50 µs to 1 s, sub-millisecond
/// resolution where `/flags` answers.
const LATENCY_BOUNDS_NS: [u64; 11] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    100_000_000,
    1_000_000_000,
];

/// Upper bounds of the capture batch-size histogram, in events.
const BATCH_BOUNDS: [u64; 11] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_000];

/// A histogram of non-negative integers (nanoseconds, events) with fixed bounds: one relaxed
/// atomic add for the bucket and one for the sum per observation.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// Non-cumulative counts: one per bound, then the overflow bucket.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    /// A latency histogram (see [`LATENCY_BOUNDS_NS`]); observe with
    /// [`Histogram::observe_duration`].
    pub fn latency() -> Self {
        Self::new(&LATENCY_BOUNDS_NS)
    }

    /// A histogram of capture batch sizes, in events.
    pub fn batch_sizes() -> Self {
        Self::new(&BATCH_BOUNDS)
    }

    fn new(bounds: &'static [u64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: u64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records a duration, in nanoseconds.
    pub fn observe_duration(&self, duration: Duration) {
        self.observe(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Writes the histogram, values multiplied by `scale` (1e-9 turns nanoseconds into seconds).
    fn encode(&self, encoder: &mut MetricEncoder<'_>, scale: f64) -> std::fmt::Result {
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .map(|bound| *bound as f64 * scale)
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum.load(Ordering::Relaxed) as f64 * scale;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// Nanoseconds to seconds.
const SECONDS: f64 = 1e-9;

/// The methods requests are counted by; anything else is `other`.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other",
];

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::PATCH => 3,
        Method::DELETE => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// Status classes requests are counted by.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The counts of one route and method.
#[derive(Debug)]
struct MethodStats {
    duration: Histogram,
    /// By status class (1xx to 5xx).
    statuses: [AtomicU64; 5],
}

/// The counts of one route template, by method.
#[derive(Debug)]
pub struct RouteStats {
    methods: [MethodStats; 8],
}

impl RouteStats {
    fn new() -> Self {
        RouteStats {
            methods: std::array::from_fn(|_| MethodStats {
                duration: Histogram::latency(),
                statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            }),
        }
    }

    /// Records one answered request.
    pub fn record(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        let stats = &self.methods[method_index(method)];
        stats.duration.observe_duration(elapsed);
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        stats.statuses[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// The route label of requests no route matched (404s, probes of unknown paths): one series
/// for all of them, whatever the path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A store operation timed at the server's call sites.
#[derive(Debug, Clone, Copy)]
pub enum StoreOp {
    /// The person/group lookup of an evaluation.
    EvaluationInputs,
    /// A capture batch's transaction.
    WriteCapture,
    /// Loading a project's definitions into a snapshot.
    LoadProject,
    /// Reading what changed in a project since a snapshot's revision (change propagation).
    ChangesSince,
}

impl StoreOp {
    const ALL: [StoreOp; 4] = [
        StoreOp::EvaluationInputs,
        StoreOp::WriteCapture,
        StoreOp::LoadProject,
        StoreOp::ChangesSince,
    ];

    fn label(self) -> &'static str {
        match self {
            StoreOp::EvaluationInputs => "evaluation_inputs",
            StoreOp::WriteCapture => "write_capture",
            StoreOp::LoadProject => "load_project",
            StoreOp::ChangesSince => "changes_since",
        }
    }
}

/// What started a reload of a project changed elsewhere.
#[derive(Debug, Clone, Copy)]
pub enum ReloadTrigger {
    /// The store's change feed announced a newer revision.
    Announcement,
    /// The periodic revision check found one (an announcement was missed or late, or the
    /// backend has no feed).
    Check,
}

impl ReloadTrigger {
    const ALL: [ReloadTrigger; 2] = [ReloadTrigger::Announcement, ReloadTrigger::Check];

    fn label(self) -> &'static str {
        match self {
            ReloadTrigger::Announcement => "announcement",
            ReloadTrigger::Check => "check",
        }
    }
}

/// Change propagation's counts (`crate::propagation`).
#[derive(Debug)]
pub struct PropagationStats {
    /// Announcements received from the change feed.
    announcements: AtomicU64,
    /// Times the feed (re)subscribed, and lost its connection.
    subscriptions: AtomicU64,
    losses: AtomicU64,
    /// Reloads made, by trigger.
    reloads: [AtomicU64; 2],
    /// Changes applied from the changed flags' rows (no reload), by trigger.
    applied: [AtomicU64; 2],
    /// Changes found already applied once the write lock was held (a local write).
    already_current: AtomicU64,
    /// From an announcement (or the check that found a change) to its snapshot being live.
    lag: Histogram,
}

impl PropagationStats {
    fn new() -> Self {
        PropagationStats {
            announcements: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            losses: AtomicU64::new(0),
            reloads: std::array::from_fn(|_| AtomicU64::new(0)),
            applied: std::array::from_fn(|_| AtomicU64::new(0)),
            already_current: AtomicU64::new(0),
            lag: Histogram::latency(),
        }
    }

    /// Counts an event of the change feed.
    pub fn feed(&self, change: vexil_store::Change) {
        let counter = match change {
            vexil_store::Change::Committed { .. } => &self.announcements,
            vexil_store::Change::Resubscribed => &self.subscriptions,
            vexil_store::Change::Lost => &self.losses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a project brought up to date (`how`), `lag` after the change was heard of.
    pub fn caught_up(&self, trigger: ReloadTrigger, how: CatchUp, lag: Duration) {
        let counter = match how {
            CatchUp::Current => {
                self.already_current.fetch_add(1, Ordering::Relaxed);
                return;
            }
            CatchUp::Applied => &self.applied[trigger as usize],
            CatchUp::Reloaded => &self.reloads[trigger as usize],
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.lag.observe_duration(lag);
    }
}

#[derive(Debug)]
struct StoreStats {
    duration: Histogram,
    errors: AtomicU64,
}

/// How one flag evaluated, counted.
#[derive(Debug, Default)]
pub struct FlagCounter {
    enabled: AtomicU64,
    disabled: AtomicU64,
    error: AtomicU64,
}

/// Every metric the server records on its own paths, shared by all requests.
#[derive(Debug)]
pub struct Metrics {
    /// Route templates seen so far; a new one is added by copy (rare: once per route).
    routes: ArcSwap<HashMap<Box<str>, Arc<RouteStats>>>,
    adding_route: Mutex<()>,
    store: [StoreStats; 4],
    /// Evaluation counts by project and flag id.
    flags: Mutex<HashMap<(ProjectId, i64), Arc<FlagCounter>>>,
    /// The sampled structured access log.
    pub access: AccessLog,
    /// Change propagation from other processes.
    pub propagation: PropagationStats,
    started: Instant,
}

impl Metrics {
    /// Empty metrics; access log lines of 2xx–4xx responses kept at `sample_rate` (0.0–1.0).
    pub fn new(sample_rate: f64) -> Self {
        Metrics {
            routes: ArcSwap::from_pointee(HashMap::new()),
            adding_route: Mutex::new(()),
            store: std::array::from_fn(|_| StoreStats {
                duration: Histogram::latency(),
                errors: AtomicU64::new(0),
            }),
            flags: Mutex::new(HashMap::new()),
            access: AccessLog::new(sample_rate),
            propagation: PropagationStats::new(),
            started: Instant::now(),
        }
    }

    /// The counts of a route template, registered on its first request.
    pub fn route(&self, template: &str) -> Arc<RouteStats> {
        if let Some(stats) = self.routes.load().get(template) {
            return Arc::clone(stats);
        }
        let _adding = self
            .adding_route
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.routes.load_full();
        if let Some(stats) = current.get(template) {
            return Arc::clone(stats);
        }
        let stats = Arc::new(RouteStats::new());
        let mut routes = HashMap::clone(&current);
        routes.insert(template.into(), Arc::clone(&stats));
        self.routes.store(Arc::new(routes));
        stats
    }

    /// Runs a store call, recording its latency and whether it failed.
    pub async fn store_call<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        let stats = &self.store[op as usize];
        stats.duration.observe_duration(started.elapsed());
        if result.is_err() {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Counts a store call that failed without completing (it timed out and was dropped).
    pub fn store_failed(&self, op: StoreOp) {
        self.store[op as usize]
            .errors
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts each flag of `evaluation` (made on `snapshot`) by its result.
    pub fn count_evaluations(&self, snapshot: &ProjectSnapshot, evaluation: &Evaluation<'_>) {
        let counters = snapshot.flag_counters(|| self.flag_counters(snapshot));
        let flags = snapshot.compiled.flags();
        // Results come in definition order, a subset of the flags: walk both once.
        let mut at = 0;
        for result in &evaluation.flags {
            while at < flags.len() && !std::ptr::eq(&*flags[at], result.flag) {
                at += 1;
            }
            let Some(counter) = counters.get(at) else {
                return;
            };
            let slot = match result.reason.code {
                ReasonCode::Error(_) => &counter.error,
                _ if result.enabled() => &counter.enabled,
                _ => &counter.disabled,
            };
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every flag's evaluations counted so far, whatever their result, by project and flag
    /// id (what [`crate::usage`] adds to the store as it grows).
    pub fn evaluation_totals(&self) -> Vec<((ProjectId, i64), u64)> {
        let all = self.flags.lock().unwrap_or_else(PoisonError::into_inner);
        all.iter()
            .map(|(id, c)| {
                let total = c.enabled.load(Ordering::Relaxed)
                    + c.disabled.load(Ordering::Relaxed)
                    + c.error.load(Ordering::Relaxed);
                (*id, total)
            })
            .collect()
    }

    /// The counters of `snapshot`'s flags, in its flag order.
    fn flag_counters(&self, snapshot: &ProjectSnapshot) -> Box<[Arc<FlagCounter>]> {
        let project = snapshot.project.id;
        let mut all = self.flags.lock().unwrap_or_else(PoisonError::into_inner);
        snapshot
            .compiled
            .flags()
            .iter()
            .map(|flag| Arc::clone(all.entry((project, flag.id())).or_default()))
            .collect()
    }
}

/// Serves `GET /metrics`: every metric in the Prometheus text format (version 0.0.4).
pub async fn render(State(state): State<AppState>) -> Response {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(state)));
    let mut body = String::with_capacity(16 * 1024);
    match prometheus_client::encoding::prometheus_text::encode(&mut body, &registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics encoding failed");
            crate::error::ApiError::internal().into_response()
        }
    }
}

/// One scrape: reads the server's state as it is now.
struct Scrape(AppState);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

/// Writes a metric without labels.
fn single(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    value: u64,
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    match metric_type {
        MetricType::Counter => metric.encode_counter::<NoLabelSet, _, u64>(&value, None),
        _ => metric.encode_gauge(&(i64::try_from(value).unwrap_or(i64::MAX))),
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let state = &self.0;
        let metrics = &state.metrics;

        let routes = metrics.routes.load();
        let mut routes: Vec<_> = routes.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        let mut family = encoder.encode_descriptor(
            "vexil_http_request_duration",
            "Time from receiving a request's head to its response head, by route template and method.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for (route, stats) in &routes {
            for (method, m) in METHODS.iter().zip(&stats.methods) {
                if m.duration.count() > 0 {
                    let labels = [("route", &***route), ("method", method)];
                    m.duration
                        .encode(&mut family.encode_family(&labels)?, SECONDS)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "vexil_http_requests",
            "Requests answered, by route template, method and status class.",
            None,
            MetricType::Counter,
        )?;
        for (route, stats) in &routes {
            for (method, m) in METHODS.iter().zip(&stats.methods) {
                for (class, n) in STATUS_CLASSES.iter().zip(&m.statuses) {
                    let n = n.load(Ordering::Relaxed);
                    if n > 0 {
                        let labels = [("route", &***route), ("method", method), ("status", class)];
                        family
                            .encode_family(&labels)?
                            .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
                    }
                }
            }
        }

        let refusals = state.overload.refusals();
        let mut family = encoder.encode_descriptor(
            "vexil_evaluations_shed",
            "Evaluation requests shed with a 503, by cause: the in-flight cap, a late runtime, or saturated workers.",
            None,
            MetricType::Counter,
        )?;
        for (reason, n) in refusals.shed() {
            family
                .encode_family(&[("reason", reason)])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        encoder
            .encode_descriptor(
                "vexil_evaluations_shed_share",
                "Share of evaluations being shed now because the workers have had no idle moment for longer than --max-busy-ms (0 to 1).",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&state.overload.saturation_shed_share())?;
        let mut family = encoder.encode_descriptor(
            "vexil_rate_limited",
            "Requests refused with a 429 by a project's rate limit, by bucket.",
            None,
            MetricType::Counter,
        )?;
        for (bucket, n) in refusals.limited() {
            family
                .encode_family(&[("bucket", bucket)])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }

        let mut family = encoder.encode_descriptor(
            "vexil_store_operation_duration",
            "Latency of store calls made by the server, by operation.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for op in StoreOp::ALL {
            metrics.store[op as usize].duration.encode(
                &mut family.encode_family(&[("operation", op.label())])?,
                SECONDS,
            )?;
        }
        let mut family = encoder.encode_descriptor(
            "vexil_store_errors",
            "Store calls that failed or timed out, by operation.",
            None,
            MetricType::Counter,
        )?;
        for op in StoreOp::ALL {
            let n = metrics.store[op as usize].errors.load(Ordering::Relaxed);
            family
                .encode_family(&[("operation", op.label())])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }

        single(
            &mut encoder,
            "vexil_ingest_queue_depth",
            "Capture requests waiting for the writer.",
            MetricType::Gauge,
            state.ingest.queue_depth(),
        )?;
        let mut family = encoder.encode_descriptor(
            "vexil_ingest_batch_events",
            "Events per capture transaction (one project's share of a batch).",
            None,
            MetricType::Histogram,
        )?;
        state.ingest.batch_events().encode(&mut family, 1.0)?;
        single(
            &mut encoder,
            "vexil_ingest_writer_restarts",
            "Times the capture writer failed and was restarted.",
            MetricType::Counter,
            state.ingest.status().restarts,
        )?;

        single(
            &mut encoder,
            "vexil_stale_projects",
            "Projects serving an older snapshot than their store while a reload is retried.",
            MetricType::Gauge,
            u64::try_from(state.catalog.stale_count()).unwrap_or(u64::MAX),
        )?;
        if let Some(redis) = &state.settings.redis {
            single(
                &mut encoder,
                "vexil_redis_available",
                "1 while Redis is called, 0 while its circuit breaker is open (state is local).",
                MetricType::Gauge,
                u64::from(redis.is_available()),
            )?;
            single(
                &mut encoder,
                "vexil_redis_failures",
                "Redis calls that failed or timed out (each opened the circuit breaker).",
                MetricType::Counter,
                redis.failures(),
            )?;
            single(
                &mut encoder,
                "vexil_rate_limit_local_fallbacks",
                "Rate-limit checks answered by this node's bucket because Redis failed.",
                MetricType::Counter,
                state.overload.refusals().local_fallbacks(),
            )?;
        }
        single(
            &mut encoder,
            "vexil_streams_open",
            "Change streams open (definitions and OFREP).",
            MetricType::Gauge,
            u64::try_from(state.catalog.listeners()).unwrap_or(u64::MAX),
        )?;
        single(
            &mut encoder,
            "vexil_snapshot_publication_failures",
            "Committed changes whose snapshot update failed at first (then retried).",
            MetricType::Counter,
            state.catalog.failed_publications(),
        )?;
        single(
            &mut encoder,
            "vexil_store_unreachable",
            "1 while the database is known to be unreachable (calls fail at once), else 0.",
            MetricType::Gauge,
            u64::from(state.store.unreachable()),
        )?;
        let last_known = state.last_known.serving();
        single(
            &mut encoder,
            "vexil_serving_last_known_definitions",
            "1 while the node serves the definitions saved on disk (it started without its store), else 0.",
            MetricType::Gauge,
            u64::from(last_known.is_some()),
        )?;
        let mut family = encoder.encode_descriptor(
            "vexil_last_known_definitions_revision",
            "Store revision of the saved definitions served, by project (only while serving them).",
            None,
            MetricType::Gauge,
        )?;
        for saved in last_known.iter().flatten() {
            let project = saved.project.to_string();
            family
                .encode_family(&[("project", project.as_str())])?
                .encode_gauge(&saved.revision)?;
        }
        let mut family = encoder.encode_descriptor(
            "vexil_last_known_definitions_saved_timestamp",
            "When the saved definitions served were written, by project (Unix time).",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for saved in last_known.iter().flatten() {
            let project = saved.project.to_string();
            family
                .encode_family(&[("project", project.as_str())])?
                .encode_gauge(&saved.saved_at.timestamp())?;
        }
        single(
            &mut encoder,
            "vexil_snapshot_save_failures",
            "Saves of a project's definitions to the snapshot directory that failed.",
            MetricType::Counter,
            state.last_known.save_failures(),
        )?;
        let published = state.catalog.published();
        let mut family = encoder.encode_descriptor(
            "vexil_snapshot_version",
            "Snapshots published for the project since this process loaded it.",
            None,
            MetricType::Gauge,
        )?;
        for p in &published {
            let project = p.snapshot.project.id.to_string();
            family
                .encode_family(&[("project", project.as_str())])?
                .encode_gauge(&i64::try_from(p.version).unwrap_or(i64::MAX))?;
        }
        let mut family = encoder.encode_descriptor(
            "vexil_snapshot_revision",
            "The store revision the project's snapshot is caught up to: every change committed at or below it is live (compare across nodes).",
            None,
            MetricType::Gauge,
        )?;
        for p in &published {
            let project = p.snapshot.project.id.to_string();
            family
                .encode_family(&[("project", project.as_str())])?
                .encode_gauge(&p.snapshot.caught_up_to())?;
        }
        let now = SystemTime::now();
        let mut family = encoder.encode_descriptor(
            "vexil_snapshot_age",
            "Time since the project's current snapshot was published.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for p in &published {
            let project = p.snapshot.project.id.to_string();
            let age = now.duration_since(p.at).unwrap_or_default().as_secs_f64();
            family
                .encode_family(&[("project", project.as_str())])?
                .encode_gauge(&age)?;
        }

        let counters = metrics.flags.lock().unwrap_or_else(PoisonError::into_inner);
        let mut family = encoder.encode_descriptor(
            "vexil_flag_evaluations",
            "Flag evaluations by project, flag key and result (enabled, disabled or error).",
            None,
            MetricType::Counter,
        )?;
        for p in &published {
            let id = p.snapshot.project.id;
            let project = id.to_string();
            for flag in p.snapshot.compiled.flags() {
                let Some(counter) = counters.get(&(id, flag.id())) else {
                    continue;
                };
                for (result, n) in [
                    ("enabled", &counter.enabled),
                    ("disabled", &counter.disabled),
                    ("error", &counter.error),
                ] {
                    let labels = [
                        ("project", project.as_str()),
                        ("flag", flag.key()),
                        ("result", result),
                    ];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&n.load(Ordering::Relaxed), None)?;
                }
            }
        }
        drop(counters);

        let propagation = &metrics.propagation;
        for (name, help, counter) in [
            (
                "vexil_change_announcements",
                "Changes announced by the store's change feed (PostgreSQL LISTEN/NOTIFY), this node's own included.",
                &propagation.announcements,
            ),
            (
                "vexil_change_feed_subscriptions",
                "Times the change feed subscribed: once at start, then once per lost connection.",
                &propagation.subscriptions,
            ),
            (
                "vexil_change_feed_losses",
                "Times the change feed lost its connection (announcements are missed until it resubscribes; the revision check covers the gap).",
                &propagation.losses,
            ),
            (
                "vexil_propagation_already_current",
                "Announced changes found already live once the project's write lock was held (this node's own writes).",
                &propagation.already_current,
            ),
        ] {
            single(&mut encoder, name, help, MetricType::Counter, counter.load(Ordering::Relaxed))?;
        }
        let mut family = encoder.encode_descriptor(
            "vexil_propagation_reloads",
            "Project reloads for changes made elsewhere, by trigger: an announcement, or the periodic revision check (a missed or late announcement).",
            None,
            MetricType::Counter,
        )?;
        for trigger in ReloadTrigger::ALL {
            let n = propagation.reloads[trigger as usize].load(Ordering::Relaxed);
            family
                .encode_family(&[("trigger", trigger.label())])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        let mut family = encoder.encode_descriptor(
            "vexil_propagation_applied",
            "Changes made elsewhere applied from the changed flags' rows without a reload, by trigger.",
            None,
            MetricType::Counter,
        )?;
        for trigger in ReloadTrigger::ALL {
            let n = propagation.applied[trigger as usize].load(Ordering::Relaxed);
            family
                .encode_family(&[("trigger", trigger.label())])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        let mut family = encoder.encode_descriptor(
            "vexil_propagation_lag",
            "From hearing of a change made elsewhere (announcement or check) to its snapshot (applied or reloaded) being live.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        propagation.lag.encode(&mut family, SECONDS)?;

        single(
            &mut encoder,
            "vexil_uptime_seconds",
            "Seconds since the server's metrics were created.",
            MetricType::Gauge,
            metrics.started.elapsed().as_secs(),
        )?;
        Ok(())
    }
}
