//! Capture batches: events with the person and group changes they carry, written in one
//! transaction ([`crate::Store::write_capture`]).

use crate::{NewEvent, PersonUpdate, Properties};

/// Most properties one person may hold. A `$set` / `$set_once` that would grow a person past it
/// is refused ([`crate::StoreError::LimitExceeded`]); merges (`$identify`) are never refused.
/// Person properties are read on every `/flags` evaluation of the person and rewritten whole
/// on every change, so their number bounds both. PostHog publishes no such cap; SDKs set a few
/// dozen (`$initial_*`, browser and device properties).
pub const MAX_PERSON_PROPERTIES: usize = 2_000;

/// A captured event and, in order, the changes it makes to persons and groups.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedEvent {
    /// The event to store. Its uuid is the idempotency key: an event already stored (or seen
    /// earlier in the same batch) is skipped with all its effects.
    pub event: NewEvent,
    /// What the event changes, applied in order after the event is stored.
    pub effects: Vec<Effect>,
}

/// One change a captured event makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `$identify` / `$create_alias`: joins `other` (the anonymous id, the alias) into the
    /// person of the event's distinct id, by the rules of [`crate::Store::identify`].
    Merge {
        /// The distinct id to join.
        other: String,
    },
    /// `$set` / `$set_once` / `$unset` on the person of the event's distinct id (created if
    /// needed).
    Person(PersonUpdate),
    /// `$groupidentify`: creates the group if needed and overwrites the given properties.
    Group {
        /// The group type index (0–4).
        group_type_index: i64,
        /// The group key (not empty).
        group_key: String,
        /// Properties to overwrite.
        set: Properties,
    },
}

/// What a capture batch did, once committed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureOutcome {
    /// Events stored by this batch.
    pub new_events: u64,
    /// Events skipped because their uuid was already stored (a retried delivery).
    pub duplicates: u64,
    /// Indices in the batch of the events this batch stored (not the duplicates), ascending:
    /// what state derived from events (behavioural counts) adds once committed.
    pub stored: Vec<usize>,
    /// Effects the store refused as invalid (an empty group key, an index out of range), as
    /// `(event index in the batch, reason)`; PostHog drops those too and keeps the event.
    pub skipped: Vec<(usize, String)>,
}
