//! A dynamic cohort's `filters`: the property-group shape, each criterion, and its cohort
//! references (none to itself, none unknown, no cycle).

use std::collections::HashMap;

use serde_json::Value;

use super::property::check_operator_value;
use super::{shape, Violation, ViolationCode};
use crate::graph;
use crate::model::{PropertyFilter, PropertyGroup};

/// A stored, non-deleted cohort as the reference rules see it.
#[derive(Debug, Clone, Copy)]
pub struct StoredCohort<'a> {
    /// Cohort id.
    pub id: i64,
    /// Display name (for cycle messages).
    pub name: &'a str,
    /// Its `filters` (`{"properties": {...}}`; `{}` for static cohorts).
    pub filters: &'a Value,
}

/// Checks a dynamic cohort's `filters` as written to cohort `id` (`None` on create) against the
/// project's non-deleted `cohorts`.
pub fn check_cohort(
    filters: &Value,
    id: Option<i64>,
    cohorts: &[StoredCohort<'_>],
) -> Result<(), Violation> {
    if !filters.is_object() {
        return Err(Violation::invalid(
            "filters",
            "Filters must be a JSON object.",
        ));
    }
    let group = match filters.get("properties") {
        None | Some(Value::Null) => None,
        Some(raw) => {
            let group = PropertyGroup::parse(raw).map_err(|mut e| {
                e.path = join_path("filters.properties", &e.path);
                shape(e)
            })?;
            check_group(&group, "filters.properties")?;
            Some(group)
        }
    };
    let references = group.map(|g| g.cohort_references()).unwrap_or_default();
    for r in &references {
        if Some(*r) == id {
            return Err(Violation::invalid(
                "filters",
                "A cohort cannot reference itself.",
            ));
        }
        if !cohorts.iter().any(|c| c.id == *r) {
            return Err(Violation::new(
                ViolationCode::CohortDoesNotExist,
                "filters",
                format!("Cohort with id {r} does not exist"),
            ));
        }
    }
    let Some(id) = id else {
        return Ok(()); // nothing references a cohort that does not exist yet
    };
    // Node 0 is the written cohort; the stored ones follow.
    let others: Vec<&StoredCohort<'_>> = cohorts.iter().filter(|c| c.id != id).collect();
    let index: HashMap<i64, usize> = std::iter::once(id)
        .chain(others.iter().map(|c| c.id))
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let edges = |ids: &[i64]| -> Vec<usize> {
        ids.iter().filter_map(|id| index.get(id).copied()).collect()
    };
    let deps: Vec<Vec<usize>> = std::iter::once(edges(&references))
        .chain(others.iter().map(|c| edges(&stored_references(c.filters))))
        .collect();
    let Some(cycle) = graph::cycle_through(0, &deps) else {
        return Ok(());
    };
    let names: Vec<String> = cycle
        .into_iter()
        .map(|i| match i {
            0 => format!("this cohort (id {id})"),
            i => format!("{} (id {})", others[i - 1].name, others[i - 1].id),
        })
        .collect();
    Err(Violation::invalid(
        "filters",
        format!("Circular cohort reference detected: {}", names.join(" → ")),
    ))
}

/// The cohorts a stored cohort's `filters` reference (none when they do not parse).
fn stored_references(filters: &Value) -> Vec<i64> {
    filters
        .get("properties")
        .and_then(|p| PropertyGroup::parse(p).ok())
        .map(|g| g.cohort_references())
        .unwrap_or_default()
}

fn join_path(parent: &str, child: &str) -> String {
    match child {
        "" => parent.to_owned(),
        c if c.starts_with('[') => format!("{parent}{c}"),
        c => format!("{parent}.{c}"),
    }
}

fn check_group(group: &PropertyGroup, path: &str) -> Result<(), Violation> {
    match group {
        PropertyGroup::Group { kind, values } => {
            if let Some(other) = kind
                .as_deref()
                .filter(|k| !matches!(*k, "AND" | "OR" | "property"))
            {
                return Err(Violation::invalid(
                    format!("{path}.type"),
                    format!("A property group's type is \"AND\" or \"OR\", not {other:?}."),
                ));
            }
            for (i, v) in values.iter().enumerate() {
                check_group(v, &format!("{path}.values[{i}]"))?;
            }
            Ok(())
        }
        // Only the stored cohort itself is wrapped (`filters.properties`); inside, a wrapper is
        // a criterion without a key.
        PropertyGroup::Wrapped(_) => Err(missing_key(path)),
        PropertyGroup::Filter(f) => check_criterion(f, path),
    }
}

fn missing_key(path: &str) -> Violation {
    Violation::invalid(format!("{path}.key"), "Property filters need a key.")
}

fn check_criterion(f: &PropertyFilter, path: &str) -> Result<(), Violation> {
    match f.kind() {
        "cohort" => f.cohort_id().map(|_| ()).ok_or_else(|| {
            Violation::invalid(
                format!("{path}.value"),
                "Cohort filters need a cohort id as value.",
            )
        }),
        "behavioral" => {
            let event_value = f.value.as_ref().and_then(Value::as_str);
            if !f.key.is_empty() && event_value.is_some_and(|v| !v.is_empty()) {
                Ok(())
            } else {
                Err(Violation::invalid(
                    path,
                    "Behavioral filters need an event name (key) and a value such as \"performed_event\".",
                ))
            }
        }
        "person" | "person_metadata" => {
            if f.key.is_empty() {
                return Err(missing_key(path));
            }
            check_operator_value(f, path)
        }
        other => Err(Violation::invalid(
            format!("{path}.type"),
            format!("Unsupported cohort filter type {other:?} (use person, cohort or behavioral)."),
        )),
    }
}
