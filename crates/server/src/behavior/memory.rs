//! Behavioural counts in this process's memory: per project, per distinct id, per track, a
//! sorted ring of `(bucket, count)` pairs holding only non-empty buckets. A series never holds
//! more buckets than its resolution's span (360, 1,440 or 720), and [`Counters::evict`] drops
//! expired buckets and idle distinct ids, so memory follows the recently active persons.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use vexil_engine::behavior::Resolution;
use vexil_store::ProjectId;

use super::{CounterError, Counters, Hit, Origin, Read, Track};

/// [`Counters`] held in memory (one node).
#[derive(Debug, Default)]
pub struct MemoryCounters {
    projects: RwLock<HashMap<ProjectId, Arc<Mutex<ProjectCounters>>>>,
}

/// What the counters hold, for measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Distinct ids with at least one counted event.
    pub distinct_ids: usize,
    /// Counter series (distinct id × track).
    pub series: usize,
    /// Non-empty buckets.
    pub buckets: usize,
    /// Estimated heap bytes of the above (allocations as sized, without allocator overhead).
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct ProjectCounters {
    tracks: HashMap<Track, TrackState>,
    next_id: u32,
    actors: HashMap<Box<str>, Vec<Series>>,
}

#[derive(Debug, Clone, Copy)]
struct TrackState {
    id: u32,
    ready: bool,
}

#[derive(Debug)]
struct Series {
    track: u32,
    resolution: Resolution,
    /// `(bucket, count)`, ascending by bucket, no empty bucket.
    buckets: VecDeque<(i64, u32)>,
}

impl Series {
    fn add(&mut self, bucket: i64) {
        match self.buckets.back_mut() {
            Some((last, count)) if *last == bucket => *count = count.saturating_add(1),
            Some((last, _)) if *last > bucket => {
                // An event older than the newest counted (a late or replayed delivery).
                match self.buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
                    Ok(i) => self.buckets[i].1 = self.buckets[i].1.saturating_add(1),
                    Err(i) => self.buckets.insert(i, (bucket, 1)),
                }
            }
            _ => self.buckets.push_back((bucket, 1)),
        }
    }

    fn expire(&mut self, now: DateTime<Utc>) {
        let oldest = oldest_bucket(self.resolution, now);
        while self.buckets.front().is_some_and(|(b, _)| *b < oldest) {
            self.buckets.pop_front();
        }
    }

    fn since(&self, bucket: i64) -> u64 {
        let start = self.buckets.partition_point(|(b, _)| *b < bucket);
        self.buckets
            .range(start..)
            .map(|(_, c)| u64::from(*c))
            .sum()
    }
}

/// The oldest bucket a series of this resolution keeps at `now`.
fn oldest_bucket(resolution: Resolution, now: DateTime<Utc>) -> i64 {
    let span = i64::from(resolution.span_seconds() / resolution.bucket_seconds());
    resolution.bucket(now) - span
}

impl MemoryCounters {
    /// Empty counters.
    pub fn new() -> MemoryCounters {
        MemoryCounters::default()
    }

    /// What the counters hold now.
    pub fn footprint(&self) -> Footprint {
        let projects: Vec<_> = read(&self.projects).values().cloned().collect();
        let mut f = Footprint::default();
        for project in projects {
            let p = lock(&project);
            f.distinct_ids += p.actors.len();
            for (id, series) in &p.actors {
                f.bytes += id.len()
                    + std::mem::size_of::<(Box<str>, Vec<Series>)>()
                    + series.capacity() * std::mem::size_of::<Series>();
                f.series += series.len();
                for s in series {
                    f.buckets += s.buckets.len();
                    f.bytes += s.buckets.capacity() * std::mem::size_of::<(i64, u32)>();
                }
            }
        }
        f
    }

    fn project(&self, project: ProjectId) -> Arc<Mutex<ProjectCounters>> {
        if let Some(p) = read(&self.projects).get(&project) {
            return Arc::clone(p);
        }
        let mut projects = self
            .projects
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(projects.entry(project).or_default())
    }
}

// Every update below leaves the maps consistent at each step, so a panicking holder leaves
// usable state behind: poisoning is ignored.
fn lock(m: &Mutex<ProjectCounters>) -> MutexGuard<'_, ProjectCounters> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait::async_trait]
impl Counters for MemoryCounters {
    async fn retain(
        &self,
        project: ProjectId,
        tracks: &[Track],
    ) -> Result<Vec<Track>, CounterError> {
        let project = self.project(project);
        let mut p = lock(&project);
        let dropped: Vec<u32> = p
            .tracks
            .iter()
            .filter(|(t, _)| !tracks.contains(t))
            .map(|(_, s)| s.id)
            .collect();
        if !dropped.is_empty() {
            p.tracks.retain(|t, _| tracks.contains(t));
            p.actors.retain(|_, series| {
                series.retain(|s| !dropped.contains(&s.track));
                !series.is_empty()
            });
        }
        let mut new = Vec::new();
        for track in tracks {
            match p.tracks.get(track) {
                Some(state) if state.ready => {}
                // Registered by a replay that did not finish: counted again from scratch.
                Some(state) => {
                    let id = state.id;
                    p.actors.retain(|_, series| {
                        series.retain(|s| s.track != id);
                        !series.is_empty()
                    });
                    new.push(track.clone());
                }
                None => {
                    let id = p.next_id;
                    p.next_id += 1;
                    p.tracks
                        .insert(track.clone(), TrackState { id, ready: false });
                    new.push(track.clone());
                }
            }
        }
        Ok(new)
    }

    async fn mark_ready(&self, project: ProjectId, tracks: &[Track]) -> Result<(), CounterError> {
        let project = self.project(project);
        let mut p = lock(&project);
        for track in tracks {
            if let Some(state) = p.tracks.get_mut(track) {
                state.ready = true;
            }
        }
        Ok(())
    }

    async fn record(
        &self,
        project: ProjectId,
        hits: &[Hit<'_>],
        now: DateTime<Utc>,
        _origin: Origin,
    ) -> Result<(), CounterError> {
        if hits.is_empty() {
            return Ok(());
        }
        let project = self.project(project);
        let mut p = lock(&project);
        let p = &mut *p;
        for hit in hits {
            let Some(state) = p.tracks.get(hit.track) else {
                continue;
            };
            let resolution = hit.track.resolution;
            let bucket = resolution.bucket(hit.at);
            if bucket < oldest_bucket(resolution, now) {
                continue;
            }
            let series = match p.actors.get_mut(hit.distinct_id) {
                Some(series) => series,
                None => p.actors.entry(hit.distinct_id.into()).or_default(),
            };
            let at = match series.iter().position(|s| s.track == state.id) {
                Some(at) => at,
                None => {
                    series.push(Series {
                        track: state.id,
                        resolution,
                        buckets: VecDeque::new(),
                    });
                    series.len() - 1
                }
            };
            series[at].add(bucket);
            series[at].expire(now);
        }
        Ok(())
    }

    async fn read(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
        reads: &[Read<'_>],
    ) -> Result<Vec<Option<u64>>, CounterError> {
        let project = self.project(project);
        let p = lock(&project);
        let actors: Vec<&Vec<Series>> = distinct_ids
            .iter()
            .filter_map(|d| p.actors.get(*d))
            .collect();
        Ok(reads
            .iter()
            .map(|r| {
                let state = p.tracks.get(r.track).filter(|s| s.ready)?;
                let bucket = r.track.resolution.bucket(r.since);
                Some(
                    actors
                        .iter()
                        .flat_map(|series| series.iter().filter(|s| s.track == state.id))
                        .map(|s| s.since(bucket))
                        .sum(),
                )
            })
            .collect())
    }

    async fn evict(&self, now: DateTime<Utc>) {
        let projects: Vec<_> = read(&self.projects).values().cloned().collect();
        for project in projects {
            let mut p = lock(&project);
            p.actors.retain(|_, series| {
                series.iter_mut().for_each(|s| s.expire(now));
                series.retain(|s| !s.buckets.is_empty());
                !series.is_empty()
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn track(resolution: Resolution) -> Track {
        Track {
            signature: "purchase".into(),
            resolution,
        }
    }

    async fn count(
        c: &MemoryCounters,
        ids: &[&str],
        t: &Track,
        since: DateTime<Utc>,
    ) -> Option<u64> {
        c.read(ProjectId(1), ids, &[Read { track: t, since }])
            .await
            .unwrap()[0]
    }

    #[tokio::test]
    async fn windows_count_whole_buckets_and_persons_sum_their_ids() {
        let c = MemoryCounters::new();
        let t = track(Resolution::Seconds10);
        let p = ProjectId(1);
        assert_eq!(
            c.retain(p, std::slice::from_ref(&t)).await.unwrap(),
            vec![t.clone()]
        );
        let now = at("2026-01-01T00:10:00Z");
        let hit = |id, at| Hit {
            distinct_id: id,
            track: &t,
            at,
        };
        c.record(
            p,
            &[
                hit("a", at("2026-01-01T00:04:55Z")),
                hit("a", at("2026-01-01T00:09:00Z")),
                hit("b", at("2026-01-01T00:09:30Z")),
                hit("a", at("2026-01-01T00:05:01Z")),
            ],
            now,
            Origin::Live,
        )
        .await
        .unwrap();
        // Not ready: unknown, not zero.
        assert_eq!(
            count(&c, &["a"], &t, now - Duration::minutes(5)).await,
            None
        );
        c.mark_ready(p, std::slice::from_ref(&t)).await.unwrap();
        let since = now - Duration::minutes(5); // 00:05:00: its bucket starts at 00:05:00
        assert_eq!(count(&c, &["a"], &t, since).await, Some(2));
        assert_eq!(count(&c, &["a", "b"], &t, since).await, Some(3));
        assert_eq!(count(&c, &["nobody"], &t, since).await, Some(0));
        // The bucket holding `since` counts whole (00:04:50–00:05:00 holds 00:04:55).
        assert_eq!(
            count(&c, &["a"], &t, at("2026-01-01T00:04:59Z")).await,
            Some(3)
        );
    }

    #[tokio::test]
    async fn old_buckets_are_dropped_and_idle_ids_evicted() {
        let c = MemoryCounters::new();
        let t = track(Resolution::Seconds10);
        let p = ProjectId(1);
        c.retain(p, std::slice::from_ref(&t)).await.unwrap();
        c.mark_ready(p, std::slice::from_ref(&t)).await.unwrap();
        let now = at("2026-01-01T00:00:00Z");
        let hits: Vec<Hit<'_>> = (0..2_000)
            .map(|i| Hit {
                distinct_id: "a",
                track: &t,
                at: now + Duration::seconds(i * 10),
            })
            .collect();
        c.record(p, &hits, now + Duration::seconds(20_000), Origin::Live)
            .await
            .unwrap();
        let f = c.footprint();
        assert_eq!(f.distinct_ids, 1);
        assert!(f.buckets <= 361, "{f:?}");
        c.evict(now + Duration::days(1)).await;
        assert_eq!(c.footprint(), Footprint::default());
        // An event older than the span is not counted at all.
        c.record(
            p,
            &[Hit {
                distinct_id: "a",
                track: &t,
                at: now,
            }],
            now + Duration::hours(2),
            Origin::Live,
        )
        .await
        .unwrap();
        assert_eq!(c.footprint().buckets, 0);
    }

    #[tokio::test]
    async fn dropped_tracks_lose_their_counts() {
        let c = MemoryCounters::new();
        let t = track(Resolution::Minute);
        let p = ProjectId(1);
        c.retain(p, std::slice::from_ref(&t)).await.unwrap();
        c.mark_ready(p, std::slice::from_ref(&t)).await.unwrap();
        let now = at("2026-01-01T00:00:00Z");
        c.record(
            p,
            &[Hit {
                distinct_id: "a",
                track: &t,
                at: now,
            }],
            now,
            Origin::Live,
        )
        .await
        .unwrap();
        assert!(c.retain(p, &[]).await.unwrap().is_empty());
        assert_eq!(c.footprint().series, 0);
        assert_eq!(
            c.retain(p, std::slice::from_ref(&t)).await.unwrap(),
            vec![t.clone()]
        );
        assert_eq!(count(&c, &["a"], &t, now).await, None);
    }
}
