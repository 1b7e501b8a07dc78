//! What was committed survives closing and reopening the database.

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;
use vexil_store::{FlagUpdate, KeyKind, NewCohort, NewEvent, NewFlag, Page, PersonUpdate};

use super::{everyone, props, TestDb};

pub async fn data_survives_reopen(db: &mut TestDb) {
    let created = db.project("A").await;
    let p = created.project.id;
    let s = db.store.clone();
    s.ensure_group_type(p, "company").await.unwrap();
    let flag = s
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    s.update_flag(
        p,
        flag.id,
        &FlagUpdate {
            name: Some("Beta".into()),
            ..FlagUpdate::default()
        },
        Some(1),
        None,
    )
    .await
    .unwrap();
    let cohort = s
        .create_cohort(p, &NewCohort::static_list("List"))
        .await
        .unwrap();
    s.add_cohort_members(p, cohort.id, &["u1".to_string()])
        .await
        .unwrap();
    let person = s
        .apply_person_update(
            p,
            "u1",
            &PersonUpdate {
                set: props(json!({"plan": "pro"})),
                ..PersonUpdate::default()
            },
        )
        .await
        .unwrap();
    let e = NewEvent {
        uuid: Uuid::new_v4(),
        event: "signup".into(),
        distinct_id: "u1".into(),
        properties: props(json!({})),
        timestamp: Utc::now(),
    };
    s.insert_events(p, std::slice::from_ref(&e)).await.unwrap();
    drop(s);

    db.reopen().await;
    let s = &*db.store;
    assert_eq!(
        s.project_by_token(&created.project.api_token)
            .await
            .unwrap(),
        Some(created.project.clone())
    );
    assert!(s
        .verify_key(p, KeyKind::Secret, &created.secret_key)
        .await
        .unwrap());
    let stored = s.get_flag(p, flag.id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.name.as_str()), (2, "Beta"));
    assert_eq!(
        s.flag_activity(p, Some(flag.id), Page::default())
            .await
            .unwrap()
            .total,
        2
    );
    assert_eq!(s.group_types(p).await.unwrap().len(), 1);
    assert_eq!(s.count_cohort_members(p, cohort.id).await.unwrap(), 1);
    assert_eq!(s.get_person(p, "u1").await.unwrap(), Some(person));
    assert_eq!(
        s.insert_events(p, &[e]).await.unwrap(),
        0,
        "the event is still there"
    );

    // And the reopened store writes as before.
    s.create_flag(p, &NewFlag::new("after-reopen", everyone()))
        .await
        .unwrap();
}
