//! Flag definitions as PostHog stores and ships them (the local-evaluation payload).
//!
//! These types mirror the wire/storage JSON and are deliberately permissive: unknown fields are
//! ignored and anything semantic (operators, types, references) is checked by [`crate::compile`]
//! (per flag, for evaluation) and [`crate::rules`] (per write, PostHog's API rules). Both read
//! definitions through the parsers here ([`Filters::parse`], [`PropertyGroup::parse`]), which
//! name the offending field by its JSON path.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::compile::DefinitionError;
use crate::limits::Exceeded;

/// Highest group type index a project may use (PostHog allows five group types).
pub const MAX_GROUP_TYPE_INDEX: i64 = 4;

pub use crate::limits::MAX_GROUP_DEPTH;

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
#[serde(from = "RawFlagDefinition")]
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
    /// Evaluation tags; read from `evaluation_contexts` (their current name, which wins) or
    /// `evaluation_tags`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation_tags: Option<Vec<String>>,
}

/// [`FlagDefinition`] as read: the tags may come under either name, or both (the feed
/// writes both).
#[derive(Deserialize)]
struct RawFlagDefinition {
    #[serde(default)]
    id: i64,
    #[serde(default)]
    team_id: Option<i64>,
    key: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    filters: Value,
    #[serde(default = "default_true", deserialize_with = "null_as_true")]
    active: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    deleted: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    ensure_experience_continuity: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    version: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    has_experiment: bool,
    #[serde(default)]
    bucketing_identifier: Option<String>,
    #[serde(default)]
    evaluation_runtime: Option<String>,
    #[serde(default)]
    evaluation_tags: Option<Vec<String>>,
    #[serde(default)]
    evaluation_contexts: Option<Vec<String>>,
}

impl From<RawFlagDefinition> for FlagDefinition {
    fn from(raw: RawFlagDefinition) -> Self {
        FlagDefinition {
            id: raw.id,
            team_id: raw.team_id,
            key: raw.key,
            name: raw.name,
            filters: raw.filters,
            active: raw.active,
            deleted: raw.deleted,
            ensure_experience_continuity: raw.ensure_experience_continuity,
            version: raw.version,
            has_experiment: raw.has_experiment,
            bucketing_identifier: raw.bucketing_identifier,
            evaluation_runtime: raw.evaluation_runtime,
            evaluation_tags: raw.evaluation_contexts.or(raw.evaluation_tags),
        }
    }
}

pub use crate::runtime::EvaluationRuntime;

/// Typed view of a flag's `filters` object: see [`Filters::parse`].
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
    /// Share of users (0..=100); absent or null reads as 0 (the API requires it).
    #[serde(default)]
    pub rollout_percentage: Option<f64>,
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
    /// Behavioral filters: what is counted (`events`; PostHog also has `actions`).
    #[serde(default)]
    pub event_type: Option<Box<str>>,
    /// Behavioral filters: filters on the counted event's properties (`type: "event"`).
    #[serde(default)]
    pub event_filters: Option<Box<[PropertyFilter]>>,
    /// Behavioral filters: PostHog's absolute start date (not supported by Vexil).
    #[serde(default)]
    pub explicit_datetime: Option<Box<Value>>,
}

impl Filters {
    /// Parses a flag's `filters` (`null` is an empty definition). On a shape error, the error's
    /// path names the field from `filters` down, e.g. `filters.groups[0].rollout_percentage`.
    pub fn parse(raw: &Value) -> Result<Filters, DefinitionError> {
        if raw.is_null() {
            return Ok(Filters::default());
        }
        serde_path_to_error::deserialize(raw).map_err(|e| shape_error("filters", &e))
    }

    /// The multivariate variants (empty for a boolean flag).
    pub fn variants(&self) -> &[Variant] {
        self.multivariate
            .as_ref()
            .map_or(&[], |m| m.variants.as_slice())
    }

    /// Ids of the cohorts the release conditions (super groups and holdout groups included)
    /// target.
    pub fn cohort_references(&self) -> impl Iterator<Item = i64> + '_ {
        let conditions = self
            .groups
            .iter()
            .chain(self.super_groups.iter().flatten())
            .chain(self.holdout_groups.iter().flatten());
        conditions
            .flat_map(|c| c.properties.iter().flatten())
            .filter_map(PropertyFilter::cohort_id)
    }

    /// Ids of the flags the release conditions depend on (stored form: the key is the id).
    pub fn flag_dependencies(&self) -> impl Iterator<Item = i64> + '_ {
        self.groups
            .iter()
            .flat_map(|c| c.properties.iter().flatten())
            .filter_map(PropertyFilter::flag_id)
    }
}

impl PropertyFilter {
    /// `type`, with PostHog's default `person`.
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("person")
    }

    /// The cohort a `type: "cohort"` filter names (`value`: a number or numeric string).
    pub fn cohort_id(&self) -> Option<i64> {
        if self.kind() != "cohort" {
            return None;
        }
        id_value(self.value.as_ref()?)
    }

    /// The flag a `type: "flag"` filter depends on, when its key is an id (stored form).
    pub fn flag_id(&self) -> Option<i64> {
        if self.kind() != "flag" {
            return None;
        }
        self.key.trim().parse().ok()
    }
}

/// An id given as a JSON number or a numeric string.
pub(crate) fn id_value(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A cohort's rules: AND/OR property groups nested to any depth, with criteria as leaves.
#[derive(Debug, Clone)]
pub enum PropertyGroup {
    /// `{"type": "AND"|"OR", "values": [...]}`; any type other than `OR` reads as AND, and `{}`
    /// is an empty AND (everyone).
    Group {
        /// `type` as sent (a non-string type reads as absent).
        kind: Option<String>,
        /// Nested groups and criteria.
        values: Vec<PropertyGroup>,
    },
    /// `{"properties": {...}}`: the stored form's wrapper around a group.
    Wrapped(Box<PropertyGroup>),
    /// One criterion: person property, cohort or behavioural filter.
    Filter(Box<PropertyFilter>),
}

impl PropertyGroup {
    /// Parses a property group; an error's path is relative to `value` (`values[0].key`, or
    /// empty for `value` itself).
    pub fn parse(value: &Value) -> Result<PropertyGroup, DefinitionError> {
        Self::parse_at(value, String::new(), 0)
    }

    fn parse_at(
        value: &Value,
        path: String,
        depth: usize,
    ) -> Result<PropertyGroup, DefinitionError> {
        if depth > MAX_GROUP_DEPTH {
            return Err(DefinitionError::new(
                path,
                format!(
                    "Property groups are nested too deeply: {}.",
                    Exceeded::GroupDepth
                ),
            ));
        }
        let Some(obj) = value.as_object() else {
            return Err(DefinitionError::new(
                path,
                "Expected a property group object.",
            ));
        };
        if let (Some(inner @ Value::Object(_)), false) =
            (obj.get("properties"), obj.contains_key("values"))
        {
            let inner = Self::parse_at(inner, join(&path, "properties"), depth + 1)?;
            return Ok(PropertyGroup::Wrapped(Box::new(inner)));
        }
        if let Some(values) = obj.get("values") {
            let values_path = join(&path, "values");
            let Some(values) = values.as_array() else {
                return Err(DefinitionError::new(values_path, "Expected a list."));
            };
            let values = values
                .iter()
                .enumerate()
                .map(|(i, v)| Self::parse_at(v, format!("{values_path}[{i}]"), depth + 1))
                .collect::<Result<_, _>>()?;
            let kind = obj.get("type").and_then(Value::as_str).map(str::to_owned);
            return Ok(PropertyGroup::Group { kind, values });
        }
        if obj.is_empty() {
            return Ok(PropertyGroup::Group {
                kind: None,
                values: Vec::new(),
            });
        }
        serde_path_to_error::deserialize(value)
            .map(PropertyGroup::Filter)
            .map_err(|e| shape_error(&path, &e))
    }

    /// Whether the group is an OR (otherwise AND).
    pub fn is_or(&self) -> bool {
        matches!(self, PropertyGroup::Group { kind: Some(k), .. } if k == "OR")
    }

    /// Every criterion, depth first.
    pub fn filters(&self) -> Vec<&PropertyFilter> {
        fn walk<'a>(g: &'a PropertyGroup, out: &mut Vec<&'a PropertyFilter>) {
            match g {
                PropertyGroup::Group { values, .. } => values.iter().for_each(|v| walk(v, out)),
                PropertyGroup::Wrapped(inner) => walk(inner, out),
                PropertyGroup::Filter(f) => out.push(f),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }

    /// Ids of the cohorts this group references.
    pub fn cohort_references(&self) -> Vec<i64> {
        self.filters()
            .into_iter()
            .filter_map(PropertyFilter::cohort_id)
            .collect()
    }
}

/// `parent.child`, or `child` at the root.
fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// A serde error located under `root`; "missing field `x`" names `x` itself.
fn shape_error(root: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> DefinitionError {
    let mut path = root.to_owned();
    if e.path().iter().next().is_some() {
        let inner = e.path().to_string();
        path = if path.is_empty() || inner.starts_with('[') {
            format!("{path}{inner}")
        } else {
            format!("{path}.{inner}")
        };
    }
    let message = e.inner().to_string();
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        path = join(&path, field);
    }
    DefinitionError::new(path, message)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn references_are_read_from_the_typed_model() {
        let filters = Filters::parse(&json!({
            "groups": [{"properties": [
                {"key": "id", "type": "cohort", "value": 7},
                {"key": "id", "type": "cohort", "value": " 8 "},
                {"key": "12", "type": "flag", "operator": "flag_evaluates_to", "value": true},
                {"key": "email", "type": "person", "value": "x"}
            ]}],
            "super_groups": [{"properties": [{"key": "id", "type": "cohort", "value": 9}]}]
        }))
        .unwrap();
        assert_eq!(filters.cohort_references().collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!(filters.flag_dependencies().collect::<Vec<_>>(), [12]);

        let group = PropertyGroup::parse(&json!({"properties": {"type": "OR", "values": [
            {"key": "id", "type": "cohort", "value": 3},
            {"type": "AND", "values": [{"key": "id", "type": "cohort", "value": "4"}, {}]}
        ]}}))
        .unwrap();
        assert_eq!(group.cohort_references(), [3, 4]);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let path = |v: Value| Filters::parse(&v).unwrap_err().path;
        assert_eq!(path(json!("x")), "filters");
        assert_eq!(
            path(json!({"groups": [{}, {"properties": [{"key": 5}]}]})),
            "filters.groups[1].properties[0].key"
        );
        assert_eq!(
            path(json!({"multivariate": {"variants": [{}]}})),
            "filters.multivariate.variants[0].key"
        );
        let group_path = |v: Value| PropertyGroup::parse(&v).unwrap_err().path;
        assert_eq!(group_path(json!([])), "");
        assert_eq!(
            group_path(json!({"values": [{"key": "a", "type": 1}]})),
            "values[0].type"
        );
        assert_eq!(
            group_path(json!({"properties": {"values": 1}})),
            "properties.values"
        );
    }
}
