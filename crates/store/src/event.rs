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
