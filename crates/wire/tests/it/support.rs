//! Helpers shared by the wire tests: conformance files, projects, a fixed clock, subset checks.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use flate2::write::GzEncoder;
use serde_json::Value;
use vexil_engine::{CompiledProject, Definitions};

/// Reads `conformance/<name>` from the repository root.
pub fn vectors(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Compiles a definitions JSON value.
pub fn project(defs: Value) -> CompiledProject {
    let defs: Definitions = serde_json::from_value(defs).unwrap();
    CompiledProject::compile(&defs)
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Asserts that every field of `expected` is in `actual` with a (recursively) equal value.
/// Arrays and scalars must be equal; objects listed in `exact_keys` must also have no extra keys
/// (flag maps, where an extra flag is a bug, not an unasserted field).
pub fn assert_subset(expected: &Value, actual: &Value, path: &str, exact_keys: &[&str]) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let name = path.rsplit('.').next().unwrap_or(path);
            if exact_keys.contains(&name) {
                let mut ek: Vec<_> = e.keys().collect();
                let mut ak: Vec<_> = a.keys().collect();
                ek.sort();
                ak.sort();
                assert_eq!(ek, ak, "{path}: key sets differ");
            }
            for (k, ev) in e {
                let av = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k}: missing in {actual}"));
                assert_subset(ev, av, &format!("{path}.{k}"), exact_keys);
            }
        }
        _ => assert_eq!(expected, actual, "{path}"),
    }
}
