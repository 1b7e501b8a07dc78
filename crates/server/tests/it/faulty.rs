//! `FaultyStore`: the real SQLite store behind a wrapper that injects faults into the calls a
//! degradation test needs to break — a slow person lookup, a blocked continuity-override write,
//! failing project reloads. It lives in the tests, so no production configuration can reach it,
//! and it fails the code under test at its IO boundary (the `Store` trait), exactly where a
//! real outage would.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vexil_engine::Definitions;
use vexil_store::{
    ActivityEntry, CaptureOutcome, CapturedEvent, Cohort, CohortUpdate, CreatedProject, EvalInputs,
    FeatureFlag, FlagCheck, FlagQuery, FlagUpdate, Group, GroupType, IssuedKey, KeyKind, Listing,
    NewCohort, NewEvent, NewFlag, Page, Person, PersonUpdate, Project, ProjectId, Properties,
    Result, Store, StoreError,
};

/// The faults to inject; change them while the app runs.
#[derive(Default)]
pub struct Faults {
    /// Delay before every `evaluation_inputs` call, in milliseconds.
    pub lookup_delay_ms: AtomicU64,
    /// Delay before every `insert_hash_key_overrides` call, in milliseconds.
    pub override_write_delay_ms: AtomicU64,
    /// How many of the next `definitions` calls (every project reload) fail.
    pub failing_reloads: AtomicU32,
    /// `definitions` calls made so far.
    pub reloads: AtomicU32,
}

pub enum Fault {
    EvaluationInputs,
    InsertHashKeyOverrides,
    Definitions,
}

impl Faults {
    async fn before(&self, fault: Fault) -> Result<()> {
        let sleep = |ms: &AtomicU64| Duration::from_millis(ms.load(Ordering::SeqCst));
        match fault {
            Fault::EvaluationInputs => tokio::time::sleep(sleep(&self.lookup_delay_ms)).await,
            Fault::InsertHashKeyOverrides => {
                tokio::time::sleep(sleep(&self.override_write_delay_ms)).await
            }
            Fault::Definitions => {
                self.reloads.fetch_add(1, Ordering::SeqCst);
                let failing =
                    self.failing_reloads
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                if failing.is_ok() {
                    return Err(StoreError::Rejected("injected reload failure".into()));
                }
            }
        }
        Ok(())
    }
}

pub struct FaultyStore {
    pub inner: Arc<dyn Store>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Store for FaultyStore {
    async fn close(&self) {
        self.inner.close().await
    }

    async fn create_user(&self, user: &vexil_store::NewUser) -> Result<vexil_store::User> {
        self.inner.create_user(user).await
    }

    async fn count_users(&self) -> Result<u64> {
        self.inner.count_users().await
    }

    async fn user_for_sign_in(
        &self,
        email: &str,
    ) -> Result<Option<(vexil_store::User, vexil_store::PasswordHash)>> {
        self.inner.user_for_sign_in(email).await
    }

    async fn create_session(
        &self,
        user: vexil_store::UserId,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<vexil_store::IssuedSession> {
        self.inner.create_session(user, expires_at).await
    }

    async fn session(
        &self,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<vexil_store::Session>> {
        self.inner.session(id, now).await
    }

    async fn delete_session(&self, id: &str) -> Result<()> {
        self.inner.delete_session(id).await
    }

    async fn create_user_key(
        &self,
        user: vexil_store::UserId,
        label: &str,
    ) -> Result<vexil_store::IssuedUserKey> {
        self.inner.create_user_key(user, label).await
    }

    async fn user_keys(&self, user: vexil_store::UserId) -> Result<Vec<vexil_store::UserKey>> {
        self.inner.user_keys(user).await
    }

    async fn revoke_user_key(&self, user: vexil_store::UserId, id: i64) -> Result<bool> {
        self.inner.revoke_user_key(user, id).await
    }

    async fn user_by_key(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(vexil_store::User, vexil_store::UserKey)>> {
        self.inner.user_by_key(key, now).await
    }

    async fn create_early_access_feature(
        &self,
        project: ProjectId,
        feature: &vexil_store::NewEarlyAccessFeature,
    ) -> Result<vexil_store::EarlyAccessFeature> {
        self.inner
            .create_early_access_feature(project, feature)
            .await
    }

    async fn early_access_features(
        &self,
        project: ProjectId,
    ) -> Result<Vec<vexil_store::EarlyAccessFeature>> {
        self.inner.early_access_features(project).await
    }

    async fn early_access_feature(
        &self,
        project: ProjectId,
        id: uuid::Uuid,
    ) -> Result<Option<vexil_store::EarlyAccessFeature>> {
        self.inner.early_access_feature(project, id).await
    }

    async fn update_early_access_feature(
        &self,
        project: ProjectId,
        id: uuid::Uuid,
        update: &vexil_store::EarlyAccessFeatureUpdate,
    ) -> Result<vexil_store::EarlyAccessFeature> {
        self.inner
            .update_early_access_feature(project, id, update)
            .await
    }

    async fn delete_early_access_feature(
        &self,
        project: ProjectId,
        id: uuid::Uuid,
    ) -> Result<bool> {
        self.inner.delete_early_access_feature(project, id).await
    }

    async fn create_project(&self, name: &str) -> Result<CreatedProject> {
        self.inner.create_project(name).await
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        self.inner.list_projects().await
    }

    async fn revisions(&self) -> Result<Vec<(ProjectId, i64)>> {
        self.inner.revisions().await
    }

    async fn revision(&self, project: ProjectId) -> Result<Option<i64>> {
        self.inner.revision(project).await
    }

    async fn changes_since(
        &self,
        project: ProjectId,
        since: i64,
    ) -> Result<Option<vexil_store::ChangesSince>> {
        self.inner.changes_since(project, since).await
    }

    fn changes(&self) -> Option<vexil_store::Changes> {
        self.inner.changes()
    }

    async fn get_project(&self, project: ProjectId) -> Result<Option<Project>> {
        self.inner.get_project(project).await
    }

    async fn project_by_token(&self, token: &str) -> Result<Option<Project>> {
        self.inner.project_by_token(token).await
    }

    async fn project_by_personal_key(&self, key: &str) -> Result<Option<Project>> {
        self.inner.project_by_personal_key(key).await
    }

    async fn verify_key(&self, project: ProjectId, kind: KeyKind, key: &str) -> Result<bool> {
        self.inner.verify_key(project, kind, key).await
    }

    async fn ensure_group_type(&self, project: ProjectId, name: &str) -> Result<i64> {
        self.inner.ensure_group_type(project, name).await
    }

    async fn group_types(&self, project: ProjectId) -> Result<Vec<GroupType>> {
        self.inner.group_types(project).await
    }

    async fn create_flag_checked(
        &self,
        project: ProjectId,
        flag: &NewFlag,
        check: &FlagCheck<'_>,
    ) -> Result<FeatureFlag> {
        self.inner.create_flag_checked(project, flag, check).await
    }

    async fn update_flag_checked(
        &self,
        project: ProjectId,
        id: i64,
        update: &FlagUpdate,
        actor: Option<&vexil_store::Actor>,
        check: &FlagCheck<'_>,
    ) -> Result<FeatureFlag> {
        self.inner
            .update_flag_checked(project, id, update, actor, check)
            .await
    }

    async fn get_flag_by_key(&self, project: ProjectId, key: &str) -> Result<Option<FeatureFlag>> {
        self.inner.get_flag_by_key(project, key).await
    }

    async fn list_flags(
        &self,
        project: ProjectId,
        query: &FlagQuery,
    ) -> Result<Listing<FeatureFlag>> {
        self.inner.list_flags(project, query).await
    }

    async fn flag_activity(
        &self,
        project: ProjectId,
        flag: Option<i64>,
        page: Page,
    ) -> Result<Listing<ActivityEntry>> {
        self.inner.flag_activity(project, flag, page).await
    }

    async fn flag_activity_page(
        &self,
        project: ProjectId,
        flag: Option<i64>,
        cursor: vexil_store::ActivityCursor,
        limit: u32,
    ) -> Result<vexil_store::ActivityPage> {
        self.inner
            .flag_activity_page(project, flag, cursor, limit)
            .await
    }

    async fn flag_ages(&self, project: ProjectId) -> Result<Vec<vexil_store::FlagAge>> {
        self.inner.flag_ages(project).await
    }

    async fn activity_entry(&self, project: ProjectId, id: i64) -> Result<Option<ActivityEntry>> {
        self.inner.activity_entry(project, id).await
    }

    async fn definitions(&self, project: ProjectId) -> Result<Definitions> {
        self.faults.before(Fault::Definitions).await?;
        self.inner.definitions(project).await
    }

    async fn create_cohort(&self, project: ProjectId, cohort: &NewCohort) -> Result<Cohort> {
        self.inner.create_cohort(project, cohort).await
    }

    async fn update_cohort(
        &self,
        project: ProjectId,
        id: i64,
        update: &CohortUpdate,
        expected_version: Option<i64>,
    ) -> Result<Cohort> {
        self.inner
            .update_cohort(project, id, update, expected_version)
            .await
    }

    async fn get_cohort(&self, project: ProjectId, id: i64) -> Result<Option<Cohort>> {
        self.inner.get_cohort(project, id).await
    }

    async fn list_cohorts(&self, project: ProjectId, page: Page) -> Result<Listing<Cohort>> {
        self.inner.list_cohorts(project, page).await
    }

    async fn add_cohort_members(
        &self,
        project: ProjectId,
        cohort: i64,
        distinct_ids: &[String],
    ) -> Result<u64> {
        self.inner
            .add_cohort_members(project, cohort, distinct_ids)
            .await
    }

    async fn remove_cohort_members(
        &self,
        project: ProjectId,
        cohort: i64,
        distinct_ids: &[String],
    ) -> Result<u64> {
        self.inner
            .remove_cohort_members(project, cohort, distinct_ids)
            .await
    }

    async fn cohort_members(
        &self,
        project: ProjectId,
        cohort: i64,
        page: Page,
    ) -> Result<Listing<String>> {
        self.inner.cohort_members(project, cohort, page).await
    }

    async fn count_cohort_members(&self, project: ProjectId, cohort: i64) -> Result<u64> {
        self.inner.count_cohort_members(project, cohort).await
    }

    async fn static_cohorts_for(
        &self,
        project: ProjectId,
        distinct_id: &str,
    ) -> Result<HashSet<i64>> {
        self.inner.static_cohorts_for(project, distinct_id).await
    }

    async fn apply_person_update(
        &self,
        project: ProjectId,
        distinct_id: &str,
        update: &PersonUpdate,
    ) -> Result<Person> {
        self.inner
            .apply_person_update(project, distinct_id, update)
            .await
    }

    async fn identify(
        &self,
        project: ProjectId,
        distinct_id: &str,
        anon_distinct_id: &str,
    ) -> Result<Person> {
        self.inner
            .identify(project, distinct_id, anon_distinct_id)
            .await
    }

    async fn find_persons(
        &self,
        project: ProjectId,
        key: &str,
        value: &str,
        limit: u32,
    ) -> Result<Vec<Person>> {
        self.inner.find_persons(project, key, value, limit).await
    }

    async fn property_keys(
        &self,
        project: ProjectId,
        sample: u32,
    ) -> Result<Vec<vexil_store::PropertyKey>> {
        self.inner.property_keys(project, sample).await
    }

    async fn delete_person(&self, project: ProjectId, uuid: Uuid) -> Result<bool> {
        self.inner.delete_person(project, uuid).await
    }

    async fn upsert_group(
        &self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
        set: &Properties,
    ) -> Result<Group> {
        self.inner
            .upsert_group(project, group_type_index, group_key, set)
            .await
    }

    async fn get_group(
        &self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
    ) -> Result<Option<Group>> {
        self.inner
            .get_group(project, group_type_index, group_key)
            .await
    }

    async fn get_hash_key_overrides(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
    ) -> Result<HashMap<String, String>> {
        self.inner
            .get_hash_key_overrides(project, distinct_ids)
            .await
    }

    async fn insert_hash_key_overrides(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
        flag_keys: &[&str],
        hash_key: &str,
    ) -> Result<u64> {
        self.faults.before(Fault::InsertHashKeyOverrides).await?;
        self.inner
            .insert_hash_key_overrides(project, distinct_ids, flag_keys, hash_key)
            .await
    }

    async fn insert_events(&self, project: ProjectId, events: &[NewEvent]) -> Result<u64> {
        self.inner.insert_events(project, events).await
    }

    async fn write_capture(
        &self,
        project: ProjectId,
        events: &[CapturedEvent],
    ) -> Result<CaptureOutcome> {
        self.inner.write_capture(project, events).await
    }

    async fn count_events(
        &self,
        project: ProjectId,
        distinct_id: &str,
        event: &str,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        self.inner
            .count_events(project, distinct_id, event, since)
            .await
    }

    async fn scan_events(
        &self,
        project: ProjectId,
        names: &[String],
        since: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, vexil_store::NewEvent)>> {
        self.inner
            .scan_events(project, names, since, after, limit)
            .await
    }

    async fn purge_events(&self, before: DateTime<Utc>, limit: u64) -> Result<u64> {
        self.inner.purge_events(before, limit).await
    }

    async fn last_flag_calls(&self, project: ProjectId) -> Result<HashMap<String, DateTime<Utc>>> {
        self.inner.last_flag_calls(project).await
    }

    async fn add_flag_evaluations(
        &self,
        project: ProjectId,
        counts: &[vexil_store::EvaluationCount],
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.inner.add_flag_evaluations(project, counts, at).await
    }

    async fn last_flag_evaluations(
        &self,
        project: ProjectId,
    ) -> Result<HashMap<String, DateTime<Utc>>> {
        self.inner.last_flag_evaluations(project).await
    }

    async fn flag_usage(
        &self,
        project: ProjectId,
        keys: &[&str],
        since: vexil_store::Day,
    ) -> Result<Vec<vexil_store::UsageDay>> {
        self.inner.flag_usage(project, keys, since).await
    }

    async fn flag_calls(
        &self,
        project: ProjectId,
        flag_key: &str,
        limit: u32,
    ) -> Result<Vec<vexil_store::FlagCallRecord>> {
        self.inner.flag_calls(project, flag_key, limit).await
    }

    async fn evaluation_inputs(
        &self,
        project: ProjectId,
        distinct_id: &str,
        groups: &[(i64, &str)],
        want_hash_keys: bool,
        anon_distinct_id: Option<&str>,
    ) -> Result<EvalInputs> {
        self.faults.before(Fault::EvaluationInputs).await?;
        self.inner
            .evaluation_inputs(
                project,
                distinct_id,
                groups,
                want_hash_keys,
                anon_distinct_id,
            )
            .await
    }

    async fn get_flag(&self, project: ProjectId, id: i64) -> Result<Option<FeatureFlag>> {
        self.inner.get_flag(project, id).await
    }

    async fn get_person(&self, project: ProjectId, distinct_id: &str) -> Result<Option<Person>> {
        self.inner.get_person(project, distinct_id).await
    }

    async fn rotate_key(&self, project: ProjectId, kind: KeyKind) -> Result<IssuedKey> {
        self.inner.rotate_key(project, kind).await
    }

    async fn revoke_key(&self, project: ProjectId, kind: KeyKind) -> Result<()> {
        self.inner.revoke_key(project, kind).await
    }
}
