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
