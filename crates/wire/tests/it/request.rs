//! `/flags` request bodies (spec §1.4, §1.5 step 9) and the engine context built from them.

use serde_json::{json, Value};
use vexil_engine::{evaluate, FlagValue};
use vexil_wire::{EvaluationRuntime, FieldError, FlagsRequest, RequestError};

use crate::support::{now, project};

fn parse(v: Value) -> FlagsRequest {
    FlagsRequest::from_json(v).unwrap()
}

fn field_error(v: Value) -> String {
    match FlagsRequest::from_json(v) {
        Err(RequestError::Field(e)) => e.to_string(),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn token_aliases() {
    for name in ["token", "api_key", "$token"] {
        let r = parse(json!({ name: "phc_1" }));
        assert_eq!(r.token(), Some("phc_1"), "{name}");
    }
    // The canonical name wins; null counts as absent.
    let r = parse(json!({"token": null, "api_key": "phc_2", "$token": "phc_3"}));
    assert_eq!(r.token(), Some("phc_2"));
    let r = parse(json!({"token": ""}));
    assert_eq!(r.token, Some(String::new()));
    assert_eq!(r.token(), None);
}

#[test]
fn distinct_id_strings_and_numbers() {
    assert_eq!(
        parse(json!({"distinct_id": "u"})).distinct_id.as_deref(),
        Some("u")
    );
    assert_eq!(
        parse(json!({"$distinct_id": "u"})).distinct_id.as_deref(),
        Some("u")
    );
    assert_eq!(
        parse(json!({"distinct_id": 8675309}))
            .distinct_id
            .as_deref(),
        Some("8675309")
    );
    assert_eq!(
        parse(json!({"distinct_id": 123.45})).distinct_id.as_deref(),
        Some("123.45")
    );
    assert_eq!(
        parse(json!({"distinct_id": -7})).distinct_id.as_deref(),
        Some("-7")
    );
    assert_eq!(
        parse(json!({"distinct_id": ""})).distinct_id.as_deref(),
        Some("")
    );
    assert_eq!(parse(json!({})).distinct_id, None);
    assert_eq!(parse(json!({"distinct_id": null})).distinct_id, None);
    assert_eq!(
        field_error(json!({"distinct_id": true})),
        "distinct_id must be a string or number"
    );
    assert_eq!(
        field_error(json!({"$distinct_id": ["a"]})),
        "$distinct_id must be a string or number"
    );
}

#[test]
fn distinct_id_truncated_to_200_scalar_values() {
    let exact = "a".repeat(200);
    assert_eq!(
        parse(json!({"distinct_id": exact})).distinct_id.unwrap(),
        exact
    );

    let long = "b".repeat(250);
    assert_eq!(
        parse(json!({"distinct_id": long})).distinct_id.unwrap(),
        "b".repeat(200)
    );

    // Multibyte: 150 ASCII + 100 three-byte characters → first 200 characters (350 bytes).
    let mixed = format!("{}{}", "c".repeat(150), "€".repeat(100));
    let got = parse(json!({"distinct_id": mixed})).distinct_id.unwrap();
    assert_eq!(got.chars().count(), 200);
    assert_eq!(got, format!("{}{}", "c".repeat(150), "€".repeat(50)));

    // 200 four-byte characters are 800 bytes but not truncated.
    let emoji = "🚩".repeat(200);
    assert_eq!(
        parse(json!({"distinct_id": emoji.clone()}))
            .distinct_id
            .unwrap(),
        emoji
    );
    let emoji201 = "🚩".repeat(201);
    assert_eq!(
        parse(json!({"distinct_id": emoji201})).distinct_id.unwrap(),
        emoji
    );
}

#[test]
fn groups_keep_strings_and_numbers() {
    let r = parse(
        json!({"groups": {"company": "acme", "project": 42, "team": 1.5,
                                    "bad": true, "worse": {"a": 1}, "none": null, "list": [1]}}),
    );
    let groups = r.groups.as_ref().unwrap();
    assert_eq!(groups.len(), 3);
    assert_eq!(groups["company"], "acme");
    assert_eq!(groups["project"], 42);
    assert_eq!(groups["team"], 1.5);
    assert!(parse(json!({"$groups": {"a": "b"}})).groups.is_some());
    assert_eq!(
        field_error(json!({"groups": "acme"})),
        "groups must be an object"
    );
}

#[test]
fn group_key_overrides_are_applied() {
    let r = parse(json!({
        "groups": {"company": "acme", "project": 7},
        "group_properties": {"company": {"$group_key": "stale", "seats": 3}, "other": {"x": 1}}
    }));
    let gp = r.group_properties.as_ref().unwrap();
    assert_eq!(gp["company"], json!({"$group_key": "acme", "seats": 3}));
    assert_eq!(gp["project"], json!({"$group_key": 7}));
    assert_eq!(gp["other"], json!({"x": 1}));

    // Without group_properties the map is created; applying twice changes nothing.
    let mut r = parse(json!({"groups": {"company": "acme"}}));
    assert_eq!(
        r.group_properties.as_ref().unwrap()["company"],
        json!({"$group_key": "acme"})
    );
    let before = r.clone();
    r.apply_group_key_overrides();
    assert_eq!(r, before);

    // No groups: group_properties stay absent.
    assert_eq!(parse(json!({"distinct_id": "u"})).group_properties, None);
}

#[test]
fn property_fields_and_aliases() {
    let r = parse(json!({
        "$properties": {"plan": "pro"},
        "$group_properties": {"company": {"seats": 1}},
        "anon_distinct_id": "anon",
        "device_id": "dev",
        "flag_keys_to_evaluate": ["a", "b"],
        "evaluation_environments": ["prod"],
    }));
    assert_eq!(r.person_properties.unwrap()["plan"], "pro");
    assert_eq!(r.group_properties.unwrap()["company"]["seats"], 1);
    assert_eq!(r.anon_distinct_id.as_deref(), Some("anon"));
    assert_eq!(r.device_id.as_deref(), Some("dev"));
    assert_eq!(r.flag_keys.unwrap(), ["a", "b"]);
    assert_eq!(r.evaluation_contexts.unwrap(), ["prod"]);

    let r = parse(
        json!({"$anon_distinct_id": "a1", "$device_id": "d1", "flag_keys": ["k"],
                         "evaluation_contexts": ["web"], "disable_flags": true,
                         "geoip_disable": true, "timezone": "Europe/Paris",
                         "cookieless_hash_extra": "x", "ip_address": "1.2.3.4",
                         "evaluation_runtime": "SERVER", "unknown_field": {"ignored": true}}),
    );
    assert_eq!(r.anon_distinct_id.as_deref(), Some("a1"));
    assert_eq!(r.device_id.as_deref(), Some("d1"));
    assert!(r.disable_flags && r.geoip_disable);
    // posthog-rs's spelling.
    assert!(parse(json!({"disable_geoip": true})).geoip_disable);
    assert_eq!(r.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(r.evaluation_runtime, Some(EvaluationRuntime::Server));
    assert_eq!(
        parse(json!({"evaluation_runtime": "mainframe"})).evaluation_runtime,
        Some(EvaluationRuntime::All)
    );
}

#[test]
fn wrong_types_name_the_field() {
    let cases = [
        (
            json!({"person_properties": "x"}),
            "person_properties must be an object",
        ),
        (json!({"$properties": [1]}), "$properties must be an object"),
        (
            json!({"group_properties": {"company": 3}}),
            "group_properties.company must be an object",
        ),
        (json!({"token": 5}), "token must be a string"),
        (json!({"api_key": {}}), "api_key must be a string"),
        (
            json!({"flag_keys": "a"}),
            "flag_keys must be an array of strings",
        ),
        (
            json!({"flag_keys": ["a", 1]}),
            "flag_keys must be an array of strings",
        ),
        (
            json!({"disable_flags": "true"}),
            "disable_flags must be a boolean",
        ),
        (
            json!({"geoip_disable": 1}),
            "geoip_disable must be a boolean",
        ),
        (
            json!({"$anon_distinct_id": 1}),
            "$anon_distinct_id must be a string",
        ),
        (
            json!({"evaluation_runtime": 1}),
            "evaluation_runtime must be a string",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(field_error(body.clone()), message, "{body}");
    }
    let err = FlagsRequest::from_json(json!({"person_properties": 1})).unwrap_err();
    assert_eq!(
        err,
        RequestError::Field(FieldError {
            field: "person_properties".into(),
            expected: "an object"
        })
    );
    // Null inner group properties are dropped, not rejected.
    let r = parse(json!({"group_properties": {"company": null}}));
    assert!(r.group_properties.unwrap().is_empty());
}

#[test]
fn non_object_bodies_are_rejected() {
    for body in [json!([]), json!("x"), json!(1), json!(null)] {
        assert_eq!(
            FlagsRequest::from_json(body),
            Err(RequestError::NotAnObject)
        );
    }
}

#[test]
fn context_borrows_the_request() {
    let project = project(json!({
        "flags": [
            {"id": 1, "key": "pro", "active": true, "filters": {"groups": [{"properties": [
                {"key": "plan", "value": "pro", "type": "person"}]}]}},
            {"id": 2, "key": "acme", "active": true, "filters": {
                "aggregation_group_type_index": 0,
                "groups": [{"properties": [
                    {"key": "$group_key", "value": "acme", "type": "group", "group_type_index": 0}]}]}},
            {"id": 3, "key": "other", "active": true, "filters": {"groups": [{}]}}
        ],
        "group_type_mapping": {"0": "company"}
    }));
    let r = parse(json!({
        "distinct_id": 5, "person_properties": {"plan": "pro", "$anon_distinct_id": "anon-p"},
        "groups": {"company": "acme"}, "flag_keys": ["pro", "acme"], "$device_id": "d"
    }));
    let ctx = r.context(now());
    assert_eq!(ctx.distinct_id, "5");
    assert_eq!(ctx.device_id, Some("d"));
    assert_eq!(ctx.anon_distinct_id, Some("anon-p"));
    assert_eq!(ctx.now, now());
    let eval = evaluate(&project, &ctx);
    assert_eq!(eval.get("pro").unwrap().value, FlagValue::True);
    assert_eq!(eval.get("acme").unwrap().value, FlagValue::True);
    assert!(eval.get("other").is_none(), "flag_keys limits the result");

    // The top-level anon id wins over the person property.
    let r =
        parse(json!({"$anon_distinct_id": "top", "person_properties": {"$anon_distinct_id": "p"}}));
    assert_eq!(r.context(now()).anon_distinct_id, Some("top"));
    // A missing distinct id reads as empty.
    assert_eq!(parse(json!({})).context(now()).distinct_id, "");
}
