//! Feeding the counters: committed capture events ([`record_events`]), and the past of tracks
//! a project starts counting, replayed from stored events ([`sync`]).

use chrono::{DateTime, Duration, Utc};
use vexil_engine::behavior::Behaviors;
use vexil_store::{NewEvent, ProjectId, Store, StoreError};

use super::{tracks, CounterError, Counters, Hit, Origin, Track};

/// Stored events read per page while replaying.
const REPLAY_PAGE: u32 = 5_000;

/// Why a project's counts could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Stored events could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The counters failed.
    #[error(transparent)]
    Counters(#[from] CounterError),
}

/// Records `events` (committed, of `project`) on every counted track whose signature they
/// match; only on `only` when given (a replay must not count twice on live tracks).
pub async fn record_events<'e>(
    counters: &dyn Counters,
    project: ProjectId,
    behaviors: &Behaviors,
    events: impl Iterator<Item = &'e NewEvent>,
    only: Option<&[Track]>,
    now: DateTime<Utc>,
) -> Result<(), CounterError> {
    if behaviors.is_empty() {
        return Ok(());
    }
    let by_signature = tracks(behaviors);
    let index = |key: &str| behaviors.signatures().iter().position(|s| s.key() == key);
    let mut hits = Vec::new();
    for event in events {
        for signature in behaviors.matching(&event.event, &event.properties, event.timestamp) {
            let Some(i) = index(signature.key()) else {
                continue;
            };
            for track in &by_signature[i] {
                if only.is_none_or(|only| only.contains(track)) {
                    hits.push(Hit {
                        distinct_id: &event.distinct_id,
                        track,
                        at: event.timestamp,
                    });
                }
            }
        }
    }
    let origin = if only.is_some() {
        Origin::Replay
    } else {
        Origin::Live
    };
    counters.record(project, &hits, now, origin).await
}

/// Makes the project's counters match its compiled `behaviors` at `now`: tracks no cohort
/// counts any more are dropped, and new ones get the stored events of their span (as far as
/// retention kept them) before they report counts. Run it where no capture of the project
/// commits meanwhile: before the server serves, or in the capture writer.
pub async fn sync(
    store: &dyn Store,
    counters: &dyn Counters,
    project: ProjectId,
    behaviors: &Behaviors,
    now: DateTime<Utc>,
) -> Result<(), SyncError> {
    let wanted: Vec<Track> = tracks(behaviors).into_iter().flatten().collect();
    let new = counters.retain(project, &wanted).await?;
    if new.is_empty() {
        return Ok(());
    }
    let span = new
        .iter()
        .map(|t| t.resolution.span_seconds())
        .max()
        .unwrap_or(0);
    let since = now - Duration::seconds(i64::from(span));
    let mut names: Vec<String> = behaviors
        .signatures()
        .iter()
        .filter(|s| new.iter().any(|t| &*t.signature == s.key()))
        .map(|s| s.event().to_owned())
        .collect();
    names.sort();
    names.dedup();
    let mut after = 0;
    let mut replayed = 0usize;
    loop {
        let page = store
            .scan_events(project, &names, since, after, REPLAY_PAGE)
            .await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = *last;
        replayed += page.len();
        record_events(
            counters,
            project,
            behaviors,
            page.iter().map(|(_, e)| e),
            Some(&new),
            now,
        )
        .await?;
        if page.len() < REPLAY_PAGE as usize {
            break;
        }
    }
    counters.mark_ready(project, &new).await?;
    tracing::info!(project = %project, tracks = new.len(), replayed, "behavioural counters rebuilt from stored events");
    Ok(())
}
