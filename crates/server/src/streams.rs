//! Server-sent event streams of change events: the cap on open streams, heartbeats, shutdown,
//! and the response body that turns a project's [`Subscription`] into SSE frames.
//!
//! A stream is a response body polled by its connection's task: it waits on its broadcast
//! receiver, its heartbeat timer and the shutdown signal, so an idle stream costs its
//! connection, that task and one timer, and a publication wakes it once (see `BENCHMARKS.md`
//! for the memory per stream). Streams hold no evaluation slot: the shedding middleware is not
//! on their routes, and a handler returns as soon as the stream starts. They do hold a
//! connection (`--max-connections`) and a stream slot (`--max-streams`), which keeps streams
//! from taking every connection the SDK endpoints need.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use vexil_store::ProjectId;

use crate::changes::{self, Publication, Start, Subscription};
use crate::snapshot::{Catalog, ProjectSnapshot};

/// The path of the OFREP stream (the `requestUri` of bulk responses' `eventStreams`).
pub const OFREP_STREAM_PATH: &str = "/ofrep/v1/stream";

/// Publications each project keeps for reconnecting streams, by default.
pub const DEFAULT_STREAM_REPLAY: usize = 1_000;

/// The stream settings.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// Interval of the heartbeat comment sent on a stream with nothing else to send.
    pub heartbeat: Duration,
    /// Most streams open at once; past it new ones get a 503.
    pub max_streams: usize,
    /// Publications each project keeps so that a client reconnecting with `Last-Event-ID`
    /// gets exactly what it missed; an older id gets the full payload.
    pub replay: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            heartbeat: Duration::from_secs(15),
            max_streams: 5_000,
            replay: DEFAULT_STREAM_REPLAY,
        }
    }
}

/// The shared state of every stream.
#[derive(Debug)]
pub struct Streams {
    slots: Arc<Semaphore>,
    heartbeat: Duration,
    closing: watch::Sender<bool>,
}

/// What a stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `/flags/definitions/stream`: the full payload, then a `change` event per change.
    Definitions,
    /// The OFREP stream: a `refetchEvaluation` message per publication (ADR-0008).
    Ofrep,
}

/// The comment line sent when a stream has been idle for a heartbeat interval.
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

impl Streams {
    /// The shared state for `limits`.
    pub fn new(limits: &StreamLimits) -> Streams {
        Streams {
            slots: Arc::new(Semaphore::new(limits.max_streams)),
            // A zero interval would spin: heartbeats at most every 10 ms.
            heartbeat: limits.heartbeat.max(Duration::from_millis(10)),
            closing: watch::Sender::new(false),
        }
    }

    /// A stream slot, or `None` when every one is taken.
    pub fn slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// Ends every open stream (at shutdown, so that connections can drain) and refuses new
    /// ones.
    pub fn close(&self) {
        self.closing.send_replace(true);
        self.slots.close();
    }

    /// The body of a stream of project `project` in `format`, starting as `subscription` says
    /// with `snapshot` (current when it subscribed), for a client that last saw
    /// `last_event_id`.
    pub fn body(
        &self,
        catalog: Arc<Catalog>,
        slot: OwnedSemaphorePermit,
        format: Format,
        (snapshot, subscription): (Arc<ProjectSnapshot>, Subscription),
        last_event_id: Option<i64>,
    ) -> Body {
        let Subscription { start, receiver } = subscription;
        let (first, skip_through) = match start {
            Start::Full => (
                full(format, &snapshot, last_event_id.is_some()),
                snapshot.revision(),
            ),
            Start::Replay(missed) => (replay(format, &missed), i64::MIN),
        };
        let first = if first.is_empty() {
            // Something, so that the client sees the stream open at once.
            Bytes::from_static(b": connected\n\n")
        } else {
            first
        };
        let live = Live {
            receiver,
            skip_through,
            format,
            heartbeat: self.heartbeat,
            closing: self.closing.subscribe(),
            catalog,
            project: snapshot.project.id,
            _slot: slot,
        };
        let stream = futures_util::stream::unfold((Some(first), live), |(first, mut live)| async {
            if let Some(first) = first {
                return Some((Ok::<_, Infallible>(first), (None, live)));
            }
            let next = live.next().await?;
            Some((Ok(next), (None, live)))
        });
        Body::from_stream(stream)
    }
}

/// A stream after its first frame.
struct Live {
    receiver: tokio::sync::broadcast::Receiver<Arc<Publication>>,
    /// Publications stamped up to this are in the full payload already sent.
    skip_through: i64,
    format: Format,
    heartbeat: Duration,
    closing: watch::Receiver<bool>,
    catalog: Arc<Catalog>,
    project: ProjectId,
    _slot: OwnedSemaphorePermit,
}

impl Live {
    /// The next frame, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            tokio::select! {
                _ = self.closing.changed() => return None,
                received = self.receiver.recv() => match received {
                    Ok(publication) if publication.revision <= self.skip_through => {}
                    Ok(publication) => return Some(frames(self.format, &publication)),
                    Err(RecvError::Lagged(_)) => {
                        // Too slow for the channel: start over from the current snapshot.
                        let snapshot = self.catalog.by_id(self.project)?;
                        self.skip_through = snapshot.revision();
                        return Some(full(self.format, &snapshot, true));
                    }
                    // The project is gone.
                    Err(RecvError::Closed) => return None,
                },
                () = tokio::time::sleep(self.heartbeat) => return Some(Bytes::from_static(HEARTBEAT)),
            }
        }
    }
}

fn frames(format: Format, publication: &Publication) -> Bytes {
    match format {
        Format::Definitions => publication.change_frames(),
        Format::Ofrep => publication.refetch_frame(),
    }
}

/// The frames of missed publications: every change event; for OFREP one `refetchEvaluation`
/// (the latest), since a provider re-fetches everything at once anyway.
fn replay(format: Format, missed: &[Arc<Publication>]) -> Bytes {
    match format {
        Format::Definitions => {
            let mut out = BytesMut::new();
            for publication in missed {
                out.put_slice(&publication.change_frames());
            }
            out.freeze()
        }
        Format::Ofrep => missed.last().map(|p| p.refetch_frame()).unwrap_or_default(),
    }
}

/// The full state: the `definitions` event (the exact `/flags/definitions` body with its ETag);
/// for OFREP a `refetchEvaluation`, unless the client is new (`resumed` false: it has just
/// fetched).
fn full(format: Format, snapshot: &ProjectSnapshot, resumed: bool) -> Bytes {
    match format {
        Format::Definitions => definitions_event(snapshot),
        Format::Ofrep if resumed => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let mut text = String::new();
            changes::frame(
                &mut text,
                "message",
                snapshot.revision(),
                &changes::refetch_data(snapshot.etag(), i64::try_from(now).unwrap_or(i64::MAX)),
            );
            Bytes::from(text)
        }
        Format::Ofrep => Bytes::new(),
    }
}

/// `event: definitions`, stamped with the snapshot's revision; its data is
/// `{"etag": …, "revision": …, "definitions": <the /flags/definitions body, byte for byte>}`.
fn definitions_event(snapshot: &ProjectSnapshot) -> Bytes {
    let body = snapshot.definitions_body();
    let etag = serde_json::to_string(snapshot.etag()).unwrap_or_else(|_| "\"\"".to_owned());
    let head = format!(
        "event: definitions\nid: {id}\ndata: {{\"etag\":{etag},\"revision\":{id},\"definitions\":",
        id = snapshot.revision()
    );
    let mut out = BytesMut::with_capacity(head.len() + body.len() + 3);
    out.put_slice(head.as_bytes());
    // The body is compact JSON: no line break ends the data line early.
    out.put_slice(&body);
    out.put_slice(b"}\n\n");
    out.freeze()
}
