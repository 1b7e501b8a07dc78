//! The capture write pipeline: requests hand their events to one writer task, which batches
//! the requests arriving within a couple of milliseconds and writes each project's share of a
//! batch — events, person and group changes — in **one** store transaction
//! ([`Store::write_capture`]: one commit, one fsync, each person written once). A request is
//! acknowledged only after its events are committed.
//!
//! Side effects are read from each event's `properties` (callers merge a top-level `$set` /
//! `$set_once` in first): `$identify` / `$create_alias` merge persons, then `$set`,
//! `$set_once` and `$unset` update the (merged) person; `$groupidentify` upserts a group; the
//! keys of `$groups` register group types. Events marked `$process_person_profile: false` touch
//! no person. A side effect the store refuses as invalid (an empty group key, a sixth group
//! type) is skipped with a warning, as PostHog drops it; the event is still stored. A request
//! breaking a storage limit fails alone (the batch is re-run without it). Any other failure
//! fails the batch, whose clients retry: events are deduplicated by uuid, with their effects.
//!
//! Once a batch is committed, its new events feed the behavioural counters
//! ([`crate::behavior`]); before writing a project's batch, the writer brings the project's
//! counted tracks in line with its snapshot (replaying stored events for new ones), so no event
//! is both replayed and recorded. [`Ingest::sync`] asks for that alone (evaluation does, when
//! it meets a track not counted yet).
//!
//! The writer is supervised: if it panics, the requests of the batch it held get a 503
//! (their transaction never committed), the failure is counted ([`Ingest::status`], shown by
//! `/_readiness`) and a fresh writer takes over the queue after a short pause.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vexil_engine::GroupKey;
use vexil_store::{
    CapturedEvent, Effect, NewEvent, PersonUpdate, ProjectId, Properties, Store, StoreError,
};

use crate::behavior::{self, Counters};
use crate::clock::Clock;
use crate::metrics::{Histogram, Metrics, StoreOp};
use crate::snapshot::{Catalog, ProjectSnapshot};

/// Why a capture request could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed; nothing of the request is acknowledged. Shared by every request whose
    /// events were in the failed transaction.
    #[error("storage failed: {0}")]
    Store(#[source] Arc<StoreError>),
    /// The request's event number `event` would break a storage limit; nothing of the request
    /// was stored (the other requests of its batch were).
    #[error("event {event} breaks {limit} ({max})")]
    Limit {
        /// The limit's name (`MAX_PERSON_PROPERTIES`).
        limit: &'static str,
        /// Its value.
        max: usize,
        /// The event's index in the request.
        event: usize,
    },
    /// The writer failed (panicked) while writing the request's batch; nothing of the batch
    /// was written and the writer restarted.
    #[error("the capture writer failed while writing this request")]
    WriterFailed,
    /// The pipeline is shutting down.
    #[error("the server is shutting down")]
    Closed,
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        IngestError::Store(Arc::new(e))
    }
}

/// Capture requests the queue holds before submitters wait.
const QUEUE: usize = 4_096;

struct Job {
    project: ProjectId,
    events: Vec<NewEvent>,
    done: oneshot::Sender<Result<u64, IngestError>>,
}

/// How the pipeline is configured ([`Ingest::start`]).
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Most events written in one transaction.
    pub max_events: usize,
    /// Longest a request waits for others to share its transaction.
    pub delay: Duration,
    /// Pause before a failed writer is restarted (the writer is reported down meanwhile).
    pub restart_delay: Duration,
    /// Test hook: the writer panics while preparing a batch holding an event of this name.
    pub panic_on_event: Option<String>,
    /// The clock behavioural buckets expire by.
    pub clock: Clock,
}

/// The writer's health, as `/_readiness` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStatus {
    /// Whether the writer task is running (false between a failure and its restart).
    pub running: bool,
    /// How many times the writer failed and was restarted since start-up.
    pub restarts: u64,
}

#[derive(Debug)]
struct Health {
    running: AtomicBool,
    restarts: AtomicU64,
    /// Events per transaction written.
    batch_events: Histogram,
}

/// Handle to the capture pipeline (cheap to clone).
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
    stop: Arc<Notify>,
    health: Arc<Health>,
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

impl Ingest {
    /// Starts the writer task under a supervisor that restarts it when it fails.
    pub fn start(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        counters: Arc<dyn Counters>,
        metrics: Arc<Metrics>,
        config: IngestConfig,
    ) -> Ingest {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stop = Arc::new(Notify::new());
        let health = Arc::new(Health {
            running: AtomicBool::new(true),
            restarts: AtomicU64::new(0),
            batch_events: Histogram::batch_sizes(),
        });
        let supervisor = Supervisor {
            store,
            catalog,
            counters,
            metrics,
            config,
            rx: Arc::new(Mutex::new(rx)),
            stop: Arc::clone(&stop),
            health: Arc::clone(&health),
        };
        let worker = tokio::spawn(supervisor.run());
        Ingest {
            tx,
            stop,
            health,
            worker: Arc::new(Mutex::new(Some(worker))),
        }
    }

    /// Stores `events` for `project` (with their person and group updates); resolves once they
    /// are durable. Returns how many events the request carried, all of them now stored (an
    /// event whose uuid was already stored is skipped, not duplicated).
    pub async fn submit(
        &self,
        project: ProjectId,
        events: Vec<NewEvent>,
    ) -> Result<u64, IngestError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job {
                project,
                events,
                done,
            })
            .await
            .map_err(|_| IngestError::Closed)?;
        // A dropped answer without shutdown: the writer failed while holding this job.
        wait.await.map_err(|_| IngestError::WriterFailed)?
    }

    /// Has the writer bring the project's behavioural counters in line with its snapshot (a
    /// new behavioural cohort's past is replayed), between two batches; resolves when done.
    pub async fn sync(&self, project: ProjectId) -> Result<(), IngestError> {
        self.submit(project, Vec::new()).await.map(drop)
    }

    /// The writer's health.
    pub fn status(&self) -> WriterStatus {
        WriterStatus {
            running: self.health.running.load(Ordering::Acquire),
            restarts: self.health.restarts.load(Ordering::Acquire),
        }
    }

    /// Capture requests queued for the writer.
    pub fn queue_depth(&self) -> u64 {
        u64::try_from(self.tx.max_capacity() - self.tx.capacity()).unwrap_or(u64::MAX)
    }

    /// Events per transaction written so far.
    pub fn batch_events(&self) -> &Histogram {
        &self.health.batch_events
    }

    /// Whether the writer task accepts events (false once it stopped, and while a failed
    /// writer waits for its restart).
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed() && self.health.running.load(Ordering::Acquire)
    }

    /// Stops accepting work and waits until everything submitted is written.
    pub async fn shutdown(&self) {
        self.stop.notify_one();
        if let Some(handle) = self.worker.lock().await.take() {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "capture writer supervisor ended abnormally");
            }
        }
    }
}

/// Runs the writer and, when it panics, counts the failure, reports the writer down for
/// `restart_delay` and starts a fresh one on the same queue. The jobs of the failed batch lose
/// their answer (their requests get a 503 and retry); their transaction never committed.
struct Supervisor {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    counters: Arc<dyn Counters>,
    metrics: Arc<Metrics>,
    config: IngestConfig,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    stop: Arc<Notify>,
    health: Arc<Health>,
}

impl Supervisor {
    async fn run(self) {
        loop {
            let writer = Writer {
                store: Arc::clone(&self.store),
                catalog: Arc::clone(&self.catalog),
                counters: Arc::clone(&self.counters),
                metrics: Arc::clone(&self.metrics),
                health: Arc::clone(&self.health),
                config: self.config.clone(),
                group_types: HashMap::new(),
                synced: HashMap::new(),
            };
            let task = tokio::spawn(writer.run(Arc::clone(&self.rx), Arc::clone(&self.stop)));
            match task.await {
                Ok(()) => return,
                Err(e) => {
                    self.health.running.store(false, Ordering::Release);
                    let restarts = self.health.restarts.fetch_add(1, Ordering::AcqRel) + 1;
                    tracing::error!(error = %e, restarts, "capture writer failed; restarting");
                    tokio::time::sleep(self.config.restart_delay).await;
                    self.health.running.store(true, Ordering::Release);
                }
            }
        }
    }
}

struct Writer {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    counters: Arc<dyn Counters>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    config: IngestConfig,
    /// Group type indexes by name, per project, as far as this writer has seen them.
    group_types: HashMap<ProjectId, HashMap<String, i64>>,
    /// The snapshot each project's counters were last brought in line with.
    synced: HashMap<ProjectId, Arc<ProjectSnapshot>>,
}

impl Writer {
    async fn run(mut self, rx: Arc<Mutex<mpsc::Receiver<Job>>>, stop: Arc<Notify>) {
        let mut rx = rx.lock().await;
        let max_events = self.config.max_events.max(1);
        loop {
            let first = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                () = stop.notified() => {
                    // Refuse new work, then write what was already accepted.
                    rx.close();
                    let mut rest = Vec::new();
                    while let Ok(job) = rx.try_recv() {
                        rest.push(job);
                    }
                    if !rest.is_empty() {
                        self.write(rest).await;
                    }
                    return;
                }
            };
            let mut count = first.events.len();
            let mut jobs = vec![first];
            let deadline = Instant::now() + self.config.delay;
            while count < max_events {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(job)) => {
                        count += job.events.len();
                        jobs.push(job);
                    }
                    _ => break,
                }
            }
            self.write(jobs).await;
        }
    }

    /// Writes a batch of jobs: one store transaction per project. A job whose event breaks a
    /// storage limit is answered with that error and the transaction re-run without it.
    async fn write(&mut self, jobs: Vec<Job>) {
        let mut by_project: HashMap<ProjectId, Vec<Job>> = HashMap::new();
        for job in jobs {
            by_project.entry(job.project).or_default().push(job);
        }
        for (project, jobs) in by_project {
            let snapshot = self.sync_counters(project).await;
            // (job, its events' span in `batch`)
            let mut members: Vec<(Job, usize)> = Vec::with_capacity(jobs.len());
            let mut batch: Vec<CapturedEvent> = Vec::new();
            for mut job in jobs {
                let events = std::mem::take(&mut job.events);
                let len = events.len();
                match self.captured(project, events).await {
                    Ok(captured) => {
                        batch.extend(captured);
                        members.push((job, len));
                    }
                    Err(e) => {
                        let _ = job.done.send(Err(e));
                    }
                }
            }
            while !members.is_empty() {
                self.health.batch_events.observe(batch.len() as u64);
                let written = self
                    .metrics
                    .store_call(
                        StoreOp::WriteCapture,
                        self.store.write_capture(project, &batch),
                    )
                    .await;
                match written {
                    Ok(outcome) => {
                        for (event, reason) in &outcome.skipped {
                            tracing::warn!(project = %project, event, reason, "capture side effect skipped");
                        }
                        if let Some(snapshot) = &snapshot {
                            // Committed: counted before any request of the batch is answered.
                            let events = outcome.stored.iter().filter_map(|&i| batch.get(i));
                            let recorded = behavior::record_events(
                                self.counters.as_ref(),
                                project,
                                snapshot.compiled.behaviors(),
                                events.map(|c| &c.event),
                                None,
                                self.config.clock.now(),
                            );
                            if let Err(e) = recorded.await {
                                tracing::error!(error = %e, project = %project, "behavioural counts not recorded");
                            }
                        }
                        for (job, len) in members.drain(..) {
                            let _ = job.done.send(Ok(len as u64));
                        }
                    }
                    Err(StoreError::LimitExceeded { limit, max, event }) => {
                        // Fail the job holding `event` alone; write the others.
                        let mut start = 0;
                        let at = members.iter().position(|(_, len)| {
                            let end = start + len;
                            let found = event < end;
                            if !found {
                                start = end;
                            }
                            found
                        });
                        let Some(at) = at else {
                            break; // cannot happen: the store names an event of the batch
                        };
                        let (job, len) = members.remove(at);
                        batch.drain(start..start + len);
                        let _ = job.done.send(Err(IngestError::Limit {
                            limit,
                            max,
                            event: event - start,
                        }));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, project = %project, "event batch write failed");
                        let e = Arc::new(e);
                        for (job, _) in members.drain(..) {
                            let _ = job.done.send(Err(IngestError::Store(Arc::clone(&e))));
                        }
                    }
                }
            }
        }
    }

    /// Brings the project's behavioural counters in line with its current snapshot (once per
    /// snapshot, and again when the counters ask for it); returns the snapshot when the project counts anything.
    async fn sync_counters(&mut self, project: ProjectId) -> Option<Arc<ProjectSnapshot>> {
        let snapshot = self.catalog.by_id(project)?;
        let done = self
            .synced
            .get(&project)
            .is_some_and(|s| Arc::ptr_eq(s, &snapshot))
            && !self.counters.needs_sync(project);
        if !done {
            let synced = behavior::sync(
                self.store.as_ref(),
                self.counters.as_ref(),
                project,
                snapshot.compiled.behaviors(),
                self.config.clock.now(),
            );
            match synced.await {
                Ok(()) => {
                    self.synced.insert(project, Arc::clone(&snapshot));
                }
                Err(e) => {
                    tracing::error!(error = %e, project = %project, "behavioural counters not rebuilt; retried with the next batch");
                }
            }
        }
        (!snapshot.compiled.behaviors().is_empty()).then_some(snapshot)
    }

    /// The events with their effects, group types registered (and published) first.
    #[allow(
        clippy::panic,
        reason = "the writer-panic test hook (`panic_on_event`), off unless a test sets it"
    )]
    async fn captured(
        &mut self,
        project: ProjectId,
        events: Vec<NewEvent>,
    ) -> Result<Vec<CapturedEvent>, IngestError> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            if self.config.panic_on_event.as_deref() == Some(event.event.as_str()) {
                panic!("test hook: the capture writer panics on {:?}", event.event);
            }
            let effects = self.effects(project, &event).await?;
            out.push(CapturedEvent { event, effects });
        }
        Ok(out)
    }

    /// Person and group side effects of one event, in order.
    async fn effects(
        &mut self,
        project: ProjectId,
        event: &NewEvent,
    ) -> Result<Vec<Effect>, IngestError> {
        let mut effects = Vec::new();
        let props = &event.properties;
        let distinct_id = event.distinct_id.as_str();
        let person_profile = props.get("$process_person_profile") != Some(&Value::Bool(false));
        match event.event.as_str() {
            "$identify" if person_profile => {
                if let Some(anon) = str_prop(props, "$anon_distinct_id") {
                    if anon != distinct_id {
                        effects.push(Effect::Merge {
                            other: anon.to_owned(),
                        });
                    }
                }
            }
            "$create_alias" if person_profile => {
                if let Some(alias) = str_prop(props, "alias") {
                    if alias != distinct_id {
                        effects.push(Effect::Merge {
                            other: alias.to_owned(),
                        });
                    }
                }
            }
            "$groupidentify" => {
                if let (Some(kind), Some(key)) = (
                    str_prop(props, "$group_type"),
                    group_key(props.get("$group_key")),
                ) {
                    if let Some(index) = self.group_type(project, kind).await? {
                        effects.push(Effect::Group {
                            group_type_index: index,
                            group_key: key,
                            set: props
                                .get("$group_set")
                                .and_then(Value::as_object)
                                .cloned()
                                .unwrap_or_default(),
                        });
                    }
                }
            }
            _ => {}
        }
        if let Some(groups) = props.get("$groups").and_then(Value::as_object) {
            for kind in groups.keys() {
                self.group_type(project, kind).await?;
            }
        }
        let update = person_update(props);
        if person_profile && !update.is_empty() {
            effects.push(Effect::Person(update));
        }
        Ok(effects)
    }

    /// The index of group type `name`, registering it if needed; `None` when the store refuses
    /// it (a sixth type, an empty name), as PostHog ignores those too. A type the project's
    /// snapshot does not map yet is published to it (the mapping is part of the definitions
    /// payload and of group evaluation) without waiting for flag writers or compiling.
    async fn group_type(
        &mut self,
        project: ProjectId,
        name: &str,
    ) -> Result<Option<i64>, IngestError> {
        if let Some(&index) = self.group_types.get(&project).and_then(|m| m.get(name)) {
            return Ok(Some(index));
        }
        let Some(index) = skip_invalid(self.store.ensure_group_type(project, name).await)? else {
            return Ok(None);
        };
        self.catalog.add_group_type(project, index, name);
        self.group_types
            .entry(project)
            .or_default()
            .insert(name.to_owned(), index);
        Ok(Some(index))
    }
}

/// A side effect's result, with the store's refusal of invalid input turned into "skipped".
fn skip_invalid<T>(result: Result<T, StoreError>) -> Result<Option<T>, IngestError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StoreError::Invalid { field, message }) => {
            tracing::warn!(field, message, "capture side effect skipped");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn str_prop<'a>(props: &'a Properties, key: &str) -> Option<&'a str> {
    props
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn group_key(value: Option<&Value>) -> Option<String> {
    GroupKey::from_value(value?).map(|key| key.to_string())
}

/// `$set`, `$set_once` and `$unset` carried in an event's properties.
fn person_update(props: &Properties) -> PersonUpdate {
    let object = |key| {
        props
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    PersonUpdate {
        set: object("$set"),
        set_once: object("$set_once"),
        unset: props
            .get("$unset")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
