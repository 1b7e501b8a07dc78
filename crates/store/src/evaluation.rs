//! The stored data one `/flags` evaluation needs, read in one batch on the hot path.

use std::collections::{HashMap, HashSet};

use crate::Properties;

/// What [`crate::Store::evaluation_inputs`] returns: everything per-person the engine's
/// `Context` takes from storage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalInputs {
    /// Stored properties of the person behind the distinct id; `None` when no person exists.
    pub person_properties: Option<Properties>,
    /// Ids of the static cohorts the person is in (through any of their distinct ids).
    pub static_cohorts: HashSet<i64>,
    /// Stored properties of each requested group that exists, by group type index.
    pub group_properties: HashMap<i64, Properties>,
    /// Experience-continuity hash keys by flag key (empty unless asked for).
    pub hash_key_overrides: HashMap<String, String>,
}
