//! Shared token buckets: one Redis hash per (project, class) holding the tokens left and when
//! they were counted, refilled and taken from atomically by one Lua script in one round trip.
//! The script reads Redis's own clock (`TIME`), so nodes with skewed clocks share one bucket.

use std::sync::LazyLock;
use std::time::Duration;

use crate::{CacheError, Redis};

/// One take from a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Whether a token was left (the request may go on).
    pub allowed: bool,
    /// When refused: how long until a token is back.
    pub retry_after: Duration,
}

static TAKE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1]) or burst
local at = tonumber(v[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000000)
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.0f', math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait}
",
    )
});

impl Redis {
    /// Takes one token from the bucket of `project` and `class` (`evaluation`, `capture`, …),
    /// refilled at `per_second` up to `burst` (at least one). One round trip.
    pub async fn take(
        &self,
        project: i64,
        class: &str,
        per_second: u32,
        burst: u32,
    ) -> Result<Taken, CacheError> {
        let key = self.key(format_args!("rl:{project}:{class}"));
        let burst = burst.max(1);
        let per_second = per_second.max(1);
        self.call(|mut c| async move {
            let (allowed, wait): (i64, i64) = TAKE
                .key(key)
                .arg(per_second)
                .arg(burst)
                .invoke_async(&mut c)
                .await?;
            Ok(Taken {
                allowed: allowed == 1,
                retry_after: Duration::from_micros(u64::try_from(wait).unwrap_or(0)),
            })
        })
        .await
    }
}
