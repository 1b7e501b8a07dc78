//! The capture write pipeline: requests hand their events to one writer task, which applies
//! person/group updates in arrival order and stores the events of many requests in one
//! transaction per project. A request is acknowledged only after its events are committed.
//!
//! Side effects are read from each event's `properties` (callers merge a top-level `$set` /
//! `$set_once` in first): `$identify` / `$create_alias` merge persons, then `$set`,
//! `$set_once` and `$unset` update the (merged) person; `$groupidentify` upserts a group; the
//! keys of `$groups` register group types. Events marked `$process_person_profile: false` touch
//! no person. A side effect the store refuses as invalid (an empty group key, a sixth group
//! type) is skipped with a warning, as PostHog drops it; the event is still stored. Any other
//! failure fails the whole request, which the client retries: updates are idempotent and events
//! are deduplicated by uuid.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vexil_engine::GroupKey;
use vexil_store::{NewEvent, PersonUpdate, ProjectId, Properties, Store, StoreError};

use crate::snapshot::Catalog;

/// Why a capture request could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed; nothing of the request is acknowledged. Shared by every request whose
    /// events were in the failed transaction.
    #[error("storage failed: {0}")]
    Store(#[source] Arc<StoreError>),
    /// The pipeline is shutting down.
    #[error("the server is shutting down")]
    Closed,
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        IngestError::Store(Arc::new(e))
    }
}

struct Job {
    project: ProjectId,
    events: Vec<NewEvent>,
    done: oneshot::Sender<Result<u64, IngestError>>,
}

/// Handle to the capture pipeline (cheap to clone).
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Job>,
    stop: Arc<Notify>,
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

impl Ingest {
    /// Starts the writer task: at most `max_events` events per transaction, a request waiting
    /// at most `delay` for others to share its transaction.
    pub fn start(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        max_events: usize,
        delay: std::time::Duration,
    ) -> Ingest {
        let (tx, rx) = mpsc::channel(4_096);
        let writer = Writer {
            store,
            catalog,
            max_events: max_events.max(1),
            delay,
            group_types: HashMap::new(),
        };
        let stop = Arc::new(Notify::new());
        let worker = tokio::spawn(writer.run(rx, Arc::clone(&stop)));
        Ingest {
            tx,
            stop,
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
        wait.await.map_err(|_| IngestError::Closed)?
    }

    /// Whether the writer task accepts events (false once it stopped or died).
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Stops accepting work and waits until everything submitted is written.
    pub async fn shutdown(&self) {
        self.stop.notify_one();
        if let Some(handle) = self.worker.lock().await.take() {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "capture writer ended abnormally");
            }
        }
    }
}

struct Writer {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    max_events: usize,
    delay: std::time::Duration,
    /// Group type indexes by name, per project, as far as this writer has seen them.
    group_types: HashMap<ProjectId, HashMap<String, i64>>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, stop: Arc<Notify>) {
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
            let deadline = Instant::now() + self.delay;
            while count < self.max_events {
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

    async fn write(&mut self, jobs: Vec<Job>) {
        let mut outcomes: Vec<Result<u64, IngestError>> = Vec::with_capacity(jobs.len());
        for job in &jobs {
            outcomes.push(
                self.apply_updates(job.project, &job.events)
                    .await
                    .map(|()| 0),
            );
        }
        // One transaction per project for all events of the batch's healthy jobs.
        let mut by_project: HashMap<ProjectId, Vec<usize>> = HashMap::new();
        for (i, job) in jobs.iter().enumerate() {
            if outcomes[i].is_ok() {
                by_project.entry(job.project).or_default().push(i);
            }
        }
        for (project, members) in by_project {
            let events: Vec<NewEvent> = members
                .iter()
                .flat_map(|&i| jobs[i].events.iter().cloned())
                .collect();
            match self.store.insert_events(project, &events).await {
                Ok(_) => {
                    for &i in &members {
                        outcomes[i] = Ok(jobs[i].events.len() as u64);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, project = %project, "event batch write failed");
                    let e = Arc::new(e);
                    for &i in &members {
                        outcomes[i] = Err(IngestError::Store(Arc::clone(&e)));
                    }
                }
            }
        }
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            let _ = job.done.send(outcome);
        }
    }

    /// Person and group side effects of the events, in order.
    async fn apply_updates(
        &mut self,
        project: ProjectId,
        events: &[NewEvent],
    ) -> Result<(), IngestError> {
        for event in events {
            let props = &event.properties;
            let distinct_id = event.distinct_id.as_str();
            let person_profile = props.get("$process_person_profile") != Some(&Value::Bool(false));
            match event.event.as_str() {
                "$identify" if person_profile => {
                    if let Some(anon) = str_prop(props, "$anon_distinct_id") {
                        if anon != distinct_id {
                            skip_invalid(self.store.identify(project, distinct_id, anon).await)?;
                        }
                    }
                }
                "$create_alias" if person_profile => {
                    if let Some(alias) = str_prop(props, "alias") {
                        if alias != distinct_id {
                            skip_invalid(self.store.alias(project, distinct_id, alias).await)?;
                        }
                    }
                }
                "$groupidentify" => {
                    if let (Some(kind), Some(key)) = (
                        str_prop(props, "$group_type"),
                        group_key(props.get("$group_key")),
                    ) {
                        if let Some(index) = self.group_type(project, kind).await? {
                            let set = props
                                .get("$group_set")
                                .and_then(Value::as_object)
                                .cloned()
                                .unwrap_or_default();
                            skip_invalid(
                                self.store.upsert_group(project, index, &key, &set).await,
                            )?;
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
                skip_invalid(
                    self.store
                        .apply_person_update(project, distinct_id, &update)
                        .await,
                )?;
            }
        }
        Ok(())
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
