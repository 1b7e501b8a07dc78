//! Capture bodies (spec §10.4), as decoded by [`mod@crate::decode`]: the server SDKs'
//! `{"api_key", "batch": [...], "sent_at"}`, posthog-js's single events and arrays of events.
//!
//! The API token may be at the top level (`api_key`, `token`, `$token`), on each event, or in each
//! event's `properties` (`token`, `$token`, as posthog-js sends it). The distinct id may be on the
//! event or in its `properties`.

mod token;

use std::fmt;

use serde_json::{Map, Value};
use vexil_engine::Properties;

use crate::distinct_id;
use crate::field::{self, FieldError};

const TOKEN_FIELDS: [&str; 3] = ["api_key", "token", "$token"];

pub use token::token_of;

/// Why a capture body cannot be accepted (a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The body is neither an object nor an array.
    #[error("capture body must be an event, an array of events or a batch")]
    InvalidShape,
    /// No events.
    #[error("the request contains no events")]
    EmptyBatch,
    /// No non-empty token anywhere.
    #[error("no API token in the request")]
    MissingToken,
    /// Events carry different tokens (and the body has none of its own).
    #[error("events carry different API tokens")]
    MultipleTokens,
    /// A required event field is absent or empty (`batch[2].distinct_id`).
    #[error("{0} is missing")]
    MissingField(String),
    /// A known field has the wrong type.
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// A parsed capture request.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureBatch {
    /// The project API key.
    pub token: String,
    /// The events, in request order.
    pub events: Vec<Event>,
    /// `sent_at` of a batch (client clock, ISO 8601).
    pub sent_at: Option<String>,
    /// `historical_migration` of a batch.
    pub historical_migration: bool,
}

/// One captured event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event name (`$feature_flag_called`, `$pageview`, ...).
    pub event: String,
    /// Distinct id (numbers stringified, truncated to 200 characters).
    pub distinct_id: String,
    /// Event properties (empty when absent).
    pub properties: Properties,
    /// Client timestamp (ISO 8601), if sent.
    pub timestamp: Option<String>,
    /// posthog-js `offset`: ms between the event and sending, when it sends no timestamp.
    pub offset: Option<i64>,
    /// Event UUID, if sent.
    pub uuid: Option<String>,
    /// Top-level `$set` (posthog-python puts person updates here).
    pub set: Option<Properties>,
    /// Top-level `$set_once`.
    pub set_once: Option<Properties>,
}

impl Event {
    /// Person properties to set: the top-level `$set`, else `properties.$set`.
    pub fn person_set(&self) -> Option<&Properties> {
        self.set
            .as_ref()
            .or_else(|| self.properties.get("$set")?.as_object())
    }

    /// Person properties to set once: the top-level `$set_once`, else `properties.$set_once`.
    pub fn person_set_once(&self) -> Option<&Properties> {
        self.set_once
            .as_ref()
            .or_else(|| self.properties.get("$set_once")?.as_object())
    }

    /// The event's own token: on the event, else in its properties.
    fn token<'a>(raw_token: Option<&'a str>, properties: &'a Properties) -> Option<&'a str> {
        raw_token.filter(|t| !t.is_empty()).or_else(|| {
            ["token", "$token"]
                .iter()
                .find_map(|k| properties.get(*k)?.as_str().filter(|t| !t.is_empty()))
        })
    }
}

/// Parses a decoded capture body.
pub fn parse(body: Value) -> Result<CaptureBatch, CaptureError> {
    match body {
        Value::Object(mut map) => match field::take(&mut map, &["batch"]) {
            Some((_, batch)) => parse_batch(map, batch),
            None => collect(None, vec![Value::Object(map)], Place::Single, None, false),
        },
        Value::Array(items) => collect(None, items, Place::Array, None, false),
        _ => Err(CaptureError::InvalidShape),
    }
}

fn parse_batch(mut map: Map<String, Value>, batch: Value) -> Result<CaptureBatch, CaptureError> {
    let token = field::optional(&mut map, &TOKEN_FIELDS, field::string)?;
    let sent_at = field::optional(&mut map, &["sent_at"], field::string)?;
    let historical = field::optional(&mut map, &["historical_migration"], field::boolean)?;
    let Value::Array(items) = batch else {
        return Err(FieldError::new("batch", "an array").into());
    };
    collect(
        token,
        items,
        Place::Batch,
        sent_at,
        historical.unwrap_or(false),
    )
}

/// Where the events sit in the body, for error paths (`batch[2].event`).
#[derive(Clone, Copy)]
enum Place {
    Single,
    Array,
    Batch,
}

/// The path prefix of one event's fields, formatted only when an error names it.
#[derive(Clone, Copy)]
struct EventPath(Place, usize);

impl fmt::Display for EventPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Place::Single => Ok(()),
            Place::Array => write!(f, "[{}].", self.1),
            Place::Batch => write!(f, "batch[{}].", self.1),
        }
    }
}

impl EventPath {
    fn field(self, name: &str) -> String {
        format!("{self}{name}")
    }
}

/// Parses the events and settles the token.
fn collect(
    token: Option<String>,
    items: Vec<Value>,
    place: Place,
    sent_at: Option<String>,
    historical_migration: bool,
) -> Result<CaptureBatch, CaptureError> {
    if items.is_empty() {
        return Err(CaptureError::EmptyBatch);
    }
    let mut token = token.filter(|t| !t.is_empty());
    let trust_events = token.is_none();
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let (event, event_token) = parse_event(EventPath(place, i), item)?;
        if trust_events {
            if let Some(t) = Event::token(event_token.as_deref(), &event.properties) {
                match &token {
                    None => token = Some(t.to_owned()),
                    Some(seen) if seen != t => return Err(CaptureError::MultipleTokens),
                    Some(_) => {}
                }
            }
        }
        events.push(event);
    }
    Ok(CaptureBatch {
        token: token.ok_or(CaptureError::MissingToken)?,
        events,
        sent_at,
        historical_migration,
    })
}

/// One event, with the token found on it (not in its properties).
fn parse_event(path: EventPath, item: Value) -> Result<(Event, Option<String>), CaptureError> {
    let at = |e: FieldError| FieldError::new(path.field(&e.field), e.expected);
    let missing = |name: &str| CaptureError::MissingField(path.field(name));
    let Value::Object(mut m) = item else {
        let prefix = path.to_string();
        let name = prefix.strip_suffix('.').unwrap_or("event").to_owned();
        return Err(FieldError::new(name, "an object").into());
    };
    let m = &mut m;
    let token = field::optional(m, &TOKEN_FIELDS, field::string).map_err(at)?;
    let event = field::optional(m, &["event"], field::string)
        .map_err(at)?
        .filter(|e| !e.is_empty())
        .ok_or_else(|| missing("event"))?;
    let properties = field::optional(m, &["properties"], field::object)
        .map_err(at)?
        .unwrap_or_default();
    let distinct_id = match field::take(m, &["distinct_id", "$distinct_id"]) {
        Some((name, v)) => distinct_id::from_value(name, v).map_err(at)?,
        None => {
            let (name, v) = ["distinct_id", "$distinct_id"]
                .iter()
                .find_map(|&k| properties.get(k).filter(|v| !v.is_null()).map(|v| (k, v)))
                .ok_or_else(|| missing("distinct_id"))?;
            distinct_id::from_value(name, v.clone()).map_err(|e| {
                at(FieldError::new(
                    format!("properties.{}", e.field),
                    e.expected,
                ))
            })?
        }
    };
    // PostHog's capture rejects an empty distinct id like a missing one.
    if distinct_id.is_empty() {
        return Err(missing("distinct_id"));
    }
    let event = Event {
        event,
        distinct_id,
        timestamp: field::optional(m, &["timestamp"], field::string).map_err(at)?,
        offset: field::optional(m, &["offset"], integer).map_err(at)?,
        uuid: field::optional(m, &["uuid"], field::string).map_err(at)?,
        set: field::optional(m, &["$set"], field::object).map_err(at)?,
        set_once: field::optional(m, &["$set_once"], field::object).map_err(at)?,
        properties,
    };
    Ok((event, token))
}

fn integer(name: &'static str, value: Value) -> Result<i64, FieldError> {
    value
        .as_i64()
        .ok_or_else(|| FieldError::new(name, "an integer"))
}
