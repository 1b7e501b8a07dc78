//! The local-evaluation payload (spec §2.3) and its ETag (§2.4).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use vexil_engine::{evaluate, CompiledProject, Context, Definitions, FlagValue};
use vexil_wire::definitions::{body, etag, if_none_match};
use vexil_wire::FeedOptions;

use crate::support::now;

fn defs(v: Value) -> Definitions {
    serde_json::from_value(v).unwrap()
}

fn feed(d: &Definitions, options: FeedOptions) -> Value {
    serde_json::from_slice(&body(d, options).unwrap()).unwrap()
}

#[test]
fn payload_shape() {
    let d = defs(json!({
        "flags": [
            {"id": 1, "key": "on", "active": true, "team_id": 9, "filters": {"groups": [{"rollout_percentage": 100}]}},
            {"id": 2, "key": "off", "active": false, "filters": {"groups": []}},
            {"id": 3, "key": "gone", "deleted": true, "filters": {}}
        ],
        "group_type_mapping": {"0": "company"},
        "cohorts": {"98": {"type": "OR", "values": []}}
    }));
    let v = feed(&d, FeedOptions::default());
    let keys: Vec<&str> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["on", "off"],
        "deleted flags are left out, inactive kept"
    );
    assert_eq!(v["flags"][1]["active"], false);
    assert_eq!(v["flags"][0]["team_id"], 9);
    assert_eq!(v["group_type_mapping"], json!({"0": "company"}));
    assert_eq!(v["cohorts"], json!({"98": {"type": "OR", "values": []}}));
    assert!(v.get("property_matching_version").is_none());
    assert!(v.get("minimal_flag_called_events").is_none());

    let v = feed(
        &d,
        FeedOptions {
            property_matching_version: Some(2),
            minimal_flag_called_events: Some(true),
        },
    );
    assert_eq!(v["property_matching_version"], 2);
    assert_eq!(v["minimal_flag_called_events"], true);

    // Empty definitions still carry all three keys SDKs require.
    let v = feed(&Definitions::default(), FeedOptions::default());
    assert_eq!(
        v,
        json!({"flags": [], "group_type_mapping": {}, "cohorts": {}})
    );
}

#[test]
fn flag_dependencies_in_feed_form() {
    let d = defs(json!({"flags": [
        {"id": 10, "key": "base", "active": true, "filters": {"groups": [{"rollout_percentage": 100}]}},
        {"id": 11, "key": "mid", "active": true, "filters": {"groups": [{"properties": [
            {"key": "10", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}},
        {"id": 12, "key": "top", "active": true, "filters": {"groups": [{"properties": [
            {"key": "11", "type": "flag", "operator": "flag_evaluates_to", "value": true},
            {"key": "email", "type": "person", "operator": "is_set"}]}]}},
        {"id": 13, "key": "orphan", "active": true, "filters": {"groups": [{"properties": [
            {"key": "999", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}},
        {"id": 14, "key": "cyc-a", "active": true, "filters": {"groups": [{"properties": [
            {"key": "15", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]}},
        {"id": 15, "key": "cyc-b", "active": true, "filters": {"groups": [{"properties": [
            {"key": "cyc-a", "type": "flag", "operator": "flag_evaluates_to", "value": true,
             "dependency_chain": ["stale"]}]}]}}
    ]}));
    let v = feed(&d, FeedOptions::default());
    let filter = |flag: usize| v["flags"][flag]["filters"]["groups"][0]["properties"][0].clone();
    assert_eq!(filter(1)["key"], "base");
    assert_eq!(filter(1)["dependency_chain"], json!(["base"]));
    assert_eq!(filter(2)["key"], "mid");
    assert_eq!(filter(2)["dependency_chain"], json!(["base", "mid"]));
    assert_eq!(
        v["flags"][2]["filters"]["groups"][0]["properties"][1],
        json!({"key": "email", "type": "person", "operator": "is_set"}),
        "person filters are untouched"
    );
    assert_eq!(filter(3)["key"], "999");
    assert_eq!(filter(3)["dependency_chain"], json!([]));
    assert_eq!(filter(4)["key"], "cyc-b");
    assert_eq!(filter(4)["dependency_chain"], json!([]));
    assert_eq!(filter(5)["dependency_chain"], json!([]));
    // Flags without dependencies are served exactly as given.
    assert_eq!(v["flags"][0], serde_json::to_value(&d.flags[0]).unwrap());

    // The feed compiles to the same results as the stored form.
    let fed: Definitions = serde_json::from_value(v).unwrap();
    let (a, b) = (CompiledProject::compile(&d), CompiledProject::compile(&fed));
    let props = json!({"email": "a@b.c"});
    let mut ctx = Context::new("u", now());
    ctx.person_properties = props.as_object();
    let (ea, eb) = (evaluate(&a, &ctx), evaluate(&b, &ctx));
    for key in ["base", "mid", "top", "orphan", "cyc-a", "cyc-b"] {
        let (ra, rb) = (ea.get(key).unwrap(), eb.get(key).unwrap());
        assert_eq!((ra.value, ra.reason), (rb.value, rb.reason), "{key}");
    }
    assert_eq!(ea.get("top").unwrap().value, FlagValue::True);
}

#[test]
fn etag_is_quoted_sha256_of_the_bytes() {
    let bytes = body(&Definitions::default(), FeedOptions::default()).unwrap();
    let tag = etag(&bytes);
    let hex: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(tag, format!("\"{hex}\""));
    assert_eq!(tag.len(), 66);
    assert_eq!(
        etag(b""),
        "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\""
    );
    // Same definitions, same bytes, same tag.
    assert_eq!(
        etag(&body(&Definitions::default(), FeedOptions::default()).unwrap()),
        tag
    );
}

#[test]
fn if_none_match_forms() {
    let tag = "\"abc123\"";
    assert!(if_none_match("\"abc123\"", tag));
    assert!(if_none_match("W/\"abc123\"", tag));
    assert!(if_none_match("abc123", tag));
    assert!(if_none_match("\"x\", \"abc123\"", tag));
    assert!(if_none_match("*", tag));
    assert!(!if_none_match("\"abc124\"", tag));
    assert!(!if_none_match("", tag));
    assert!(!if_none_match(" , ", tag));
}

#[test]
fn evaluation_tags_are_listed_under_both_names_and_read_back_from_either() {
    let d = defs(json!({"flags": [
        {"id": 1, "key": "tagged", "evaluation_contexts": ["web", "docs"], "filters": {"groups": []}},
        {"id": 2, "key": "legacy", "evaluation_tags": ["app"], "filters": {"groups": []}},
        {"id": 3, "key": "plain", "filters": {"groups": []}}
    ]}));
    assert_eq!(
        d.flags[0].evaluation_tags,
        Some(vec!["web".to_owned(), "docs".to_owned()])
    );
    let body = body(&d, FeedOptions::default()).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    for (i, tags) in [json!(["web", "docs"]), json!(["app"])].iter().enumerate() {
        assert_eq!(&v["flags"][i]["evaluation_contexts"], tags, "flag {i}");
        assert_eq!(&v["flags"][i]["evaluation_tags"], tags, "flag {i}");
    }
    assert!(v["flags"][2].get("evaluation_contexts").is_none());
    // The feed parses back (both names present is not a duplicate field).
    let again: Definitions = serde_json::from_slice(&body).unwrap();
    assert_eq!(again.flags, d.flags);
}
