//! Reading a flag write: body fields → [`FlagUpdate`] / [`NewFlag`] with field-level errors,
//! and the version rule of concurrent edits (spec §6).

use serde_json::{Map, Value};
use vexil_store::{
    Actor, EvaluationRuntime, FeatureFlag, FlagUpdate, NewFlag, ProjectId, StoreError,
};

use crate::error::ApiError;
use crate::extract::Fields;

/// Fields a client may change, compared by the version rule (and shown in the activity log).
pub(crate) const EDITABLE: &[&str] = &[
    "key",
    "name",
    "filters",
    "active",
    "deleted",
    "ensure_experience_continuity",
    "evaluation_runtime",
    "evaluation_tags",
    "tags",
    "bucketing_identifier",
    "is_remote_configuration",
    "has_encrypted_payloads",
];

/// A parsed flag write request.
#[derive(Debug, Clone, Default)]
pub struct FlagWrite {
    /// The fields to set (payloads normalised; `filters` without `groups` dropped on updates).
    pub update: FlagUpdate,
    /// The `version` the client started from.
    pub version: Option<i64>,
    /// The flag as the client read it (`original_flag`).
    pub original: Option<Map<String, Value>>,
}

fn required(attr: &str, detail: &str) -> ApiError {
    ApiError::validation("required", detail).attr(attr)
}

/// Reads a create (`creating`) or update request. Unknown fields are ignored; `description`
/// (sent by agent tools) stands in for `name` when `name` is absent.
pub fn parse(fields: &Map<String, Value>, creating: bool) -> Result<FlagWrite, ApiError> {
    let key = fields.string_field("key")?;
    if let Some(key) = &key {
        vexil_store::validate_key(key).map_err(|e| match e {
            StoreError::Invalid { message, .. } => {
                ApiError::validation("invalid_key", message).attr("key")
            }
            other => ApiError::from(other),
        })?;
    }
    let name = match fields.string_field("name")? {
        Some(name) => Some(name),
        None if !fields.contains_key("name") => fields.string_field("description")?,
        None => None,
    };
    let filters = match fields.get("filters") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) if !creating && !m.contains_key("groups") => None,
        Some(f @ Value::Object(_)) => {
            let mut f = f.clone();
            normalise_payloads(&mut f);
            Some(f)
        }
        Some(_) => return Err(ApiError::invalid("Filters must be a JSON object.").attr("filters")),
    };
    let evaluation_runtime = match fields.string_field("evaluation_runtime")? {
        None => None,
        Some(s) => Some(EvaluationRuntime::parse(&s).ok_or_else(|| {
            ApiError::invalid(format!(
                "\"{s}\" is not a valid choice (server, client or all)."
            ))
            .attr("evaluation_runtime")
        })?),
    };
    let bucketing_identifier = match fields.get("bucketing_identifier") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) if s == "distinct_id" || s == "device_id" => Some(Some(s.clone())),
        Some(_) => {
            return Err(ApiError::invalid(
                "bucketing_identifier is \"distinct_id\", \"device_id\" or null.",
            )
            .attr("bucketing_identifier"))
        }
    };
    let original = match fields.get("original_flag") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => {
            return Err(
                ApiError::invalid("original_flag must be the flag object as read.")
                    .attr("original_flag"),
            )
        }
    };
    Ok(FlagWrite {
        update: FlagUpdate {
            key,
            name,
            filters,
            active: fields.bool_field("active")?,
            deleted: fields.bool_field("deleted")?,
            ensure_experience_continuity: fields.bool_field("ensure_experience_continuity")?,
            evaluation_runtime,
            // `evaluation_contexts` is the current name (PostHog renamed the tags), the legacy
            // one still accepted.
            evaluation_tags: match fields.string_list_field("evaluation_contexts")? {
                Some(contexts) => Some(contexts),
                None => fields.string_list_field("evaluation_tags")?,
            },
            tags: fields.string_list_field("tags")?,
            bucketing_identifier,
            is_remote_configuration: fields.bool_field("is_remote_configuration")?,
            has_encrypted_payloads: fields.bool_field("has_encrypted_payloads")?,
        },
        version: fields.int_field("version")?,
        original,
    })
}

impl FlagWrite {
    /// The flag to create: `key` and `filters` required, everything else defaulted.
    pub fn into_new(self, actor: &Actor) -> Result<NewFlag, ApiError> {
        let u = self.update;
        let key = u
            .key
            .ok_or_else(|| required("key", "This field is required."))?;
        let filters = u.filters.ok_or_else(|| {
            required(
                "filters",
                "Feature flags must have at least one condition set (group).",
            )
        })?;
        let mut new = NewFlag::new(key, filters);
        new.name = u.name.unwrap_or_default();
        new.active = u.active.unwrap_or(true);
        new.ensure_experience_continuity = u.ensure_experience_continuity.unwrap_or(false);
        new.evaluation_runtime = u.evaluation_runtime.unwrap_or_default();
        new.evaluation_tags = u.evaluation_tags.unwrap_or_default();
        new.tags = u.tags.unwrap_or_default();
        new.bucketing_identifier = u.bucketing_identifier.flatten();
        new.is_remote_configuration = u.is_remote_configuration.unwrap_or(false);
        new.has_encrypted_payloads = u.has_encrypted_payloads.unwrap_or(false);
        new.created_by = Some(actor.clone());
        Ok(new)
    }

    /// The 409 to answer when the client's `version` is stale: always without `original_flag`
    /// (Vexil's choice); with it, only when a field the client changes was also changed by
    /// someone else to a different value (PostHog's rule). `stored_json` is the stored flag in
    /// its API form.
    pub fn version_conflict(
        &self,
        stored: &FeatureFlag,
        stored_json: &Value,
        fields: &Map<String, Value>,
    ) -> Option<ApiError> {
        let sent = self.version?;
        if sent == stored.version {
            return None;
        }
        let conflict = || {
            let who = stored.last_modified_by.as_deref().unwrap_or("someone else");
            Some(ApiError::conflict(format!(
                "The feature flag was updated by {who} since you started editing it (you sent version {sent}, the stored version is {}). Please refresh and try again.",
                stored.version
            )))
        };
        let Some(original) = &self.original else {
            return conflict();
        };
        for field in EDITABLE {
            let new = match *field {
                "filters" => self.update.filters.as_ref(),
                other => fields.get(other),
            };
            let Some(new) = new else { continue };
            let before = original.get(*field).unwrap_or(&Value::Null);
            let current = stored_json.get(*field).unwrap_or(&Value::Null);
            if new != before && current != before && new != current {
                return conflict();
            }
        }
        None
    }
}

/// Replaces object, list, number and boolean payload values by their JSON text (PostHog stores
/// payloads as JSON strings) and drops `null` ones.
pub fn normalise_payloads(filters: &mut Value) {
    if let Some(Value::Object(payloads)) = filters.get_mut("payloads") {
        payloads.retain(|_, v| !v.is_null());
        for v in payloads.values_mut() {
            if !v.is_string() {
                *v = Value::String(v.to_string());
            }
        }
    }
}

/// The flag a create request would store, for validation before the write (id 0).
#[cfg_attr(not(test), allow(dead_code))] // the store builds the row of a create now; tests still use it
pub fn candidate(new: &NewFlag, project: ProjectId) -> FeatureFlag {
    let now = chrono::Utc::now();
    FeatureFlag {
        id: 0,
        project_id: project,
        key: new.key.clone(),
        name: new.name.clone(),
        filters: new.filters.clone(),
        active: new.active,
        deleted: false,
        ensure_experience_continuity: new.ensure_experience_continuity,
        version: 1,
        evaluation_runtime: new.evaluation_runtime,
        evaluation_tags: new.evaluation_tags.clone(),
        tags: new.tags.clone(),
        bucketing_identifier: new.bucketing_identifier.clone(),
        is_remote_configuration: new.is_remote_configuration,
        has_encrypted_payloads: new.has_encrypted_payloads,
        has_experiment: false,
        created_by: new.created_by.as_ref().map(Actor::label),
        last_modified_by: new.created_by.as_ref().map(Actor::label),
        created_at: now,
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn payloads_become_json_text() {
        let mut filters =
            json!({"payloads": {"true": {"a": [1]}, "x": null, "n": 3, "s": "\"q\""}});
        normalise_payloads(&mut filters);
        assert_eq!(
            filters["payloads"],
            json!({"true": "{\"a\":[1]}", "n": "3", "s": "\"q\""})
        );
    }
}
