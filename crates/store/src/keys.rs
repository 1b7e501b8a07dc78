//! API credentials: generation of project tokens and keys, and their storage form.
//!
//! The project token (`phc_…`) is public and stored in clear so requests can find their project
//! by it. Secret (`phs_…`) and personal (`phx_…`) keys are shown once at creation and stored only
//! as `sha256$<hex sha256(key)>`, PostHog's current format (`posthog-compat.md` §2.2).

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

/// Prefix of the public project token.
pub const PROJECT_TOKEN_PREFIX: &str = "phc_";
/// Prefix of a project secret key (authorises the local-evaluation feed).
pub const SECRET_KEY_PREFIX: &str = "phs_";
/// Prefix of a personal API key (authorises the management API and the feed).
pub const PERSONAL_KEY_PREFIX: &str = "phx_";

/// Random characters after the prefix: 43 alphanumerics ≈ 256 bits, like PostHog's
/// `token_urlsafe(32)`.
const RANDOM_CHARS: usize = 43;

/// Which hashed credential of a project to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The project secret key (`phs_…`).
    Secret,
    /// The project's personal API key (`phx_…`).
    Personal,
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
