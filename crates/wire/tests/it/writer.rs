//! The direct `/flags?v=2` writer is byte-identical to serde serialisation, for any flags.

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
    (text(), text(), payload(), 0u8..4, any::<bool>(), -5i64..100_000)
        .prop_map(|(key, variant, payload, kind, experiment, id)| {
            let filters = match kind {
                // Enabled boolean with a payload.
                0 => json!({"groups": [{}], "payloads": {"true": payload}}),
                // A variant (override), payload keyed by it.
                1 => json!({"groups": [{"variant": variant}],
                            "multivariate": {"variants": [{"key": variant, "rollout_percentage": 100}]},
                            "payloads": {variant: payload}}),
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
        let eval = evaluate(&project, &Context::new("user", chrono::DateTime::UNIX_EPOCH));
        let config_fields = ConfigFields::Minimal;
        let envelope = Envelope {
            request_id: request_id.as_deref(),
            evaluated_at,
            quota_limited,
            minimal_flag_called_events: minimal,
            config: config.then_some(&config_fields),
        };
        for shape in [ResponseShape::FlagsV3, ResponseShape::FlagsV2, ResponseShape::FlagsV1, ResponseShape::DecideV1, ResponseShape::DecideV2] {
            let body = FlagsResponse::new(shape, &eval, envelope);
            let mut direct = Vec::new();
            body.write_json(&mut direct).unwrap();
            let serde = serde_json::to_vec(&body).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&direct), String::from_utf8_lossy(&serde));
        }
    }
}
