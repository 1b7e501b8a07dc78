//! API credentials: generation of project tokens and keys, and their storage form.
//!
//! The project token (`phc_…`) is public and stored in clear so requests can find their project
//! by it. Secret (`phs_…`) and personal (`phx_…`) keys are shown once at creation and stored only
//! as `sha256$<hex sha256(key)>`, PostHog's current format (`posthog-compat.md` §2.2). Either
//! key can be rotated (a new one is issued, the old one stops working) or revoked (no key works
//! until the next rotation).

use std::fmt;

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

use crate::ProjectId;

/// Prefix of the public project token.
pub const PROJECT_TOKEN_PREFIX: &str = "phc_";
/// Prefix of a project secret key (authorises the local-evaluation feed).
pub const SECRET_KEY_PREFIX: &str = "phs_";
/// Prefix of a personal API key (authorises the management API and the feed).
pub const PERSONAL_KEY_PREFIX: &str = "phx_";

/// Random characters after the prefix: 43 alphanumerics ≈ 256 bits, like PostHog's
/// `token_urlsafe(32)`.
const RANDOM_CHARS: usize = 43;

/// Which hashed credential of a project to check, rotate or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The project secret key (`phs_…`).
    Secret,
    /// The project's personal API key (`phx_…`).
    Personal,
}

impl KeyKind {
    /// Both kinds.
    pub const ALL: [KeyKind; 2] = [KeyKind::Secret, KeyKind::Personal];

    /// `"secret"` or `"personal"`: the name the CLI and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Personal => "personal",
        }
    }

    /// The kind named `name` (`"secret"` or `"personal"`).
    pub fn from_name(name: &str) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The prefix of keys of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Secret => SECRET_KEY_PREFIX,
            KeyKind::Personal => PERSONAL_KEY_PREFIX,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key just issued by a rotation: the only moment it exists in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedKey {
    /// The project the key belongs to.
    pub project: ProjectId,
    /// Which of the project's keys it is.
    pub kind: KeyKind,
    /// The key itself (`phs_…` or `phx_…`). Not retrievable later.
    pub key: String,
}

impl fmt::Debug for IssuedKey {
    // Keys must not leak into logs through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey")
            .field("project", &self.project)
            .field("kind", &self.kind)
            .field("key", &format_args!("{}…", self.kind.prefix()))
            .finish()
    }
}

/// A fresh credential: `prefix` followed by random URL-safe characters.
pub(crate) fn generate(prefix: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + RANDOM_CHARS);
    key.push_str(prefix);
    Alphanumeric.append_string(&mut rand::rng(), &mut key, RANDOM_CHARS);
    key
}

/// The stored form of a key: `sha256$<lowercase hex of sha256(key)>`.
///
/// ```
/// assert_eq!(
///     vexil_store::hash_key("test_key_12345"),
///     "sha256$45af89b510a3279a817f851de5d3f95b73485d58ec2672a39e52d8aeeb014059"
/// );
/// ```
pub fn hash_key(key: &str) -> String {
    format!("sha256${}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// Whether `key` hashes to `stored`, compared in constant time.
pub(crate) fn verify(stored: &str, key: &str) -> bool {
    let computed = hash_key(key);
    let (a, b) = (stored.as_bytes(), computed.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_carry_prefix_and_entropy() {
        let a = generate(SECRET_KEY_PREFIX);
        let b = generate(SECRET_KEY_PREFIX);
        assert!(a.starts_with("phs_"));
        assert_eq!(a.len(), 4 + RANDOM_CHARS);
        assert_ne!(a, b);
        assert!(a[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn verify_accepts_only_the_key() {
        let stored = hash_key("phx_abc");
        assert!(verify(&stored, "phx_abc"));
        assert!(!verify(&stored, "phx_abd"));
        assert!(!verify("sha256$", "phx_abc"));
    }
}
