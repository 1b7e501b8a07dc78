//! Feature flags as stored, their create/update requests and their activity log.
//!
//! The update rules (what a patch changes, the version bump, which action it logs) live here as
//! plain functions so every backend applies them identically.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::project::ProjectId;
use crate::{Actor, Page};

/// Longest flag key accepted (PostHog's column limit).
pub const MAX_FLAG_KEY_LEN: usize = 400;

pub use vexil_engine::EvaluationRuntime;

/// A stored feature flag with PostHog's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureFlag {
    /// Server-assigned id, unique across projects.
    pub id: i64,
    /// Owning project.
    pub project_id: ProjectId,
    /// Key, unique among the project's non-deleted flags.
    pub key: String,
    /// Description (PostHog calls it `name`); may be empty.
    pub name: String,
    /// Targeting rules (`posthog-compat.md` §3.2), stored verbatim.
    pub filters: Value,
    /// Inactive flags evaluate to `false`.
    pub active: bool,
    /// Soft-deleted: out of lists and evaluation, row and history kept.
    pub deleted: bool,
    /// Experience continuity across identify (§8.2).
    pub ensure_experience_continuity: bool,
    /// Starts at 1; every successful update adds 1.
    pub version: i64,
    /// Where the flag may be evaluated.
    pub evaluation_runtime: EvaluationRuntime,
    /// Evaluation tags (`evaluation_contexts`).
    pub evaluation_tags: Vec<String>,
    /// Organisational tags.
    pub tags: Vec<String>,
    /// `"distinct_id"` or `"device_id"`; `None` means the default (`distinct_id`).
    pub bucketing_identifier: Option<String>,
    /// A remote-configuration flag: its `payloads.true` is configuration, read by SDKs with
    /// `get_remote_config_payload` / `getRemoteConfigPayload` (and, unless encrypted, from
    /// `/flags` and the definitions feed like any payload).
    pub is_remote_configuration: bool,
    /// Payloads are secret (remote-configuration flags only): left out of `/flags` and the
    /// feed, and given by `remote_config` only to a personal key (redacted for a secret key).
    pub has_encrypted_payloads: bool,
    /// Linked to an experiment; always `false` in Vexil (no experiments product).
    pub has_experiment: bool,
    /// Who created it (user or key label), when known.
    pub created_by: Option<String>,
    /// Who changed it last, when known.
    pub last_modified_by: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Time of the last change.
    pub updated_at: DateTime<Utc>,
}

/// A flag to create. Build with [`NewFlag::new`] and set the fields that differ from defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFlag {
    /// Key (`^[a-zA-Z0-9_-]+$`, at most [`MAX_FLAG_KEY_LEN`] characters).
    pub key: String,
    /// Description; default empty.
    pub name: String,
    /// Targeting rules; must be a JSON object.
    pub filters: Value,
    /// Default `true`.
    pub active: bool,
    /// Default `false`.
    pub ensure_experience_continuity: bool,
    /// Default [`EvaluationRuntime::All`].
    pub evaluation_runtime: EvaluationRuntime,
    /// Default empty.
    pub evaluation_tags: Vec<String>,
    /// Default empty.
    pub tags: Vec<String>,
    /// Default `None` (distinct id bucketing).
    pub bucketing_identifier: Option<String>,
    /// Default `false`.
    pub is_remote_configuration: bool,
    /// Default `false`.
    pub has_encrypted_payloads: bool,
    /// Who creates it: recorded in the activity log, its label as the flag's `created_by`.
    pub created_by: Option<Actor>,
}

impl NewFlag {
    /// A flag with `key` and `filters` and every other field at its default.
    pub fn new(key: impl Into<String>, filters: Value) -> Self {
        NewFlag {
            key: key.into(),
            name: String::new(),
            filters,
            active: true,
            ensure_experience_continuity: false,
            evaluation_runtime: EvaluationRuntime::All,
            evaluation_tags: Vec::new(),
            tags: Vec::new(),
            bucketing_identifier: None,
            is_remote_configuration: false,
            has_encrypted_payloads: false,
            created_by: None,
        }
    }

    /// Checks the invariants the store owns (key charset and length, filters an object).
    pub fn validate(&self) -> Result<()> {
        validate_key(&self.key)?;
        validate_filters(&self.filters)
    }

    /// The row this request creates, before the backend assigns `id`.
    pub(crate) fn to_flag(&self, project: ProjectId, now: DateTime<Utc>) -> FeatureFlag {
        FeatureFlag {
            id: 0,
            project_id: project,
            key: self.key.clone(),
            name: self.name.clone(),
            filters: self.filters.clone(),
            active: self.active,
            deleted: false,
            ensure_experience_continuity: self.ensure_experience_continuity,
            version: 1,
            evaluation_runtime: self.evaluation_runtime,
            evaluation_tags: self.evaluation_tags.clone(),
            tags: self.tags.clone(),
            bucketing_identifier: self.bucketing_identifier.clone(),
            is_remote_configuration: self.is_remote_configuration,
            has_encrypted_payloads: self.has_encrypted_payloads,
            has_experiment: false,
            created_by: self.created_by.as_ref().map(Actor::label),
            last_modified_by: self.created_by.as_ref().map(Actor::label),
            created_at: now,
            updated_at: now,
        }
    }
}

/// A check run inside a flag write's transaction, after the stored row is read and the change
/// applied, before anything is written: `(stored row, row to write)`, the stored row being
/// `None` on create (where the new row's `id` is still 0). An error aborts the write and is
/// returned as is; wrap the caller's own errors in [`StoreError::Rejected`].
///
/// Writes are serialised per database, so what the check sees stays true until the commit.
pub type FlagCheck<'a> =
    dyn Fn(Option<&FeatureFlag>, &FeatureFlag) -> Result<()> + Send + Sync + 'a;

/// A [`FlagCheck`] accepting every write.
pub fn accept_any(_: Option<&FeatureFlag>, _: &FeatureFlag) -> Result<()> {
    Ok(())
}

/// A partial update: `None` fields are left as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagUpdate {
    /// New key.
    pub key: Option<String>,
    /// New description.
    pub name: Option<String>,
    /// New targeting rules (a JSON object).
    pub filters: Option<Value>,
    /// Enable or disable.
    pub active: Option<bool>,
    /// `Some(true)` soft-deletes (logged as `deleted`); `Some(false)` restores.
    pub deleted: Option<bool>,
    /// Experience continuity on or off.
    pub ensure_experience_continuity: Option<bool>,
    /// New evaluation runtime.
    pub evaluation_runtime: Option<EvaluationRuntime>,
    /// New evaluation tags.
    pub evaluation_tags: Option<Vec<String>>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// `Some(None)` clears the bucketing identifier.
    pub bucketing_identifier: Option<Option<String>>,
    /// Remote-configuration on or off.
    pub is_remote_configuration: Option<bool>,
    /// Encrypted payloads on or off.
    pub has_encrypted_payloads: Option<bool>,
}

impl FlagUpdate {
    /// The flag after this update: fields replaced, version + 1, modification stamped.
    pub fn apply(
        &self,
        before: &FeatureFlag,
        now: DateTime<Utc>,
        actor: Option<&Actor>,
    ) -> Result<FeatureFlag> {
        let mut after = before.clone();
        if let Some(key) = &self.key {
            validate_key(key)?;
            after.key = key.clone();
        }
        if let Some(filters) = &self.filters {
            validate_filters(filters)?;
            after.filters = filters.clone();
        }
        set(&mut after.name, &self.name);
        set(&mut after.active, &self.active);
        set(&mut after.deleted, &self.deleted);
        set(
            &mut after.ensure_experience_continuity,
            &self.ensure_experience_continuity,
        );
        set(&mut after.evaluation_runtime, &self.evaluation_runtime);
        set(&mut after.evaluation_tags, &self.evaluation_tags);
        set(&mut after.tags, &self.tags);
        set(&mut after.bucketing_identifier, &self.bucketing_identifier);
        set(
            &mut after.is_remote_configuration,
            &self.is_remote_configuration,
        );
        set(
            &mut after.has_encrypted_payloads,
            &self.has_encrypted_payloads,
        );
        after.version = before.version.saturating_add(1);
        after.updated_at = now;
        if let Some(actor) = actor {
            after.last_modified_by = Some(actor.label());
        }
        Ok(after)
    }

    /// A soft delete.
    pub fn delete() -> Self {
        FlagUpdate {
            deleted: Some(true),
            ..FlagUpdate::default()
        }
    }
}

fn set<T: Clone>(field: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *field = v.clone();
    }
}

/// Filters, order and window of [`crate::Store::list_flags`]. Deleted flags are never listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagQuery {
    /// Case-insensitive substring of the key or the name.
    pub search: Option<String>,
    /// Only active (`Some(true)`) or inactive (`Some(false)`) flags.
    pub active: Option<bool>,
    /// Only the flags with these ids (`Some(empty)` lists nothing).
    pub ids: Option<Vec<i64>>,
    /// The order of the list, applied before the window.
    pub order: FlagOrder,
    /// Window into the ordered list.
    pub page: Page,
}

/// A field a flag list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOrderField {
    /// The key, byte by byte (keys are ASCII).
    Key,
    /// The name, lowercased (Unicode), then compared by code point.
    Name,
    /// Creation time.
    CreatedAt,
    /// Time of the last change.
    UpdatedAt,
    /// Inactive before active.
    Active,
    /// The id.
    Id,
}

/// The order of a flag list: a field and a direction; ties always put the highest id (the
/// newest flag) first, whichever the direction, so pages are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagOrder {
    /// What is compared.
    pub field: FlagOrderField,
    /// Largest first.
    pub descending: bool,
}

impl FlagOrder {
    /// `field`, ascending unless `descending`.
    pub fn new(field: FlagOrderField, descending: bool) -> Self {
        FlagOrder { field, descending }
    }
}

impl Default for FlagOrder {
    /// Newest first.
    fn default() -> Self {
        FlagOrder::new(FlagOrderField::CreatedAt, true)
    }
}

/// Compares flag names as [`FlagOrderField::Name`] orders them: lowercased, then by code point.
/// SQLite registers it as a collation so the database sorts by exactly this rule.
pub fn compare_names(a: &str, b: &str) -> std::cmp::Ordering {
    a.to_lowercase().cmp(&b.to_lowercase())
}

/// When a non-deleted flag was created: what the stale test needs of a flag before its filters
/// ([`crate::Store::flag_ages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagAge {
    /// The flag's id.
    pub id: i64,
    /// Its key (usage is recorded by key).
    pub key: String,
    /// Its creation time.
    pub created_at: DateTime<Utc>,
}

/// Where a keyset page of the activity log starts. Entry ids only grow, so an id is a cursor
/// that stays valid while entries are added, and a page costs the same at any depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityCursor {
    /// The newest entries.
    Newest,
    /// The newest entries older than (with an id below) this one.
    Before(i64),
    /// The oldest entries newer than (with an id above) this one; `After(0)` is the oldest page.
    After(i64),
}

/// A keyset page of the activity log, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityPage {
    /// The entries, newest first.
    pub items: Vec<ActivityEntry>,
    /// How many entries the whole log (of the flag or project) holds.
    pub total: u64,
    /// Whether newer entries than these exist.
    pub newer: bool,
    /// Whether older entries than these exist.
    pub older: bool,
}

/// How a backend reads one [`ActivityCursor`] page: the rows past the cursor, in the cursor's
/// direction, one more than the page so the far side is known without a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ActivityKeyset {
    /// `id` condition with the cursor's id (`"id < "`, `"id > "`), if any.
    pub bound: Option<(&'static str, i64)>,
    /// `ORDER BY id` direction.
    pub direction: &'static str,
    /// `id` condition (with the cursor's id) of the entries on the near side of the cursor,
    /// whose existence the page reports, if any.
    pub near: Option<(&'static str, i64)>,
}

impl ActivityCursor {
    /// The SQL shape of this cursor's page.
    pub(crate) fn keyset(self) -> ActivityKeyset {
        match self {
            ActivityCursor::Newest => ActivityKeyset {
                bound: None,
                direction: "DESC",
                near: None,
            },
            ActivityCursor::Before(id) => ActivityKeyset {
                bound: Some(("id < ", id)),
                direction: "DESC",
                near: Some(("id >= ", id)),
            },
            ActivityCursor::After(id) => ActivityKeyset {
                bound: Some(("id > ", id)),
                direction: "ASC",
                near: Some(("id <= ", id)),
            },
        }
    }

    /// The page from `rows` (read as [`ActivityCursor::keyset`] says, at most `limit + 1`),
    /// the log's `total` and whether entries exist on the cursor's near side.
    pub(crate) fn page(
        self,
        mut rows: Vec<ActivityEntry>,
        limit: u32,
        total: u64,
        near: bool,
    ) -> ActivityPage {
        let far = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        match self {
            ActivityCursor::Newest | ActivityCursor::Before(_) => ActivityPage {
                items: rows,
                total,
                newer: near,
                older: far,
            },
            ActivityCursor::After(_) => {
                rows.reverse();
                ActivityPage {
                    items: rows,
                    total,
                    newer: far,
                    older: near,
                }
            }
        }
    }
}

/// What an activity-log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivityAction {
    /// The flag was created.
    Created,
    /// The flag was changed.
    Updated,
    /// The flag was soft-deleted.
    Deleted,
}

impl ActivityAction {
    /// The stored form: `created`, `updated` or `deleted`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityAction::Created => "created",
            ActivityAction::Updated => "updated",
            ActivityAction::Deleted => "deleted",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(ActivityAction::Created),
            "updated" => Some(ActivityAction::Updated),
            "deleted" => Some(ActivityAction::Deleted),
            _ => None,
        }
    }

    /// The action an update from `before` to `after` is logged as.
    pub(crate) fn of_update(before: &FeatureFlag, after: &FeatureFlag) -> Self {
        if after.deleted && !before.deleted {
            ActivityAction::Deleted
        } else {
            ActivityAction::Updated
        }
    }
}

/// One activity-log entry, written in the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityEntry {
    /// Entry id, increasing with time.
    pub id: i64,
    /// Owning project.
    pub project_id: ProjectId,
    /// The flag changed.
    pub flag_id: i64,
    /// The flag's key after the change (PostHog's `detail.name`).
    pub flag_key: String,
    /// What happened.
    pub action: ActivityAction,
    /// Who did it, when known.
    pub actor: Option<Actor>,
    /// When.
    pub at: DateTime<Utc>,
    /// The whole flag before (`None` for creation).
    pub before: Option<Value>,
    /// The whole flag after.
    pub after: Option<Value>,
}

/// Checks a flag key: non-empty, at most [`MAX_FLAG_KEY_LEN`], only `[a-zA-Z0-9_-]`.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::invalid("key", "The key must not be empty."));
    }
    if key.len() > MAX_FLAG_KEY_LEN {
        return Err(StoreError::invalid(
            "key",
            format!("The key must be at most {MAX_FLAG_KEY_LEN} characters."),
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(StoreError::invalid(
            "key",
            "Only letters, numbers, hyphens (-) & underscores (_) are allowed.",
        ));
    }
    Ok(())
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

/// The JSON snapshot of a flag kept in the activity log.
pub(crate) fn snapshot(flag: &FeatureFlag) -> Result<Value> {
    serde_json::to_value(flag).map_err(|e| StoreError::corrupt(format!("flag snapshot: {e}")))
}
