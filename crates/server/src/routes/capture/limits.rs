//! Caps on what one capture request may carry, checked before anything is queued: a request
//! over a cap is refused whole (413 or 400 naming the limit and the event) and stores nothing.
//! The cap on properties per person is the store's ([`vexil_store::MAX_PERSON_PROPERTIES`]),
//! checked inside the batch transaction.

use serde::Serialize;
use vexil_store::NewEvent;

use crate::error::ApiError;

/// Most events one request may carry. SDKs send at most 100 (posthog-python's and
/// posthog-node's batch size; posthog-js sends fewer); one request is one share of a
/// transaction, so this also bounds the work a single request can queue.
pub const MAX_EVENTS_PER_REQUEST: usize = 2_000;

/// Largest event, as JSON (name, distinct id and properties): PostHog capture's 1 MB limit.
pub const MAX_EVENT_BYTES: usize = 1_000_000;

/// Largest value of one person or group property (`$set`, `$set_once`, `$group_set`), as JSON.
/// Person properties are read on every `/flags` call for the person and rewritten on every
/// change, so one value must stay small.
pub const MAX_PROPERTY_VALUE_BYTES: usize = 65_536;

/// Refuses a request over the event count cap (413), before its events are converted.
pub fn check_count(events: usize) -> Result<(), ApiError> {
    if events > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::too_large(format!(
            "The request carries {events} events, over the limit MAX_EVENTS_PER_REQUEST \
             ({MAX_EVENTS_PER_REQUEST}); nothing was stored. Send smaller batches."
        ))
        .attr("batch"));
    }
    Ok(())
}

/// Refuses a request holding an event over [`MAX_EVENT_BYTES`] (413) or a person or group
/// property value over [`MAX_PROPERTY_VALUE_BYTES`] (400), naming the first one.
pub fn check_events(events: &[NewEvent]) -> Result<(), ApiError> {
    for (i, event) in events.iter().enumerate() {
        let size = json_len(&event.properties) + event.event.len() + event.distinct_id.len();
        if size > MAX_EVENT_BYTES {
            return Err(ApiError::too_large(format!(
                "Event {i} is {size} bytes, over the limit MAX_EVENT_BYTES ({MAX_EVENT_BYTES}); \
                 nothing of the request was stored."
            ))
            .attr(format!("batch[{i}]")));
        }
        for key in ["$set", "$set_once", "$group_set"] {
            let Some(object) = event.properties.get(key).and_then(|v| v.as_object()) else {
                continue;
            };
            for (name, value) in object {
                let size = json_len(value);
                if size > MAX_PROPERTY_VALUE_BYTES {
                    return Err(ApiError::validation(
                        "limit_exceeded",
                        format!(
                            "The value of {key}.{name} is {size} bytes, over the limit \
                             MAX_PROPERTY_VALUE_BYTES ({MAX_PROPERTY_VALUE_BYTES}); nothing of \
                             the request was stored."
                        ),
                    )
                    .attr(format!("batch[{i}].properties.{key}.{name}")));
                }
            }
        }
    }
    Ok(())
}

/// The length of `value` as JSON, without building the text.
fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail; a value that cannot be serialized counts as empty.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_len_is_the_serialized_length() {
        let v = json!({"a": [1, "two", null], "b": {"c": 1.5}});
        assert_eq!(json_len(&v), v.to_string().len());
    }
}
