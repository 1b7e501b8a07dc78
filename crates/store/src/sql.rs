//! Reading rows, shared by the SQL backends: stored JSON, uuids and counts, and the
//! constraint violations both databases report through sqlx.

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{Result, StoreError};

/// A stored JSON column.
pub(crate) fn json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

/// A stored uuid column kept as text.
pub(crate) fn uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::corrupt(format!("uuid {text:?}: {e}")))
}

/// A count read from SQL (never negative) as `u64`.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Whether `e` is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Whether `e` is a foreign-key violation.
pub(crate) fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}
