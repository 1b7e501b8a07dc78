//! Assembling a project's local-evaluation [`Definitions`] from stored rows (§2.3): the same
//! for every backend, so it lives outside them.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use vexil_engine::{Definitions, FlagDefinition};

use crate::{Cohort, FeatureFlag, GroupType};

/// Builds the definitions set.
///
/// `flags` are expected to be the project's non-deleted flags; remote-configuration flags are
/// skipped here. Cohorts: every non-static, non-deleted cohort that a flag references, directly
/// or through other cohorts, shipped as its property group keyed by id.
pub(crate) fn build(
    flags: Vec<FeatureFlag>,
    group_types: Vec<GroupType>,
    cohorts: Vec<Cohort>,
) -> Definitions {
    let flags: Vec<FeatureFlag> = flags
        .into_iter()
        .filter(|f| !f.deleted && !f.is_remote_configuration)
        .collect();

    let dynamic: HashMap<i64, &Cohort> = cohorts
        .iter()
        .filter(|c| !c.deleted && !c.is_static)
        .map(|c| (c.id, c))
        .collect();
    let mut wanted = HashSet::new();
    let mut pending = Vec::new();
    for f in &flags {
        cohort_refs(&f.filters, &mut pending);
    }
    while let Some(id) = pending.pop() {
        if let Some(c) = dynamic.get(&id) {
            if wanted.insert(id) {
                cohort_refs(&c.filters, &mut pending);
            }
        }
    }
    let cohorts: BTreeMap<String, Value> = wanted
        .iter()
        .filter_map(|id| {
            let group = dynamic.get(id)?.property_group()?;
            Some((id.to_string(), group.clone()))
        })
        .collect();

    Definitions {
        flags: flags.into_iter().map(to_definition).collect(),
        group_type_mapping: group_types
            .into_iter()
            .map(|g| (g.group_type_index.to_string(), g.name))
            .collect(),
        cohorts,
        property_matching_version: None,
    }
}

fn to_definition(f: FeatureFlag) -> FlagDefinition {
    FlagDefinition {
        id: f.id,
        team_id: Some(f.project_id.0),
        key: f.key,
        name: Some(f.name),
        filters: f.filters,
        active: f.active,
        deleted: f.deleted,
        ensure_experience_continuity: f.ensure_experience_continuity,
        version: f.version,
        has_experiment: f.has_experiment,
        bucketing_identifier: f.bucketing_identifier,
        evaluation_runtime: Some(f.evaluation_runtime.as_str().to_owned()),
        evaluation_tags: Some(f.evaluation_tags),
    }
}

/// Collects the ids of every `{"type": "cohort", "value": <id>}` filter anywhere in `v`.
fn cohort_refs(v: &Value, out: &mut Vec<i64>) {
    match v {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some("cohort") {
                let id = match m.get("value") {
                    Some(Value::Number(n)) => n.as_i64(),
                    Some(Value::String(s)) => s.trim().parse().ok(),
                    _ => None,
                };
                out.extend(id);
            }
            m.values().for_each(|x| cohort_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| cohort_refs(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nested_cohort_references() {
        let mut out = Vec::new();
        cohort_refs(
            &json!({"groups": [{"properties": [
                {"key": "id", "type": "cohort", "value": 7},
                {"key": "id", "type": "cohort", "value": "8"},
                {"key": "email", "type": "person", "value": "x"}
            ]}]}),
            &mut out,
        );
        assert_eq!(out, vec![7, 8]);
    }
}
