//! Persons as capture writes them: `$set` / `$set_once` / `$unset`, and the merge
//! rules of `$identify` / `$create_alias`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Properties;

/// A person: one property map reachable from many distinct ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Server-assigned numeric id.
    pub id: i64,
    /// Stable public id.
    pub uuid: Uuid,
    /// Stored properties.
    pub properties: Properties,
    /// Every distinct id of this person, oldest first.
    pub distinct_ids: Vec<String>,
    /// Set by `$identify` / `$create_alias`; an identified person is never merged into another.
    pub is_identified: bool,
    /// Creation time (the oldest of merged persons).
    pub created_at: DateTime<Utc>,
}

/// The person-property operations one capture event carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonUpdate {
    /// `$set`: overwrite.
    pub set: Properties,
    /// `$set_once`: write only keys not yet present.
    pub set_once: Properties,
    /// `$unset`: remove.
    pub unset: Vec<String>,
}

impl PersonUpdate {
    /// Whether the update changes nothing whatever the stored properties.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.set_once.is_empty() && self.unset.is_empty()
    }

    /// Applies the update in PostHog's order (`$set_once`, then `$set`, then `$unset`) and
    /// reports whether `props` changed.
    pub fn apply(&self, props: &mut Properties) -> bool {
        let mut changed = false;
        for (k, v) in &self.set_once {
            if !props.contains_key(k) {
                props.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        for (k, v) in &self.set {
            if props.get(k) != Some(v) {
                props.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        for k in &self.unset {
            changed |= props.remove(k).is_some();
        }
        changed
    }
}

/// Merges `other`'s properties into `kept`: values already in `kept` win.
pub(crate) fn merge_properties(kept: &mut Properties, other: Properties) {
    for (k, v) in other {
        kept.entry(k).or_insert(v);
    }
}

/// Whether PostHog refuses to merge on this distinct id (placeholder values SDKs send by
/// mistake; merging on them would fuse unrelated users into one person).
pub fn is_illegal_merge_id(distinct_id: &str) -> bool {
    const CASE_INSENSITIVE: &[&str] = &[
        "anonymous",
        "guest",
        "distinctid",
        "distinct_id",
        "id",
        "not_authenticated",
        "email",
        "undefined",
        "true",
        "false",
    ];
    const CASE_SENSITIVE: &[&str] = &["[object Object]", "NaN", "None", "none", "null", "0"];
    let trimmed = distinct_id.trim();
    trimmed.is_empty()
        || CASE_SENSITIVE.contains(&trimmed)
        || CASE_INSENSITIVE
            .iter()
            .any(|id| id.eq_ignore_ascii_case(trimmed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: serde_json::Value) -> Properties {
        match v {
            serde_json::Value::Object(m) => m,
            _ => Properties::new(),
        }
    }

    #[test]
    fn set_overwrites_set_once_fills_unset_removes() {
        let mut props = map(json!({"a": 1, "b": 2, "c": 3}));
        let update = PersonUpdate {
            set: map(json!({"a": 10})),
            set_once: map(json!({"b": 20, "d": 4})),
            unset: vec!["c".into(), "missing".into()],
        };
        assert!(update.apply(&mut props));
        assert_eq!(
            serde_json::Value::Object(props),
            json!({"a": 10, "b": 2, "d": 4})
        );
    }

    #[test]
    fn set_beats_set_once_on_the_same_new_key() {
        let mut props = Properties::new();
        let update = PersonUpdate {
            set: map(json!({"k": "set"})),
            set_once: map(json!({"k": "once"})),
            unset: vec![],
        };
        update.apply(&mut props);
        assert_eq!(props.get("k"), Some(&json!("set")));
    }

    #[test]
    fn illegal_ids() {
        assert!(is_illegal_merge_id("Anonymous"));
        assert!(is_illegal_merge_id("null"));
        assert!(is_illegal_merge_id("  "));
        assert!(!is_illegal_merge_id("Null"));
        assert!(!is_illegal_merge_id("user-1"));
    }
}

/// The JSON type of the values a stored property key holds, for value hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Strings.
    Text,
    /// Numbers.
    Number,
    /// `true` / `false`.
    Boolean,
    /// Lists, objects, nulls, or values of several types.
    Other,
}

impl ValueKind {
    /// The kind of a backend's JSON type name (SQLite's `json_each.type` or PostgreSQL's
    /// `jsonb_typeof`).
    pub fn of_type_name(name: &str) -> ValueKind {
        match name {
            "text" | "string" => ValueKind::Text,
            "integer" | "real" | "number" => ValueKind::Number,
            "true" | "false" | "boolean" => ValueKind::Boolean,
            _ => ValueKind::Other,
        }
    }
}

/// A property key seen on stored persons or groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyKey {
    /// `None` for person properties, else the group type index of group properties.
    pub group_type_index: Option<i64>,
    /// The key.
    pub key: String,
    /// What its values are (the most common type among the sampled rows).
    pub kind: ValueKind,
    /// How many sampled persons or groups have it.
    pub count: u64,
}
