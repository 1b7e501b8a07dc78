//! Assembling a project's local-evaluation [`Definitions`] from stored rows (§2.3): the same
//! for every backend, so it lives outside them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;
use vexil_engine::model::{Filters, PropertyGroup};
use vexil_engine::{Definitions, FlagDefinition};

use crate::{Cohort, FeatureFlag, GroupType};

/// Builds the definitions set.
///
/// `flags` are expected to be the project's non-deleted flags; those SDKs never see (deleted,
/// encrypted remote configuration: [`FeatureFlag::served_to_sdks`]) are skipped here. Cohorts: every non-static, non-deleted cohort that a flag references, directly
/// or through other cohorts, shipped as its property group keyed by id.
pub(crate) fn build(
    flags: Vec<FeatureFlag>,
    group_types: Vec<GroupType>,
    cohorts: Vec<Cohort>,
) -> Definitions {
    let flags: Vec<FeatureFlag> = flags
        .into_iter()
        .filter(FeatureFlag::served_to_sdks)
        .collect();

    let dynamic: HashMap<i64, &Cohort> = cohorts
        .iter()
        .filter(|c| !c.deleted && !c.is_static)
        .map(|c| (c.id, c))
        .collect();
    let mut wanted = HashSet::new();
    // A definition that does not parse references nothing (the engine fails that flag alone).
    let mut pending: Vec<i64> = flags
        .iter()
        .filter_map(|f| Filters::parse(&f.filters).ok())
        .flat_map(|f| f.cohort_references().collect::<Vec<_>>())
        .collect();
    while let Some(id) = pending.pop() {
        if let Some(c) = dynamic.get(&id) {
            if wanted.insert(id) {
                let group = c
                    .property_group()
                    .and_then(|g| PropertyGroup::parse(g).ok());
                pending.extend(group.iter().flat_map(PropertyGroup::cohort_references));
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
        flags: flags.iter().map(FeatureFlag::definition).collect(),
        group_type_mapping: group_types
            .into_iter()
            .map(|g| (g.group_type_index.to_string(), g.name))
            .collect(),
        cohorts,
        property_matching_version: None,
    }
}

/// A stored flag as the definitions feed lists it, or `None` when the feed leaves it out
/// (deleted, encrypted remote configuration).
pub fn feed_definition(flag: &FeatureFlag) -> Option<FlagDefinition> {
    flag.served_to_sdks().then(|| flag.definition())
}

/// The cohorts a flag definition makes the feed ship directly (none when it does not parse).
pub fn feed_cohort_references(flag: &FlagDefinition) -> BTreeSet<i64> {
    Filters::parse(&flag.filters)
        .map(|f| f.cohort_references().collect())
        .unwrap_or_default()
}

impl FeatureFlag {
    /// Whether `/flags` and the definitions feed serve this flag. PostHog serves every
    /// non-deleted flag there, remote-configuration ones included (their payload is what
    /// `get_feature_flag_payload` returns), except remote-configuration flags with encrypted
    /// payloads: those are read only through `remote_config` with a personal key.
    pub fn served_to_sdks(&self) -> bool {
        let secret = self.is_remote_configuration && self.has_encrypted_payloads;
        !self.deleted && !secret
    }

    /// The flag as the engine reads it (a local-evaluation definition).
    pub fn definition(&self) -> FlagDefinition {
        FlagDefinition {
            id: self.id,
            team_id: Some(self.project_id.0),
            key: self.key.clone(),
            name: Some(self.name.clone()),
            filters: self.filters.clone(),
            active: self.active,
            deleted: self.deleted,
            ensure_experience_continuity: self.ensure_experience_continuity,
            version: self.version,
            has_experiment: self.has_experiment,
            bucketing_identifier: self.bucketing_identifier.clone(),
            evaluation_runtime: Some(self.evaluation_runtime.as_str().to_owned()),
            evaluation_tags: Some(self.evaluation_tags.clone()),
        }
    }
}
