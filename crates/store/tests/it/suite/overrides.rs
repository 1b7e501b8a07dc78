//! Experience-continuity hash-key overrides.

use vexil_store::PersonUpdate;

use super::TestDb;

pub async fn insert_is_idempotent(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    s.identify(p, "user", "anon").await.unwrap();
    s.apply_person_update(p, "other", &PersonUpdate::default())
        .await
        .unwrap();

    // One person behind both ids: one row per flag key.
    let n = s
        .insert_hash_key_overrides(p, &["user", "anon", "nobody"], &["exp-a", "exp-b"], "anon")
        .await
        .unwrap();
    assert_eq!(n, 2);
    let again = s
        .insert_hash_key_overrides(p, &["user"], &["exp-a", "exp-b"], "different")
        .await
        .unwrap();
    assert_eq!(again, 0, "existing overrides are kept");
    let got = s.get_hash_key_overrides(p, &["anon"]).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.values().all(|h| h == "anon"));

    // No person, no override (PostHog's known limitation).
    assert_eq!(
        s.insert_hash_key_overrides(p, &["nobody"], &["exp-a"], "x")
            .await
            .unwrap(),
        0
    );
    assert!(s
        .get_hash_key_overrides(p, &["nobody"])
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .get_hash_key_overrides(p, &["other"])
        .await
        .unwrap()
        .is_empty());
    assert!(s.get_hash_key_overrides(p, &[]).await.unwrap().is_empty());
    assert_eq!(
        s.insert_hash_key_overrides(p, &["user"], &[], "x")
            .await
            .unwrap(),
        0
    );

    let q = db.project("B").await.project.id;
    assert!(s
        .get_hash_key_overrides(q, &["user"])
        .await
        .unwrap()
        .is_empty());
}

pub async fn first_distinct_id_wins(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    for id in ["ada", "bob"] {
        s.apply_person_update(p, id, &PersonUpdate::default())
            .await
            .unwrap();
    }
    s.insert_hash_key_overrides(p, &["ada"], &["exp", "only-ada"], "hash-ada")
        .await
        .unwrap();
    s.insert_hash_key_overrides(p, &["bob"], &["exp", "only-bob"], "hash-bob")
        .await
        .unwrap();

    let got = s.get_hash_key_overrides(p, &["ada", "bob"]).await.unwrap();
    assert_eq!(got["exp"], "hash-ada");
    assert_eq!(got["only-ada"], "hash-ada");
    assert_eq!(got["only-bob"], "hash-bob");
    let got = s.get_hash_key_overrides(p, &["bob", "ada"]).await.unwrap();
    assert_eq!(got["exp"], "hash-bob");
    assert_eq!(got.len(), 3);
}
