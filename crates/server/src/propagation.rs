//! Change propagation: every committed change of a project's definitions or keys — made by
//! this process or by another sharing the database — reaches this process's snapshot.
//!
//! Two paths lead to one rule. The store's change feed ([`vexil_store::Store::changes`]: PostgreSQL's
//! `LISTEN/NOTIFY`) announces `(project, revision)` as changes commit, for speed; a periodic
//! comparison of every project's revision ([`vexil_store::Store::revisions`], every
//! [`Settings::revision_check_interval`], and at once whenever the feed re-subscribes) is the
//! safety net that heals a lost announcement or a backend without a feed, and finds projects
//! created or deleted elsewhere. Either way, a project whose stored revision is newer than its
//! snapshot's ([`crate::snapshot::ProjectSnapshot::caught_up_to`]) is brought up to it: the
//! flags changed since are read and applied one by one when only flags changed, the project
//! reloaded otherwise ([`crate::snapshot::Catalog::catch_up`]).
//!
//! Reloads are coalesced: one in flight per project; announcements arriving meanwhile raise the
//! revision it must reach, and it reloads again until the snapshot is current with it. A write
//! of this process publishes its snapshot with the write's revision, and a reload first takes
//! the project's write lock and looks again ([`crate::snapshot::Catalog::catch_up`]), so the
//! announcement of a local write reloads nothing.
//!
//! [`Settings::revision_check_interval`]: crate::Settings::revision_check_interval

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use vexil_store::{Change, ProjectId, StoreError};

use crate::metrics::ReloadTrigger;
use crate::state::AppState;

/// Keeps the process's snapshots current with the store until dropped (aborted).
pub(crate) async fn run(state: AppState) {
    let reloads = Arc::new(Reloads::default());
    let check_now = Arc::new(Notify::new());
    tokio::join!(
        listen(state.clone(), Arc::clone(&reloads), Arc::clone(&check_now)),
        check_periodically(state, reloads, check_now),
    );
}

/// Follows the store's change feed, if it has one.
async fn listen(state: AppState, reloads: Arc<Reloads>, check_now: Arc<Notify>) {
    let Some(mut changes) = state.store.changes() else {
        return;
    };
    while let Some(change) = changes.recv().await {
        state.metrics.propagation.feed(change);
        match change {
            Change::Committed { project, revision } => {
                if behind(&state, project, revision) {
                    reloads.request(&state, project, revision, ReloadTrigger::Announcement);
                }
            }
            Change::Resubscribed => check_now.notify_one(),
            Change::Lost => tracing::warn!(
                "change feed lost its connection: changes reach this node through the revision check until it is back"
            ),
        }
    }
}

/// Compares revisions every interval, and whenever the feed asks.
async fn check_periodically(state: AppState, reloads: Arc<Reloads>, check_now: Arc<Notify>) {
    let mut tick = tokio::time::interval(state.settings.revision_check_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = check_now.notified() => {}
        }
        if let Err(e) = check(&state, &reloads).await {
            tracing::warn!(error = %e, "revision check failed");
        }
    }
}

/// One comparison of every project's stored revision with its snapshot's.
async fn check(state: &AppState, reloads: &Arc<Reloads>) -> Result<(), StoreError> {
    let stored = state.store.revisions().await?;
    for &(project, revision) in &stored {
        if behind(state, project, revision) {
            reloads.request(state, project, revision, ReloadTrigger::Check);
        }
    }
    let listed: HashSet<ProjectId> = stored.iter().map(|(project, _)| *project).collect();
    for project in state.catalog.ids() {
        // A project created after the listing was read is not deleted: ask for it.
        if !listed.contains(&project) && state.store.get_project(project).await?.is_none() {
            tracing::info!(project = %project, "project deleted from the store: unloaded");
            state.catalog.remove(project).await;
        }
    }
    Ok(())
}

/// Whether the project's snapshot is older than `revision` (or missing).
fn behind(state: &AppState, project: ProjectId, revision: i64) -> bool {
    state
        .catalog
        .caught_up_to(project)
        .is_none_or(|current| current < revision)
}

/// The reloads in flight, by project.
#[derive(Default)]
struct Reloads {
    pending: Mutex<HashMap<ProjectId, Pending>>,
}

/// A reload in flight: the revision it must reach, and since when a change waits for it.
struct Pending {
    revision: i64,
    since: Instant,
    trigger: ReloadTrigger,
}

impl Reloads {
    /// Brings the project up to `revision`: starts a reload, or raises the target of the one in
    /// flight.
    fn request(
        self: &Arc<Self>,
        state: &AppState,
        project: ProjectId,
        revision: i64,
        trigger: ReloadTrigger,
    ) {
        match self.lock().entry(project) {
            Entry::Occupied(mut pending) => {
                let pending = pending.get_mut();
                pending.revision = pending.revision.max(revision);
                return;
            }
            Entry::Vacant(slot) => {
                slot.insert(Pending {
                    revision,
                    since: Instant::now(),
                    trigger,
                });
            }
        }
        tokio::spawn(Arc::clone(self).reload(state.clone(), project));
    }

    /// Reloads until the snapshot is current with the latest requested revision.
    async fn reload(self: Arc<Self>, state: AppState, project: ProjectId) {
        loop {
            let Some(target) = self.lock().get(&project).map(|p| p.revision) else {
                return;
            };
            let result = state
                .catalog
                .catch_up(state.store.as_ref(), project, target)
                .await;
            let mut pending = self.lock();
            match result {
                Ok(how) => {
                    let current = state.catalog.caught_up_to(project).unwrap_or(i64::MIN);
                    let Entry::Occupied(entry) = pending.entry(project) else {
                        return;
                    };
                    if current < entry.get().revision {
                        // Announced meanwhile: once more.
                        continue;
                    }
                    let done = entry.remove();
                    drop(pending);
                    state
                        .metrics
                        .propagation
                        .caught_up(done.trigger, how, done.since.elapsed());
                    return;
                }
                // Deleted before it could be loaded: nothing to bring up to date.
                Err(StoreError::NotFound { .. })
                    if state.catalog.caught_up_to(project).is_none() =>
                {
                    pending.remove(&project);
                    return;
                }
                Err(e) => {
                    pending.remove(&project);
                    drop(pending);
                    // Retried with backoff until a reload succeeds.
                    state.stale(project, &e);
                    return;
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, Pending>> {
        // Every update is one call: the map stays consistent even if a holder panicked.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
