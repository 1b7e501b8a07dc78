//! Semantic scenarios from the spec, one behaviour each, checked through one `check` function.

use std::collections::{HashMap, HashSet};

use chrono::Duration;
use serde_json::{json, Value};
use vexil_engine::{evaluate, BehavioralData, CompiledProject, Context, FlagValue};

use crate::support::{check, now, project, Got};

fn flag(key: &str, filters: Value) -> Value {
    json!({"id": 1, "key": key, "active": true, "filters": filters})
}

fn one(filters: Value, request: Value) -> Got {
    check(
        &project(json!({"flags": [flag("f", filters)]})),
        "f",
        request,
    )
}

fn got(value: Value, code: &str, index: Option<usize>) -> (Value, String, Option<usize>) {
    (value, code.to_owned(), index)
}

fn short(g: Got) -> (Value, String, Option<usize>) {
    (g.value, g.code, g.index)
}

#[test]
fn empty_distinct_id_is_in_every_rollout_and_gets_first_variant() {
    let g = one(
        json!({"groups": [{"rollout_percentage": 0}],
               "multivariate": {"variants": [{"key": "a", "rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}]}}),
        json!({"distinct_id": ""}),
    );
    assert_eq!(short(g), got(json!("a"), "condition_match", Some(0)));
}

#[test]
fn zero_percent_excludes_real_ids() {
    let g = one(
        json!({"groups": [{"rollout_percentage": 0}]}),
        json!({"distinct_id": "u1"}),
    );
    assert_eq!(short(g), got(json!(false), "out_of_rollout_bound", Some(0)));
}

#[test]
fn conditions_first_match_wins_and_payload_follows_variant() {
    let filters = json!({
        "groups": [
            {"properties": [{"key": "plan", "value": "pro"}], "variant": "b"},
            {"rollout_percentage": 100}
        ],
        "multivariate": {"variants": [{"key": "a", "rollout_percentage": 100}, {"key": "b", "rollout_percentage": 0}]},
        "payloads": {"a": "{\"x\":1}", "b": "{\"x\":2}"}
    });
    let pro = one(
        filters.clone(),
        json!({"distinct_id": "u", "person_properties": {"plan": "PRO"}}),
    );
    assert_eq!(pro.value, json!("b"));
    assert_eq!(pro.payload, Some(json!("{\"x\":2}")));
    let free = one(
        filters,
        json!({"distinct_id": "u", "person_properties": {"plan": "free"}}),
    );
    assert_eq!(
        short(free.clone()),
        got(json!("a"), "condition_match", Some(1))
    );
    assert_eq!(free.payload, Some(json!("{\"x\":1}")));
}

#[test]
fn unknown_variant_override_falls_back_to_hash() {
    let g = one(
        json!({"groups": [{"variant": "nope"}],
               "multivariate": {"variants": [{"key": "only", "rollout_percentage": 100}]}}),
        json!({"distinct_id": "u"}),
    );
    assert_eq!(short(g), got(json!("only"), "condition_match", Some(0)));
}

#[test]
fn variants_summing_below_100_leave_true() {
    // "simple-flag.distinct_id_0variant" hashes high; with 1% of variants nobody gets one.
    let g = one(
        json!({"groups": [{}], "multivariate": {"variants": [{"key": "a", "rollout_percentage": 0.0001}]}}),
        json!({"distinct_id": "distinct_id_0"}),
    );
    assert_eq!(short(g), got(json!(true), "condition_match", Some(0)));
}

#[test]
fn reason_priority_rollout_miss_beats_targeting_miss() {
    let filters = json!({"groups": [
        {"properties": [{"key": "x", "value": "1"}], "rollout_percentage": 0},
        {"properties": [{"key": "y", "value": "no"}]}
    ]});
    let g = one(
        filters,
        json!({"distinct_id": "u", "person_properties": {"x": "1"}}),
    );
    assert_eq!(short(g), got(json!(false), "out_of_rollout_bound", Some(0)));
    let two_misses = json!({"groups": [
        {"properties": [{"key": "x", "value": "a"}]},
        {"properties": [{"key": "x", "value": "b"}]}
    ]});
    let g = one(two_misses, json!({"distinct_id": "u"}));
    assert_eq!(short(g), got(json!(false), "no_condition_match", Some(1)));
}

#[test]
fn early_exit_stops_at_first_rollout_miss() {
    let filters = json!({"early_exit": true, "groups": [
        {"rollout_percentage": 0},
        {"rollout_percentage": 100}
    ]});
    let g = one(filters, json!({"distinct_id": "u"}));
    assert_eq!(short(g), got(json!(false), "out_of_rollout_bound", Some(0)));
}

#[test]
fn group_flags_hash_group_key_and_report_no_group_type() {
    let defs = json!({
        "group_type_mapping": {"0": "company"},
        "flags": [flag("org-dashboard", json!({"aggregation_group_type_index": 0, "groups": [
            {"properties": [{"key": "plan", "type": "group", "group_type_index": 0, "value": "enterprise"}]},
            {"rollout_percentage": 100}
        ]}))]
    });
    let p = project(defs);
    let missing = check(&p, "org-dashboard", json!({"distinct_id": "u"}));
    assert_eq!(short(missing), got(json!(false), "no_group_type", Some(1)));
    let numeric = check(
        &p,
        "org-dashboard",
        json!({"distinct_id": "u", "groups": {"company": 42}}),
    );
    assert_eq!(short(numeric), got(json!(true), "condition_match", Some(1)));
    let with_props = check(
        &p,
        "org-dashboard",
        json!({"distinct_id": "u", "groups": {"company": "c1"},
               "group_properties": {"company": {"plan": "Enterprise"}}}),
    );
    assert_eq!(
        short(with_props),
        got(json!(true), "condition_match", Some(0))
    );
}

#[test]
fn group_key_property_is_always_available() {
    let defs = json!({
        "group_type_mapping": {"0": "company"},
        "flags": [flag("g", json!({"aggregation_group_type_index": 0, "groups": [
            {"properties": [{"key": "$group_key", "type": "group", "group_type_index": 0, "value": "acme"}]}
        ]}))]
    });
    let g = check(
        &project(defs),
        "g",
        json!({"distinct_id": "u", "groups": {"company": "acme"}}),
    );
    assert_eq!(g.value, json!(true));
}

#[test]
fn mixed_targeting_person_condition_on_group_flag() {
    let defs = json!({
        "group_type_mapping": {"0": "company"},
        "flags": [flag("m", json!({"aggregation_group_type_index": 0, "groups": [
            {"rollout_percentage": 100},
            {"aggregation_group_type_index": null, "properties": [{"key": "email", "operator": "icontains", "value": "@acme"}]}
        ]}))]
    });
    let g = check(
        &project(defs),
        "m",
        json!({"distinct_id": "u", "person_properties": {"email": "a@ACME.com"}}),
    );
    assert_eq!(short(g), got(json!(true), "condition_match", Some(1)));
}

#[test]
fn holdout_members_get_holdout_variant_before_conditions() {
    // "holdout-user-31" hashes to 0.0195: a member at 10%, not at 1%.
    let filters = |pct: f64| {
        json!({"holdout": {"id": 42, "exclusion_percentage": pct},
               "groups": [{"properties": [{"key": "never", "value": "x"}]}],
               "payloads": {"holdout-42": "\"held\""}})
    };
    let member = one(filters(10.0), json!({"distinct_id": "user-31"}));
    assert_eq!(
        short(member.clone()),
        got(json!("holdout-42"), "holdout_condition_value", None)
    );
    assert_eq!(member.payload, Some(json!("\"held\"")));
    let not_member = one(filters(1.0), json!({"distinct_id": "user-31"}));
    assert_eq!(
        short(not_member),
        got(json!(false), "no_condition_match", Some(0))
    );
}

#[test]
fn legacy_holdout_groups() {
    let g = one(
        json!({"holdout_groups": [{"properties": [], "rollout_percentage": 100, "variant": "holdout-7"}],
               "groups": [{}]}),
        json!({"distinct_id": "u"}),
    );
    assert_eq!(
        short(g),
        got(json!("holdout-7"), "holdout_condition_value", None)
    );
}

#[test]
fn feature_enrollment_decides_when_present() {
    let filters = json!({"feature_enrollment": true, "groups": [{"rollout_percentage": 0}], "payloads": {"true": "1"}});
    let enrolled = one(
        filters.clone(),
        json!({"distinct_id": "u", "person_properties": {"$feature_enrollment/f": "true"}}),
    );
    assert_eq!(
        short(enrolled.clone()),
        got(json!(true), "super_condition_value", Some(0))
    );
    assert_eq!(enrolled.payload, Some(json!("1")));
    let opted_out = one(
        filters.clone(),
        json!({"distinct_id": "u", "person_properties": {"$feature_enrollment/f": false}}),
    );
    assert_eq!(
        short(opted_out),
        got(json!(false), "super_condition_value", Some(0))
    );
    let absent = one(filters, json!({"distinct_id": "u"}));
    assert_eq!(
        short(absent),
        got(json!(false), "out_of_rollout_bound", Some(0))
    );
}

#[test]
fn legacy_super_groups_only_when_their_keys_are_present() {
    let filters = json!({
        "super_groups": [{"properties": [{"key": "$early_access", "value": ["true"]}], "rollout_percentage": 100}],
        "groups": [{"rollout_percentage": 100}]
    });
    let off = one(
        filters.clone(),
        json!({"distinct_id": "u", "person_properties": {"$early_access": false}}),
    );
    assert_eq!(
        short(off),
        got(json!(false), "super_condition_value", Some(0))
    );
    let absent = one(filters, json!({"distinct_id": "u"}));
    assert_eq!(short(absent), got(json!(true), "condition_match", Some(0)));
}

#[test]
fn device_id_bucketing() {
    let by_device =
        json!({"bucketing_identifier": "device_id", "groups": [{"rollout_percentage": 50}]});
    let by_user = json!({"groups": [{"rollout_percentage": 50}]});
    let without = one(by_device.clone(), json!({"distinct_id": "u"}));
    assert_eq!(
        short(without),
        got(json!(false), "out_of_rollout_bound", Some(0))
    );
    // The ids are chosen so that the two identifiers disagree at 50%: hash01("f.", id) is
    // u4 0.879 (out), u1 0.252 (in), dev-1 0.336 (in), dev-3 0.594 (out).
    for (user, in_rollout) in [("u4", false), ("u1", true)] {
        let g = one(
            by_user.clone(),
            json!({"distinct_id": user, "$device_id": "dev-3"}),
        );
        assert_eq!(g.value, json!(in_rollout), "{user} by distinct_id");
    }
    // The device decides, not the user: u4 is in on dev-1, u1 is out on dev-3.
    let a = one(
        by_device.clone(),
        json!({"distinct_id": "u4", "$device_id": "dev-1"}),
    );
    assert_eq!(
        short(a.clone()),
        got(json!(true), "condition_match", Some(0))
    );
    let out = one(
        by_device.clone(),
        json!({"distinct_id": "u1", "$device_id": "dev-3"}),
    );
    assert_eq!(
        short(out),
        got(json!(false), "out_of_rollout_bound", Some(0))
    );
    // Same device, different users (one in, one out by distinct_id): same answer, also when the
    // device id comes from `person_properties.$device_id`.
    let b = one(
        by_device.clone(),
        json!({"distinct_id": "u1", "person_properties": {"$device_id": "dev-1"}}),
    );
    assert_eq!(a.value, b.value);
    let b_out = one(
        by_device,
        json!({"distinct_id": "u4", "person_properties": {"$device_id": "dev-3"}}),
    );
    assert_eq!(b_out.value, json!(false));
    // Variants hash the device too: variant hash01 of u4 is 0.882 ("test"), of dev-2 0.161.
    let variants = json!({"variants": [{"key": "control", "rollout_percentage": 50},
                                        {"key": "test", "rollout_percentage": 50}]});
    let request = json!({"distinct_id": "u4", "$device_id": "dev-2"});
    let user = one(
        json!({"groups": [{"rollout_percentage": 100}], "multivariate": variants}),
        request.clone(),
    );
    assert_eq!(user.value, json!("test"));
    let device = one(
        json!({"bucketing_identifier": "device_id", "groups": [{"rollout_percentage": 100}],
               "multivariate": variants}),
        request,
    );
    assert_eq!(device.value, json!("control"));
}

#[test]
fn experience_continuity_uses_override_then_anon_id() {
    let defs = json!({"flags": [{"id": 1, "key": "c", "active": true, "ensure_experience_continuity": true,
        "filters": {"groups": [{"rollout_percentage": 50}]}}]});
    let p = project(defs);
    // The anon id's bucket is what an identified user keeps.
    let find = |want: bool| {
        (0..200)
            .map(|i| format!("anon-{i}"))
            .find(|id| {
                let ctx = Context::new(id, now());
                evaluate(&p, &ctx).get("c").unwrap().value.is_enabled() == want
            })
            .unwrap()
    };
    let (anon_in, anon_out) = (find(true), find(false));
    for (anon, want) in [(&anon_in, true), (&anon_out, false)] {
        let mut ctx = Context::new("identified-user", now());
        ctx.anon_distinct_id = Some(anon);
        assert_eq!(
            evaluate(&p, &ctx).get("c").unwrap().value.is_enabled(),
            want
        );
        // A stored override wins over the request's anon id.
        let overrides = HashMap::from([("c".to_owned(), anon_in.clone())]);
        let mut ctx = Context::new("identified-user", now());
        ctx.anon_distinct_id = Some(&anon_out);
        ctx.hash_key_overrides = Some(&overrides);
        assert!(evaluate(&p, &ctx).get("c").unwrap().value.is_enabled());
    }
}

#[test]
fn initial_properties_are_back_filled_and_distinct_id_is_a_property() {
    let g = one(
        json!({"groups": [{"properties": [
            {"key": "$initial_utm_source", "value": "newsletter"},
            {"key": "$initial_browser", "value": "Firefox"},
            {"key": "distinct_id", "operator": "regex", "value": "^user-\\d+$"}
        ]}]}),
        json!({"distinct_id": "user-42", "person_properties": {"utm_source": "newsletter", "$browser": "Firefox"}}),
    );
    assert_eq!(g.value, json!(true));
}

fn dependency_project() -> CompiledProject {
    project(json!({"flags": [
        {"id": 10, "key": "child", "active": true, "filters": {"groups": [{"properties": [
            {"key": "11", "type": "flag", "operator": "flag_evaluates_to", "value": "b"}]}]}},
        {"id": 11, "key": "parent", "active": true, "filters": {"groups": [
            {"properties": [{"key": "plan", "value": "pro"}], "variant": "b"}],
            "multivariate": {"variants": [{"key": "a", "rollout_percentage": 100}, {"key": "b", "rollout_percentage": 0}]}}},
        {"id": 12, "key": "needs-disabled", "active": true, "filters": {"groups": [{"properties": [
            {"key": "off", "type": "flag", "operator": "flag_evaluates_to", "value": false, "dependency_chain": ["off"]}]}]}},
        {"id": 13, "key": "off", "active": false, "filters": {"groups": [{}]}},
        {"id": 14, "key": "dangling", "active": true, "filters": {"groups": [{"properties": [
            {"key": "999", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}},
        {"id": 15, "key": "loop-a", "active": true, "filters": {"groups": [{"properties": [
            {"key": "16", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}},
        {"id": 16, "key": "loop-b", "active": true, "filters": {"groups": [{"properties": [
            {"key": "15", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}},
        {"id": 17, "key": "on-loop", "active": true, "filters": {"groups": [{"properties": [
            {"key": "15", "type": "flag", "operator": "flag_evaluates_to", "value": false}]}]}},
        {"id": 18, "key": "independent", "active": true, "filters": {"groups": [{}]}}
    ]}))
}

#[test]
fn flag_dependencies_evaluate_in_order() {
    let p = dependency_project();
    let pro = json!({"distinct_id": "u", "person_properties": {"plan": "pro"}});
    assert_eq!(
        short(check(&p, "child", pro)),
        got(json!(true), "condition_match", Some(0))
    );
    let free = json!({"distinct_id": "u", "person_properties": {"plan": "free"}});
    assert_eq!(check(&p, "child", free).value, json!(false));
    // An inactive dependency counts as false (and is itself omitted).
    assert_eq!(
        check(&p, "needs-disabled", json!({"distinct_id": "u"})).value,
        json!(true)
    );
}

#[test]
fn missing_and_cyclic_dependencies_fail_only_their_flags() {
    let p = dependency_project();
    let ctx = Context::new("u", now());
    let eval = evaluate(&p, &ctx);
    for key in ["dangling", "loop-a", "loop-b", "on-loop"] {
        let r = eval.get(key).unwrap();
        assert_eq!(r.value, FlagValue::False, "{key}");
        assert_eq!(r.reason.code.as_str(), "missing_dependency", "{key}");
        assert_eq!(r.reason.condition_index, None);
    }
    assert!(eval.get("off").is_none(), "inactive flags are omitted");
    assert_eq!(eval.get("independent").unwrap().value, FlagValue::True);
    assert!(!eval.errors_while_computing_flags);
}

#[test]
fn flag_keys_select_flags_and_evaluate_their_dependencies() {
    let p = dependency_project();
    let keys = vec!["child".to_owned()];
    let props = json!({"plan": "pro"});
    let mut ctx = Context::new("u", now());
    ctx.flag_keys = Some(&keys);
    ctx.person_properties = props.as_object();
    let eval = evaluate(&p, &ctx);
    assert_eq!(eval.flags.len(), 1);
    assert_eq!(eval.get("child").unwrap().value, FlagValue::True);
}

#[test]
fn a_broken_flag_fails_alone() {
    let p = project(json!({"flags": [
        flag("bad-op", json!({"groups": [{"properties": [{"key": "x", "operator": "frobnicate", "value": 1}]}]})),
        flag("bad-type", json!({"groups": [{"properties": [{"key": "x", "type": "planet", "value": 1}]}]})),
        flag("v2", json!({"version": 2, "groups": []})),
        flag("bad-shape", json!({"groups": "nope"})),
        flag("good", json!({"groups": [{}]}))
    ]}));
    let eval = evaluate(&p, &Context::new("u", now()));
    assert!(eval.errors_while_computing_flags);
    for key in ["bad-op", "bad-type", "v2", "bad-shape"] {
        let r = eval.get(key).unwrap();
        assert!(r.failed(), "{key}");
        assert_eq!(r.reason.code.as_str(), "flag_data_parsing_error");
    }
    let defect = p.flag("bad-op").unwrap().defect().unwrap();
    assert_eq!(defect.path, "filters.groups[0].properties[0].operator");
    assert_eq!(eval.get("good").unwrap().value, FlagValue::True);
}

#[test]
fn inactive_and_deleted_flags_are_omitted() {
    let p = project(json!({"flags": [
        {"id": 1, "key": "off", "active": false, "filters": {"groups": [{}]}},
        {"id": 2, "key": "gone", "active": true, "deleted": true, "filters": {"groups": [{}]}},
        {"id": 3, "key": "on", "active": true, "filters": {"groups": [{}]}}
    ]}));
    let eval = evaluate(&p, &Context::new("u", now()));
    let keys: Vec<&str> = eval.flags.iter().map(|r| r.key()).collect();
    assert_eq!(keys, ["on"]);
}

fn cohort_project() -> CompiledProject {
    project(json!({
        "cohorts": {
            "1": {"type": "OR", "values": [
                {"type": "AND", "values": [
                    {"key": "email", "type": "person", "operator": "icontains", "value": "@acme.com"},
                    {"key": "country", "type": "person", "value": "DE", "negation": true}
                ]},
                {"type": "AND", "values": [{"key": "vip", "type": "person", "value": true}]}
            ]},
            "2": {"type": "AND", "values": [{"type": "AND", "values": [
                {"key": "id", "type": "cohort", "value": 1},
                {"key": "plan", "type": "person", "value": "pro"}
            ]}]},
            "3": {"type": "AND", "values": [{"key": "id", "type": "cohort", "value": 4}]},
            "4": {"type": "AND", "values": [{"key": "id", "type": "cohort", "value": 3}]},
            "5": {"type": "OR", "values": [{"type": "OR", "values": [
                {"key": "$pageview", "type": "behavioral", "value": "performed_event", "time_value": 5, "time_interval": "minute"}
            ]}]}
        },
        "flags": [
            flag("in-1", json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": 1}]}]})),
            flag("not-in-1", json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "operator": "not_in", "value": 1}]}]})),
            flag("in-2", json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": "2"}]}]})),
            flag("cyclic", json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": 3}]}]})),
            flag("static", json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": 77}]}]})),
            flag("recent", json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": 5}]}]}))
        ]
    }))
}

fn person(props: Value) -> Value {
    json!({"distinct_id": "u", "person_properties": props})
}

#[test]
fn dynamic_cohorts_nested_negated_and_cohort_in_cohort() {
    let p = cohort_project();
    let acme_us = person(json!({"email": "a@acme.com", "country": "US", "plan": "pro"}));
    let acme_de = person(json!({"email": "a@acme.com", "country": "DE", "plan": "pro"}));
    assert_eq!(check(&p, "in-1", acme_us.clone()).value, json!(true));
    assert_eq!(check(&p, "in-1", acme_de.clone()).value, json!(false));
    assert_eq!(check(&p, "not-in-1", acme_de.clone()).value, json!(true));
    assert_eq!(
        check(&p, "in-1", person(json!({"vip": "TRUE"}))).value,
        json!(true)
    );
    assert_eq!(check(&p, "in-2", acme_us).value, json!(true));
    assert_eq!(check(&p, "in-2", acme_de).value, json!(false));
}

#[test]
fn cohort_cycles_fail_the_flag_only() {
    let p = cohort_project();
    let eval = evaluate(&p, &Context::new("u", now()));
    assert!(eval.get("cyclic").unwrap().failed());
    assert!(eval.errors_while_computing_flags);
    assert!(!eval.get("in-1").unwrap().failed());
}

#[test]
fn static_cohorts_come_from_the_membership_input() {
    let p = cohort_project();
    let members = HashSet::from([77]);
    let mut ctx = Context::new("u", now());
    assert!(!evaluate(&p, &ctx).get("static").unwrap().value.is_enabled());
    ctx.static_cohorts = Some(&members);
    assert!(evaluate(&p, &ctx).get("static").unwrap().value.is_enabled());
}

/// Counts by query index, as a caller pre-reads them for one request.
struct Counts(Vec<u64>);

impl BehavioralData for Counts {
    fn count(&self, query: usize) -> Option<u64> {
        self.0.get(query).copied()
    }
}

#[test]
fn behavioral_cohorts_are_decided_at_check_time() {
    let p = cohort_project();
    let queries = p.behaviors().queries();
    assert_eq!(queries.len(), 1);
    assert_eq!(queries[0].window().length(), Duration::minutes(5));
    assert_eq!(p.behaviors().signatures()[0].event(), "$pageview");
    let mut ctx = Context::new("u", now());
    let without = evaluate(&p, &ctx);
    let r = without.get("recent").unwrap();
    assert!(!r.value.is_enabled());
    assert!(r.reason.description().to_string().contains("behavioral"));

    let recent = Counts(vec![1]);
    ctx.behavior = Some(&recent);
    assert!(evaluate(&p, &ctx).get("recent").unwrap().value.is_enabled());

    let none = Counts(vec![0]);
    ctx.behavior = Some(&none);
    assert!(!evaluate(&p, &ctx).get("recent").unwrap().value.is_enabled());
}

#[test]
fn relative_dates_use_the_context_clock() {
    let filters = json!({"groups": [{"properties": [
        {"key": "signed_up", "operator": "is_date_after", "value": "-7d"}]}]});
    let recent = (now() - Duration::days(3)).to_rfc3339();
    let old = (now() - Duration::days(30)).timestamp();
    assert_eq!(
        one(filters.clone(), person(json!({"signed_up": recent}))).value,
        json!(true)
    );
    assert_eq!(
        one(filters, person(json!({"signed_up": old}))).value,
        json!(false)
    );
}

#[test]
fn reason_descriptions() {
    let p = project(
        json!({"flags": [flag("f", json!({"groups": [{"properties": [{"key": "x", "value": 1}]}, {}]}))]}),
    );
    let eval = evaluate(&p, &Context::new("u", now()));
    assert_eq!(
        eval.get("f").unwrap().reason.description().to_string(),
        "Matched condition set 2"
    );
}

#[test]
fn excluded_flags_are_omitted_and_count_as_false_for_dependents() {
    let p = project(json!({"flags": [
        {"id": 1, "key": "server-only", "active": true, "evaluation_runtime": "server", "filters": {"groups": [{}]}},
        {"id": 2, "key": "needs-it-off", "active": true, "filters": {"groups": [{"properties": [
            {"key": "1", "type": "flag", "operator": "flag_evaluates_to", "value": false}]}]}}
    ]}));
    let client_only = |f: &vexil_engine::CompiledFlag| f.evaluation_runtime() != Some("server");
    let mut ctx = Context::new("u", now());
    ctx.include = Some(&client_only);
    let eval = evaluate(&p, &ctx);
    assert!(eval.get("server-only").is_none());
    assert_eq!(eval.get("needs-it-off").unwrap().value, FlagValue::True);
}

#[test]
fn a_repeated_key_keeps_the_first_definition() {
    let p = project(json!({"flags": [
        {"id": 1, "key": "dup", "active": true, "filters": {"groups": [{}]}},
        {"id": 2, "key": "dup", "active": true, "filters": {"groups": [{"rollout_percentage": 0}]}}
    ]}));
    let eval = evaluate(&p, &Context::new("u", now()));
    assert_eq!(eval.flags.len(), 1);
    assert_eq!(eval.flags[0].flag.id(), 1);
}

#[test]
fn requirements_list_what_stored_data_flags_read() {
    use vexil_engine::GroupCoverage;
    let p = project(json!({
        "group_type_mapping": {"0": "company"},
        "flags": [
            flag("a", json!({"groups": [{"properties": [{"key": "email", "operator": "icontains", "value": "@x"}]}]})),
            flag("g", json!({"aggregation_group_type_index": 0, "groups": [{"properties": [
                {"key": "seats", "type": "group", "group_type_index": 0, "operator": "gt", "value": 1}]}]})),
            {"id": 9, "key": "off", "active": false, "filters": {"groups": [{"properties": [{"key": "id", "type": "cohort", "value": 1}]}]}}
        ]
    }));
    let req = p.requirements();
    assert!(!req.cohorts, "inactive flags do not count");
    let person = json!({"email": "a@x.com"});
    let company = json!({"seats": 3});
    assert!(req.covered_by(person.as_object(), |_| GroupCoverage::NotInRequest));
    assert!(
        req.covered_by(person.as_object(), |_| GroupCoverage::Properties(
            company.as_object()
        ))
    );
    assert!(!req.covered_by(person.as_object(), |_| GroupCoverage::Properties(None)));
    assert!(!req.covered_by(None, |_| GroupCoverage::NotInRequest));
}

#[test]
fn negation_on_a_flag_level_cohort_filter_is_ignored() {
    let p = project(json!({
        "cohorts": {"1": {"type": "AND", "values": [{"key": "vip", "type": "person", "value": true}]}},
        "flags": [flag("f", json!({"groups": [{"properties": [
            {"key": "id", "type": "cohort", "value": 1, "negation": true}]}]}))]
    }));
    assert_eq!(
        check(&p, "f", person(json!({"vip": true}))).value,
        json!(true)
    );
}
