//! Properties: no input panics the decoder or the parsers, and decoding round-trips.

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use vexil_engine::evaluate;
use vexil_wire::{
    capture, decode, BodyEncoding, Decoder, Envelope, FlagsQuery, FlagsRequest, FlagsResponse,
    ResponseShape,
};

use crate::support::{gzip, now, project};

/// Body fields the parsers read (`/flags` and capture), aliases included, and `Token`, which
/// differs from one only in case.
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
    "disable_geoip",
    "evaluation_contexts",
    "evaluation_environments",
    "evaluation_runtime",
    "timezone",
    "cookieless_hash_extra",
    "ip_address",
    "Token",
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

/// A token field's value: mostly one of two tokens, sometimes empty, `null` or not a string.
fn token_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => proptest::sample::select(vec!["phc_a", "phc_b"]).prop_map(Value::from),
        1 => Just(Value::from("")),
        1 => Just(Value::Null),
        1 => Just(Value::from(7)),
    ]
}

/// An object with some of `names` set to token values, over arbitrary other fields.
fn with_tokens(names: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::collection::vec((proptest::sample::select(names), token_value()), 0..3),
        prop::collection::vec((key(), json_value()), 0..3),
    )
        .prop_map(|(tokens, other)| {
            other
                .into_iter()
                .chain(tokens.into_iter().map(|(k, v)| (k.to_owned(), v)))
                .collect()
        })
}

/// Capture-shaped bodies whose tokens sit at every place a token can be.
fn capture_like() -> impl Strategy<Value = Value> {
    const TOKENS: &[&str] = &["api_key", "token", "$token"];
    let event = || {
        (
            with_tokens(TOKENS),
            prop::option::of(with_tokens(&["token", "$token"])),
        )
            .prop_map(|(mut event, properties)| {
                event.insert("event".into(), "e".into());
                event.insert("distinct_id".into(), "d".into());
                if let Some(p) = properties {
                    event.insert("properties".into(), Value::Object(p));
                }
                Value::Object(event)
            })
    };
    let events = || prop::collection::vec(event(), 0..4);
    prop_oneof![
        event(),
        events().prop_map(Value::Array),
        (with_tokens(TOKENS), events()).prop_map(|(mut batch, events)| {
            batch.insert("batch".into(), Value::Array(events));
            Value::Object(batch)
        }),
    ]
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

    /// The token skims (read before a body is parsed, to refuse unknown tokens cheaply) settle
    /// on the token the parsers settle on, and fail only where the parsers fail.
    #[test]
    fn token_skims_agree_with_the_parsers(value in prop_oneof![json_value(), capture_like()]) {
        let text = serde_json::to_string(&value).unwrap();
        let json = Decoder::default().decode_text(BodyEncoding::default(), text.as_bytes()).unwrap();
        match (capture::token_of(&json), capture::parse(value.clone())) {
            (Ok(Some(token)), Ok(batch)) => prop_assert_eq!(token, batch.token),
            (Ok(None), Ok(batch)) => prop_assert!(false, "skim found no token, parse found {}", batch.token),
            (Err(e), Ok(_)) => prop_assert!(false, "skim failed ({e}) where parse succeeded"),
            (_, Err(_)) => {}
        }
        match (FlagsRequest::token_of(&json), FlagsRequest::from_json(value)) {
            (Ok(token), Ok(request)) => prop_assert_eq!(token.as_deref(), request.token()),
            (Err(skim), Err(parse)) => prop_assert_eq!(skim, parse),
            (Err(e), Ok(_)) => prop_assert!(false, "skim failed ({e}) where parse succeeded"),
            (Ok(_), Err(_)) => {}
        }
    }

    /// The one-pass decode of `/flags` bodies (`decode_text_skimmed` with the token skim)
    /// decodes to the same text and settles on the same token, or fails the same way, as
    /// decoding, checking and then skimming: on JSON with and without a token, JSON cut short
    /// or with a bare `NaN`, arrays, base64 and arbitrary bytes, under every content type and
    /// compression.
    #[test]
    fn the_skimmed_decode_agrees_with_decoding_then_skimming(
        value in prop_oneof![json_value(), with_tokens(&["token", "api_key", "$token"]).prop_map(Value::Object)],
        mangle in 0u8..6,
        at in any::<prop::sample::Index>(),
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        content_type in content_type(),
        compression in compression(),
    ) {
        let text = serde_json::to_string(&value).unwrap();
        let body: Vec<u8> = match mangle {
            0 => text.into_bytes(),
            1 => text.as_bytes()[..at.index(text.len() + 1)].to_vec(),
            2 => text.replacen(':', ":NaN,\"x\":", 1).into_bytes(),
            3 => format!("[{text}]").into_bytes(),
            4 => base64::engine::general_purpose::STANDARD.encode(&text).into_bytes(),
            _ => bytes,
        };
        let enc = BodyEncoding { content_type, content_encoding: None, compression };
        let decoder = Decoder::default();
        let owned = |t: Result<Option<std::borrow::Cow<'_, str>>, _>| t.map(|t| t.map(|t| t.into_owned()));
        let checked = decoder
            .decode_text(enc, &body)
            .map(|text| (text.as_str().to_owned(), owned(FlagsRequest::token_of(&text))))
            .map_err(|e| e.to_string());
        let skimmed = decoder
            .decode_text_skimmed(enc, &body, FlagsRequest::skim_token)
            .map(|(text, skimmed)| {
                let token = skimmed.unwrap_or_else(|| owned(FlagsRequest::token_of(&text)));
                (text.as_str().to_owned(), token)
            })
            .map_err(|e| e.to_string());
        prop_assert_eq!(skimmed, checked);
    }

    /// A `/flags` body parsed straight into its known fields ([`FlagsBody`]) gives the request,
    /// or the error, that parsing its `Value` tree gives: with repeated, escaped and unknown
    /// keys, `null`s, wrong types, out-of-range numbers, lone surrogates and deep nesting.
    #[test]
    fn flags_bodies_parse_as_their_value_trees_do(text in flags_body_text()) {
        prop_assert_eq!(parse_both(&text).0, parse_both(&text).1);
    }

    #[test]
    fn query_parsing_never_panics(q in ".{0,64}") {
        let query = FlagsQuery::parse(&q);
        let _ = ResponseShape::select(true, &query);
        let _ = ResponseShape::select(false, &query);
        let _ = query.compression();
    }
}

/// A value's text, including what no `Value` holds: an out-of-range number, a lone surrogate,
/// nesting past the parser's limit (and just under it).
fn member_value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => json_value().prop_map(|v| v.to_string()),
        2 => token_value().prop_map(|v| v.to_string()),
        1 => Just("1e400".to_owned()),
        1 => Just(r#""\ud800""#.to_owned()),
        1 => Just(format!("{}1{}", "[".repeat(130), "]".repeat(130))),
        1 => Just(format!("{}1{}", "[".repeat(126), "]".repeat(126))),
        1 => Just(r#"{"company": "acme", "n": 3}"#.to_owned()),
        1 => Just(r#"["a", "b", 3]"#.to_owned()),
    ]
}

/// A body's text written member by member, so that keys can repeat, be escaped or be invalid.
fn flags_body_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        6 => proptest::sample::select(KNOWN_KEYS).prop_map(|k| format!("{k:?}")),
        1 => key().prop_map(|k| Value::from(k).to_string()),
        1 => Just(r#""\u0074oken""#.to_owned()),
        1 => Just(r#""\udc00""#.to_owned()),
    ];
    let object = prop::collection::vec((key, member_value()), 0..8).prop_map(|members| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("{{{}}}", members.join(","))
    });
    prop_oneof![
        6 => object,
        1 => member_value().prop_map(|v| format!("[{v}]")),
        1 => member_value(),
    ]
}

type Parsed = Result<Result<FlagsRequest, vexil_wire::request::RequestError>, String>;

/// `text` parsed into its known fields, and into a `Value` tree, each then read as a request.
fn parse_both(text: &str) -> (Parsed, Parsed) {
    // Text the decoder refuses is never parsed.
    let json = match Decoder::default().decode_text(BodyEncoding::default(), text.as_bytes()) {
        Ok(json) => json,
        Err(e) => return (Err(e.to_string()), Err(e.to_string())),
    };
    let direct = json
        .parse::<vexil_wire::request::FlagsBody>()
        .map(FlagsRequest::from_body)
        .map_err(|e| e.to_string());
    let via_tree = json
        .parse::<Value>()
        .map(FlagsRequest::from_json)
        .map_err(|e| e.to_string());
    (direct, via_tree)
}

#[test]
fn flags_body_edge_cases() {
    let request = |text: &str| {
        let (direct, via_tree) = parse_both(text);
        assert_eq!(direct, via_tree, "{text}");
        direct
    };
    // An out-of-range number or a lone surrogate in an unknown field fails the parse.
    assert!(request(r#"{"token": "phc_a", "x": 1e400}"#).is_err());
    assert!(request(r#"{"token": "phc_a", "x": "\ud800"}"#).is_err());
    assert!(request(r#"{"token": "phc_a", "\udc00": 1}"#).is_err());
    // Nesting is counted from the top: 127 levels inside the body pass, 128 fail.
    let nested = |n: usize| format!(r#"{{"x": {}1{}}}"#, "[".repeat(n), "]".repeat(n));
    assert!(request(&nested(126)).is_ok());
    assert!(request(&nested(128)).is_err());
    // A repeated field keeps its last value, `null` included; an escaped name is the name.
    let token = |text: &str| request(text).unwrap().unwrap().token;
    assert_eq!(token(r#"{"token": "a", "token": "b"}"#), Some("b".into()));
    assert_eq!(
        token(r#"{"token": "a", "api_key": "k", "token": null}"#),
        Some("k".into())
    );
    assert_eq!(token(r#"{"\u0074oken": "t"}"#), Some("t".into()));
    // Not an object: the request's error, after the whole text is checked.
    assert_eq!(
        request("[1, 2]").unwrap().unwrap_err(),
        vexil_wire::request::RequestError::NotAnObject
    );
    assert!(request("[1e400]").is_err());
}
