//! Dynamic cohort filters: the property-group shape, each leaf, and cohort references (none to
//! itself, none unknown, no cycle).

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{check_operator_value, find_cycle, id_value, invalid, non_empty_str};
use crate::error::ApiError;

/// Deepest nesting of cohort property groups (the engine's limit).
const MAX_GROUP_DEPTH: usize = 64;

/// A stored cohort as far as reference checks need it.
#[derive(Debug, Clone)]
pub struct CohortNode {
    /// Display name (for cycle messages).
    pub name: String,
    /// Cohorts it references.
    pub references: Vec<i64>,
}

/// Ids of every cohort `{"type": "cohort", "value": <id>}` filter anywhere in `v`.
pub fn cohort_references(v: &Value) -> Vec<i64> {
    fn walk(v: &Value, out: &mut Vec<i64>) {
        match v {
            Value::Object(m) => {
                if m.get("type").and_then(Value::as_str) == Some("cohort") {
                    out.extend(id_value(m.get("value")));
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// Checks a dynamic cohort's filters: the property-group shape, each leaf, and its cohort
/// references — none to itself (`id`), none unknown (`known` holds every non-deleted cohort
/// reachable from the references), and no cycle.
pub fn check_cohort_filters(
    filters: &Value,
    id: Option<i64>,
    known: &HashMap<i64, CohortNode>,
) -> Result<(), ApiError> {
    let obj = filters
        .as_object()
        .ok_or_else(|| invalid("filters", "Filters must be a JSON object."))?;
    match obj.get("properties") {
        None | Some(Value::Null) => {}
        Some(group) => check_cohort_group(group, "filters.properties", 0)?,
    }
    let references = cohort_references(filters);
    for r in &references {
        if Some(*r) == id {
            return Err(invalid("filters", "A cohort cannot reference itself."));
        }
        if !known.contains_key(r) {
            return Err(ApiError::validation(
                "cohort_does_not_exist",
                format!("Cohort with id {r} does not exist"),
            )
            .attr("filters"));
        }
    }
    let Some(id) = id else {
        return Ok(()); // nothing references a cohort that does not exist yet
    };
    let mut edges: HashMap<i64, Vec<i64>> = known
        .iter()
        .map(|(k, n)| (*k, n.references.clone()))
        .collect();
    edges.insert(id, references);
    if let Some(cycle) = find_cycle(id, &edges) {
        let names: Vec<String> = cycle
            .iter()
            .map(|c| match known.get(c) {
                Some(n) if *c != id => format!("{} (id {c})", n.name),
                _ => format!("this cohort (id {c})"),
            })
            .collect();
        return Err(invalid(
            "filters",
            format!("Circular cohort reference detected: {}", names.join(" → ")),
        ));
    }
    Ok(())
}

fn check_cohort_group(group: &Value, path: &str, depth: usize) -> Result<(), ApiError> {
    if depth > MAX_GROUP_DEPTH {
        return Err(invalid(path, "Property groups are nested too deeply."));
    }
    let obj = group
        .as_object()
        .ok_or_else(|| invalid(path, "Expected a property group object."))?;
    let Some(values) = obj.get("values") else {
        return check_cohort_leaf(obj, path);
    };
    match obj.get("type").and_then(Value::as_str) {
        None | Some("AND" | "OR" | "property") => {}
        Some(other) => {
            return Err(invalid(
                format!("{path}.type"),
                format!("A property group's type is \"AND\" or \"OR\", not {other:?}."),
            ))
        }
    }
    let values = values
        .as_array()
        .ok_or_else(|| invalid(format!("{path}.values"), "Expected a list."))?;
    for (i, v) in values.iter().enumerate() {
        check_cohort_group(v, &format!("{path}.values[{i}]"), depth + 1)?;
    }
    Ok(())
}

fn check_cohort_leaf(leaf: &Map<String, Value>, path: &str) -> Result<(), ApiError> {
    if leaf.is_empty() {
        return Ok(());
    }
    match leaf.get("type").and_then(Value::as_str).unwrap_or("person") {
        "cohort" => id_value(leaf.get("value")).map(|_| ()).ok_or_else(|| {
            invalid(
                format!("{path}.value"),
                "Cohort filters need a cohort id as value.",
            )
        }),
        "behavioral" => {
            if non_empty_str(leaf, "key") && non_empty_str(leaf, "value") {
                Ok(())
            } else {
                Err(invalid(
                    path,
                    "Behavioral filters need an event name (key) and a value such as \"performed_event\".",
                ))
            }
        }
        "person" | "person_metadata" => {
            if !non_empty_str(leaf, "key") {
                return Err(invalid(
                    format!("{path}.key"),
                    "Property filters need a key.",
                ));
            }
            check_operator_value(leaf, path)
        }
        other => Err(invalid(
            format!("{path}.type"),
            format!("Unsupported cohort filter type {other:?} (use person, cohort or behavioral)."),
        )),
    }
}
