//! The [`Store`] trait: every durable operation Vexil performs, independent of the database.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vexil_engine::Definitions;

use crate::user::{IssuedSession, NewUser, PasswordHash, Session, User, UserId};
use crate::watch::{Changes, ChangesSince};
use crate::{
    ActivityCursor, ActivityEntry, ActivityPage, Actor, CaptureOutcome, CapturedEvent, Cohort,
    CohortUpdate, CreatedProject, EarlyAccessFeature, EarlyAccessFeatureUpdate, EvalInputs,
    FeatureFlag, FlagAge, FlagCallRecord, FlagCheck, FlagQuery, FlagUpdate, Group, GroupType,
    IssuedKey, IssuedUserKey, KeyKind, Listing, NewCohort, NewEarlyAccessFeature, NewEvent,
    NewFlag, Page, Person, PersonUpdate, Project, ProjectId, Properties, PropertyKey, Result,
    UserKey,
};

/// Durable storage behind one interface; pick an implementation with [`crate::connect`] and
/// share it as `Arc<dyn Store>`.
///
/// Every operation is scoped by project: an id of another project behaves as if it did not
/// exist. Writes return only after they are durable (committed).
#[async_trait]
pub trait Store: Send + Sync {
    // ---- lifecycle ----

    /// Closes the connections, waiting for running operations; later calls fail.
    async fn close(&self);

    /// Brings the schema up to date, once per process: a store opened with
    /// [`crate::connect_deferred`] migrates here, when the database first answers. Stores that
    /// migrate when opened (SQLite) have nothing left to do.
    async fn migrate(&self) -> Result<()> {
        Ok(())
    }

    /// Whether the database was found unreachable by the latest attempt to reach it (calls
    /// meanwhile fail at once with [`crate::StoreError::Unavailable`]). Always `false` for an
    /// embedded store.
    fn unreachable(&self) -> bool {
        false
    }

    // ---- projects ----

    /// Creates a project and its credentials. The returned secret and personal keys are never
    /// retrievable again: only their hashes are stored.
    async fn create_project(&self, name: &str) -> Result<CreatedProject>;

    /// All projects, oldest first.
    async fn list_projects(&self) -> Result<Vec<Project>>;

    /// Every project's revision, by project id: a number bumped in the same transaction as
    /// each committed change to the project's flags, cohorts, group types or keys, so a
    /// process holding definitions can tell whether they are current.
    async fn revisions(&self) -> Result<Vec<(ProjectId, i64)>>;

    /// The project's revision (see [`Store::revisions`]); `None` for an unknown project.
    async fn revision(&self, project: ProjectId) -> Result<Option<i64>>;

    /// What changed in the project after revision `since` (a revision a reader holds), read
    /// in one consistent snapshot with the revision it brings the reader to: the changed flags'
    /// rows when only flags changed, otherwise why the project must be reloaded (a cohort or
    /// key changed, too many revisions, or the log does not reach back to `since`). `None` for
    /// an unknown project.
    async fn changes_since(&self, project: ProjectId, since: i64) -> Result<Option<ChangesSince>>;

    /// A feed announcing each committed change of any project's definitions or keys, made by
    /// this process or any other sharing the database, as `(project, revision)` — or `None`
    /// when the backend cannot push changes (SQLite): compare [`Store::revisions`] instead.
    /// Announcements can be lost (see [`crate::Change::Resubscribed`]), so a reader compares
    /// revisions now and then either way. Call within a Tokio runtime.
    fn changes(&self) -> Option<Changes>;

    /// The project with this id.
    async fn get_project(&self, project: ProjectId) -> Result<Option<Project>>;

    /// The project whose public token (`phc_…`) this is.
    async fn project_by_token(&self, token: &str) -> Result<Option<Project>>;

    /// The project a personal API key (`phx_…`) belongs to (by hash).
    async fn project_by_personal_key(&self, key: &str) -> Result<Option<Project>>;

    /// Whether `key` is the project's secret or personal key, and not revoked. `false` for
    /// unknown projects.
    async fn verify_key(&self, project: ProjectId, kind: KeyKind, key: &str) -> Result<bool>;

    /// Issues a new secret or personal key for the project, replacing the old one (and lifting
    /// a revocation). Only its hash is stored: the returned key is never retrievable again. From
    /// the moment this returns, the old key no longer verifies, in this process or any other
    /// sharing the database.
    async fn rotate_key(&self, project: ProjectId, kind: KeyKind) -> Result<IssuedKey>;

    /// Revokes the project's secret or personal key without a replacement: no key of that kind
    /// verifies until [`Store::rotate_key`] issues a new one. Revoking twice is harmless.
    async fn revoke_key(&self, project: ProjectId, kind: KeyKind) -> Result<()>;

    /// The index of group type `name`, assigning the next free index (0–4) on first use.
    /// A sixth type is [`crate::StoreError::Invalid`].
    async fn ensure_group_type(&self, project: ProjectId, name: &str) -> Result<i64>;

    /// The project's group type mapping, by index.
    async fn group_types(&self, project: ProjectId) -> Result<Vec<GroupType>>;

    // ---- feature flags ----

    /// Creates a flag at version 1 and logs `created`, in one transaction that first runs
    /// `check` on the new row. A key held by a non-deleted flag is
    /// [`crate::StoreError::Duplicate`]; a soft-deleted flag's key may be reused.
    async fn create_flag_checked(
        &self,
        project: ProjectId,
        flag: &NewFlag,
        check: &FlagCheck<'_>,
    ) -> Result<FeatureFlag>;

    /// Reads the flag, applies `update`, runs `check` on (stored, updated), writes the row with
    /// the version bumped and logs the change — one transaction, so concurrent writers queue
    /// and none loses a bump or needs a retry. Returns the written row.
    async fn update_flag_checked(
        &self,
        project: ProjectId,
        id: i64,
        update: &FlagUpdate,
        actor: Option<&Actor>,
        check: &FlagCheck<'_>,
    ) -> Result<FeatureFlag>;

    /// [`Store::create_flag_checked`] without a check.
    async fn create_flag(&self, project: ProjectId, flag: &NewFlag) -> Result<FeatureFlag> {
        self.create_flag_checked(project, flag, &crate::accept_any)
            .await
    }

    /// Applies `update`, bumps the version and logs the change, atomically. With
    /// `expected_version`, a different stored version is [`crate::StoreError::Conflict`] and
    /// nothing changes.
    async fn update_flag(
        &self,
        project: ProjectId,
        id: i64,
        update: &FlagUpdate,
        expected_version: Option<i64>,
        actor: Option<&str>,
    ) -> Result<FeatureFlag> {
        let check =
            move |before: Option<&FeatureFlag>, _: &FeatureFlag| match (before, expected_version) {
                (Some(before), Some(expected)) if before.version != expected => {
                    Err(crate::StoreError::Conflict {
                        current_version: before.version,
                    })
                }
                _ => Ok(()),
            };
        let actor = actor.map(|a| Actor::Named {
            label: a.to_owned(),
        });
        self.update_flag_checked(project, id, update, actor.as_ref(), &check)
            .await
    }

    /// Soft-deletes a flag (an update setting `deleted`, logged as `deleted`).
    async fn delete_flag(
        &self,
        project: ProjectId,
        id: i64,
        expected_version: Option<i64>,
        actor: Option<&str>,
    ) -> Result<FeatureFlag> {
        self.update_flag(project, id, &FlagUpdate::delete(), expected_version, actor)
            .await
    }

    /// Creates an early access feature linked to flag `flag_id` of the project (not deleted:
    /// else [`crate::StoreError::NotFound`] `"flag"`); a flag already linked to a feature is
    /// [`crate::StoreError::Duplicate`] `feature_flag_id`.
    async fn create_early_access_feature(
        &self,
        project: ProjectId,
        feature: &NewEarlyAccessFeature,
    ) -> Result<EarlyAccessFeature>;

    /// The project's early access features, oldest first.
    async fn early_access_features(&self, project: ProjectId) -> Result<Vec<EarlyAccessFeature>>;

    /// One early access feature.
    async fn early_access_feature(
        &self,
        project: ProjectId,
        id: Uuid,
    ) -> Result<Option<EarlyAccessFeature>>;

    /// Applies `update`; [`crate::StoreError::NotFound`] when there is no such feature.
    async fn update_early_access_feature(
        &self,
        project: ProjectId,
        id: Uuid,
        update: &EarlyAccessFeatureUpdate,
    ) -> Result<EarlyAccessFeature>;

    /// Deletes a feature (its flag stays); whether it existed.
    async fn delete_early_access_feature(&self, project: ProjectId, id: Uuid) -> Result<bool>;

    /// A flag by id, deleted or not.
    async fn get_flag(&self, project: ProjectId, id: i64) -> Result<Option<FeatureFlag>>;

    /// The non-deleted flag with this key.
    async fn get_flag_by_key(&self, project: ProjectId, key: &str) -> Result<Option<FeatureFlag>>;

    /// Non-deleted flags matching `query`, in its order, one page of them, and how many match.
    async fn list_flags(
        &self,
        project: ProjectId,
        query: &FlagQuery,
    ) -> Result<Listing<FeatureFlag>>;

    /// Id, key and creation time of every non-deleted flag, by id: the stale test's first
    /// half, without reading or parsing filters.
    async fn flag_ages(&self, project: ProjectId) -> Result<Vec<FlagAge>>;

    /// Activity-log entries of one flag (`Some(id)`) or of all flags, newest first, by offset
    /// (the management API's numbered pages).
    async fn flag_activity(
        &self,
        project: ProjectId,
        flag: Option<i64>,
        page: Page,
    ) -> Result<Listing<ActivityEntry>>;

    /// Up to `limit` activity-log entries of one flag or of all flags from `cursor`, newest
    /// first: a keyset page, as cheap deep in the log as at its start.
    async fn flag_activity_page(
        &self,
        project: ProjectId,
        flag: Option<i64>,
        cursor: ActivityCursor,
        limit: u32,
    ) -> Result<ActivityPage>;

    /// One activity-log entry of the project (for a revert).
    async fn activity_entry(&self, project: ProjectId, id: i64) -> Result<Option<ActivityEntry>>;

    /// The project's local-evaluation definitions: non-deleted flags (minus remote
    /// configuration), the group type mapping, and the referenced dynamic cohorts.
    async fn definitions(&self, project: ProjectId) -> Result<Definitions>;

    // ---- cohorts ----

    /// Creates a cohort at version 1.
    async fn create_cohort(&self, project: ProjectId, cohort: &NewCohort) -> Result<Cohort>;

    /// Applies `update` and bumps the version; `expected_version` as for flags.
    async fn update_cohort(
        &self,
        project: ProjectId,
        id: i64,
        update: &CohortUpdate,
        expected_version: Option<i64>,
    ) -> Result<Cohort>;

    /// A cohort by id, deleted or not.
    async fn get_cohort(&self, project: ProjectId, id: i64) -> Result<Option<Cohort>>;

    /// Non-deleted cohorts, newest first.
    async fn list_cohorts(&self, project: ProjectId, page: Page) -> Result<Listing<Cohort>>;

    /// Adds distinct ids to a static cohort; returns how many were new. A dynamic cohort is
    /// [`crate::StoreError::Invalid`].
    async fn add_cohort_members(
        &self,
        project: ProjectId,
        cohort: i64,
        distinct_ids: &[String],
    ) -> Result<u64>;

    /// Removes distinct ids from a static cohort; returns how many were members.
    async fn remove_cohort_members(
        &self,
        project: ProjectId,
        cohort: i64,
        distinct_ids: &[String],
    ) -> Result<u64>;

    /// A static cohort's member distinct ids, in insertion order.
    async fn cohort_members(
        &self,
        project: ProjectId,
        cohort: i64,
        page: Page,
    ) -> Result<Listing<String>>;

    /// How many distinct ids a static cohort lists.
    async fn count_cohort_members(&self, project: ProjectId, cohort: i64) -> Result<u64>;

    /// Ids of the non-deleted static cohorts listing `distinct_id` or any other distinct id of
    /// the same person.
    async fn static_cohorts_for(
        &self,
        project: ProjectId,
        distinct_id: &str,
    ) -> Result<HashSet<i64>>;

    // ---- persons and groups ----

    /// Applies `$set` / `$set_once` / `$unset` to the person behind `distinct_id`, creating
    /// the person if needed.
    async fn apply_person_update(
        &self,
        project: ProjectId,
        distinct_id: &str,
        update: &PersonUpdate,
    ) -> Result<Person>;

    /// `$identify`: joins `anon_distinct_id` to `distinct_id`'s person. If only one of them has
    /// a person, the other id is attached to it; if neither, one person gets both; if both,
    /// the anonymous person is merged into the identified one (its ids, hash-key overrides and
    /// the properties the kept person lacks) — unless it is itself identified or either id is a
    /// placeholder ([`crate::is_illegal_merge_id`]), in which case nothing is merged. The
    /// returned person is `distinct_id`'s and is marked identified.
    async fn identify(
        &self,
        project: ProjectId,
        distinct_id: &str,
        anon_distinct_id: &str,
    ) -> Result<Person>;

    /// `$create_alias`: merges `alias` into `distinct_id`'s person, by the rules of
    /// [`Store::identify`].
    async fn alias(&self, project: ProjectId, distinct_id: &str, alias: &str) -> Result<Person> {
        self.identify(project, distinct_id, alias).await
    }

    /// The person behind `distinct_id`, with all their distinct ids.
    async fn get_person(&self, project: ProjectId, distinct_id: &str) -> Result<Option<Person>>;

    /// Persons whose property `key` reads as `value` (a string as is; a number, `true` or
    /// `false` as its JSON text), newest first, at most `limit`. Scans the project's persons:
    /// for the UI's person search, not a hot path.
    async fn find_persons(
        &self,
        project: ProjectId,
        key: &str,
        value: &str,
        limit: u32,
    ) -> Result<Vec<Person>>;

    /// The property keys of the latest `sample` persons and of the latest `sample` groups,
    /// most common first, each with the type of its values: the UI's key suggestions.
    async fn property_keys(&self, project: ProjectId, sample: u32) -> Result<Vec<PropertyKey>>;

    /// Deletes a person with their distinct ids and hash-key overrides; `false` if unknown.
    async fn delete_person(&self, project: ProjectId, uuid: Uuid) -> Result<bool>;

    /// `$groupidentify`: creates the group if needed and overwrites the given properties.
    async fn upsert_group(
        &self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
        set: &Properties,
    ) -> Result<Group>;

    /// A stored group.
    async fn get_group(
        &self,
        project: ProjectId,
        group_type_index: i64,
        group_key: &str,
    ) -> Result<Option<Group>>;

    // ---- experience continuity (§8.2) ----

    /// Stored hash keys by flag key for the persons of `distinct_ids`; where several persons
    /// have one for the same flag, the earliest distinct id in the slice wins.
    async fn get_hash_key_overrides(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
    ) -> Result<HashMap<String, String>>;

    /// Stores `hash_key` for each flag key and each existing person of `distinct_ids`,
    /// keeping overrides that already exist. Returns how many rows were written.
    async fn insert_hash_key_overrides(
        &self,
        project: ProjectId,
        distinct_ids: &[&str],
        flag_keys: &[&str],
        hash_key: &str,
    ) -> Result<u64>;

    // ---- events ----

    /// Stores a batch in one transaction; events whose uuid is already stored are skipped.
    /// `$feature_flag_called` events are also recorded as flag calls. Returns how many events
    /// were new, once committed.
    async fn insert_events(&self, project: ProjectId, events: &[NewEvent]) -> Result<u64>;

    /// Stores a capture batch and applies its person and group changes, all in one
    /// transaction: an event whose uuid is already stored (or appears earlier in the batch) is
    /// skipped with its effects; each person and group is written once however many events
    /// touch it. Effects the store refuses as invalid are skipped and reported; a
    /// [`crate::StoreError::LimitExceeded`] names the event that broke the limit and nothing is
    /// written.
    async fn write_capture(
        &self,
        project: ProjectId,
        events: &[CapturedEvent],
    ) -> Result<CaptureOutcome>;

    /// How many `event` events the person behind `distinct_id` (through any of their distinct
    /// ids) performed at or after `since`.
    async fn count_events(
        &self,
        project: ProjectId,
        distinct_id: &str,
        event: &str,
        since: DateTime<Utc>,
    ) -> Result<u64>;

    /// Stored events of `project` named in `names` whose timestamp is at or after `since`, in
    /// storage order after cursor `after` (`0` to start), at most `limit`, each with its cursor:
    /// call again with the last cursor until fewer than `limit` come back. For rebuilding state
    /// derived from events (behavioural counts at start).
    async fn scan_events(
        &self,
        project: ProjectId,
        names: &[String],
        since: DateTime<Utc>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, NewEvent)>>;

    /// Retention: deletes, in every project, up to `limit` events and up to `limit` flag calls
    /// whose time (the event's timestamp) is before `before`, oldest first, in one short
    /// transaction. Returns how many rows went; call again until it returns less than `limit`.
    async fn purge_events(&self, before: DateTime<Utc>, limit: u64) -> Result<u64>;

    /// When each flag key was last reported by `$feature_flag_called`.
    async fn last_flag_calls(&self, project: ProjectId) -> Result<HashMap<String, DateTime<Utc>>>;

    /// The latest `limit` calls of flag `flag_key` (`$feature_flag_called`), newest first, each
    /// with the properties its event carried.
    async fn flag_calls(
        &self,
        project: ProjectId,
        flag_key: &str,
        limit: u32,
    ) -> Result<Vec<FlagCallRecord>>;

    /// Adds server evaluation counts (each node adds what it counted since its last
    /// addition, so the nodes of a cluster sum up) and records `at` as the last server
    /// evaluation of each flag named, in one transaction.
    async fn add_flag_evaluations(
        &self,
        project: ProjectId,
        counts: &[crate::EvaluationCount],
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// When each flag key was last evaluated by a server (as of its node's last addition).
    async fn last_flag_evaluations(
        &self,
        project: ProjectId,
    ) -> Result<HashMap<String, DateTime<Utc>>>;

    /// The flags `keys`' use per day from `since` on: server evaluations and
    /// `$feature_flag_called` calls, a row per flag and day with any, in key then day order.
    async fn flag_usage(
        &self,
        project: ProjectId,
        keys: &[&str],
        since: crate::Day,
    ) -> Result<Vec<crate::UsageDay>>;

    // ---- users and sessions (the web UI) ----

    /// Creates a user with their memberships (none: an administrator). A taken e-mail is
    /// [`crate::StoreError::Duplicate`] (`email`), an unknown project
    /// [`crate::StoreError::NotFound`].
    async fn create_user(&self, user: &NewUser) -> Result<User>;

    /// How many users exist (none: the first start prints a generated administrator).
    async fn count_users(&self) -> Result<u64>;

    /// The user with this e-mail (normalised first) and their password hash, to check a
    /// sign-in.
    async fn user_for_sign_in(&self, email: &str) -> Result<Option<(User, PasswordHash)>>;

    /// Opens a session for `user` until `expires_at`; only the hash of its id is stored.
    async fn create_session(
        &self,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<IssuedSession>;

    /// The session whose id this is, if it has not expired at `now`.
    async fn session(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Session>>;

    /// Ends a session (sign-out); an unknown id is not an error.
    async fn delete_session(&self, id: &str) -> Result<()>;

    // ---- users' personal API keys ----

    /// Creates a personal key for `user` labelled `label` (checked by
    /// [`crate::validate_key_label`]); only its hash is stored. An unknown user is
    /// [`crate::StoreError::NotFound`].
    async fn create_user_key(&self, user: UserId, label: &str) -> Result<IssuedUserKey>;

    /// `user`'s keys, newest first, without their values.
    async fn user_keys(&self, user: UserId) -> Result<Vec<UserKey>>;

    /// Deletes `user`'s key `id` (refused from the next request on); `false` when `user` has
    /// no such key.
    async fn revoke_user_key(&self, user: UserId, id: i64) -> Result<bool>;

    /// The user a personal key belongs to, and the key, recording its use at `now` (at most
    /// once a minute); `None` for an unknown or revoked key.
    async fn user_by_key(&self, key: &str, now: DateTime<Utc>) -> Result<Option<(User, UserKey)>>;

    // ---- hot path ----

    /// Everything per-request an evaluation reads from storage, in as few round trips as the
    /// backend allows: the person's properties, their static cohorts, the given groups'
    /// properties (`(group type index, group key)`), and — when `want_hash_keys` — the
    /// hash-key overrides of `distinct_id` and `anon_distinct_id` (the former winning).
    async fn evaluation_inputs(
        &self,
        project: ProjectId,
        distinct_id: &str,
        groups: &[(i64, &str)],
        want_hash_keys: bool,
        anon_distinct_id: Option<&str>,
    ) -> Result<EvalInputs>;
}
