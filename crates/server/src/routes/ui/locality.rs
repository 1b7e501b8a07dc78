//! The "evaluable locally / needs the server" badge: whether an SDK holding the definitions
//! feed can evaluate a flag by itself, and if not, why — known at authoring time.

use vexil_engine::model::{Filters, PropertyGroup};
use vexil_engine::FlagDefinition;

use crate::snapshot::ProjectSnapshot;

/// Where a flag can be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locality {
    /// Everything the flag reads ships in the definitions feed.
    Local,
    /// SDKs must ask `/flags`, for these reasons.
    Server(Vec<String>),
}

/// The locality of `flag` in `snapshot`'s project; `encrypted_remote_config` for a
/// remote-configuration flag with encrypted payloads (left out of the feed).
pub fn of(
    snapshot: &ProjectSnapshot,
    flag: &FlagDefinition,
    encrypted_remote_config: bool,
) -> Locality {
    let mut reasons = Vec::new();
    if encrypted_remote_config {
        reasons.push(
            "its payload is encrypted remote configuration, served only by the API".to_owned(),
        );
    }
    if flag.ensure_experience_continuity {
        reasons.push("experience continuity keeps each person's hash key on the server".to_owned());
    }
    if let Some(compiled) = snapshot.compiled.flag(&flag.key) {
        if let Some(defect) = compiled.defect() {
            reasons.push(format!("the definition cannot be evaluated: {defect}"));
        }
        if compiled.has_missing_dependency() {
            reasons.push("it depends on a flag that is missing or part of a cycle".to_owned());
        }
    }
    if let Ok(filters) = Filters::parse(&flag.filters) {
        let feed = snapshot.compiled.cohort_definitions();
        let mut cohorts: Vec<i64> = filters.cohort_references().collect();
        cohorts.sort_unstable();
        cohorts.dedup();
        for id in cohorts {
            match feed.get(&id.to_string()) {
                None => reasons.push(format!(
                    "cohort {id} is static (its members are stored on the server)"
                )),
                Some(group) if is_behavioral(group) => reasons.push(format!(
                    "cohort {id} is behavioural (counted from events on the server)"
                )),
                Some(_) => {}
            }
        }
    }
    if reasons.is_empty() {
        Locality::Local
    } else {
        Locality::Server(reasons)
    }
}

fn is_behavioral(group: &serde_json::Value) -> bool {
    PropertyGroup::parse(group).is_ok_and(|g| g.filters().iter().any(|f| f.kind() == "behavioral"))
}
