//! The direct `/flags?v=2` writer is byte-identical to serde serialisation, for any flags, also
//! when it writes from the record parts and whole records earlier responses left in each
//! flag's memo.

use proptest::prelude::*;
use serde_json::{json, Value};
use vexil_engine::{evaluate, CompiledProject, Context, Definitions};
use vexil_wire::request::ResponseShape;
use vexil_wire::response::{ConfigFields, Envelope, FlagsResponse};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,12}",
        "[a-z\"\\\\/\u{0}-\u{1f}\u{7f}é漢🦀 ]{1,8}",
    ]
}

fn payload() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        "[a-z\"{}:,\\\\ ]{0,12}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        Just(json!({"a": [1, "b\"", null]})),
    ]
}

fn flag() -> impl Strategy<Value = Value> {
    (text(), text(), payload(), payload(), 0u8..10, any::<bool>(), -5i64..100_000)
        .prop_map(|(key, variant, payload, other_payload, kind, experiment, id)| {
            let filters = match kind {
                // Enabled boolean with a payload.
                0 => json!({"groups": [{}], "payloads": {"true": payload}}),
                // A variant (override), payload keyed by it.
                1 => json!({"groups": [{"variant": variant}],
                            "multivariate": {"variants": [{"key": variant, "rollout_percentage": 100}]},
                            "payloads": {variant: payload}}),
                // Two variants, each with its payload: users get either.
                4 => json!({"groups": [{}],
                            "multivariate": {"variants": [{"key": "a", "rollout_percentage": 50},
                                                          {"key": "b", "rollout_percentage": 50}]},
                            "payloads": {"a": payload, "b": other_payload, "true": "unused"}}),
                // Half the users out of the rollout.
                5 => json!({"groups": [{"rollout_percentage": 50}], "payloads": {"true": payload}}),
                // A group flag: no group sent.
                6 => json!({"aggregation_group_type_index": 0, "groups": [{}]}),
                // The second condition matches ("Matched condition set 2").
                7 => json!({"groups": [{"properties": [{"key": "x", "value": "nope"}]}, {}]}),
                // Twelve variants, more than a flag keeps whole records for: later outcomes
                // are written from the parts.
                8 => {
                    let variants: Vec<Value> = (0..12)
                        .map(|i| json!({"key": format!("{variant}{i}"), "rollout_percentage": if i < 4 { 9 } else { 8 }}))
                        .collect();
                    json!({"groups": [{"rollout_percentage": 90}], "multivariate": {"variants": variants},
                           "payloads": {format!("{variant}3"): payload}})
                }
                // Users out of the first condition's rollout match the second: records that
                // differ only in the condition index.
                9 => json!({"groups": [{"rollout_percentage": 50}, {}], "payloads": {"true": payload}}),
                // Disabled by targeting.
                2 => json!({"groups": [{"properties": [{"key": "x", "value": "nope"}]}]}),
                // Broken: failed record.
                _ => json!({"groups": [{"properties": [{"key": "x", "operator": "bogus", "value": 1}]}]}),
            };
            json!({"id": id, "key": key, "version": id % 7, "active": true,
                   "has_experiment": experiment, "filters": filters})
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn direct_writer_matches_serde(
        flags in prop::collection::vec(flag(), 0..8),
        request_id in prop::option::of(text()),
        evaluated_at in prop::option::of(any::<i64>()),
        quota_limited in any::<bool>(),
        minimal in any::<bool>(),
        config in any::<bool>(),
    ) {
        let defs: Definitions = serde_json::from_value(json!({"flags": flags})).unwrap();
        let project = CompiledProject::compile(&defs);
        let config_fields = ConfigFields::Minimal;
        let envelope = Envelope {
            request_id: request_id.as_deref(),
            evaluated_at,
            quota_limited,
            minimal_flag_called_events: minimal,
            config: config.then_some(&config_fields),
        };
        // Later users are written from the parts and the whole records earlier responses
        // memoised.
        for user in 0..24 {
            let user = format!("user-{user}");
            let eval = evaluate(&project, &Context::new(&user, chrono::DateTime::UNIX_EPOCH));
            for shape in [ResponseShape::FlagsV3, ResponseShape::FlagsV2, ResponseShape::FlagsV1, ResponseShape::DecideV1, ResponseShape::DecideV2] {
                let body = FlagsResponse::new(shape, &eval, envelope);
                let mut direct = Vec::new();
                body.write_json(&mut direct).unwrap();
                let serde = serde_json::to_vec(&body).unwrap();
                prop_assert_eq!(String::from_utf8_lossy(&direct), String::from_utf8_lossy(&serde));
            }
        }
    }
}

/// A flag whose memo another caller filled first is still written right (its parts are made
/// for the record instead).
#[test]
fn direct_writer_without_the_memo_matches_serde() {
    let defs: Definitions = serde_json::from_value(json!({"flags": [
        {"id": 1, "key": "with-payload", "active": true,
         "filters": {"groups": [{}], "payloads": {"true": {"a": 1}}}},
    ]}))
    .unwrap();
    let project = CompiledProject::compile(&defs);
    for flag in project.flags() {
        assert_eq!(
            flag.memo(|_| "another caller's value"),
            Some(&"another caller's value")
        );
    }
    let eval = evaluate(
        &project,
        &Context::new("user", chrono::DateTime::UNIX_EPOCH),
    );
    for shape in [ResponseShape::FlagsV2, ResponseShape::FlagsV3] {
        let body = FlagsResponse::new(shape, &eval, Envelope::default());
        let mut direct = Vec::new();
        body.write_json(&mut direct).unwrap();
        assert_eq!(direct, serde_json::to_vec(&body).unwrap());
        assert!(String::from_utf8_lossy(&direct).contains(r#""payload":{"a":1}"#));
    }
}
