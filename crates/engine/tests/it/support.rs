//! Helpers shared by the engine tests: load conformance files, build projects, evaluate.

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use vexil_engine::{evaluate, CompiledProject, Context, Definitions};

/// Reads `conformance/<name>` from the repository root.
pub fn vectors(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../conformance")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn project(defs: Value) -> CompiledProject {
    let defs: Definitions = serde_json::from_value(defs).unwrap();
    CompiledProject::compile(&defs)
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
}

/// One evaluation outcome in a comparable form.
#[derive(Debug, Clone, PartialEq)]
pub struct Got {
    pub value: Value,
    pub code: String,
    pub index: Option<usize>,
    pub payload: Option<Value>,
}

/// Evaluates `key` for a request described as a `/flags` body subset.
pub fn check(project: &CompiledProject, key: &str, request: Value) -> Got {
    let req = request.as_object().unwrap();
    let distinct_id = req.get("distinct_id").and_then(Value::as_str).unwrap_or("");
    let mut ctx = Context::new(distinct_id, now());
    ctx.person_properties = req.get("person_properties").and_then(Value::as_object);
    ctx.groups = req.get("groups").and_then(Value::as_object);
    ctx.group_properties = req.get("group_properties").and_then(Value::as_object);
    ctx.device_id = req.get("$device_id").and_then(Value::as_str);
    ctx.anon_distinct_id = req.get("$anon_distinct_id").and_then(Value::as_str);
    let eval = evaluate(project, &ctx);
    let r = eval
        .get(key)
        .unwrap_or_else(|| panic!("flag {key} not in result"));
    Got {
        value: r.value.to_json(),
        code: r.reason.code.as_str().to_owned(),
        index: r.reason.condition_index,
        payload: r.payload.cloned(),
    }
}

/// The flag's value (`false`, `true` or the variant) for a bare distinct id.
pub fn value_of(project: &CompiledProject, key: &str, distinct_id: &str) -> Value {
    let ctx = Context::new(distinct_id, now());
    evaluate(project, &ctx)
        .get(key)
        .map_or(Value::Bool(false), |r| r.value.to_json())
}
