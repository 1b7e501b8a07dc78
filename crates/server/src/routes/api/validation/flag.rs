//! Flag writes: key, filters (condition sets, group types, variants, payloads, cohort and flag
//! references) and the engine's compile check of the resulting definition.

use std::collections::HashSet;

use serde_json::{Map, Value};
use vexil_engine::{CompiledProject, FlagDefinition};
use vexil_store::{FeatureFlag, StoreError};

use super::dependency::{check_cycles, check_flag_reference, check_lifecycle};
use super::{check_operator_value, id_value, invalid, non_empty_str};
use crate::error::ApiError;

/// Project data a flag write is checked against, as stored before the write.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// The project's non-deleted flags.
    pub flags: &'a [FeatureFlag],
    /// Ids of the project's non-deleted cohorts (at least those the candidate references).
    pub cohorts: &'a HashSet<i64>,
    /// The project's compiled snapshot (operator and type checks, cohort references).
    pub compiled: &'a CompiledProject,
}

/// Checks a flag as it will be after the write. `before` is the stored flag (`None` on create,
/// where `candidate.id` is 0); `filters_sent` says whether the request carried filters, which are
/// then checked in full.
pub fn check_flag(
    candidate: &FeatureFlag,
    before: Option<&FeatureFlag>,
    filters_sent: bool,
    known: Known<'_>,
) -> Result<(), ApiError> {
    vexil_store::validate_key(&candidate.key).map_err(|e| match e {
        StoreError::Invalid { message, .. } => {
            ApiError::validation("invalid_key", message).attr("key")
        }
        other => ApiError::from(other),
    })?;
    if filters_sent {
        check_filters(candidate, known)?;
        check_cycles(candidate, known.flags)?;
        engine_check(candidate, known.compiled)?;
    }
    if let Some(before) = before {
        check_lifecycle(candidate, before, known.flags)?;
    }
    Ok(())
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

fn no_groups() -> ApiError {
    invalid(
        "filters",
        "Feature flags must have at least one condition set (group).",
    )
}

fn check_filters(flag: &FeatureFlag, known: Known<'_>) -> Result<(), ApiError> {
    let filters = flag
        .filters
        .as_object()
        .ok_or_else(|| invalid("filters", "Filters must be a JSON object."))?;
    let groups = match filters.get("groups") {
        Some(Value::Array(g)) if !g.is_empty() => g,
        None | Some(Value::Null) | Some(Value::Array(_)) => return Err(no_groups()),
        Some(_) => {
            return Err(invalid(
                "filters.groups",
                "Expected a list of condition sets.",
            ))
        }
    };
    let flag_aggregation = group_index(
        filters.get("aggregation_group_type_index"),
        "filters.aggregation_group_type_index",
    )?;
    let variants = check_variants(filters)?;
    for (i, group) in groups.iter().enumerate() {
        let path = format!("filters.groups[{i}]");
        let group = group
            .as_object()
            .ok_or_else(|| invalid(&path, "Each condition set must be an object."))?;
        let aggregation = match group.get("aggregation_group_type_index") {
            None => flag_aggregation,
            explicit => group_index(explicit, &format!("{path}.aggregation_group_type_index"))?,
        };
        check_percentage(
            group.get("rollout_percentage"),
            &format!("{path}.rollout_percentage"),
        )?;
        match group.get("variant") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if variants.contains(&v.as_str()) => {}
            Some(other) => {
                return Err(invalid(
                    format!("{path}.variant"),
                    format!(
                        "Variant override {other} is not one of the flag's variants ({}).",
                        variants.join(", ")
                    ),
                ))
            }
        }
        let properties = match group.get("properties") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(p)) => p.as_slice(),
            Some(_) => {
                return Err(invalid(
                    format!("{path}.properties"),
                    "Expected a list of property filters.",
                ))
            }
        };
        for (j, property) in properties.iter().enumerate() {
            let ppath = format!("{path}.properties[{j}]");
            check_condition_property(property, &ppath, aggregation, flag.id, known)?;
        }
    }
    check_payloads(filters, &variants)
}

fn group_index(value: Option<&Value>, path: &str) -> Result<Option<i64>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(i) if (0..=vexil_store::MAX_GROUP_TYPE_INDEX).contains(&i) => Ok(Some(i)),
            _ => Err(invalid(
                path,
                format!(
                    "A group type index is an integer from 0 to {}.",
                    vexil_store::MAX_GROUP_TYPE_INDEX
                ),
            )),
        },
    }
}

fn check_percentage(value: Option<&Value>, path: &str) -> Result<(), ApiError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(v) => match v.as_f64() {
            Some(p) if (0.0..=100.0).contains(&p) => Ok(()),
            _ => Err(invalid(
                path,
                "A rollout percentage is a number from 0 to 100.",
            )),
        },
    }
}

/// The variant keys, after checking the multivariate block.
fn check_variants(filters: &Map<String, Value>) -> Result<Vec<&str>, ApiError> {
    let variants = match filters.get("multivariate") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => match m.get("variants") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(v)) => v,
            Some(_) => {
                return Err(invalid(
                    "filters.multivariate.variants",
                    "Expected a list of variants.",
                ))
            }
        },
        Some(_) => {
            return Err(invalid(
                "filters.multivariate",
                "Expected an object with a list of variants.",
            ))
        }
    };
    let mut keys = Vec::with_capacity(variants.len());
    let mut sum = 0.0;
    for (i, variant) in variants.iter().enumerate() {
        let path = format!("filters.multivariate.variants[{i}]");
        let key = variant
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| invalid(format!("{path}.key"), "Each variant needs a key."))?;
        if keys.contains(&key) {
            return Err(invalid(
                format!("{path}.key"),
                format!("Variant key \"{key}\" is used twice."),
            ));
        }
        let pct_path = format!("{path}.rollout_percentage");
        let pct = variant.get("rollout_percentage");
        check_percentage(pct, &pct_path)?;
        sum += pct
            .and_then(Value::as_f64)
            .ok_or_else(|| invalid(&pct_path, "Each variant needs a rollout percentage."))?;
        keys.push(key);
    }
    if !keys.is_empty() && (sum - 100.0).abs() > 1e-9 {
        return Err(invalid(
            "filters.multivariate.variants",
            "Invalid variant definitions: Variant rollout percentages must sum to 100.",
        ));
    }
    Ok(keys)
}

fn check_payloads(filters: &Map<String, Value>, variants: &[&str]) -> Result<(), ApiError> {
    let payloads = match filters.get("payloads") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(invalid(
                "filters.payloads",
                "Payloads must be an object keyed by variant (or \"true\").",
            ))
        }
    };
    for (key, value) in payloads {
        if variants.is_empty() && key != "true" {
            return Err(invalid(
                "filters.payloads",
                format!("Payload key \"{key}\" is not allowed: a boolean flag only takes a \"true\" payload."),
            ));
        }
        if !variants.is_empty() && !variants.contains(&key.as_str()) {
            return Err(invalid(
                "filters.payloads",
                format!("Payload key \"{key}\" is not one of the flag's variants."),
            ));
        }
        let valid = value
            .as_str()
            .is_some_and(|s| serde_json::from_str::<Value>(s).is_ok());
        if !valid {
            return Err(invalid(
                "filters.payloads",
                format!("The payload for \"{key}\" is not valid JSON."),
            ));
        }
    }
    Ok(())
}

fn check_condition_property(
    property: &Value,
    path: &str,
    aggregation: Option<i64>,
    flag_id: i64,
    known: Known<'_>,
) -> Result<(), ApiError> {
    let property = property
        .as_object()
        .ok_or_else(|| invalid(path, "Each property filter must be an object."))?;
    let kind = match property.get("type") {
        None | Some(Value::Null) => "person",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid(format!("{path}.type"), "Not a valid string.")),
    };
    match aggregation {
        None if !matches!(kind, "person" | "cohort" | "flag") => {
            return Err(invalid(
                format!("{path}.type"),
                "Filters are not valid (can only use person, cohort, and flag properties).",
            ))
        }
        Some(index) => {
            let same_type = property
                .get("group_type_index")
                .is_none_or(|g| g.is_null() || g.as_i64() == Some(index));
            if kind != "group" || !same_type {
                return Err(invalid(
                    format!("{path}.type"),
                    format!("Filters are not valid (can only use group properties of group type index {index})."),
                ));
            }
        }
        None => {}
    }
    match kind {
        "cohort" => check_cohort_reference(property, path, known.cohorts).map(|_| ()),
        "flag" => check_flag_reference(property, path, flag_id, known.flags),
        _ => {
            if !non_empty_str(property, "key") {
                return Err(invalid(
                    format!("{path}.key"),
                    "Property filters need a key.",
                ));
            }
            check_operator_value(property, path)
        }
    }
}

/// A cohort filter (`{"type": "cohort", "value": <id>}`); returns the cohort id.
fn check_cohort_reference(
    property: &Map<String, Value>,
    path: &str,
    cohorts: &HashSet<i64>,
) -> Result<i64, ApiError> {
    match property.get("operator") {
        None | Some(Value::Null) => {}
        Some(Value::String(op)) if op == "in" || op == "not_in" => {}
        Some(_) => {
            return Err(invalid(
                format!("{path}.operator"),
                "Cohort filters take the operator \"in\" or \"not_in\".",
            ))
        }
    }
    let value_path = format!("{path}.value");
    let id = id_value(property.get("value"))
        .ok_or_else(|| invalid(&value_path, "Cohort filters need a cohort id as value."))?;
    if cohorts.contains(&id) {
        Ok(id)
    } else {
        Err(ApiError::validation(
            "cohort_does_not_exist",
            format!("Cohort with id {id} does not exist"),
        )
        .attr(value_path))
    }
}

/// The engine's verdict on the candidate, compiled against the project's cohorts and flags.
fn engine_check(flag: &FeatureFlag, compiled: &CompiledProject) -> Result<(), ApiError> {
    let definition = FlagDefinition {
        id: flag.id,
        team_id: Some(flag.project_id.0),
        key: flag.key.clone(),
        name: Some(flag.name.clone()),
        filters: flag.filters.clone(),
        active: flag.active,
        deleted: false,
        ensure_experience_continuity: flag.ensure_experience_continuity,
        version: flag.version,
        has_experiment: false,
        bucketing_identifier: flag.bucketing_identifier.clone(),
        evaluation_runtime: Some(flag.evaluation_runtime.as_str().to_owned()),
        evaluation_tags: Some(flag.evaluation_tags.clone()),
    };
    compiled.check_flag(&definition).map_err(|e| {
        invalid(
            e.path,
            format!(
                "Can't evaluate flag - please check release conditions: {}.",
                e.message
            ),
        )
    })
}
