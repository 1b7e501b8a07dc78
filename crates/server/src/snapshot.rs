//! In-memory compiled snapshots of every project, swapped atomically on each change.
//!
//! `/flags`, local evaluation and (later) streaming read definitions only from here: a request
//! never queries the database for definitions. A flag write applies its committed row to the
//! project's snapshot ([`ProjectWriter::apply`]): only that flag and the flags that depend on it
//! are recompiled, and the `/flags/definitions` body is serialised lazily, on its first read.
//! Other changes reload the project from the store ([`Catalog::refresh`]). Readers holding the
//! old `Arc` finish with it undisturbed.
//!
//! A committed change whose publication fails (a reload that cannot read the store) leaves the
//! project **stale**: [`Catalog::mark_stale`] records it, the server retries the reload until it
//! succeeds ([`crate::state::AppState::stale`]), and [`Catalog::stale_count`] reports how many
//! projects serve a snapshot older than their store meanwhile.
//!
//! Every publication that changes a flag or a cohort is also a change event
//! ([`crate::changes`]), stamped with the project's store revision, kept for replay and sent to
//! the project's streams.
//!
//! Every snapshot knows the store revision it is current with ([`ProjectSnapshot::caught_up_to`]):
//! `crate::propagation` compares it with the revisions other processes' changes announce and
//! reloads the project when it is behind ([`Catalog::catch_up`]).
//!
//! Writers of one project are serialised by that project's lock (so one cannot publish an
//! older snapshot after a newer one, and a write's checks see every earlier write); capture
//! never takes it: the group types it registers are published with a compare-and-swap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::{Mutex, OwnedMutexGuard};
use vexil_engine::model::PropertyGroup;
use vexil_engine::{CompiledProject, Definitions, FlagDefinition};
use vexil_store::{
    feed_cohort_references, feed_definition, FeatureFlag, FlagQuery, Page, Project, ProjectId,
    Replay, Store, StoreError,
};

use crate::changes::{self, ChangeFeed, Publication, Subscription};
use crate::metrics::{FlagCounter, Metrics, StoreOp};

/// One project's definitions, compiled, with what its writes are checked against.
#[derive(Debug)]
pub struct ProjectSnapshot {
    /// The project.
    pub project: Project,
    /// Every change committed at or below this store revision is in this snapshot (maybe some
    /// later ones too): an announced revision above it needs a reload. Stricter than
    /// `revision`, which a write may raise while another process's earlier change is missing.
    caught_up_to: i64,
    /// Compiled flags and cohorts.
    pub compiled: CompiledProject,
    /// The store revision this snapshot holds at least (every change it holds committed at or
    /// before it): the stamp of its change events.
    revision: i64,
    /// The project's non-deleted flags (remote-configuration ones included), by id: what write
    /// rules check against.
    flags: Arc<Vec<Arc<FlagDefinition>>>,
    /// Ids of the project's non-deleted cohorts.
    cohort_ids: Arc<HashSet<i64>>,
    /// Versions of the project's non-deleted cohorts, by id.
    cohort_versions: Arc<BTreeMap<i64, i64>>,
    /// The project's non-deleted remote-configuration flags, by id. The plain ones are also
    /// compiled (served by `/flags` and the feed like any flag); the encrypted ones are not.
    remote_configs: Arc<HashMap<i64, RemoteConfig>>,
    /// The group type mapping as the definitions feed lists it.
    group_type_mapping: BTreeMap<String, String>,
    /// The `/flags/definitions` body and its ETag, built on first use.
    feed: OnceLock<Feed>,
    /// Evaluation counters of `compiled.flags()`, by position, resolved on first use.
    counters: OnceLock<Box<[Arc<FlagCounter>]>>,
}

/// How a remote-configuration flag (`is_remote_configuration`) is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteConfig {
    /// Like any flag (`/flags`, the definitions feed), and by OFREP as its payload (`STATIC`).
    Plain,
    /// `has_encrypted_payloads`: only through the management API's `remote_config`, whose
    /// payload only a personal key reads.
    Encrypted,
}

impl RemoteConfig {
    /// What `row` is, `None` for a flag that is not a live remote-configuration flag.
    fn of(row: &FeatureFlag) -> Option<RemoteConfig> {
        match (
            row.deleted,
            row.is_remote_configuration,
            row.has_encrypted_payloads,
        ) {
            (false, true, false) => Some(RemoteConfig::Plain),
            (false, true, true) => Some(RemoteConfig::Encrypted),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Feed {
    body: Bytes,
    etag: String,
}

impl ProjectSnapshot {
    /// Loads and compiles a project from the store.
    pub async fn load(store: &dyn Store, id: ProjectId) -> Result<ProjectSnapshot, StoreError> {
        // Read first: the definitions below hold every change committed up to it (or later).
        let Some(revision) = store.revision(id).await? else {
            return Err(StoreError::NotFound { entity: "project" });
        };
        let Some(project) = store.get_project(id).await? else {
            return Err(StoreError::NotFound { entity: "project" });
        };
        let definitions = store.definitions(id).await?;
        let all = Page::new(u32::MAX, 0);
        let query = FlagQuery {
            page: all,
            ..FlagQuery::default()
        };
        let rows = store.list_flags(id, &query).await?.items;
        let remote_configs = rows
            .iter()
            .filter_map(|f| Some((f.id, RemoteConfig::of(f)?)))
            .collect();
        let flags: Vec<FlagDefinition> = rows.iter().map(FeatureFlag::definition).collect();
        let cohort_versions: BTreeMap<i64, i64> = store
            .list_cohorts(id, all)
            .await?
            .items
            .iter()
            .map(|c| (c.id, c.version))
            .collect();
        Ok(ProjectSnapshot::from_inputs(
            project,
            revision,
            &definitions,
            flags,
            cohort_versions,
            remote_configs,
        ))
    }

    /// Compiles a project from what [`ProjectSnapshot::load`] reads: the project, the store
    /// revision read first, its definitions, its non-deleted flags (remote-configuration ones
    /// included), its non-deleted cohorts' versions by id and its remote-configuration flags.
    pub fn from_inputs(
        project: Project,
        revision: i64,
        definitions: &Definitions,
        flags: Vec<FlagDefinition>,
        cohort_versions: BTreeMap<i64, i64>,
        remote_configs: HashMap<i64, RemoteConfig>,
    ) -> ProjectSnapshot {
        let mut flags: Vec<Arc<FlagDefinition>> = flags.into_iter().map(Arc::new).collect();
        flags.sort_by_key(|f| f.id);
        ProjectSnapshot {
            project,
            caught_up_to: revision,
            compiled: CompiledProject::compile(definitions),
            revision,
            flags: Arc::new(flags),
            cohort_ids: Arc::new(cohort_versions.keys().copied().collect()),
            cohort_versions: Arc::new(cohort_versions),
            remote_configs: Arc::new(remote_configs),
            group_type_mapping: definitions.group_type_mapping.clone(),
            feed: OnceLock::new(),
            counters: OnceLock::new(),
        }
    }

    /// The definitions this snapshot was compiled from (with every change applied since), as
    /// [`ProjectSnapshot::from_inputs`] takes them back.
    pub fn definitions(&self) -> Definitions {
        Definitions {
            flags: self.compiled.definitions().cloned().collect(),
            group_type_mapping: self.group_type_mapping.clone(),
            cohorts: self.compiled.cohort_definitions().clone(),
            property_matching_version: None,
        }
    }

    /// The project's non-deleted remote-configuration flags, by id.
    pub fn remote_configs(&self) -> &HashMap<i64, RemoteConfig> {
        &self.remote_configs
    }

    /// Every change committed at or below this store revision is in this snapshot (see
    /// [`vexil_store::Store::revisions`]).
    pub fn caught_up_to(&self) -> i64 {
        self.caught_up_to
    }

    /// Body of `/flags/definitions` (and the legacy local-evaluation path).
    pub fn definitions_body(&self) -> Bytes {
        self.feed().body.clone()
    }

    /// Strong ETag of [`ProjectSnapshot::definitions_body`] (quoted).
    pub fn etag(&self) -> &str {
        &self.feed().etag
    }

    fn feed(&self) -> &Feed {
        self.feed.get_or_init(|| {
            // Behavioural cohorts are left out, like static ones: SDKs evaluating locally find
            // the cohort missing and ask `/flags`, where the counts are.
            let cohorts: BTreeMap<String, serde_json::Value> = self
                .compiled
                .cohort_definitions()
                .iter()
                .filter(|(_, group)| !is_behavioral(group))
                .map(|(id, group)| (id.clone(), group.clone()))
                .collect();
            let body = vexil_wire::definitions::feed_body(
                self.compiled.definitions(),
                &self.group_type_mapping,
                &cohorts,
                vexil_wire::definitions::FeedOptions::default(),
            )
            .unwrap_or_else(|e| {
                // Unreachable with stored JSON; an empty feed beats a panic.
                tracing::error!(error = %e, project = %self.project.id, "definitions feed");
                br#"{"flags":[],"group_type_mapping":{},"cohorts":{}}"#.to_vec()
            });
            let etag = vexil_wire::definitions::etag(&body);
            Feed {
                body: Bytes::from(body),
                etag,
            }
        })
    }

    /// The evaluation counters of the compiled flags, by position; `resolve` makes them on the
    /// first call.
    pub fn flag_counters(
        &self,
        resolve: impl FnOnce() -> Box<[Arc<FlagCounter>]>,
    ) -> &[Arc<FlagCounter>] {
        self.counters.get_or_init(resolve)
    }

    /// The project's non-deleted flags (remote-configuration ones included), in id order.
    pub fn flags(&self) -> &[Arc<FlagDefinition>] {
        &self.flags
    }

    /// The non-deleted flag with this key.
    pub fn flag_by_key(&self, key: &str) -> Option<&FlagDefinition> {
        self.flags.iter().find(|f| f.key == key).map(|f| &**f)
    }

    /// The remote-configuration flag with this key.
    pub fn remote_config_flag(&self, key: &str) -> Option<(&FlagDefinition, RemoteConfig)> {
        self.remote_config_flags().find(|(f, _)| f.key == key)
    }

    /// The project's remote-configuration flags, in id order.
    pub fn remote_config_flags(&self) -> impl Iterator<Item = (&FlagDefinition, RemoteConfig)> {
        self.flags
            .iter()
            .filter_map(|f| Some((&**f, *self.remote_configs.get(&f.id)?)))
    }

    /// Whether flag `id` is a remote-configuration flag.
    pub fn is_remote_config(&self, id: i64) -> bool {
        self.remote_configs.contains_key(&id)
    }

    /// Ids of the project's non-deleted cohorts.
    pub fn cohort_ids(&self) -> &HashSet<i64> {
        &self.cohort_ids
    }

    /// Versions of the project's non-deleted cohorts, by id.
    pub fn cohort_versions(&self) -> &BTreeMap<i64, i64> {
        &self.cohort_versions
    }

    /// The store revision this snapshot holds at least: its change events' stamp.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Whether any active flag uses experience continuity (hash-key overrides are then read).
    pub fn uses_continuity(&self) -> bool {
        self.compiled.requirements().continuity
    }

    /// Whether `row` (a flag as just written) can be applied without reloading: the feed's
    /// cohorts are those its flags reference, so a change of references needs the store.
    fn applies(&self, row: &FeatureFlag) -> bool {
        let before = self
            .compiled
            .definitions()
            .find(|d| d.id == row.id)
            .map(feed_cohort_references)
            .unwrap_or_default();
        let after = feed_definition(row)
            .as_ref()
            .map(feed_cohort_references)
            .unwrap_or_default();
        before == after
    }

    /// This snapshot with `row` written (stamped `revision`, caught up to `caught_up_to`):
    /// stored flags and compiled project updated, the feed left to be rebuilt on first read.
    fn with_flag(&self, row: &FeatureFlag, revision: i64, caught_up_to: i64) -> ProjectSnapshot {
        let mut flags = Vec::clone(&self.flags);
        match flags.binary_search_by_key(&row.id, |f| f.id) {
            Ok(i) if row.deleted => {
                flags.remove(i);
            }
            Ok(i) => flags[i] = Arc::new(row.definition()),
            Err(_) if row.deleted => {}
            Err(i) => flags.insert(i, Arc::new(row.definition())),
        }
        let compiled = match feed_definition(row) {
            Some(def) => self.compiled.with_flag(def),
            None => self.compiled.without_flag(row.id),
        };
        let mut remote_configs = HashMap::clone(&self.remote_configs);
        match RemoteConfig::of(row) {
            Some(kind) => remote_configs.insert(row.id, kind),
            None => remote_configs.remove(&row.id),
        };
        ProjectSnapshot {
            project: self.project.clone(),
            caught_up_to,
            compiled,
            revision,
            flags: Arc::new(flags),
            cohort_ids: Arc::clone(&self.cohort_ids),
            cohort_versions: Arc::clone(&self.cohort_versions),
            remote_configs: Arc::new(remote_configs),
            group_type_mapping: self.group_type_mapping.clone(),
            feed: OnceLock::new(),
            counters: OnceLock::new(),
        }
    }

    /// This snapshot with the group types of `other` it lacks, if any (group types are only
    /// ever added, so a snapshot loaded earlier may miss one registered since).
    fn with_group_types_of(&self, other: &ProjectSnapshot) -> Option<ProjectSnapshot> {
        let mut mapping = self.group_type_mapping.clone();
        for (index, name) in &other.group_type_mapping {
            mapping.entry(index.clone()).or_insert_with(|| name.clone());
        }
        (mapping != self.group_type_mapping).then(|| self.with_group_type_mapping(mapping))
    }

    /// This snapshot with group type `index` named `name`.
    fn with_group_type(&self, index: i64, name: &str) -> ProjectSnapshot {
        let mut mapping = self.group_type_mapping.clone();
        mapping.insert(index.to_string(), name.to_owned());
        self.with_group_type_mapping(mapping)
    }

    /// This snapshot with another group type mapping (nothing is recompiled: flags refer to
    /// group types by index); the feed is rebuilt on first read.
    fn with_group_type_mapping(&self, mapping: BTreeMap<String, String>) -> ProjectSnapshot {
        ProjectSnapshot {
            project: self.project.clone(),
            caught_up_to: self.caught_up_to,
            compiled: self.compiled.with_group_types(&mapping),
            revision: self.revision,
            flags: Arc::clone(&self.flags),
            cohort_ids: Arc::clone(&self.cohort_ids),
            cohort_versions: Arc::clone(&self.cohort_versions),
            remote_configs: Arc::clone(&self.remote_configs),
            group_type_mapping: mapping,
            feed: OnceLock::new(),
            counters: OnceLock::new(),
        }
    }
}

/// Whether a cohort's property group has a behavioural criterion.
fn is_behavioral(group: &serde_json::Value) -> bool {
    PropertyGroup::parse(group).is_ok_and(|g| g.filters().iter().any(|f| f.kind() == "behavioral"))
}

/// One project's current snapshot and the lock its writers queue on.
#[derive(Debug)]
struct Slot {
    current: ArcSwap<ProjectSnapshot>,
    writers: Arc<Mutex<()>>,
    /// Snapshots published since the project was loaded (the first load is 1).
    version: AtomicU64,
    /// When the current snapshot was published, in milliseconds since the Unix epoch.
    published_ms: AtomicU64,
    /// Its change events.
    changes: ChangeFeed,
}

impl Slot {
    fn new(snapshot: Arc<ProjectSnapshot>, replay: usize) -> Slot {
        let slot = Slot {
            changes: ChangeFeed::new(snapshot.revision, replay),
            current: ArcSwap::new(snapshot),
            writers: Arc::new(Mutex::new(())),
            version: AtomicU64::new(0),
            published_ms: AtomicU64::new(0),
        };
        slot.published();
        slot
    }

    /// Records a publication (after the swap).
    fn published(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        self.published_ms
            .store(u64::try_from(now).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    /// Publishes the change events from `before` to the current snapshot, if anything changed.
    /// The caller holds the write lock, so `before` is the snapshot the current one replaced.
    fn announce(&self, before: &ProjectSnapshot) {
        let after = self.current.load_full();
        let changes = changes::diff(before, &after);
        if changes.is_empty() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        self.changes.publish(Publication::new(changes, after, now));
    }
}

/// How [`Catalog::catch_up`] brought a project up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    /// It already was (a write of this process published the change).
    Current,
    /// The flags changed elsewhere were applied from their rows.
    Applied,
    /// It was reloaded whole.
    Reloaded,
}

/// A project's current snapshot as `/metrics` reports it.
#[derive(Debug)]
pub struct Published {
    /// The snapshot.
    pub snapshot: Arc<ProjectSnapshot>,
    /// Snapshots published since the project was loaded.
    pub version: u64,
    /// When this one was.
    pub at: SystemTime,
}

#[derive(Default)]
struct Index {
    by_token: HashMap<String, Arc<Slot>>,
    by_id: HashMap<ProjectId, Arc<Slot>>,
}

/// All projects' snapshots; lock-free reads, writes serialised per project.
pub struct Catalog {
    index: ArcSwap<Index>,
    /// Held only while a project is added to the index.
    adding: Mutex<()>,
    /// Projects serving a snapshot older than their store, with the generation of their latest
    /// mark (a retry that started before a newer mark must not clear it).
    stale: std::sync::Mutex<HashMap<ProjectId, u64>>,
    /// Generations for `stale`, and the number of marks ever made (failed publications).
    stale_marks: AtomicU64,
    /// Where project loads are timed.
    metrics: Arc<Metrics>,
    /// Publications each project keeps for replay.
    replay: usize,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("projects", &self.index.load().by_id.len())
            .finish()
    }
}

/// A project's writer: holds the project's write lock until dropped, so nothing else changes
/// the project's flags meanwhile. Get one with [`Catalog::writer`].
pub struct ProjectWriter<'a> {
    catalog: &'a Catalog,
    store: &'a dyn Store,
    slot: Arc<Slot>,
    /// The project's store revision once the lock was taken: this writer's change commits
    /// after it.
    base_revision: i64,
    _turn: OwnedMutexGuard<()>,
}

impl ProjectWriter<'_> {
    /// The project's current snapshot (up to date with the store while this writer lives).
    pub fn snapshot(&self) -> Arc<ProjectSnapshot> {
        self.slot.current.load_full()
    }

    /// Publishes a committed flag row: applied to the snapshot in memory when it can be,
    /// otherwise by reloading the project.
    pub async fn apply(&self, row: &FeatureFlag) -> Result<(), StoreError> {
        if self.slot.current.load().applies(row) {
            // The write's own revision is above the base; the base + 1 is a stamp no higher.
            let revision = self
                .base_revision
                .saturating_add(1)
                .max(self.slot.current.load().revision);
            // If the store's revision counts this write and nothing since the revision the
            // snapshot is caught up to, the snapshot with the row is caught up to it, and the
            // write's announcement finds nothing to reload. Otherwise (another process wrote
            // meanwhile, or the read failed) it stays behind: the announcement reloads it.
            let stored = self.store.revision(row.project_id).await.ok().flatten();
            // Capture may publish a group type meanwhile: recompute on top of it if so.
            let before = self.slot.current.rcu(|current| {
                let caught_up_to = match stored {
                    Some(r) if r == current.caught_up_to + 1 => r,
                    _ => current.caught_up_to,
                };
                Arc::new(current.with_flag(row, revision, caught_up_to))
            });
            self.slot.published();
            self.slot.announce(&before);
            return Ok(());
        }
        self.catalog
            .reload(self.store, &self.slot, self.snapshot().project.id)
            .await
    }

    /// Reloads the project from the store (after a change a row does not describe, such as a
    /// cohort write).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let id = self.snapshot().project.id;
        self.catalog.reload(self.store, &self.slot, id).await
    }
}

impl Catalog {
    /// Loads and compiles every project, timing the loads into `metrics`.
    /// Each project keeps its latest `replay` publications for streams that reconnect.
    pub async fn load(
        store: &dyn Store,
        metrics: Arc<Metrics>,
        replay: usize,
    ) -> Result<Catalog, StoreError> {
        let catalog = Catalog::of(Vec::new(), metrics, replay);
        for project in store.list_projects().await? {
            catalog.refresh(store, project.id).await?;
        }
        Ok(catalog)
    }

    /// A catalog of these snapshots (compiled elsewhere: from the copy saved on disk).
    pub fn of(snapshots: Vec<ProjectSnapshot>, metrics: Arc<Metrics>, replay: usize) -> Catalog {
        let mut index = Index::default();
        for snapshot in snapshots {
            let snapshot = Arc::new(snapshot);
            let slot = Arc::new(Slot::new(Arc::clone(&snapshot), replay));
            index
                .by_token
                .insert(snapshot.project.api_token.clone(), Arc::clone(&slot));
            index.by_id.insert(snapshot.project.id, slot);
        }
        Catalog {
            index: ArcSwap::from_pointee(index),
            adding: Mutex::new(()),
            stale: std::sync::Mutex::new(HashMap::new()),
            stale_marks: AtomicU64::new(0),
            metrics,
            replay,
        }
    }

    /// The snapshot for a public project token.
    pub fn by_token(&self, token: &str) -> Option<Arc<ProjectSnapshot>> {
        Some(self.index.load().by_token.get(token)?.current.load_full())
    }

    /// The snapshot for a project id.
    pub fn by_id(&self, id: ProjectId) -> Option<Arc<ProjectSnapshot>> {
        Some(self.index.load().by_id.get(&id)?.current.load_full())
    }

    /// Subscribes to project `id`'s change events, for a client that last saw `last_event_id`,
    /// with the snapshot current when it subscribed (publications after it arrive on the
    /// subscription).
    pub fn subscribe(
        &self,
        id: ProjectId,
        last_event_id: Option<i64>,
    ) -> Option<(Arc<ProjectSnapshot>, Subscription)> {
        let slot = self.slot(id)?;
        let subscription = slot.changes.subscribe(last_event_id);
        // Loaded after subscribing: the snapshot is at least as new as every publication the
        // subscription replays.
        Some((slot.current.load_full(), subscription))
    }

    /// Streams listening to change events, over every project.
    pub fn listeners(&self) -> usize {
        self.index
            .load()
            .by_id
            .values()
            .map(|slot| slot.changes.listeners())
            .sum()
    }

    /// Every project's current snapshot with its version and publication time, by project id.
    pub fn published(&self) -> Vec<Published> {
        let index = self.index.load();
        let mut all: Vec<Published> = index
            .by_id
            .values()
            .map(|slot| Published {
                snapshot: slot.current.load_full(),
                version: slot.version.load(Ordering::Relaxed),
                at: UNIX_EPOCH + Duration::from_millis(slot.published_ms.load(Ordering::Relaxed)),
            })
            .collect();
        all.sort_by_key(|p| p.snapshot.project.id);
        all
    }

    /// Number of loaded projects.
    pub fn len(&self) -> usize {
        self.index.load().by_id.len()
    }

    /// Whether no project is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for the project's write lock (loading the project first if needed).
    pub async fn writer<'a>(
        &'a self,
        store: &'a dyn Store,
        id: ProjectId,
    ) -> Result<ProjectWriter<'a>, StoreError> {
        let slot = match self.slot(id) {
            Some(slot) => slot,
            None => {
                self.refresh(store, id).await?;
                self.slot(id)
                    .ok_or(StoreError::NotFound { entity: "project" })?
            }
        };
        let turn = Arc::clone(&slot.writers).lock_owned().await;
        let base_revision = store
            .revision(id)
            .await?
            .ok_or(StoreError::NotFound { entity: "project" })?;
        Ok(ProjectWriter {
            catalog: self,
            store,
            slot,
            base_revision,
            _turn: turn,
        })
    }

    /// The revision the project's snapshot is caught up to
    /// ([`ProjectSnapshot::caught_up_to`]); `None` if it is not loaded.
    pub fn caught_up_to(&self, id: ProjectId) -> Option<i64> {
        Some(
            self.index
                .load()
                .by_id
                .get(&id)?
                .current
                .load()
                .caught_up_to,
        )
    }

    /// Ids of the loaded projects.
    pub fn ids(&self) -> Vec<ProjectId> {
        self.index.load().by_id.keys().copied().collect()
    }

    /// Brings the project's snapshot up to `revision` unless, once its write lock is held, it is
    /// already caught up to it (a write of this process published it meanwhile). When only
    /// flags changed since the revision the snapshot is caught up to, their rows — read in one
    /// snapshot of the store with the revision they bring it to ([`Store::changes_since`]) —
    /// are applied like a local write's, recompiling only those flags; otherwise (a cohort or
    /// key changed, a gap in the store's log, a flag whose cohort references changed) the
    /// project is reloaded. Loads a project not loaded yet.
    pub async fn catch_up(
        &self,
        store: &dyn Store,
        id: ProjectId,
        revision: i64,
    ) -> Result<CatchUp, StoreError> {
        let Some(slot) = self.slot(id) else {
            self.refresh(store, id).await?;
            return Ok(CatchUp::Reloaded);
        };
        let _turn = slot.writers.lock().await;
        let current = slot.current.load_full();
        if current.caught_up_to >= revision {
            return Ok(CatchUp::Current);
        }
        if self.replay(store, &slot, &current).await? {
            return Ok(CatchUp::Applied);
        }
        self.reload(store, &slot, id).await?;
        Ok(CatchUp::Reloaded)
    }

    /// Applies the flags changed since `current` (the slot's snapshot; the caller holds its
    /// write lock) when that is all that changed; returns whether it did.
    async fn replay(
        &self,
        store: &dyn Store,
        slot: &Slot,
        current: &Arc<ProjectSnapshot>,
    ) -> Result<bool, StoreError> {
        let id = current.project.id;
        let marks_before = self.stale_marks.load(Ordering::SeqCst);
        let changes = self
            .metrics
            .store_call(
                StoreOp::ChangesSince,
                store.changes_since(id, current.caught_up_to),
            )
            .await?
            .ok_or(StoreError::NotFound { entity: "project" })?;
        let Replay::Flags(rows) = changes.replay else {
            return Ok(false);
        };
        if changes.revision < current.caught_up_to {
            return Ok(false);
        }
        // Every row applied in turn: the snapshot of `changes.revision`, whatever the order.
        let stamp = changes.revision.max(current.revision);
        let mut next = Arc::clone(current);
        for row in &rows {
            if !next.applies(row) {
                return Ok(false);
            }
            next = Arc::new(next.with_flag(row, stamp, changes.revision));
        }
        // Only capture publishes without the lock, and only group types: keep any it added.
        let before = slot.current.rcu(|now| {
            if Arc::ptr_eq(now, current) {
                Arc::clone(&next)
            } else {
                next.with_group_types_of(now)
                    .map_or_else(|| Arc::clone(&next), Arc::new)
            }
        });
        slot.published();
        slot.announce(&before);
        self.clear_stale(id, marks_before);
        Ok(true)
    }

    /// Forgets a project deleted from the store: its token stops resolving.
    pub async fn remove(&self, id: ProjectId) {
        let _adding = self.adding.lock().await;
        let current = self.index.load_full();
        let Some(slot) = current.by_id.get(&id) else {
            return;
        };
        let token = slot.current.load().project.api_token.clone();
        let mut by_token = current.by_token.clone();
        let mut by_id = current.by_id.clone();
        by_id.remove(&id);
        if by_token.get(&token).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            by_token.remove(&token);
        }
        self.index.store(Arc::new(Index { by_token, by_id }));
    }

    /// Reloads one project from the store, recompiles it and swaps it in (adding it if new).
    pub async fn refresh(&self, store: &dyn Store, id: ProjectId) -> Result<(), StoreError> {
        if let Some(slot) = self.slot(id) {
            let _turn = slot.writers.lock().await;
            return self.reload(store, &slot, id).await;
        }
        let _adding = self.adding.lock().await;
        if let Some(slot) = self.slot(id) {
            drop(_adding);
            let _turn = slot.writers.lock().await;
            return self.reload(store, &slot, id).await;
        }
        let snapshot = Arc::new(self.load_project(store, id).await?);
        let slot = Arc::new(Slot::new(Arc::clone(&snapshot), self.replay));
        let current = self.index.load_full();
        let mut by_token = current.by_token.clone();
        let mut by_id = current.by_id.clone();
        by_token.insert(snapshot.project.api_token.clone(), Arc::clone(&slot));
        by_id.insert(id, slot);
        self.index.store(Arc::new(Index { by_token, by_id }));
        Ok(())
    }

    /// Publishes group type `index` (registered by capture) without waiting for writers or
    /// compiling anything; a no-op for a project not loaded yet (its load reads the type).
    pub fn add_group_type(&self, id: ProjectId, index: i64, name: &str) {
        if let Some(slot) = self.slot(id) {
            let before = slot.current.rcu(|current| {
                if current.compiled.group_type(index) == Some(name) {
                    Arc::clone(current)
                } else {
                    Arc::new(current.with_group_type(index, name))
                }
            });
            if before.compiled.group_type(index) != Some(name) {
                slot.published();
            }
        }
    }

    /// Records that a committed change of project `id` did not reach its snapshot. Returns
    /// whether the project was not stale already (the caller then starts the retries).
    pub fn mark_stale(&self, id: ProjectId) -> bool {
        let generation = self.stale_marks.fetch_add(1, Ordering::SeqCst) + 1;
        self.stale_set().insert(id, generation).is_none()
    }

    /// The generation of the project's latest stale mark; `None` when it is up to date (a
    /// reload that began after the mark succeeded).
    pub fn stale_generation(&self, id: ProjectId) -> Option<u64> {
        self.stale_set().get(&id).copied()
    }

    /// Number of projects serving a snapshot older than their store (a gauge).
    pub fn stale_count(&self) -> usize {
        self.stale_set().len()
    }

    /// Committed changes that failed to reach their snapshot at first, since start (a counter).
    pub fn failed_publications(&self) -> u64 {
        self.stale_marks.load(Ordering::SeqCst)
    }

    fn stale_set(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, u64>> {
        // The map stays consistent even if a holder panicked: every update is one call.
        self.stale
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, id: ProjectId) -> Option<Arc<Slot>> {
        self.index.load().by_id.get(&id).cloned()
    }

    /// Loads the project into `slot`; the caller holds the slot's write lock. Clears the
    /// project's stale mark if it was made before this reload began (whoever reloads: a retry,
    /// a later write, change propagation).
    async fn reload(
        &self,
        store: &dyn Store,
        slot: &Slot,
        id: ProjectId,
    ) -> Result<(), StoreError> {
        let marks_before = self.stale_marks.load(Ordering::SeqCst);
        let fresh = Arc::new(self.load_project(store, id).await?);
        // Only capture publishes without the lock, and only group types: keep any it added
        // after our read.
        let before = slot
            .current
            .rcu(|current| match fresh.with_group_types_of(current) {
                Some(merged) => Arc::new(merged),
                None => Arc::clone(&fresh),
            });
        slot.published();
        slot.announce(&before);
        self.clear_stale(id, marks_before);
        if before.project.api_token != fresh.project.api_token {
            self.retoken(id, &before.project.api_token, &fresh.project.api_token)
                .await;
        }
        Ok(())
    }

    /// Clears the project's stale mark if it was made before `marks_before` was read (the
    /// start of a publication that has now succeeded).
    fn clear_stale(&self, id: ProjectId, marks_before: u64) {
        let mut stale = self.stale_set();
        if stale.get(&id).is_some_and(|mark| *mark <= marks_before) {
            stale.remove(&id);
        }
    }

    /// Moves the project's entry in the token index from `old` to `new`.
    async fn retoken(&self, id: ProjectId, old: &str, new: &str) {
        let _adding = self.adding.lock().await;
        let current = self.index.load_full();
        let Some(slot) = current.by_id.get(&id) else {
            return;
        };
        let mut by_token = current.by_token.clone();
        if by_token.get(old).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            by_token.remove(old);
        }
        by_token.insert(new.to_owned(), Arc::clone(slot));
        let by_id = current.by_id.clone();
        self.index.store(Arc::new(Index { by_token, by_id }));
    }

    async fn load_project(
        &self,
        store: &dyn Store,
        id: ProjectId,
    ) -> Result<ProjectSnapshot, StoreError> {
        self.metrics
            .store_call(StoreOp::LoadProject, ProjectSnapshot::load(store, id))
            .await
    }
}
