//! A dynamic cohort's `filters`: the property-group shape, each criterion, and its cohort
//! references (none to itself, none unknown, no cycle).

use std::collections::HashMap;

use serde_json::Value;

use super::property::check_operator_value;
use super::{shape, Violation, ViolationCode};
use crate::behavior::{self, LeafError};
use crate::cohort::Extents;
use crate::graph;
use crate::limits::{Exceeded, MAX_COHORTS};
use crate::model::{PropertyFilter, PropertyGroup};
use crate::property::MatchOptions;

/// A stored, non-deleted cohort as the reference rules see it.
#[derive(Debug, Clone, Copy)]
pub struct StoredCohort<'a> {
    /// Cohort id.
    pub id: i64,
    /// Display name (for cycle messages).
    pub name: &'a str,
    /// Its `filters` (`{"properties": {...}}`; `{}` for static cohorts).
    pub filters: &'a Value,
    /// A static cohort: a list of members, a leaf for the nesting limits.
    pub is_static: bool,
}

/// Checks a dynamic cohort's `filters` as written to cohort `id` (`None` on create) against the
/// project's non-deleted `cohorts`: the shape, the references (existing, not itself, no cycle)
/// and the [`crate::limits`] (cohort count on create, nesting depth and reachable criteria of
/// this cohort and of every cohort that reaches it). A static cohort is checked with `{}`.
pub fn check_cohort(
    filters: &Value,
    id: Option<i64>,
    cohorts: &[StoredCohort<'_>],
) -> Result<(), Violation> {
    if id.is_none() && cohorts.len() >= MAX_COHORTS {
        return Err(Violation::limit("", Exceeded::Cohorts(cohorts.len())));
    }
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
    let references = group
        .as_ref()
        .map(PropertyGroup::cohort_references)
        .unwrap_or_default();
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
    // Node 0 is the written cohort; the stored dynamic ones follow (a static cohort is a
    // criterion, not a node).
    let others: Vec<&StoredCohort<'_>> = cohorts
        .iter()
        .filter(|c| Some(c.id) != id && !c.is_static)
        .collect();
    let index: HashMap<i64, usize> = id
        .map(|id| (id, 0))
        .into_iter()
        .chain(others.iter().enumerate().map(|(i, c)| (c.id, i + 1)))
        .collect();
    let edges = |ids: &[i64]| -> Vec<usize> {
        ids.iter().filter_map(|id| index.get(id).copied()).collect()
    };
    let criteria_of = |g: Option<&PropertyGroup>| g.map_or(0, |g| g.filters().len());
    let (deps, criteria): (Vec<Vec<usize>>, Vec<usize>) =
        std::iter::once((edges(&references), criteria_of(group.as_ref())))
            .chain(others.iter().map(|c| {
                let group = stored_group(c.filters);
                let references = group
                    .as_ref()
                    .map(PropertyGroup::cohort_references)
                    .unwrap_or_default();
                (edges(&references), criteria_of(group.as_ref()))
            }))
            .unzip();
    let name = |i: usize| match (i, id) {
        (0, Some(id)) => format!("this cohort (id {id})"),
        (0, None) => "this cohort".to_owned(),
        (i, _) => format!("{} (id {})", others[i - 1].name, others[i - 1].id),
    };
    if id.is_some() {
        if let Some(cycle) = graph::cycle_through(0, &deps) {
            let names: Vec<String> = cycle.into_iter().map(name).collect();
            return Err(Violation::invalid(
                "filters",
                format!("Circular cohort reference detected: {}", names.join(" → ")),
            ));
        }
    }
    // The write changes the extent of this cohort and of every cohort that reaches it.
    let affected = graph::reaching(0, &deps);
    let extents = Extents::of(&deps, &criteria, |i| affected[i]);
    let over = (0..deps.len())
        .filter(|&i| affected[i])
        .find_map(|i| Some((i, extents.exceeded(i)?)));
    match over {
        None => Ok(()),
        Some((0, e)) => Err(Violation::limit("filters", e)),
        Some((i, e)) => Err(Violation::invalid(
            "filters",
            format!(
                "Limit exceeded for cohort {}, which references this one: {e}.",
                name(i)
            ),
        )),
    }
}

/// A stored cohort's property group (none when its `filters` do not parse).
fn stored_group(filters: &Value) -> Option<PropertyGroup> {
    filters
        .get("properties")
        .and_then(|p| PropertyGroup::parse(p).ok())
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
        "behavioral" => match behavior::parse(f, MatchOptions::default()) {
            // Values the engine would compile to "never matches" (a bad regex) are refused too.
            Ok(_) => f
                .event_filters
                .iter()
                .flatten()
                .enumerate()
                .try_for_each(|(i, ef)| {
                    check_operator_value(ef, &format!("{path}.event_filters[{i}]"))
                }),
            Err(LeafError::Unsupported { field, message }) => {
                Err(Violation::invalid(format!("{path}.{field}"), message))
            }
            Err(LeafError::Limit { field, exceeded }) => {
                Err(Violation::limit(format!("{path}.{field}"), exceeded))
            }
        },
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
