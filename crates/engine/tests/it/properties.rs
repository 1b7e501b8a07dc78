//! Property tests: arbitrary definitions and contexts never panic, evaluation is deterministic,
//! rollouts are monotonic, and whatever the write rules accept compiles without a defect.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use vexil_engine::rules::{check_cohort, check_flag, FlagWrite, Stored};
use vexil_engine::{evaluate, CompiledProject, Context, Definitions, FlagDefinition};

use crate::support::{now, project};

const OPERATORS: &[&str] = &[
    "exact",
    "is_not",
    "icontains",
    "not_icontains",
    "starts_with",
    "not_starts_with",
    "ends_with",
    "not_ends_with",
    "icontains_multi",
    "not_icontains_multi",
    "regex",
    "not_regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "not_between",
    "is_set",
    "is_not_set",
    "is_date_before",
    "is_date_after",
    "is_date_exact",
    "semver_eq",
    "semver_neq",
    "semver_gt",
    "semver_gte",
    "semver_lt",
    "semver_lte",
    "semver_tilde",
    "semver_caret",
    "semver_wildcard",
    "in",
    "not_in",
    "flag_evaluates_to",
    "bogus",
];

pub(crate) fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e9f64..1e9).prop_map(|f| json!(f)),
        "[a-z0-9.*^$()+?\\[\\]|@:-]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("true"),
            Just("FALSE"),
            Just("1.2.3"),
            Just("-7d"),
            Just("2024-01-01"),
            Just("v1.*")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn filter() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["person", "group", "cohort", "flag", "behavioral", "weird"]),
        prop::sample::select(OPERATORS.to_vec()),
        prop::sample::select(vec!["email", "plan", "age", "1", "2", "3", "id", "$initial_os", "distinct_id"]),
        json_value(),
        prop::option::of(0i64..3),
    )
        .prop_map(|(kind, op, key, value, gti)| {
            json!({"type": kind, "operator": op, "key": key, "value": value, "group_type_index": gti})
        })
}

pub(crate) fn condition() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(filter(), 0..4),
        prop::option::of(-10.0f64..120.0),
        prop::option::of(prop::sample::select(vec!["a", "b", "zz"])),
        prop::option::of(prop::option::of(0i64..3)),
    )
        .prop_map(|(props, rollout, variant, agg)| {
            let mut c =
                json!({"properties": props, "rollout_percentage": rollout, "variant": variant});
            if let Some(agg) = agg {
                c["aggregation_group_type_index"] = json!(agg);
            }
            c
        })
}

pub(crate) fn flag_def() -> impl Strategy<Value = Value> {
    (
        0i64..6,
        prop::collection::vec(condition(), 0..3),
        prop::option::of(prop::collection::vec((prop::sample::select(vec!["a", "b", "c"]), 0.0f64..80.0), 0..4)),
        prop::option::of(0i64..3),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0.0f64..100.0),
        json_value(),
    )
        .prop_map(|(id, groups, variants, agg, active, continuity, holdout, junk)| {
            let mut filters = json!({"groups": groups, "aggregation_group_type_index": agg, "payloads": {"a": junk}});
            if let Some(vs) = variants {
                let vs: Vec<Value> =
                    vs.into_iter().map(|(k, p)| json!({"key": k, "rollout_percentage": p})).collect();
                filters["multivariate"] = json!({"variants": vs});
            }
            if let Some(h) = holdout {
                filters["holdout"] = json!({"id": id, "exclusion_percentage": h});
            }
            json!({"id": id, "key": format!("flag-{id}"), "active": active,
                   "ensure_experience_continuity": continuity, "filters": filters})
        })
}

/// Flags near the edge of what the write rules accept (person, cohort and flag filters over
/// small id ranges, percentages around 0..=100, variants summing to 100 or not).
fn plausible_flag() -> impl Strategy<Value = Value> {
    let property = (
        prop::sample::select(vec!["person", "person", "cohort", "flag"]),
        prop::option::of(prop::sample::select(OPERATORS.to_vec())),
        prop::sample::select(vec!["email", "age", "1", "2", "id", ""]),
        json_leaf(),
    )
        .prop_map(|(kind, op, key, value)| json!({"type": kind, "operator": op, "key": key, "value": value}));
    let group = (
        prop::collection::vec(property, 0..3),
        prop::option::of(0.0f64..=100.0),
        prop::option::of(prop::sample::select(vec!["a", "b", "zz"])),
    )
        .prop_map(|(props, rollout, variant)| {
            json!({"properties": props, "rollout_percentage": rollout, "variant": variant})
        });
    (
        1i64..6,
        prop::collection::vec(group, 1..3),
        prop::option::of(prop::sample::select(vec![0.0, 30.0, 50.0, 100.0, 120.0])),
        any::<bool>(),
    )
        .prop_map(|(id, mut groups, split, active)| {
            let mut filters = json!({});
            match split {
                Some(a) => {
                    filters["multivariate"] = json!({"variants": [
                        {"key": "a", "rollout_percentage": a},
                        {"key": "b", "rollout_percentage": 100.0 - a}]});
                }
                None => groups.iter_mut().for_each(|g| g["variant"] = Value::Null),
            }
            filters["groups"] = json!(groups);
            json!({"id": id, "key": format!("flag-{id}"), "active": active, "filters": filters})
        })
}

fn definitions() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(flag_def(), 0..6),
        prop::collection::btree_map("[0-4]", prop_oneof![Just(json!({"type": "OR", "values": []})), condition().prop_map(|c| json!({"type": "AND", "values": [{"type": "OR", "values": c["properties"].clone()}]}))], 0..3),
    )
        .prop_map(|(flags, cohorts)| {
            json!({"flags": flags, "cohorts": cohorts, "group_type_mapping": {"0": "company", "1": "team"}})
        })
}

pub(crate) fn properties() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        prop::sample::select(vec![
            "email",
            "plan",
            "age",
            "os",
            "distinct_id",
            "$device_id",
        ]),
        json_value(),
        0..5,
    )
    .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

pub(crate) fn render(
    project: &CompiledProject,
    ctx: &Context<'_>,
) -> Vec<(String, Value, String, Option<usize>)> {
    evaluate(project, ctx)
        .flags
        .iter()
        .map(|r| {
            (
                r.key().to_owned(),
                r.value.to_json(),
                r.reason.code.as_str().to_owned(),
                r.reason.condition_index,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn arbitrary_definitions_and_contexts_never_panic_and_are_deterministic(
        defs in definitions(),
        distinct_id in ".{0,8}",
        person in properties(),
        groups in prop::collection::btree_map(prop::sample::select(vec!["company", "team", "x"]), json_leaf(), 0..3),
    ) {
        let parsed: Definitions = serde_json::from_value(defs).unwrap();
        let project = CompiledProject::compile(&parsed);
        let groups: Map<String, Value> = groups.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut ctx = Context::new(&distinct_id, now());
        ctx.person_properties = Some(&person);
        ctx.groups = Some(&groups);
        let first = render(&project, &ctx);
        let again = CompiledProject::compile(&parsed);
        prop_assert_eq!(first, render(&again, &ctx));
    }

    #[test]
    fn arbitrary_json_definitions_never_panic(raw in json_value()) {
        if let Ok(defs) = serde_json::from_value::<Definitions>(json!({"flags": [{"key": "k", "filters": raw}]})) {
            let project = CompiledProject::compile(&defs);
            let _ = evaluate(&project, &Context::new("u", now()));
        }
    }

    #[test]
    fn accepted_writes_compile_without_defects(
        candidate in plausible_flag(),
        others in prop::collection::vec(plausible_flag(), 0..4),
        cohorts in prop::collection::hash_set(0i64..4, 0..3),
        raw in json_value(),
    ) {
        let candidate: FlagDefinition = serde_json::from_value(candidate).unwrap();
        let others: Vec<FlagDefinition> = others
            .into_iter()
            .map(|f| serde_json::from_value(f).unwrap())
            .filter(|f: &FlagDefinition| f.id != candidate.id)
            .collect();
        let shared: Vec<std::sync::Arc<FlagDefinition>> =
            others.iter().cloned().map(std::sync::Arc::new).collect();
        let stored = Stored { flags: &shared, cohorts: &cohorts };
        let accepted = check_flag(&FlagWrite::create(&candidate), &stored).is_ok();
        let mut defs = Definitions { flags: others.clone(), ..Definitions::default() };
        defs.flags.push(candidate.clone());
        let project = CompiledProject::compile(&defs);
        if accepted {
            let compiled = project.flag(&candidate.key);
            prop_assert!(compiled.is_none_or(|f| f.defect().is_none()), "{:?}", compiled.and_then(|f| f.defect()));
        }
        // Arbitrary JSON as filters or as a cohort never panics the rules.
        let junk = FlagDefinition { filters: raw.clone(), ..candidate };
        let _ = check_flag(&FlagWrite::create(&junk), &stored);
        let _ = check_cohort(&json!({"properties": raw}), Some(1), &[]);
    }

    #[test]
    fn rollout_is_monotonic(distinct_id in ".{0,24}", p in 0.0f64..100.0, extra in 0.0f64..100.0) {
        let q = (p + extra).min(100.0);
        let at = |pct: f64| {
            let project = project(json!({"flags": [{"id": 1, "key": "r", "active": true,
                "filters": {"groups": [{"rollout_percentage": pct}]}}]}));
            evaluate(&project, &Context::new(&distinct_id, now())).flags[0].value.is_enabled()
        };
        if at(p) {
            prop_assert!(at(q), "in at {}% but out at {}%", p, q);
        }
    }
}
