//! Persons: `$set` / `$set_once` / `$unset`, identify and alias merges, deletion.

use serde_json::json;
use vexil_store::{PersonUpdate, ProjectId, StoreError};

use super::{props, TestDb};

fn set(v: serde_json::Value) -> PersonUpdate {
    PersonUpdate {
        set: props(v),
        ..PersonUpdate::default()
    }
}

pub async fn set_set_once_unset(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    assert_eq!(s.get_person(p, "u1").await.unwrap(), None);

    let created = s
        .apply_person_update(
            p,
            "u1",
            &PersonUpdate {
                set: props(json!({"email": "a@x.io", "plan": "free"})),
                set_once: props(json!({"first_seen": "mon"})),
                unset: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(created.distinct_ids, vec!["u1".to_string()]);
    assert!(!created.is_identified);
    assert_eq!(
        created.properties,
        props(json!({"email": "a@x.io", "plan": "free", "first_seen": "mon"}))
    );

    let updated = s
        .apply_person_update(
            p,
            "u1",
            &PersonUpdate {
                set: props(json!({"plan": "pro"})),
                set_once: props(json!({"first_seen": "tue", "referrer": "ad"})),
                unset: vec!["email".into(), "never-set".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.uuid, created.uuid);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(
        updated.properties,
        props(json!({"plan": "pro", "first_seen": "mon", "referrer": "ad"}))
    );
    assert_eq!(s.get_person(p, "u1").await.unwrap(), Some(updated));

    // Persons are per project.
    let q = db.project("B").await.project.id;
    assert_eq!(s.get_person(q, "u1").await.unwrap(), None);
    assert!(matches!(
        s.apply_person_update(ProjectId(999_999), "u1", &PersonUpdate::default())
            .await,
        Err(StoreError::NotFound { entity: "project" })
    ));
}

pub async fn identify_attaches_when_one_side_exists(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;

    // Only the anonymous id has a person: the identified id joins it.
    let anon = s
        .apply_person_update(p, "anon-1", &set(json!({"ref": "ad"})))
        .await
        .unwrap();
    let person = s.identify(p, "user-1", "anon-1").await.unwrap();
    assert_eq!(person.uuid, anon.uuid);
    assert!(person.is_identified);
    assert_eq!(
        person.distinct_ids,
        vec!["anon-1".to_string(), "user-1".to_string()]
    );
    assert_eq!(person.properties, props(json!({"ref": "ad"})));

    // Only the identified id has a person: the anonymous id joins it.
    let user = s
        .apply_person_update(p, "user-2", &set(json!({"plan": "pro"})))
        .await
        .unwrap();
    let person = s.identify(p, "user-2", "anon-2").await.unwrap();
    assert_eq!(person.uuid, user.uuid);
    assert_eq!(
        person.distinct_ids,
        vec!["user-2".to_string(), "anon-2".to_string()]
    );
    assert_eq!(
        s.get_person(p, "anon-2").await.unwrap().map(|x| x.uuid),
        Some(user.uuid)
    );

    // Neither exists: one person with both ids.
    let person = s.identify(p, "user-3", "anon-3").await.unwrap();
    assert!(person.is_identified);
    assert_eq!(
        person.distinct_ids,
        vec!["user-3".to_string(), "anon-3".to_string()]
    );

    // Repeating is harmless.
    let again = s.identify(p, "user-3", "anon-3").await.unwrap();
    assert_eq!(again, person);
}

pub async fn identify_merges_two_persons(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let anon = s
        .apply_person_update(p, "anon", &set(json!({"plan": "free", "ref": "ad"})))
        .await
        .unwrap();
    let user = s
        .apply_person_update(p, "user", &set(json!({"plan": "pro", "name": "Ada"})))
        .await
        .unwrap();
    s.insert_hash_key_overrides(p, &["anon"], &["exp"], "anon")
        .await
        .unwrap();

    let merged = s.identify(p, "user", "anon").await.unwrap();
    assert_eq!(merged.uuid, user.uuid, "the identified person is kept");
    assert!(merged.is_identified);
    assert_eq!(
        merged.properties,
        props(json!({"plan": "pro", "name": "Ada", "ref": "ad"})),
        "the kept person's values win; missing ones are taken over"
    );
    let mut ids = merged.distinct_ids.clone();
    ids.sort();
    assert_eq!(ids, vec!["anon", "user"]);
    assert_eq!(merged.created_at, user.created_at.min(anon.created_at));
    for id in ["anon", "user"] {
        assert_eq!(
            s.get_person(p, id).await.unwrap().map(|x| x.uuid),
            Some(user.uuid),
            "{id}"
        );
    }
    // The merged-away person's continuity hash keys moved along.
    let overrides = s.get_hash_key_overrides(p, &["user"]).await.unwrap();
    assert_eq!(overrides.get("exp").map(String::as_str), Some("anon"));
}

pub async fn identify_refuses_identified_and_placeholder_ids(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    // Two identified users must never fuse.
    let ada = s.identify(p, "ada", "ada-device").await.unwrap();
    let bob = s.identify(p, "bob", "bob-device").await.unwrap();
    let kept = s.identify(p, "ada", "bob").await.unwrap();
    assert_eq!(kept.uuid, ada.uuid);
    assert!(!kept.distinct_ids.contains(&"bob".to_string()));
    assert_eq!(
        s.get_person(p, "bob").await.unwrap().map(|x| x.uuid),
        Some(bob.uuid)
    );

    // Placeholder ids are never merged on.
    let x = s
        .apply_person_update(p, "x", &set(json!({"a": 1})))
        .await
        .unwrap();
    s.apply_person_update(p, "anonymous", &set(json!({"b": 2})))
        .await
        .unwrap();
    let after = s.identify(p, "x", "anonymous").await.unwrap();
    assert_eq!(after.uuid, x.uuid);
    assert_eq!(after.distinct_ids, vec!["x".to_string()]);
    assert_eq!(after.properties, props(json!({"a": 1})));
    let after = s.identify(p, "y", "null").await.unwrap();
    assert_eq!(after.distinct_ids, vec!["y".to_string()]);
    assert_eq!(s.get_person(p, "null").await.unwrap(), None);
}

pub async fn alias_merges_like_identify(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let main = s
        .apply_person_update(p, "main", &set(json!({"k": "main"})))
        .await
        .unwrap();
    s.apply_person_update(p, "alt", &set(json!({"k": "alt", "extra": true})))
        .await
        .unwrap();
    let merged = s.alias(p, "main", "alt").await.unwrap();
    assert_eq!(merged.uuid, main.uuid);
    assert_eq!(
        merged.properties,
        props(json!({"k": "main", "extra": true}))
    );
    assert_eq!(merged.distinct_ids.len(), 2);
}

pub async fn delete_person_removes_everything(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    let person = s.identify(p, "user", "anon").await.unwrap();
    s.insert_hash_key_overrides(p, &["user"], &["exp"], "anon")
        .await
        .unwrap();
    assert!(
        !s.delete_person(q, person.uuid).await.unwrap(),
        "other project"
    );
    assert!(s.delete_person(p, person.uuid).await.unwrap());
    assert!(!s.delete_person(p, person.uuid).await.unwrap());
    assert_eq!(s.get_person(p, "user").await.unwrap(), None);
    assert_eq!(s.get_person(p, "anon").await.unwrap(), None);
    assert!(s
        .get_hash_key_overrides(p, &["user"])
        .await
        .unwrap()
        .is_empty());
    // The distinct ids are free for a new person.
    let fresh = s
        .apply_person_update(p, "user", &PersonUpdate::default())
        .await
        .unwrap();
    assert_ne!(fresh.uuid, person.uuid);
}

/// The first distinct id of each person `find_persons` finds (at most 10).
async fn found(s: &dyn vexil_store::Store, p: ProjectId, key: &str, value: &str) -> Vec<String> {
    s.find_persons(p, key, value, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.distinct_ids[0].clone())
        .collect()
}

pub async fn find_by_property_value(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    let people = [
        (
            "u1",
            json!({"plan": "pro", "seats": 12, "beta": true, "tags": ["a"]}),
        ),
        ("u2", json!({"plan": "free", "seats": 12.5, "beta": false})),
        ("u3", json!({"plan": "pro", "email": "c@x.io"})),
    ];
    for (id, properties) in people {
        s.apply_person_update(p, id, &set(properties))
            .await
            .unwrap();
    }
    s.identify(p, "u3", "u3-anon").await.unwrap();
    // Newest first, one entry per person (with every distinct id).
    assert_eq!(found(s, p, "plan", "pro").await, ["u3", "u1"]);
    let pro = s.find_persons(p, "plan", "pro", 1).await.unwrap();
    assert_eq!(pro.len(), 1);
    assert_eq!(pro[0].distinct_ids, ["u3", "u3-anon"]);
    // Numbers and booleans read as their JSON text; no partial matches.
    assert_eq!(found(s, p, "seats", "12").await, ["u1"]);
    assert_eq!(found(s, p, "seats", "12.5").await, ["u2"]);
    assert_eq!(found(s, p, "beta", "true").await, ["u1"]);
    assert_eq!(found(s, p, "beta", "false").await, ["u2"]);
    assert!(found(s, p, "plan", "pr").await.is_empty());
    assert!(found(s, p, "missing", "pro").await.is_empty());
    // Per project.
    assert!(found(s, q, "plan", "pro").await.is_empty());
}

pub async fn property_keys_of_persons_and_groups(db: &mut TestDb) {
    use vexil_store::ValueKind;
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    s.apply_person_update(
        p,
        "u1",
        &set(json!({"plan": "pro", "seats": 3, "beta": true})),
    )
    .await
    .unwrap();
    s.apply_person_update(p, "u2", &set(json!({"plan": "free", "tags": ["a"]})))
        .await
        .unwrap();
    let company = s.ensure_group_type(p, "company").await.unwrap();
    s.upsert_group(
        p,
        company,
        "acme",
        &props(json!({"industry": "retail", "size": 50})),
    )
    .await
    .unwrap();
    let keys = s.property_keys(p, 100).await.unwrap();
    let find = |group: Option<i64>, key: &str| {
        keys.iter()
            .find(|k| k.group_type_index == group && k.key == key)
            .map(|k| (k.kind, k.count))
    };
    assert_eq!(keys[0].key, "plan", "most common first: {keys:?}");
    assert_eq!(find(None, "plan"), Some((ValueKind::Text, 2)));
    assert_eq!(find(None, "seats"), Some((ValueKind::Number, 1)));
    assert_eq!(find(None, "beta"), Some((ValueKind::Boolean, 1)));
    assert_eq!(find(None, "tags"), Some((ValueKind::Other, 1)));
    assert_eq!(find(Some(company), "industry"), Some((ValueKind::Text, 1)));
    assert_eq!(find(Some(company), "size"), Some((ValueKind::Number, 1)));
    assert_eq!(keys.len(), 6);
    // The sample is the latest persons.
    let sampled = s.property_keys(p, 1).await.unwrap();
    assert_eq!(find_in(&sampled, "seats"), None);
    assert_eq!(find_in(&sampled, "tags"), Some(1));
    assert!(s.property_keys(q, 100).await.unwrap().is_empty());
}

fn find_in(keys: &[vexil_store::PropertyKey], key: &str) -> Option<u64> {
    keys.iter()
        .find(|k| k.group_type_index.is_none() && k.key == key)
        .map(|k| k.count)
}
