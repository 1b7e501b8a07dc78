//! The OpenFeature Remote Evaluation Protocol (OFREP v0.3): an evaluation request's context
//! read into the [`FlagsRequest`] every endpoint evaluates, and engine results projected into
//! OFREP success and failure bodies, one flag or in bulk.
//!
//! The mapping, which the README documents:
//!
//! * context: `targetingKey` → distinct id; `groups` (`{type: key}`) → groups;
//!   `groupProperties` (`{type: {prop: value}}`) → group properties; every other attribute →
//!   a person property.
//! * value: a boolean flag → `true` / `false`; a multivariate flag → its variant key (also in
//!   `variant`), `false` when no variant applies; a remote-configuration flag → its payload
//!   parsed as JSON (an object, number, string…), so typed object and number evaluations have a
//!   home. `metadata`: `flagId`, `version` and, when there is one, the `payload` as JSON text.
//! * reason: see [`Reason`].

use std::borrow::Cow;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use vexil_engine::{CompiledFlag, FlagDefinition, FlagResult, FlagValue, ReasonCode};

use crate::distinct_id;
use crate::field::{self, FieldError};
use crate::request::FlagsRequest;

/// The context attribute that names the subject: the distinct id.
pub const TARGETING_KEY: &str = "targetingKey";
/// The context attribute holding PostHog groups, `{group type: group key}`.
pub const GROUPS: &str = "groups";
/// The context attribute holding group properties, `{group type: {property: value}}`.
pub const GROUP_PROPERTIES: &str = "groupProperties";

/// Why an evaluation request cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// The body is JSON but not an object.
    #[error("the request body must be a JSON object")]
    NotAnObject,
    /// A context attribute Vexil reads has the wrong type.
    #[error(transparent)]
    Field(#[from] FieldError),
}

impl ContextError {
    /// The OFREP error code of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            ContextError::NotAnObject => ErrorCode::ParseError,
            ContextError::Field(_) => ErrorCode::InvalidContext,
        }
    }
}

/// Reads an OFREP evaluation request (`{"context": {...}}`, decoded) into the request Vexil
/// evaluates. A missing `targetingKey` leaves the distinct id unset: whether that is an error
/// (`TARGETING_KEY_MISSING`) depends on the flag, so it is the caller's decision.
pub fn parse_request(body: Value) -> Result<FlagsRequest, ContextError> {
    let mut body = match body {
        Value::Object(map) => map,
        _ => return Err(ContextError::NotAnObject),
    };
    let mut context = match field::take(&mut body, &["context"]) {
        Some((name, value)) => field::object(name, value)?,
        None => Map::new(),
    };
    let distinct_id = match context.remove(TARGETING_KEY) {
        None | Some(Value::Null) => None,
        Some(value) => Some(distinct_id::from_value("context.targetingKey", value)?),
    }
    .filter(|id| !id.is_empty());
    let groups = match context.remove(GROUPS) {
        None | Some(Value::Null) => None,
        Some(value) => Some(groups(value)?),
    };
    let group_properties = match context.remove(GROUP_PROPERTIES) {
        None | Some(Value::Null) => None,
        Some(value) => Some(group_properties(value)?),
    };
    let mut request = FlagsRequest {
        distinct_id,
        groups,
        group_properties,
        person_properties: (!context.is_empty()).then_some(context),
        ..FlagsRequest::default()
    };
    request.apply_group_key_overrides();
    Ok(request)
}

/// `{type: key}`: every key a string or a number (unlike `/flags`, which drops the others, a
/// wrong type is refused naming it).
fn groups(value: Value) -> Result<Map<String, Value>, FieldError> {
    let map = field::object("context.groups", value)?;
    match map
        .iter()
        .find(|(_, key)| !matches!(key, Value::String(_) | Value::Number(_)))
    {
        Some((group_type, _)) => Err(FieldError::new(
            format!("context.groups.{group_type}"),
            "a string or number",
        )),
        None => Ok(map),
    }
}

/// `{type: {property: value}}`.
fn group_properties(value: Value) -> Result<Map<String, Value>, FieldError> {
    let map = field::object("context.groupProperties", value)?;
    match map.iter().find(|(_, props)| !props.is_object()) {
        Some((group_type, _)) => Err(FieldError::new(
            format!("context.groupProperties.{group_type}"),
            "an object",
        )),
        None => Ok(map),
    }
}

/// Why a flag has its value (`reason`).
///
/// From the engine's reason: a matched condition set is `TARGETING_MATCH`, or `SPLIT` when the
/// value is a variant (chosen by the variant hash); a context the rollout hash or a holdout left
/// out is `SPLIT`; no matching condition set (or a group the context lacks) is `DEFAULT`; an
/// inactive flag is `DISABLED`; a remote-configuration flag, the same for every context, is
/// `STATIC`; a flag whose dependency is missing is `UNKNOWN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The value does not depend on the context.
    Static,
    /// No rule matched: the flag's default.
    Default,
    /// A rule matched the context.
    TargetingMatch,
    /// A pseudorandom assignment (rollout, variant or holdout hash) decided.
    Split,
    /// The flag is inactive.
    Disabled,
    /// The reason could not be determined.
    Unknown,
}

/// OFREP error codes (`errorCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The request body could not be read.
    ParseError,
    /// The flag needs a `targetingKey` and the context has none.
    TargetingKeyMissing,
    /// A context attribute has the wrong type.
    InvalidContext,
    /// The flag could not be evaluated.
    General,
    /// No flag has this key.
    FlagNotFound,
}

impl ErrorCode {
    /// The HTTP status OFREP answers this error with: 404 for an unknown flag, 500 for an
    /// evaluation that failed on the server's side, 400 for the request's faults.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::FlagNotFound => 404,
            ErrorCode::General => 500,
            ErrorCode::ParseError | ErrorCode::TargetingKeyMissing | ErrorCode::InvalidContext => {
                400
            }
        }
    }
}

/// A flag's `value`.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValueJson<'p> {
    /// A boolean flag, or a multivariate flag without a variant for this context.
    Bool(bool),
    /// A multivariate flag's variant key.
    Variant(&'p str),
    /// A remote-configuration flag's payload, parsed.
    Json(Value),
}

impl Serialize for FlagValueJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FlagValueJson::Bool(b) => s.serialize_bool(*b),
            FlagValueJson::Variant(v) => s.serialize_str(v),
            FlagValueJson::Json(value) => value.serialize(s),
        }
    }
}

/// `metadata` of a success: flag id, version and payload (OFREP metadata values are
/// booleans, strings and numbers only, so the payload is its JSON text).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata<'p> {
    /// The flag's id.
    pub flag_id: i64,
    /// The flag's version.
    pub version: i64,
    /// The payload for this value as JSON text, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Cow<'p, str>>,
}

/// A flag evaluated: `{key, value, reason, variant, metadata}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Success<'p> {
    /// The flag key.
    pub key: &'p str,
    /// The value; absent tells the provider to use the caller's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<FlagValueJson<'p>>,
    /// Why.
    pub reason: Reason,
    /// The variant key, or `null` (always present: the Python provider reads it unguarded).
    pub variant: Option<&'p str>,
    /// Flag id, version, payload.
    pub metadata: Metadata<'p>,
}

/// A failure: `{key?, errorCode, errorDetails}` (a bulk request's failure has no key).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure<'p> {
    /// The flag key, for a single flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'p str>,
    /// What went wrong.
    pub error_code: ErrorCode,
    /// One human sentence saying what.
    pub error_details: Cow<'p, str>,
}

impl<'p> Failure<'p> {
    /// A failure of `key` (or of the whole request, when `None`).
    pub fn new(
        key: Option<&'p str>,
        error_code: ErrorCode,
        details: impl Into<Cow<'p, str>>,
    ) -> Self {
        Failure {
            key,
            error_code,
            error_details: details.into(),
        }
    }

    /// `FLAG_NOT_FOUND` for `key`.
    pub fn not_found(key: &'p str) -> Self {
        Failure::new(
            Some(key),
            ErrorCode::FlagNotFound,
            format!("No flag has the key {key:?} in this project."),
        )
    }

    /// `TARGETING_KEY_MISSING` (for `key`, or the whole request).
    pub fn targeting_key_missing(key: Option<&'p str>) -> Self {
        Failure::new(
            key,
            ErrorCode::TargetingKeyMissing,
            "The context has no targetingKey: Vexil evaluates flags for a distinct id, so set the targeting key to it.",
        )
    }
}

/// One flag's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Resolution<'p> {
    /// Evaluated.
    Success(Success<'p>),
    /// Not evaluated.
    Failure(Failure<'p>),
}

impl<'p> Resolution<'p> {
    /// The answer for an engine result.
    pub fn from_result(r: &FlagResult<'p>) -> Self {
        let reason = match r.reason.code {
            ReasonCode::ConditionMatch if r.variant().is_some() => Reason::Split,
            ReasonCode::ConditionMatch | ReasonCode::SuperConditionValue => Reason::TargetingMatch,
            ReasonCode::OutOfRolloutBound | ReasonCode::HoldoutConditionValue => Reason::Split,
            ReasonCode::NoConditionMatch | ReasonCode::NoGroupType => Reason::Default,
            ReasonCode::FlagDisabled => Reason::Disabled,
            ReasonCode::MissingDependency => Reason::Unknown,
            ReasonCode::Error(_) => {
                return Resolution::Failure(Failure::new(
                    Some(r.key()),
                    ErrorCode::General,
                    r.reason.description().to_string(),
                ))
            }
        };
        let value = match r.value {
            FlagValue::False => FlagValueJson::Bool(false),
            FlagValue::True => FlagValueJson::Bool(true),
            FlagValue::Variant(v) => FlagValueJson::Variant(v),
        };
        Resolution::Success(Success {
            key: r.key(),
            value: Some(value),
            reason,
            variant: r.variant(),
            metadata: Metadata {
                flag_id: r.flag.id(),
                version: r.flag.version(),
                payload: r.payload.and_then(payload_text),
            },
        })
    }

    /// The answer for an inactive flag, which the engine does not evaluate: `false`,
    /// `DISABLED`.
    pub fn disabled(flag: &'p CompiledFlag) -> Self {
        Resolution::Success(Success {
            key: flag.key(),
            value: Some(FlagValueJson::Bool(false)),
            reason: Reason::Disabled,
            variant: None,
            metadata: Metadata {
                flag_id: flag.id(),
                version: flag.version(),
                payload: None,
            },
        })
    }

    /// The answer for a remote-configuration flag: its payload parsed as JSON, `STATIC`
    /// (a JSON string payload that is not JSON text stays that string). An inactive one is
    /// `DISABLED` and one without a payload `DEFAULT`, both without a value, so the provider
    /// answers the caller's default.
    pub fn remote_configuration(def: &'p FlagDefinition) -> Self {
        let payload = def
            .filters
            .get("payloads")
            .and_then(|p| p.get("true"))
            .filter(|p| !p.is_null());
        let (value, reason) = match payload {
            _ if !def.active => (None, Reason::Disabled),
            None => (None, Reason::Default),
            Some(Value::String(text)) => (
                Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))),
                Reason::Static,
            ),
            Some(other) => (Some(other.clone()), Reason::Static),
        };
        Resolution::Success(Success {
            key: &def.key,
            value: value.map(FlagValueJson::Json),
            reason,
            variant: None,
            metadata: Metadata {
                flag_id: def.id,
                version: def.version,
                payload: payload.filter(|_| def.active).and_then(payload_text),
            },
        })
    }

    /// The HTTP status of this answer as a single-flag response.
    pub fn status(&self) -> u16 {
        match self {
            Resolution::Success(_) => 200,
            Resolution::Failure(f) => f.error_code.status(),
        }
    }
}

/// A stored payload as JSON text: a string is already that (PostHog stores payloads as JSON
/// strings), any other value is serialised.
fn payload_text(payload: &Value) -> Option<Cow<'_, str>> {
    match payload {
        Value::Null => None,
        Value::String(text) => Some(Cow::Borrowed(text)),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// The bulk response body, `{"flags": [...], "eventStreams": [...]}`. Deterministic for a given
/// evaluation (flags in definition order, no timestamps), so its hash is its ETag.
#[derive(Debug, Clone, Copy)]
pub struct BulkResponse<'a, 'p> {
    /// Every flag's answer.
    pub flags: &'a [Resolution<'p>],
    /// Where the provider hears about changes (ADR-0008), if anywhere.
    pub event_streams: &'a [EventStream<'a>],
}

/// An `eventStreams` entry: an SSE endpoint on the provider's own OFREP origin
/// (`endpoint.requestUri`, so the server never guesses its public address).
#[derive(Debug, Clone, Copy)]
pub struct EventStream<'a> {
    /// Path and query of the stream.
    pub request_uri: &'a str,
}

impl Serialize for EventStream<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("type", "sse")?;
        m.serialize_entry("endpoint", &Endpoint(self.request_uri))?;
        m.end()
    }
}

struct Endpoint<'a>(&'a str);

impl Serialize for Endpoint<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("requestUri", self.0)?;
        m.end()
    }
}

impl Serialize for BulkResponse<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let streams = !self.event_streams.is_empty();
        let mut m = s.serialize_map(Some(1 + usize::from(streams)))?;
        m.serialize_entry("flags", self.flags)?;
        if streams {
            m.serialize_entry("eventStreams", self.event_streams)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vexil_engine::{evaluate, CompiledProject, Definitions};

    use super::*;

    fn request(body: Value) -> Result<FlagsRequest, ContextError> {
        parse_request(body)
    }

    #[test]
    fn context_maps_to_the_flags_request() {
        let r = request(json!({"context": {
            "targetingKey": "user-1", "email": "a@example.com", "age": 30,
            "groups": {"company": "acme", "project": 7},
            "groupProperties": {"company": {"plan": "pro"}}
        }}))
        .unwrap();
        assert_eq!(r.distinct_id.as_deref(), Some("user-1"));
        assert_eq!(
            r.person_properties,
            json!({"email": "a@example.com", "age": 30})
                .as_object()
                .cloned()
        );
        assert_eq!(
            r.groups,
            json!({"company": "acme", "project": 7})
                .as_object()
                .cloned()
        );
        // The `$group_key` rule of `/flags` applies: group properties know their key.
        assert_eq!(
            r.group_properties,
            json!({"company": {"plan": "pro", "$group_key": "acme"},
                   "project": {"$group_key": 7}})
            .as_object()
            .cloned()
        );
    }

    #[test]
    fn a_missing_or_empty_targeting_key_leaves_the_distinct_id_unset() {
        for body in [
            json!({}),
            json!({"context": {}}),
            json!({"context": null}),
            json!({"context": {"targetingKey": ""}}),
            json!({"context": {"targetingKey": null, "plan": "pro"}}),
        ] {
            assert_eq!(request(body.clone()).unwrap().distinct_id, None, "{body}");
        }
        // Numbers are ids too, as in `/flags`.
        let r = request(json!({"context": {"targetingKey": 42}})).unwrap();
        assert_eq!(r.distinct_id.as_deref(), Some("42"));
    }

    #[test]
    fn bad_contexts_name_the_field() {
        for (body, field, code) in [
            (json!([1]), None, ErrorCode::ParseError),
            (json!("context"), None, ErrorCode::ParseError),
            (
                json!({"context": []}),
                Some("context"),
                ErrorCode::InvalidContext,
            ),
            (
                json!({"context": {"targetingKey": {"id": 1}}}),
                Some("context.targetingKey"),
                ErrorCode::InvalidContext,
            ),
            (
                json!({"context": {"groups": "acme"}}),
                Some("context.groups"),
                ErrorCode::InvalidContext,
            ),
            (
                json!({"context": {"groups": {"company": {"id": 1}}}}),
                Some("context.groups.company"),
                ErrorCode::InvalidContext,
            ),
            (
                json!({"context": {"groupProperties": {"company": "pro"}}}),
                Some("context.groupProperties.company"),
                ErrorCode::InvalidContext,
            ),
        ] {
            let error = request(body.clone()).unwrap_err();
            assert_eq!(error.code(), code, "{body}");
            match (&error, field) {
                (ContextError::Field(e), Some(field)) => assert_eq!(e.field, field, "{body}"),
                (ContextError::NotAnObject, None) => {}
                _ => panic!("{body}: {error:?}"),
            }
        }
    }

    fn project() -> CompiledProject {
        let defs: Definitions = serde_json::from_value(json!({"flags": [
            {"id": 1, "key": "on", "active": true, "version": 3,
             "filters": {"groups": [{"properties": [{"key": "plan", "type": "person",
                                                     "operator": "exact", "value": "pro"}],
                                     "rollout_percentage": 100}],
                         "payloads": {"true": "{\"limit\": 5}"}}},
            {"id": 2, "key": "nobody", "active": true,
             "filters": {"groups": [{"rollout_percentage": 0}]}},
            {"id": 3, "key": "colour", "active": true,
             "filters": {"groups": [{"rollout_percentage": 100}],
                         "multivariate": {"variants": [{"key": "blue", "rollout_percentage": 100}]},
                         "payloads": {"blue": {"hex": "#00f"}}}},
            {"id": 4, "key": "off", "active": false, "filters": {"groups": []}},
            {"id": 5, "key": "broken", "active": true,
             "filters": {"groups": [{"properties": [{"key": "x", "type": "person",
                                                     "operator": "no_such_operator", "value": 1}]}]}}
        ]}))
        .unwrap();
        CompiledProject::compile(&defs)
    }

    fn resolve(project: &CompiledProject, body: Value, key: &str) -> Value {
        let request = parse_request(body).unwrap();
        let evaluation = evaluate(project, &request.context(chrono::DateTime::UNIX_EPOCH));
        let result = evaluation.get(key).unwrap();
        serde_json::to_value(Resolution::from_result(result)).unwrap()
    }

    #[test]
    fn results_project_to_values_reasons_and_metadata() {
        let project = project();
        let pro = json!({"context": {"targetingKey": "u", "plan": "pro"}});
        assert_eq!(
            resolve(&project, pro.clone(), "on"),
            json!({"key": "on", "value": true, "reason": "TARGETING_MATCH", "variant": null,
                   "metadata": {"flagId": 1, "version": 3, "payload": "{\"limit\": 5}"}})
        );
        let free = json!({"context": {"targetingKey": "u", "plan": "free"}});
        assert_eq!(resolve(&project, free, "on")["reason"], "DEFAULT");
        let nobody = resolve(&project, pro.clone(), "nobody");
        assert_eq!(
            (&nobody["value"], &nobody["reason"]),
            (&json!(false), &json!("SPLIT"))
        );
        assert_eq!(
            resolve(&project, pro.clone(), "colour"),
            json!({"key": "colour", "value": "blue", "reason": "SPLIT", "variant": "blue",
                   "metadata": {"flagId": 3, "version": 0, "payload": "{\"hex\":\"#00f\"}"}})
        );
        assert_eq!(
            resolve(&project, pro, "broken"),
            json!({"key": "broken", "errorCode": "GENERAL",
                   "errorDetails": "Flag definition could not be parsed"})
        );
    }

    #[test]
    fn inactive_and_remote_configuration_flags() {
        let project = project();
        let off = serde_json::to_value(Resolution::disabled(project.flag("off").unwrap())).unwrap();
        assert_eq!(
            off,
            json!({"key": "off", "value": false, "reason": "DISABLED", "variant": null,
                   "metadata": {"flagId": 4, "version": 0}})
        );
        let remote = |payload: Value, active: bool| {
            let def: FlagDefinition = serde_json::from_value(json!({
                "id": 9, "key": "limits", "active": active, "version": 2,
                "filters": {"groups": [], "payloads": {"true": payload}}}))
            .unwrap();
            serde_json::to_value(Resolution::remote_configuration(&def)).unwrap()
        };
        assert_eq!(
            remote(json!("{\"max\": 10}"), true),
            json!({"key": "limits", "value": {"max": 10}, "reason": "STATIC", "variant": null,
                   "metadata": {"flagId": 9, "version": 2, "payload": "{\"max\": 10}"}})
        );
        assert_eq!(remote(json!("42"), true)["value"], 42);
        assert_eq!(remote(json!("plain text"), true)["value"], "plain text");
        assert_eq!(remote(json!([1, 2]), true)["value"], json!([1, 2]));
        let off = remote(json!("1"), false);
        assert_eq!(
            (off.get("value"), &off["reason"]),
            (None, &json!("DISABLED"))
        );
        let empty = remote(Value::Null, true);
        assert_eq!(
            (empty.get("value"), &empty["reason"]),
            (None, &json!("DEFAULT"))
        );
    }

    #[test]
    fn failures_and_statuses() {
        assert_eq!(
            serde_json::to_value(Failure::not_found("nope")).unwrap(),
            json!({"key": "nope", "errorCode": "FLAG_NOT_FOUND",
                   "errorDetails": "No flag has the key \"nope\" in this project."})
        );
        let bulk = serde_json::to_value(Failure::targeting_key_missing(None)).unwrap();
        assert_eq!(bulk.get("key"), None);
        assert_eq!(bulk["errorCode"], "TARGETING_KEY_MISSING");
        for (code, status) in [
            (ErrorCode::FlagNotFound, 404),
            (ErrorCode::ParseError, 400),
            (ErrorCode::TargetingKeyMissing, 400),
            (ErrorCode::InvalidContext, 400),
            (ErrorCode::General, 500),
        ] {
            assert_eq!(code.status(), status, "{code:?}");
        }
    }

    #[test]
    fn bulk_response_advertises_event_streams_only_when_given() {
        let streams = [EventStream {
            request_uri: "/ofrep/v1/stream?token=phc_x",
        }];
        let with = BulkResponse {
            flags: &[],
            event_streams: &streams,
        };
        assert_eq!(
            serde_json::to_value(with).unwrap(),
            json!({"flags": [], "eventStreams": [
                {"type": "sse", "endpoint": {"requestUri": "/ofrep/v1/stream?token=phc_x"}}
            ]})
        );
        let without = BulkResponse {
            flags: &[],
            event_streams: &[],
        };
        assert_eq!(serde_json::to_value(without).unwrap(), json!({"flags": []}));
    }
}
