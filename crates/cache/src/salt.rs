//! Cookieless mode's daily salts, shared by every node: one key per calendar day, set once by
//! whichever node asks first (`SET NX`) and read by the others, expiring after `ttl` so that
//! yesterday's visitors cannot be re-identified once the day is over (PostHog keeps them the
//! same way, under `cookieless_salt:<day>`).

use std::sync::LazyLock;
use std::time::Duration;

use crate::{CacheError, Redis};

static SET_OR_GET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2])
return redis.call('GET', KEYS[1])
",
    )
});

impl Redis {
    /// The salt of `day` (`YYYY-MM-DD`): the one stored, or `candidate` when none was (then
    /// stored for `ttl`). One round trip; every node gets the same answer.
    pub async fn daily_salt(
        &self,
        day: &str,
        candidate: &str,
        ttl: Duration,
    ) -> Result<String, CacheError> {
        let key = self.key(format_args!("cookieless_salt:{day}"));
        let candidate = candidate.to_owned();
        self.call(|mut c| async move {
            let stored: Option<String> = SET_OR_GET
                .key(key)
                .arg(candidate)
                .arg(ttl.as_secs().max(1))
                .invoke_async(&mut c)
                .await?;
            stored.ok_or(CacheError::Unexpected("no salt after SET NX"))
        })
        .await
    }
}
