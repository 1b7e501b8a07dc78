//! Recorded SDK requests (`conformance/wire_examples/*.json`) decode and parse, as sent (JSON,
//! and gzip the way the SDKs can send it).

use serde_json::Value;
use vexil_wire::capture;
use vexil_wire::{decode, BodyEncoding, FlagsQuery, FlagsRequest, ResponseShape};

use crate::support::{gzip, vectors};

/// The example's body, serialized and decoded through the one decoder with its headers.
fn decoded(example: &Value, gzipped: bool) -> Value {
    let raw = serde_json::to_vec(&example["body"]).unwrap();
    let content_type = example["headers"]["Content-Type"].as_str();
    let (body, encoding) = if gzipped {
        (gzip(&raw), Some("gzip"))
    } else {
        (raw, None)
    };
    let enc = BodyEncoding {
        content_type,
        content_encoding: encoding,
        compression: None,
    };
    decode(enc, &body).unwrap()
}

fn query_of(example: &Value) -> FlagsQuery {
    let url = example["url"].as_str().unwrap();
    FlagsQuery::parse(url.split_once('?').map_or("", |(_, q)| q))
}

#[test]
fn python_flags_request() {
    let ex = vectors("wire_examples/python_flags_request.json");
    assert_eq!(
        ResponseShape::select(false, &query_of(&ex)),
        ResponseShape::FlagsV2
    );
    for gz in [false, true] {
        let r = FlagsRequest::from_json(decoded(&ex, gz)).unwrap();
        assert_eq!(r.token(), Some("phc_snapshot_project"));
        assert_eq!(r.distinct_id.as_deref(), Some("user-123"));
        assert_eq!(r.device_id.as_deref(), Some("device-789"));
        assert_eq!(
            r.flag_keys.as_deref().unwrap(),
            ["checkout-redesign", "new-billing"]
        );
        assert!(!r.geoip_disable);
        assert_eq!(r.groups.as_ref().unwrap()["company"], "company-456");
        let company = &r.group_properties.as_ref().unwrap()["company"];
        assert_eq!(company["$group_key"], "company-456");
        assert_eq!(company["employees"], 42);
        assert_eq!(r.person_properties.as_ref().unwrap()["plan"], "pro");
    }
}

#[test]
fn node_flags_request() {
    let ex = vectors("wire_examples/node_flags_request.json");
    let r = FlagsRequest::from_json(decoded(&ex, false)).unwrap();
    assert_eq!(r.token(), Some("<redacted>"));
    assert_eq!(r.distinct_id.as_deref(), Some("person-flags"));
    assert_eq!(r.device_id.as_deref(), Some("device-3"));
    assert_eq!(
        r.evaluation_contexts.as_deref().unwrap(),
        ["production", "backend"]
    );
    assert_eq!(
        r.flag_keys.as_deref().unwrap(),
        ["new-checkout", "billing-v2"]
    );
    let gp = r.group_properties.as_ref().unwrap();
    assert_eq!(gp["project"]["$group_key"], "project-9");
    assert_eq!(gp["company"]["seats"], 42);
}

#[test]
fn python_batch_request() {
    let ex = vectors("wire_examples/python_batch_request.json");
    for gz in [false, true] {
        let b = capture::parse(decoded(&ex, gz)).unwrap();
        assert_eq!(b.token, "phc_snapshot_project");
        assert_eq!(b.sent_at.as_deref(), Some("2026-01-02T03:04:05+00:00"));
        assert!(!b.historical_migration);
        assert_eq!(b.events.len(), 2);
        let [order, set] = &b.events[..] else {
            panic!("two events")
        };
        assert_eq!(order.event, "order completed");
        assert_eq!(order.distinct_id, "user-123");
        assert_eq!(order.properties["amount"], 29.5);
        assert_eq!(
            order.timestamp.as_deref(),
            Some("2026-01-02T03:04:05+00:00")
        );
        assert_eq!(
            order.uuid.as_deref(),
            Some("00000000-0000-4000-8000-000000000001")
        );
        assert_eq!(set.event, "$set");
        assert_eq!(set.person_set().unwrap()["email"], "person@example.com");
    }
}
