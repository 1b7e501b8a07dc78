//! Validation of flag and cohort writes (spec §5, §10): PostHog's serializer rules plus the
//! engine's own compile check, each failure a 400 whose `attr` names the field at fault
//! (`key`, `filters.groups[0].properties[1].value`, …).
//!
//! Everything here is a pure function of the candidate and of project data the handler loaded
//! before the write, so the rules are unit-tested without a server.

mod cohort;
mod dependency;
mod flag;
mod property;

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::error::ApiError;

pub use cohort::{check_cohort_filters, cohort_references, CohortNode};
pub use dependency::dependents;
pub use flag::{check_flag, normalise_payloads, Known};
pub use property::check_operator_value;

fn invalid(attr: impl Into<String>, detail: impl Into<String>) -> ApiError {
    ApiError::invalid(detail).attr(attr)
}

/// Whether `field` holds a non-empty string.
fn non_empty_str(map: &Map<String, Value>, field: &str) -> bool {
    map.get(field)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// An id given as a JSON number or a numeric string.
pub(crate) fn id_value(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A path `start → … → start` through `edges`, if one exists (iterative depth-first search).
pub fn find_cycle(start: i64, edges: &HashMap<i64, Vec<i64>>) -> Option<Vec<i64>> {
    let mut path = vec![start];
    let mut next_child = vec![0usize];
    let mut visited = HashSet::from([start]);
    while let (Some(&node), Some(child)) = (path.last(), next_child.last_mut()) {
        let next = edges.get(&node).and_then(|d| d.get(*child)).copied();
        *child += 1;
        match next {
            None => {
                path.pop();
                next_child.pop();
            }
            Some(n) if n == start => {
                path.push(start);
                return Some(path);
            }
            Some(n) => {
                if visited.insert(n) {
                    path.push(n);
                    next_child.push(0);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;
    use vexil_engine::{CompiledProject, Definitions};
    use vexil_store::{FeatureFlag, NewFlag, ProjectId};

    use super::*;

    fn flag(id: i64, key: &str, filters: Value) -> FeatureFlag {
        let mut f =
            crate::routes::api::flag_input::candidate(&NewFlag::new(key, filters), ProjectId(1));
        f.id = id;
        f
    }

    fn check(candidate: &FeatureFlag, flags: &[FeatureFlag]) -> Result<(), ApiError> {
        let compiled = CompiledProject::compile(&Definitions::default());
        let cohorts = HashSet::from([7]);
        let known = Known {
            flags,
            cohorts: &cohorts,
            compiled: &compiled,
        };
        check_flag(candidate, None, true, known)
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let edges = HashMap::from([(1, vec![2]), (2, vec![3, 4]), (3, vec![]), (4, vec![1])]);
        assert_eq!(find_cycle(1, &edges), Some(vec![1, 2, 4, 1]));
        assert_eq!(find_cycle(3, &edges), None);
        let self_loop = HashMap::from([(5, vec![5])]);
        assert_eq!(find_cycle(5, &self_loop), Some(vec![5, 5]));
    }

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

    #[test]
    fn flag_rules() {
        let ok = flag(
            0,
            "k",
            json!({"groups": [{"properties": [
            {"key": "id", "type": "cohort", "value": 7},
            {"key": "email", "operator": "icontains", "value": "@x.com"}]}]}),
        );
        assert!(check(&ok, &[]).is_ok());
        let attr = |f: FeatureFlag| check(&f, &[]).unwrap_err().attr;
        assert_eq!(attr(flag(0, "k", json!({}))), Some("filters".into()));
        assert_eq!(
            attr(flag(
                0,
                "k",
                json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": 8}]}]})
            )),
            Some("filters.groups[0].properties[0].value".into())
        );
        assert_eq!(
            attr(flag(
                0,
                "k",
                json!({"groups": [{"properties": [{"key": "a", "type": "event"}]}]})
            )),
            Some("filters.groups[0].properties[0].type".into())
        );
        // The engine's own check backs the explicit ones: a malformed condition list, named by
        // its path.
        assert_eq!(
            attr(flag(
                0,
                "k",
                json!({"groups": [{"properties": [], "rollout_percentage": 10}], "super_groups": 5})
            )),
            Some("filters.super_groups".into())
        );
    }

    #[test]
    fn dependents_are_active_direct_dependents() {
        let dep = |id: i64| json!({"groups": [{"properties": [{"key": id.to_string(), "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]});
        let mut off = flag(3, "c", dep(1));
        off.active = false;
        let flags = [
            flag(1, "a", json!({"groups": [{}]})),
            flag(2, "b", dep(1)),
            off,
        ];
        let keys: Vec<&str> = dependents(1, &flags)
            .iter()
            .map(|f| f.key.as_str())
            .collect();
        assert_eq!(keys, ["b"]);
    }
}
