//! Projects (PostHog "teams"): the unit that owns flags, cohorts, persons and events.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A project's numeric id (`team_id` in PostHog payloads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectId(pub i64);

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A stored project. Holds no secrets: only the public token is kept in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Server-assigned id.
    pub id: ProjectId,
    /// Display name.
    pub name: String,
    /// Public project token (`phc_…`), used by SDKs to name the project.
    pub api_token: String,
    /// When the project was created.
    pub created_at: DateTime<Utc>,
}

/// The result of creating a project: the only moment its secret keys exist in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct CreatedProject {
    /// The stored project (with its public token).
    pub project: Project,
    /// Secret key (`phs_…`): authorises the local-evaluation feed. Not retrievable later.
    pub secret_key: String,
    /// Personal API key (`phx_…`): authorises the management API. Not retrievable later.
    pub personal_key: String,
}

impl fmt::Debug for CreatedProject {
    // Keys must not leak into logs through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedProject")
            .field("project", &self.project)
            .field("secret_key", &"phs_…")
            .field("personal_key", &"phx_…")
            .finish()
    }
}

/// Highest group type index PostHog allows (indexes are 0 to 4).
pub const MAX_GROUP_TYPE_INDEX: i64 = vexil_engine::model::MAX_GROUP_TYPE_INDEX;

/// One entry of a project's group type mapping (`{"0": "company"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupType {
    /// 0 to [`MAX_GROUP_TYPE_INDEX`], assigned in order of first use.
    pub group_type_index: i64,
    /// The group type name used in requests' `groups` (e.g. `"company"`).
    pub name: String,
}
