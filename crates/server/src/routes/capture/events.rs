//! Parsed capture bodies → stored events: project resolution by token, the event each parsed
//! event becomes ([`new_event`]: uuid, clock-skew corrected timestamp, merged `$set`), and the
//! hand-off to the capture pipeline, answered only once durable.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;
use vexil_store::{NewEvent, ProjectId, StoreError};
use vexil_wire::capture::{CaptureError, Event};
use vexil_wire::decode::JsonText;

use super::limits;
use crate::error::ApiError;
use crate::ingest::IngestError;
use crate::overload::Bucket;
use crate::state::AppState;

/// Events stamped further ahead than this (after clock-skew correction) are stamped "now", as
/// PostHog's ingestion does with events from a client clock that is far off.
const MAX_FUTURE: TimeDelta = TimeDelta::hours(23);

/// Refuses a decoded capture body, before it is parsed, whose token is missing (401), names no
/// loaded project (401) or cannot be settled (400: not an event, events with different tokens).
pub(crate) fn check_token(state: &AppState, text: &JsonText<'_>) -> Result<(), ApiError> {
    let token = vexil_wire::capture::token_of(text)
        .map_err(capture_error)?
        .ok_or_else(|| capture_error(CaptureError::MissingToken))?;
    match state.catalog.by_token(&token) {
        Some(_) => Ok(()),
        None => Err(unknown_token()),
    }
}

/// The 401 of a token that names no project.
pub(crate) fn unknown_token() -> ApiError {
    ApiError::authentication_failed(
        "The provided API key is invalid or has expired. Please check your API key and try again.",
    )
}

/// Parses a decoded capture body, resolves its project and stores its events (durably) through
/// the capture pipeline. `sent_at_ms` is posthog-js's `_` query parameter, used when the body
/// carries no `sent_at`.
pub(crate) async fn store_batch(
    state: &AppState,
    decoded: Value,
    sent_at_ms: Option<i64>,
) -> Result<(), ApiError> {
    let batch = vexil_wire::capture::parse(decoded).map_err(capture_error)?;
    limits::check_count(batch.events.len())?;
    let snapshot = state
        .catalog
        .by_token(&batch.token)
        .ok_or_else(unknown_token)?;
    state
        .overload
        .check(Bucket::Capture, snapshot.project.id)
        .await?;
    // The body's `sent_at` (server SDKs), else posthog-js's `_` parameter in milliseconds.
    let sent_at = batch
        .sent_at
        .as_deref()
        .and_then(parse_timestamp)
        .or_else(|| sent_at_ms.and_then(sent_at_millis));
    let now = state.settings.clock.now();
    let events = batch
        .events
        .into_iter()
        .map(|event| new_event(event, sent_at, now))
        .collect::<Vec<_>>();
    limits::check_events(&events)?;
    state
        .ingest
        .submit(snapshot.project.id, events)
        .await
        .map_err(|e| ingest_error(e, snapshot.project.id))?;
    Ok(())
}

/// The answer to a request the pipeline did not store.
fn ingest_error(e: IngestError, project: ProjectId) -> ApiError {
    match e {
        IngestError::Limit { limit, max, event } => ApiError::validation(
            "limit_exceeded",
            format!("Event {event} would break the limit {limit} ({max}); nothing of the request was stored."),
        )
        .attr(format!("batch[{event}]")),
        IngestError::Store(e) if matches!(*e, StoreError::Full(_)) => {
            tracing::error!(error = %e, project = %project, "capture not stored: disk full");
            ApiError::insufficient_storage()
        }
        e => {
            tracing::error!(error = %e, project = %project, "capture not stored");
            ApiError::unavailable(
                "The events could not be stored and were not accepted. Please retry.",
            )
        }
    }
}

/// The answer to a body that is not a capture request.
fn capture_error(e: CaptureError) -> ApiError {
    let attr = match &e {
        CaptureError::MissingToken => {
            return ApiError::not_authenticated(
                "No API token provided. Please include a valid API token in your request.",
            )
        }
        CaptureError::MissingField(field) => Some(field.clone()),
        CaptureError::Field(f) => Some(f.field.to_string()),
        CaptureError::InvalidShape | CaptureError::EmptyBatch | CaptureError::MultipleTokens => {
            None
        }
    };
    let error = ApiError::invalid(format!("Invalid request: {e}."));
    match attr {
        Some(attr) => error.attr(attr),
        None => error,
    }
}

/// The event to store for a parsed event, received at `now` in a request sent at `sent_at`
/// (client clock).
///
/// * `uuid`: as sent, or a new v4 when missing or unparsable.
/// * `timestamp`: the client's, corrected for the client's clock skew when `sent_at` is known
///   (`timestamp + (now - sent_at)`, unless the event sets `$ignore_sent_at`); without one,
///   `now - offset` (posthog-js); else `now`. Unparsable timestamps and ones more than 23 hours
///   ahead become `now`, as in PostHog's ingestion.
/// * `properties`: with the top-level `$set` / `$set_once` (posthog-python's `set()`) merged into
///   `properties.$set` / `.$set_once`, the top level winning per key, so the pipeline applies them.
pub fn new_event(event: Event, sent_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> NewEvent {
    let uuid = event
        .uuid
        .as_deref()
        .and_then(|u| Uuid::parse_str(u.trim()).ok())
        .unwrap_or_else(Uuid::new_v4);
    let timestamp = event_time(&event, sent_at, now);
    let mut properties = event.properties;
    for (key, top_level) in [("$set", event.set), ("$set_once", event.set_once)] {
        if let Some(top_level) = top_level {
            merge_object(&mut properties, key, top_level);
        }
    }
    NewEvent {
        uuid,
        event: event.event,
        distinct_id: event.distinct_id,
        properties,
        timestamp,
    }
}

fn event_time(event: &Event, sent_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    let ignore_sent_at = event
        .properties
        .get("$ignore_sent_at")
        .is_some_and(|v| v == &Value::Bool(true));
    let sent_at = sent_at.filter(|_| !ignore_sent_at);
    let at = match (&event.timestamp, event.offset) {
        (Some(text), _) => parse_timestamp(text).and_then(|t| match sent_at {
            Some(sent_at) => t.checked_add_signed(now - sent_at),
            None => Some(t),
        }),
        (None, Some(offset)) => {
            TimeDelta::try_milliseconds(offset).and_then(|d| now.checked_sub_signed(d))
        }
        (None, None) => None,
    };
    at.filter(|t| *t - now <= MAX_FUTURE).unwrap_or(now)
}

/// An ISO 8601 / RFC 3339 timestamp (a naive one is UTC) or an RFC 2822 one.
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.to_utc());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| t.and_utc())
        .or_else(|| Some(DateTime::parse_from_rfc2822(text).ok()?.to_utc()))
}

/// posthog-js's `_` parameter: milliseconds; values before 2021 are taken to be seconds from an
/// old SDK and ignored, as PostHog does.
fn sent_at_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).filter(|t| t.timestamp() >= 1_609_459_200)
}

/// Merges `top_level` into the object at `properties[key]`, the top level winning per key.
fn merge_object(properties: &mut Map<String, Value>, key: &str, top_level: Map<String, Value>) {
    match properties.get_mut(key) {
        Some(Value::Object(existing)) => existing.extend(top_level),
        _ => {
            properties.insert(key.to_owned(), Value::Object(top_level));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(text: &str) -> DateTime<Utc> {
        parse_timestamp(text).unwrap()
    }

    fn event(fields: Value) -> Event {
        let mut body = json!({"token": "phc_x", "event": "e", "distinct_id": "d"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        vexil_wire::capture::parse(body).unwrap().events.remove(0)
    }

    #[test]
    fn timestamps() {
        let now = t("2026-01-02T12:00:00Z");
        // (event fields, sent_at, expected timestamp)
        let cases = [
            (json!({}), None, "2026-01-02T12:00:00Z"),
            (
                json!({"timestamp": "2026-01-02T11:00:00+00:00"}),
                None,
                "2026-01-02T11:00:00Z",
            ),
            // The client clock is 5 minutes behind: the event moves 5 minutes later.
            (
                json!({"timestamp": "2026-01-02T10:55:00Z"}),
                Some("2026-01-02T11:55:00Z"),
                "2026-01-02T11:00:00Z",
            ),
            (
                json!({"timestamp": "2026-01-02T10:55:00Z",
                       "properties": {"$ignore_sent_at": true}}),
                Some("2026-01-02T11:55:00Z"),
                "2026-01-02T10:55:00Z",
            ),
            (
                json!({"timestamp": "2026-01-02T13:00:00+01:00"}),
                None,
                "2026-01-02T12:00:00Z",
            ),
            (
                json!({"timestamp": "2026-01-02T11:00:00.250"}),
                None,
                "2026-01-02T11:00:00.250Z",
            ),
            (json!({"offset": 1500}), None, "2026-01-02T11:59:58.500Z"),
            (
                json!({"timestamp": "yesterday"}),
                None,
                "2026-01-02T12:00:00Z",
            ),
            (
                json!({"timestamp": "2026-01-04T12:00:00Z"}),
                None,
                "2026-01-02T12:00:00Z",
            ),
        ];
        for (fields, sent_at, expected) in cases {
            let e = event(fields.clone());
            assert_eq!(
                event_time(&e, sent_at.map(t), now),
                t(expected),
                "{fields} sent at {sent_at:?}"
            );
        }
    }

    #[test]
    fn sent_at_parameter_is_milliseconds_after_2020() {
        assert_eq!(
            sent_at_millis(1_767_355_200_000),
            Some(t("2026-01-02T12:00:00Z"))
        );
        assert_eq!(sent_at_millis(1_767_355_200), None);
    }

    #[test]
    fn top_level_set_is_merged_into_properties() {
        let now = Utc::now();
        let e = new_event(
            event(json!({
                "$set": {"plan": "pro", "seats": 3},
                "$set_once": {"first": "a"},
                "properties": {"$set": {"plan": "free", "email": "x@y"}},
                "uuid": "00000000-0000-4000-8000-000000000001",
            })),
            None,
            now,
        );
        assert_eq!(
            e.properties["$set"],
            json!({"plan": "pro", "seats": 3, "email": "x@y"})
        );
        assert_eq!(e.properties["$set_once"], json!({"first": "a"}));
        assert_eq!(e.uuid.to_string(), "00000000-0000-4000-8000-000000000001");
        assert_eq!(e.timestamp, now);
        let fresh = new_event(event(json!({"uuid": "not-a-uuid"})), None, now);
        assert_eq!(fresh.uuid.get_version_num(), 4);
    }
}
