//! The embedded SQLite backend: one file, durable on every commit.
//!
//! Connections use WAL journaling, `synchronous=FULL` (a commit is on disk before it returns),
//! foreign keys and a busy timeout. Writes go through a pool of one connection and open with
//! `BEGIN IMMEDIATE`, so write transactions queue in-process instead of failing with
//! `SQLITE_BUSY` when a read turns into a write; reads use a separate pool and see committed
//! data only. An in-memory database uses a single connection for both.

mod capture;
mod cohorts;
mod early_access;
mod evaluation;
mod events;
mod flags;
mod groups;
mod migrate;
mod overrides;
mod persons;
mod projects;
mod usage;
mod user_keys;
mod users;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;
use vexil_engine::Definitions;

pub(crate) use crate::sql::{count, is_fk_violation, is_unique_violation, json, uuid};
use crate::user::{IssuedSession, NewUser, PasswordHash, Session, User, UserId};
use crate::watch::{ChangesSince, Revised, LOG_KEPT};
use crate::{
    compare_names, ActivityCursor, ActivityEntry, ActivityPage, Actor, CaptureOutcome,
    CapturedEvent, Cohort, CohortUpdate, CreatedProject, EarlyAccessFeature,
    EarlyAccessFeatureUpdate, EvalInputs, FeatureFlag, FlagAge, FlagCheck, FlagQuery, FlagUpdate,
    Group, GroupType, IssuedKey, IssuedUserKey, KeyKind, Listing, NewCohort, NewEarlyAccessFeature,
    NewEvent, NewFlag, Page, Person, PersonUpdate, Project, ProjectId, Properties, Result, Store,
    StoreError, UserKey,
};

/// How long a statement waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent readers of a file database.
const READERS: u32 = 4;

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Db,
}

/// The two pools: one writer, several readers (the same single-connection pool in memory).
#[derive(Debug, Clone)]
pub(crate) struct Db {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl Db {
    /// Opens a write transaction holding the database write lock from its first statement.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        match self.writer.begin_with("BEGIN IMMEDIATE").await {
            Err(sqlx::Error::InvalidSavePointStatement) => {
                // A COMMIT that failed (a full disk) can leave the driver counting a
                // transaction SQLite already rolled back, and every later `BEGIN` refused:
                // replace the connection (closing it rolls back whatever is left).
                let stuck = self.writer.acquire().await?.detach();
                let _ = sqlx::Connection::close_hard(stuck).await;
                Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
            }
            begun => Ok(begun?),
        }
    }
}

impl SqliteStore {
    /// Opens `sqlite://PATH` (created if missing) or `sqlite::memory:` and migrates it.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?;
        if is_memory(url) {
            Self::open_memory(options).await
        } else {
            Self::open(options).await
        }
    }

    /// Opens the database file at `path` (created if missing) and migrates it.
    pub async fn open_file(path: &Path) -> Result<Self> {
        Self::open(SqliteConnectOptions::new().filename(path)).await
    }

    async fn open(options: SqliteConnectOptions) -> Result<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .collation(flags::NAME_COLLATION, compare_names);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        migrate::run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            db: Db { writer, reader },
        })
    }

    async fn open_memory(options: SqliteConnectOptions) -> Result<Self> {
        // The database lives as long as its one connection: never let the pool drop it.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                options
                    .foreign_keys(true)
                    .busy_timeout(BUSY_TIMEOUT)
                    .collation(flags::NAME_COLLATION, compare_names),
            )
            .await?;
        migrate::run(&pool).await?;
        Ok(SqliteStore {
            db: Db {
                writer: pool.clone(),
                reader: pool,
            },
        })
    }
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Bumps the project's revision inside `conn`'s write transaction and logs what it changed
/// (`what`) in `definition_changes`, trimming entries older than the kept window.
pub(crate) async fn bump_revision(
    conn: &mut sqlx::SqliteConnection,
    project: ProjectId,
    what: Revised,
) -> Result<i64> {
    let revision: Option<i64> = sqlx::query_scalar(
        "UPDATE projects SET revision = revision + 1 WHERE id = ? RETURNING revision",
    )
    .bind(project.0)
    .fetch_optional(&mut *conn)
    .await?;
    let revision = revision.ok_or(StoreError::NotFound { entity: "project" })?;
    let (kind, entity) = what.columns();
    sqlx::query("DELETE FROM definition_changes WHERE project_id = ? AND revision <= ?")
        .bind(project.0)
        .bind(revision.saturating_sub(LOG_KEPT))
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO definition_changes (project_id, revision, kind, entity_id)
         VALUES (?, ?, ?, ?)",
    )
    .bind(project.0)
    .bind(revision)
    .bind(kind)
    .bind(entity)
    .execute(&mut *conn)
    .await?;
    Ok(revision)
}

/// A timestamp in its stored form (microseconds since the epoch).
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A stored timestamp.
pub(crate) fn time(us: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::corrupt(format!("timestamp {us} out of range")))
}

/// `?, ?, ?` with `n` placeholders, for `IN (...)` lists.
pub(crate) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

#[async_trait]
impl Store for SqliteStore {
    async fn close(&self) {
        self.db.reader.close().await;
        self.db.writer.close().await;
    }

    async fn create_project(&self, name: &str) -> Result<CreatedProject> {
        projects::create(&self.db, name).await
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        projects::list(&self.db).await
    }

    async fn revisions(&self) -> Result<Vec<(ProjectId, i64)>> {
        projects::revisions(&self.db).await
    }

    async fn revision(&self, project: ProjectId) -> Result<Option<i64>> {
        projects::revision(&self.db, project).await
    }

    async fn changes_since(&self, project: ProjectId, since: i64) -> Result<Option<ChangesSince>> {
        flags::changes_since(&self.db, project, since).await
    }

    fn changes(&self) -> Option<crate::Changes> {
        // One process writes a SQLite file at a time; others (`vexil project create`) are
        // seen by comparing revisions.
        None
    }

    async fn get_project(&self, project: ProjectId) -> Result<Option<Project>> {
        projects::get(&self.db, project).await
    }

    async fn project_by_token(&self, token: &str) -> Result<Option<Project>> {
        projects::by_token(&self.db, token).await
    }

    async fn project_by_personal_key(&self, key: &str) -> Result<Option<Project>> {
        projects::by_personal_key(&self.db, key).await
    }

    async fn verify_key(&self, project: ProjectId, kind: KeyKind, key: &str) -> Result<bool> {
        projects::verify_key(&self.db, project, kind, key).await
    }

    async fn rotate_key(&self, project: ProjectId, kind: KeyKind) -> Result<IssuedKey> {
        projects::rotate_key(&self.db, project, kind).await
    }

    async fn revoke_key(&self, project: ProjectId, kind: KeyKind) -> Result<()> {
        projects::revoke_key(&self.db, project, kind).await
    }

    async fn ensure_group_type(&self, project: ProjectId, name: &str) -> Result<i64> {
        projects::ensure_group_type(&self.db, project, name).await
    }

    async fn group_types(&self, project: ProjectId) -> Result<Vec<GroupType>> {
        let mut conn = self.db.reader.acquire().await?;
        projects::group_types(&mut conn, project).await
    }

    async fn create_flag_checked(
        &self,
        project: ProjectId,
        flag: &NewFlag,
        check: &FlagCheck<'_>,
    ) -> Result<FeatureFlag> {
        flags::create(&self.db, project, flag, check).await
    }

    async fn update_flag_checked(
        &self,
        project: ProjectId,
        id: i64,
        update: &FlagUpdate,
        actor: Option<&Actor>,
        check: &FlagCheck<'_>,
    ) -> Result<FeatureFlag> {
        flags::update(&self.db, project, id, update, actor, check).await
    }

    async fn create_early_access_feature(
        &self,
        project: ProjectId,
        feature: &NewEarlyAccessFeature,
    ) -> Result<EarlyAccessFeature> {
        early_access::create(&self.db, project, feature).await
    }

    async fn early_access_features(&self, project: ProjectId) -> Result<Vec<EarlyAccessFeature>> {
        early_access::list(&self.db, project).await
    }

    async fn early_access_feature(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> Result<Option<EarlyAccessFeature>> {
        early_access::one(&self.db, project, id).await
    }

    async fn update_early_access_feature(
        &self,
        project: ProjectId,
        id: Uuid,
        update: &EarlyAccessFeatureUpdate,
    ) -> Result<EarlyAccessFeature> {
        early_access::update(&self.db, project, id, update).await
    }

    async fn delete_early_access_feature(&self, project: ProjectId, id: Uuid) -> Result<bool> {
        early_access::delete(&self.db, project, id).await
    }

    async fn get_flag(&self, project: ProjectId, id: i64) -> Result<Option<FeatureFlag>> {
        let mut conn = self.db.reader.acquire().await?;
        flags::get(&mut conn, project, id).await
    }

    async fn get_flag_by_key(&self, project: ProjectId, key: &str) -> Result<Option<FeatureFlag>> {
        flags::get_by_key(&self.db, project, key).await
    }

    async fn list_flags(
        &self,
        project: ProjectId,
        query: &FlagQuery,
    ) -> Result<Listing<FeatureFlag>> {
        flags::list(&self.db, project, query).await
    }

    async fn flag_activity(
        &self,
        project: ProjectId,
        flag: Option<i64>,
        page: Page,
    ) -> Result<Listing<ActivityEntry>> {
        flags::activity(&self.db, project, flag, page).await
    }

    async fn flag_activity_page(
        &self,
        project: ProjectId,
        flag: Option<i64>,
        cursor: ActivityCursor,
        limit: u32,
    ) -> Result<ActivityPage> {
        flags::activity_page(&self.db, project, flag, cursor, limit).await
    }

    async fn flag_ages(&self, project: ProjectId) -> Result<Vec<FlagAge>> {
        flags::ages(&self.db, project).await
    }

    async fn activity_entry(&self, project: ProjectId, id: i64) -> Result<Option<ActivityEntry>> {
        flags::activity_entry(&self.db, project, id).await
    }

    async fn definitions(&self, project: ProjectId) -> Result<Definitions> {
        flags::definitions(&self.db, project).await
    }

    async fn create_cohort(&self, project: ProjectId, cohort: &NewCohort) -> Result<Cohort> {
        cohorts::create(&self.db, project, cohort).await
    }

    async fn update_cohort(
        &self,
        project: ProjectId,
        id: i64,
        update: &CohortUpdate,
        expected_version: Option<i64>,
    ) -> Result<Cohort> {
        cohorts::update(&self.db, project, id, update, expected_version).await
    }

    async fn get_cohort(&self, project: ProjectId, id: i64) -> Result<Option<Cohort>> {
        let mut conn = self.db.reader.acquire().await?;
        cohorts::get(&mut conn, project, id).await
    }

    async fn list_cohorts(&self, project: ProjectId, page: Page) -> Result<Listing<Cohort>> {
        cohorts::list(&self.db, project, page).await
    }

    async fn add_cohort_members(
        &self,
        project: ProjectId,
        cohort: i64,
        distinct_ids: &[String],
    ) -> Result<u64> {
        cohorts::add_members(&self.db, project, cohort, distinct_ids).await
    }

    async fn remove_cohort_members(
        &self,
        project: ProjectId,
        cohort: i64,
        distinct_ids: &[String],
    ) -> Result<u64> {
        cohorts::remove_members(&self.db, project, cohort, distinct_ids).await
    }

    async fn cohort_members(
        &self,
        project: ProjectId,
        cohort: i64,
        page: Page,
    ) -> Result<Listing<String>> {
        cohorts::members(&self.db, project, cohort, page).await
    }

    async fn count_cohort_members(&self, project: ProjectId, cohort: i64) -> Result<u64> {
        let mut conn = self.db.reader.acquire().await?;
        cohorts::count_members(&mut conn, project, cohort).await
    }

    async fn static_cohorts_for(
        &self,
        project: ProjectId,
        distinct_id: &str,
    ) -> Result<HashSet<i64>> {
        let mut conn = self.db.reader.acquire().await?;
        let person = persons::person_id(&mut conn, project, distinct_id).await?;
        cohorts::static_memberships(&mut conn, project, distinct_id, person).await
    }

    async fn apply_person_update(
        &self,
        project: ProjectId,
        distinct_id: &str,
        update: &PersonUpdate,
    ) -> Result<Person> {
        persons::apply_update(&self.db, project, distinct_id, update).await
    }

    async fn identify(
        &self,
        project: ProjectId,
        distinct_id: &str,
        anon_distinct_id: &str,
    ) -> Result<Person> {
        persons::identify(&self.db, project, distinct_id, anon_distinct_id).await
    }

    async fn get_person(&self, project: ProjectId, distinct_id: &str) -> Result<Option<Person>> {
        let mut conn = self.db.reader.acquire().await?;
        persons::get(&mut conn, project, distinct_id).await
    }

    async fn find_persons(
        &self,
        project: ProjectId,
        key: &str,
        value: &str,
        limit: u32,
    ) -> Result<Vec<Person>> {
        let mut conn = self.db.reader.acquire().await?;
        persons::find(&mut conn, project, key, value, limit).await
    }

    async fn property_keys(
        &self,
        project: ProjectId,
        sample: u32,
    ) -> Result<Vec<crate::PropertyKey>> {
        let mut conn = self.db.reader.acquire().await?;
        persons::property_keys(&mut conn, project, sample).await
    }

    async fn delete_person(&self, project: ProjectId, uuid: Uuid) -> Result<bool> {
        persons::delete(&self.db, project, uuid).await
    }

    async fn upsert_group(
        &self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
        set: &Properties,
    ) -> Result<Group> {
        groups::upsert(&self.db, project, group_type_index, group_key, set).await
    }

    async fn get_group(
        &self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
    ) -> Result<Option<Group>> {
        let mut conn = self.db.reader.acquire().await?;
        groups::get(&mut conn, project, group_type_index, group_key).await
    }

    async fn get_hash_key_overrides(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
    ) -> Result<HashMap<String, String>> {
        let mut conn = self.db.reader.acquire().await?;
        overrides::get(&mut conn, project, distinct_ids).await
    }

    async fn insert_hash_key_overrides(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
        flag_keys: &[&str],
        hash_key: &str,
    ) -> Result<u64> {
        overrides::insert(&self.db, project, distinct_ids, flag_keys, hash_key).await
    }

    async fn insert_events(&self, project: ProjectId, events: &[NewEvent]) -> Result<u64> {
        events::insert(&self.db, project, events).await
    }

    async fn write_capture(
        &self,
        project: ProjectId,
        events: &[CapturedEvent],
    ) -> Result<CaptureOutcome> {
        capture::write(&self.db, project, events).await
    }

    async fn count_events(
        &self,
        project: ProjectId,
        distinct_id: &str,
        event: &str,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        events::count(&self.db, project, distinct_id, event, since).await
    }

    async fn scan_events(
        &self,
        project: ProjectId,
        names: &[String],
        since: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, NewEvent)>> {
        events::scan(&self.db, project, names, since, after, limit).await
    }

    async fn purge_events(&self, before: DateTime<Utc>, limit: u64) -> Result<u64> {
        events::purge(&self.db, before, limit).await
    }

    async fn last_flag_calls(&self, project: ProjectId) -> Result<HashMap<String, DateTime<Utc>>> {
        events::last_flag_calls(&self.db, project).await
    }

    async fn add_flag_evaluations(
        &self,
        project: ProjectId,
        counts: &[crate::EvaluationCount],
        at: DateTime<Utc>,
    ) -> Result<()> {
        usage::add_evaluations(&self.db, project, counts, at).await
    }

    async fn last_flag_evaluations(
        &self,
        project: ProjectId,
    ) -> Result<HashMap<String, DateTime<Utc>>> {
        usage::last_evaluations(&self.db, project).await
    }

    async fn flag_usage(
        &self,
        project: ProjectId,
        keys: &[&str],
        since: crate::Day,
    ) -> Result<Vec<crate::UsageDay>> {
        usage::usage(&self.db, project, keys, since).await
    }

    async fn flag_calls(
        &self,
        project: ProjectId,
        flag_key: &str,
        limit: u32,
    ) -> Result<Vec<crate::FlagCallRecord>> {
        events::flag_calls(&self.db, project, flag_key, limit).await
    }

    async fn create_user(&self, user: &NewUser) -> Result<User> {
        users::create(&self.db, user).await
    }

    async fn count_users(&self) -> Result<u64> {
        users::count(&self.db).await
    }

    async fn user_for_sign_in(&self, email: &str) -> Result<Option<(User, PasswordHash)>> {
        users::for_sign_in(&self.db, email).await
    }

    async fn create_session(
        &self,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<IssuedSession> {
        users::create_session(&self.db, user, expires_at).await
    }

    async fn session(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        users::session(&self.db, id, now).await
    }

    async fn delete_session(&self, id: &str) -> Result<()> {
        users::delete_session(&self.db, id).await
    }

    async fn create_user_key(&self, user: UserId, label: &str) -> Result<IssuedUserKey> {
        user_keys::create(&self.db, user, label).await
    }

    async fn user_keys(&self, user: UserId) -> Result<Vec<UserKey>> {
        user_keys::list(&self.db, user).await
    }

    async fn revoke_user_key(&self, user: UserId, id: i64) -> Result<bool> {
        user_keys::revoke(&self.db, user, id).await
    }

    async fn user_by_key(&self, key: &str, now: DateTime<Utc>) -> Result<Option<(User, UserKey)>> {
        user_keys::owner(&self.db, key, now).await
    }

    async fn evaluation_inputs(
        &self,
        project: ProjectId,
        distinct_id: &str,
        groups: &[(i64, &str)],
        want_hash_keys: bool,
        anon_distinct_id: Option<&str>,
    ) -> Result<EvalInputs> {
        evaluation::inputs(
            &self.db,
            project,
            distinct_id,
            groups,
            want_hash_keys,
            anon_distinct_id,
        )
        .await
    }
}
