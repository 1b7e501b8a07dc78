//! Change events: what each publication of a project's snapshot changed, kept in a bounded ring
//! for replay and fanned out to every open stream (`routes/stream.rs`).
//!
//! A publication is stamped with the project's store revision (the same number on every node
//! sharing the database), so a client can resume with `Last-Event-ID` against any node. A stamp
//! is a lower bound of the revision the published snapshot holds (the revision is read before
//! the definitions, or before the write that produced them), which makes resumption
//! at-least-once: a client that saw stamp `n` is sent every publication stamped after `n`.
//!
//! Each publication's frames are rendered once, in both stream formats, and shared: sending one
//! to a stream clones a `Bytes`. Rendering needs the definitions ETag, which serialises the
//! whole payload (milliseconds for a large project), so it happens off the write path: on a
//! blocking thread right after publication, or by the first stream that needs the frames,
//! whichever comes first (which also builds `/flags/definitions`' body for its next poll). An idle stream is a parked connection task holding a broadcast
//! receiver: a publication wakes each stream once, and nothing runs per stream otherwise.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::snapshot::ProjectSnapshot;

/// Publications a slow stream may fall behind by before it is resynchronised with a full
/// payload.
const BROADCAST_CAPACITY: usize = 64;

/// What changed: a flag or a cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A feature flag (remote-configuration flags included).
    Flag,
    /// A cohort.
    Cohort,
}

/// How it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It did not exist (or was deleted) before.
    Created,
    /// A new version of it.
    Updated,
    /// Deleted.
    Deleted,
}

/// One changed flag or cohort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Flag or cohort.
    #[serde(rename = "type")]
    pub subject: Subject,
    /// Created, updated or deleted.
    pub action: Action,
    /// The flag's key, or the cohort's id as the definitions payload keys it.
    pub key: String,
    /// The flag's or cohort's id.
    pub id: i64,
    /// Its version after the change (before it, for a deletion).
    pub version: i64,
}

/// The changes from `before` to `after`, flags first, each by id.
pub fn diff(before: &ProjectSnapshot, after: &ProjectSnapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    let flags = |s: &ProjectSnapshot| -> BTreeMap<i64, (String, i64)> {
        s.flags()
            .iter()
            .map(|f| (f.id, (f.key.clone(), f.version)))
            .collect()
    };
    let cohorts = |s: &ProjectSnapshot| -> BTreeMap<i64, (String, i64)> {
        s.cohort_versions()
            .iter()
            .map(|(id, version)| (*id, (id.to_string(), *version)))
            .collect()
    };
    for (subject, old, new) in [
        (Subject::Flag, flags(before), flags(after)),
        (Subject::Cohort, cohorts(before), cohorts(after)),
    ] {
        let mut ids: Vec<i64> = old.keys().chain(new.keys()).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let (action, (key, version)) = match (old.get(&id), new.get(&id)) {
                (None, Some(now)) => (Action::Created, now),
                (Some(was), None) => (Action::Deleted, was),
                (Some(was), Some(now)) if was != now => (Action::Updated, now),
                _ => continue,
            };
            changes.push(Change {
                subject,
                action,
                key: key.clone(),
                id,
                version: *version,
            });
        }
    }
    changes
}

/// One publication that changed something, rendered in both stream formats on first use.
#[derive(Debug)]
pub struct Publication {
    /// Its stamp: the SSE `id`.
    pub revision: i64,
    changes: Vec<Change>,
    /// Unix seconds.
    published_at: i64,
    /// The snapshot it published, held until the frames are rendered.
    source: Mutex<Option<Arc<ProjectSnapshot>>>,
    frames: OnceLock<Frames>,
}

#[derive(Debug, Default)]
struct Frames {
    /// `event: change` frames, one per change (`/flags/definitions/stream`).
    changes: Bytes,
    /// One `event: message` frame with a `refetchEvaluation` (the OFREP stream).
    refetch: Bytes,
}

/// The data of a definitions-stream change event.
#[derive(Serialize)]
struct ChangeData<'a> {
    #[serde(flatten)]
    change: &'a Change,
    /// The definitions ETag after the change.
    etag: &'a str,
    revision: i64,
}

/// The data of an OFREP `refetchEvaluation` event (ADR-0008).
#[derive(Serialize)]
struct RefetchData<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    etag: &'a str,
    /// Unix seconds, as the ADR recommends.
    #[serde(rename = "lastModified")]
    last_modified: i64,
}

impl Publication {
    /// The publication of `changes`, which brought the project to `after` (stamped
    /// `after.revision()`) at `published_at` (Unix seconds).
    pub fn new(
        changes: Vec<Change>,
        after: Arc<ProjectSnapshot>,
        published_at: i64,
    ) -> Publication {
        Publication {
            revision: after.revision(),
            changes,
            published_at,
            source: Mutex::new(Some(after)),
            frames: OnceLock::new(),
        }
    }

    /// Its `change` events (`/flags/definitions/stream`).
    pub fn change_frames(&self) -> Bytes {
        self.frames().changes.clone()
    }

    /// Its `refetchEvaluation` message (the OFREP stream).
    pub fn refetch_frame(&self) -> Bytes {
        self.frames().refetch.clone()
    }

    fn frames(&self) -> &Frames {
        self.frames.get_or_init(|| {
            let source = self
                .source
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            // `get_or_init` runs this once, so the snapshot is there.
            source.map_or_else(Frames::default, |after| {
                render(&self.changes, &after, self.published_at)
            })
        })
    }
}

/// The frames of `changes`, which brought the project to `after`.
fn render(changes: &[Change], after: &ProjectSnapshot, published_at: i64) -> Frames {
    let revision = after.revision();
    let etag = after.etag();
    let mut text = String::new();
    for change in changes {
        let data = ChangeData {
            change,
            etag,
            revision,
        };
        frame(&mut text, "change", revision, &json(&data));
    }
    let mut refetch = String::new();
    frame(
        &mut refetch,
        "message",
        revision,
        &refetch_data(etag, published_at),
    );
    Frames {
        changes: Bytes::from(text),
        refetch: Bytes::from(refetch),
    }
}

/// The data of an OFREP `refetchEvaluation` event for definitions at `etag`, changed at
/// `last_modified` (Unix seconds).
pub fn refetch_data(etag: &str, last_modified: i64) -> String {
    json(&RefetchData {
        kind: "refetchEvaluation",
        etag,
        last_modified,
    })
}

/// One SSE event. `data` is compact JSON, so it holds no line break.
pub fn frame(out: &mut String, event: &str, id: i64, data: &str) {
    let _ = write!(out, "event: {event}\nid: {id}\ndata: {data}\n\n");
}

fn json<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail; an empty object beats a panic.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

/// A project's recent publications and the channel streams listen on.
#[derive(Debug)]
pub struct ChangeFeed {
    ring: Mutex<Ring>,
    sender: broadcast::Sender<Arc<Publication>>,
}

#[derive(Debug)]
struct Ring {
    /// The stamp before the oldest kept publication: a client that saw it can be replayed to.
    floor: i64,
    kept: VecDeque<Arc<Publication>>,
    capacity: usize,
}

/// What a new stream starts with.
#[derive(Debug)]
pub enum Start {
    /// The full payload (no `Last-Event-ID`, or one older than the ring).
    Full,
    /// The publications after the client's `Last-Event-ID` (possibly none).
    Replay(Vec<Arc<Publication>>),
}

/// A stream's subscription: where it starts, then every later publication.
#[derive(Debug)]
pub struct Subscription {
    /// Where it starts.
    pub start: Start,
    /// Later publications.
    pub receiver: broadcast::Receiver<Arc<Publication>>,
}

impl ChangeFeed {
    /// A feed whose history starts at `revision`, keeping the latest `capacity` publications.
    pub fn new(revision: i64, capacity: usize) -> ChangeFeed {
        ChangeFeed {
            ring: Mutex::new(Ring {
                floor: revision,
                kept: VecDeque::new(),
                capacity: capacity.max(1),
            }),
            sender: broadcast::channel(BROADCAST_CAPACITY).0,
        }
    }

    /// Keeps `publication` for replay, sends it to every stream and has it rendered off the
    /// caller's path.
    pub fn publish(&self, publication: Publication) {
        let publication = Arc::new(publication);
        let rendered = Arc::clone(&publication);
        let render = move || {
            rendered.frames();
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(render)),
            Err(_) => render(),
        }
        let mut ring = self.ring();
        if ring.kept.len() == ring.capacity {
            if let Some(oldest) = ring.kept.pop_front() {
                ring.floor = oldest.revision;
            }
        }
        ring.kept.push_back(Arc::clone(&publication));
        // Under the lock, so a subscriber sees each publication exactly once: in its replay or
        // on its receiver. No receiver is not an error.
        let _ = self.sender.send(publication);
    }

    /// Subscribes a stream whose client last saw `last_event_id`.
    pub fn subscribe(&self, last_event_id: Option<i64>) -> Subscription {
        let ring = self.ring();
        let receiver = self.sender.subscribe();
        let start = match last_event_id {
            Some(seen) if seen >= ring.floor => Start::Replay(
                ring.kept
                    .iter()
                    .filter(|p| p.revision > seen)
                    .cloned()
                    .collect(),
            ),
            _ => Start::Full,
        };
        Subscription { start, receiver }
    }

    /// Streams listening now.
    pub fn listeners(&self) -> usize {
        self.sender.receiver_count()
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // Every update of the ring is a few statements that cannot panic half-way.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
