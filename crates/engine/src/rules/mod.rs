//! Write rules: what PostHog's management API refuses in a flag or cohort definition (spec §5,
//! §10), checked on the typed model, each failure a [`Violation`] naming the field at fault by
//! its JSON path (`filters.groups[0].properties[1].value`).
//!
//! Definitions are parsed once ([`Filters::parse`], [`PropertyGroup::parse`]); the rules read
//! the typed result, and cross-definition rules (references, cycles, lifecycle) read the project
//! as stored before the write ([`Stored`]). Everything here is a pure function.
//!
//! ```
//! use std::collections::HashSet;
//! use vexil_engine::rules::{check_flag, FlagWrite, Stored};
//! use vexil_engine::FlagDefinition;
//!
//! let flag: FlagDefinition = serde_json::from_value(serde_json::json!({
//!     "key": "beta", "filters": {"groups": [{"rollout_percentage": 120}]}
//! })).unwrap();
//! let stored = Stored { flags: &[], cohorts: &HashSet::new() };
//! let violation = check_flag(&FlagWrite::create(&flag), &stored).unwrap_err();
//! assert_eq!(violation.attr, "filters.groups[0].rollout_percentage");
//! ```

mod cohort;
mod flag;
mod property;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub use crate::limits::MAX_LIST_VALUES;
pub use cohort::{check_cohort, StoredCohort};

use crate::compile::DefinitionError;
use crate::graph;
use crate::limits::{Exceeded, MAX_FLAGS};
use crate::model::FlagDefinition;
#[cfg(doc)]
use crate::model::{Filters, PropertyGroup};

/// One broken write rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{attr}: {detail}")]
pub struct Violation {
    /// The field at fault, as a JSON path from the written object (`key`, `filters`,
    /// `filters.groups[0].rollout_percentage`, `active`, …); empty when no field is (a project
    /// already at a count limit).
    pub attr: String,
    /// What kind of problem it is.
    pub code: ViolationCode,
    /// One human sentence.
    pub detail: String,
}

/// The machine word of a [`Violation`] (PostHog's error `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationCode {
    /// `invalid_input`: the general case.
    Invalid,
    /// `invalid_value`: a value of the wrong type for its operator.
    InvalidValue,
    /// `invalid_regex`: a pattern the engine cannot compile.
    InvalidRegex,
    /// `invalid_date`: a date operand the engine cannot read.
    InvalidDate,
    /// `cohort_does_not_exist`: a reference to an unknown or deleted cohort.
    CohortDoesNotExist,
}

impl ViolationCode {
    /// The code as PostHog spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationCode::Invalid => "invalid_input",
            ViolationCode::InvalidValue => "invalid_value",
            ViolationCode::InvalidRegex => "invalid_regex",
            ViolationCode::InvalidDate => "invalid_date",
            ViolationCode::CohortDoesNotExist => "cohort_does_not_exist",
        }
    }
}

impl Violation {
    pub(crate) fn new(
        code: ViolationCode,
        attr: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Violation {
            attr: attr.into(),
            code,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(attr: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ViolationCode::Invalid, attr, detail)
    }

    /// A definition over one of the [`crate::limits`].
    pub(crate) fn limit(attr: impl Into<String>, exceeded: Exceeded) -> Self {
        Self::invalid(attr, format!("Limit exceeded: {exceeded}."))
    }
}

/// A flag write: the flag as it will be stored and as it was.
#[derive(Debug, Clone, Copy)]
pub struct FlagWrite<'a> {
    /// The flag after the write (`id` 0 on create).
    pub flag: &'a FlagDefinition,
    /// The stored flag before the write (`None` on create).
    pub before: Option<&'a FlagDefinition>,
    /// Whether the write sets `filters`: they are then checked in full (otherwise they are the
    /// stored ones, checked when they were written).
    pub filters_sent: bool,
}

impl<'a> FlagWrite<'a> {
    /// Creating `flag`.
    pub fn create(flag: &'a FlagDefinition) -> Self {
        FlagWrite {
            flag,
            before: None,
            filters_sent: true,
        }
    }
}

/// The project as stored before a write: what cross-definition rules read.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    /// The project's non-deleted flags (remote-configuration ones included), shared so that a
    /// server can keep them between writes without copying.
    pub flags: &'a [Arc<FlagDefinition>],
    /// Ids of the project's non-deleted cohorts (static ones included).
    pub cohorts: &'a HashSet<i64>,
}

/// Checks a flag write: on create, the project's flag count ([`crate::limits::MAX_FLAGS`]); its
/// filters (when sent), its flag dependencies (existing, active, no cycle) and, on update, the
/// lifecycle rules (no deleting or disabling a flag that active flags depend on; no enabling a
/// flag whose dependency is disabled). The flag's key is the store's to check
/// (`vexil_store::validate_key`).
pub fn check_flag(write: &FlagWrite<'_>, stored: &Stored<'_>) -> Result<(), Violation> {
    if write.before.is_none() && stored.flags.len() >= MAX_FLAGS {
        return Err(Violation::limit("", Exceeded::Flags(stored.flags.len())));
    }
    let parsed = if write.filters_sent {
        let filters = flag::check_filters(write.flag, stored)?;
        let deps: Vec<i64> = filters.flag_dependencies().collect();
        check_dependency_cycle(write.flag, &deps, stored)?;
        crate::compile::check_compiles(write.flag, &filters).map_err(|e| {
            Violation::invalid(
                e.path,
                format!(
                    "Can't evaluate flag - please check release conditions: {}.",
                    e.message
                ),
            )
        })?;
        Some(filters)
    } else {
        None
    };
    if let Some(before) = write.before {
        let deps = match parsed {
            Some(filters) => filters.flag_dependencies().collect(),
            None => dependencies(write.flag),
        };
        check_lifecycle(write.flag, before, &deps, stored)?;
    }
    Ok(())
}

/// A shape error of the typed parse, in the words of the rule it breaks.
pub(crate) fn shape(e: DefinitionError) -> Violation {
    let field = e.path.rsplit(['.', '[']).next().unwrap_or_default();
    let in_variants = e.path.starts_with("filters.multivariate.variants[");
    let detail = match field {
        // The parsers' own messages are sentences; serde's are not.
        _ if e.message.ends_with('.') => e.message.clone(),
        "rollout_percentage" => "A rollout percentage is a number from 0 to 100.".to_owned(),
        "aggregation_group_type_index" => flag::group_index_detail(),
        "groups" => "Expected a list of condition sets.".to_owned(),
        "properties" => "Expected a list of property filters.".to_owned(),
        "variant" => "A variant override is the key of one of the flag's variants.".to_owned(),
        "multivariate" => "Expected an object with a list of variants.".to_owned(),
        "variants" => "Expected a list of variants.".to_owned(),
        "payloads" => "Payloads must be an object keyed by variant (or \"true\").".to_owned(),
        "key" if in_variants => "Each variant needs a key.".to_owned(),
        "key" => "Property filters need a key.".to_owned(),
        "type" | "operator" => "Not a valid string.".to_owned(),
        _ => format!("Invalid filters: {}.", e.message),
    };
    Violation::invalid(e.path, detail)
}

/// Active, non-deleted flags (other than `id`) that depend on flag `id`.
pub fn dependents(id: i64, flags: &[Arc<FlagDefinition>]) -> Vec<&FlagDefinition> {
    flags
        .iter()
        .map(|f| &**f)
        .filter(|f| f.id != id && f.active && !f.deleted)
        .filter(|f| dependencies(f).contains(&id))
        .collect()
}

/// The flag ids `flag` depends on (none when its filters do not parse).
fn dependencies(flag: &FlagDefinition) -> Vec<i64> {
    crate::model::Filters::parse(&flag.filters)
        .map(|f| f.flag_dependencies().collect())
        .unwrap_or_default()
}

fn check_dependency_cycle(
    flag: &FlagDefinition,
    deps: &[i64],
    stored: &Stored<'_>,
) -> Result<(), Violation> {
    if flag.id == 0 {
        return Ok(()); // a new flag has no dependents yet
    }
    // Node 0 is the candidate; stored flags follow.
    if deps.is_empty() {
        return Ok(()); // a cycle through the flag needs an edge out of it
    }
    let others: Vec<&FlagDefinition> = stored
        .flags
        .iter()
        .map(|f| &**f)
        .filter(|f| f.id != flag.id)
        .collect();
    let index: HashMap<i64, usize> = std::iter::once(flag.id)
        .chain(others.iter().map(|f| f.id))
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    let edges = |ids: &[i64]| -> Vec<usize> {
        ids.iter().filter_map(|id| index.get(id).copied()).collect()
    };
    let graph: Vec<Vec<usize>> = std::iter::once(edges(deps))
        .chain(others.iter().map(|f| edges(&dependencies(f))))
        .collect();
    let Some(cycle) = graph::cycle_through(0, &graph) else {
        return Ok(());
    };
    let keys: Vec<&str> = cycle
        .into_iter()
        .map(|i| match i {
            0 => flag.key.as_str(),
            i => others[i - 1].key.as_str(),
        })
        .collect();
    Err(Violation::invalid(
        "filters",
        format!("Circular dependency detected: {}", keys.join(" → ")),
    ))
}

fn check_lifecycle(
    flag: &FlagDefinition,
    before: &FlagDefinition,
    deps: &[i64],
    stored: &Stored<'_>,
) -> Result<(), Violation> {
    let deleting = flag.deleted && !before.deleted;
    let disabling = !flag.active && before.active && !flag.deleted;
    if deleting || disabling {
        let keys: Vec<&str> = dependents(flag.id, stored.flags)
            .iter()
            .map(|f| f.key.as_str())
            .collect();
        if !keys.is_empty() {
            let (attr, verb) = if deleting {
                ("deleted", "delete")
            } else {
                ("active", "disable")
            };
            return Err(Violation::invalid(
                attr,
                format!(
                    "Cannot {verb} this feature flag because other active flags depend on it: {}.",
                    keys.join(", ")
                ),
            ));
        }
    }
    let enabling = flag.active && !flag.deleted && (!before.active || before.deleted);
    if enabling {
        for &id in deps {
            match stored.flags.iter().find(|f| f.id == id) {
                Some(dep) if dep.active => {}
                Some(dep) => {
                    return Err(Violation::invalid(
                        "active",
                        format!(
                            "Cannot enable this feature flag because it depends on the disabled flag \"{}\".",
                            dep.key
                        ),
                    ))
                }
                None => {
                    return Err(Violation::invalid(
                        "active",
                        format!("Cannot enable this feature flag because it depends on flag id {id}, which does not exist or is deleted."),
                    ))
                }
            }
        }
    }
    Ok(())
}
