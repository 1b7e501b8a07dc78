//! The parts of a flag's `/flags?v=2` and `?v=4` records that do not depend on the request —
//! its key, its metadata and each of its stored payloads — serialised once per compiled flag
//! and kept in the flag's memo ([`CompiledFlag::memo`]), so that writing a record copies them
//! instead of escaping and formatting them again for every request.

use serde_json::Value;
use vexil_engine::CompiledFlag;

use super::writer::{push_str, push_value};

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
        }
    }

    /// The JSON of `payload`, one of this flag's stored payloads; `None` for any other value.
    pub(super) fn payload(&self, payload: &Value) -> Option<&[u8]> {
        let at = address(payload);
        self.payloads
            .iter()
            .find(|(a, _)| *a == at)
            .map(|(_, json)| &**json)
    }
}

fn address(value: &Value) -> usize {
    std::ptr::from_ref(value) as usize
}
