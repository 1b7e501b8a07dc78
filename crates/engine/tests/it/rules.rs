//! Write rules (`vexil_engine::rules`): one table per kind of definition, each row a definition
//! and the field its violation must name, through one `check` function each.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};
use vexil_engine::rules::{
    check_cohort, check_flag, dependents, FlagWrite, Stored, StoredCohort, Violation,
};
use vexil_engine::FlagDefinition;

fn flag(id: i64, key: &str, active: bool, filters: Value) -> FlagDefinition {
    serde_json::from_value(json!({"id": id, "key": key, "active": active, "filters": filters}))
        .unwrap()
}

fn depends_on(id: i64) -> Value {
    with_property(
        json!({"key": id.to_string(), "type": "flag", "operator": "flag_evaluates_to", "value": true}),
    )
}

fn with_property(property: Value) -> Value {
    json!({"groups": [{"properties": [property], "rollout_percentage": 100}]})
}

fn everyone() -> Value {
    json!({"groups": [{"rollout_percentage": 100}]})
}

/// The project the flag table is checked against: `dep` (1, active), `off` (2, disabled), `b`
/// (3, depends on `dep`), and cohort 7.
fn stored_flags() -> Vec<Arc<FlagDefinition>> {
    vec![
        Arc::new(flag(1, "dep", true, everyone())),
        Arc::new(flag(2, "off", false, everyone())),
        Arc::new(flag(3, "b", true, depends_on(1))),
    ]
}

/// Checks writing `filters` to flag `id` (0: create) and returns the violation's code and attr.
fn check(id: i64, filters: Value) -> Result<(), (String, String)> {
    let flags = stored_flags();
    let cohorts = HashSet::from([7]);
    let candidate = flag(id, "x", true, filters);
    let before = flags.iter().find(|f| f.id == id).map(|f| &**f);
    let write = FlagWrite {
        flag: &candidate,
        before,
        filters_sent: true,
    };
    let stored = Stored {
        flags: &flags,
        cohorts: &cohorts,
    };
    check_flag(&write, &stored).map_err(|v: Violation| (v.code.as_str().to_owned(), v.attr))
}

#[test]
fn flag_filters_violations_name_the_field() {
    let p = |property: Value| with_property(property);
    let mv = |variants: Value| json!({"groups": [{"rollout_percentage": 100}], "multivariate": {"variants": variants}});
    let bool_payload =
        |payloads: Value| json!({"groups": [{"rollout_percentage": 100}], "payloads": payloads});
    let person = |op: &str, value: Value| {
        p(json!({"key": "k", "type": "person", "operator": op, "value": value}))
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        // Condition sets.
        (json!({}), "invalid_input", "filters"),
        (json!({"groups": []}), "invalid_input", "filters"),
        (json!({"groups": null}), "invalid_input", "filters"),
        (json!("nope"), "invalid_input", "filters"),
        (json!({"groups": 5}), "invalid_input", "filters.groups"),
        (json!({"groups": [5]}), "invalid_input", "filters.groups[0]"),
        (
            json!({"groups": [{"properties": "x"}]}),
            "invalid_input",
            "filters.groups[0].properties",
        ),
        (
            json!({"groups": [{"properties": [5]}]}),
            "invalid_input",
            "filters.groups[0].properties[0]",
        ),
        // Rollout percentages.
        (
            json!({"groups": [{"rollout_percentage": 120}]}),
            "invalid_input",
            "filters.groups[0].rollout_percentage",
        ),
        (
            json!({"groups": [{}, {"rollout_percentage": -1}]}),
            "invalid_input",
            "filters.groups[1].rollout_percentage",
        ),
        (
            json!({"groups": [{"rollout_percentage": "50"}]}),
            "invalid_input",
            "filters.groups[0].rollout_percentage",
        ),
        // Group type indices and property types.
        (
            json!({"groups": [{}], "aggregation_group_type_index": 5}),
            "invalid_input",
            "filters.aggregation_group_type_index",
        ),
        (
            json!({"groups": [{}], "aggregation_group_type_index": "0"}),
            "invalid_input",
            "filters.aggregation_group_type_index",
        ),
        (
            json!({"groups": [{"aggregation_group_type_index": -1}]}),
            "invalid_input",
            "filters.groups[0].aggregation_group_type_index",
        ),
        (
            p(json!({"key": "a", "type": "event"})),
            "invalid_input",
            "filters.groups[0].properties[0].type",
        ),
        (
            p(json!({"key": "a", "type": 5})),
            "invalid_input",
            "filters.groups[0].properties[0].type",
        ),
        (
            p(json!({"key": "a", "type": "group", "group_type_index": 0, "value": "b"})),
            "invalid_input",
            "filters.groups[0].properties[0].type",
        ),
        (
            json!({"aggregation_group_type_index": 0, "groups": [{"properties": [{"key": "a", "type": "person", "value": "b"}]}]}),
            "invalid_input",
            "filters.groups[0].properties[0].type",
        ),
        (
            json!({"aggregation_group_type_index": 0, "groups": [{"properties": [{"key": "a", "type": "group", "group_type_index": 1, "value": "b"}]}]}),
            "invalid_input",
            "filters.groups[0].properties[0].type",
        ),
        // Flag dependencies.
        (
            p(
                json!({"key": "dep", "type": "flag", "operator": "flag_evaluates_to", "value": true}),
            ),
            "invalid_input",
            "filters.groups[0].properties[0].key",
        ),
        (
            depends_on(999_999),
            "invalid_input",
            "filters.groups[0].properties[0].key",
        ),
        (
            depends_on(2),
            "invalid_input",
            "filters.groups[0].properties[0].key",
        ),
        (
            p(json!({"key": "1", "type": "flag", "operator": "exact", "value": true})),
            "invalid_input",
            "filters.groups[0].properties[0].operator",
        ),
        (
            p(json!({"key": "1", "type": "flag", "operator": "flag_evaluates_to", "value": 5})),
            "invalid_input",
            "filters.groups[0].properties[0].value",
        ),
        // Cohort references.
        (
            p(json!({"key": "id", "type": "cohort", "value": 8})),
            "cohort_does_not_exist",
            "filters.groups[0].properties[0].value",
        ),
        (
            p(json!({"key": "id", "type": "cohort", "value": "abc"})),
            "invalid_input",
            "filters.groups[0].properties[0].value",
        ),
        (
            p(json!({"key": "id", "type": "cohort", "operator": "exact", "value": 7})),
            "invalid_input",
            "filters.groups[0].properties[0].operator",
        ),
        // Variants.
        (
            mv(
                json!([{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 40}]),
            ),
            "invalid_input",
            "filters.multivariate.variants",
        ),
        (
            mv(json!([{"rollout_percentage": 100}])),
            "invalid_input",
            "filters.multivariate.variants[0].key",
        ),
        (
            mv(json!([{"key": "", "rollout_percentage": 100}])),
            "invalid_input",
            "filters.multivariate.variants[0].key",
        ),
        (
            mv(
                json!([{"key": "a", "rollout_percentage": 50}, {"key": "a", "rollout_percentage": 50}]),
            ),
            "invalid_input",
            "filters.multivariate.variants[1].key",
        ),
        (
            mv(json!([{"key": "a"}])),
            "invalid_input",
            "filters.multivariate.variants[0].rollout_percentage",
        ),
        (
            mv(json!([{"key": "a", "rollout_percentage": 120}])),
            "invalid_input",
            "filters.multivariate.variants[0].rollout_percentage",
        ),
        (
            mv(json!(5)),
            "invalid_input",
            "filters.multivariate.variants",
        ),
        (
            json!({"groups": [{}], "multivariate": 5}),
            "invalid_input",
            "filters.multivariate",
        ),
        (
            json!({"groups": [{"variant": "c"}], "multivariate": {"variants": [{"key": "a", "rollout_percentage": 100}]}}),
            "invalid_input",
            "filters.groups[0].variant",
        ),
        (
            json!({"groups": [{"variant": 5}], "multivariate": {"variants": [{"key": "a", "rollout_percentage": 100}]}}),
            "invalid_input",
            "filters.groups[0].variant",
        ),
        (
            json!({"groups": [{"variant": "a"}]}),
            "invalid_input",
            "filters.groups[0].variant",
        ),
        // Payloads.
        (
            bool_payload(json!({"control": "1"})),
            "invalid_input",
            "filters.payloads",
        ),
        (
            bool_payload(json!({"true": "{not json"})),
            "invalid_input",
            "filters.payloads",
        ),
        (
            bool_payload(json!({"true": 5})),
            "invalid_input",
            "filters.payloads",
        ),
        (bool_payload(json!(5)), "invalid_input", "filters.payloads"),
        (
            json!({"groups": [{}], "multivariate": {"variants": [{"key": "a", "rollout_percentage": 100}]}, "payloads": {"true": "1"}}),
            "invalid_input",
            "filters.payloads",
        ),
        // Person and group properties: keys, operators, value types.
        (
            p(json!({"type": "person", "value": "b"})),
            "invalid_input",
            "filters.groups[0].properties[0].key",
        ),
        (
            p(json!({"key": "", "value": "b"})),
            "invalid_input",
            "filters.groups[0].properties[0].key",
        ),
        (
            person("frobnicates", json!("a")),
            "invalid_input",
            "filters.groups[0].properties[0].operator",
        ),
        (
            p(json!({"key": "k", "operator": 5, "value": "a"})),
            "invalid_input",
            "filters.groups[0].properties[0].operator",
        ),
        (
            person("in", json!(["a"])),
            "invalid_input",
            "filters.groups[0].properties[0].operator",
        ),
        (
            person("flag_evaluates_to", json!(true)),
            "invalid_input",
            "filters.groups[0].properties[0].operator",
        ),
        (
            person("gt", json!(5)),
            "invalid_value",
            "filters.groups[0].properties[0].value",
        ),
        (
            person("icontains", Value::Null),
            "invalid_value",
            "filters.groups[0].properties[0].value",
        ),
        (
            person("regex", json!("(unclosed")),
            "invalid_regex",
            "filters.groups[0].properties[0].value",
        ),
        (
            person("is_date_before", json!("not a date")),
            "invalid_date",
            "filters.groups[0].properties[0].value",
        ),
        (
            person("is_date_after", json!(20240101)),
            "invalid_date",
            "filters.groups[0].properties[0].value",
        ),
        (
            person(
                "exact",
                json!((0..1001).map(|i| i.to_string()).collect::<Vec<_>>()),
            ),
            "invalid_input",
            "filters.groups[0].properties[0].value",
        ),
        // What only compiling the definition finds.
        (
            json!({"groups": [{}], "version": 2}),
            "invalid_input",
            "filters.version",
        ),
        (
            json!({"groups": [{}], "super_groups": 5}),
            "invalid_input",
            "filters.super_groups",
        ),
        (
            json!({"groups": [{}], "super_groups": [{"properties": [{"key": "k", "operator": "nope", "value": 1}]}]}),
            "invalid_input",
            "filters.super_groups[0].properties[0].operator",
        ),
    ];
    for (filters, code, attr) in cases {
        assert_eq!(
            check(0, filters.clone()),
            Err((code.to_owned(), attr.to_owned())),
            "{filters}"
        );
    }
}

#[test]
fn valid_flag_filters_pass() {
    for filters in [
        everyone(),
        json!({"groups": [{"properties": [
            {"key": "id", "type": "cohort", "value": 7},
            {"key": "id", "type": "cohort", "operator": "not_in", "value": "7"},
            {"key": "1", "type": "flag", "operator": "flag_evaluates_to", "value": true},
            {"key": "d", "type": "person", "operator": "is_date_after", "value": "-30d"},
            {"key": "d", "operator": "is_date_before", "value": "2024-01-01"},
            {"key": "n", "type": "person", "operator": "gt", "value": "5"},
            {"key": "e", "type": "person", "operator": "regex", "value": "^a.*@x\\.com$"},
            {"key": "e", "operator": "exact", "value": ["a", "b"]}
        ], "rollout_percentage": 100}], "payloads": {"true": "{\"a\":1}"}}),
        json!({"aggregation_group_type_index": 0, "groups": [
            {"properties": [{"key": "plan", "type": "group", "group_type_index": 0, "value": "pro"}]},
            {"aggregation_group_type_index": null, "properties": [{"key": "e", "value": "x"}]}
        ]}),
        json!({"groups": [{"rollout_percentage": 100, "variant": "b"}, {"variant": null}],
            "multivariate": {"variants": [{"key": "a", "rollout_percentage": 33.3}, {"key": "b", "rollout_percentage": 66.7}]},
            "payloads": {"a": "1", "b": "[2]"}, "unknown_field": {"kept": true}}),
    ] {
        assert_eq!(check(0, filters.clone()), Ok(()), "{filters}");
    }
}

#[test]
fn dependency_cycles_and_self_dependencies_are_refused() {
    // dep (1) → b (3) → dep closes a cycle; named by key along the path.
    let flags = stored_flags();
    let cohorts = HashSet::new();
    let stored = Stored {
        flags: &flags,
        cohorts: &cohorts,
    };
    let candidate = flag(1, "dep", true, depends_on(3));
    let write = FlagWrite {
        flag: &candidate,
        before: Some(&flags[0]),
        filters_sent: true,
    };
    let v = check_flag(&write, &stored).unwrap_err();
    assert_eq!(
        (v.attr.as_str(), v.detail.as_str()),
        ("filters", "Circular dependency detected: dep → b → dep")
    );
    assert_eq!(
        check(1, depends_on(1)),
        Err((
            "invalid_input".to_owned(),
            "filters.groups[0].properties[0].key".to_owned()
        ))
    );
    // A new flag (id 0) has no dependents, so no cycle through it.
    assert_eq!(check(0, depends_on(3)), Ok(()));
}

#[test]
fn lifecycle_rules_name_the_dependents() {
    let flags = stored_flags();
    let cohorts = HashSet::new();
    let stored = Stored {
        flags: &flags,
        cohorts: &cohorts,
    };
    let lifecycle = |after: &FlagDefinition, before: &FlagDefinition| {
        let write = FlagWrite {
            flag: after,
            before: Some(before),
            filters_sent: false,
        };
        check_flag(&write, &stored).map_err(|v| (v.attr, v.detail))
    };
    let mut deleted = FlagDefinition::clone(&flags[0]);
    deleted.deleted = true;
    let (attr, detail) = lifecycle(&deleted, &flags[0]).unwrap_err();
    assert_eq!(attr, "deleted");
    assert!(detail.ends_with("depend on it: b."), "{detail}");
    let mut disabled = FlagDefinition::clone(&flags[0]);
    disabled.active = false;
    assert_eq!(lifecycle(&disabled, &flags[0]).unwrap_err().0, "active");
    // Enabling a flag whose dependency is disabled (or gone).
    let off_dependent = flag(4, "c", false, depends_on(2));
    let mut enabled = off_dependent.clone();
    enabled.active = true;
    assert_eq!(lifecycle(&enabled, &off_dependent).unwrap_err().0, "active");
    let gone = flag(5, "d", false, depends_on(99));
    let mut enabled = gone.clone();
    enabled.active = true;
    assert_eq!(lifecycle(&enabled, &gone).unwrap_err().0, "active");
    // Disabling a flag nothing depends on, and renaming one others depend on, are fine.
    let mut quiet = FlagDefinition::clone(&flags[2]);
    quiet.active = false;
    assert_eq!(lifecycle(&quiet, &flags[2]), Ok(()));
    let mut renamed = FlagDefinition::clone(&flags[0]);
    renamed.key = "renamed".into();
    assert_eq!(lifecycle(&renamed, &flags[0]), Ok(()));
}

#[test]
fn dependents_are_active_direct_dependents() {
    let mut flags = stored_flags();
    flags.push(Arc::new(flag(4, "c", false, depends_on(1))));
    let keys: Vec<&str> = dependents(1, &flags)
        .iter()
        .map(|f| f.key.as_str())
        .collect();
    assert_eq!(keys, ["b"]);
    assert!(dependents(3, &flags).is_empty());
}

/// Checks cohort `filters` written to cohort `id` against cohorts 5 ("five", referencing 6), 6
/// ("six") and the static cohort 9.
fn check_cohort_filters(id: Option<i64>, filters: Value) -> Result<(), (String, String)> {
    let five = json!({"properties": {"type": "AND", "values": [{"key": "id", "type": "cohort", "value": 6}]}});
    let six = json!({"properties": {"type": "OR", "values": [{"key": "e", "value": "x"}]}});
    let empty = json!({});
    let cohorts = [
        StoredCohort {
            id: 5,
            name: "five",
            filters: &five,
            is_static: false,
        },
        StoredCohort {
            id: 6,
            name: "six",
            filters: &six,
            is_static: false,
        },
        StoredCohort {
            id: 9,
            name: "static",
            filters: &empty,
            is_static: true,
        },
    ];
    check_cohort(&filters, id, &cohorts).map_err(|v| (v.code.as_str().to_owned(), v.attr))
}

#[test]
fn cohort_violations_name_the_field() {
    let values = |values: Value| json!({"properties": {"type": "AND", "values": values}});
    let mut deep = json!({"key": "e", "value": "x"});
    for _ in 0..70 {
        deep = json!({"type": "AND", "values": [deep]});
    }
    let cases: Vec<(Option<i64>, Value, &str, &str)> = vec![
        (None, json!("x"), "invalid_input", "filters"),
        (None, json!({"properties": 5}), "invalid_input", "filters.properties"),
        (None, json!({"properties": {"type": "AND", "values": 5}}), "invalid_input", "filters.properties.values"),
        (None, json!({"properties": {"type": "XOR", "values": []}}), "invalid_input", "filters.properties.type"),
        (None, values(json!([{"key": "a", "type": "event"}])), "invalid_input", "filters.properties.values[0].type"),
        (None, values(json!([{"type": "person", "value": "x"}])), "invalid_input", "filters.properties.values[0].key"),
        (None, values(json!([{"key": "a", "operator": 7}])), "invalid_input", "filters.properties.values[0].operator"),
        (None, values(json!([{"key": "e", "operator": "regex", "value": "("}])), "invalid_regex", "filters.properties.values[0].value"),
        (None, values(json!([{"key": "e", "operator": "lt", "value": 3}])), "invalid_value", "filters.properties.values[0].value"),
        (None, values(json!([{"key": "id", "type": "cohort", "value": "six"}])), "invalid_input", "filters.properties.values[0].value"),
        (None, values(json!([{"key": "signup", "type": "behavioral"}])), "invalid_input", "filters.properties.values[0].value"),
        (None, values(json!([{"key": "signup", "type": "behavioral", "value": "performed_event_regularly", "time_value": 1, "time_interval": "day"}])), "invalid_input", "filters.properties.values[0].value"),
        (None, values(json!([{"key": "signup", "type": "behavioral", "value": "performed_event", "time_value": 2, "time_interval": "month"}])), "invalid_input", "filters.properties.values[0].time_value"),
        (None, values(json!([{"key": "signup", "type": "behavioral", "value": "performed_event", "time_value": 1, "time_interval": "day", "event_filters": [{"key": "x", "type": "event", "operator": "regex", "value": "("}]}])), "invalid_regex", "filters.properties.values[0].event_filters[0].value"),
        (None, values(json!([{"properties": {"type": "AND", "values": []}}])), "invalid_input", "filters.properties.values[0].key"),
        (None, values(json!([{"key": "id", "type": "cohort", "value": 404}])), "cohort_does_not_exist", "filters"),
        (Some(5), values(json!([{"key": "id", "type": "cohort", "value": 5}])), "invalid_input", "filters"),
        (Some(6), values(json!([{"key": "id", "type": "cohort", "value": 5}])), "invalid_input", "filters"),
        (None, json!({"properties": deep}), "invalid_input",
            "filters.properties.values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0].values[0]"),
    ];
    for (id, filters, code, attr) in cases {
        assert_eq!(
            check_cohort_filters(id, filters.clone()),
            Err((code.to_owned(), attr.to_owned())),
            "{filters}"
        );
    }
}

#[test]
fn shape_errors_are_explained_in_the_rules_words() {
    let v = check_cohort(&json!({"properties": 5}), None, &[]).unwrap_err();
    assert_eq!(v.detail, "Expected a property group object.");
    let flags = [];
    let cohorts = HashSet::new();
    let stored = Stored {
        flags: &flags,
        cohorts: &cohorts,
    };
    let detail = |filters: Value| {
        let f = flag(0, "x", true, filters);
        check_flag(&FlagWrite::create(&f), &stored)
            .unwrap_err()
            .detail
    };
    assert_eq!(
        detail(json!({"groups": [{"rollout_percentage": "all"}]})),
        "A rollout percentage is a number from 0 to 100."
    );
    assert_eq!(
        detail(json!({"groups": [{"properties": "x"}]})),
        "Expected a list of property filters."
    );
}

#[test]
fn cohort_cycles_are_named() {
    let five = json!({"properties": {"values": [{"key": "id", "type": "cohort", "value": 6}]}});
    let cohorts = [StoredCohort {
        id: 5,
        name: "five",
        filters: &five,
        is_static: false,
    }];
    let back = json!({"properties": {"values": [{"key": "id", "type": "cohort", "value": 5}]}});
    let v = check_cohort(&back, Some(6), &cohorts).unwrap_err();
    assert_eq!(
        v.detail,
        "Circular cohort reference detected: this cohort (id 6) → five (id 5) → this cohort (id 6)"
    );
}

#[test]
fn valid_cohorts_pass() {
    for (id, filters) in [
        (None, json!({})),
        (None, json!({"properties": null})),
        (
            None,
            json!({"properties": {"type": "OR", "values": [
                {"type": "AND", "values": [{"key": "e", "operator": "icontains", "value": "@x.com"}, {}]},
                {"key": "id", "type": "cohort", "value": 5, "negation": true},
                {"key": "id", "type": "cohort", "value": "9"},
                {"key": "signup", "type": "behavioral", "value": "performed_event", "event_type": "events", "time_value": 30, "time_interval": "day"},
                {"key": "plan", "type": "person_metadata", "operator": "is_set"}
            ]}}),
        ),
        (
            Some(6),
            json!({"properties": {"type": "AND", "values": [{"key": "e", "value": "x"}]}}),
        ),
    ] {
        assert_eq!(
            check_cohort_filters(id, filters.clone()),
            Ok(()),
            "{filters}"
        );
    }
}
