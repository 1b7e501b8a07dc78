//! A direct JSON writer for the hot `/flags?v=2` and `/flags?v=4` (typed records) bodies:
//! byte-identical to serialising [`FlagsResponse`] with serde_json (tested), without serde's
//! per-field machinery. Other shapes and bodies with config fields go through serde.
//!
//! What does not depend on the request is serialised once and copied: each flag's key, metadata
//! and payloads ([`RecordParts`], kept in the compiled flag's memo) and each reason's code and
//! description ([`ReasonParts`], once per process).

use std::sync::LazyLock;

use serde_json::Value;
use vexil_engine::{FlagResult, Reason, ReasonCode, ReasonDetail};

use super::parts::RecordParts;
use super::{FlagRecord, FlagsResponse, TypedRecord, TypedValue};
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
            let made;
            let parts = match r.flag.memo(RecordParts::new) {
                Some(parts) => parts,
                // The memo holds another caller's value: make the parts for this record only.
                None => {
                    made = RecordParts::new(r.flag);
                    &made
                }
            };
            if typed {
                push_typed_record(out, r, parts);
            } else {
                push_record(out, r, parts);
            }
        }
        out.push(b'}');
        let env = &self.envelope;
        if env.quota_limited {
            out.extend_from_slice(b",\"quotaLimited\":[\"feature_flags\"]");
        }
        if let Some(id) = env.request_id {
            out.extend_from_slice(b",\"requestId\":");
            push_str(out, id);
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

/// `"key":` and one record: a copy of the whole record when the flag has one for this
/// outcome ([`RecordParts::record`]), else written from the parts.
fn push_record(out: &mut Vec<u8>, r: &FlagResult<'_>, parts: &RecordParts) {
    match parts.record(r) {
        Some(record) => out.extend_from_slice(record),
        None => write_record(out, r, parts),
    }
}

/// `"key":` and one record, in [`FlagRecord`]'s field order, from the flag's parts.
pub(super) fn write_record(out: &mut Vec<u8>, r: &FlagResult<'_>, parts: &RecordParts) {
    let rec = FlagRecord::from_result(r);
    out.extend_from_slice(&parts.head);
    out.extend_from_slice(if rec.enabled {
        b",\"enabled\":true,\"variant\":"
    } else {
        b",\"enabled\":false,\"variant\":"
    });
    match rec.variant {
        Some(v) => push_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
    if rec.failed {
        out.extend_from_slice(b",\"failed\":true");
    }
    push_reason(out, &r.reason);
    match rec.metadata.payload {
        // Most records: the metadata through the record's end, written once per flag.
        None => out.extend_from_slice(&parts.metadata_v2_without_payload),
        Some(payload) => {
            out.extend_from_slice(&parts.metadata_v2);
            push_payload(out, Some(payload), parts);
            out.extend_from_slice(parts.has_experiment);
            out.extend_from_slice(b"}}");
        }
    }
}

/// `"key":` and one typed record, in [`TypedRecord`]'s field order.
fn push_typed_record(out: &mut Vec<u8>, r: &FlagResult<'_>, parts: &RecordParts) {
    let rec = TypedRecord::from_result(r);
    out.extend_from_slice(&parts.head);
    out.extend_from_slice(b",\"value\":");
    match rec.value {
        Some(TypedValue::Enabled(b)) => push_bool(out, b),
        Some(TypedValue::Variant(v)) => push_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
    if rec.failed {
        out.extend_from_slice(b",\"failed\":true");
    }
    push_reason(out, &r.reason);
    out.extend_from_slice(&parts.metadata_v3);
    push_payload(out, rec.metadata.payload, parts);
    out.extend_from_slice(parts.has_experiment);
    if let Some(v) = rec.metadata.variant_key {
        out.extend_from_slice(b",\"variant_key\":");
        push_str(out, v);
    }
    out.extend_from_slice(b"}}");
}

/// A record's payload: the flag's pre-serialised one, `null` when there is none.
fn push_payload(out: &mut Vec<u8>, payload: Option<&Value>, parts: &RecordParts) {
    match payload {
        None => out.extend_from_slice(b"null"),
        Some(p) => match parts.payload(p) {
            Some(json) => out.extend_from_slice(json),
            None => push_value(out, p),
        },
    }
}

/// `,"reason":{…}` of either record.
fn push_reason(out: &mut Vec<u8>, reason: &Reason) {
    let parts = ReasonParts::of(reason);
    if let (None, Some(whole)) = (reason.condition_index, &parts.without_index) {
        out.extend_from_slice(whole);
        return;
    }
    out.extend_from_slice(&parts.head);
    match reason.condition_index {
        Some(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    match &parts.tail {
        Some(tail) => out.extend_from_slice(tail),
        None => push_matched_condition(out, reason),
    }
}

/// `,"description":"Matched condition set N"}`: the one formatted description (N = index + 1).
fn push_matched_condition(out: &mut Vec<u8>, reason: &Reason) {
    out.extend_from_slice(b",\"description\":\"Matched condition set ");
    let n = reason.condition_index.unwrap_or(0) + 1;
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\"}");
}

/// A reason's JSON around its condition index, escaped once per process.
struct ReasonParts {
    /// `,"reason":{"code":"…","condition_index":`
    head: Box<[u8]>,
    /// `,"description":"…"}`; `None` when the description counts the condition.
    tail: Option<Box<[u8]>>,
    /// The whole reason when it has no condition index: `head`, `null` and `tail` joined.
    without_index: Option<Box<[u8]>>,
}

impl ReasonParts {
    /// The parts of every code and detail, at `code.index() * details + detail.index()`.
    fn all() -> Box<[ReasonParts]> {
        let mut all = Vec::new();
        for code in ReasonCode::ALL {
            for detail in ReasonDetail::ALL {
                let mut head = b",\"reason\":{\"code\":".to_vec();
                push_str(&mut head, code.as_str());
                head.extend_from_slice(b",\"condition_index\":");
                let reason = Reason {
                    code,
                    condition_index: None,
                    detail,
                };
                let tail = reason.description().static_text().map(|text| {
                    let mut tail = b",\"description\":".to_vec();
                    push_str(&mut tail, text);
                    tail.push(b'}');
                    tail.into_boxed_slice()
                });
                let without_index = tail
                    .as_ref()
                    .map(|tail| [&head[..], b"null", &tail[..]].concat().into_boxed_slice());
                all.push(ReasonParts {
                    head: head.into_boxed_slice(),
                    tail,
                    without_index,
                });
            }
        }
        all.into_boxed_slice()
    }

    fn of(reason: &Reason) -> &'static ReasonParts {
        static ALL: LazyLock<Box<[ReasonParts]>> = LazyLock::new(ReasonParts::all);
        // In bounds: `index` numbers every code and detail of the `ALL` lists (engine test).
        &ALL[reason.code.index() * ReasonDetail::ALL.len() + reason.detail.index()]
    }
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
pub(super) fn push_str(out: &mut Vec<u8>, s: &str) {
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

/// A JSON value, compact, as serde_json writes it.
pub(super) fn push_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => push_str(out, s),
        // `Value`'s `Display` is serde_json's compact writer (and cannot fail: map keys are
        // strings, numbers finite).
        other => out.extend_from_slice(other.to_string().as_bytes()),
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
            push_str(&mut ours, &s);
            assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }
}
