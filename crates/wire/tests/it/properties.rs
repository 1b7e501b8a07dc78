//! Properties: no input panics the decoder or the parsers, and decoding round-trips.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use vexil_engine::evaluate;
use vexil_wire::{
    capture, decode, BodyEncoding, Envelope, FlagsQuery, FlagsRequest, FlagsResponse, ResponseShape,
};

use crate::support::{gzip, now, project};

const KNOWN_KEYS: &[&str] = &[
    "token",
    "api_key",
    "$token",
    "distinct_id",
    "$distinct_id",
    "groups",
    "$groups",
    "person_properties",
    "$properties",
    "group_properties",
    "$group_properties",
    "$anon_distinct_id",
    "anon_distinct_id",
    "$device_id",
    "device_id",
    "flag_keys",
    "flag_keys_to_evaluate",
    "disable_flags",
    "geoip_disable",
    "evaluation_contexts",
    "evaluation_runtime",
    "timezone",
    "batch",
    "event",
    "properties",
    "$set",
    "$set_once",
    "timestamp",
    "uuid",
    "offset",
    "sent_at",
    "company",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KNOWN_KEYS).prop_map(str::to_owned),
        1 => "[a-z$_]{0,6}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "[a-z€🚩]{190,210}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    proptest::sample::select(vec![
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("image/png"),
        Some(""),
    ])
}

fn compression() -> impl Strategy<Value = Option<&'static str>> {
    proptest::sample::select(vec![
        None,
        Some("gzip"),
        Some("gzip-js"),
        Some("base64"),
        Some("lz64"),
        Some(""),
    ])
}

/// Parses with every parser and projects into every shape; must not panic.
fn exercise(value: Value) {
    let _ = capture::parse(value.clone());
    if let Ok(request) = FlagsRequest::from_json(value) {
        if let Some(id) = &request.distinct_id {
            assert!(id.chars().count() <= 200);
        }
        let project = project(json!({"flags": [
            {"id": 1, "key": "beta", "active": true,
             "filters": {"groups": [{"properties": [{"key": "plan", "value": "pro"}], "rollout_percentage": 50}],
                         "payloads": {"true": {"a": 1}}}},
            {"id": 2, "key": "org", "active": true,
             "filters": {"aggregation_group_type_index": 0, "groups": [{"rollout_percentage": 100}]}}
        ], "group_type_mapping": {"0": "company"}}));
        let evaluation = evaluate(&project, &request.context(now()));
        for shape in [
            ResponseShape::FlagsV2,
            ResponseShape::FlagsV1,
            ResponseShape::DecideV2,
            ResponseShape::DecideV1,
        ] {
            let body = FlagsResponse::new(shape, &evaluation, Envelope::default());
            serde_json::to_vec(&body).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoder_never_panics_on_bytes(
        body in prop::collection::vec(any::<u8>(), 0..512),
        content_type in content_type(),
        content_encoding in proptest::sample::select(vec![None, Some("gzip"), Some("br")]),
        compression in compression(),
        gzip_prefix in any::<bool>(),
    ) {
        let mut body = body;
        if gzip_prefix {
            body.splice(0..0, [0x1f, 0x8b]);
        }
        let enc = BodyEncoding { content_type, content_encoding, compression };
        if let Ok(value) = decode(enc, &body) {
            exercise(value);
        }
    }

    #[test]
    fn parsers_never_panic_on_json(value in json_value()) {
        exercise(value);
    }

    #[test]
    fn decoding_round_trips(value in json_value(), gzipped in any::<bool>(), text in any::<bool>()) {
        let raw = serde_json::to_vec(&value).unwrap();
        let body = if gzipped { gzip(&raw) } else { raw };
        let ct = if text { Some("text/plain") } else { None };
        let decoded = decode(BodyEncoding { content_type: ct, ..BodyEncoding::default() }, &body).unwrap();
        prop_assert_eq!(decoded, value);
    }

    #[test]
    fn query_parsing_never_panics(q in ".{0,64}") {
        let query = FlagsQuery::parse(&q);
        let _ = ResponseShape::select(true, &query);
        let _ = ResponseShape::select(false, &query);
        let _ = query.compression();
    }
}
