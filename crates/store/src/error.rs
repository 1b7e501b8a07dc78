//! The one error type of the storage boundary.

/// What can go wrong in a [`crate::Store`] call.
///
/// Callers map these to HTTP statuses: [`StoreError::NotFound`] → 404, [`StoreError::Conflict`]
/// → 409, [`StoreError::Duplicate`] and [`StoreError::Invalid`] → 400, the rest → 500.
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
    /// A caller's check refused a write (see [`crate::FlagCheck`]); nothing was written. The
    /// caller gets back its own error to downcast.
    #[error("write refused: {0}")]
    Rejected(Box<dyn std::error::Error + Send + Sync>),
    /// `connect` was given a URL whose scheme no backend handles.
    #[error("unsupported database URL {0:?} (expected sqlite://PATH or sqlite::memory:)")]
    UnsupportedUrl(String),
    /// The schema could not be brought up to date (or was written by a newer build).
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored value could not be read back (bad JSON, timestamp or enum text in a row).
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    /// The database driver failed (IO, locking, constraint not otherwise mapped).
    #[error(transparent)]
    Backend(#[from] sqlx::Error),
}

/// Shorthand for `Result<T, StoreError>`.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
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
