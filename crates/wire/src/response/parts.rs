//! The parts of a flag's `/flags?v=2` and `?v=4` records that do not depend on the request —
//! its key, its metadata and each of its stored payloads — serialised once per compiled flag
//! and kept in the flag's memo ([`CompiledFlag::memo`]), so that writing a record copies them
//! instead of escaping and formatting them again for every request.

use std::sync::OnceLock;

use serde_json::Value;
use vexil_engine::{CompiledFlag, FlagResult};

use super::writer::{push_str, push_value, write_record};
use super::FlagRecord;

/// How many whole `?v=2` records a flag keeps: a flag has few outcomes (each condition's match
/// or rollout miss, each variant, no match), and an outcome past the last slot is written
/// from the parts as before.
const RECORD_SLOTS: usize = 8;

/// A compiled flag's constant record parts, in wire form.
pub(super) struct RecordParts {
    /// `"<key>":{"key":"<key>"`: the entry's key and the record's first field.
    pub(super) head: Box<[u8]>,
    /// `,"metadata":{"id":…,"version":…,"description":null,"payload":`
    pub(super) metadata_v2: Box<[u8]>,
    /// `,"metadata":{"id":…,"version":…,"config_version":1,"description":null,"payload":`
    pub(super) metadata_v3: Box<[u8]>,
    /// `,"has_experiment":true` or `false`.
    pub(super) has_experiment: &'static [u8],
    /// A `?v=2` record's end when it has no payload: `metadata_v2`, `null`, `has_experiment`
    /// and the two closing braces.
    pub(super) metadata_v2_without_payload: Box<[u8]>,
    /// Each stored payload's JSON, by the address of its value in the compiled flag (what a
    /// result's `payload` borrows from). Addresses are compared, never followed.
    payloads: Box<[(usize, Box<[u8]>)]>,
    /// Whole `?v=2` records (`"key":{…}`), each made the first time its outcome is written.
    records: [OnceLock<Record>; RECORD_SLOTS],
}

/// What a `?v=2` record says beyond its flag's constant parts, but its variant: whether it is
/// enabled and failed, its reason's code, detail and condition index, and which of the flag's
/// stored payloads it carries, packed into one word. The record is a function of the flag, this
/// and the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Outcome(u64);

impl Outcome {
    /// The packed outcome; `None` for an index too large to pack (never, within the engine's
    /// limits).
    fn new(
        enabled: bool,
        failed: bool,
        reason: (usize, usize, Option<usize>),
        payload: Option<usize>,
    ) -> Option<Outcome> {
        let small = |n: usize, bits: u32| u64::try_from(n).ok().filter(|n| *n < 1 << bits);
        // 0 for none, else the index + 1: 21 bits each.
        let optional = |n: Option<usize>| n.map_or(Some(0), |n| Some(small(n, 20)? + 1));
        let (code, detail, condition) = reason;
        Some(Outcome(
            u64::from(enabled)
                | u64::from(failed) << 1
                | small(code, 8)? << 2
                | small(detail, 8)? << 10
                | optional(condition)? << 18
                | optional(payload)? << 39,
        ))
    }
}

/// One whole record and the outcome and variant it was written for.
#[derive(Debug)]
struct Record {
    outcome: Outcome,
    variant: Option<Box<str>>,
    json: Box<[u8]>,
}

impl RecordParts {
    /// The parts of `flag`'s records.
    pub(super) fn new(flag: &CompiledFlag) -> RecordParts {
        let mut head = Vec::with_capacity(2 * flag.key().len() + 12);
        push_str(&mut head, flag.key());
        head.extend_from_slice(b":{\"key\":");
        push_str(&mut head, flag.key());
        let ids = |config_version: &str| {
            let mut out = Vec::with_capacity(64);
            out.extend_from_slice(b",\"metadata\":{\"id\":");
            out.extend_from_slice(itoa::Buffer::new().format(flag.id()).as_bytes());
            out.extend_from_slice(b",\"version\":");
            out.extend_from_slice(itoa::Buffer::new().format(flag.version()).as_bytes());
            out.extend_from_slice(config_version.as_bytes());
            // `description` is always null, as PostHog serves it today.
            out.extend_from_slice(b",\"description\":null,\"payload\":");
            out.into_boxed_slice()
        };
        let payloads = flag
            .payloads()
            .map(|(_, value)| {
                let mut json = Vec::new();
                push_value(&mut json, value);
                (address(value), json.into_boxed_slice())
            })
            .collect();
        let metadata_v2 = ids("");
        let has_experiment: &'static [u8] = if flag.has_experiment() {
            b",\"has_experiment\":true"
        } else {
            b",\"has_experiment\":false"
        };
        RecordParts {
            head: head.into_boxed_slice(),
            metadata_v2_without_payload: [&metadata_v2[..], b"null", has_experiment, b"}}"]
                .concat()
                .into_boxed_slice(),
            metadata_v2,
            metadata_v3: ids(",\"config_version\":1"),
            has_experiment,
            payloads,
            records: Default::default(),
        }
    }

    /// `r`'s whole `?v=2` record, written from the parts the first time its outcome comes up
    /// and copied after that; `None` when the flag's slots hold other outcomes, or when the
    /// payload is not one of the flag's stored payloads.
    pub(super) fn record(&self, r: &FlagResult<'_>) -> Option<&[u8]> {
        let rec = FlagRecord::from_result(r);
        let payload = match rec.metadata.payload {
            None => None,
            Some(p) => Some(self.payload_position(p)?),
        };
        let reason = &r.reason;
        let outcome = Outcome::new(
            rec.enabled,
            rec.failed,
            (
                reason.code.index(),
                reason.detail.index(),
                reason.condition_index,
            ),
            payload,
        )?;
        for slot in &self.records {
            let record = slot.get_or_init(|| {
                let mut json = Vec::new();
                write_record(&mut json, r, self);
                Record {
                    outcome,
                    variant: rec.variant.map(Box::from),
                    json: json.into_boxed_slice(),
                }
            });
            if record.outcome == outcome && record.variant.as_deref() == rec.variant {
                return Some(&record.json);
            }
        }
        None
    }

    /// The JSON of `payload`, one of this flag's stored payloads; `None` for any other value.
    pub(super) fn payload(&self, payload: &Value) -> Option<&[u8]> {
        self.payload_position(payload).map(|i| &*self.payloads[i].1)
    }

    fn payload_position(&self, payload: &Value) -> Option<usize> {
        let at = address(payload);
        self.payloads.iter().position(|(a, _)| *a == at)
    }
}

fn address(value: &Value) -> usize {
    std::ptr::from_ref(value) as usize
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::Outcome;

    #[test]
    fn outcomes_pack_one_to_one() {
        let mut seen = HashSet::new();
        let indices = [None, Some(0), Some(1), Some(999), Some((1 << 20) - 1)];
        for enabled in [false, true] {
            for failed in [false, true] {
                for code in [0, 1, 12, 255] {
                    for detail in [0, 2, 255] {
                        for condition in indices {
                            for payload in indices {
                                let reason = (code, detail, condition);
                                let packed = Outcome::new(enabled, failed, reason, payload)
                                    .expect("in range");
                                assert!(seen.insert(packed), "{packed:?} twice");
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(Outcome::new(true, false, (0, 0, Some(1 << 20)), None), None);
        assert_eq!(Outcome::new(true, false, (256, 0, None), None), None);
        assert_eq!(Outcome::new(true, false, (0, 0, None), Some(1 << 20)), None);
    }
}
