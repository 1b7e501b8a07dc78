//! A direct JSON writer for the hot `/flags?v=2` body: byte-identical to serialising
//! [`FlagsResponse`] with serde_json (tested), without serde's per-field machinery. Other shapes
//! and bodies with config fields go through serde.

use serde_json::Value;
use vexil_engine::FlagResult;

use super::{FlagRecord, FlagsResponse};
use crate::request::ResponseShape;

impl FlagsResponse<'_, '_> {
    /// Appends the body as compact JSON to `out`; identical to `serde_json::to_writer`.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        if self.shape != ResponseShape::FlagsV2 || self.envelope.config.is_some() {
            return serde_json::to_writer(out, self);
        }
        out.extend_from_slice(b"{\"errorsWhileComputingFlags\":");
        push_bool(out, self.errors_while_computing_flags);
        out.extend_from_slice(b",\"flags\":{");
        for (i, r) in self.flags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, r.key())?;
            out.push(b':');
            push_record(out, r)?;
        }
        out.push(b'}');
        let env = &self.envelope;
        if env.quota_limited {
            out.extend_from_slice(b",\"quotaLimited\":[\"feature_flags\"]");
        }
        if let Some(id) = env.request_id {
            out.extend_from_slice(b",\"requestId\":");
            push_str(out, id)?;
        }
        if let Some(at) = env.evaluated_at {
            out.extend_from_slice(b",\"evaluatedAt\":");
            out.extend_from_slice(itoa::Buffer::new().format(at).as_bytes());
        }
        if env.minimal_flag_called_events {
            out.extend_from_slice(b",\"minimalFlagCalledEvents\":true");
        }
        out.push(b'}');
        Ok(())
    }
}

/// One record, in [`FlagRecord`]'s field order.
fn push_record(out: &mut Vec<u8>, r: &FlagResult<'_>) -> Result<(), serde_json::Error> {
    let rec = FlagRecord::from_result(r);
    out.extend_from_slice(b"{\"key\":");
    push_str(out, rec.key)?;
    out.extend_from_slice(b",\"enabled\":");
    push_bool(out, rec.enabled);
    out.extend_from_slice(b",\"variant\":");
    match rec.variant {
        Some(v) => push_str(out, v)?,
        None => out.extend_from_slice(b"null"),
    }
    if rec.failed {
        out.extend_from_slice(b",\"failed\":true");
    }
    out.extend_from_slice(b",\"reason\":{\"code\":");
    push_str(out, rec.reason.code.as_str())?;
    out.extend_from_slice(b",\"condition_index\":");
    match rec.reason.condition_index {
        Some(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"description\":");
    match rec.reason.description.static_text() {
        Some(text) => push_str(out, text)?,
        None => serde_json::to_writer(&mut *out, &rec.reason.description)?,
    }
    out.extend_from_slice(b"},\"metadata\":{\"id\":");
    out.extend_from_slice(itoa::Buffer::new().format(rec.metadata.id).as_bytes());
    out.extend_from_slice(b",\"version\":");
    out.extend_from_slice(itoa::Buffer::new().format(rec.metadata.version).as_bytes());
    out.extend_from_slice(b",\"description\":");
    match rec.metadata.description {
        Some(d) => push_str(out, d)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"payload\":");
    match rec.metadata.payload {
        Some(p) => push_value(out, p)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"has_experiment\":");
    push_bool(out, rec.metadata.has_experiment);
    out.extend_from_slice(b"}}");
    Ok(())
}

fn push_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A JSON string: copied as is when nothing needs escaping (the common case), else serde_json's
/// escaping.
fn push_str(out: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    if s.bytes()
        .any(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7f)
    {
        return serde_json::to_writer(&mut *out, s);
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

fn push_value(out: &mut Vec<u8>, v: &Value) -> Result<(), serde_json::Error> {
    match v {
        Value::String(s) => push_str(out, s),
        other => serde_json::to_writer(&mut *out, other),
    }
}
