//! Projects, credentials and group types.

use vexil_store::{hash_key, KeyKind, ProjectId, StoreError};

use super::TestDb;

pub async fn create_returns_prefixed_keys(db: &mut TestDb) {
    let a = db.project("A").await;
    let b = db.project("B").await;
    for (key, prefix) in [
        (&a.project.api_token, "phc_"),
        (&a.secret_key, "phs_"),
        (&a.personal_key, "phx_"),
    ] {
        assert!(key.starts_with(prefix), "{key} should start with {prefix}");
        assert!(key.len() >= prefix.len() + 32, "{key} is too short");
        assert!(key[prefix.len()..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
    assert_ne!(a.project.api_token, b.project.api_token);
    assert_ne!(a.secret_key, b.secret_key);
    assert_ne!(a.personal_key, b.personal_key);
    assert_ne!(a.project.id, b.project.id);
    assert_eq!(a.project.name, "A");
    // The plaintext keys never appear in Debug output.
    let debug = format!("{a:?}");
    assert!(!debug.contains(&a.secret_key) && !debug.contains(&a.personal_key));
}

pub async fn keys_are_stored_hashed(db: &mut TestDb) {
    let created = db.project("A").await;
    let (token, secret_hash, personal_hash) = db.raw.project_keys(created.project.id).await;
    assert_eq!(
        token, created.project.api_token,
        "the public token is kept in clear"
    );
    assert_eq!(secret_hash, hash_key(&created.secret_key));
    assert_eq!(personal_hash, hash_key(&created.personal_key));
    for h in [&secret_hash, &personal_hash] {
        assert!(h.starts_with("sha256$"));
        assert_eq!(h.len(), "sha256$".len() + 64);
        assert!(!h.contains(&created.secret_key[4..]));
        assert!(!h.contains(&created.personal_key[4..]));
    }
    // PostHog's vector (posthog-compat.md §2.2).
    assert_eq!(
        hash_key("test_key_12345"),
        "sha256$45af89b510a3279a817f851de5d3f95b73485d58ec2672a39e52d8aeeb014059"
    );
}

pub async fn token_lookup_and_key_verification(db: &mut TestDb) {
    let a = db.project("A").await;
    let b = db.project("B").await;
    let s = &*db.store;
    let id = a.project.id;

    assert_eq!(
        s.project_by_token(&a.project.api_token).await.unwrap(),
        Some(a.project.clone())
    );
    assert_eq!(s.project_by_token("phc_nope").await.unwrap(), None);
    assert_eq!(s.project_by_token("").await.unwrap(), None);
    assert_eq!(s.get_project(id).await.unwrap(), Some(a.project.clone()));
    assert_eq!(s.get_project(ProjectId(999_999)).await.unwrap(), None);
    let all = s.list_projects().await.unwrap();
    assert_eq!(all, vec![a.project.clone(), b.project.clone()]);

    assert!(s
        .verify_key(id, KeyKind::Secret, &a.secret_key)
        .await
        .unwrap());
    assert!(s
        .verify_key(id, KeyKind::Personal, &a.personal_key)
        .await
        .unwrap());
    assert!(!s
        .verify_key(id, KeyKind::Secret, &a.personal_key)
        .await
        .unwrap());
    assert!(!s
        .verify_key(id, KeyKind::Personal, &a.secret_key)
        .await
        .unwrap());
    assert!(!s
        .verify_key(id, KeyKind::Secret, &b.secret_key)
        .await
        .unwrap());
    assert!(!s
        .verify_key(id, KeyKind::Secret, "phs_wrong")
        .await
        .unwrap());
    assert!(!s.verify_key(id, KeyKind::Secret, "").await.unwrap());
    assert!(!s
        .verify_key(id, KeyKind::Secret, &a.project.api_token)
        .await
        .unwrap());
    assert!(!s
        .verify_key(ProjectId(999_999), KeyKind::Secret, &a.secret_key)
        .await
        .unwrap());
    // A stored hash is not a credential.
    assert!(!s
        .verify_key(id, KeyKind::Secret, &hash_key(&a.secret_key))
        .await
        .unwrap());

    assert_eq!(
        s.project_by_personal_key(&a.personal_key).await.unwrap(),
        Some(a.project.clone())
    );
    assert_eq!(
        s.project_by_personal_key(&b.personal_key).await.unwrap(),
        Some(b.project.clone())
    );
    assert_eq!(
        s.project_by_personal_key(&a.secret_key).await.unwrap(),
        None
    );
    assert_eq!(s.project_by_personal_key("phx_wrong").await.unwrap(), None);
}

pub async fn rotation_replaces_the_key_at_once(db: &mut TestDb) {
    let a = db.project("A").await;
    let b = db.project("B").await;
    let id = a.project.id;
    let s = &*db.store;

    let secret = s.rotate_key(id, KeyKind::Secret).await.unwrap();
    assert_eq!((secret.project, secret.kind), (id, KeyKind::Secret));
    assert!(secret.key.starts_with("phs_") && secret.key != a.secret_key);
    assert!(
        !format!("{secret:?}").contains(&secret.key),
        "Debug hides the key"
    );
    assert!(!s
        .verify_key(id, KeyKind::Secret, &a.secret_key)
        .await
        .unwrap());
    assert!(s
        .verify_key(id, KeyKind::Secret, &secret.key)
        .await
        .unwrap());
    // The other kind and the other project are untouched.
    assert!(s
        .verify_key(id, KeyKind::Personal, &a.personal_key)
        .await
        .unwrap());
    assert!(s
        .verify_key(b.project.id, KeyKind::Secret, &b.secret_key)
        .await
        .unwrap());

    let personal = s.rotate_key(id, KeyKind::Personal).await.unwrap();
    assert!(personal.key.starts_with("phx_") && personal.key != a.personal_key);
    assert!(!s
        .verify_key(id, KeyKind::Personal, &a.personal_key)
        .await
        .unwrap());
    assert_eq!(
        s.project_by_personal_key(&a.personal_key).await.unwrap(),
        None
    );
    assert_eq!(
        s.project_by_personal_key(&personal.key).await.unwrap(),
        Some(a.project.clone())
    );

    // Only the new keys' hashes are stored, and they survive a restart.
    let (_, secret_hash, personal_hash) = db.raw.project_keys(id).await;
    assert_eq!(secret_hash, hash_key(&secret.key));
    assert_eq!(personal_hash, hash_key(&personal.key));
    db.reopen().await;
    let s = &*db.store;
    assert!(s
        .verify_key(id, KeyKind::Secret, &secret.key)
        .await
        .unwrap());
    assert!(!s
        .verify_key(id, KeyKind::Secret, &a.secret_key)
        .await
        .unwrap());

    for kind in KeyKind::ALL {
        assert!(matches!(
            s.rotate_key(ProjectId(999_999), kind).await,
            Err(StoreError::NotFound { entity: "project" })
        ));
    }
}

pub async fn revocation_refuses_the_key_until_rotated(db: &mut TestDb) {
    let a = db.project("A").await;
    let b = db.project("B").await;
    let id = a.project.id;
    let s = &*db.store;

    s.revoke_key(id, KeyKind::Personal).await.unwrap();
    s.revoke_key(id, KeyKind::Personal).await.unwrap();
    assert!(!s
        .verify_key(id, KeyKind::Personal, &a.personal_key)
        .await
        .unwrap());
    assert_eq!(
        s.project_by_personal_key(&a.personal_key).await.unwrap(),
        None
    );
    assert!(s
        .verify_key(id, KeyKind::Secret, &a.secret_key)
        .await
        .unwrap());
    assert_eq!(
        s.project_by_personal_key(&b.personal_key).await.unwrap(),
        Some(b.project.clone())
    );

    s.revoke_key(id, KeyKind::Secret).await.unwrap();
    assert!(!s
        .verify_key(id, KeyKind::Secret, &a.secret_key)
        .await
        .unwrap());
    db.reopen().await;
    let s = &*db.store;
    assert!(!s
        .verify_key(id, KeyKind::Secret, &a.secret_key)
        .await
        .unwrap());

    // A rotation issues a working key again; the revoked one stays dead.
    let personal = s.rotate_key(id, KeyKind::Personal).await.unwrap();
    assert!(s
        .verify_key(id, KeyKind::Personal, &personal.key)
        .await
        .unwrap());
    assert_eq!(
        s.project_by_personal_key(&personal.key).await.unwrap(),
        Some(a.project.clone())
    );
    assert!(!s
        .verify_key(id, KeyKind::Personal, &a.personal_key)
        .await
        .unwrap());
    assert!(!s
        .verify_key(id, KeyKind::Secret, &a.secret_key)
        .await
        .unwrap());

    assert!(matches!(
        s.revoke_key(ProjectId(999_999), KeyKind::Secret).await,
        Err(StoreError::NotFound { entity: "project" })
    ));
}

pub async fn project_name_is_required(db: &mut TestDb) {
    let err = db.store.create_project("  ").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid { field: "name", .. }),
        "{err:?}"
    );
}

pub async fn group_types_are_assigned_in_order(db: &mut TestDb) {
    let a = db.project("A").await.project.id;
    let b = db.project("B").await.project.id;
    let s = &*db.store;
    assert_eq!(s.ensure_group_type(a, "company").await.unwrap(), 0);
    assert_eq!(s.ensure_group_type(a, "project").await.unwrap(), 1);
    assert_eq!(s.ensure_group_type(a, "company").await.unwrap(), 0);
    assert_eq!(s.ensure_group_type(b, "team").await.unwrap(), 0);
    for (i, name) in ["c", "d", "e"].iter().enumerate() {
        assert_eq!(s.ensure_group_type(a, name).await.unwrap(), i as i64 + 2);
    }
    let err = s.ensure_group_type(a, "sixth").await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    assert!(matches!(
        s.ensure_group_type(a, "").await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.ensure_group_type(ProjectId(999_999), "x").await,
        Err(StoreError::NotFound { entity: "project" })
    ));

    let types = s.group_types(a).await.unwrap();
    let names: Vec<(i64, &str)> = types
        .iter()
        .map(|t| (t.group_type_index, t.name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![(0, "company"), (1, "project"), (2, "c"), (3, "d"), (4, "e")]
    );
    assert_eq!(s.group_types(b).await.unwrap().len(), 1);
}
