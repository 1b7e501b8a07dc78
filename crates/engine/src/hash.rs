//! PostHog's stable bucketing hash: the first 60 bits of SHA-1 scaled to `[0, 1)`.

use sha1::{Digest, Sha1};

/// `2^60 - 1`; as binary64 this rounds to exactly `2^60`.
const SCALE: f64 = 0x0FFF_FFFF_FFFF_FFFF_u64 as f64;

/// `hash01(prefix, identifier, salt)`: SHA-1 of the plain concatenation, first 15 hex digits as
/// an integer, divided by `2^60 - 1`. Allocation-free.
pub fn hash01(prefix: &str, identifier: &str, salt: &str) -> f64 {
    let mut hasher = Sha1::new();
    hasher.update(prefix.as_bytes());
    hasher.update(identifier.as_bytes());
    hasher.update(salt.as_bytes());
    let digest = hasher.finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(head) >> 4;
    n as f64 / SCALE
}

/// Rollout inclusion: `100` (or more) includes without hashing; otherwise inclusive comparison.
pub fn in_rollout(hash: f64, rollout_percentage: f64) -> bool {
    hash <= rollout_percentage / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example() {
        assert_eq!(hash01("beta-search.", "user-17", ""), 0.009101217133290002);
        assert_eq!(hash01("holdout-", "user-31", ""), 0.0194745413007599);
    }
}
