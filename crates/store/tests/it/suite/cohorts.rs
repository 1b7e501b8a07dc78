//! Cohorts and static membership.

use serde_json::json;
use vexil_store::{CohortUpdate, NewCohort, Page, PersonUpdate, StoreError};

use super::TestDb;

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub async fn cohort_crud_with_versions(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    let filters = json!({"properties": {"type": "OR", "values": [
        {"type": "AND", "values": [{"key": "plan", "type": "person", "value": "pro"}]}
    ]}});
    let mut new = NewCohort::dynamic("Pro users", filters.clone());
    new.description = "Paying".into();
    new.created_by = Some("alice".into());
    let c = s.create_cohort(p, &new).await.unwrap();
    assert!(c.id > 0);
    assert_eq!(
        (c.name.as_str(), c.description.as_str()),
        ("Pro users", "Paying")
    );
    assert_eq!(c.filters, filters);
    assert!(!c.is_static && !c.deleted);
    assert_eq!(c.version, 1);
    assert_eq!(c.created_by.as_deref(), Some("alice"));
    assert_eq!(s.get_cohort(p, c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(
        s.get_cohort(q, c.id).await.unwrap(),
        None,
        "scoped by project"
    );

    let renamed = s
        .update_cohort(
            p,
            c.id,
            &CohortUpdate {
                name: Some("Pro".into()),
                ..CohortUpdate::default()
            },
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(renamed.version, 2);
    assert_eq!(renamed.name, "Pro");
    assert_eq!(renamed.filters, filters);
    let err = s
        .update_cohort(p, c.id, &CohortUpdate::default(), Some(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { current_version: 2 }),
        "{err:?}"
    );
    assert!(matches!(
        s.update_cohort(q, c.id, &CohortUpdate::default(), None)
            .await,
        Err(StoreError::NotFound { entity: "cohort" })
    ));
    assert!(matches!(
        s.update_cohort(
            p,
            c.id,
            &CohortUpdate {
                filters: Some(json!([1])),
                ..CohortUpdate::default()
            },
            None
        )
        .await,
        Err(StoreError::Invalid {
            field: "filters",
            ..
        })
    ));
    assert!(matches!(
        s.create_cohort(p, &NewCohort::dynamic("", json!({}))).await,
        Err(StoreError::Invalid { field: "name", .. })
    ));

    let other = s
        .create_cohort(p, &NewCohort::static_list("List"))
        .await
        .unwrap();
    let listed = s.list_cohorts(p, Page::default()).await.unwrap();
    assert_eq!(listed.total, 2);
    assert_eq!(listed.items[0].id, other.id, "newest first");

    let deleted = s
        .update_cohort(
            p,
            c.id,
            &CohortUpdate {
                deleted: Some(true),
                ..CohortUpdate::default()
            },
            Some(2),
        )
        .await
        .unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.version, 3);
    let listed = s.list_cohorts(p, Page::default()).await.unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.items[0].id, other.id);
    assert!(s.get_cohort(p, c.id).await.unwrap().unwrap().deleted);
}

pub async fn static_members_add_remove_count(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    let c = s
        .create_cohort(p, &NewCohort::static_list("List"))
        .await
        .unwrap();
    assert!(c.is_static);

    assert_eq!(
        s.add_cohort_members(p, c.id, &ids(&["a", "b", "a"]))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.add_cohort_members(p, c.id, &ids(&["b", "c"]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.count_cohort_members(p, c.id).await.unwrap(), 3);
    let page = s.cohort_members(p, c.id, Page::new(2, 0)).await.unwrap();
    assert_eq!(page.items, ids(&["a", "b"]));
    assert_eq!(page.total, 3);
    let page = s.cohort_members(p, c.id, Page::new(2, 2)).await.unwrap();
    assert_eq!(page.items, ids(&["c"]));

    assert_eq!(
        s.remove_cohort_members(p, c.id, &ids(&["b", "zzz"]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.count_cohort_members(p, c.id).await.unwrap(), 2);
    assert_eq!(s.add_cohort_members(p, c.id, &[]).await.unwrap(), 0);

    let dynamic = s
        .create_cohort(
            p,
            &NewCohort::dynamic("Dyn", json!({"properties": {"type": "AND", "values": []}})),
        )
        .await
        .unwrap();
    assert!(matches!(
        s.add_cohort_members(p, dynamic.id, &ids(&["a"])).await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.add_cohort_members(p, c.id + 1000, &ids(&["a"])).await,
        Err(StoreError::NotFound { entity: "cohort" })
    ));
    assert!(matches!(
        s.add_cohort_members(q, c.id, &ids(&["a"])).await,
        Err(StoreError::NotFound { entity: "cohort" })
    ));
    assert!(matches!(
        s.cohort_members(q, c.id, Page::default()).await,
        Err(StoreError::NotFound { entity: "cohort" })
    ));
}

pub async fn static_membership_through_any_distinct_id(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    let by_anon = s
        .create_cohort(p, &NewCohort::static_list("By anon id"))
        .await
        .unwrap();
    let by_user = s
        .create_cohort(p, &NewCohort::static_list("By user id"))
        .await
        .unwrap();
    let gone = s
        .create_cohort(p, &NewCohort::static_list("Deleted"))
        .await
        .unwrap();
    let elsewhere = s
        .create_cohort(q, &NewCohort::static_list("Other project"))
        .await
        .unwrap();
    s.add_cohort_members(p, by_anon.id, &ids(&["anon-1"]))
        .await
        .unwrap();
    s.add_cohort_members(p, by_user.id, &ids(&["user-1"]))
        .await
        .unwrap();
    s.add_cohort_members(p, gone.id, &ids(&["user-1"]))
        .await
        .unwrap();
    s.add_cohort_members(q, elsewhere.id, &ids(&["user-1"]))
        .await
        .unwrap();
    s.update_cohort(
        p,
        gone.id,
        &CohortUpdate {
            deleted: Some(true),
            ..CohortUpdate::default()
        },
        None,
    )
    .await
    .unwrap();

    // Before any person exists, a listed distinct id matches on its own.
    let anon = s.static_cohorts_for(p, "anon-1").await.unwrap();
    assert_eq!(anon, [by_anon.id].into_iter().collect());
    assert!(s
        .static_cohorts_for(p, "stranger")
        .await
        .unwrap()
        .is_empty());

    // Once both ids are one person, either finds both cohorts.
    s.apply_person_update(p, "anon-1", &PersonUpdate::default())
        .await
        .unwrap();
    s.identify(p, "user-1", "anon-1").await.unwrap();
    let expected = [by_anon.id, by_user.id].into_iter().collect();
    assert_eq!(s.static_cohorts_for(p, "user-1").await.unwrap(), expected);
    assert_eq!(s.static_cohorts_for(p, "anon-1").await.unwrap(), expected);
    assert_eq!(
        s.static_cohorts_for(q, "user-1").await.unwrap(),
        [elsewhere.id].into_iter().collect()
    );
}
