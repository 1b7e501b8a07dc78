//! The batched evaluation-inputs read.

use serde_json::json;
use vexil_store::{NewCohort, PersonUpdate};

use super::{props, TestDb};

pub async fn inputs_for_known_person(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    s.apply_person_update(
        p,
        "anon",
        &PersonUpdate {
            set: props(json!({"email": "ada@acme.com"})),
            ..PersonUpdate::default()
        },
    )
    .await
    .unwrap();
    s.identify(p, "user", "anon").await.unwrap();
    s.apply_person_update(p, "other", &PersonUpdate::default())
        .await
        .unwrap();
    let listed = s
        .create_cohort(p, &NewCohort::static_list("List"))
        .await
        .unwrap();
    s.add_cohort_members(p, listed.id, &["anon".to_string()])
        .await
        .unwrap();
    s.upsert_group(p, 0, "acme", &props(json!({"plan": "pro"})))
        .await
        .unwrap();
    s.upsert_group(p, 1, "web", &props(json!({"env": "prod"})))
        .await
        .unwrap();
    s.insert_hash_key_overrides(p, &["user"], &["exp"], "anon")
        .await
        .unwrap();
    s.insert_hash_key_overrides(p, &["other"], &["exp", "exp2"], "other")
        .await
        .unwrap();

    let inputs = s
        .evaluation_inputs(
            p,
            "user",
            &[(0, "acme"), (1, "missing"), (2, "acme")],
            true,
            Some("other"),
        )
        .await
        .unwrap();
    assert_eq!(
        inputs.person_properties,
        Some(props(json!({"email": "ada@acme.com"})))
    );
    assert_eq!(inputs.static_cohorts, [listed.id].into_iter().collect());
    assert_eq!(inputs.group_properties.len(), 1);
    assert_eq!(inputs.group_properties[&0], props(json!({"plan": "pro"})));
    assert_eq!(inputs.hash_key_overrides.len(), 2);
    assert_eq!(
        inputs.hash_key_overrides["exp"], "anon",
        "the request's own id wins"
    );
    assert_eq!(inputs.hash_key_overrides["exp2"], "other");

    let inputs = s
        .evaluation_inputs(p, "user", &[(1, "web")], false, Some("other"))
        .await
        .unwrap();
    assert!(inputs.hash_key_overrides.is_empty(), "not asked for");
    assert_eq!(inputs.group_properties[&1], props(json!({"env": "prod"})));
}

pub async fn inputs_for_unknown_person(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let listed = s
        .create_cohort(p, &NewCohort::static_list("List"))
        .await
        .unwrap();
    s.add_cohort_members(p, listed.id, &["new-user".to_string()])
        .await
        .unwrap();
    let inputs = s
        .evaluation_inputs(p, "new-user", &[], true, None)
        .await
        .unwrap();
    assert_eq!(inputs.person_properties, None);
    assert_eq!(inputs.static_cohorts, [listed.id].into_iter().collect());
    assert!(inputs.group_properties.is_empty());
    assert!(inputs.hash_key_overrides.is_empty());
    let nothing = s
        .evaluation_inputs(p, "stranger", &[(0, "acme")], true, Some("anon"))
        .await
        .unwrap();
    assert_eq!(nothing, Default::default());
}
