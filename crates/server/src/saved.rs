//! The last good definitions of every project, saved on local disk, so that a node started
//! while its database is unreachable serves them instead of nothing.
//!
//! [`keep_saved`] writes each project's snapshot inputs (what [`ProjectSnapshot::load`] reads:
//! the project with its token, its flags, the definitions feed's cohorts and group types, and
//! the store's revision) to `<dir>/project-<id>.json` shortly after each publication — temp
//! file, fsync, rename, fsync of the directory, so a crash leaves the old copy or the new one,
//! never half of one. At start-up [`SnapshotDir::load`] reads them back when the store cannot
//! be reached; [`LastKnown`] then says so (readiness, metrics) until [`recover`] has reloaded
//! every project from the store.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vexil_engine::{Definitions, FlagDefinition};
use vexil_store::{Project, ProjectId, StoreError};

use crate::snapshot::{ProjectSnapshot, RemoteConfig};
use crate::state::AppState;
use crate::verified::ProjectKeys;

/// The version of the file format below; a file of another version is ignored.
const FORMAT: u32 = 1;

/// One project's saved snapshot inputs (the file's content).
#[derive(Debug, Serialize, Deserialize)]
struct SavedProject {
    format: u32,
    /// When the file was written.
    saved_at: DateTime<Utc>,
    /// The store revision the snapshot holds at least (every change committed up to it).
    revision: i64,
    project: Project,
    definitions: Definitions,
    /// Non-deleted flags, remote-configuration ones included.
    flags: Vec<FlagDefinition>,
    /// Versions of the non-deleted cohorts, by id.
    cohort_versions: BTreeMap<i64, i64>,
    /// The non-deleted remote-configuration flags, by id.
    #[serde(default)]
    remote_configs: HashMap<i64, RemoteConfig>,
    /// Hashes of the feed keys the store last accepted ([`crate::verified`]), so the feed
    /// answers after a restart while the database is down.
    #[serde(default)]
    keys: ProjectKeys,
}

/// What is known of a project's saved copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedInfo {
    /// The project.
    pub project: ProjectId,
    /// Its store revision when saved.
    pub revision: i64,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
}

/// Why the saved copy could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    /// A file or the directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a saved snapshot of this format.
    #[error("{path}: not a saved snapshot: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The directory holding the saved copies (`--snapshot-dir`).
#[derive(Debug, Clone)]
pub struct SnapshotDir {
    path: PathBuf,
}

impl SnapshotDir {
    /// The directory at `path` (created on first save).
    pub fn new(path: PathBuf) -> SnapshotDir {
        SnapshotDir { path }
    }

    fn file(&self, project: ProjectId) -> PathBuf {
        self.path.join(format!("project-{project}.json"))
    }

    /// Writes `snapshot` atomically, replacing the project's older copy.
    fn save(&self, snapshot: &ProjectSnapshot, keys: ProjectKeys) -> Result<SavedInfo, SavedError> {
        let revision = snapshot.revision();
        let saved = SavedProject {
            format: FORMAT,
            saved_at: Utc::now(),
            revision,
            project: snapshot.project.clone(),
            definitions: snapshot.definitions(),
            flags: snapshot
                .flags()
                .iter()
                .map(|f| FlagDefinition::clone(f))
                .collect(),
            cohort_versions: snapshot.cohort_versions().clone(),
            remote_configs: snapshot.remote_configs().clone(),
            keys,
        };
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SavedError::Io { path, source }
        };
        let bytes = serde_json::to_vec(&saved).map_err(|source| SavedError::Parse {
            path: self.file(saved.project.id),
            source,
        })?;
        std::fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        let target = self.file(saved.project.id);
        let temp = self
            .path
            .join(format!(".project-{}.json.tmp", saved.project.id));
        let mut file = std::fs::File::create(&temp).map_err(io(&temp))?;
        file.write_all(&bytes).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
        drop(file);
        std::fs::rename(&temp, &target).map_err(io(&target))?;
        // The rename is durable once the directory is.
        std::fs::File::open(&self.path)
            .and_then(|dir| dir.sync_all())
            .map_err(io(&self.path))?;
        Ok(SavedInfo {
            project: saved.project.id,
            revision,
            saved_at: saved.saved_at,
        })
    }

    /// Every project saved here, compiled. A file that cannot be read is logged and skipped
    /// (its project is then unknown to this node until the store answers); a missing directory
    /// holds nothing.
    pub fn load(&self) -> Result<Vec<(ProjectSnapshot, SavedInfo, ProjectKeys)>, SavedError> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(SavedError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut loaded = Vec::new();
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(source) => {
                    return Err(SavedError::Io {
                        path: self.path.clone(),
                        source,
                    })
                }
            };
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !(name.starts_with("project-") && name.ends_with(".json")) {
                continue;
            }
            match read(&path) {
                Ok(saved) => loaded.push(saved),
                Err(e) => tracing::error!(error = %e, "saved snapshot skipped"),
            }
        }
        loaded.sort_by_key(|(s, _, _)| s.project.id);
        Ok(loaded)
    }
}

fn read(path: &Path) -> Result<(ProjectSnapshot, SavedInfo, ProjectKeys), SavedError> {
    let bytes = std::fs::read(path).map_err(|source| SavedError::Io {
        path: path.to_owned(),
        source,
    })?;
    let saved: SavedProject =
        serde_json::from_slice(&bytes).map_err(|source| SavedError::Parse {
            path: path.to_owned(),
            source,
        })?;
    if saved.format != FORMAT {
        return Err(SavedError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(format!(
                "format {} (this build reads {FORMAT})",
                saved.format
            )),
        });
    }
    let info = SavedInfo {
        project: saved.project.id,
        revision: saved.revision,
        saved_at: saved.saved_at,
    };
    let snapshot = ProjectSnapshot::from_inputs(
        saved.project,
        saved.revision,
        &saved.definitions,
        saved.flags,
        saved.cohort_versions,
        saved.remote_configs,
    );
    Ok((snapshot, info, saved.keys))
}

/// Whether this node serves definitions loaded from its saved copy (it started while the store
/// was unreachable) rather than from the store, and what the copies were.
#[derive(Debug, Default)]
pub struct LastKnown {
    serving: Mutex<Option<Vec<SavedInfo>>>,
    /// Saves that failed since start (the directory unwritable, the disk full).
    save_failures: std::sync::atomic::AtomicU64,
}

impl LastKnown {
    /// Serving the store's definitions.
    pub fn from_store() -> LastKnown {
        LastKnown::default()
    }

    /// Serving these saved copies until the store answers.
    pub fn from_disk(saved: Vec<SavedInfo>) -> LastKnown {
        LastKnown {
            serving: Mutex::new(Some(saved)),
            ..LastKnown::default()
        }
    }

    /// The saved copies served, while the node has not reached its store since start-up.
    pub fn serving(&self) -> Option<Vec<SavedInfo>> {
        self.serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn caught_up(&self) {
        *self.serving.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Saves that failed since start (a counter).
    pub fn save_failures(&self) -> u64 {
        self.save_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Saves every project whose snapshot changed, every `interval`, for as long as it runs. While
/// the node serves its saved copy nothing is saved (it would only rewrite the same definitions
/// with a newer time).
pub async fn keep_saved(state: AppState, dir: SnapshotDir, interval: Duration) {
    let mut saved: HashMap<ProjectId, (u64, ProjectKeys)> = HashMap::new();
    let mut failing = false;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if state.last_known.serving().is_some() {
            continue;
        }
        for published in state.catalog.published() {
            let id = published.snapshot.project.id;
            let keys = state.verified_keys.of(id);
            let current = (published.version, keys);
            if saved.get(&id) == Some(&current) {
                continue;
            }
            let (snapshot, dir) = (Arc::clone(&published.snapshot), dir.clone());
            let keys = current.1.clone();
            let written = tokio::task::spawn_blocking(move || dir.save(&snapshot, keys)).await;
            match written {
                Ok(Ok(info)) => {
                    if failing {
                        tracing::info!("saving snapshots works again");
                        failing = false;
                    }
                    tracing::debug!(project = %id, revision = info.revision, "snapshot saved");
                    saved.insert(id, current);
                }
                Ok(Err(e)) => {
                    state
                        .last_known
                        .save_failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !failing {
                        tracing::error!(error = %e, "snapshot not saved: a node restarted while the database is down would serve older definitions; retrying");
                        failing = true;
                    }
                }
                Err(e) => tracing::error!(error = %e, "snapshot save task failed"),
            }
        }
    }
}

/// Reloads every project from the store once it answers (migrating first), then rebuilds the
/// behavioural counters and stops serving the saved copy. Retries with backoff until it does.
pub async fn recover(state: AppState) {
    const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_millis(500));
    let mut wait = BACKOFF.0;
    let mut attempts = 0u32;
    loop {
        tokio::time::sleep(wait).await;
        attempts += 1;
        match reload_all(&state).await {
            Ok(projects) => {
                state.last_known.caught_up();
                tracing::info!(
                    attempts,
                    projects,
                    "the store answers: definitions reloaded, no longer serving the saved copy"
                );
                return;
            }
            Err(e) => {
                if attempts == 1 || attempts % 60 == 0 {
                    tracing::warn!(error = %e, attempts, "the store still does not answer; serving the saved definitions");
                }
                wait = (wait * 2).min(BACKOFF.1);
            }
        }
    }
}

async fn reload_all(state: &AppState) -> Result<usize, StoreError> {
    let store = state.store.as_ref();
    store.migrate().await?;
    let projects = store.list_projects().await?;
    for project in &projects {
        state.catalog.refresh(store, project.id).await?;
    }
    crate::state::sync_all_counters(
        store,
        &state.catalog,
        state.counters.as_ref(),
        &state.settings.clock,
    )
    .await;
    Ok(projects.len())
}
