//! Incremental compilation: a new [`CompiledProject`] revision from the previous one and one
//! change, recompiling only the flags the change touches.
//!
//! Every result is the project [`CompiledProject::compile`] would build from the changed
//! definitions (a property test holds it to that): the changed flag is compiled again, and when
//! flags are added, removed or re-keyed, so are the flags that read other flags (their compiled
//! form holds flag indices and resolved references). Every other compiled flag is shared with
//! the previous revision, and so is the table of property keys ([`crate::keys::KeyTable`]), which
//! recompiled flags only extend: the ids shared flags hold stay valid. The project-wide passes
//! (dependency order, stored-data requirements) are cheap and always redone.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::cohort::CohortSet;
use crate::compile::{compile_flag, group_types, index, CompiledProject, Resolver, Sources};
use crate::model::FlagDefinition;

impl CompiledProject {
    /// This project with `def` replacing the flag of the same id, or added (in id order, the
    /// order stores list flags in) when there is none; a `deleted` definition removes the flag.
    pub fn with_flag(&self, def: FlagDefinition) -> CompiledProject {
        let at = self.position(def.id);
        let mut defs = self.sources.defs.clone();
        let change = match (at, def.deleted) {
            (None, true) => return self.clone(),
            (Some(i), true) => {
                defs.remove(i);
                Change::Removed(i)
            }
            (Some(i), false) => {
                let same_key = defs[i].key == def.key;
                defs[i] = Arc::new(def);
                if same_key {
                    Change::Replaced(i)
                } else {
                    Change::Rekeyed(i)
                }
            }
            (None, false) => {
                let i = defs.partition_point(|d| d.id < def.id);
                defs.insert(i, Arc::new(def));
                Change::Added(i)
            }
        };
        self.rebuilt(defs, change)
    }

    /// This project without the flag of this id.
    pub fn without_flag(&self, id: i64) -> CompiledProject {
        match self.position(id) {
            None => self.clone(),
            Some(i) => {
                let mut defs = self.sources.defs.clone();
                defs.remove(i);
                self.rebuilt(defs, Change::Removed(i))
            }
        }
    }

    /// This project with another group type mapping (`{"<index>": "<name>"}`). Nothing is
    /// recompiled: flags refer to group types by index.
    pub fn with_group_types(&self, mapping: &BTreeMap<String, String>) -> CompiledProject {
        let mut project = self.clone();
        project.group_types = group_types(mapping);
        project
    }

    /// This project with another set of dynamic cohorts (`{"<id>": <property group>}`); every
    /// flag is recompiled against them.
    pub fn with_cohorts(&self, cohorts: &BTreeMap<String, Value>) -> CompiledProject {
        let opts = self.sources.opts;
        CompiledProject::build(
            self.sources.defs.clone(),
            opts,
            self.group_types.clone(),
            Arc::new(cohorts.clone()),
            Arc::new(CohortSet::compile(cohorts, opts)),
        )
    }

    /// The flag definitions this project was compiled from (deleted ones excluded), in order.
    pub fn definitions(&self) -> impl ExactSizeIterator<Item = &FlagDefinition> {
        self.sources.defs.iter().map(|d| &**d)
    }

    /// The dynamic cohorts this project was compiled with.
    pub fn cohort_definitions(&self) -> &BTreeMap<String, Value> {
        &self.sources.cohort_defs
    }

    /// Index in `sources.defs` of the first definition with this id.
    fn position(&self, id: i64) -> Option<usize> {
        if self.sources.distinct {
            self.sources.by_id.get(&id).copied()
        } else {
            self.sources.defs.iter().position(|d| d.id == id)
        }
    }

    /// The project compiled from `defs`, which differ from this project's by `change`.
    fn rebuilt(&self, defs: Vec<Arc<FlagDefinition>>, change: Change) -> CompiledProject {
        let s = &self.sources;
        let rebuild_all = || {
            CompiledProject::build(
                defs.clone(),
                s.opts,
                self.group_types.clone(),
                Arc::clone(&s.cohort_defs),
                Arc::clone(&self.cohorts),
            )
        };
        // With repeated keys or ids, which definition a flag index stands for can shift with
        // any change: compile from scratch (stores never produce this).
        if !s.distinct {
            return rebuild_all();
        }
        if let Change::Replaced(i) = change {
            // Same id, same key, same place: indices and references are unchanged, so no other
            // flag's compiled form is affected.
            let resolver = Resolver {
                by_key: &self.by_key,
                by_id: &s.by_id,
            };
            let mut compiled = s.compiled.clone();
            let mut keys = self.keys.clone();
            compiled[i] = Arc::new(compile_flag(
                &defs[i],
                s.opts,
                &resolver,
                &self.cohorts,
                &mut keys,
            ));
            let sources = Sources {
                defs,
                compiled: Vec::new(),
                by_id: Arc::clone(&s.by_id),
                distinct: true,
                readers: 0,
                opts: s.opts,
                cohort_defs: Arc::clone(&s.cohort_defs),
            };
            return CompiledProject::assemble(
                compiled,
                Arc::clone(&self.by_key),
                Arc::clone(&self.cohorts),
                self.group_types.clone(),
                keys,
                sources,
                Some((self, i)),
            );
        }
        let (by_key, by_id) = index(defs.iter().map(|d| &**d));
        if by_key.len() != defs.len() || by_id.len() != defs.len() {
            return rebuild_all();
        }
        let resolver = Resolver {
            by_key: &by_key,
            by_id: &by_id,
        };
        // The previous index of the flag now at `i`, or `None` for the changed flag.
        let previous = |i: usize| match change {
            Change::Replaced(c) | Change::Rekeyed(c) => (i != c).then_some(i),
            Change::Added(c) => match i.cmp(&c) {
                std::cmp::Ordering::Less => Some(i),
                std::cmp::Ordering::Equal => None,
                std::cmp::Ordering::Greater => Some(i - 1),
            },
            Change::Removed(c) => Some(if i < c { i } else { i + 1 }),
        };
        // Kept flags read keys of this table; recompiled ones may add to it.
        let mut keys = self.keys.clone();
        let compiled = defs
            .iter()
            .enumerate()
            .map(|(i, def)| match previous(i).map(|p| &s.compiled[p]) {
                Some(kept) if !kept.reads_flags() => Arc::clone(kept),
                _ => Arc::new(compile_flag(
                    def,
                    s.opts,
                    &resolver,
                    &self.cohorts,
                    &mut keys,
                )),
            })
            .collect();
        let sources = Sources {
            defs,
            compiled: Vec::new(),
            by_id: Arc::new(by_id),
            distinct: true,
            readers: 0,
            opts: s.opts,
            cohort_defs: Arc::clone(&s.cohort_defs),
        };
        CompiledProject::assemble(
            compiled,
            Arc::new(by_key),
            Arc::clone(&self.cohorts),
            self.group_types.clone(),
            keys,
            sources,
            None,
        )
    }
}

/// How the definitions changed, by flag index.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Same id and key at index `i`; other fields changed.
    Replaced(usize),
    /// Same id at index `i`, new key.
    Rekeyed(usize),
    /// A new flag at index `i`.
    Added(usize),
    /// The flag at index `i` is gone.
    Removed(usize),
}
