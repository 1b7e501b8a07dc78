//! `conformance/response_projection_cases.json`: one evaluation outcome per case, produced by
//! the real engine from definitions built for it, projected into every response shape.
//!
//! Engine outcomes that no definition can produce (a failed evaluation: timeouts and database
//! errors come from the server's data sources) are built as a `FlagResult` over a compiled flag.

use serde_json::{json, Value};
use vexil_engine::{
    evaluate, CompiledProject, Context, ErrorCode, Evaluation, FlagResult, FlagValue, Reason,
    ReasonCode, ReasonDetail,
};
use vexil_wire::response::{ConfigFields, FullConfig};
use vexil_wire::{Envelope, FlagsResponse, ResponseShape};

use crate::support::{assert_subset, now, project, vectors};

const SHAPES: [(&str, ResponseShape); 4] = [
    ("flags_v2", ResponseShape::FlagsV2),
    ("flags_v1", ResponseShape::FlagsV1),
    ("decide_v2", ResponseShape::DecideV2),
    ("decide_v1", ResponseShape::DecideV1),
];

/// Maps in which every key is asserted: an extra flag there is a bug.
const FLAG_MAPS: [&str; 3] = ["flags", "featureFlags", "featureFlagPayloads"];

#[test]
fn conformance_projection_cases() {
    let file = vectors("response_projection_cases.json");
    let cases = file["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for case in cases {
        check(case);
    }
}

/// Builds the case's outcome, checks the engine produced it, and checks every projection.
fn check(case: &Value) {
    let id = case["id"].as_str().unwrap();
    let outcome = &case["outcome"];
    let (defs, request) = scenario(outcome);
    let project = project(defs);
    let groups = request.get("groups").and_then(Value::as_object);
    let mut ctx = Context::new("user-1", now());
    ctx.groups = groups;

    let evaluation = if let Some(code) = error_code(outcome) {
        failed_evaluation(&project, outcome, code)
    } else {
        evaluate(&project, &ctx)
    };
    assert_outcome(id, outcome, &evaluation);

    for (name, shape) in SHAPES {
        let expected = &case["projections"][name];
        let actual =
            serde_json::to_value(FlagsResponse::new(shape, &evaluation, Envelope::default()))
                .unwrap();
        assert_subset(expected, &actual, &format!("{id}/{name}"), &FLAG_MAPS);
        assert_eq!(
            actual.get("errorsWhileComputingFlags").is_some(),
            shape.has_errors_field(),
            "{id}/{name}: errorsWhileComputingFlags presence"
        );
        for absent in ["requestId", "evaluatedAt", "quotaLimited"] {
            assert!(actual.get(absent).is_none(), "{id}/{name}: {absent}");
        }
        if shape == ResponseShape::FlagsV2 {
            check_v2_record(id, outcome, &actual);
        }
    }
}

/// Fields the vector leaves out but the spec fixes: `failed` only when true, full reason and
/// metadata.
fn check_v2_record(id: &str, outcome: &Value, body: &Value) {
    let key = outcome["key"].as_str().unwrap();
    let Some(record) = body["flags"].get(key) else {
        assert_eq!(outcome["omitted"], true, "{id}: record missing");
        return;
    };
    assert_eq!(
        record.get("failed").is_some(),
        outcome["failed"] == true,
        "{id}: failed field present only when true"
    );
    let description = record["reason"]["description"].as_str().unwrap();
    assert!(!description.is_empty(), "{id}: description");
    if outcome["reason"]["code"] == "condition_match" {
        let n = outcome["reason"]["condition_index"].as_u64().unwrap() + 1;
        assert_eq!(description, format!("Matched condition set {n}"), "{id}");
    }
    assert_eq!(record["metadata"]["description"], Value::Null, "{id}");
    assert_eq!(record["metadata"]["has_experiment"], false, "{id}");
}

/// Definitions (and request groups) under which the engine yields `outcome`.
fn scenario(outcome: &Value) -> (Value, Value) {
    let key = &outcome["key"];
    let variant = outcome["variant"].as_str();
    let payload = &outcome["payload"];
    let code = outcome["reason"]["code"].as_str().unwrap();
    let index = outcome["reason"]["condition_index"].as_u64().unwrap_or(0) as usize;

    let miss = json!({"properties": [{"key": "plan", "type": "person", "operator": "exact",
                                      "value": "never-matches"}],
                      "rollout_percentage": 100});
    let mut groups: Vec<Value> = vec![miss.clone(); index];
    let mut filters = json!({});
    let mut request = json!({});
    let mut mapping = json!({});
    match code {
        "condition_match" => {
            let mut hit = json!({"rollout_percentage": 100});
            if let Some(v) = variant {
                hit["variant"] = json!(v);
                filters["multivariate"] = json!({"variants": [
                    {"key": v, "rollout_percentage": 100}
                ]});
            }
            groups.push(hit);
        }
        "no_condition_match" => groups.push(miss),
        "out_of_rollout_bound" => groups.push(json!({"rollout_percentage": 0})),
        "holdout_condition_value" => {
            let id: i64 = variant
                .unwrap()
                .strip_prefix("holdout-")
                .unwrap()
                .parse()
                .unwrap();
            filters["holdout"] = json!({"id": id, "exclusion_percentage": 100});
            groups.push(json!({"rollout_percentage": 100}));
        }
        "no_group_type" => {
            filters["aggregation_group_type_index"] = json!(0);
            mapping = json!({"0": "company"});
            request["groups"] = json!({});
            groups.push(json!({"rollout_percentage": 100}));
        }
        "missing_dependency" => groups.push(json!({"properties": [
            {"key": "999999", "type": "flag", "operator": "flag_evaluates_to", "value": true}
        ]})),
        // Failed and omitted outcomes start from a plain flag.
        _ => groups.push(json!({"rollout_percentage": 100})),
    }
    filters["groups"] = Value::Array(groups);
    if !payload.is_null() {
        filters["payloads"] = json!({ variant.unwrap_or("true"): payload });
    }
    let flag = json!({
        "id": outcome["flag_id"], "key": key, "version": outcome["flag_version"],
        "active": outcome["omitted"] != true, "filters": filters,
    });
    let defs = json!({"flags": [flag], "group_type_mapping": mapping, "cohorts": {}});
    (defs, request)
}

fn error_code(outcome: &Value) -> Option<ErrorCode> {
    if outcome["failed"] != true {
        return None;
    }
    let code = outcome["reason"]["code"].as_str().unwrap();
    let all = [
        ErrorCode::FlagDataParsingError,
        ErrorCode::CohortCycle,
        ErrorCode::HashKeyOverrideError,
        ErrorCode::DatabaseError,
        ErrorCode::Timeout,
    ];
    Some(
        all.into_iter()
            .find(|e| e.as_str() == code)
            .unwrap_or_else(|| panic!("no engine error code {code}")),
    )
}

/// What the server reports when a data source fails for this flag.
fn failed_evaluation<'p>(
    project: &'p CompiledProject,
    outcome: &Value,
    code: ErrorCode,
) -> Evaluation<'p> {
    let flag = project.flag(outcome["key"].as_str().unwrap()).unwrap();
    Evaluation {
        flags: vec![FlagResult {
            flag,
            value: FlagValue::False,
            reason: Reason {
                code: ReasonCode::Error(code),
                condition_index: None,
                detail: ReasonDetail::None,
            },
            payload: None,
        }],
        errors_while_computing_flags: true,
    }
}

fn assert_outcome(id: &str, outcome: &Value, evaluation: &Evaluation<'_>) {
    let key = outcome["key"].as_str().unwrap();
    let Some(r) = evaluation.get(key) else {
        assert_eq!(outcome["omitted"], true, "{id}: engine omitted the flag");
        return;
    };
    assert_ne!(
        outcome["omitted"], true,
        "{id}: engine should omit the flag"
    );
    assert_eq!(
        Value::Bool(r.enabled()),
        outcome["enabled"],
        "{id}: enabled"
    );
    assert_eq!(r.variant(), outcome["variant"].as_str(), "{id}: variant");
    assert_eq!(
        r.reason.code.as_str(),
        outcome["reason"]["code"],
        "{id}: code"
    );
    assert_eq!(
        r.reason.condition_index.map(|i| i as u64),
        outcome["reason"]["condition_index"].as_u64(),
        "{id}: condition_index"
    );
    assert_eq!(
        r.payload.cloned().unwrap_or(Value::Null),
        outcome["payload"],
        "{id}: payload"
    );
    assert_eq!(r.failed(), outcome["failed"] == true, "{id}: failed");
}

#[test]
fn envelope_fields_are_placed_per_shape() {
    let project = project(json!({"flags": [
        {"id": 1, "key": "on", "active": true, "filters": {"groups": [{"rollout_percentage": 100}]}}
    ]}));
    let evaluation = evaluate(&project, &Context::new("u", now()));
    let config = ConfigFields::Full(FullConfig {
        autocapture_opt_out: true,
        has_feature_flags: true,
    });
    let envelope = Envelope {
        request_id: Some("550e8400-e29b-41d4-a716-446655440000"),
        evaluated_at: Some(1_767_236_645_000),
        quota_limited: true,
        minimal_flag_called_events: true,
        config: Some(&config),
    };
    for (name, shape) in SHAPES {
        let body = serde_json::to_value(FlagsResponse::new(shape, &evaluation, envelope)).unwrap();
        assert_eq!(
            body["requestId"], "550e8400-e29b-41d4-a716-446655440000",
            "{name}"
        );
        assert_eq!(body["evaluatedAt"], 1_767_236_645_000_i64, "{name}");
        assert_eq!(body["quotaLimited"], json!(["feature_flags"]), "{name}");
        assert_eq!(body["hasFeatureFlags"], true, "{name}");
        assert_eq!(
            body["supportedCompression"],
            json!(["gzip", "gzip-js"]),
            "{name}"
        );
        assert_eq!(
            body.get("minimalFlagCalledEvents").is_some(),
            shape == ResponseShape::FlagsV2,
            "{name}"
        );
    }
}

#[test]
fn minimal_response_matches_spec() {
    let body = serde_json::to_value(FlagsResponse::empty(
        ResponseShape::FlagsV2,
        Envelope {
            config: Some(&ConfigFields::Minimal),
            ..Envelope::default()
        },
    ))
    .unwrap();
    assert_eq!(
        body,
        json!({
            "errorsWhileComputingFlags": false,
            "flags": {},
            "supportedCompression": ["gzip", "gzip-js"],
            "config": {"enable_collect_everything": true},
            "toolbarParams": {},
            "isAuthenticated": false,
            "sessionRecording": false,
        })
    );
}

#[test]
fn v2_record_matches_spec_example() {
    let project = project(json!({"flags": [{
        "id": 106, "key": "checkout-layout", "version": 5, "active": true,
        "filters": {
            "groups": [
                {"properties": [{"key": "plan", "value": "never", "type": "person"}]},
                {"rollout_percentage": 100, "variant": "compact"}
            ],
            "multivariate": {"variants": [
                {"key": "control", "rollout_percentage": 50},
                {"key": "compact", "rollout_percentage": 50}
            ]},
            "payloads": {"compact": "{\"density\":\"compact\"}"}
        }
    }]}));
    let evaluation = evaluate(&project, &Context::new("u", now()));
    let body = serde_json::to_value(FlagsResponse::new(
        ResponseShape::FlagsV2,
        &evaluation,
        Envelope::default(),
    ))
    .unwrap();
    assert_eq!(
        body["flags"]["checkout-layout"],
        json!({
            "key": "checkout-layout",
            "enabled": true,
            "variant": "compact",
            "reason": {"code": "condition_match", "condition_index": 1,
                       "description": "Matched condition set 2"},
            "metadata": {"id": 106, "version": 5, "description": null,
                         "payload": "{\"density\":\"compact\"}", "has_experiment": false}
        })
    );
}

/// `/flags?v=4` (posthog-python 7.9x): PostHog's `FlagsResponseV3` records, one typed `value`
/// instead of `enabled` + `variant`, `null` for a failed flag, `config_version` 1.
#[test]
fn v3_typed_records() {
    let project = project(json!({"flags": [
        {"id": 106, "key": "layout", "version": 5, "active": true, "filters": {
            "groups": [{"rollout_percentage": 100, "variant": "compact"}],
            "multivariate": {"variants": [
                {"key": "control", "rollout_percentage": 50},
                {"key": "compact", "rollout_percentage": 50}
            ]},
            "payloads": {"compact": "{\"density\":\"compact\"}"}
        }},
        {"id": 7, "key": "on", "active": true, "filters": {
            "groups": [{"rollout_percentage": 100}], "payloads": {"true": "1"}}},
        {"id": 8, "key": "off", "active": true, "filters": {
            "groups": [{"rollout_percentage": 0}], "payloads": {"true": "1"}}},
        {"id": 9, "key": "broken", "active": true, "filters": {
            "groups": [{"properties": [{"key": "x", "value": "1", "operator": "nope", "type": "person"}]}]}}
    ]}));
    let evaluation = evaluate(&project, &Context::new("u", now()));
    let envelope = Envelope {
        minimal_flag_called_events: true,
        ..Envelope::default()
    };
    let body = serde_json::to_value(FlagsResponse::new(
        ResponseShape::FlagsV3,
        &evaluation,
        envelope,
    ))
    .unwrap();
    assert_eq!(
        body["flags"]["layout"],
        json!({
            "key": "layout", "value": "compact",
            "reason": {"code": "condition_match", "condition_index": 0,
                       "description": "Matched condition set 1"},
            "metadata": {"id": 106, "version": 5, "config_version": 1, "description": null,
                         "payload": "{\"density\":\"compact\"}", "has_experiment": false,
                         "variant_key": "compact"}
        })
    );
    assert_eq!(body["flags"]["on"]["value"], true);
    assert_eq!(body["flags"]["on"]["metadata"]["payload"], "1");
    assert_eq!(body["flags"]["off"]["value"], false);
    assert_eq!(body["flags"]["off"]["metadata"]["payload"], Value::Null);
    assert_eq!(body["flags"]["broken"]["value"], Value::Null);
    assert_eq!(body["flags"]["broken"]["failed"], true);
    for record in body["flags"].as_object().unwrap().values() {
        assert!(record.get("enabled").is_none() && record.get("variant").is_none());
    }
    assert_eq!(body["errorsWhileComputingFlags"], true);
    assert_eq!(body["minimalFlagCalledEvents"], true);
}
