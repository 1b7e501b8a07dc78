//! The per-request input of an evaluation: who is asking, with which properties, at what time,
//! plus the data the engine cannot hold itself (static cohort membership, behavioural counts,
//! experience-continuity hash keys).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::compile::CompiledFlag;
use crate::reason::ErrorCode;

/// A property map (`{"email": "a@b.c", ...}`).
pub type Properties = Map<String, Value>;

/// Behavioural counts the engine asks for at flag-check time ("did X in the last 5 minutes").
///
/// The engine asks by query: an index into the compiled project's
/// [`crate::behavior::Behaviors::queries`], each an event signature and a window ending at the
/// context's `now`, for the context's person. Implementations must not block: the intended one
/// holds counts read once per request, before evaluation.
pub trait BehavioralData {
    /// How many events matched query `query` for this person; `None` when unknown (the cohort
    /// then counts as not evaluated and the person as a non-member).
    fn count(&self, query: usize) -> Option<u64>;
}

/// Everything one evaluation reads besides the compiled project.
///
/// Property maps come in two layers so that callers never merge maps per request: the request's
/// own values (`person_properties`) win over stored ones (`stored_person_properties`).
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// The distinct id (already truncated to 200 characters by the wire layer).
    pub distinct_id: &'a str,
    /// Device id for `bucketing_identifier: "device_id"` flags (falls back to the
    /// `$device_id` person property).
    pub device_id: Option<&'a str>,
    /// `$anon_distinct_id`: hash key for experience-continuity flags without a stored override.
    pub anon_distinct_id: Option<&'a str>,
    /// `{"<group type name>": <group key (string or number)>}`.
    pub groups: Option<&'a Properties>,
    /// Person properties sent with the request (win over stored ones).
    pub person_properties: Option<&'a Properties>,
    /// Stored person properties.
    pub stored_person_properties: Option<&'a Properties>,
    /// `{"<group type name>": {props}}` sent with the request (win over stored ones).
    pub group_properties: Option<&'a Properties>,
    /// Stored `{"<group type name>": {props}}`.
    pub stored_group_properties: Option<&'a Properties>,
    /// The evaluation instant (relative dates, behavioural windows).
    pub now: DateTime<Utc>,
    /// Stored experience-continuity hash keys, by flag key.
    pub hash_key_overrides: Option<&'a HashMap<String, String>>,
    /// Ids of static cohorts the person belongs to.
    pub static_cohorts: Option<&'a HashSet<i64>>,
    /// Source of behavioural counts; without one, behavioural cohorts do not match.
    pub behavior: Option<&'a dyn BehavioralData>,
    /// Evaluate only these flags (and, internally, their dependencies).
    pub flag_keys: Option<&'a [String]>,
    /// Keep only flags this predicate accepts (runtime and evaluation-tag filtering). Flags it
    /// rejects are omitted and count as `false` for flags that depend on them.
    pub include: Option<&'a dyn Fn(&CompiledFlag) -> bool>,
    /// Stored data (person and group properties, cohort membership, hash-key overrides) could
    /// not be read, for this reason: a flag whose outcome would depend on it fails with this
    /// code (continuity flags with `hash_key_override_error`), a flag decided by the request's
    /// own data evaluates normally. `None`: stored data is complete (or was not needed).
    pub stored_unavailable: Option<ErrorCode>,
}

impl<'a> Context<'a> {
    /// A context with only a distinct id and a clock; set other fields as needed.
    pub fn new(distinct_id: &'a str, now: DateTime<Utc>) -> Self {
        Context {
            distinct_id,
            device_id: None,
            anon_distinct_id: None,
            groups: None,
            person_properties: None,
            stored_person_properties: None,
            group_properties: None,
            stored_group_properties: None,
            now,
            hash_key_overrides: None,
            static_cohorts: None,
            behavior: None,
            flag_keys: None,
            include: None,
            stored_unavailable: None,
        }
    }

    /// The key of the group of type `name` (see [`GroupKey::from_value`]).
    pub(crate) fn group_key(&self, name: &str) -> Option<GroupKey<'a>> {
        GroupKey::from_value(self.groups?.get(name)?)
    }

    pub(crate) fn device_id(&self) -> Option<&'a str> {
        self.device_id.filter(|d| !d.is_empty()).or_else(|| {
            match lookup_layers(
                self.person_properties,
                self.stored_person_properties,
                "$device_id",
            ) {
                Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
                _ => None,
            }
        })
    }
}

/// A group key as sent (`groups: {type: key}`, `$group_key` of a `$groupidentify` event).
///
/// The one group-key rule: a non-empty string, or a number read as its decimal text
/// ([`id_text`]); anything else (an empty string, `null`, a bool, an object) names no group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKey<'a> {
    /// A non-empty string key.
    Str(&'a str),
    /// A numeric key, formatted when read.
    Num(&'a serde_json::Number),
}

impl<'a> GroupKey<'a> {
    /// Applies the group-key rule to a sent value.
    pub fn from_value(value: &'a Value) -> Option<Self> {
        match value {
            Value::String(s) if !s.is_empty() => Some(GroupKey::Str(s)),
            Value::Number(n) => Some(GroupKey::Num(n)),
            _ => None,
        }
    }

    /// Calls `f` with the key's text (numbers are formatted on demand; strings are borrowed).
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            GroupKey::Str(s) => f(s),
            GroupKey::Num(n) => f(&n.to_string()),
        }
    }
}

impl std::fmt::Display for GroupKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupKey::Str(s) => f.write_str(s),
            GroupKey::Num(n) => write!(f, "{n}"),
        }
    }
}

/// The one numeric-id rule: an id sent as a JSON string is that string; one sent as a number is
/// its decimal JSON text (`8675309` → `"8675309"`, `123.45` → `"123.45"`), as PostHog
/// stringifies distinct ids, group keys and flag ids; anything else is no id.
pub fn id_text(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}

pub(crate) fn lookup_layers<'a>(
    top: Option<&'a Properties>,
    bottom: Option<&'a Properties>,
    key: &str,
) -> Option<&'a Value> {
    top.and_then(|m| m.get(key))
        .or_else(|| bottom.and_then(|m| m.get(key)))
}
