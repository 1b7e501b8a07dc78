//! The shared suite: every case is `async fn(&mut TestDb)` and talks to the store only through
//! `&dyn Store`, except for the few reads of raw rows that `RawRows` provides per backend.

pub mod capture;
pub mod cohorts;
pub mod concurrency;
pub mod durability;
pub mod early_access;
pub mod evaluation;
pub mod events;
pub mod flags;
pub mod groups;
pub mod nodes;
pub mod overrides;
pub mod persons;
pub mod projects;
pub mod users;

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use vexil_store::{CreatedProject, ProjectId, Properties, Store};

/// Backend-specific reads that bypass the trait (to check what is really stored).
#[async_trait]
pub trait RawRows: Send + Sync {
    /// `(api_token, secret_key_hash, personal_key_hash)` of a project row.
    async fn project_keys(&self, project: ProjectId) -> (String, String, String);
    /// The stored version of the person behind `distinct_id` (bumped on every write).
    async fn person_version(&self, project: ProjectId, distinct_id: &str) -> i64;
    /// How many events the project has stored.
    async fn count_events(&self, project: ProjectId) -> i64;
}

/// A fresh, private database for one test.
pub struct TestDb {
    /// The URL `vexil_store::connect` opens.
    pub url: String,
    /// The open store.
    pub store: Arc<dyn Store>,
    /// Raw row access for this backend.
    pub raw: Box<dyn RawRows>,
    /// Keeps the database alive (temp dir, temp schema…) until the test ends.
    pub _guard: Box<dyn Any + Send + Sync>,
}

impl TestDb {
    /// Closes the store and opens the same database again from its URL.
    pub async fn reopen(&mut self) {
        self.store.close().await;
        self.store = vexil_store::connect(&self.url)
            .await
            .expect("reopen the database");
    }

    /// A new project.
    pub async fn project(&self, name: &str) -> CreatedProject {
        self.store
            .create_project(name)
            .await
            .expect("create project")
    }
}

/// A JSON object as a property map.
pub fn props(v: Value) -> Properties {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Filters of a flag rolled out to everyone.
pub fn everyone() -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": 100}]})
}

/// Expands to one `#[tokio::test]` per suite case, each with a fresh database from `$setup`
/// (an `async fn() -> Option<TestDb>`; `None` skips the case: the backend's server is not
/// configured), grouped in one module per area.
macro_rules! store_suite {
    ($setup:path) => {
        store_suite!(@cases $setup;
            projects: [
                create_returns_prefixed_keys,
                keys_are_stored_hashed,
                token_lookup_and_key_verification,
                rotation_replaces_the_key_at_once,
                revocation_refuses_the_key_until_rotated,
                project_name_is_required,
                group_types_are_assigned_in_order,
            ],
            flags: [
                create_sets_defaults_and_version_one,
                update_bumps_version,
                stale_version_conflicts_and_changes_nothing,
                soft_delete_hides_flag_and_keeps_row,
                key_is_unique_among_live_flags,
                bad_input_is_rejected,
                activity_log_records_every_change,
                list_pages_and_searches,
                list_orders_pages_and_ids,
                flag_ages_are_the_live_flags,
                activity_pages_by_keyset,
                definitions_shape,
                checked_writes_see_before_and_after,
                rejected_writes_change_nothing,
            ],
            cohorts: [
                cohort_crud_with_versions,
                static_members_add_remove_count,
                static_membership_through_any_distinct_id,
            ],
            persons: [
                set_set_once_unset,
                identify_attaches_when_one_side_exists,
                identify_merges_two_persons,
                identify_refuses_identified_and_placeholder_ids,
                alias_merges_like_identify,
                delete_person_removes_everything,
                find_by_property_value,
                property_keys_of_persons_and_groups,
            ],
            groups: [upsert_merges_properties, group_input_is_checked],
            early_access: [crud_scoped_by_project],
            overrides: [insert_is_idempotent, first_distinct_id_wins],
            events: [
                batch_insert_is_idempotent_by_uuid,
                count_events_follows_the_person,
                scan_events_pages_named_events_since_a_time,
                flag_calls_are_recorded_once,
                flag_calls_come_back_with_their_event_properties,
                unknown_project_is_not_found,
                purge_deletes_old_events_and_flag_calls_in_chunks,
                flag_usage_adds_evaluations_and_counts_calls_by_day,
            ],
            capture: [
                one_batch_merges_each_person_once,
                duplicates_are_skipped_with_their_effects,
                a_limit_breaks_the_whole_batch_and_names_the_event,
                invalid_effects_are_skipped_and_reported,
            ],
            evaluation: [inputs_for_known_person, inputs_for_unknown_person],
            durability: [data_survives_reopen],
            concurrency: [
                same_expected_version_exactly_one_wins,
                unversioned_updates_never_lose_a_bump,
                checked_updates_are_serialised,
                concurrent_group_type_creation_agrees,
            ],
            users: [
                admins_and_members,
                sign_in_checks_the_argon2id_hash,
                sessions_expire_and_end,
                user_keys_belong_to_users,
            ],
            nodes: [
                concurrent_sets_from_two_nodes_all_survive,
                revision_moves_with_every_definition_change,
                changes_since_replays_flags_and_reloads_the_rest,
            ],
        );
    };
    (@cases $setup:path; $($area:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        $(
            mod $area {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        let Some(mut db) = $setup().await else { return };
                        crate::suite::$area::$case(&mut db).await;
                    }
                )*
            }
        )*
    };
}
