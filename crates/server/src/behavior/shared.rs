//! Behavioural counts shared by every node through Redis ([`vexil_cache::Redis`]), with this
//! node's [`MemoryCounters`] kept alongside as the fallback.
//!
//! - Capture records every committed event in both (Redis: one script call per batch).
//! - A read asks Redis (one script call per request) and uses the local counts for what Redis
//!   cannot answer: all of it when Redis fails, a track Redis has no ready counts for.
//! - A track's past is replayed from the stored events into the local counters (as on one
//!   node) and, under Redis's per-project lease, into a fresh Redis generation published
//!   whole when done ([`vexil_cache::Redis::begin_rebuild`]); a node that finds the lease
//!   taken reads locally until the other node publishes.
//! - Redis failing: reads and writes fall back at once (the client's circuit breaker), and the
//!   project's local counts are rebuilt from the stored events on the next sync, so that with a
//!   shared database they include the other nodes' events up to the failure. A node that
//!   could not record events in Redis invalidates the project's Redis counts when Redis
//!   answers again, and they are rebuilt from the stored events (which hold every node's
//!   events); a Redis that restarted empty is rebuilt the same way.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use vexil_cache::{CounterHit, CounterRead, Rebuild, Redis};
use vexil_engine::behavior::Resolution;
use vexil_store::ProjectId;

use super::{CounterError, Counters, Hit, MemoryCounters, Origin, Read, Track};

/// How long a node may rebuild a project's shared counts before another may take over.
const REBUILD_LEASE: Duration = Duration::from_secs(120);

/// [`Counters`] in Redis, shared by every node, with a local fallback.
#[derive(Debug)]
pub struct SharedCounters {
    redis: Arc<Redis>,
    local: MemoryCounters,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The replay in progress (between `retain` and `mark_ready`), by project.
    replays: HashMap<ProjectId, Replay>,
    /// Projects whose events this node could not record in Redis: their shared counts are
    /// invalidated before the next rebuild.
    missed: HashSet<ProjectId>,
    /// Projects whose local counts are replayed from the store on the next sync (Redis failed).
    refresh_local: HashSet<ProjectId>,
    /// Projects Redis has no ready counts for (or that missed events): a sync is wanted once
    /// Redis answers.
    wanted: HashSet<ProjectId>,
    /// Projects currently falling back (a Redis call for them failed).
    degraded: HashSet<ProjectId>,
    /// Projects the request path asked a sync for, until it runs.
    claimed: HashSet<ProjectId>,
}

#[derive(Debug)]
struct Replay {
    /// Tracks replayed into the local counters.
    local: Vec<Track>,
    /// Tracks replayed into Redis, under this lease.
    shared: Option<(Rebuild, Vec<Track>)>,
}

impl SharedCounters {
    /// Counts in `redis`, falling back on a local copy.
    pub fn new(redis: Arc<Redis>) -> SharedCounters {
        SharedCounters {
            redis,
            local: MemoryCounters::new(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the sets consistent: a panicking holder leaves usable state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A Redis call for `project` failed: fall back, and rebuild what needs it later.
    fn failed(&self, project: ProjectId, what: &str, error: &vexil_cache::CacheError) {
        let mut state = self.state();
        state.wanted.insert(project);
        if state.degraded.insert(project) {
            state.refresh_local.insert(project);
            tracing::warn!(error = %error, project = %project, what, "shared behavioural counts unavailable; this node falls back to its own");
        }
    }

    fn answered(&self, project: ProjectId) {
        let mut state = self.state();
        if state.degraded.remove(&project) {
            tracing::info!(project = %project, "shared behavioural counts answer again");
        }
    }

    /// The Redis side of `retain`: which tracks this node rebuilds in Redis now.
    async fn retain_shared(
        &self,
        project: ProjectId,
        tracks: &[Track],
    ) -> Result<Option<(Rebuild, Vec<Track>)>, vexil_cache::CacheError> {
        let missed = self.state().missed.contains(&project);
        if missed {
            self.redis.invalidate(project.0).await?;
            self.state().missed.remove(&project);
        }
        let names: Vec<String> = tracks.iter().map(track_name).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let ready = self.redis.ready(project.0, &refs).await?;
        let (todo, names): (Vec<Track>, Vec<&str>) = tracks
            .iter()
            .zip(&refs)
            .zip(ready)
            .filter(|(_, ready)| !ready)
            .map(|((t, n), _)| (t.clone(), *n))
            .unzip();
        if todo.is_empty() {
            return Ok(None);
        }
        match self
            .redis
            .begin_rebuild(project.0, &names, REBUILD_LEASE)
            .await?
        {
            Some(rebuild) => Ok(Some((rebuild, todo))),
            None => {
                // Another node rebuilds: read locally until it publishes, then look again.
                self.state().wanted.insert(project);
                Ok(None)
            }
        }
    }
}

/// A track's name in Redis: its signature and bucket size.
fn track_name(track: &Track) -> String {
    format!("{}\n{}", track.signature, track.resolution.bucket_seconds())
}

fn oldest_bucket(resolution: Resolution, now: DateTime<Utc>) -> i64 {
    let span = i64::from(resolution.span_seconds() / resolution.bucket_seconds());
    resolution.bucket(now) - span
}

/// Hits as Redis counts them.
fn counter_hits<'a>(
    hits: &[&Hit<'a>],
    names: &'a HashMap<&Track, String>,
    now: DateTime<Utc>,
) -> Vec<CounterHit<'a>> {
    hits.iter()
        .filter_map(|hit| {
            let resolution = hit.track.resolution;
            let bucket = resolution.bucket(hit.at);
            let oldest = oldest_bucket(resolution, now);
            (bucket >= oldest).then(|| CounterHit {
                track: names.get(hit.track).map_or("", String::as_str),
                distinct_id: hit.distinct_id,
                bucket,
                count: 1,
                oldest,
                max_buckets: resolution.span_seconds() / resolution.bucket_seconds() + 1,
                ttl_seconds: resolution.span_seconds() + resolution.bucket_seconds(),
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl Counters for SharedCounters {
    async fn retain(
        &self,
        project: ProjectId,
        tracks: &[Track],
    ) -> Result<Vec<Track>, CounterError> {
        let refresh = {
            let mut state = self.state();
            state.wanted.remove(&project);
            state.claimed.remove(&project);
            // A replay that did not finish: its lease runs out and the tracks stay unknown.
            state.replays.remove(&project);
            state.refresh_local.remove(&project)
        };
        if refresh {
            // Replayed from the store (every node's events, with a shared database).
            self.local.retain(project, &[]).await?;
        }
        let local = self.local.retain(project, tracks).await?;
        let shared = match self.retain_shared(project, tracks).await {
            Ok(shared) => {
                self.answered(project);
                shared
            }
            Err(e) => {
                self.failed(project, "rebuild", &e);
                None
            }
        };
        let mut new = local.clone();
        if let Some((_, tracks)) = &shared {
            for t in tracks {
                if !new.contains(t) {
                    new.push(t.clone());
                }
            }
        }
        self.state()
            .replays
            .insert(project, Replay { local, shared });
        Ok(new)
    }

    async fn mark_ready(&self, project: ProjectId, tracks: &[Track]) -> Result<(), CounterError> {
        self.local.mark_ready(project, tracks).await?;
        let replay = self.state().replays.remove(&project);
        if let Some((rebuild, _)) = replay.and_then(|r| r.shared) {
            match self.redis.finish_rebuild(rebuild).await {
                Ok(true) => self.answered(project),
                Ok(false) => {
                    tracing::warn!(project = %project, "shared behavioural counts: rebuild lease lost; rebuilt again later");
                    self.state().wanted.insert(project);
                }
                Err(e) => self.failed(project, "rebuild", &e),
            }
        }
        Ok(())
    }

    async fn record(
        &self,
        project: ProjectId,
        hits: &[Hit<'_>],
        now: DateTime<Utc>,
        origin: Origin,
    ) -> Result<(), CounterError> {
        if hits.is_empty() {
            return Ok(());
        }
        let (local, shared): (Vec<&Hit<'_>>, Vec<&Hit<'_>>) = match origin {
            Origin::Live => (hits.iter().collect(), hits.iter().collect()),
            Origin::Replay => {
                let state = self.state();
                let Some(replay) = state.replays.get(&project) else {
                    return Ok(());
                };
                let shared = replay.shared.as_ref().map_or(&[][..], |(_, t)| t);
                (
                    hits.iter()
                        .filter(|h| replay.local.contains(h.track))
                        .collect(),
                    hits.iter().filter(|h| shared.contains(h.track)).collect(),
                )
            }
        };
        let local: Vec<Hit<'_>> = local.into_iter().copied().collect();
        self.local.record(project, &local, now, origin).await?;
        if shared.is_empty() {
            return Ok(());
        }
        let names: HashMap<&Track, String> = shared
            .iter()
            .map(|h| (h.track, track_name(h.track)))
            .collect();
        let counted = counter_hits(&shared, &names, now);
        match self
            .redis
            .record(project.0, &counted, origin == Origin::Replay)
            .await
        {
            Ok(()) => self.answered(project),
            Err(e) => {
                if origin == Origin::Live {
                    self.state().missed.insert(project);
                }
                self.failed(project, "record", &e);
            }
        }
        Ok(())
    }

    async fn read(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
        reads: &[Read<'_>],
    ) -> Result<Vec<Option<u64>>, CounterError> {
        if self.state().missed.contains(&project) {
            // Redis lacks events this node could only count locally: its own counts until the
            // next sync has the shared ones invalidated and rebuilt.
            return self.local.read(project, distinct_ids, reads).await;
        }
        let names: Vec<String> = reads.iter().map(|r| track_name(r.track)).collect();
        let shared_reads: Vec<CounterRead<'_>> = reads
            .iter()
            .zip(&names)
            .map(|(r, name)| CounterRead {
                track: name,
                since: r.track.resolution.bucket(r.since),
            })
            .collect();
        let shared = match self
            .redis
            .read(project.0, distinct_ids, &shared_reads)
            .await
        {
            Ok(shared) => {
                self.answered(project);
                shared
            }
            Err(e) => {
                self.failed(project, "read", &e);
                return self.local.read(project, distinct_ids, reads).await;
            }
        };
        if shared.iter().all(Option::is_some) {
            return Ok(shared);
        }
        // Not (yet) rebuilt in Redis: this node's counts meanwhile.
        self.state().wanted.insert(project);
        let local = self.local.read(project, distinct_ids, reads).await?;
        Ok(shared
            .into_iter()
            .zip(local)
            .map(|(shared, local)| shared.or(local))
            .collect())
    }

    async fn evict(&self, now: DateTime<Utc>) {
        // Redis expires its own series (TTL, and trimmed on write).
        self.local.evict(now).await;
    }

    fn needs_sync(&self, project: ProjectId) -> bool {
        let state = self.state();
        // While Redis fails, a sync could not rebuild it anyway (the local refresh can).
        state.refresh_local.contains(&project)
            || (state.wanted.contains(&project) && self.redis.is_available())
    }

    fn claim_sync(&self, project: ProjectId) -> bool {
        self.needs_sync(project) && self.state().claimed.insert(project)
    }
}
