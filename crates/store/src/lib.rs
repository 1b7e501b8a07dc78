//! Durable storage for Vexil: projects and their keys, users of the web UI and their sessions, feature flags with versions and an
//! activity log, cohorts, persons, groups, experience-continuity hash keys and captured events.
//!
//! Everything goes through one trait, [`Store`], shared as `Arc<dyn Store>`. [`connect`] picks
//! the implementation from the URL: the embedded SQLite backend ([`sqlite::SqliteStore`],
//! `sqlite://PATH` or `sqlite::memory:`) or PostgreSQL ([`postgres::PgStore`],
//! `postgres://…`), each with its own SQL and migrations, behind the same trait and the same
//! test suite. This is the only crate that knows SQL.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), vexil_store::StoreError> {
//! use vexil_store::{connect, NewFlag};
//!
//! let store = connect("sqlite::memory:").await?;
//! let created = store.create_project("Acme").await?;
//! assert!(created.secret_key.starts_with("phs_"));
//!
//! let filters = serde_json::json!({"groups": [{"properties": [], "rollout_percentage": 100}]});
//! let flag = store.create_flag(created.project.id, &NewFlag::new("beta", filters)).await?;
//! assert_eq!(flag.version, 1);
//!
//! let defs = store.definitions(created.project.id).await?;
//! assert_eq!(defs.flags[0].key, "beta");
//! # Ok(()) }
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod actor;
mod capture;
mod changes;
mod cohort;
mod definitions;
mod early_access;
mod error;
mod evaluation;
mod event;
mod flag;
mod group;
mod keys;
mod page;
mod person;
pub mod postgres;
mod project;
mod sql;
pub mod sqlite;
mod store;
mod usage;
mod user;
mod user_key;
mod watch;

use std::path::Path;
use std::sync::Arc;

pub use actor::{Actor, KeyRef};
pub use capture::{CaptureOutcome, CapturedEvent, Effect, MAX_PERSON_PROPERTIES};
pub use cohort::{Cohort, CohortUpdate, NewCohort};
pub use definitions::{feed_cohort_references, feed_definition};
pub use early_access::{
    EarlyAccessFeature, EarlyAccessFeatureUpdate, EarlyAccessStage, NewEarlyAccessFeature,
    UnknownStage,
};
pub use error::{Result, StoreError};
pub use evaluation::EvalInputs;
pub use event::{FlagCallDetails, FlagCallError, FlagCallRecord, NewEvent, FEATURE_FLAG_CALLED};
pub use flag::{
    accept_any, compare_names, validate_key, ActivityAction, ActivityCursor, ActivityEntry,
    ActivityPage, EvaluationRuntime, FeatureFlag, FlagAge, FlagCheck, FlagOrder, FlagOrderField,
    FlagQuery, FlagUpdate, NewFlag, MAX_FLAG_KEY_LEN,
};
pub use group::Group;
pub use keys::{
    hash_key, IssuedKey, KeyKind, PERSONAL_KEY_PREFIX, PROJECT_TOKEN_PREFIX, SECRET_KEY_PREFIX,
};
pub use page::{Listing, Page};
pub use person::{is_illegal_merge_id, Person, PersonUpdate, PropertyKey, ValueKind};
pub use project::{CreatedProject, GroupType, Project, ProjectId, MAX_GROUP_TYPE_INDEX};
pub use store::Store;
pub use usage::{Day, EvaluationCount, UsageDay};
pub use user::{
    generate_password, hash_password, normalise_email, Access, IssuedSession, NewUser,
    PasswordHash, Session, User, UserId, MIN_PASSWORD_LEN,
};
pub use user_key::{validate_key_label, IssuedUserKey, UserKey, MAX_KEY_LABEL_LEN};
pub use vexil_engine::Properties;
pub use watch::{Change, Changes, ChangesSince, ReloadReason, Replay, Revised, MAX_REPLAYED};

/// File name of the database inside a data directory (see [`open_data_dir`]).
pub const DATA_FILE: &str = "vexil.db";

/// Opens the store a URL names, creating the database and bringing its schema up to date.
///
/// * `sqlite://PATH` (relative) or `sqlite:///ABS/PATH`: a durable SQLite file, created if
///   missing.
/// * `sqlite::memory:`: a private in-memory database (tests).
/// * `postgres://USER:PASSWORD@HOST:PORT/DATABASE?…` (or `postgresql://`): an existing
///   PostgreSQL database, shared by any number of nodes; migrations run under a lock, so
///   nodes may start together.
///
/// Any other scheme is [`StoreError::UnsupportedUrl`].
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Like [`connect`], except that a PostgreSQL store is returned without contacting the
/// database: connections open on first use and [`Store::migrate`] brings the schema up to date
/// (call it before use; if the database is unreachable, call it again later). SQLite opens and
/// migrates at once, as with [`connect`].
pub async fn connect_deferred(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect_deferred(url)?))
    } else {
        connect(url).await
    }
}

/// Opens (creating if needed) the SQLite store `<dir>/vexil.db`, creating `dir` too.
pub async fn open_data_dir(dir: &Path) -> Result<Arc<dyn Store>> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(sqlx::Error::Io(e)))?;
    Ok(Arc::new(
        sqlite::SqliteStore::open_file(&dir.join(DATA_FILE)).await?,
    ))
}

/// The current time at the precision every backend stores (microseconds), so a value returned
/// by a write equals the value read back later.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
