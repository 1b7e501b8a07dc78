//! Incremental compilation: a project changed flag by flag evaluates exactly like a full
//! compile of the final definitions.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use vexil_engine::{CompiledProject, Context, Definitions, FlagDefinition};

use crate::properties::{condition, flag_def, json_leaf, properties, render};
use crate::support::now;

#[derive(Debug, Clone)]
enum Op {
    /// Add or replace (by id) this flag; `deleted` removes it.
    Put(FlagDefinition),
    Remove(i64),
    GroupTypes(BTreeMap<String, String>),
    Cohorts(BTreeMap<String, Value>),
}

fn definition(def: Value, key: Option<&str>, deleted: bool) -> FlagDefinition {
    let mut def: FlagDefinition = serde_json::from_value(def).unwrap();
    if let Some(key) = key {
        def.key = key.to_owned();
    }
    def.deleted = deleted;
    def
}

fn cohorts() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map(
        "[0-4]",
        prop_oneof![
            Just(json!({"type": "OR", "values": []})),
            condition().prop_map(|c| json!({"type": "AND", "values": [{"type": "OR", "values": c["properties"].clone()}]})),
        ],
        0..3,
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            flag_def(),
            // Mostly the flag's own key; sometimes another flag's (a rename, maybe a repeat).
            prop::option::weighted(0.2, prop::sample::select(vec!["flag-0", "flag-1", "flag-2", "x"])),
            prop::bool::weighted(0.15),
            prop::option::weighted(0.3, prop::sample::select(vec!["server", "client", "all", "toaster"])),
        )
            .prop_map(|(def, key, deleted, runtime)| {
                let mut def = definition(def, key, deleted);
                def.evaluation_runtime = runtime.map(str::to_owned);
                Op::Put(def)
            }),
        1 => (0i64..6).prop_map(Op::Remove),
        1 => prop::sample::select(vec![
            BTreeMap::new(),
            BTreeMap::from([("0".to_owned(), "company".to_owned())]),
            BTreeMap::from([("0".to_owned(), "company".to_owned()), ("1".to_owned(), "team".to_owned())]),
        ])
        .prop_map(Op::GroupTypes),
        1 => cohorts().prop_map(Op::Cohorts),
    ]
}

/// The definitions after `op`, by the rule `with_flag` documents.
fn apply(defs: &mut Definitions, op: &Op) {
    match op {
        Op::Put(def) => match (defs.flags.iter().position(|d| d.id == def.id), def.deleted) {
            (Some(i), true) => {
                defs.flags.remove(i);
            }
            (Some(i), false) => defs.flags[i] = def.clone(),
            (None, true) => {}
            (None, false) => {
                let i = defs.flags.partition_point(|d| d.id < def.id);
                defs.flags.insert(i, def.clone());
            }
        },
        Op::Remove(id) => {
            if let Some(i) = defs.flags.iter().position(|d| d.id == *id) {
                defs.flags.remove(i);
            }
        }
        Op::GroupTypes(m) => defs.group_type_mapping = m.clone(),
        Op::Cohorts(c) => defs.cohorts = c.clone(),
    }
}

fn changed(project: &CompiledProject, op: &Op) -> CompiledProject {
    match op {
        Op::Put(def) => project.with_flag(def.clone()),
        Op::Remove(id) => project.without_flag(*id),
        Op::GroupTypes(m) => project.with_group_types(m),
        Op::Cohorts(c) => project.with_cohorts(c),
    }
}

type Shape = (i64, String, Option<String>, bool);

fn shape(project: &CompiledProject) -> Vec<Shape> {
    project
        .flags()
        .iter()
        .map(|f| {
            (
                f.id(),
                f.key().to_owned(),
                f.defect().map(ToString::to_string),
                f.has_missing_dependency(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_changes_equal_a_full_compile(
        initial in prop::collection::vec(flag_def(), 0..6),
        ops in prop::collection::vec(op(), 1..8),
        distinct_id in "[a-z0-9]{0,8}",
        person in properties(),
        group in json_leaf(),
    ) {
        let mut flags: Vec<FlagDefinition> = initial
            .into_iter()
            .map(|d| definition(d, None, false))
            .collect();
        flags.sort_by_key(|d| d.id);
        let mut defs = Definitions {
            flags,
            group_type_mapping: BTreeMap::from([("0".to_owned(), "company".to_owned())]),
            ..Definitions::default()
        };
        let mut project = CompiledProject::compile(&defs);
        let groups: Map<String, Value> = [("company".to_owned(), group)].into_iter().collect();
        let mut ctx = Context::new(&distinct_id, now());
        ctx.person_properties = Some(&person);
        ctx.groups = Some(&groups);
        for op in &ops {
            apply(&mut defs, op);
            project = changed(&project, op);
            let full = CompiledProject::compile(&defs);
            prop_assert_eq!(shape(&project), shape(&full), "after {:?}", op);
            prop_assert_eq!(project.requirements(), full.requirements());
            prop_assert_eq!(project.limits_runtime(), full.limits_runtime(), "after {:?}", op);
            prop_assert_eq!(render(&project, &ctx), render(&full, &ctx));
            let live: Vec<&FlagDefinition> = defs.flags.iter().filter(|d| !d.deleted).collect();
            prop_assert_eq!(project.definitions().collect::<Vec<_>>(), live);
        }
    }
}
