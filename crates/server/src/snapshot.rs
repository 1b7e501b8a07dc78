//! In-memory compiled snapshots of every project, swapped atomically on each change.
//!
//! `/flags`, local evaluation and (later) streaming read definitions only from here: a request
//! never queries the database for definitions. A change made through the management API writes
//! to the store, then calls [`Catalog::refresh`], which reloads and recompiles that project and
//! swaps the new snapshot in; readers holding the old `Arc` finish with it undisturbed.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::sync::Mutex;
use vexil_engine::{CompiledProject, Definitions};
use vexil_store::{Project, ProjectId, Store, StoreError};

/// One project's definitions, compiled, with the local-evaluation payload pre-serialised.
#[derive(Debug)]
pub struct ProjectSnapshot {
    /// The project.
    pub project: Project,
    /// Compiled flags and cohorts.
    pub compiled: CompiledProject,
    /// Body of `/flags/definitions` (and the legacy local-evaluation path).
    pub definitions_body: Bytes,
    /// Strong ETag of `definitions_body` (quoted).
    pub etag: String,
}

impl ProjectSnapshot {
    /// Builds a snapshot from a project's stored definitions.
    pub fn build(
        project: Project,
        definitions: &Definitions,
    ) -> Result<ProjectSnapshot, vexil_wire::definitions::DefinitionsError> {
        let compiled = CompiledProject::compile(definitions);
        let definitions_body = Bytes::from(vexil_wire::definitions::body(
            definitions,
            vexil_wire::definitions::FeedOptions::default(),
        )?);
        let etag = vexil_wire::definitions::etag(&definitions_body);
        Ok(ProjectSnapshot {
            project,
            compiled,
            definitions_body,
            etag,
        })
    }
}

impl ProjectSnapshot {
    /// Whether any active flag uses experience continuity (hash-key overrides are then read).
    pub fn uses_continuity(&self) -> bool {
        self.compiled.requirements().continuity
    }
}

#[derive(Default)]
struct Index {
    by_token: HashMap<String, Arc<ProjectSnapshot>>,
    by_id: HashMap<ProjectId, Arc<ProjectSnapshot>>,
}

/// All projects' snapshots; lock-free reads, serialised refreshes.
pub struct Catalog {
    index: ArcSwap<Index>,
    refresh_lock: Mutex<()>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("projects", &self.index.load().by_id.len())
            .finish()
    }
}

impl Catalog {
    /// Loads and compiles every project.
    pub async fn load(store: &dyn Store) -> Result<Catalog, StoreError> {
        let catalog = Catalog {
            index: ArcSwap::from_pointee(Index::default()),
            refresh_lock: Mutex::new(()),
        };
        for project in store.list_projects().await? {
            catalog.refresh(store, project.id).await?;
        }
        Ok(catalog)
    }

    /// The snapshot for a public project token.
    pub fn by_token(&self, token: &str) -> Option<Arc<ProjectSnapshot>> {
        self.index.load().by_token.get(token).cloned()
    }

    /// The snapshot for a project id.
    pub fn by_id(&self, id: ProjectId) -> Option<Arc<ProjectSnapshot>> {
        self.index.load().by_id.get(&id).cloned()
    }

    /// Number of loaded projects.
    pub fn len(&self) -> usize {
        self.index.load().by_id.len()
    }

    /// Whether no project is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads projects created by another process (e.g. `vexil project create` while the server
    /// runs). Returns how many were added.
    pub async fn load_new_projects(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let mut added = 0;
        for project in store.list_projects().await? {
            if self.by_id(project.id).is_none() {
                self.refresh(store, project.id).await?;
                added += 1;
            }
        }
        Ok(added)
    }

    /// Reloads one project from the store, recompiles it and swaps it in. Refreshes are
    /// serialised and always read the latest stored state, so the last one wins with the newest
    /// data.
    pub async fn refresh(&self, store: &dyn Store, id: ProjectId) -> Result<(), StoreError> {
        let _serialised = self.refresh_lock.lock().await;
        let Some(project) = store.get_project(id).await? else {
            return Err(StoreError::NotFound { entity: "project" });
        };
        let definitions = store.definitions(id).await?;
        let snapshot = ProjectSnapshot::build(project, &definitions)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let snapshot = Arc::new(snapshot);
        let current = self.index.load_full();
        let mut by_token = current.by_token.clone();
        let mut by_id = current.by_id.clone();
        by_token.insert(snapshot.project.api_token.clone(), Arc::clone(&snapshot));
        by_id.insert(id, snapshot);
        self.index.store(Arc::new(Index { by_token, by_id }));
        Ok(())
    }
}
