//! Property keys are interned per project and looked up once per evaluation: every flag must
//! still read its own key from its own source, with its own fallback, whichever flag looked the
//! key up first — also after incremental changes that bring new keys.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use vexil_engine::{evaluate, CompiledProject, Context, Definitions, ErrorCode, FlagDefinition};

use crate::support::now;

fn flag(id: i64, key: &str, filters: Value) -> Value {
    json!({"id": id, "key": key, "active": true, "filters": filters})
}

/// A one-condition flag whose filters are `properties`.
fn targeting(id: i64, key: &str, properties: Value) -> Value {
    flag(id, key, json!({"groups": [{"properties": properties}]}))
}

/// A group-aggregated one-condition flag on group type `index`.
fn group_targeting(id: i64, key: &str, index: i64, properties: Value) -> Value {
    flag(
        id,
        key,
        json!({"aggregation_group_type_index": index, "groups": [{"properties": properties}]}),
    )
}

/// Every flag whose key starts with `ten-` reads its own key, `k0` … `k9`, and the rest read the
/// keys that share a name across sources and the keys with fallbacks.
fn definitions() -> Definitions {
    let mut flags: Vec<Value> = (0..10)
        .map(|i| {
            targeting(
                i + 1,
                &format!("ten-{i}"),
                json!([{"key": format!("k{i}"), "value": format!("v{i}")}]),
            )
        })
        .collect();
    flags.extend([
        // The same name from three sources: a person's, the company's and the team's `seats`.
        targeting(
            20,
            "person-seats",
            json!([{"key": "seats", "operator": "gte", "value": 10}]),
        ),
        group_targeting(
            21,
            "company-seats",
            0,
            json!([{"key": "seats", "type": "group", "group_type_index": 0, "operator": "gte", "value": 10}]),
        ),
        group_targeting(
            22,
            "team-seats",
            1,
            json!([{"key": "seats", "type": "group", "group_type_index": 1, "operator": "gte", "value": 10}]),
        ),
        // `$initial_browser` falls back to `$browser`, which another flag reads itself.
        targeting(
            30,
            "initial-browser",
            json!([{"key": "$initial_browser", "value": "Chrome"}]),
        ),
        targeting(
            31,
            "browser",
            json!([{"key": "$browser", "value": "Firefox"}]),
        ),
        // `$group_key` falls back to the group's key on groups only; `distinct_id` to the
        // request's distinct id on persons only.
        group_targeting(
            40,
            "group-key",
            0,
            json!([{"key": "$group_key", "type": "group", "group_type_index": 0, "value": "acme"}]),
        ),
        targeting(
            41,
            "person-group-key",
            json!([{"key": "$group_key", "operator": "is_set"}]),
        ),
        targeting(
            42,
            "person-distinct-id",
            json!([{"key": "distinct_id", "value": "user-1"}]),
        ),
        group_targeting(
            43,
            "group-distinct-id",
            0,
            json!([{"key": "distinct_id", "type": "group", "group_type_index": 0, "operator": "is_set"}]),
        ),
        // A cohort's leaf reads `plan`, as does a flag of its own.
        targeting(
            50,
            "in-cohort",
            json!([{"key": "id", "type": "cohort", "value": 7}]),
        ),
        targeting(
            51,
            "plan",
            json!([{"key": "plan", "operator": "icontains", "value": "ent"}]),
        ),
    ]);
    serde_json::from_value(json!({
        "group_type_mapping": {"0": "company", "1": "team"},
        "cohorts": {"7": {"type": "AND", "values": [{"key": "plan", "type": "person", "value": "pro"}]}},
        "flags": flags,
    }))
    .unwrap()
}

/// Every flag's value for one request, from one evaluation.
fn values(project: &CompiledProject, request: &Value) -> BTreeMap<String, Value> {
    let mut ctx = Context::new("user-1", now());
    ctx.person_properties = request["person"].as_object();
    ctx.groups = request["groups"].as_object();
    ctx.group_properties = request["group_properties"].as_object();
    evaluate(project, &ctx)
        .flags
        .iter()
        .map(|r| (r.key().to_owned(), r.value.to_json()))
        .collect()
}

/// The value of flag `key` in a project holding only that flag (and the cohorts): no other
/// flag can have looked its key up first.
fn alone(defs: &Definitions, key: &str, request: &Value) -> Value {
    let mut single = defs.clone();
    single.flags.retain(|f| f.key == key);
    values(&CompiledProject::compile(&single), request)[key].clone()
}

fn requests() -> Vec<Value> {
    let groups = json!({"company": "acme", "team": "blue"});
    vec![
        json!({
            "person": {"k1": "v1", "k2": "v1", "k3": "v3", "k4": "v5", "k5": "v5", "k8": "v8",
                       "seats": 3, "$browser": "Chrome", "plan": "pro"},
            "groups": groups,
            "group_properties": {"company": {"seats": 40}, "team": {"seats": 5}},
        }),
        json!({
            "person": {"k0": "v0", "k9": "v9", "k6": "v6", "seats": 30, "$browser": "Firefox",
                       "$initial_browser": "Chrome", "plan": "enterprise", "$group_key": "x"},
            "groups": groups,
            "group_properties": {"company": {"seats": 4, "distinct_id": "d"}, "team": {"seats": 50}},
        }),
        json!({
            "person": {"$browser": "Chrome", "$initial_browser": "Safari", "distinct_id": "other"},
            "groups": {"company": "other"},
            "group_properties": {"company": {"$group_key": "acme"}},
        }),
    ]
}

#[test]
fn every_flag_reads_its_own_key() {
    let defs = definitions();
    let project = CompiledProject::compile(&defs);
    let [first, second, third] = &requests()[..] else {
        unreachable!()
    };

    let got = values(&project, first);
    for (i, want) in [
        false, true, false, true, false, true, false, false, true, false,
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(got[&format!("ten-{i}")], json!(want), "ten-{i}");
    }
    let expect = |got: &BTreeMap<String, Value>, key: &str, want: bool| {
        assert_eq!(got[key], json!(want), "{key}");
    };
    expect(&got, "person-seats", false);
    expect(&got, "company-seats", true);
    expect(&got, "team-seats", false);
    expect(&got, "initial-browser", true); // back-filled from $browser
    expect(&got, "browser", false);
    expect(&got, "group-key", true); // the company's key
    expect(&got, "person-group-key", false); // no fallback on persons
    expect(&got, "person-distinct-id", true); // the request's distinct id
    expect(&got, "group-distinct-id", false); // no fallback on groups
    expect(&got, "in-cohort", true);
    expect(&got, "plan", false);

    let got = values(&project, second);
    expect(&got, "ten-0", true);
    expect(&got, "ten-6", true);
    expect(&got, "ten-9", true);
    expect(&got, "person-seats", true);
    expect(&got, "company-seats", false);
    expect(&got, "team-seats", true);
    expect(&got, "initial-browser", true); // its own value
    expect(&got, "browser", true);
    expect(&got, "person-group-key", true);
    expect(&got, "group-distinct-id", true);
    expect(&got, "in-cohort", false);
    expect(&got, "plan", true);

    let got = values(&project, third);
    expect(&got, "initial-browser", false); // its own value wins over $browser's
    expect(&got, "group-key", true); // the sent property over the key ("other")
    expect(&got, "person-distinct-id", false); // the sent property over the distinct id
}

#[test]
fn sharing_lookups_changes_no_flag() {
    let defs = definitions();
    let project = CompiledProject::compile(&defs);
    for request in requests() {
        let together = values(&project, &request);
        for f in &defs.flags {
            assert_eq!(
                together[&f.key],
                alone(&defs, &f.key, &request),
                "{} for {request}",
                f.key
            );
        }
    }
}

#[test]
fn flags_changed_one_by_one_read_their_keys() {
    let defs = definitions();
    // Built up from nothing, a flag at a time: each new flag brings keys the table lacks.
    let mut project = CompiledProject::compile(&Definitions {
        cohorts: defs.cohorts.clone(),
        group_type_mapping: defs.group_type_mapping.clone(),
        ..Definitions::default()
    });
    for f in &defs.flags {
        project = project.with_flag(f.clone());
    }
    // Then every `ten-` flag re-pointed at the next one's key, in place.
    let mut moved = defs.clone();
    for i in 0..10 {
        let def: FlagDefinition = serde_json::from_value(targeting(
            i + 1,
            &format!("ten-{i}"),
            json!([{"key": format!("k{}", (i + 1) % 10), "value": format!("v{}", (i + 1) % 10)}]),
        ))
        .unwrap();
        project = project.with_flag(def.clone());
        moved.flags[usize::try_from(i).unwrap()] = def;
    }
    let full = CompiledProject::compile(&moved);
    for request in requests() {
        assert_eq!(values(&project, &request), values(&full, &request));
    }
    let got = values(&project, &requests()[0]);
    assert_eq!(got["ten-0"], json!(true)); // k1 = v1
    assert_eq!(got["ten-4"], json!(true)); // k5 = v5
    assert_eq!(got["ten-1"], json!(false)); // k2 = "v1"
}

#[test]
fn every_reader_of_a_missing_key_fails_without_stored_data() {
    // The first flag to read `plan` looks it up; the second finds it looked up already and
    // must fail just the same. A group's `$group_key` is never stored data, even when the
    // request names no such group.
    let project = CompiledProject::compile(
        &serde_json::from_value(json!({
            "group_type_mapping": {"0": "company"},
            "flags": [
                targeting(1, "first", json!([{"key": "plan", "value": "pro"}])),
                targeting(2, "second", json!([{"key": "plan", "operator": "is_not", "value": "pro"}])),
                targeting(3, "sent", json!([{"key": "email", "operator": "is_set"}])),
                targeting(4, "no-company", json!([
                    {"key": "$group_key", "type": "group", "group_type_index": 0, "operator": "is_not_set"}])),
            ],
        }))
        .unwrap(),
    );
    let props = json!({"email": "a@b"});
    let mut ctx = Context::new("u", now());
    ctx.person_properties = props.as_object();
    ctx.stored_unavailable = Some(ErrorCode::Timeout);
    let eval = evaluate(&project, &ctx);
    assert_eq!(eval.get("no-company").unwrap().value.to_json(), json!(true));
    let failed: Vec<(&str, bool)> = eval.flags.iter().map(|r| (r.key(), r.failed())).collect();
    assert_eq!(
        failed,
        vec![
            ("first", true),
            ("second", true),
            ("sent", false),
            ("no-company", false)
        ]
    );
}
