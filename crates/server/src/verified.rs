//! Credentials the store last confirmed, kept (as hashes) only so that the local-evaluation
//! feed keeps answering while the store is unreachable.
//!
//! Every key check still asks the store first ([`crate::extract::auth`]); this is consulted only
//! when that call fails because the database cannot be reached. A key the store refuses is
//! forgotten at once, so a rotation or revocation is honoured from the next check that reaches
//! the store. The trade-off: a key revoked by another node while this one never checked it
//! again is still accepted here until the database is back (it cannot be revoked meanwhile).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use vexil_store::{hash_key, KeyKind, ProjectId};

/// The hash of the last key of each kind the store accepted, per project.
#[derive(Debug, Default)]
pub struct VerifiedKeys {
    keys: Mutex<HashMap<(ProjectId, KeyKind), String>>,
}

/// A project's confirmed key hashes, as saved on disk with its definitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectKeys {
    /// Hash of the secret key (`phs_…`) last accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Hash of the personal key (`phx_…`) last accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<String>,
}

impl VerifiedKeys {
    /// Records the store's answer for `key`: accepted keys are remembered, a refused one is
    /// forgotten if it was the one remembered.
    pub fn record(&self, project: ProjectId, kind: KeyKind, key: &str, accepted: bool) {
        let hash = hash_key(key);
        let mut keys = self.lock();
        if accepted {
            keys.insert((project, kind), hash);
        } else if keys.get(&(project, kind)) == Some(&hash) {
            keys.remove(&(project, kind));
        }
    }

    /// Whether the store last accepted `key` (asked only while it cannot be reached).
    pub fn accepted(&self, project: ProjectId, kind: KeyKind, key: &str) -> bool {
        self.lock().get(&(project, kind)) == Some(&hash_key(key))
    }

    /// The project's remembered hashes.
    pub fn of(&self, project: ProjectId) -> ProjectKeys {
        let keys = self.lock();
        ProjectKeys {
            secret: keys.get(&(project, KeyKind::Secret)).cloned(),
            personal: keys.get(&(project, KeyKind::Personal)).cloned(),
        }
    }

    /// Remembers saved hashes (a node starting from its saved definitions).
    pub fn restore(&self, project: ProjectId, saved: ProjectKeys) {
        let mut keys = self.lock();
        for (kind, hash) in [
            (KeyKind::Secret, saved.secret),
            (KeyKind::Personal, saved.personal),
        ] {
            if let Some(hash) = hash {
                keys.insert((project, kind), hash);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(ProjectId, KeyKind), String>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
