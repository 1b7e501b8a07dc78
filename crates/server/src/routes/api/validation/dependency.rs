//! Flag dependencies (`type: "flag"` properties): references by id to existing, active flags,
//! no self-dependency, no cycle, and the lifecycle rules (no deleting or disabling a flag that
//! active flags depend on; no enabling a flag whose dependency is disabled).

use std::collections::HashMap;

use serde_json::{Map, Value};
use vexil_store::FeatureFlag;

use super::{find_cycle, id_value, invalid};
use crate::error::ApiError;

/// Checks one `type: "flag"` condition property of flag `flag_id_self` (0 for a new flag).
pub(super) fn check_flag_reference(
    property: &Map<String, Value>,
    path: &str,
    flag_id_self: i64,
    flags: &[FeatureFlag],
) -> Result<(), ApiError> {
    if property.get("operator").and_then(Value::as_str) != Some("flag_evaluates_to") {
        return Err(invalid(
            format!("{path}.operator"),
            "Flag dependencies use the operator \"flag_evaluates_to\".",
        ));
    }
    if !matches!(
        property.get("value"),
        Some(Value::Bool(_) | Value::String(_))
    ) {
        return Err(invalid(
            format!("{path}.value"),
            "A flag dependency compares with true, false or a variant key.",
        ));
    }
    let key_path = format!("{path}.key");
    let id = id_value(property.get("key")).ok_or_else(|| {
        invalid(
            &key_path,
            format!(
                "Flag dependencies name the flag by its id, not its key (got {}).",
                property.get("key").unwrap_or(&Value::Null)
            ),
        )
    })?;
    if id == flag_id_self {
        return Err(invalid(key_path, "A feature flag cannot depend on itself."));
    }
    match flags.iter().find(|f| f.id == id) {
        None => Err(invalid(
            key_path,
            format!("Flag dependency on flag id {id}: no such flag (or it is deleted)."),
        )),
        Some(dep) if !dep.active => Err(invalid(
            key_path,
            format!(
                "Flag dependency on \"{}\" (id {id}): that flag is disabled.",
                dep.key
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Ids of the flags `filters` depends on (`type: "flag"` properties of its conditions).
pub fn flag_dependencies(filters: &Value) -> Vec<i64> {
    filters
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g.get("properties").and_then(Value::as_array))
        .flatten()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("flag"))
        .filter_map(|p| id_value(p.get("key")))
        .collect()
}

/// Active, non-deleted flags (other than `id`) that depend on flag `id`.
pub fn dependents(id: i64, flags: &[FeatureFlag]) -> Vec<&FeatureFlag> {
    flags
        .iter()
        .filter(|f| f.id != id && f.active && !f.deleted)
        .filter(|f| flag_dependencies(&f.filters).contains(&id))
        .collect()
}

pub(super) fn check_cycles(candidate: &FeatureFlag, flags: &[FeatureFlag]) -> Result<(), ApiError> {
    if candidate.id == 0 {
        return Ok(()); // a new flag has no dependents yet
    }
    let mut edges: HashMap<i64, Vec<i64>> = flags
        .iter()
        .filter(|f| f.id != candidate.id)
        .map(|f| (f.id, flag_dependencies(&f.filters)))
        .collect();
    edges.insert(candidate.id, flag_dependencies(&candidate.filters));
    let Some(cycle) = find_cycle(candidate.id, &edges) else {
        return Ok(());
    };
    let key_of = |id: i64| {
        if id == candidate.id {
            candidate.key.clone()
        } else {
            flags
                .iter()
                .find(|f| f.id == id)
                .map_or_else(|| id.to_string(), |f| f.key.clone())
        }
    };
    let path: Vec<String> = cycle.into_iter().map(key_of).collect();
    Err(invalid(
        "filters",
        format!("Circular dependency detected: {}", path.join(" → ")),
    ))
}

pub(super) fn check_lifecycle(
    candidate: &FeatureFlag,
    before: &FeatureFlag,
    flags: &[FeatureFlag],
) -> Result<(), ApiError> {
    let deleting = candidate.deleted && !before.deleted;
    let disabling = !candidate.active && before.active && !candidate.deleted;
    if deleting || disabling {
        let keys: Vec<&str> = dependents(candidate.id, flags)
            .iter()
            .map(|f| f.key.as_str())
            .collect();
        if !keys.is_empty() {
            let (attr, verb) = if deleting {
                ("deleted", "delete")
            } else {
                ("active", "disable")
            };
            return Err(invalid(
                attr,
                format!(
                    "Cannot {verb} this feature flag because other active flags depend on it: {}.",
                    keys.join(", ")
                ),
            ));
        }
    }
    let enabling = candidate.active && !candidate.deleted && (!before.active || before.deleted);
    if enabling {
        for id in flag_dependencies(&candidate.filters) {
            match flags.iter().find(|f| f.id == id) {
                Some(dep) if dep.active => {}
                Some(dep) => {
                    return Err(invalid(
                        "active",
                        format!(
                            "Cannot enable this feature flag because it depends on the disabled flag \"{}\".",
                            dep.key
                        ),
                    ))
                }
                None => {
                    return Err(invalid(
                        "active",
                        format!("Cannot enable this feature flag because it depends on flag id {id}, which does not exist or is deleted."),
                    ))
                }
            }
        }
    }
    Ok(())
}
