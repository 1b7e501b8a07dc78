//! posthog-js cookieless mode (`cookieless_mode: 'always'` / `'on_reject'`): the browser keeps
//! no identifier and sends the sentinel distinct id [`SENTINEL`]; the server replaces it with a
//! hash of who the visitor looks like today — the project, the client address, the root domain
//! of `Origin`, `User-Agent` and the SDK's `cookieless_hash_extra` — keyed by a random salt of
//! the visitor's calendar day (their `timezone`, else UTC), as PostHog's stateless
//! `cookieless_server_hash_mode` does (`rust/common/cookieless`: SipHash-2-4, the same input
//! string, the same `cookieless_<base64>` id, so its published vectors hold here). Two visitors
//! differ, one visitor is stable for the day, and nobody can link days once a salt expires.
//!
//! Salts are shared through Redis when `--redis-url` is set (every node hashes alike); without
//! it, or while Redis fails, this node's own salt of the day is used.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use public_suffix::{EffectiveTLDProvider, DEFAULT_PROVIDER};
use siphasher::sip128::{Hasher128, SipHasher24};

/// The distinct id posthog-js sends in cookieless mode.
pub const SENTINEL: &str = "$posthog_cookieless";

/// How long a shared salt is kept: a calendar day is someone's "today" from 12 hours before
/// it starts in UTC to 14 hours after it ends, plus a day of clock skew and late requests.
const SALT_TTL: Duration = Duration::from_secs(74 * 3600);

/// `cookieless_hash_extra` is cut to this many characters (PostHog's rule).
const MAX_HASH_EXTRA_CHARS: usize = 100;

/// What a cookieless request tells about its visitor.
#[derive(Debug, Clone, Copy)]
pub struct Visitor<'a> {
    /// The client's address (see [`crate::address`]).
    pub ip: IpAddr,
    /// The `Origin` header.
    pub origin: &'a str,
    /// The `User-Agent` header.
    pub user_agent: &'a str,
    /// The request's `timezone` field (IANA name).
    pub timezone: Option<&'a str>,
    /// The request's `cookieless_hash_extra` field.
    pub hash_extra: Option<&'a str>,
    /// The client's clock (`_` / `sent_at` query parameter, ms).
    pub sent_at_ms: Option<i64>,
}

/// Why no cookieless distinct id could be computed (a 400 naming the missing input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookielessError {
    /// No `Origin` header: the root domain is part of the hash.
    #[error("cookieless mode needs the Origin header")]
    MissingOrigin,
    /// No `User-Agent` header.
    #[error("cookieless mode needs the User-Agent header")]
    MissingUserAgent,
}

impl CookielessError {
    /// The request input that is missing.
    pub fn attr(self) -> &'static str {
        match self {
            CookielessError::MissingOrigin => "Origin",
            CookielessError::MissingUserAgent => "User-Agent",
        }
    }
}

/// The daily salts: shared through Redis when configured, this node's own otherwise.
#[derive(Debug)]
pub struct Salts {
    redis: Option<Arc<vexil_cache::Redis>>,
    known: Mutex<HashMap<NaiveDate, Salt>>,
}

#[derive(Debug, Clone, Copy)]
struct Salt {
    bytes: [u8; 16],
    /// Read from (or written to) Redis: final. A local salt is replaced by the shared one as
    /// soon as Redis answers.
    shared: bool,
}

impl Salts {
    /// Salts shared through `redis`, or this node's own without it.
    pub fn new(redis: Option<Arc<vexil_cache::Redis>>) -> Salts {
        Salts {
            redis,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The visitor's distinct id at `now`.
    pub async fn distinct_id(
        &self,
        project: i64,
        visitor: &Visitor<'_>,
        now: DateTime<Utc>,
    ) -> Result<String, CookielessError> {
        if visitor.origin.is_empty() {
            return Err(CookielessError::MissingOrigin);
        }
        if visitor.user_agent.is_empty() {
            return Err(CookielessError::MissingUserAgent);
        }
        let day = salt_day(visitor.sent_at_ms, visitor.timezone, now);
        let salt = self.for_day(day).await;
        // IPv4 clients of a dual-stack listener arrive as IPv4-mapped IPv6 addresses.
        let ip = visitor.ip.to_canonical().to_string();
        let hash = hash(
            &salt,
            project.unsigned_abs(),
            &ip,
            &root_domain(visitor.origin),
            visitor.user_agent,
            0,
            visitor.hash_extra.unwrap_or(""),
        );
        Ok(to_distinct_id(&hash))
    }

    async fn for_day(&self, day: NaiveDate) -> [u8; 16] {
        let known = self.lock().get(&day).copied();
        if let Some(salt) = known {
            if salt.shared || self.redis.is_none() {
                return salt.bytes;
            }
        }
        let local = match known {
            Some(salt) => salt,
            None => Salt {
                bytes: random_salt(),
                shared: false,
            },
        };
        let salt = match &self.redis {
            None => local,
            Some(redis) => {
                let name = day.format("%Y-%m-%d").to_string();
                match redis
                    .daily_salt(&name, &STANDARD.encode(local.bytes), SALT_TTL)
                    .await
                {
                    Ok(stored) => match decode_salt(&stored) {
                        Some(bytes) => Salt {
                            bytes,
                            shared: true,
                        },
                        None => {
                            tracing::warn!(day = %name, "the shared cookieless salt is not 16 base64 bytes; using this node's");
                            local
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, day = %name, "shared cookieless salt unavailable; using this node's");
                        local
                    }
                }
            }
        };
        let mut known = self.lock();
        // Days outside anyone's "today" are never asked for again.
        known.retain(|d, _| (*d - day).num_days().abs() <= 3);
        let entry = known.entry(day).or_insert(salt);
        if salt.shared {
            *entry = salt;
        }
        entry.bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<NaiveDate, Salt>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn random_salt() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: a v4 UUID still carries 122 random bits.
        bytes = uuid::Uuid::new_v4().into_bytes();
    }
    bytes
}

fn decode_salt(text: &str) -> Option<[u8; 16]> {
    STANDARD
        .decode(text.trim_matches('"'))
        .ok()?
        .try_into()
        .ok()
}

/// The calendar day whose salt hashes a request: the client's clock (`sent_at`) in its
/// `timezone` (UTC when absent or unknown). A client clock outside the days that are "today"
/// somewhere on Earth (UTC−12 to UTC+14) is not believed: the server's clock is used instead,
/// so a client cannot pick an old salt.
pub fn salt_day(sent_at_ms: Option<i64>, timezone: Option<&str>, now: DateTime<Utc>) -> NaiveDate {
    let tz = timezone
        .and_then(|name| chrono_tz::Tz::from_str(name).ok())
        .unwrap_or(chrono_tz::UTC);
    let today = |at: DateTime<Utc>| at.with_timezone(&tz).date_naive();
    let claimed = sent_at_ms
        .and_then(|ms| DateTime::<Utc>::from_timestamp(ms.div_euclid(1000), 0))
        .map(today);
    match claimed {
        Some(day) if is_today_somewhere(day, now) => day,
        _ => today(now),
    }
}

/// Whether `day` is the current date in some time zone at `now` (PostHog's window: from 12
/// hours before the day starts in UTC to 14 hours after it ends).
fn is_today_somewhere(day: NaiveDate, now: DateTime<Utc>) -> bool {
    let Some(start) = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()) else {
        return false;
    };
    now >= start - chrono::Duration::hours(12) && now < start + chrono::Duration::hours(24 + 14)
}

/// PostHog's cookieless hash: SipHash-2-4 keyed by the salt (two little-endian `u64`s) over
/// `"{project}-{ip}-{root domain}-{user agent}-{n}-{hash extra (100 chars)}"`, the 128-bit
/// result's halves in the byte order of PostHog's TypeScript implementation.
pub fn hash(
    salt: &[u8; 16],
    project: u64,
    ip: &str,
    root_domain: &str,
    user_agent: &str,
    n: u64,
    hash_extra: &str,
) -> [u8; 16] {
    let mut key0 = [0u8; 8];
    let mut key1 = [0u8; 8];
    key0.copy_from_slice(&salt[..8]);
    key1.copy_from_slice(&salt[8..]);
    let extra = match hash_extra.char_indices().nth(MAX_HASH_EXTRA_CHARS) {
        Some((cut, _)) => &hash_extra[..cut],
        None => hash_extra,
    };
    let input = format!("{project}-{ip}-{root_domain}-{user_agent}-{n}-{extra}");
    let mut hasher = SipHasher24::new_with_keys(u64::from_le_bytes(key0), u64::from_le_bytes(key1));
    std::hash::Hasher::write(&mut hasher, input.as_bytes());
    let h = hasher.finish128();
    let (h1, h2) = (h.h1.to_le_bytes(), h.h2.to_le_bytes());
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&h2[4..]);
    out[4..8].copy_from_slice(&h2[..4]);
    out[8..12].copy_from_slice(&h1[4..]);
    out[12..].copy_from_slice(&h1[..4]);
    out
}

/// `cookieless_` and the hash in unpadded standard base64.
pub fn to_distinct_id(hash: &[u8; 16]) -> String {
    format!("cookieless_{}", STANDARD.encode(hash).trim_end_matches('='))
}

/// The part of `Origin` a site keeps across its subdomains: the registrable domain (eTLD+1,
/// from the public-suffix list) with the port kept; IP addresses as they are (IPv6 normalised
/// in brackets); `localhost` as `127.0.0.1`.
pub fn root_domain(origin: &str) -> String {
    if origin.is_empty() {
        return String::new();
    }
    if let Ok(IpAddr::V6(v6)) = origin.parse::<IpAddr>() {
        return format!("[{v6}]");
    }
    let with_scheme;
    let input = if origin.contains("://") {
        origin
    } else {
        with_scheme = format!("http://{origin}");
        &with_scheme
    };
    let Ok(url) = url::Url::parse(input) else {
        return origin.to_owned();
    };
    let Some(host) = url.host_str() else {
        return origin.to_owned();
    };
    let port = url.port();
    let domain = if host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
        host.to_owned()
    } else {
        let domain = DEFAULT_PROVIDER
            .effective_tld_plus_one(host)
            .unwrap_or(host);
        if domain == "localhost" {
            "127.0.0.1".to_owned()
        } else {
            domain.to_owned()
        }
    };
    match port {
        Some(port) => format!("{domain}:{port}"),
        None => domain,
    }
}
