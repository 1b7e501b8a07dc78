//! Definition limits (`vexil_engine::limits`): refused by the write rules with the limit named,
//! and, when definitions arrive over a limit anyway, compiled into flags that fail alone, with
//! no input able to overflow a stack.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};
use vexil_engine::limits::{
    MAX_COHORTS, MAX_COHORT_CRITERIA, MAX_COHORT_DEPTH, MAX_CONDITIONS, MAX_FLAGS, MAX_GROUP_DEPTH,
    MAX_LIST_VALUES, MAX_REGEX_LENGTH, MAX_VARIANTS,
};
use vexil_engine::rules::{check_cohort, check_flag, FlagWrite, Stored, StoredCohort};
use vexil_engine::{evaluate, Context, FlagDefinition};

use crate::support::{now, project};

fn in_cohort(id: usize) -> Value {
    json!({"key": "id", "type": "cohort", "value": id})
}

fn cohort_of(criteria: Vec<Value>) -> Value {
    json!({"properties": {"type": "AND", "values": criteria}})
}

/// Cohort `i` references cohort `i + 1`; the last one holds `email = a@x.com`.
fn chain(len: usize) -> serde_json::Map<String, Value> {
    (0..len)
        .map(|i| {
            let criterion = if i + 1 == len {
                json!({"key": "email", "value": "a@x.com"})
            } else {
                in_cohort(i + 1)
            };
            (
                i.to_string(),
                cohort_of(vec![criterion])
                    .pointer("/properties")
                    .unwrap()
                    .clone(),
            )
        })
        .collect()
}

fn flag_on(key: &str, properties: Value) -> Value {
    json!({"id": 1, "key": key, "active": true,
           "filters": {"groups": [{"properties": properties, "rollout_percentage": 100}]}})
}

/// Compiles and evaluates `defs` for a person with `email = a@x.com` on a thread with a small
/// stack, returning each flag's `(value, failed)`.
fn evaluate_small_stack(defs: Value) -> Vec<(String, Value, bool)> {
    std::thread::Builder::new()
        // Room for cohort evaluation MAX_COHORT_DEPTH deep in a debug build; a recursion through
        // a long chain would overflow it (and abort the test binary).
        .stack_size(1 << 20)
        .spawn(move || {
            let p = project(defs);
            let props = json!({"email": "a@x.com"});
            let mut ctx = Context::new("u", now());
            ctx.person_properties = props.as_object();
            let eval = evaluate(&p, &ctx);
            p.flags()
                .iter()
                .map(|f| {
                    let r = eval.get(f.key()).unwrap();
                    (f.key().to_owned(), r.value.to_json(), r.failed())
                })
                .collect()
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_100_000_deep_cohort_chain_fails_its_flags_alone() {
    let n = 100_000;
    let defs = json!({
        "flags": [
            flag_on("deep", json!([in_cohort(0)])),
            flag_on("at-limit", json!([in_cohort(n - MAX_COHORT_DEPTH)])),
            flag_on("over-limit", json!([in_cohort(n - MAX_COHORT_DEPTH - 1)])),
            flag_on("plain", json!([])),
        ],
        "cohorts": chain(n),
    });
    let got = evaluate_small_stack(defs);
    let expected = [
        ("deep", json!(false), true),
        ("at-limit", json!(true), false),
        ("over-limit", json!(false), true),
        ("plain", json!(true), false),
    ];
    for ((key, value, failed), (want_key, want_value, want_failed)) in got.iter().zip(expected) {
        assert_eq!(
            (key.as_str(), value, *failed),
            (want_key, &want_value, want_failed)
        );
    }
}

#[test]
fn over_limit_definitions_fail_alone_with_the_limit_named() {
    let long = "a".repeat(MAX_REGEX_LENGTH + 1);
    let list: Vec<usize> = (0..=MAX_LIST_VALUES).collect();
    let variants: Vec<Value> = (0..=MAX_VARIANTS)
        .map(
            |i| json!({"key": format!("v{i}"), "rollout_percentage": if i == 0 { 100 } else { 0 }}),
        )
        .collect();
    let regex_cohort = cohort_of(vec![
        json!({"key": "email", "operator": "regex", "value": r"\w{50}"}),
    ]);
    let defs = json!({
        "flags": [
            flag_on("long-regex", json!([{"key": "email", "operator": "regex", "value": long}])),
            flag_on("large-regex", json!([{"key": "email", "operator": "regex", "value": r"\w{50}"}])),
            flag_on("small-regex", json!([{"key": "email", "operator": "regex", "value": r"^\w{5}@"}])),
            flag_on("long-list", json!([{"key": "email", "operator": "exact", "value": list}])),
            {"id": 2, "key": "conditions", "active": true,
             "filters": {"groups": vec![json!({"rollout_percentage": 100}); MAX_CONDITIONS + 1]}},
            {"id": 3, "key": "variants", "active": true,
             "filters": {"groups": [{"rollout_percentage": 100}], "multivariate": {"variants": variants}}},
            flag_on("via-cohort", json!([in_cohort(2)])),
            flag_on("plain", json!([])),
        ],
        // Cohort 2 is fine itself but references cohort 1, whose regex is too large.
        "cohorts": {"1": regex_cohort["properties"], "2": cohort_of(vec![in_cohort(1)])["properties"]},
    });
    let p = project(defs.clone());
    let defect = |key: &str| p.flag(key).unwrap().defect().cloned();
    let cases = [
        (
            "long-regex",
            "filters.groups[0].properties[0].value",
            "MAX_REGEX_LENGTH",
        ),
        (
            "large-regex",
            "filters.groups[0].properties[0].value",
            "REGEX_SIZE_LIMIT",
        ),
        (
            "long-list",
            "filters.groups[0].properties[0].value",
            "MAX_LIST_VALUES",
        ),
        ("conditions", "filters.groups", "MAX_CONDITIONS"),
        ("variants", "filters.multivariate.variants", "MAX_VARIANTS"),
        (
            "via-cohort",
            "filters.groups[0].properties[0].value",
            "REGEX_SIZE_LIMIT",
        ),
    ];
    for (key, path, limit) in cases {
        let e = defect(key).unwrap_or_else(|| panic!("{key} compiled"));
        assert_eq!(e.path, path, "{key}");
        assert!(e.message.contains(limit), "{key}: {}", e.message);
    }
    assert_eq!(defect("small-regex"), None);
    assert_eq!(defect("plain"), None);

    let got = evaluate_small_stack(defs);
    let failed: Vec<&str> = got.iter().filter(|g| g.2).map(|g| g.0.as_str()).collect();
    assert_eq!(
        failed,
        [
            "long-regex",
            "large-regex",
            "long-list",
            "conditions",
            "variants",
            "via-cohort"
        ]
    );
}

#[test]
fn a_cohort_reaching_too_many_criteria_fails_its_flags() {
    // Cohort 0 references 1 and 2, which share 3: 3 counts once. Cohort 3 alone holds the
    // rest of the budget, so 0 reaches exactly MAX_COHORT_CRITERIA; one more criterion in 1
    // puts it over.
    let shared: Vec<Value> = (0..MAX_COHORT_CRITERIA - 4)
        .map(|i| json!({"key": format!("p{i}"), "operator": "is_not_set"}))
        .collect();
    let defs = |extra: bool| {
        let mut one = vec![in_cohort(3)];
        if extra {
            one.push(json!({"key": "email", "operator": "is_set"}));
        }
        json!({
            "flags": [flag_on("wide", json!([in_cohort(0)])), flag_on("shared", json!([in_cohort(3)]))],
            "cohorts": {
                "0": cohort_of(vec![in_cohort(1), in_cohort(2)])["properties"],
                "1": cohort_of(one)["properties"],
                "2": cohort_of(vec![in_cohort(3)])["properties"],
                "3": cohort_of(shared.clone())["properties"],
            },
        })
    };
    let at = project(defs(false));
    assert_eq!(at.flag("wide").unwrap().defect(), None);
    let over = project(defs(true));
    let e = over.flag("wide").unwrap().defect().unwrap();
    assert!(e.message.contains("MAX_COHORT_CRITERIA"), "{}", e.message);
    assert_eq!(over.flag("shared").unwrap().defect(), None);
}

// Write rules.

fn stored<'a>(id: i64, name: &'a str, filters: &'a Value) -> StoredCohort<'a> {
    StoredCohort {
        id,
        name,
        filters,
        is_static: false,
    }
}

#[test]
fn a_cohort_chain_is_refused_at_the_depth_limit() {
    // Stored: cohort 1 … MAX_COHORT_DEPTH - 1, each referencing the next; the last one is a leaf.
    let leaf = json!({"properties": {"type": "AND", "values": [{"key": "e", "value": "x"}]}});
    let filters: Vec<Value> = (1..MAX_COHORT_DEPTH)
        .map(|i| {
            if i + 1 == MAX_COHORT_DEPTH {
                leaf.clone()
            } else {
                cohort_of(vec![in_cohort(i + 1)])
            }
        })
        .collect();
    let cohorts: Vec<StoredCohort<'_>> = filters
        .iter()
        .enumerate()
        .map(|(i, f)| stored(i as i64 + 1, "link", f))
        .collect();
    // A new cohort on top of the chain is MAX_COHORT_DEPTH deep: accepted. One more level is not.
    assert_eq!(
        check_cohort(&cohort_of(vec![in_cohort(1)]), None, &cohorts),
        Ok(())
    );
    let mut longer = cohorts.clone();
    let top = cohort_of(vec![in_cohort(1)]);
    longer.push(stored(100, "top", &top));
    let v = check_cohort(&cohort_of(vec![in_cohort(100)]), None, &longer).unwrap_err();
    assert_eq!(
        (v.code.as_str(), v.attr.as_str()),
        ("invalid_input", "filters")
    );
    let depth = MAX_COHORT_DEPTH + 1;
    assert_eq!(
        v.detail,
        format!("Limit exceeded: cohort references {depth} levels deep; cohorts nest at most {MAX_COHORT_DEPTH} levels (MAX_COHORT_DEPTH).")
    );
    // Deepening the bottom of the chain refuses the write naming the cohort that grows too deep.
    let bottom = (MAX_COHORT_DEPTH - 1) as i64;
    longer.push(stored(300, "leaf", &leaf));
    let v = check_cohort(&cohort_of(vec![in_cohort(300)]), Some(bottom), &longer).unwrap_err();
    assert!(
        v.detail
            .contains("cohort top (id 100), which references this one"),
        "{}",
        v.detail
    );
    // A static cohort at the bottom is a criterion, not a level.
    let empty = json!({});
    let mut with_static = cohorts.clone();
    with_static.push(StoredCohort {
        id: 200,
        name: "static",
        filters: &empty,
        is_static: true,
    });
    assert_eq!(
        check_cohort(&cohort_of(vec![in_cohort(200)]), Some(bottom), &with_static),
        Ok(())
    );
}

#[test]
fn criteria_counts_and_project_counts_are_refused_naming_the_limit() {
    let many = |n: usize| {
        cohort_of(
            (0..n)
                .map(|i| json!({"key": format!("p{i}"), "operator": "is_set"}))
                .collect(),
        )
    };
    assert_eq!(check_cohort(&many(MAX_COHORT_CRITERIA), None, &[]), Ok(()));
    let v = check_cohort(&many(MAX_COHORT_CRITERIA + 1), None, &[]).unwrap_err();
    assert!(v.detail.contains("MAX_COHORT_CRITERIA"), "{}", v.detail);

    let empty = json!({});
    let full: Vec<StoredCohort<'_>> = (0..MAX_COHORTS as i64)
        .map(|i| stored(i, "c", &empty))
        .collect();
    let v = check_cohort(&empty, None, &full).unwrap_err();
    assert_eq!(v.attr, "");
    assert!(
        v.detail
            .contains(&format!("the limit is {MAX_COHORTS} (MAX_COHORTS)")),
        "{}",
        v.detail
    );
    assert_eq!(
        check_cohort(&empty, Some(1), &full),
        Ok(()),
        "updates stay possible"
    );

    let flag = |id: i64| -> FlagDefinition {
        serde_json::from_value(json!({"id": id, "key": format!("f{id}"), "filters": {"groups": [{"rollout_percentage": 100}]}})).unwrap()
    };
    let flags: Vec<Arc<FlagDefinition>> = (1..=MAX_FLAGS as i64)
        .map(|id| Arc::new(flag(id)))
        .collect();
    let no_cohorts = HashSet::new();
    let at_limit = Stored {
        flags: &flags,
        cohorts: &no_cohorts,
    };
    let v = check_flag(&FlagWrite::create(&flag(0)), &at_limit).unwrap_err();
    assert_eq!(v.attr, "");
    assert!(
        v.detail
            .contains(&format!("the limit is {MAX_FLAGS} (MAX_FLAGS)")),
        "{}",
        v.detail
    );
    let update = FlagWrite {
        flag: &flags[0],
        before: Some(&*flags[0]),
        filters_sent: true,
    };
    assert_eq!(
        check_flag(&update, &at_limit),
        Ok(()),
        "updates stay possible"
    );
    let below = Stored {
        flags: &flags[1..],
        cohorts: &no_cohorts,
    };
    assert_eq!(check_flag(&FlagWrite::create(&flag(0)), &below), Ok(()));
}

#[test]
fn regexes_lists_conditions_and_variants_are_refused_naming_the_limit() {
    let flags = [];
    let cohorts = HashSet::new();
    let stored = Stored {
        flags: &flags,
        cohorts: &cohorts,
    };
    let check = |filters: Value| {
        let f: FlagDefinition =
            serde_json::from_value(json!({"id": 0, "key": "x", "filters": filters})).unwrap();
        check_flag(&FlagWrite::create(&f), &stored).map_err(|v| (v.attr, v.detail))
    };
    let property = |p: Value| json!({"groups": [{"properties": [p]}]});
    let regex =
        |pattern: String| property(json!({"key": "e", "operator": "regex", "value": pattern}));
    let value = "filters.groups[0].properties[0].value".to_owned();
    let refused = |filters: Value, attr: &str, limit: &str| {
        let (got_attr, detail) = check(filters).unwrap_err();
        assert_eq!(got_attr, attr);
        assert!(
            detail.starts_with("Limit exceeded: ") && detail.contains(limit),
            "{detail}"
        );
    };

    assert_eq!(check(regex("a".repeat(MAX_REGEX_LENGTH))), Ok(()));
    refused(
        regex("a".repeat(MAX_REGEX_LENGTH + 1)),
        &value,
        "limit is 1000 (MAX_REGEX_LENGTH)",
    );
    // Characters, not bytes.
    assert_eq!(check(regex("é".repeat(MAX_REGEX_LENGTH))), Ok(()));
    assert_eq!(check(regex(r"\w{20}".into())), Ok(()));
    refused(
        regex(r"\w{50}".into()),
        &value,
        "1048576 bytes, the limit for one regex (REGEX_SIZE_LIMIT)",
    );
    // Inside a fancy-regex construct too (the part handed to the `regex` crate).
    refused(regex(r"(?=x)\w{999}".into()), &value, "REGEX_SIZE_LIMIT");

    let list = |n: usize| property(json!({"key": "e", "value": (0..n).collect::<Vec<_>>()}));
    assert_eq!(check(list(MAX_LIST_VALUES)), Ok(()));
    refused(
        list(MAX_LIST_VALUES + 1),
        &value,
        "limit is 1000 (MAX_LIST_VALUES)",
    );

    let conditions = |n: usize| json!({"groups": vec![json!({"rollout_percentage": 100}); n]});
    assert_eq!(check(conditions(MAX_CONDITIONS)), Ok(()));
    refused(
        conditions(MAX_CONDITIONS + 1),
        "filters.groups",
        "(MAX_CONDITIONS)",
    );

    let variants = |n: usize| {
        let v: Vec<Value> = (0..n)
            .map(|i| json!({"key": format!("v{i}"), "rollout_percentage": if i == 0 { 100 } else { 0 }}))
            .collect();
        json!({"groups": [{}], "multivariate": {"variants": v}})
    };
    assert_eq!(check(variants(MAX_VARIANTS)), Ok(()));
    refused(
        variants(MAX_VARIANTS + 1),
        "filters.multivariate.variants",
        "(MAX_VARIANTS)",
    );
}

#[test]
fn the_deepest_evaluation_the_limits_allow_fits_the_small_stack() {
    // MAX_COHORT_DEPTH cohorts, each nesting its criterion as deep as MAX_GROUP_DEPTH allows:
    // the most recursion a definition within the limits can cause. A guard for raising them.
    let nest = |inner: Value| {
        let mut g = json!({"type": "AND", "values": [inner]});
        for _ in 0..MAX_GROUP_DEPTH - 2 {
            g = json!({"type": "AND", "values": [g]});
        }
        g
    };
    let cohorts: serde_json::Map<String, Value> = (0..MAX_COHORT_DEPTH)
        .map(|i| {
            let c = if i + 1 == MAX_COHORT_DEPTH {
                json!({"key": "email", "value": "a@x.com"})
            } else {
                in_cohort(i + 1)
            };
            (i.to_string(), nest(c))
        })
        .collect();
    let defs = json!({"flags": [flag_on("worst", json!([in_cohort(0)]))], "cohorts": cohorts});
    assert_eq!(
        evaluate_small_stack(defs),
        [("worst".to_owned(), json!(true), false)]
    );
}
