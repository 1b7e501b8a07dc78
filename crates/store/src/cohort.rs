//! Cohorts: dynamic ones (a property group evaluated by the engine) and static ones (a stored
//! list of distinct ids).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::project::ProjectId;

/// A stored cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    /// Server-assigned id, unique across projects.
    pub id: i64,
    /// Owning project.
    pub project_id: ProjectId,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `{"properties": {"type": "AND"|"OR", "values": [...]}}` (§6); `{}` for static cohorts.
    pub filters: Value,
    /// Static cohorts hold an explicit member list instead of rules.
    pub is_static: bool,
    /// Soft-deleted.
    pub deleted: bool,
    /// Starts at 1; every successful update adds 1.
    pub version: i64,
    /// Creator label, when known.
    pub created_by: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Time of the last change.
    pub updated_at: DateTime<Utc>,
}

impl Cohort {
    /// The property group shipped in the definitions feed: `filters.properties`, when it is an
    /// object. Legacy cohorts (only `groups`) have none and are left out of the feed, which makes
    /// the engine treat them as non-members rather than as "matches everyone".
    pub fn property_group(&self) -> Option<&Value> {
        self.filters.get("properties").filter(|v| v.is_object())
    }
}

/// A cohort to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCohort {
    /// Display name (required, non-empty).
    pub name: String,
    /// Free text.
    pub description: String,
    /// A JSON object (may be `{}` for static cohorts).
    pub filters: Value,
    /// Static cohort (members added explicitly).
    pub is_static: bool,
    /// Creator label.
    pub created_by: Option<String>,
}

impl NewCohort {
    /// A dynamic cohort named `name` with `filters`.
    pub fn dynamic(name: impl Into<String>, filters: Value) -> Self {
        NewCohort {
            name: name.into(),
            description: String::new(),
            filters,
            is_static: false,
            created_by: None,
        }
    }

    /// An empty static cohort named `name`.
    pub fn static_list(name: impl Into<String>) -> Self {
        NewCohort {
            name: name.into(),
            description: String::new(),
            filters: Value::Object(Default::default()),
            is_static: true,
            created_by: None,
        }
    }

    /// Checks the invariants the store owns (non-empty name, filters an object).
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        validate_filters(&self.filters)
    }

    pub(crate) fn to_cohort(&self, project: ProjectId, now: DateTime<Utc>) -> Cohort {
        Cohort {
            id: 0,
            project_id: project,
            name: self.name.clone(),
            description: self.description.clone(),
            filters: self.filters.clone(),
            is_static: self.is_static,
            deleted: false,
            version: 1,
            created_by: self.created_by.clone(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// A partial cohort update: `None` fields are left as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CohortUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New filters (a JSON object).
    pub filters: Option<Value>,
    /// Soft delete (`Some(true)`) or restore.
    pub deleted: Option<bool>,
}

impl CohortUpdate {
    /// The cohort after this update, version + 1.
    pub fn apply(&self, before: &Cohort, now: DateTime<Utc>) -> Result<Cohort> {
        let mut after = before.clone();
        if let Some(name) = &self.name {
            validate_name(name)?;
            after.name = name.clone();
        }
        if let Some(filters) = &self.filters {
            validate_filters(filters)?;
            after.filters = filters.clone();
        }
        if let Some(d) = &self.description {
            after.description = d.clone();
        }
        if let Some(d) = self.deleted {
            after.deleted = d;
        }
        after.version = before.version.saturating_add(1);
        after.updated_at = now;
        Ok(after)
    }
}

fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        Err(StoreError::invalid("name", "The name must not be empty."))
    } else {
        Ok(())
    }
}

fn validate_filters(filters: &Value) -> Result<()> {
    if filters.is_object() {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "filters",
            "Filters must be a JSON object.",
        ))
    }
}
