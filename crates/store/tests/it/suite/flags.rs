//! Feature flags: versions, optimistic concurrency, soft delete, activity, listing, definitions.

use serde_json::json;
use vexil_engine::{evaluate, CompiledProject, Context, FlagValue};
use vexil_store::{
    ActivityAction, ActivityCursor, Actor, EvaluationRuntime, FeatureFlag, FlagAge, FlagOrder,
    FlagOrderField, FlagQuery, FlagUpdate, KeyRef, NewCohort, NewFlag, Page, ProjectId, StoreError,
    UserId,
};

use super::{everyone, props, TestDb};

pub async fn create_sets_defaults_and_version_one(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let mut new = NewFlag::new("beta", everyone());
    new.created_by = Some(Actor::Named {
        label: "alice".into(),
    });
    let flag = db.store.create_flag(p, &new).await.unwrap();
    assert!(flag.id > 0);
    assert_eq!(flag.project_id, p);
    assert_eq!(flag.key, "beta");
    assert_eq!(flag.name, "");
    assert_eq!(flag.filters, everyone());
    assert!(flag.active && !flag.deleted && !flag.ensure_experience_continuity);
    assert!(!flag.has_experiment && !flag.is_remote_configuration);
    assert_eq!(flag.version, 1);
    assert_eq!(flag.evaluation_runtime, EvaluationRuntime::All);
    assert!(flag.evaluation_tags.is_empty() && flag.tags.is_empty());
    assert_eq!(flag.created_by.as_deref(), Some("alice"));
    assert_eq!(flag.created_at, flag.updated_at);
    assert_eq!(
        db.store.get_flag(p, flag.id).await.unwrap(),
        Some(flag.clone())
    );
    assert_eq!(
        db.store.get_flag_by_key(p, "beta").await.unwrap(),
        Some(flag)
    );
}

pub async fn update_bumps_version(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let flag = s
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();

    let update = FlagUpdate {
        name: Some("Beta programme".into()),
        active: Some(false),
        ensure_experience_continuity: Some(true),
        evaluation_runtime: Some(EvaluationRuntime::Server),
        evaluation_tags: Some(vec!["web".into()]),
        tags: Some(vec!["team-a".into()]),
        bucketing_identifier: Some(Some("device_id".into())),
        ..FlagUpdate::default()
    };
    let v2 = s
        .update_flag(p, flag.id, &update, None, Some("bob"))
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.name, "Beta programme");
    assert!(!v2.active && v2.ensure_experience_continuity);
    assert_eq!(v2.evaluation_runtime, EvaluationRuntime::Server);
    assert_eq!(v2.evaluation_tags, vec!["web".to_string()]);
    assert_eq!(v2.tags, vec!["team-a".to_string()]);
    assert_eq!(v2.bucketing_identifier.as_deref(), Some("device_id"));
    assert_eq!(v2.last_modified_by.as_deref(), Some("bob"));
    assert_eq!(v2.created_at, flag.created_at);
    assert!(v2.updated_at >= flag.updated_at);
    assert_eq!(s.get_flag(p, flag.id).await.unwrap(), Some(v2.clone()));

    let filters = json!({"groups": [{"properties": [], "rollout_percentage": 50}]});
    let v3 = s
        .update_flag(
            p,
            flag.id,
            &FlagUpdate {
                filters: Some(filters.clone()),
                bucketing_identifier: Some(None),
                ..FlagUpdate::default()
            },
            Some(2),
            None,
        )
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(v3.filters, filters);
    assert_eq!(v3.bucketing_identifier, None);
    assert_eq!(v3.name, "Beta programme", "untouched fields stay");
    // An empty update is still an update.
    let v4 = s
        .update_flag(p, flag.id, &FlagUpdate::default(), Some(3), None)
        .await
        .unwrap();
    assert_eq!(v4.version, 4);
}

pub async fn stale_version_conflicts_and_changes_nothing(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let flag = s
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let rename = |n: &str| FlagUpdate {
        name: Some(n.into()),
        ..FlagUpdate::default()
    };
    s.update_flag(p, flag.id, &rename("first"), Some(1), None)
        .await
        .unwrap();
    let err = s
        .update_flag(p, flag.id, &rename("stale"), Some(1), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { current_version: 2 }),
        "{err:?}"
    );
    let err = s.delete_flag(p, flag.id, Some(7), None).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { current_version: 2 }));
    let stored = s.get_flag(p, flag.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.name, "first");
    assert!(!stored.deleted);
    let log = s
        .flag_activity(p, Some(flag.id), Page::default())
        .await
        .unwrap();
    assert_eq!(log.total, 2, "a refused update writes no activity");
}

pub async fn soft_delete_hides_flag_and_keeps_row(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let flag = s
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let other = s
        .create_flag(p, &NewFlag::new("other", everyone()))
        .await
        .unwrap();
    let deleted = s
        .delete_flag(p, flag.id, Some(1), Some("carol"))
        .await
        .unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.version, 2);

    let row = s.get_flag(p, flag.id).await.unwrap().unwrap();
    assert!(row.deleted, "the row stays, marked deleted");
    assert_eq!(s.get_flag_by_key(p, "beta").await.unwrap(), None);
    let listed = s.list_flags(p, &FlagQuery::default()).await.unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.items[0].id, other.id);
    let defs = s.definitions(p).await.unwrap();
    assert_eq!(defs.flags.len(), 1);
    assert_eq!(defs.flags[0].key, "other");
    let log = s
        .flag_activity(p, Some(flag.id), Page::default())
        .await
        .unwrap();
    assert_eq!(log.items[0].action, ActivityAction::Deleted);
    assert_eq!(
        log.items[0].actor.as_ref().map(Actor::label).as_deref(),
        Some("carol")
    );
}

pub async fn key_is_unique_among_live_flags(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    let first = s
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let err = s
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate { field: "key" }),
        "{err:?}"
    );
    // Another project may use the key.
    s.create_flag(q, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();

    // Renaming onto a live key is refused too.
    let gamma = s
        .create_flag(p, &NewFlag::new("gamma", everyone()))
        .await
        .unwrap();
    let onto_beta = FlagUpdate {
        key: Some("beta".into()),
        ..FlagUpdate::default()
    };
    let err = s
        .update_flag(p, gamma.id, &onto_beta, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { field: "key" }));
    assert_eq!(s.get_flag(p, gamma.id).await.unwrap().unwrap().version, 1);

    // Once deleted, the key is free again; the deleted row cannot come back onto it.
    s.delete_flag(p, first.id, None, None).await.unwrap();
    let second = s
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    assert_ne!(second.id, first.id);
    let restore = FlagUpdate {
        deleted: Some(false),
        ..FlagUpdate::default()
    };
    let err = s
        .update_flag(p, first.id, &restore, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { field: "key" }));
    assert_eq!(
        s.get_flag_by_key(p, "beta").await.unwrap().unwrap().id,
        second.id
    );
}

pub async fn bad_input_is_rejected(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    for key in ["", "has space", "émoji", "semi;colon", &"k".repeat(401)] {
        let err = s
            .create_flag(p, &NewFlag::new(key, everyone()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid { field: "key", .. }),
            "{key:?}: {err:?}"
        );
    }
    for filters in [json!(null), json!([]), json!("groups")] {
        let err = s
            .create_flag(p, &NewFlag::new("ok", filters))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::Invalid {
                field: "filters",
                ..
            }
        ));
    }
    let err = s
        .create_flag(ProjectId(999_999), &NewFlag::new("ok", everyone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { entity: "project" }),
        "{err:?}"
    );

    let flag = s
        .create_flag(p, &NewFlag::new("ok", everyone()))
        .await
        .unwrap();
    let err = s
        .update_flag(p, flag.id + 1000, &FlagUpdate::default(), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { entity: "flag" }));
    // Another project's flag does not exist from here.
    let err = s
        .update_flag(q, flag.id, &FlagUpdate::default(), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { entity: "flag" }));
    assert_eq!(s.get_flag(q, flag.id).await.unwrap(), None);
    let bad = FlagUpdate {
        key: Some("bad key".into()),
        ..FlagUpdate::default()
    };
    assert!(matches!(
        s.update_flag(p, flag.id, &bad, None, None).await,
        Err(StoreError::Invalid { field: "key", .. })
    ));
    assert_eq!(s.get_flag(p, flag.id).await.unwrap().unwrap().version, 1);
}

pub async fn activity_log_records_every_change(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let mut new = NewFlag::new("beta", everyone());
    new.created_by = Some(Actor::User {
        id: UserId(7),
        email: "alice@example.com".into(),
    });
    let flag = s.create_flag(p, &new).await.unwrap();
    let filters = json!({"groups": [{"properties": [], "rollout_percentage": 10}]});
    let update = FlagUpdate {
        filters: Some(filters.clone()),
        ..FlagUpdate::default()
    };
    s.update_flag(p, flag.id, &update, Some(1), Some("bob"))
        .await
        .unwrap();
    s.delete_flag(p, flag.id, Some(2), Some("carol"))
        .await
        .unwrap();
    let other = s
        .create_flag(p, &NewFlag::new("other", everyone()))
        .await
        .unwrap();

    let log = s
        .flag_activity(p, Some(flag.id), Page::default())
        .await
        .unwrap();
    assert_eq!(log.total, 3);
    let actions: Vec<_> = log.items.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        vec![
            ActivityAction::Deleted,
            ActivityAction::Updated,
            ActivityAction::Created
        ],
        "newest first"
    );
    let actors: Vec<_> = log
        .items
        .iter()
        .map(|e| e.actor.as_ref().map(Actor::label))
        .collect();
    assert_eq!(
        actors,
        vec![
            Some("carol".into()),
            Some("bob".into()),
            Some("alice@example.com".into())
        ]
    );
    assert_eq!(
        log.items[2].actor, new.created_by,
        "the creating user is kept with the entry"
    );
    let key_actor = Actor::UserKey {
        user: UserId(7),
        email: "alice@example.com".into(),
        key: KeyRef {
            id: 3,
            label: "deploy bot".into(),
            mask: "phx_...wxyz".into(),
        },
    };
    let restored = s
        .update_flag_checked(
            p,
            flag.id,
            &FlagUpdate {
                deleted: Some(false),
                ..FlagUpdate::default()
            },
            Some(&key_actor),
            &vexil_store::accept_any,
        )
        .await
        .unwrap();
    assert_eq!(
        restored.last_modified_by.as_deref(),
        Some("alice@example.com")
    );
    let newest = s
        .flag_activity(p, Some(flag.id), Page::new(1, 0))
        .await
        .unwrap();
    assert_eq!(newest.items[0].actor.as_ref(), Some(&key_actor));
    let one = s.activity_entry(p, newest.items[0].id).await.unwrap();
    assert_eq!(one.as_ref(), newest.items.first());
    let other_project = db.project("C").await.project.id;
    assert_eq!(
        db.store
            .activity_entry(other_project, newest.items[0].id)
            .await
            .unwrap(),
        None,
        "an entry is found only in its own project"
    );
    let s = &*db.store;
    assert!(log
        .items
        .iter()
        .all(|e| e.flag_id == flag.id && e.flag_key == "beta"));

    let created = &log.items[2];
    assert_eq!(created.before, None);
    let after = created.after.as_ref().unwrap();
    assert_eq!(after["key"], "beta");
    assert_eq!(after["version"], 1);
    assert_eq!(after["filters"], everyone());

    let updated = &log.items[1];
    assert_eq!(updated.before.as_ref().unwrap()["filters"], everyone());
    assert_eq!(updated.before.as_ref().unwrap()["version"], 1);
    assert_eq!(updated.after.as_ref().unwrap()["filters"], filters);
    assert_eq!(updated.after.as_ref().unwrap()["version"], 2);

    let deleted = &log.items[0];
    assert_eq!(deleted.before.as_ref().unwrap()["deleted"], false);
    assert_eq!(deleted.after.as_ref().unwrap()["deleted"], true);

    let all = s.flag_activity(p, None, Page::new(2, 0)).await.unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(all.items.len(), 2);
    assert_eq!(all.items[1].flag_id, other.id, "the restore is newest");
    let rest = s.flag_activity(p, None, Page::new(10, 2)).await.unwrap();
    assert_eq!(rest.items.len(), 3);
    assert_eq!(rest.items[2].action, ActivityAction::Created);

    let elsewhere = db.project("B").await.project.id;
    let none = s
        .flag_activity(elsewhere, None, Page::default())
        .await
        .unwrap();
    assert_eq!(none.total, 0);
}

pub async fn list_pages_and_searches(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    for (key, name, active) in [
        ("alpha", "First", true),
        ("beta-web", "Beta for web", true),
        ("beta_api", "", false),
        ("gamma", "Contains BETA in name", true),
        ("pct", "100% off", true),
    ] {
        let mut f = NewFlag::new(key, everyone());
        f.name = name.into();
        f.active = active;
        s.create_flag(p, &f).await.unwrap();
    }

    let page = s
        .list_flags(
            p,
            &FlagQuery {
                page: Page::new(2, 0),
                ..FlagQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 5);
    let keys: Vec<_> = page.items.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, vec!["pct", "gamma"], "newest first");
    let page = s
        .list_flags(
            p,
            &FlagQuery {
                page: Page::new(2, 4),
                ..FlagQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].key, "alpha");

    let search = |text: &str, active: Option<bool>| FlagQuery {
        search: Some(text.into()),
        active,
        ..FlagQuery::default()
    };
    let found = s.list_flags(p, &search("Beta", None)).await.unwrap();
    let mut keys: Vec<_> = found.items.iter().map(|f| f.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, vec!["beta-web", "beta_api", "gamma"]);
    assert_eq!(found.total, 3);
    let found = s.list_flags(p, &search("beta", Some(false))).await.unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].key, "beta_api");
    // LIKE wildcards in the search text are literal.
    let found = s.list_flags(p, &search("%", None)).await.unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].key, "pct");
    let found = s.list_flags(p, &search("a_a", None)).await.unwrap();
    assert_eq!(found.total, 1, "only beta_api has a literal a_a");
    let found = s.list_flags(p, &search("nothing", None)).await.unwrap();
    assert_eq!(found.total, 0);
    assert!(found.items.is_empty());
}

pub async fn definitions_shape(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    s.ensure_group_type(p, "company").await.unwrap();

    let base = s
        .create_cohort(
            p,
            &NewCohort::dynamic(
                "Staff",
                json!({"properties": {"type": "AND", "values": [
                    {"key": "email", "type": "person", "operator": "icontains", "value": "@acme.com"}
                ]}}),
            ),
        )
        .await
        .unwrap();
    let outer = s
        .create_cohort(
            p,
            &NewCohort::dynamic(
                "Staff in DE",
                json!({"properties": {"type": "AND", "values": [
                    {"key": "id", "type": "cohort", "value": base.id},
                    {"key": "country", "type": "person", "value": "DE"}
                ]}}),
            ),
        )
        .await
        .unwrap();
    let unreferenced = s
        .create_cohort(
            p,
            &NewCohort::dynamic(
                "Unused",
                json!({"properties": {"type": "OR", "values": []}}),
            ),
        )
        .await
        .unwrap();
    let listed = s
        .create_cohort(p, &NewCohort::static_list("Beta testers"))
        .await
        .unwrap();

    let mut beta = NewFlag::new(
        "beta",
        json!({"groups": [{"properties": [
            {"key": "id", "type": "cohort", "value": outer.id},
            {"key": "id", "type": "cohort", "value": listed.id}
        ], "rollout_percentage": 100}]}),
    );
    beta.name = "Beta".into();
    beta.ensure_experience_continuity = true;
    beta.evaluation_tags = vec!["web".into()];
    let beta = s.create_flag(p, &beta).await.unwrap();
    let mut off = NewFlag::new("off", everyone());
    off.active = false;
    s.create_flag(p, &off).await.unwrap();
    let mut remote = NewFlag::new("remote", everyone());
    remote.is_remote_configuration = true;
    s.create_flag(p, &remote).await.unwrap();
    let mut sealed = NewFlag::new("sealed", everyone());
    sealed.is_remote_configuration = true;
    sealed.has_encrypted_payloads = true;
    s.create_flag(p, &sealed).await.unwrap();
    let gone = s
        .create_flag(p, &NewFlag::new("gone", everyone()))
        .await
        .unwrap();
    s.delete_flag(p, gone.id, None, None).await.unwrap();

    let defs = s.definitions(p).await.unwrap();
    let keys: Vec<_> = defs.flags.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["beta", "off", "remote"],
        "inactive and plain remote config kept; deleted and encrypted remote config left out"
    );
    let f = &defs.flags[0];
    assert_eq!(f.id, beta.id);
    assert_eq!(f.team_id, Some(p.0));
    assert_eq!(f.name.as_deref(), Some("Beta"));
    assert_eq!(f.version, 1);
    assert!(f.active && !f.deleted && f.ensure_experience_continuity && !f.has_experiment);
    assert_eq!(f.evaluation_runtime.as_deref(), Some("all"));
    assert_eq!(f.evaluation_tags, Some(vec!["web".to_string()]));
    assert!(!defs.flags[1].active);

    assert_eq!(defs.group_type_mapping.len(), 1);
    assert_eq!(defs.group_type_mapping["0"], "company");

    let mut cohort_ids: Vec<_> = defs.cohorts.keys().cloned().collect();
    cohort_ids.sort();
    let mut expected = vec![base.id.to_string(), outer.id.to_string()];
    expected.sort();
    assert_eq!(
        cohort_ids, expected,
        "referenced dynamic cohorts, transitively; no static"
    );
    assert!(!defs.cohorts.contains_key(&unreferenced.id.to_string()));
    assert_eq!(
        defs.cohorts[&base.id.to_string()],
        json!({"type": "AND", "values": [
            {"key": "email", "type": "person", "operator": "icontains", "value": "@acme.com"}
        ]})
    );

    // The JSON form round-trips and the engine evaluates it.
    let wire = serde_json::to_value(&defs).unwrap();
    assert!(wire["flags"].is_array() && wire["cohorts"].is_object());
    let back: vexil_engine::Definitions = serde_json::from_value(wire).unwrap();
    assert_eq!(back, defs);
    let compiled = CompiledProject::compile(&defs);
    let staff = props(json!({"email": "ada@acme.com", "country": "DE"}));
    let statics = [listed.id].into_iter().collect();
    let mut ctx = Context::new("ada", chrono::Utc::now());
    ctx.person_properties = Some(&staff);
    ctx.static_cohorts = Some(&statics);
    let result = evaluate(&compiled, &ctx);
    assert_eq!(result.get("beta").unwrap().value, FlagValue::True);
}

pub async fn checked_writes_see_before_and_after(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let seen = std::sync::Mutex::new(Vec::new());
    let check = |before: Option<&FeatureFlag>, after: &FeatureFlag| {
        seen.lock()
            .unwrap()
            .push((before.map(|b| (b.id, b.version)), after.id, after.version));
        Ok(())
    };
    let flag = db
        .store
        .create_flag_checked(p, &NewFlag::new("beta", everyone()), &check)
        .await
        .unwrap();
    let update = FlagUpdate {
        name: Some("renamed".into()),
        ..FlagUpdate::default()
    };
    let after = db
        .store
        .update_flag_checked(
            p,
            flag.id,
            &update,
            Some(&Actor::Named {
                label: "bob".into(),
            }),
            &check,
        )
        .await
        .unwrap();
    assert_eq!(after.version, 2);
    assert_eq!(after.name, "renamed");
    assert_eq!(after.last_modified_by.as_deref(), Some("bob"));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(None, 0, 1), (Some((flag.id, 1)), flag.id, 2)],
        "create sees the new row before its id is assigned; update sees stored and updated"
    );
    let stored = db.store.get_flag(p, flag.id).await.unwrap().unwrap();
    assert_eq!(stored, after, "the returned row is the stored one");
}

pub async fn rejected_writes_change_nothing(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    #[derive(Debug)]
    struct No;
    impl std::fmt::Display for No {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("no")
        }
    }
    impl std::error::Error for No {}
    let refuse = |_: Option<&FeatureFlag>, _: &FeatureFlag| Err(StoreError::Rejected(Box::new(No)));
    let refused = db
        .store
        .create_flag_checked(p, &NewFlag::new("beta", everyone()), &refuse)
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Rejected(e)) if e.is::<No>()),
        "{refused:?}"
    );
    assert!(db.store.get_flag_by_key(p, "beta").await.unwrap().is_none());

    let flag = db
        .store
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let update = FlagUpdate {
        active: Some(false),
        ..FlagUpdate::default()
    };
    let refused = db
        .store
        .update_flag_checked(p, flag.id, &update, None, &refuse)
        .await;
    assert!(matches!(refused, Err(StoreError::Rejected(_))));
    assert_eq!(db.store.get_flag(p, flag.id).await.unwrap().unwrap(), flag);
    let log = db
        .store
        .flag_activity(p, Some(flag.id), Page::default())
        .await
        .unwrap();
    assert_eq!(log.total, 1, "only the creation is logged");
}

/// The list's order as [`FlagOrder`] documents it, computed here from the flags themselves.
fn reference_order(flags: &mut [FeatureFlag], order: FlagOrder) {
    flags.sort_by(|a, b| {
        let ord = match order.field {
            FlagOrderField::Key => a.key.cmp(&b.key),
            FlagOrderField::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            FlagOrderField::CreatedAt => a.created_at.cmp(&b.created_at),
            FlagOrderField::UpdatedAt => a.updated_at.cmp(&b.updated_at),
            FlagOrderField::Active => a.active.cmp(&b.active),
            FlagOrderField::Id => a.id.cmp(&b.id),
        };
        let ord = if order.descending { ord.reverse() } else { ord };
        ord.then_with(|| b.id.cmp(&a.id))
    });
}

pub async fn list_orders_pages_and_ids(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    // Keys whose byte order differs from a natural-language collation (case, `-`, `_`), names
    // equal but for case, non-ASCII names, and ties on `active`.
    let rows = [
        ("b-two", "beta", true),
        ("B_one", "Beta", false),
        ("a", "Éclair", true),
        ("Zed", "eclair", true),
        ("b_two", "zulu", false),
        ("_x", "Zulu", true),
        ("9", "", true),
        ("bTwo", "ärger", false),
    ];
    for (key, name, active) in rows {
        let mut f = NewFlag::new(key, everyone());
        f.name = name.into();
        f.active = active;
        s.create_flag(p, &f).await.unwrap();
    }
    // Updated in another order than created; one deleted flag is never listed.
    let all = s.list_flags(p, &FlagQuery::default()).await.unwrap().items;
    for f in all.iter().step_by(3) {
        let rename = FlagUpdate {
            name: Some(format!("{} again", f.name)),
            ..FlagUpdate::default()
        };
        s.update_flag(p, f.id, &rename, None, None).await.unwrap();
    }
    let gone = s
        .create_flag(p, &NewFlag::new("gone", everyone()))
        .await
        .unwrap();
    s.update_flag(p, gone.id, &FlagUpdate::delete(), None, None)
        .await
        .unwrap();
    let live = s.list_flags(p, &FlagQuery::default()).await.unwrap().items;
    assert_eq!(live.len(), rows.len());

    let keys = |flags: &[FeatureFlag]| flags.iter().map(|f| f.key.clone()).collect::<Vec<_>>();
    let fields = [
        FlagOrderField::Key,
        FlagOrderField::Name,
        FlagOrderField::CreatedAt,
        FlagOrderField::UpdatedAt,
        FlagOrderField::Active,
        FlagOrderField::Id,
    ];
    for field in fields {
        for descending in [false, true] {
            let order = FlagOrder::new(field, descending);
            let mut expected = live.clone();
            reference_order(&mut expected, order);
            let query = |page: Page| FlagQuery {
                order,
                page,
                ..FlagQuery::default()
            };
            let whole = s.list_flags(p, &query(Page::default())).await.unwrap();
            assert_eq!(keys(&whole.items), keys(&expected), "{order:?}");
            assert_eq!(whole.total, rows.len() as u64);
            // Pages of 3 put together give the same list; past the end, nothing (same total).
            let mut paged = Vec::new();
            for offset in (0..rows.len() as u32).step_by(3) {
                let page = s.list_flags(p, &query(Page::new(3, offset))).await.unwrap();
                assert_eq!(page.total, rows.len() as u64);
                paged.extend(page.items);
            }
            assert_eq!(keys(&paged), keys(&expected), "{order:?} paged");
            let past = s.list_flags(p, &query(Page::new(3, 100))).await.unwrap();
            assert!(past.items.is_empty());
            assert_eq!(past.total, rows.len() as u64);
        }
    }

    // `ids` restricts the list before the order, the page and the count, with the other filters.
    let some: Vec<i64> = live.iter().take(5).map(|f| f.id).collect();
    let by_key = FlagOrder::new(FlagOrderField::Key, false);
    let mut expected: Vec<FeatureFlag> = live.iter().take(5).cloned().collect();
    reference_order(&mut expected, by_key);
    let query = FlagQuery {
        ids: Some(some.clone()),
        order: by_key,
        page: Page::new(2, 1),
        ..FlagQuery::default()
    };
    let found = s.list_flags(p, &query).await.unwrap();
    assert_eq!(found.total, 5);
    assert_eq!(keys(&found.items), keys(&expected[1..3]));
    let active_only = FlagQuery {
        active: Some(true),
        page: Page::default(),
        ..query.clone()
    };
    let found = s.list_flags(p, &active_only).await.unwrap();
    let active: Vec<_> = expected.iter().filter(|f| f.active).cloned().collect();
    assert_eq!(keys(&found.items), keys(&active));
    let none = FlagQuery {
        ids: Some(Vec::new()),
        ..FlagQuery::default()
    };
    let found = s.list_flags(p, &none).await.unwrap();
    assert!(found.items.is_empty());
    assert_eq!(found.total, 0);
    let deleted_id = FlagQuery {
        ids: Some(vec![gone.id]),
        ..FlagQuery::default()
    };
    assert_eq!(s.list_flags(p, &deleted_id).await.unwrap().total, 0);
    let other = db.project("B").await.project.id;
    let elsewhere = FlagQuery {
        ids: Some(some),
        ..FlagQuery::default()
    };
    assert_eq!(s.list_flags(other, &elsewhere).await.unwrap().total, 0);
}

pub async fn flag_ages_are_the_live_flags(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let a = s
        .create_flag(p, &NewFlag::new("a", everyone()))
        .await
        .unwrap();
    let b = s
        .create_flag(p, &NewFlag::new("b", everyone()))
        .await
        .unwrap();
    let c = s
        .create_flag(p, &NewFlag::new("c", everyone()))
        .await
        .unwrap();
    s.update_flag(p, b.id, &FlagUpdate::delete(), None, None)
        .await
        .unwrap();
    let other = db.project("B").await.project.id;
    s.create_flag(other, &NewFlag::new("a", everyone()))
        .await
        .unwrap();
    let ages = s.flag_ages(p).await.unwrap();
    let expected: Vec<FlagAge> = [&a, &c]
        .iter()
        .map(|f| FlagAge {
            id: f.id,
            key: f.key.clone(),
            created_at: f.created_at,
        })
        .collect();
    assert_eq!(ages, expected);
    let empty = db.project("C").await.project.id;
    assert!(db.store.flag_ages(empty).await.unwrap().is_empty());
}

pub async fn activity_pages_by_keyset(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let a = s
        .create_flag(p, &NewFlag::new("a", everyone()))
        .await
        .unwrap();
    let b = s
        .create_flag(p, &NewFlag::new("b", everyone()))
        .await
        .unwrap();
    for i in 0..4 {
        let rename = |flag: &str| FlagUpdate {
            name: Some(format!("{flag} {i}")),
            ..FlagUpdate::default()
        };
        s.update_flag(p, a.id, &rename("a"), None, None)
            .await
            .unwrap();
        if i % 2 == 0 {
            s.update_flag(p, b.id, &rename("b"), None, None)
                .await
                .unwrap();
        }
    }
    let other = db.project("B").await.project.id;
    s.create_flag(other, &NewFlag::new("a", everyone()))
        .await
        .unwrap();
    let ids = |items: &[vexil_store::ActivityEntry]| items.iter().map(|e| e.id).collect::<Vec<_>>();

    for flag in [None, Some(a.id)] {
        // The offset pages' whole log, newest first, is what the keyset walks give.
        let log = s.flag_activity(p, flag, Page::new(100, 0)).await.unwrap();
        let all = ids(&log.items);
        assert!(all.len() >= 5);
        let limit = 2u32;

        // Newest to oldest by `Before`.
        let mut walked = Vec::new();
        let mut cursor = ActivityCursor::Newest;
        let mut pages = 0;
        loop {
            let page = s.flag_activity_page(p, flag, cursor, limit).await.unwrap();
            assert_eq!(page.total, all.len() as u64);
            assert!(page.items.len() <= limit as usize);
            assert_eq!(page.newer, pages > 0, "{flag:?} page {pages}");
            walked.extend(ids(&page.items));
            assert_eq!(
                page.older,
                walked.len() < all.len(),
                "{flag:?} page {pages}"
            );
            pages += 1;
            let Some(last) = page.items.last() else { break };
            if !page.older {
                break;
            }
            cursor = ActivityCursor::Before(last.id);
        }
        assert_eq!(walked, all, "{flag:?} newest to oldest");

        // Oldest to newest by `After`, each page still newest first.
        let mut walked = Vec::new();
        let mut cursor = ActivityCursor::After(0);
        loop {
            let page = s.flag_activity_page(p, flag, cursor, limit).await.unwrap();
            let mut page_ids = ids(&page.items);
            assert!(page_ids.windows(2).all(|w| w[0] > w[1]), "newest first");
            assert_eq!(page.older, !walked.is_empty(), "{flag:?}");
            page_ids.extend(walked);
            walked = page_ids;
            assert_eq!(page.newer, walked.len() < all.len(), "{flag:?}");
            let Some(first) = page.items.first() else {
                break;
            };
            if !page.newer {
                break;
            }
            cursor = ActivityCursor::After(first.id);
        }
        assert_eq!(walked, all, "{flag:?} oldest to newest");

        // Past either end: nothing, and the other side is known to be there.
        let oldest = *all.last().unwrap();
        let past = s
            .flag_activity_page(p, flag, ActivityCursor::Before(oldest), limit)
            .await
            .unwrap();
        assert!(past.items.is_empty() && past.newer && !past.older);
        let newest = all[0];
        let past = s
            .flag_activity_page(p, flag, ActivityCursor::After(newest), limit)
            .await
            .unwrap();
        assert!(past.items.is_empty() && past.older && !past.newer);
        // A cursor between pages: the page right after it.
        let mid = s
            .flag_activity_page(p, flag, ActivityCursor::Before(all[1]), limit)
            .await
            .unwrap();
        assert_eq!(ids(&mid.items), all[2..4].to_vec());
        assert!(mid.newer && mid.older == (all.len() > 4));
    }
    let none = s
        .flag_activity_page(other, Some(a.id), ActivityCursor::Newest, 10)
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.total == 0 && !none.newer && !none.older);
}
