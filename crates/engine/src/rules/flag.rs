//! A flag's `filters`: condition sets, group types, rollout percentages, variants, payloads, and
//! the cohort and flag references of its conditions.

use serde_json::Value;

use super::property::check_operator_value;
use super::{shape, Stored, Violation, ViolationCode};
use crate::limits::{Exceeded, MAX_CONDITIONS, MAX_VARIANTS};
use crate::model::{Filters, FlagDefinition, PropertyFilter, MAX_GROUP_TYPE_INDEX};

/// Parses `flag.filters` and checks them; returns them parsed for the remaining rules.
pub(super) fn check_filters(
    flag: &FlagDefinition,
    stored: &Stored<'_>,
) -> Result<Filters, Violation> {
    if !flag.filters.is_object() {
        return Err(Violation::invalid(
            "filters",
            "Filters must be a JSON object.",
        ));
    }
    let filters = Filters::parse(&flag.filters).map_err(shape)?;
    if filters.groups.len() > MAX_CONDITIONS {
        let e = Exceeded::Conditions(filters.groups.len());
        return Err(Violation::limit("filters.groups", e));
    }
    if filters.variants().len() > MAX_VARIANTS {
        let e = Exceeded::Variants(filters.variants().len());
        return Err(Violation::limit("filters.multivariate.variants", e));
    }
    if filters.groups.is_empty() {
        return Err(Violation::invalid(
            "filters",
            "Feature flags must have at least one condition set (group).",
        ));
    }
    check_group_index(
        filters.aggregation_group_type_index,
        "filters.aggregation_group_type_index",
    )?;
    let variants = check_variants(&filters)?;
    for (i, group) in filters.groups.iter().enumerate() {
        let path = format!("filters.groups[{i}]");
        let aggregation = match group.aggregation_group_type_index {
            None => filters.aggregation_group_type_index,
            Some(explicit) => {
                check_group_index(explicit, &format!("{path}.aggregation_group_type_index"))?;
                explicit
            }
        };
        check_percentage(
            group.rollout_percentage,
            &format!("{path}.rollout_percentage"),
        )?;
        if let Some(v) = &group.variant {
            if !variants.contains(&v.as_str()) {
                return Err(Violation::invalid(
                    format!("{path}.variant"),
                    format!(
                        "Variant override \"{v}\" is not one of the flag's variants ({}).",
                        variants.join(", ")
                    ),
                ));
            }
        }
        for (j, property) in group.properties.iter().flatten().enumerate() {
            let path = format!("{path}.properties[{j}]");
            check_condition_property(property, &path, aggregation, flag.id, stored)?;
        }
    }
    check_payloads(&filters, &variants)?;
    Ok(filters)
}

pub(super) fn group_index_detail() -> String {
    format!("A group type index is an integer from 0 to {MAX_GROUP_TYPE_INDEX}.")
}

fn check_group_index(index: Option<i64>, path: &str) -> Result<(), Violation> {
    match index {
        Some(i) if !(0..=MAX_GROUP_TYPE_INDEX).contains(&i) => {
            Err(Violation::invalid(path, group_index_detail()))
        }
        _ => Ok(()),
    }
}

fn check_percentage(value: Option<f64>, path: &str) -> Result<(), Violation> {
    match value {
        Some(p) if !(0.0..=100.0).contains(&p) => Err(Violation::invalid(
            path,
            "A rollout percentage is a number from 0 to 100.",
        )),
        _ => Ok(()),
    }
}

/// The variant keys, after checking the multivariate block.
fn check_variants(filters: &Filters) -> Result<Vec<&str>, Violation> {
    let mut keys = Vec::new();
    let mut sum = 0.0;
    for (i, variant) in filters.variants().iter().enumerate() {
        let path = format!("filters.multivariate.variants[{i}]");
        let key = variant.key.as_str();
        if key.is_empty() {
            return Err(Violation::invalid(
                format!("{path}.key"),
                "Each variant needs a key.",
            ));
        }
        if keys.contains(&key) {
            return Err(Violation::invalid(
                format!("{path}.key"),
                format!("Variant key \"{key}\" is used twice."),
            ));
        }
        let pct_path = format!("{path}.rollout_percentage");
        check_percentage(variant.rollout_percentage, &pct_path)?;
        sum += variant.rollout_percentage.ok_or_else(|| {
            Violation::invalid(&pct_path, "Each variant needs a rollout percentage.")
        })?;
        keys.push(key);
    }
    if !keys.is_empty() && (sum - 100.0).abs() > 1e-9 {
        return Err(Violation::invalid(
            "filters.multivariate.variants",
            "Invalid variant definitions: Variant rollout percentages must sum to 100.",
        ));
    }
    Ok(keys)
}

/// Payload keys are the variant keys (or `"true"` for a boolean flag); values are JSON text.
fn check_payloads(filters: &Filters, variants: &[&str]) -> Result<(), Violation> {
    for (key, value) in &filters.payloads {
        if variants.is_empty() && key != "true" {
            return Err(Violation::invalid(
                "filters.payloads",
                format!("Payload key \"{key}\" is not allowed: a boolean flag only takes a \"true\" payload."),
            ));
        }
        if !variants.is_empty() && !variants.contains(&key.as_str()) {
            return Err(Violation::invalid(
                "filters.payloads",
                format!("Payload key \"{key}\" is not one of the flag's variants."),
            ));
        }
        let valid = value
            .as_str()
            .is_some_and(|s| serde_json::from_str::<Value>(s).is_ok());
        if !valid {
            return Err(Violation::invalid(
                "filters.payloads",
                format!("The payload for \"{key}\" is not valid JSON."),
            ));
        }
    }
    Ok(())
}

/// One property of a condition set aggregated by `aggregation` (`None`: persons).
fn check_condition_property(
    property: &PropertyFilter,
    path: &str,
    aggregation: Option<i64>,
    flag_id: i64,
    stored: &Stored<'_>,
) -> Result<(), Violation> {
    let kind = property.kind();
    match aggregation {
        None if !matches!(kind, "person" | "cohort" | "flag") => {
            return Err(Violation::invalid(
                format!("{path}.type"),
                "Filters are not valid (can only use person, cohort, and flag properties).",
            ))
        }
        Some(index) => {
            let same_type = property.group_type_index.is_none_or(|g| g == index);
            if kind != "group" || !same_type {
                return Err(Violation::invalid(
                    format!("{path}.type"),
                    format!("Filters are not valid (can only use group properties of group type index {index})."),
                ));
            }
        }
        None => {}
    }
    match kind {
        "cohort" => check_cohort_reference(property, path, stored),
        "flag" => check_flag_reference(property, path, flag_id, stored),
        _ => {
            if property.key.is_empty() {
                return Err(Violation::invalid(
                    format!("{path}.key"),
                    "Property filters need a key.",
                ));
            }
            check_operator_value(property, path)
        }
    }
}

/// A cohort filter (`{"type": "cohort", "value": <id>}`) naming an existing cohort.
fn check_cohort_reference(
    property: &PropertyFilter,
    path: &str,
    stored: &Stored<'_>,
) -> Result<(), Violation> {
    check_cohort_operator(property, path)?;
    let value_path = format!("{path}.value");
    let id = property.cohort_id().ok_or_else(|| {
        Violation::invalid(&value_path, "Cohort filters need a cohort id as value.")
    })?;
    if stored.cohorts.contains(&id) {
        Ok(())
    } else {
        Err(Violation::new(
            ViolationCode::CohortDoesNotExist,
            value_path,
            format!("Cohort with id {id} does not exist"),
        ))
    }
}

pub(super) fn check_cohort_operator(
    property: &PropertyFilter,
    path: &str,
) -> Result<(), Violation> {
    match property.operator.as_deref() {
        None | Some("in" | "not_in") => Ok(()),
        Some(_) => Err(Violation::invalid(
            format!("{path}.operator"),
            "Cohort filters take the operator \"in\" or \"not_in\".",
        )),
    }
}

/// A flag dependency (`type: "flag"`) of flag `flag_id` (0 for a new flag): by id, on an
/// existing, active flag other than itself.
fn check_flag_reference(
    property: &PropertyFilter,
    path: &str,
    flag_id: i64,
    stored: &Stored<'_>,
) -> Result<(), Violation> {
    if property.operator.as_deref() != Some("flag_evaluates_to") {
        return Err(Violation::invalid(
            format!("{path}.operator"),
            "Flag dependencies use the operator \"flag_evaluates_to\".",
        ));
    }
    if !matches!(property.value, Some(Value::Bool(_) | Value::String(_))) {
        return Err(Violation::invalid(
            format!("{path}.value"),
            "A flag dependency compares with true, false or a variant key.",
        ));
    }
    let key_path = format!("{path}.key");
    let id = property.flag_id().ok_or_else(|| {
        Violation::invalid(
            &key_path,
            format!(
                "Flag dependencies name the flag by its id, not its key (got {}).",
                Value::String(property.key.clone())
            ),
        )
    })?;
    if id == flag_id {
        return Err(Violation::invalid(
            key_path,
            "A feature flag cannot depend on itself.",
        ));
    }
    match stored.flags.iter().find(|f| f.id == id) {
        None => Err(Violation::invalid(
            key_path,
            format!("Flag dependency on flag id {id}: no such flag (or it is deleted)."),
        )),
        Some(dep) if !dep.active => Err(Violation::invalid(
            key_path,
            format!(
                "Flag dependency on \"{}\" (id {id}): that flag is disabled.",
                dep.key
            ),
        )),
        Some(_) => Ok(()),
    }
}
