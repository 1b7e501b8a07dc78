//! Stored data unavailable (`Context::stored_unavailable`): exactly the flags whose outcome
//! would read stored data fail; flags the request decides evaluate as usual.

use serde_json::{json, Value};
use vexil_engine::{evaluate, CompiledProject, Context, ErrorCode};

use crate::support::{now, project};

fn degraded_project() -> CompiledProject {
    let f = |id: i64, key: &str, filters: Value| json!({"id": id, "key": key, "active": true, "filters": filters});
    project(json!({
        "group_type_mapping": {"0": "company"},
        "cohorts": {"1": {"type": "AND", "values": [{"key": "email", "type": "person", "value": "a@b"}]}},
        "flags": [
            f(1, "request-only", json!({"groups": [{"properties": [{"key": "email", "value": "a@b"}]}]})),
            f(2, "rollout", json!({"groups": [{"rollout_percentage": 100}]})),
            f(3, "stored-prop", json!({"groups": [{"properties": [{"key": "plan", "value": "pro"}]}]})),
            f(4, "decided-first", json!({"groups": [{"properties": [
                {"key": "email", "value": "other"}, {"key": "plan", "value": "pro"}]}]})),
            f(5, "cohort", json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": 1}]}]})),
            f(6, "static-cohort", json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": 77}]}]})),
            {"id": 7, "key": "continuity", "active": true, "ensure_experience_continuity": true,
             "filters": {"groups": [{"rollout_percentage": 50}]}},
            f(8, "depends", json!({"groups": [{"properties": [
                {"key": "3", "type": "flag", "operator": "flag_evaluates_to", "value": true}]}]})),
            f(9, "group-prop", json!({"aggregation_group_type_index": 0, "groups": [{"properties": [
                {"key": "size", "type": "group", "group_type_index": 0, "value": "big"}]}]})),
            f(10, "distinct-id", json!({"groups": [{"properties": [{"key": "distinct_id", "value": "u"}]}]})),
        ]
    }))
}

/// `(key, value, reason code, failed)` for every flag.
fn outcomes(
    project: &CompiledProject,
    unavailable: Option<ErrorCode>,
    groups: Option<&serde_json::Map<String, Value>>,
) -> Vec<(String, Value, String, bool)> {
    let props = json!({"email": "a@b"});
    let mut ctx = Context::new("u", now());
    ctx.person_properties = props.as_object();
    ctx.groups = groups;
    ctx.stored_unavailable = unavailable;
    evaluate(project, &ctx)
        .flags
        .iter()
        .map(|r| {
            (
                r.key().to_owned(),
                r.value.to_json(),
                r.reason.code.as_str().to_owned(),
                r.failed(),
            )
        })
        .collect()
}

fn row(key: &str, value: Value, code: &str, failed: bool) -> (String, Value, String, bool) {
    (key.to_owned(), value, code.to_owned(), failed)
}

#[test]
fn only_flags_that_read_stored_data_fail() {
    let p = degraded_project();
    let groups = json!({"company": "acme"});
    let got = outcomes(&p, Some(ErrorCode::Timeout), groups.as_object());
    let want = vec![
        row("request-only", json!(true), "condition_match", false),
        row("rollout", json!(true), "condition_match", false),
        row("stored-prop", json!(false), "timeout", true),
        row("decided-first", json!(false), "no_condition_match", false),
        row("cohort", json!(false), "timeout", true),
        row("static-cohort", json!(false), "timeout", true),
        row("continuity", json!(false), "hash_key_override_error", true),
        row("depends", json!(false), "timeout", true),
        row("group-prop", json!(false), "timeout", true),
        row("distinct-id", json!(true), "condition_match", false),
    ];
    let mut got = got;
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = want;
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
}

#[test]
fn skipped_groups_need_no_stored_data_and_the_code_is_the_callers() {
    let p = degraded_project();
    let got = outcomes(&p, Some(ErrorCode::DatabaseError), None);
    let find = |key: &str| got.iter().find(|r| r.0 == key).unwrap().clone();
    assert_eq!(
        find("group-prop"),
        row("group-prop", json!(false), "no_group_type", false)
    );
    assert_eq!(
        find("stored-prop"),
        row("stored-prop", json!(false), "database_error", true)
    );
}

#[test]
fn with_stored_data_available_nothing_fails() {
    let p = degraded_project();
    let got = outcomes(&p, None, None);
    assert!(got.iter().all(|r| !r.3), "{got:?}");
}
