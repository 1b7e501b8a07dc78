//! Behavioural counts for flag checks: every committed capture event that a behavioural cohort
//! counts is recorded per project, per distinct id and per counted [`Track`] (an event
//! signature at a bucket resolution); a `/flags` request reads the counts of the person's
//! distinct ids once, before evaluation ([`Counts`], the engine's `BehavioralData`).
//!
//! Counts are kept behind the [`Counters`] trait: [`MemoryCounters`] on a single node;
//! [`SharedCounters`] with `--redis-url` (counts in Redis, so that an event captured on one
//! node flips the flag on every node, and a local [`MemoryCounters`] to fall back on when
//! Redis fails), without touching capture or evaluation.
//!
//! A track starts counting when a compiled project first needs it, and its past comes from the
//! stored events ([`sync`]): for every project before the server serves (a restart loses
//! nothing), and later in the capture writer, before it writes its next batch of the project,
//! so no event is both replayed and recorded. Until then reads of that track are unknown and
//! the cohort is "not evaluated".

mod memory;
mod shared;
mod sync;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use vexil_engine::behavior::{Behaviors, Resolution};
use vexil_engine::BehavioralData;
use vexil_store::ProjectId;

pub use memory::{Footprint, MemoryCounters};
pub use shared::SharedCounters;
pub use sync::{record_events, sync, SyncError};

/// One counter series: events of a signature ([`vexil_engine::behavior::Signature::key`])
/// counted in buckets of one resolution.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Track {
    /// The counted signature's stable key.
    pub signature: Arc<str>,
    /// The bucket size.
    pub resolution: Resolution,
}

/// One counted event.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// Who performed it.
    pub distinct_id: &'a str,
    /// What it counts for.
    pub track: &'a Track,
    /// When it happened (the event's timestamp).
    pub at: DateTime<Utc>,
}

/// One count read: a track's events at or after `since`.
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    /// The track.
    pub track: &'a Track,
    /// Start of the window (the bucket holding it counts whole).
    pub since: DateTime<Utc>,
}

/// Where recorded events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Just committed by capture.
    Live,
    /// Replayed from stored events, for the tracks [`Counters::retain`] returned, before
    /// [`Counters::mark_ready`].
    Replay,
}

/// Why counts could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// The backing service failed.
    #[error("behavioural counters unavailable: {0}")]
    Unavailable(String),
}

/// Where behavioural counts live.
#[async_trait::async_trait]
pub trait Counters: Send + Sync + std::fmt::Debug {
    /// Makes `tracks` the project's counted tracks: others are dropped with their counts, and
    /// the ones not ready are returned, emptied (they count from now on, and report unknown
    /// until [`Counters::mark_ready`] once their past is recorded).
    async fn retain(
        &self,
        project: ProjectId,
        tracks: &[Track],
    ) -> Result<Vec<Track>, CounterError>;

    /// Marks tracks whose past has been recorded as readable.
    async fn mark_ready(&self, project: ProjectId, tracks: &[Track]) -> Result<(), CounterError>;

    /// Adds events to counted tracks (hits on other tracks are ignored); buckets older than
    /// their resolution's span at `now` are dropped.
    async fn record(
        &self,
        project: ProjectId,
        hits: &[Hit<'_>],
        now: DateTime<Utc>,
        origin: Origin,
    ) -> Result<(), CounterError>;

    /// The counts of every read, summed over `distinct_ids` (one person's); `None` for a track
    /// not ready.
    async fn read(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
        reads: &[Read<'_>],
    ) -> Result<Vec<Option<u64>>, CounterError>;

    /// Drops every bucket older than its span at `now`, and distinct ids left without any.
    async fn evict(&self, now: DateTime<Utc>);

    /// Whether the project's counts should be brought up to date ([`sync`]) although its
    /// definitions did not change (shared counts lost or missing events); the next
    /// [`Counters::retain`] clears it.
    fn needs_sync(&self, _project: ProjectId) -> bool {
        false
    }

    /// [`Counters::needs_sync`], true at most once until the next [`Counters::retain`]: for
    /// the request path, which asks the capture writer for a sync without waiting for it.
    fn claim_sync(&self, _project: ProjectId) -> bool {
        false
    }
}

/// The tracks a compiled project counts, by signature index.
pub fn tracks(behaviors: &Behaviors) -> Vec<Vec<Track>> {
    (0..behaviors.signatures().len())
        .map(|i| {
            let signature: Arc<str> = behaviors.signatures()[i].key().into();
            behaviors
                .resolutions(i)
                .map(|resolution| Track {
                    signature: Arc::clone(&signature),
                    resolution,
                })
                .collect()
        })
        .collect()
}

/// One request's behavioural counts, by query index of the compiled project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub Vec<Option<u64>>);

impl BehavioralData for Counts {
    fn count(&self, query: usize) -> Option<u64> {
        self.0.get(query).copied().flatten()
    }
}

/// Reads every query of `behaviors` for the person of `distinct_ids` at `now`.
pub async fn read_counts(
    counters: &dyn Counters,
    project: ProjectId,
    behaviors: &Behaviors,
    distinct_ids: &[&str],
    now: DateTime<Utc>,
) -> Result<Counts, CounterError> {
    let tracks: Vec<(Track, Option<DateTime<Utc>>)> = behaviors
        .queries()
        .iter()
        .map(|q| {
            let track = Track {
                signature: behaviors.signatures()[q.signature()].key().into(),
                resolution: q.window().resolution(),
            };
            (track, q.window().since(now))
        })
        .collect();
    let reads: Vec<Read<'_>> = tracks
        .iter()
        .filter_map(|(track, since)| {
            Some(Read {
                track,
                since: (*since)?,
            })
        })
        .collect();
    let mut values = counters
        .read(project, distinct_ids, &reads)
        .await?
        .into_iter();
    Ok(Counts(
        tracks
            .iter()
            .map(|(_, since)| since.and_then(|_| values.next().flatten()))
            .collect(),
    ))
}
