//! A direct JSON writer for the hot `/flags?v=2` and `/flags?v=4` (typed records) bodies:
//! byte-identical to serialising [`FlagsResponse`] with serde_json (tested), without serde's
//! per-field machinery. Other shapes and bodies with config fields go through serde.

use serde_json::Value;
use vexil_engine::FlagResult;

use super::{FlagRecord, FlagsResponse, RecordReason, TypedRecord, TypedValue};
use crate::request::ResponseShape;

impl FlagsResponse<'_, '_> {
    /// Appends the body as compact JSON to `out`; identical to `serde_json::to_writer`.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        let typed = match self.shape {
            ResponseShape::FlagsV2 => false,
            ResponseShape::FlagsV3 => true,
            _ => return serde_json::to_writer(out, self),
        };
        if self.envelope.config.is_some() {
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
            if typed {
                push_typed_record(out, r)?;
            } else {
                push_record(out, r)?;
            }
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
    push_reason(out, &rec.reason)?;
    out.extend_from_slice(b",\"metadata\":{\"id\":");
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

/// One typed record, in [`TypedRecord`]'s field order.
fn push_typed_record(out: &mut Vec<u8>, r: &FlagResult<'_>) -> Result<(), serde_json::Error> {
    let rec = TypedRecord::from_result(r);
    out.extend_from_slice(b"{\"key\":");
    push_str(out, rec.key)?;
    out.extend_from_slice(b",\"value\":");
    match rec.value {
        Some(TypedValue::Enabled(b)) => push_bool(out, b),
        Some(TypedValue::Variant(v)) => push_str(out, v)?,
        None => out.extend_from_slice(b"null"),
    }
    if rec.failed {
        out.extend_from_slice(b",\"failed\":true");
    }
    push_reason(out, &rec.reason)?;
    let m = &rec.metadata;
    out.extend_from_slice(b",\"metadata\":{\"id\":");
    out.extend_from_slice(itoa::Buffer::new().format(m.id).as_bytes());
    out.extend_from_slice(b",\"version\":");
    out.extend_from_slice(itoa::Buffer::new().format(m.version).as_bytes());
    out.extend_from_slice(b",\"config_version\":");
    out.extend_from_slice(itoa::Buffer::new().format(m.config_version).as_bytes());
    out.extend_from_slice(b",\"description\":");
    match m.description {
        Some(d) => push_str(out, d)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"payload\":");
    match m.payload {
        Some(p) => push_value(out, p)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"has_experiment\":");
    push_bool(out, m.has_experiment);
    if let Some(v) = m.variant_key {
        out.extend_from_slice(b",\"variant_key\":");
        push_str(out, v)?;
    }
    out.extend_from_slice(b"}}");
    Ok(())
}

/// `,"reason":{…}` of either record.
fn push_reason(out: &mut Vec<u8>, reason: &RecordReason) -> Result<(), serde_json::Error> {
    out.extend_from_slice(b",\"reason\":{\"code\":");
    push_str(out, reason.code.as_str())?;
    out.extend_from_slice(b",\"condition_index\":");
    match reason.condition_index {
        Some(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"description\":");
    match reason.description.static_text() {
        Some(text) => push_str(out, text)?,
        // The one formatted description: "Matched condition set N" (N = index + 1).
        None => {
            out.extend_from_slice(b"\"Matched condition set ");
            let n = reason.condition_index.unwrap_or(0) + 1;
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.push(b'"');
        }
    }
    out.push(b'}');
    Ok(())
}

fn push_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// Bytes serde_json escapes: controls, `"` and `\\` (not DEL).
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A JSON string, escaped exactly as serde_json escapes it (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
/// `\t`, other controls as `\u00xx`): unescaped runs are copied whole, and the common
/// all-clean string is found eight bytes at a time.
fn push_str(out: &mut Vec<u8>, s: &str) -> Result<(), serde_json::Error> {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = clean_prefix(bytes);
    while i < bytes.len() {
        let b = bytes[i];
        if !NEEDS_ESCAPE[usize::from(b)] {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
    Ok(())
}

/// How many leading bytes need no escaping, checked a word at a time (stops at the first word
/// holding a control byte, `"` or `\\`; the caller checks the rest byte by byte).
fn clean_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let mut i = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte < 0x20 (ignoring the high bit's bytes, which are never controls), `"` or `\\`.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        if control
            | has_zero(w ^ (ONES * u64::from(b'"')))
            | has_zero(w ^ (ONES * u64::from(b'\\')))
            != 0
        {
            break;
        }
        i += 8;
    }
    i
}

fn push_value(out: &mut Vec<u8>, v: &Value) -> Result<(), serde_json::Error> {
    match v {
        Value::String(s) => push_str(out, s),
        other => serde_json::to_writer(&mut *out, other),
    }
}

#[cfg(test)]
mod tests {
    use super::push_str;

    #[test]
    fn strings_escape_exactly_as_serde_json() {
        let specials = [
            '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '\u{0}', '\u{1f}', '\u{7f}', 'é', '🦀',
        ];
        let mut cases = vec![String::new(), "plain-ascii-key-that-is-long".to_owned()];
        for len in [1usize, 7, 8, 9, 15, 16, 17, 40] {
            for (i, c) in specials.iter().enumerate() {
                for at in [0, len / 2, len.saturating_sub(1)] {
                    let mut s: String = "abcdefgh".chars().cycle().take(len).collect();
                    s.insert(at.min(s.len()), *c);
                    s.push(specials[(i + 1) % specials.len()]);
                    cases.push(s);
                }
            }
        }
        for s in cases {
            let mut ours = Vec::new();
            push_str(&mut ours, &s).unwrap();
            assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }
}
