//! Experience-continuity hash-key overrides, written off the request path.
//!
//! `/flags` reads the overrides a person has; for a continuity flag without one it hashes on the
//! request's `$anon_distinct_id` (spec §8.2) and queues the insert here. One task drains the
//! bounded queue in batches; when it is full the write is dropped and counted: the next request
//! carrying the anonymous id queues it again (posthog-js sends it until a `/flags` succeeds),
//! and PostHog treats the write as best-effort too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use vexil_store::{ProjectId, Store};

/// Queued writes the writer holds at most before dropping new ones.
const QUEUE: usize = 1_024;
/// Most writes taken off the queue in one turn.
const BATCH: usize = 64;

/// One override insert: `hash_key = anon` for `flags`, for the persons of `distinct_id` and
/// `anon`.
#[derive(Debug, PartialEq)]
pub struct OverrideWrite {
    /// The project.
    pub project: ProjectId,
    /// The identified distinct id.
    pub distinct_id: String,
    /// The anonymous distinct id: the hash key written.
    pub anon: String,
    /// Keys of the project's active continuity flags.
    pub flags: Vec<String>,
}

enum Message {
    Write(OverrideWrite),
    /// Answered once every write queued before it is done (tests, shutdown).
    Flush(oneshot::Sender<()>),
}

/// Handle to the background override writer; cheap to clone.
#[derive(Clone)]
pub struct OverrideWriter {
    tx: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for OverrideWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverrideWriter")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl OverrideWriter {
    /// Starts the writer task. Call within a Tokio runtime.
    pub fn start(store: Arc<dyn Store>) -> OverrideWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        OverrideWriter {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues `write` without waiting; dropped (and counted) when the queue is full.
    pub fn queue(&self, write: OverrideWrite) {
        if self.tx.try_send(Message::Write(write)).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped, "continuity override write dropped: queue full");
        }
    }

    /// Writes dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every write queued so far has been attempted.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut written: Vec<OverrideWrite> = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        written.clear();
        for message in batch.drain(..) {
            match message {
                // A client retrying `/flags` queues the same write again: once per batch does.
                Message::Write(w) if written.contains(&w) => {}
                Message::Write(w) => {
                    let keys: Vec<&str> = w.flags.iter().map(String::as_str).collect();
                    let ids = [w.distinct_id.as_str(), w.anon.as_str()];
                    if let Err(e) = store
                        .insert_hash_key_overrides(w.project, &ids, &keys, &w.anon)
                        .await
                    {
                        tracing::warn!(error = %e, project = %w.project, "continuity override write failed");
                    }
                    written.push(w);
                }
                Message::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}
