//! Flag definitions as PostHog stores and ships them (the local-evaluation payload).
//!
//! These types mirror the wire/storage JSON and are deliberately permissive: unknown fields are
//! ignored and anything semantic (operators, types, references) is checked by [`crate::compile`],
//! which reports problems per flag with the JSON path of the offending field.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A project's complete definition set: the `/flags/definitions` payload shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Definitions {
    /// Every flag of the project (inactive ones included; deleted ones are ignored).
    #[serde(default, deserialize_with = "null_as_default")]
    pub flags: Vec<FlagDefinition>,
    /// `{"<group type index>": "<group type name>"}`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub group_type_mapping: BTreeMap<String, String>,
    /// `{"<cohort id>": <property group>}` for dynamic cohorts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cohorts: BTreeMap<String, Value>,
    /// `2` disables the legacy boolean-string coercion of `exact`/`is_not` (absent means 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_matching_version: Option<u8>,
}

/// One flag row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagDefinition {
    /// Numeric flag id, reported as `metadata.id`.
    #[serde(default)]
    pub id: i64,
    /// Project id the flag belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<i64>,
    /// Unique key; also the hashing salt prefix.
    pub key: String,
    /// Free-text name/description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Targeting rules, kept as raw JSON so that one malformed flag cannot fail the others.
    #[serde(default)]
    pub filters: Value,
    /// Inactive flags are omitted from remote evaluation.
    #[serde(default = "default_true", deserialize_with = "null_as_true")]
    pub active: bool,
    /// Soft-deleted flags are never served.
    #[serde(default, deserialize_with = "null_as_default")]
    pub deleted: bool,
    /// Experience continuity: hash on a stable key across identify.
    #[serde(default, deserialize_with = "null_as_default")]
    pub ensure_experience_continuity: bool,
    /// Optimistic-concurrency counter (null reported as 0).
    #[serde(default, deserialize_with = "null_as_default")]
    pub version: i64,
    /// Whether the flag is linked to an experiment.
    #[serde(default, deserialize_with = "null_as_default")]
    pub has_experiment: bool,
    /// `"distinct_id"` (default) or `"device_id"`; may also appear inside `filters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucketing_identifier: Option<String>,
    /// `"server"`, `"client"`, `"all"` or null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_runtime: Option<String>,
    /// Evaluation tags (`evaluation_contexts` in newer payloads).
    #[serde(
        default,
        alias = "evaluation_contexts",
        skip_serializing_if = "Option::is_none"
    )]
    pub evaluation_tags: Option<Vec<String>>,
}

/// Typed view of a flag's `filters` object (parsed during compilation).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    /// Release conditions, OR'ed in stored order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<Condition>,
    /// Multivariate variants.
    #[serde(default)]
    pub multivariate: Option<Multivariate>,
    /// `None` = person flag; `Some(i)` = group flag of type index `i`.
    #[serde(default)]
    pub aggregation_group_type_index: Option<i64>,
    /// Payloads keyed by variant key or `"true"`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub payloads: BTreeMap<String, Value>,
    /// Early-access gate on `$feature_enrollment/<key>`.
    #[serde(default)]
    pub feature_enrollment: Option<bool>,
    /// Legacy early-access gate (only the first element is used).
    #[serde(default)]
    pub super_groups: Option<Vec<Condition>>,
    /// Holdout (newer format).
    #[serde(default)]
    pub holdout: Option<Holdout>,
    /// Holdout (legacy format; only the first element is used).
    #[serde(default)]
    pub holdout_groups: Option<Vec<Condition>>,
    /// Stop at the first condition whose properties matched but whose rollout missed.
    #[serde(default)]
    pub early_exit: Option<bool>,
    /// Config format discriminator; only version 1 (absent) is evaluated.
    #[serde(default)]
    pub version: Option<i64>,
    /// Bucketing identifier, when shipped inside `filters`.
    #[serde(default)]
    pub bucketing_identifier: Option<String>,
}

/// One release condition ("condition set").
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Condition {
    /// AND'ed property filters; null or empty means no targeting.
    #[serde(default)]
    pub properties: Option<Vec<PropertyFilter>>,
    /// 0..=100; null/absent means 100.
    #[serde(default)]
    pub rollout_percentage: Option<f64>,
    /// Variant override for users matching this condition.
    #[serde(default)]
    pub variant: Option<String>,
    /// Per-condition aggregation: absent = inherit the flag's, `Some(None)` = person.
    #[serde(default, deserialize_with = "present")]
    pub aggregation_group_type_index: Option<Option<i64>>,
}

/// `{"variants": [...]}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Multivariate {
    /// Variants in stored order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub variants: Vec<Variant>,
}

/// One multivariate variant.
#[derive(Debug, Clone, Deserialize)]
pub struct Variant {
    /// Variant key returned as the flag value.
    pub key: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Share of users (0..=100).
    #[serde(default, deserialize_with = "null_as_default")]
    pub rollout_percentage: f64,
}

/// `{"id": 42, "exclusion_percentage": 10}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Holdout {
    /// Holdout id: members get variant `holdout-<id>`.
    pub id: Value,
    /// Share of users held out.
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclusion_percentage: f64,
}

/// One property filter as stored (`type`/`operator` are checked by the compiler).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PropertyFilter {
    /// Property key, cohort marker (`"id"`), or flag id/key.
    #[serde(default)]
    pub key: String,
    /// Filter value; null or absent means "no value".
    #[serde(default)]
    pub value: Option<Value>,
    /// Operator name; absent/null means `exact`.
    #[serde(default)]
    pub operator: Option<String>,
    /// `person` (default), `group`, `cohort`, `flag`, `behavioral`, `person_metadata`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Negation (honoured inside cohort definitions).
    #[serde(default)]
    pub negation: Option<bool>,
    /// Which group's properties a `group` filter reads.
    #[serde(default)]
    pub group_type_index: Option<i64>,
    /// Definitions-feed form of flag filters: evaluation chain ending with the target key.
    #[serde(default)]
    pub dependency_chain: Option<Vec<String>>,
    /// Behavioral filters: window length.
    #[serde(default)]
    pub time_value: Option<Value>,
    /// Behavioral filters: window unit (`minute`, `hour`, `day`, `week`, `month`, `year`).
    #[serde(default)]
    pub time_interval: Option<String>,
    /// Behavioral filters: count comparison value for `performed_event_multiple`.
    #[serde(default)]
    pub operator_value: Option<Value>,
}

fn default_true() -> bool {
    true
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_as_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

/// Distinguishes an absent field (`None`, via `default`) from an explicit null (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Some(Option::<T>::deserialize(d)?))
}
