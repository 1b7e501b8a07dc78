//! The one error type of the storage boundary.

/// What can go wrong in a [`crate::Store`] call.
///
/// Callers map these to HTTP statuses: [`StoreError::NotFound`] → 404, [`StoreError::Conflict`]
/// → 409, [`StoreError::Duplicate`], [`StoreError::Invalid`] and [`StoreError::LimitExceeded`]
/// → 400, [`StoreError::Full`] → 507, the rest → 5xx.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The entity does not exist in this project (or the project itself does not exist).
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for: `"project"`, `"flag"`, `"cohort"`, `"person"`.
        entity: &'static str,
    },
    /// Optimistic concurrency: the caller's expected version is not the stored one.
    #[error("version conflict: the stored version is {current_version}")]
    Conflict {
        /// The version currently stored; the caller should re-read and retry.
        current_version: i64,
    },
    /// A uniqueness rule was broken (for flags: the key among the project's non-deleted flags).
    #[error("duplicate {field}")]
    Duplicate {
        /// The field whose value is already taken.
        field: &'static str,
    },
    /// The input breaks an invariant the store owns (key charset, JSON shape, index range).
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// One human sentence.
        message: String,
    },
    /// A write would break a storage limit (see [`crate::MAX_PERSON_PROPERTIES`]); nothing
    /// of the transaction was written.
    #[error("limit {limit} ({max}) exceeded by event {event} of the batch")]
    LimitExceeded {
        /// The limit's name, as documented (`MAX_PERSON_PROPERTIES`).
        limit: &'static str,
        /// Its value.
        max: usize,
        /// The index, in the batch, of the event that broke it (0 for single writes).
        event: usize,
    },
    /// The disk (or the database's size limit) is full: the write was rolled back and nothing
    /// changed. Reads keep working; writes succeed again once space is freed.
    #[error("the disk is full: {0}")]
    Full(#[source] sqlx::Error),
    /// A caller's check refused a write (see [`crate::FlagCheck`]); nothing was written. The
    /// caller gets back its own error to downcast.
    #[error("write refused: {0}")]
    Rejected(Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached (no connection could be opened): nothing was done. While
    /// it stays unreachable, calls fail with this at once; retry later.
    #[error("the database cannot be reached")]
    Unavailable,
    /// `connect` was given a URL whose scheme no backend handles.
    #[error(
        "unsupported database URL {0:?} (expected sqlite://PATH, sqlite::memory: or postgres://…)"
    )]
    UnsupportedUrl(String),
    /// The schema could not be brought up to date (or was written by a newer build).
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored value could not be read back (bad JSON, timestamp or enum text in a row).
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    /// The database driver failed (IO, locking, constraint not otherwise mapped).
    #[error(transparent)]
    Backend(sqlx::Error),
}

/// SQLite's primary result code for a full disk or database (`SQLITE_FULL`).
const SQLITE_FULL: i32 = 13;
/// PostgreSQL's SQLSTATE for a full disk (`disk_full`).
const PG_DISK_FULL: &str = "53100";

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let full = matches!(&e, sqlx::Error::Database(d) if d.code().is_some_and(|code| {
            // PostgreSQL's codes are five-character SQLSTATEs; SQLite's extended result codes
            // are numbers keeping the primary code in their low byte.
            code == PG_DISK_FULL
                || (code.len() < 5 && code.parse::<i32>().is_ok_and(|c| c & 0xff == SQLITE_FULL))
        }));
        if full {
            StoreError::Full(e)
        } else {
            StoreError::Backend(e)
        }
    }
}

/// Shorthand for `Result<T, StoreError>`.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether this error means the database could not be reached (as opposed to a refused or
    /// failed operation): the caller may serve what it holds in memory and retry later.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable
                | StoreError::Backend(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)
        )
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        StoreError::Corrupt(message.into())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A driver error carrying an SQLite result code.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "code {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            "database or disk is full"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn sqlite_full_is_its_own_variant() {
        let full = |code| StoreError::from(sqlx::Error::Database(Box::new(Coded(code))));
        assert!(matches!(full("13"), StoreError::Full(_)));
        assert!(matches!(full("5"), StoreError::Backend(_)), "SQLITE_BUSY");
        assert!(matches!(full("2067"), StoreError::Backend(_)), "unique");
        assert!(
            matches!(full("53100"), StoreError::Full(_)),
            "PostgreSQL disk_full"
        );
        assert!(
            matches!(full("23565"), StoreError::Backend(_)),
            "a SQLSTATE whose low byte happens to be 13"
        );
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolClosed),
            StoreError::Backend(_)
        ));
    }
}
