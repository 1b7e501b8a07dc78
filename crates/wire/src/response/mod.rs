//! Projection of an engine [`Evaluation`] into the `/flags` and `/decide` response bodies
//! (spec §1.6), plus the config fields (§1.6.6) and error bodies (§1.7).
//!
//! [`FlagsResponse`] borrows the evaluation and serializes straight from it: no intermediate
//! maps, and no per-flag `String` (reason descriptions are formatted into the output).

mod config;
mod error_body;
mod parts;
mod writer;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;
use vexil_engine::reason::ReasonDescription;
use vexil_engine::{Evaluation, FlagResult, ReasonCode};

use crate::request::ResponseShape;

pub use config::{ConfigFields, FullConfig};
pub use error_body::{decode_failure_text, ErrorBody, MISSING_DISTINCT_ID_TEXT};

/// The top-level fields every shape shares, supplied by the caller.
///
/// Leaving `request_id` and `evaluated_at` out gives deterministic bodies (`vexil eval`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Envelope<'a> {
    /// `requestId` (a UUID string).
    pub request_id: Option<&'a str>,
    /// `evaluatedAt`, ms since the epoch.
    pub evaluated_at: Option<i64>,
    /// Adds `quotaLimited: ["feature_flags"]`.
    pub quota_limited: bool,
    /// Adds `minimalFlagCalledEvents: true` (flags v2 and v3 only).
    pub minimal_flag_called_events: bool,
    /// Config fields, flattened into the top level (`config=true` and the minimal response).
    pub config: Option<&'a ConfigFields>,
}

/// A `/flags` or `/decide` response body in one of the four shapes.
#[derive(Debug, Clone, Copy)]
pub struct FlagsResponse<'e, 'p> {
    shape: ResponseShape,
    flags: &'e [FlagResult<'p>],
    errors_while_computing_flags: bool,
    envelope: Envelope<'e>,
}

impl<'e, 'p> FlagsResponse<'e, 'p> {
    /// The body for an evaluation.
    pub fn new(
        shape: ResponseShape,
        evaluation: &'e Evaluation<'p>,
        envelope: Envelope<'e>,
    ) -> Self {
        Self::from_results(
            shape,
            &evaluation.flags,
            evaluation.errors_while_computing_flags,
            envelope,
        )
    }

    /// The body for a list of results (e.g. a filtered evaluation).
    pub fn from_results(
        shape: ResponseShape,
        flags: &'e [FlagResult<'p>],
        errors_while_computing_flags: bool,
        envelope: Envelope<'e>,
    ) -> Self {
        FlagsResponse {
            shape,
            flags,
            errors_while_computing_flags,
            envelope,
        }
    }

    /// A body without flags: `disable_flags`, quota-limited and minimal (GET) responses.
    pub fn empty(shape: ResponseShape, envelope: Envelope<'e>) -> Self {
        Self::from_results(shape, &[], false, envelope)
    }

    /// The shape.
    pub fn shape(&self) -> ResponseShape {
        self.shape
    }
}

impl Serialize for FlagsResponse<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if self.shape.has_errors_field() {
            m.serialize_entry(
                "errorsWhileComputingFlags",
                &self.errors_while_computing_flags,
            )?;
        }
        let flags = self.flags;
        match self.shape {
            ResponseShape::FlagsV3 => m.serialize_entry("flags", &TypedRecordMap(flags))?,
            ResponseShape::FlagsV2 => m.serialize_entry("flags", &RecordMap(flags))?,
            ResponseShape::FlagsV1 => {
                m.serialize_entry("featureFlags", &ValueMap { flags, all: true })?;
                m.serialize_entry("featureFlagPayloads", &PayloadMap(flags))?;
            }
            ResponseShape::DecideV2 => {
                m.serialize_entry("featureFlags", &ValueMap { flags, all: false })?;
            }
            ResponseShape::DecideV1 => m.serialize_entry("featureFlags", &EnabledKeys(flags))?,
        }
        let env = &self.envelope;
        if env.quota_limited {
            m.serialize_entry("quotaLimited", &["feature_flags"])?;
        }
        if let Some(id) = env.request_id {
            m.serialize_entry("requestId", id)?;
        }
        if let Some(at) = env.evaluated_at {
            m.serialize_entry("evaluatedAt", &at)?;
        }
        let typed = matches!(self.shape, ResponseShape::FlagsV2 | ResponseShape::FlagsV3);
        if env.minimal_flag_called_events && typed {
            m.serialize_entry("minimalFlagCalledEvents", &true)?;
        }
        if let Some(config) = env.config {
            config.serialize_entries(&mut m)?;
        }
        m.end()
    }
}

/// One flags-v2 record (`FlagDetails`): `{key, enabled, variant, failed?, reason, metadata}`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FlagRecord<'p> {
    /// Flag key.
    pub key: &'p str,
    /// Whether the flag is enabled (`false` when failed).
    pub enabled: bool,
    /// Variant key, or `null`.
    pub variant: Option<&'p str>,
    /// Present (and `true`) only when evaluation failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// Why.
    pub reason: RecordReason,
    /// Flag metadata and payload.
    pub metadata: RecordMetadata<'p>,
}

/// `reason` of a [`FlagRecord`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RecordReason {
    /// Wire code (`condition_match`, `timeout`, ...).
    pub code: ReasonCode,
    /// Deciding condition, or `null`.
    pub condition_index: Option<usize>,
    /// Human description (`"Matched condition set 1"`).
    pub description: ReasonDescription,
}

/// `metadata` of a [`FlagRecord`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RecordMetadata<'p> {
    /// Flag id.
    pub id: i64,
    /// Flag row version.
    pub version: i64,
    /// Always `null` (as PostHog serves it today).
    pub description: Option<&'p str>,
    /// Stored payload of the matched variant (or `"true"`); `null` when disabled or absent.
    pub payload: Option<&'p Value>,
    /// Whether the flag is linked to an experiment.
    pub has_experiment: bool,
}

impl<'p> FlagRecord<'p> {
    /// The record for one result.
    pub fn from_result(r: &FlagResult<'p>) -> Self {
        let failed = r.failed();
        let enabled = !failed && r.enabled();
        FlagRecord {
            key: r.key(),
            enabled,
            variant: if enabled { r.variant() } else { None },
            failed,
            reason: RecordReason {
                code: r.reason.code,
                condition_index: r.reason.condition_index,
                description: r.reason.description(),
            },
            metadata: RecordMetadata {
                id: r.flag.id(),
                version: r.flag.version(),
                description: None,
                payload: if enabled { r.payload } else { None },
                has_experiment: r.flag.has_experiment(),
            },
        }
    }
}

/// One typed-value record (PostHog's `FlagDetailsV3`, `/flags?v=4`): `{key, value, failed?,
/// reason, metadata}` where `value` is the variant, else whether the flag is enabled, and
/// `null` when evaluation failed. Vexil's flags are all config version 1 (`filters.version`
/// 2 is not evaluated by PostHog either), so no `rule_*` fields.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TypedRecord<'p> {
    /// Flag key.
    pub key: &'p str,
    /// The flag's value: variant key, `true`/`false`, or `null` when failed.
    pub value: Option<TypedValue<'p>>,
    /// Present (and `true`) only when evaluation failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// Why.
    pub reason: RecordReason,
    /// Flag metadata and payload.
    pub metadata: TypedMetadata<'p>,
}

/// A flag value of a [`TypedRecord`].
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum TypedValue<'p> {
    /// A boolean flag's value.
    Enabled(bool),
    /// A multivariate flag's variant.
    Variant(&'p str),
}

/// `metadata` of a [`TypedRecord`]: [`RecordMetadata`] with the config version and variant.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TypedMetadata<'p> {
    /// Flag id.
    pub id: i64,
    /// Flag row version.
    pub version: i64,
    /// The flag's configuration format: always 1 (release conditions).
    pub config_version: u8,
    /// Always `null`.
    pub description: Option<&'p str>,
    /// As in [`RecordMetadata::payload`].
    pub payload: Option<&'p Value>,
    /// Whether the flag is linked to an experiment.
    pub has_experiment: bool,
    /// The variant, when one was assigned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_key: Option<&'p str>,
}

impl<'p> TypedRecord<'p> {
    /// The record for one result: the v2 record with its value typed.
    pub fn from_result(r: &FlagResult<'p>) -> Self {
        let v2 = FlagRecord::from_result(r);
        let value = match (v2.failed, v2.variant) {
            (true, _) => None,
            (false, Some(variant)) => Some(TypedValue::Variant(variant)),
            (false, None) => Some(TypedValue::Enabled(v2.enabled)),
        };
        TypedRecord {
            key: v2.key,
            value,
            failed: v2.failed,
            reason: v2.reason,
            metadata: TypedMetadata {
                id: v2.metadata.id,
                version: v2.metadata.version,
                config_version: 1,
                description: v2.metadata.description,
                payload: v2.metadata.payload,
                has_experiment: v2.metadata.has_experiment,
                variant_key: v2.variant,
            },
        }
    }
}

/// `flags: {key: TypedRecord}`.
struct TypedRecordMap<'e, 'p>(&'e [FlagResult<'p>]);

impl Serialize for TypedRecordMap<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for r in self.0 {
            m.serialize_entry(r.key(), &TypedRecord::from_result(r))?;
        }
        m.end()
    }
}

/// The JSON value of a result in the legacy maps: `false` when failed.
fn legacy_value<'p>(r: &FlagResult<'p>) -> LegacyValue<'p> {
    match (r.failed(), r.variant()) {
        (true, _) => LegacyValue::Bool(false),
        (false, Some(v)) => LegacyValue::Variant(v),
        (false, None) => LegacyValue::Bool(r.enabled()),
    }
}

enum LegacyValue<'p> {
    Bool(bool),
    Variant(&'p str),
}

impl Serialize for LegacyValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LegacyValue::Bool(b) => s.serialize_bool(*b),
            LegacyValue::Variant(v) => s.serialize_str(v),
        }
    }
}

fn is_on(r: &FlagResult<'_>) -> bool {
    !r.failed() && r.enabled()
}

/// `flags: {key: FlagRecord}`.
struct RecordMap<'e, 'p>(&'e [FlagResult<'p>]);

impl Serialize for RecordMap<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for r in self.0 {
            m.serialize_entry(r.key(), &FlagRecord::from_result(r))?;
        }
        m.end()
    }
}

/// `featureFlags: {key: value}`: every flag (flags v1) or enabled ones only (decide v2).
struct ValueMap<'e, 'p> {
    flags: &'e [FlagResult<'p>],
    all: bool,
}

impl Serialize for ValueMap<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for r in self.flags.iter().filter(|r| self.all || is_on(r)) {
            m.serialize_entry(r.key(), &legacy_value(r))?;
        }
        m.end()
    }
}

/// `featureFlagPayloads: {key: payload}` for non-null payloads of enabled flags.
struct PayloadMap<'e, 'p>(&'e [FlagResult<'p>]);

impl Serialize for PayloadMap<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for r in self.0.iter().filter(|r| is_on(r)) {
            if let Some(payload) = r.payload.filter(|p| !p.is_null()) {
                m.serialize_entry(r.key(), payload)?;
            }
        }
        m.end()
    }
}

/// `featureFlags: [key, ...]` of enabled flags (decide v1).
struct EnabledKeys<'e, 'p>(&'e [FlagResult<'p>]);

impl Serialize for EnabledKeys<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for r in self.0.iter().filter(|r| is_on(r)) {
            seq.serialize_element(r.key())?;
        }
        seq.end()
    }
}
