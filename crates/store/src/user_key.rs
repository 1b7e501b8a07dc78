//! Personal API keys that belong to a user: created (and shown once) by their user, listed
//! without their value, revoked by deleting them. Stored as `sha256$<hex>` like the project
//! keys; a key reaches the projects its user belongs to (an administrator's: all).

use std::fmt;

use chrono::{DateTime, Utc};

use crate::{Result, StoreError, UserId, PERSONAL_KEY_PREFIX};

/// Longest label of a key (PostHog's limit).
pub const MAX_KEY_LABEL_LEN: usize = 40;

/// A user's personal key, without its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKey {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user: UserId,
    /// What the user called it.
    pub label: String,
    /// PostHog's `mask_value`: `phx_...` and the key's last four characters.
    pub mask: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (to the minute: uses are recorded at most once a
    /// minute per key).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key just created: the only moment its value exists in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedUserKey {
    /// The stored key.
    pub key: UserKey,
    /// The value (`phx_…`). Not retrievable later.
    pub value: String,
}

impl fmt::Debug for IssuedUserKey {
    // The value must not leak into logs through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedUserKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A label trimmed, non-empty and at most [`MAX_KEY_LABEL_LEN`] characters.
pub fn validate_key_label(label: &str) -> Result<String> {
    let label = label.trim();
    if label.is_empty() {
        return Err(StoreError::invalid("label", "Give the key a label."));
    }
    if label.chars().count() > MAX_KEY_LABEL_LEN {
        return Err(StoreError::invalid(
            "label",
            format!("The label must be at most {MAX_KEY_LABEL_LEN} characters."),
        ));
    }
    Ok(label.to_owned())
}

/// A fresh key value and its mask.
pub(crate) fn issue() -> (String, String) {
    let value = crate::keys::generate(PERSONAL_KEY_PREFIX);
    let tail = value.get(value.len().saturating_sub(4)..).unwrap_or("");
    let mask = format!("{PERSONAL_KEY_PREFIX}...{tail}");
    (value, mask)
}

/// Uses of a key closer together than this are recorded once (a write per request would
/// queue behind the single SQLite writer).
pub(crate) const LAST_USED_GRANULARITY: chrono::Duration = chrono::Duration::minutes(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked() {
        assert_eq!(validate_key_label("  ci ").unwrap(), "ci");
        assert!(validate_key_label(" ").is_err());
        assert!(validate_key_label(&"x".repeat(41)).is_err());
    }

    #[test]
    fn masks_show_the_prefix_and_the_tail() {
        let (value, mask) = issue();
        assert!(value.starts_with("phx_"));
        assert_eq!(mask, format!("phx_...{}", &value[value.len() - 4..]));
    }
}
