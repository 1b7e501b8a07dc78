//! The PostgreSQL backend: a connection pool shared by any number of Vexil nodes.
//!
//! Every write is one transaction at `READ COMMITTED`. Where the SQLite backend relies on its
//! single writer, this one takes locks: a flag or cohort update reads its row `FOR UPDATE`, every
//! change to a project's definitions or keys bumps the project's `revision` (locking the
//! project row, and announcing the new revision with `pg_notify('vexil_changes', …)` at
//! commit), and person and group writes hold a per-project transaction advisory lock, so
//! merges and property updates from several nodes apply one after the other and none is lost.
//! A commit returns once PostgreSQL has made it durable (its `synchronous_commit`).

mod capture;
mod cohorts;
mod early_access;
mod evaluation;
mod events;
mod flags;
mod groups;
mod listen;
mod migrate;
mod overrides;
mod persons;
mod projects;
mod reach;
mod usage;
mod user_keys;
mod users;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;
use vexil_engine::Definitions;

use crate::sql::{count, is_fk_violation, is_unique_violation, json};
use crate::user::{IssuedSession, NewUser, PasswordHash, Session, User, UserId};
use crate::watch::{ChangesSince, Revised, LOG_KEPT};
use crate::{
    ActivityCursor, ActivityEntry, ActivityPage, Actor, CaptureOutcome, CapturedEvent, Cohort,
    CohortUpdate, CreatedProject, EarlyAccessFeature, EarlyAccessFeatureUpdate, EvalInputs,
    FeatureFlag, FlagAge, FlagCheck, FlagQuery, FlagUpdate, Group, GroupType, IssuedKey,
    IssuedUserKey, KeyKind, Listing, NewCohort, NewEarlyAccessFeature, NewEvent, NewFlag, Page,
    Person, PersonUpdate, Project, ProjectId, Properties, Result, Store, StoreError, UserKey,
};

/// Connections per node. Writers hold one for a transaction's length; readers briefly.
const MAX_CONNECTIONS: u32 = 16;
/// How long an operation waits for a connection (including opening one) before failing: short,
/// so an unreachable database fails requests at once instead of queueing them.
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(750);
/// Idle connections beyond what the load needs are closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The channel on which committed revisions are announced, as `"<project id>:<revision>"`.
pub const CHANGES_CHANNEL: &str = "vexil_changes";

/// The PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    db: Db,
}

/// The pool every operation draws from, behind the reachability breaker ([`reach`]).
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pool: PgPool,
    /// For the breaker's direct connection attempt.
    options: Arc<PgConnectOptions>,
    reach: Arc<reach::Reach>,
    /// Whether this process has brought the schema up to date.
    migrated: Arc<AtomicBool>,
}

impl Db {
    /// A pooled connection; [`StoreError::Unavailable`] at once while the database is known to
    /// be unreachable.
    async fn acquire(&self) -> Result<PoolConnection<Postgres>> {
        self.reach.call(&self.options, self.pool.acquire()).await
    }

    /// Opens a write transaction (failing at once, like [`Db::acquire`], while unreachable).
    async fn write(&self) -> Result<Transaction<'static, Postgres>> {
        self.reach.call(&self.options, self.pool.begin()).await
    }

    /// Opens a read-only transaction whose statements all see one snapshot of the database.
    async fn snapshot(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.write().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

impl PgStore {
    /// Connects to `postgres://…` (or `postgresql://…`) and brings the schema up to date. Safe
    /// to call from many nodes at once: migrations run under an advisory lock.
    pub async fn connect(url: &str) -> Result<Self> {
        let store = Self::connect_deferred(url)?;
        store.migrate().await?;
        Ok(store)
    }

    /// Prepares the pool without touching the database: connections open on first use, and the
    /// schema is brought up to date by [`Store::migrate`]. A node can so start while the
    /// database is down and migrate once it answers.
    pub fn connect_deferred(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("vexil");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(IDLE_TIMEOUT)
            .connect_lazy_with(options.clone());
        Ok(PgStore {
            db: Db {
                pool,
                options: Arc::new(options),
                reach: Arc::new(reach::Reach::new()),
                migrated: Arc::new(AtomicBool::new(false)),
            },
        })
    }
}

/// Bumps the project's revision inside `conn`'s transaction and announces it on
/// [`CHANGES_CHANNEL`] (delivered at commit, dropped on rollback). Locks the project row until
/// the transaction ends, which also serialises the project's definition writes.
/// Logs what the revision changed (`what`) in `definition_changes`, trimming entries older
/// than the kept window.
pub(super) async fn bump_revision(
    conn: &mut PgConnection,
    project: ProjectId,
    what: Revised,
) -> Result<i64> {
    let revision: Option<i64> = sqlx::query_scalar(
        "UPDATE projects SET revision = revision + 1 WHERE id = $1 RETURNING revision",
    )
    .bind(project.0)
    .fetch_optional(&mut *conn)
    .await?;
    let revision = revision.ok_or(StoreError::NotFound { entity: "project" })?;
    let (kind, entity) = what.columns();
    sqlx::query(
        "WITH trimmed AS (
             DELETE FROM definition_changes WHERE project_id = $1 AND revision <= $2 - $5
         )
         INSERT INTO definition_changes (project_id, revision, kind, entity_id)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(project.0)
    .bind(revision)
    .bind(kind)
    .bind(entity)
    .bind(LOG_KEPT)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(format!("{}:{revision}", project.0))
        .execute(&mut *conn)
        .await?;
    Ok(revision)
}

/// Holds the project's person lock until the transaction ends. Person and group writes (capture
/// batches, identify, `$set`) take it first, so two nodes never interleave read-modify-write
/// cycles on the same persons — a merge may touch any of the project's persons, so the lock is
/// per project, like the SQLite backend's single writer; a batch takes it once.
pub(super) async fn lock_persons(conn: &mut PgConnection, project: ProjectId) -> Result<()> {
    /// The first key of the two-key advisory lock space, for person locks (`"vxlp"`).
    const PERSONS: i32 = 0x7678_6c70;
    sqlx::query("SELECT pg_advisory_xact_lock($1, ($2 % 2147483648)::integer)")
        .bind(PERSONS)
        .bind(project.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn close(&self) {
        self.db.pool.close().await;
    }

    async fn migrate(&self) -> Result<()> {
        if !self.db.migrated.load(Ordering::Acquire) {
            migrate::run(&self.db).await?;
            self.db.migrated.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn unreachable(&self) -> bool {
        self.db.reach.is_down()
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
        Some(listen::start(self.db.pool.clone()))
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
        let mut conn = self.db.acquire().await?;
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
        let mut conn = self.db.acquire().await?;
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
        let mut conn = self.db.acquire().await?;
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
        let mut conn = self.db.acquire().await?;
        cohorts::count_members(&mut conn, project, cohort).await
    }

    async fn static_cohorts_for(
        &self,
        project: ProjectId,
        distinct_id: &str,
    ) -> Result<HashSet<i64>> {
        let mut conn = self.db.acquire().await?;
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
        let mut conn = self.db.acquire().await?;
        persons::get(&mut conn, project, distinct_id).await
    }

    async fn find_persons(
        &self,
        project: ProjectId,
        key: &str,
        value: &str,
        limit: u32,
    ) -> Result<Vec<Person>> {
        let mut conn = self.db.acquire().await?;
        persons::find(&mut conn, project, key, value, limit).await
    }

    async fn property_keys(
        &self,
        project: ProjectId,
        sample: u32,
    ) -> Result<Vec<crate::PropertyKey>> {
        let mut conn = self.db.acquire().await?;
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
        let mut conn = self.db.acquire().await?;
        groups::get(&mut conn, project, group_type_index, group_key).await
    }

    async fn get_hash_key_overrides(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
    ) -> Result<HashMap<String, String>> {
        let mut conn = self.db.acquire().await?;
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
