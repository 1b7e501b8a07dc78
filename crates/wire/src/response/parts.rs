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

/// What a `?v=2` record says beyond its flag's constant parts: the record is a function of
/// the flag and this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome<'a> {
    enabled: bool,
    failed: bool,
    variant: Option<&'a str>,
    /// The reason's code and detail, by index, and its condition index.
    reason: (usize, usize, Option<usize>),
    /// The payload's position among the flag's stored payloads.
    payload: Option<usize>,
}

/// One whole record and the outcome it was written for.
#[derive(Debug)]
struct Record {
    outcome: Outcome<'static>,
    /// The outcome's variant (`outcome.variant` is `None`: it would borrow from a result).
    variant: Option<Box<str>>,
    json: Box<[u8]>,
}

impl Record {
    fn is_for(&self, outcome: &Outcome<'_>) -> bool {
        self.variant.as_deref() == outcome.variant
            && self.outcome
                == Outcome {
                    variant: None,
                    ..*outcome
                }
    }
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
        let outcome = Outcome {
            enabled: rec.enabled,
            failed: rec.failed,
            variant: rec.variant,
            reason: (
                r.reason.code.index(),
                r.reason.detail.index(),
                r.reason.condition_index,
            ),
            payload,
        };
        for slot in &self.records {
            let record = slot.get_or_init(|| {
                let mut json = Vec::new();
                write_record(&mut json, r, self);
                Record {
                    outcome: Outcome {
                        variant: None,
                        ..outcome
                    },
                    variant: outcome.variant.map(Box::from),
                    json: json.into_boxed_slice(),
                }
            });
            if record.is_for(&outcome) {
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
