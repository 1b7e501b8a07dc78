//! Captured events, and the `$feature_flag_called` calls kept apart for flag history and
//! staleness (`posthog-compat.md` §10).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::Properties;

/// The event name SDKs send when a flag is evaluated.
pub const FEATURE_FLAG_CALLED: &str = "$feature_flag_called";

/// An event to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Idempotency key: an event whose uuid is already stored for the project is skipped.
    pub uuid: Uuid,
    /// Event name (`$pageview`, `$feature_flag_called`, …).
    pub event: String,
    /// Who did it.
    pub distinct_id: String,
    /// Event properties.
    pub properties: Properties,
    /// When it happened (the SDK's timestamp, clock-skew corrected by the caller).
    pub timestamp: DateTime<Utc>,
}

/// The flag-call facts of a `$feature_flag_called` event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FlagCall<'a> {
    pub(crate) flag_key: &'a str,
    pub(crate) response: &'a Value,
}

impl NewEvent {
    /// The flag call this event records, if it is a `$feature_flag_called` naming a flag.
    pub(crate) fn flag_call(&self) -> Option<FlagCall<'_>> {
        if self.event != FEATURE_FLAG_CALLED {
            return None;
        }
        let flag_key = self.properties.get("$feature_flag")?.as_str()?;
        Some(FlagCall {
            flag_key,
            response: self
                .properties
                .get("$feature_flag_response")
                .unwrap_or(&Value::Null),
        })
    }
}

/// A stored `$feature_flag_called` call, with the properties its event carried
/// ([`crate::Store::flag_calls`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FlagCallRecord {
    /// The event's uuid.
    pub uuid: Uuid,
    /// The flag called (`$feature_flag`).
    pub flag_key: String,
    /// Who called it.
    pub distinct_id: String,
    /// What the SDK answered (`$feature_flag_response`): a variant, `true`/`false`, or null.
    pub response: Value,
    /// When (the event's timestamp).
    pub at: DateTime<Utc>,
    /// Every property of the event (empty when the event itself is gone).
    pub properties: Properties,
}

/// The facts current SDKs report with a flag call (`posthog-compat.md` §10.2), typed; `None`
/// where the event did not say (older SDKs, minimal events).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlagCallDetails {
    /// `locally_evaluated`: answered from the definitions feed rather than `/flags`.
    pub locally_evaluated: Option<bool>,
    /// `$feature_flag_id`.
    pub flag_id: Option<i64>,
    /// `$feature_flag_version`.
    pub flag_version: Option<i64>,
    /// `$feature_flag_reason` (the reason's description, or its code).
    pub reason: Option<String>,
    /// `$feature_flag_request_id`: the `/flags` response the answer came from.
    pub request_id: Option<String>,
    /// `$feature_flag_evaluated_at`, ms since the epoch.
    pub evaluated_at: Option<i64>,
    /// `$feature_flag_has_experiment`.
    pub has_experiment: Option<bool>,
    /// `$feature_flag_error`, split: empty when the SDK reported none.
    pub errors: Vec<FlagCallError>,
    /// `$feature_flag_payload`.
    pub payload: Option<Value>,
    /// `$lib` (`posthog-python`, `posthog-node`, …).
    pub lib: Option<String>,
    /// `$lib_version`.
    pub lib_version: Option<String>,
}

/// One entry of `$feature_flag_error` (the SDKs send them comma-joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagCallError {
    /// `errors_while_computing_flags`: the server marked the response as partial.
    ErrorsWhileComputingFlags,
    /// `flag_missing`: the flag was not in the response.
    FlagMissing,
    /// `quota_limited`.
    QuotaLimited,
    /// `timeout`.
    Timeout,
    /// `connection_error`.
    ConnectionError,
    /// `unknown_error`.
    UnknownError,
    /// `api_error_<status>`.
    ApiError(u16),
    /// Anything else an SDK may send, kept as sent.
    Other(String),
}

impl FlagCallError {
    /// Parses one entry.
    pub fn parse(text: &str) -> FlagCallError {
        match text {
            "errors_while_computing_flags" => FlagCallError::ErrorsWhileComputingFlags,
            "flag_missing" => FlagCallError::FlagMissing,
            "quota_limited" => FlagCallError::QuotaLimited,
            "timeout" => FlagCallError::Timeout,
            "connection_error" => FlagCallError::ConnectionError,
            "unknown_error" => FlagCallError::UnknownError,
            other => match other.strip_prefix("api_error_").map(str::parse) {
                Some(Ok(status)) => FlagCallError::ApiError(status),
                _ => FlagCallError::Other(other.to_owned()),
            },
        }
    }

    /// The entry as SDKs spell it.
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            FlagCallError::ErrorsWhileComputingFlags => "errors_while_computing_flags".into(),
            FlagCallError::FlagMissing => "flag_missing".into(),
            FlagCallError::QuotaLimited => "quota_limited".into(),
            FlagCallError::Timeout => "timeout".into(),
            FlagCallError::ConnectionError => "connection_error".into(),
            FlagCallError::UnknownError => "unknown_error".into(),
            FlagCallError::ApiError(status) => format!("api_error_{status}").into(),
            FlagCallError::Other(text) => text.as_str().into(),
        }
    }
}

impl Serialize for FlagCallError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_text())
    }
}

impl FlagCallRecord {
    /// The SDK-reported facts of this call.
    pub fn details(&self) -> FlagCallDetails {
        let p = &self.properties;
        let text = |name: &str| p.get(name).and_then(Value::as_str).map(str::to_owned);
        let flag = |name: &str| p.get(name).and_then(Value::as_bool);
        // Numbers may arrive as JSON numbers or numeric strings, depending on the SDK.
        let int = |name: &str| match p.get(name)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        FlagCallDetails {
            locally_evaluated: flag("locally_evaluated"),
            flag_id: int("$feature_flag_id"),
            flag_version: int("$feature_flag_version"),
            reason: text("$feature_flag_reason"),
            request_id: text("$feature_flag_request_id"),
            evaluated_at: int("$feature_flag_evaluated_at"),
            has_experiment: flag("$feature_flag_has_experiment"),
            errors: text("$feature_flag_error")
                .map(|all| {
                    all.split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(FlagCallError::parse)
                        .collect()
                })
                .unwrap_or_default(),
            payload: p.get("$feature_flag_payload").cloned(),
            lib: text("$lib"),
            lib_version: text("$lib_version"),
        }
    }
}
