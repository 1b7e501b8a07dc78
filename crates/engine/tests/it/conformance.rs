//! The shared conformance vectors in `conformance/`, run against the engine.

use serde_json::{json, Value};
use vexil_engine::hash::{hash01, in_rollout};
use vexil_engine::property::{MatchOptions, Operator, PropertyCheck};

use crate::support::{now, project, value_of, vectors};

#[test]
fn hash_vectors() {
    let v = vectors("hash_vectors.json");
    let list = v["vectors"].as_array().unwrap();
    assert!(list.len() >= 20);
    for case in list {
        let got = hash01(
            case["prefix"].as_str().unwrap(),
            case["identifier"].as_str().unwrap(),
            case["salt"].as_str().unwrap(),
        );
        assert_eq!(got, case["hash01"].as_f64().unwrap(), "{}", case["id"]);
    }
}

#[test]
fn threshold_vectors() {
    let v = vectors("hash_vectors.json");
    for case in v["threshold_vectors"].as_array().unwrap() {
        let hash = case["hash01"].as_f64().unwrap();
        let pct = case["rollout_percentage"].as_f64().unwrap();
        assert_eq!(
            in_rollout(hash, pct),
            case["included"].as_bool().unwrap(),
            "{}",
            case["id"]
        );
    }

    // The same vectors through a compiled flag. As with the variant vectors, only the zero hash
    // is taken verbatim (the empty identifier); the rest is realised on user-17, whose
    // beta-search rollout hash is the published vector hash.rollout.ascii_division_edge.
    let anchor = v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "hash.rollout.ascii_division_edge")
        .unwrap();
    assert_eq!(anchor["prefix"], "beta-search.");
    assert_eq!(anchor["salt"], "");
    let (id, h) = (anchor["identifier"].as_str().unwrap(), 0.009101217133290002);
    assert_eq!(anchor["hash01"].as_f64().unwrap(), h);
    // The binary64 facts the rows rely on.
    assert_eq!(0.9101217133290002 / 100.0, h); // the bound is exactly the hash…
    assert!(h * 100.0 > 0.9101217133290002); // …which comparing hash × 100 would exclude
    assert!(0.910121713329 / 100.0 < h); // the next bound down

    let rows: &[(&str, &str, f64, bool)] = &[
        ("threshold.equal_is_included", id, 0.9101217133290002, true),
        (
            "threshold.next_binary64_above_is_excluded",
            id,
            0.910121713329,
            false,
        ),
        ("threshold.zero_percent_zero_hash", "", 0.0, true),
        ("threshold.zero_percent_smallest_hash", id, 0.0, false),
        ("threshold.hundred_percent_short_circuit", id, 100.0, true),
        (
            "threshold.two_decimal_division_equal",
            id,
            0.9101217133290002,
            true,
        ),
        (
            "threshold.two_decimal_division_excluded",
            id,
            0.910121713329,
            false,
        ),
        (
            "threshold.two_decimal_division_included_below_quotient",
            id,
            1.0,
            true,
        ),
    ];
    let named: Vec<&str> = v["threshold_vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let realised: Vec<&str> = rows.iter().map(|r| r.0).collect();
    assert_eq!(realised, named, "every threshold vector has a row");
    assert_eq!(v["threshold_vectors"][2]["hash01"], 0.0);
    assert_eq!(v["threshold_vectors"][2]["rollout_percentage"], 0);

    for (name, distinct_id, pct, included) in rows {
        let p = project(
            json!({"flags": [{"id": 1, "key": "beta-search", "active": true,
            "filters": {"groups": [{"rollout_percentage": pct}]}}]}),
        );
        assert_eq!(
            value_of(&p, "beta-search", distinct_id),
            json!(included),
            "{name}"
        );
    }
}

/// The variant-boundary vectors, through a compiled flag. The vectors state their hash directly
/// (0.5, 0.3, …), which no identifier produces except `0.0` (the engine's empty identifier), so
/// each rule is realised on `user-61`, whose `checkout-layout` variant hash is a published vector:
/// the percentages are chosen so that a boundary lands exactly on (or next to) that hash.
#[test]
fn variant_boundary_vectors() {
    let v = vectors("hash_vectors.json");
    let anchor = v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "hash.variant.ascii")
        .unwrap();
    assert_eq!(anchor["prefix"], "checkout-layout.");
    assert_eq!(anchor["salt"], "variant");
    let (id, h) = (anchor["identifier"].as_str().unwrap(), 0.5698252224547713);
    assert_eq!(anchor["hash01"].as_f64().unwrap(), h);

    // The binary64 facts the rows below rely on.
    assert_eq!(56.98252224547713 / 100.0, h); // a boundary exactly at the hash
    assert!(56.98252224547714 / 100.0 > h); // the next boundary up
    assert!(10.0 / 100.0 + 46.982522245477135 / 100.0 > h); // accumulated left to right, past h…
    assert_eq!((10.0 + 46.982522245477135) / 100.0, h); // …where summing first lands on h
    assert!(10.0 / 100.0 + 20.0 / 100.0 + 26.982522245477135 / 100.0 > h);
    assert_eq!((10.0 + 20.0 + 26.982522245477135) / 100.0, h);
    assert_eq!(28.491261122738564 / 100.0 + 28.491261122738564 / 100.0, h);
    assert_eq!(50.0 / 100.0 + 6.98252224547713 / 100.0, h); // the last boundary is h
    assert!(1.01 / 100.0 + 10.02 / 100.0 + 45.95 / 100.0 < h); // every boundary below h

    type Row<'a> = (&'a str, &'a str, &'a [(&'a str, f64)], Option<&'a str>);
    let rows: &[Row] = &[
        (
            "variant.zero_hash_first_variant",
            "",
            &[("control", 50.0), ("test", 50.0)],
            Some("control"),
        ),
        (
            "variant.boundary_is_exclusive",
            id,
            &[("control", 56.98252224547713), ("test", 43.01747775452287)],
            Some("test"),
        ),
        (
            "variant.just_below_boundary",
            id,
            &[("control", 56.98252224547714), ("test", 43.01747775452286)],
            Some("control"),
        ),
        (
            "variant.accumulated_boundary_left_to_right",
            id,
            &[
                ("ten", 10.0),
                ("twenty", 46.982522245477135),
                ("thirty", 23.0),
                ("forty", 20.017477754522865),
            ],
            Some("twenty"),
        ),
        (
            "variant.accumulated_boundary_third",
            id,
            &[
                ("ten", 10.0),
                ("twenty", 20.0),
                ("thirty", 26.982522245477135),
                ("forty", 43.017477754522865),
            ],
            Some("thirty"),
        ),
        (
            "variant.two_decimal_weights_boundary",
            id,
            &[
                ("a", 28.491261122738564),
                ("b", 28.491261122738564),
                ("c", 43.01747775452287),
            ],
            Some("c"),
        ),
        (
            "variant.hash_one_off_the_end",
            id,
            &[("control", 50.0), ("test", 6.98252224547713)],
            None,
        ),
        (
            "variant.sum_below_one_off_the_end",
            id,
            &[("a", 1.01), ("b", 10.02), ("c", 45.95)],
            None,
        ),
    ];
    let named: Vec<&str> = v["variant_vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let realised: Vec<&str> = rows.iter().map(|r| r.0).collect();
    assert_eq!(realised, named, "every variant vector has a row");
    // The zero-hash vector is taken verbatim.
    assert_eq!(v["variant_vectors"][0]["hash01"], 0.0);
    assert_eq!(v["variant_vectors"][0]["selected"], "control");

    for (name, distinct_id, variants, selected) in rows {
        let variants: Vec<Value> = variants
            .iter()
            .map(|(key, pct)| json!({"key": key, "rollout_percentage": pct}))
            .collect();
        let p = project(
            json!({"flags": [{"id": 1, "key": "checkout-layout", "active": true,
            "filters": {"groups": [{"rollout_percentage": 100}],
                        "multivariate": {"variants": variants}}}]}),
        );
        let want = selected.map_or(json!(true), |s| json!(s));
        assert_eq!(value_of(&p, "checkout-layout", distinct_id), want, "{name}");
    }
}

fn consistency(file: &str) {
    let v = vectors(file);
    let p = project(json!({"flags": [v["flag"]]}));
    let key = v["flag"]["key"].as_str().unwrap();
    let inputs = v["inputs"].as_array().unwrap();
    let expected = v["expected"].as_array().unwrap();
    assert_eq!(inputs.len(), 1000);
    for (id, want) in inputs.iter().zip(expected) {
        let got = value_of(&p, key, id.as_str().unwrap());
        assert_eq!(&got, want, "{file}: {id}");
    }
}

#[test]
fn simple_flag_consistency_1000_ids() {
    consistency("simple_flag_consistency_45pct.json");
}

#[test]
fn multivariate_flag_consistency_1000_ids() {
    consistency("multivariate_flag_consistency.json");
}

fn property_check(op: &str, filter: &Value, prop: Option<&Value>, version: u8) -> bool {
    let op: Operator = op.parse().unwrap();
    let opts = MatchOptions {
        property_matching_version: version,
    };
    PropertyCheck::new(op, Some(filter), opts)
        .unwrap()
        .matches(prop, now())
}

#[test]
fn exact_matching_version_rows() {
    let v = vectors("property_matching_vectors.json");
    let rows = v["exact_version_rows"].as_array().unwrap();
    assert_eq!(rows.len(), 24);
    for row in rows {
        let (f, p) = (&row["filter_value"], &row["property_value"]);
        for (op, version, col) in [
            ("exact", 1, "exact_v1"),
            ("exact", 2, "exact_v2"),
            ("is_not", 1, "is_not_v1"),
            ("is_not", 2, "is_not_v2"),
        ] {
            assert_eq!(
                property_check(op, f, Some(p), version),
                row[col].as_bool().unwrap(),
                "{col}: filter {f} vs property {p}"
            );
        }
    }
}

/// Server semantics for a missing property, per spec §5.2 (the vector file records the SDK's
/// "inconclusive" for these rows).
fn server_missing(op: &str) -> bool {
    matches!(
        op,
        "is_not"
            | "not_icontains"
            | "not_regex"
            | "not_starts_with"
            | "not_ends_with"
            | "is_not_set"
    )
}

/// Rows where the vector file records posthog-python's answer and the server differs (spec §5.5:
/// the server parses with the `semver` crate, where build metadata takes part in equality).
const SERVER_DEVIATIONS: &[(&str, &str, &str, bool)] =
    &[("semver_eq", "1.2.3", "1.2.3+build", false)];

#[test]
fn operator_matrix_server_semantics() {
    let v = vectors("property_matching_vectors.json");
    let rows = v["operator_matrix"].as_array().unwrap();
    let mut checked = 0;
    for row in rows {
        let op = row["operator"].as_str().unwrap();
        let prop = row["properties"].get("p");
        let deviation = SERVER_DEVIATIONS.iter().find(|(o, f, p, _)| {
            *o == op && row["filter_value"] == *f && prop.and_then(Value::as_str) == Some(*p)
        });
        let want = match (&row["result"], deviation) {
            (_, Some((.., server))) => *server,
            (Value::Bool(b), None) => *b,
            // SDK "inconclusive" rows are the missing-property rows: use server semantics.
            (_, None) => {
                assert!(prop.is_none());
                server_missing(op)
            }
        };
        assert_eq!(
            property_check(op, &row["filter_value"], prop, 1),
            want,
            "{op} {} vs {:?}",
            row["filter_value"],
            prop
        );
        checked += 1;
    }
    assert_eq!(checked, rows.len());
}
