//! Shared behavioural counters. Layout, per project `P` (under the namespace):
//!
//! - `p:P:gens`: a hash naming, per track, the generation that is ready to read (`T`) and
//!   the one being rebuilt (`T#b`); a track without a ready generation reads as unknown.
//! - `p:P:c:G:T:ID`: one hash per generation, track and distinct id: field = bucket number,
//!   value = events in that bucket. Its TTL is the track's span plus one bucket, renewed on
//!   every write, and a write that finds more fields than the span holds drops the expired
//!   ones, so a series never holds more than `span / bucket + 1` fields.
//! - `p:P:lock`: who rebuilds the project's tracks (a lease: `SET NX PX`).
//!
//! A rebuild (the past of a track replayed from stored events, after the track first appears
//! or after Redis lost or missed counts) writes a fresh generation while live events go to
//! both, and only then makes it the ready one: readers never see a half-replayed track, a
//! replay run twice counts nothing twice, and the lock keeps N nodes from replaying at once.
//! Tracks are named by the caller; keys hold a 64-bit digest of the name.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::{CacheError, Redis};

/// Events of one distinct id in one bucket of one track.
#[derive(Debug, Clone, Copy)]
pub struct CounterHit<'a> {
    /// The track's name (a signature at a resolution).
    pub track: &'a str,
    /// Who.
    pub distinct_id: &'a str,
    /// The bucket number (time divided by the bucket size).
    pub bucket: i64,
    /// Events to add.
    pub count: u32,
    /// The oldest bucket still kept (older fields are dropped when the series is full).
    pub oldest: i64,
    /// Buckets a series keeps (span / bucket size, plus the current one).
    pub max_buckets: u32,
    /// TTL of the series: the span plus one bucket, in seconds.
    pub ttl_seconds: u32,
}

/// One count to read: a track's events in buckets at or after `since`.
#[derive(Debug, Clone, Copy)]
pub struct CounterRead<'a> {
    /// The track's name.
    pub track: &'a str,
    /// The first bucket counted.
    pub since: i64,
}

/// A rebuild this node holds the lock of ([`Redis::begin_rebuild`]).
#[derive(Debug)]
#[must_use = "finish the rebuild, or its tracks stay unknown until the lease ends"]
pub struct Rebuild {
    project: i64,
    token: String,
    tracks: Vec<String>,
}

/// Longest a series may be: 30 days of hourly buckets, 1 day of minutes, 1 hour of 10 s
/// buckets all stay below this.
pub const MAX_BUCKETS_PER_SERIES: u32 = 1_441;

static RECORD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local gens = {}
local function gen_of(track)
  local g = gens[track]
  if g == nil then
    local ready = false
    if ARGV[2] ~= '1' then ready = redis.call('HGET', KEYS[1], track) end
    g = {ready, redis.call('HGET', KEYS[1], track .. '#b')}
    gens[track] = g
  end
  return g
end
for i = 3, #ARGV, 7 do
  local track, id, bucket, count = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local oldest, max, ttl = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), ARGV[i + 6]
  local g = gen_of(track)
  for n = 1, 2 do
    if g[n] then
      local key = ARGV[1] .. g[n] .. ':' .. track .. ':' .. id
      redis.call('HINCRBY', key, bucket, count)
      redis.call('EXPIRE', key, ttl)
      if redis.call('HLEN', key) > max then
        for _, f in ipairs(redis.call('HKEYS', key)) do
          if tonumber(f) < oldest then redis.call('HDEL', key, f) end
        end
      end
    end
  end
end
return 0
",
    )
});

static READ: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local n = tonumber(ARGV[2])
local out = {}
for i = 3 + n, #ARGV, 2 do
  local track, since = ARGV[i], tonumber(ARGV[i + 1])
  local g = redis.call('HGET', KEYS[1], track)
  if not g then
    out[#out + 1] = -1
  else
    local sum = 0
    for j = 3, 2 + n do
      local h = redis.call('HGETALL', ARGV[1] .. g .. ':' .. track .. ':' .. ARGV[j])
      for k = 1, #h, 2 do
        if tonumber(h[k]) >= since then sum = sum + tonumber(h[k + 1]) end
      end
    end
    out[#out + 1] = sum
  end
end
return out
",
    )
});

static BEGIN: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local gen = redis.call('INCR', KEYS[3])
for i = 3, #ARGV do redis.call('HSET', KEYS[1], ARGV[i] .. '#b', gen) end
return gen
",
    )
});

static FINISH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 2, #ARGV do
  local b = redis.call('HGET', KEYS[1], ARGV[i] .. '#b')
  if b then
    redis.call('HSET', KEYS[1], ARGV[i], b)
    redis.call('HDEL', KEYS[1], ARGV[i] .. '#b')
  end
end
redis.call('DEL', KEYS[2])
return 1
",
    )
});

/// The key-safe name of a track: 16 hex digits of its SHA-1.
fn track_id(track: &str) -> String {
    let digest = Sha1::digest(track.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl Redis {
    fn gens_key(&self, project: i64) -> String {
        self.key(format_args!("p:{project}:gens"))
    }

    fn series_prefix(&self, project: i64) -> String {
        self.key(format_args!("p:{project}:c:"))
    }

    /// Which of `tracks` have a ready generation (counts to read).
    pub async fn ready(&self, project: i64, tracks: &[&str]) -> Result<Vec<bool>, CacheError> {
        if tracks.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.gens_key(project);
        let fields: Vec<String> = tracks.iter().map(|t| track_id(t)).collect();
        self.call(|mut c| async move {
            let values: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(key)
                .arg(fields)
                .query_async(&mut c)
                .await?;
            Ok(values.into_iter().map(|v| v.is_some()).collect())
        })
        .await
    }

    /// Starts rebuilding `tracks` of `project` in a fresh generation, if no other node is
    /// rebuilding the project (`None` then). The lock is a lease of `lease`: a node that dies
    /// mid-replay holds it no longer.
    pub async fn begin_rebuild(
        &self,
        project: i64,
        tracks: &[&str],
        lease: Duration,
    ) -> Result<Option<Rebuild>, CacheError> {
        let token = format!("{:016x}", rand_token());
        let gens = self.gens_key(project);
        let lock = self.key(format_args!("p:{project}:lock"));
        let next = self.key(format_args!("p:{project}:next"));
        let ids: Vec<String> = tracks.iter().map(|t| track_id(t)).collect();
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let rebuild = Rebuild {
            project,
            token: token.clone(),
            tracks: ids.clone(),
        };
        let gen: i64 = self
            .call(|mut c| async move {
                Ok(BEGIN
                    .key(gens)
                    .key(lock)
                    .key(next)
                    .arg(token)
                    .arg(lease_ms)
                    .arg(ids)
                    .invoke_async(&mut c)
                    .await?)
            })
            .await?;
        Ok((gen != 0).then_some(rebuild))
    }

    /// Makes the rebuilt generation of every track the ready one and releases the lock; false
    /// when the lease was lost meanwhile (the tracks stay unknown, to be rebuilt again).
    pub async fn finish_rebuild(&self, rebuild: Rebuild) -> Result<bool, CacheError> {
        let gens = self.gens_key(rebuild.project);
        let lock = self.key(format_args!("p:{}:lock", rebuild.project));
        let done: i64 = self
            .call(|mut c| async move {
                Ok(FINISH
                    .key(gens)
                    .key(lock)
                    .arg(rebuild.token)
                    .arg(rebuild.tracks)
                    .invoke_async(&mut c)
                    .await?)
            })
            .await?;
        Ok(done == 1)
    }

    /// Adds hits: to the ready and the rebuilding generation of their track, or only to the
    /// rebuilding one when `rebuilding` (a replay); hits on tracks with neither are dropped
    /// (a rebuild will count them from the stored events). One round trip.
    pub async fn record(
        &self,
        project: i64,
        hits: &[CounterHit<'_>],
        rebuilding: bool,
    ) -> Result<(), CacheError> {
        if hits.is_empty() {
            return Ok(());
        }
        // Same (track, id, bucket) once, with its count.
        let mut ids: HashMap<&str, String> = HashMap::new();
        let mut merged: HashMap<(&str, &str, i64), CounterHit<'_>> = HashMap::new();
        for hit in hits {
            ids.entry(hit.track).or_insert_with(|| track_id(hit.track));
            merged
                .entry((hit.track, hit.distinct_id, hit.bucket))
                .and_modify(|h| h.count = h.count.saturating_add(hit.count))
                .or_insert(*hit);
        }
        let mut script = RECORD.prepare_invoke();
        script
            .key(self.gens_key(project))
            .arg(self.series_prefix(project))
            .arg(if rebuilding { "1" } else { "0" });
        for hit in merged.values() {
            let track = ids.get(hit.track).map_or("", String::as_str);
            script
                .arg(track)
                .arg(hit.distinct_id)
                .arg(hit.bucket)
                .arg(hit.count)
                .arg(hit.oldest)
                .arg(hit.max_buckets.min(MAX_BUCKETS_PER_SERIES))
                .arg(hit.ttl_seconds.max(1));
        }
        self.call(|mut c| async move {
            script.invoke_async::<i64>(&mut c).await?;
            Ok(())
        })
        .await
    }

    /// The count of every read summed over `distinct_ids` (one person's); `None` for a track
    /// with no ready generation. One round trip.
    pub async fn read(
        &self,
        project: i64,
        distinct_ids: &[&str],
        reads: &[CounterRead<'_>],
    ) -> Result<Vec<Option<u64>>, CacheError> {
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        let mut script = READ.prepare_invoke();
        script
            .key(self.gens_key(project))
            .arg(self.series_prefix(project))
            .arg(distinct_ids.len())
            .arg(distinct_ids);
        for read in reads {
            script.arg(track_id(read.track)).arg(read.since);
        }
        let counts: Vec<i64> = self
            .call(|mut c| async move { Ok(script.invoke_async(&mut c).await?) })
            .await?;
        if counts.len() != reads.len() {
            return Err(CacheError::Unexpected("one count per read"));
        }
        Ok(counts.into_iter().map(|n| u64::try_from(n).ok()).collect())
    }

    /// Forgets which generations of `project` are ready: every node reads its tracks as
    /// unknown (and falls back) until one rebuilds them from the stored events. For when this
    /// node could not record events (Redis was unreachable) and the shared counts miss them.
    pub async fn invalidate(&self, project: i64) -> Result<(), CacheError> {
        let key = self.gens_key(project);
        self.call(|mut c| async move {
            redis::cmd("DEL")
                .arg(key)
                .query_async::<i64>(&mut c)
                .await?;
            Ok(())
        })
        .await
    }

    /// Counter series of `project` and the bytes Redis reports for them (`MEMORY USAGE`), for
    /// measurements. Scans every key of the project: not for the request path.
    pub async fn counter_memory(&self, project: i64) -> Result<(u64, u64), CacheError> {
        let pattern = format!("{}*", self.series_prefix(project));
        let timeout = self.config.timeout;
        let mut conn = self.connection().await?;
        let scan = async {
            let mut keys: Vec<String> = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1_000)
                    .query_async(&mut conn)
                    .await?;
                keys.extend(page);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
            let mut bytes = 0u64;
            for key in &keys {
                let used: Option<u64> = redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(key)
                    .arg("SAMPLES")
                    .arg(0)
                    .query_async(&mut conn)
                    .await?;
                bytes += used.unwrap_or(0);
            }
            Ok::<_, CacheError>((keys.len() as u64, bytes))
        };
        tokio::time::timeout(timeout * 1_000, scan)
            .await
            .map_err(|_| CacheError::Timeout(timeout * 1_000))?
    }
}

/// A lock token unique enough to tell two holders apart (not a secret).
fn rand_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
