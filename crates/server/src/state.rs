//! Shared application state, built once at start-up and cloned (cheaply) into every handler.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vexil_store::{ProjectId, Store};

use crate::behavior::{self, Counters, MemoryCounters, SharedCounters};
use crate::budget::Bodies;
use crate::clock::Clock;
use crate::connection::ConnectionLimits;
use crate::continuity::OverrideWriter;
use crate::cors::AllowedOrigin;
use crate::error::ApiError;
use crate::ingest::{Ingest, IngestConfig};
use crate::metrics::Metrics;
use crate::overload::{Overload, OverloadLimits};
use crate::saved::{LastKnown, SnapshotDir};
use crate::snapshot::{Catalog, ProjectSnapshot};
use crate::streams::{StreamLimits, Streams};
use crate::verified::VerifiedKeys;

/// How long events and flag calls are kept by default: 30 days.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3_600);

/// How often revisions are compared by default: every second.
pub const DEFAULT_REVISION_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How often evaluation counts are added to the store's flag usage by default: every 10 s.
pub const DEFAULT_USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Share of non-5xx requests logged by default: 1 in 100.
pub const DEFAULT_ACCESS_LOG_SAMPLE_RATE: f64 = 0.01;

/// Tunables of the HTTP layer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deadline for the per-request person/group lookup on the evaluation path. Past it the
    /// request is answered from request properties alone (`errorsWhileComputingFlags: true`).
    pub eval_lookup_timeout: Duration,
    /// Cap on a capture or management request body, raw and decoded (decompressed).
    pub max_body_bytes: usize,
    /// Cap on a `/flags` or `/decide` request body, raw and decoded.
    pub max_flags_body_bytes: usize,
    /// Bytes of request bodies held or being decoded at once, across the process (0: no cap).
    pub decode_budget_bytes: usize,
    /// Capture batching: most events written in one transaction.
    pub ingest_batch_events: usize,
    /// Capture batching: longest a request waits for others to share its transaction.
    pub ingest_batch_delay: Duration,
    /// Origins sent `Access-Control-Allow-Credentials: true`, and the only ones the management
    /// API answers cross-origin (the public SDK endpoints answer every origin without
    /// credentials).
    pub cors_allowed_origins: Vec<AllowedOrigin>,
    /// Timeouts and the cap on open connections.
    pub connections: ConnectionLimits,
    /// Load shedding and per-project rate limits.
    pub overload: OverloadLimits,
    /// Pause before a failed capture writer is restarted (`/_readiness` answers 503 meanwhile).
    pub ingest_restart_delay: Duration,
    /// Retention: events and flag calls older than this are deleted (`None`: kept forever).
    pub event_retention: Option<Duration>,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Test hook, never set by the `vexil` binary: the capture writer panics on a batch holding
    /// an event of this name. A setting rather than `cfg(test)` because the integration tests
    /// (`tests/it`, another crate) need it, and rather than a cargo feature because
    /// `cargo test --workspace` would unify the feature into the binaries it builds.
    #[doc(hidden)]
    pub ingest_panic_on_event: Option<String>,
    /// The clock of evaluation and capture (the system clock; tests use an adjustable one, and
    /// an adjustable clock also serves `POST /_test/clock`).
    pub clock: Clock,
    /// Whether `GET /metrics` is served (Prometheus text format, unauthenticated).
    pub metrics_endpoint: bool,
    /// Shared state across nodes (`--redis-url`): rate-limit buckets and behavioural counts;
    /// `None`, this node's own.
    pub redis: Option<Arc<vexil_cache::Redis>>,
    /// Share (0.0–1.0) of requests answered below 500 that get an access-log event; every 5xx
    /// gets one.
    pub access_log_sample_rate: f64,
    /// Change streams: heartbeats, the cap on open streams, replay.
    pub streams: StreamLimits,
    /// How often every project's stored revision is compared with its snapshot's: the safety
    /// net that heals a missed change announcement (and, on SQLite, how changes made by other
    /// processes arrive).
    pub revision_check_interval: Duration,
    /// Where each project's last good definitions are saved, and read back at start-up when
    /// the store is unreachable (`None`: not saved; a node then needs its store to start).
    pub snapshot_dir: Option<PathBuf>,
    /// How soon after a publication its snapshot is saved (the saver's period).
    pub snapshot_save_interval: Duration,
    /// GeoIP enrichment of `/flags` person properties (`--geoip-db`); `None`: off.
    pub geoip: Option<Arc<crate::geoip::GeoIp>>,
    /// Peers whose `X-Forwarded-For` names the client (`--trusted-proxies`); from any other
    /// peer the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How often the evaluations this node answered are added to the store's per-day flag
    /// usage (and once more at shutdown).
    pub usage_flush_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            eval_lookup_timeout: Duration::from_millis(100),
            max_body_bytes: vexil_wire::decode::DEFAULT_MAX_DECODED_BYTES,
            max_flags_body_bytes: crate::budget::DEFAULT_MAX_FLAGS_BODY_BYTES,
            decode_budget_bytes: crate::budget::DEFAULT_DECODE_BUDGET_BYTES,
            ingest_batch_events: 2_000,
            ingest_batch_delay: Duration::from_millis(2),
            cors_allowed_origins: Vec::new(),
            connections: ConnectionLimits::default(),
            overload: OverloadLimits::default(),
            ingest_restart_delay: Duration::from_millis(200),
            ingest_panic_on_event: None,
            event_retention: Some(DEFAULT_EVENT_RETENTION),
            retention_interval: Duration::from_secs(3_600),
            clock: Clock::system(),
            metrics_endpoint: true,
            redis: None,
            access_log_sample_rate: DEFAULT_ACCESS_LOG_SAMPLE_RATE,
            streams: StreamLimits::default(),
            revision_check_interval: DEFAULT_REVISION_CHECK_INTERVAL,
            snapshot_dir: None,
            snapshot_save_interval: Duration::from_millis(250),
            geoip: None,
            trusted_proxies: Vec::new(),
            usage_flush_interval: DEFAULT_USAGE_FLUSH_INTERVAL,
        }
    }
}

/// Everything handlers share, behind one `Arc`: axum clones the state for every extractor and
/// middleware of every request, and one reference count is all such a clone should cost.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct SharedState {
    /// Durable storage.
    pub store: Arc<dyn Store>,
    /// Compiled definitions of every project.
    pub catalog: Arc<Catalog>,
    /// The capture write pipeline.
    pub ingest: Ingest,
    /// The background writer of experience-continuity overrides.
    pub overrides: OverrideWriter,
    /// Body limits and the decode budget.
    pub bodies: Arc<Bodies>,
    /// The in-flight cap and the per-project rate limiters.
    pub overload: Arc<Overload>,
    /// Behavioural counts fed by capture and read by evaluation.
    pub counters: Arc<dyn Counters>,
    /// Counters and histograms `GET /metrics` renders, and the access log's sampling.
    pub metrics: Arc<Metrics>,
    /// Open change streams.
    pub streams: Arc<Streams>,
    /// Whether definitions come from the store or from the saved copy (start-up while the
    /// store was unreachable), and the saver's failures.
    pub last_known: Arc<LastKnown>,
    /// Feed credentials the store last accepted, for while it cannot be reached.
    pub verified_keys: Arc<VerifiedKeys>,
    /// Cookieless mode's daily salts (shared through Redis when configured).
    pub salts: Arc<crate::cookieless::Salts>,
    /// Tunables.
    pub settings: Arc<Settings>,
}

impl AppState {
    /// Loads every project's snapshot and starts the capture pipeline. Call within a Tokio
    /// runtime.
    ///
    /// When the store cannot be reached and [`Settings::snapshot_dir`] holds saved definitions,
    /// the node starts on those ([`AppState::last_known`] says so) and reloads from the store
    /// in the background once it answers; with nothing saved, the store's error is returned.
    pub async fn new(
        store: Arc<dyn Store>,
        settings: Settings,
    ) -> Result<Self, vexil_store::StoreError> {
        let metrics = Arc::new(Metrics::new(settings.access_log_sample_rate));
        let replay = settings.streams.replay;
        let verified_keys = Arc::new(VerifiedKeys::default());
        let (catalog, last_known) = match Catalog::load(
            store.as_ref(),
            Arc::clone(&metrics),
            replay,
        )
        .await
        {
            Ok(catalog) => (catalog, LastKnown::from_store()),
            Err(e) if e.is_unreachable() => {
                let saved = match &settings.snapshot_dir {
                    Some(dir) => SnapshotDir::new(dir.clone()).load().unwrap_or_else(|read| {
                        tracing::error!(error = %read, "saved definitions unreadable");
                        Vec::new()
                    }),
                    None => Vec::new(),
                };
                if saved.is_empty() {
                    return Err(e);
                }
                tracing::warn!(
                    error = %e,
                    projects = saved.len(),
                    "the store cannot be reached: serving the last known definitions saved on disk until it answers"
                );
                let (snapshots, infos) = saved
                    .into_iter()
                    .map(|(snapshot, info, keys)| {
                        verified_keys.restore(info.project, keys);
                        (snapshot, info)
                    })
                    .unzip();
                (
                    Catalog::of(snapshots, Arc::clone(&metrics), replay),
                    LastKnown::from_disk(infos),
                )
            }
            Err(e) => return Err(e),
        };
        let catalog = Arc::new(catalog);
        let counters: Arc<dyn Counters> = match &settings.redis {
            Some(redis) => Arc::new(SharedCounters::new(Arc::clone(redis))),
            None => Arc::new(MemoryCounters::new()),
        };
        if last_known.serving().is_none() {
            // Before anything is served or captured: a restart loses no behavioural count.
            // (From the saved copy, they are rebuilt once the store answers: `saved::recover`.)
            sync_all_counters(store.as_ref(), &catalog, counters.as_ref(), &settings.clock).await;
        }
        let ingest = Ingest::start(
            Arc::clone(&store),
            Arc::clone(&catalog),
            Arc::clone(&counters),
            Arc::clone(&metrics),
            IngestConfig {
                max_events: settings.ingest_batch_events,
                delay: settings.ingest_batch_delay,
                restart_delay: settings.ingest_restart_delay,
                panic_on_event: settings.ingest_panic_on_event.clone(),
                clock: settings.clock.clone(),
            },
        );
        let overrides = OverrideWriter::start(Arc::clone(&store));
        Ok(AppState(Arc::new(SharedState {
            overrides,
            bodies: Arc::new(Bodies::new(
                settings.max_flags_body_bytes,
                settings.max_body_bytes,
                settings.decode_budget_bytes,
            )),
            overload: Arc::new(Overload::new(&settings.overload, settings.redis.clone())),
            streams: Arc::new(Streams::new(&settings.streams)),
            store,
            catalog,
            ingest,
            counters,
            metrics,
            last_known: Arc::new(last_known),
            verified_keys,
            salts: Arc::new(crate::cookieless::Salts::new(settings.redis.clone())),
            settings: Arc::new(settings),
        })))
        .inspect(|state| {
            if state.last_known.serving().is_some() {
                tokio::spawn(crate::saved::recover(state.clone()));
            }
        })
    }

    /// The project's compiled snapshot, loading it if this process has not yet.
    pub async fn snapshot(&self, project: ProjectId) -> Result<Arc<ProjectSnapshot>, ApiError> {
        if let Some(s) = self.catalog.by_id(project) {
            return Ok(s);
        }
        self.catalog.refresh(self.store.as_ref(), project).await?;
        self.catalog.by_id(project).ok_or_else(|| {
            ApiError::unavailable("Flag definitions are not loaded yet; retry shortly.")
        })
    }

    /// Recompiles the project's snapshot after a committed write. The write stands either way; a
    /// failed refresh marks the project stale and is retried until it succeeds ([`AppState::stale`]).
    pub async fn refresh(&self, project: ProjectId) {
        if let Err(e) = self.catalog.refresh(self.store.as_ref(), project).await {
            self.stale(project, &e);
        }
    }

    /// A committed change of `project` did not reach its snapshot (`error`): marks the project
    /// stale and, unless retries already run for it, reloads it in the background with backoff
    /// until a reload succeeds.
    pub fn stale(&self, project: ProjectId, error: &vexil_store::StoreError) {
        let retry = self.catalog.mark_stale(project);
        tracing::error!(
            error = %error,
            project = %project,
            stale_projects = self.catalog.stale_count(),
            "committed change not live: snapshot update failed; retrying in the background"
        );
        if retry {
            tokio::spawn(heal(self.clone(), project));
        }
    }
}

/// Brings the behavioural counters of every loaded project in line with its snapshot, replaying
/// stored events; a project whose replay fails keeps its cohorts "not evaluated" until the
/// capture writer's next attempt.
pub(crate) async fn sync_all_counters(
    store: &dyn Store,
    catalog: &Catalog,
    counters: &dyn Counters,
    clock: &Clock,
) {
    for published in catalog.published() {
        let project = published.snapshot.project.id;
        let behaviors = published.snapshot.compiled.behaviors();
        if let Err(e) = behavior::sync(store, counters, project, behaviors, clock.now()).await {
            tracing::error!(error = %e, project = %project, "behavioural counters not rebuilt");
        }
    }
}

/// First and longest wait between reloads of a stale project.
const HEAL_BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(5));

/// Reloads a stale project until a reload that started after its latest stale mark succeeds.
async fn heal(state: AppState, project: ProjectId) {
    let (first, longest) = HEAL_BACKOFF;
    let mut wait = first;
    let mut attempts = 0u32;
    loop {
        tokio::time::sleep(wait).await;
        if state.catalog.stale_generation(project).is_none() {
            // Another reload (a later write, change propagation) caught up meanwhile.
            return;
        }
        attempts += 1;
        match state.catalog.refresh(state.store.as_ref(), project).await {
            // A successful reload clears the marks made before it began.
            Ok(()) if state.catalog.stale_generation(project).is_none() => {
                tracing::info!(project = %project, attempts, "stale snapshot caught up with the store");
                return;
            }
            // Marked again while reloading: reload once more.
            Ok(()) => wait = first,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    project = %project,
                    attempts,
                    stale_projects = state.catalog.stale_count(),
                    "project still serves an older snapshot than its store; retrying"
                );
                wait = (wait * 2).min(longest);
            }
        }
    }
}
