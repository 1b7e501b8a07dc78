//! Users of the web UI, memberships and sessions.

use chrono::{Duration, Utc};
use vexil_store::{hash_password, Access, NewUser, ProjectId, StoreError, UserId};

use super::TestDb;

fn new_user(email: &str, password: &str, projects: Vec<ProjectId>) -> NewUser {
    NewUser {
        email: email.to_owned(),
        password_hash: hash_password(password).expect("hash"),
        projects,
    }
}

pub async fn admins_and_members(db: &mut TestDb) {
    let a = db.project("A").await.project.id;
    let b = db.project("B").await.project.id;
    assert_eq!(db.store.count_users().await.unwrap(), 0);
    let admin = db
        .store
        .create_user(&new_user(" Root@Example.COM ", "correct horse", vec![]))
        .await
        .unwrap();
    assert_eq!(admin.email, "root@example.com");
    assert_eq!(admin.access, Access::Admin);
    assert!(admin.access.allows(a) && admin.access.allows(b));
    let member = db
        .store
        .create_user(&new_user("ann@example.com", "correct horse", vec![b, a, b]))
        .await
        .unwrap();
    assert_eq!(member.access, Access::Projects(vec![a, b]));
    let only_b = db
        .store
        .create_user(&new_user("bob@example.com", "correct horse", vec![b]))
        .await
        .unwrap();
    assert!(!only_b.access.allows(a) && only_b.access.allows(b));
    assert_eq!(db.store.count_users().await.unwrap(), 3);

    let taken = db
        .store
        .create_user(&new_user("ANN@example.com", "another one", vec![]))
        .await;
    assert!(
        matches!(taken, Err(StoreError::Duplicate { field: "email" })),
        "{taken:?}"
    );
    let unknown = db
        .store
        .create_user(&new_user(
            "cy@example.com",
            "correct horse",
            vec![ProjectId(9_999)],
        ))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { entity: "project" })),
        "{unknown:?}"
    );
    let bad = db
        .store
        .create_user(&new_user("not an email", "correct horse", vec![]))
        .await;
    assert!(
        matches!(bad, Err(StoreError::Invalid { field: "email", .. })),
        "{bad:?}"
    );
    assert_eq!(
        db.store.count_users().await.unwrap(),
        3,
        "refused users are not created"
    );
    assert!(matches!(
        hash_password("short"),
        Err(StoreError::Invalid {
            field: "password",
            ..
        })
    ));
}

pub async fn sign_in_checks_the_argon2id_hash(db: &mut TestDb) {
    db.store
        .create_user(&new_user("ann@example.com", "correct horse", vec![]))
        .await
        .unwrap();
    let (user, hash) = db
        .store
        .user_for_sign_in("  ANN@example.com")
        .await
        .unwrap()
        .expect("found by normalised e-mail");
    assert_eq!(user.email, "ann@example.com");
    assert!(
        hash.as_str().starts_with("$argon2id$v=19$"),
        "{}",
        hash.as_str()
    );
    assert!(!hash.as_str().contains("correct horse"));
    assert!(hash.verify("correct horse"));
    assert!(!hash.verify("correct horsf"));
    assert!(!hash.verify(""));
    assert!(db
        .store
        .user_for_sign_in("nobody@example.com")
        .await
        .unwrap()
        .is_none());
    assert!(db
        .store
        .user_for_sign_in("garbage")
        .await
        .unwrap()
        .is_none());
}

pub async fn sessions_expire_and_end(db: &mut TestDb) {
    let a = db.project("A").await.project.id;
    let user = db
        .store
        .create_user(&new_user("ann@example.com", "correct horse", vec![a]))
        .await
        .unwrap();
    let now = Utc::now();
    let issued = db
        .store
        .create_session(user.id, now + Duration::hours(1))
        .await
        .unwrap();
    let other = db
        .store
        .create_session(user.id, now + Duration::hours(1))
        .await
        .unwrap();
    assert_ne!(issued.id, other.id);
    assert_ne!(issued.id, issued.csrf_token);
    assert!(issued.id.len() >= 40);

    let live = db
        .store
        .session(&issued.id, now)
        .await
        .unwrap()
        .expect("live session");
    assert_eq!(live.user, user);
    assert_eq!(live.csrf_token, issued.csrf_token);
    assert!(
        db.store
            .session(&issued.id, now + Duration::hours(2))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(db
        .store
        .session("not-a-session", now)
        .await
        .unwrap()
        .is_none());
    // The id stored is a hash: the hash itself does not open the session.
    assert!(db
        .store
        .session(&vexil_store::hash_key(&issued.id), now)
        .await
        .unwrap()
        .is_none());

    db.store.delete_session(&issued.id).await.unwrap();
    db.store.delete_session(&issued.id).await.unwrap();
    assert!(
        db.store.session(&issued.id, now).await.unwrap().is_none(),
        "signed out"
    );
    assert!(
        db.store.session(&other.id, now).await.unwrap().is_some(),
        "others stay"
    );

    let missing = db
        .store
        .create_session(UserId(9_999), now + Duration::hours(1))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { entity: "user" })),
        "{missing:?}"
    );
}

pub async fn user_keys_belong_to_users(db: &mut TestDb) {
    let a = db.project("A").await.project.id;
    let ann = db
        .store
        .create_user(&new_user("ann@example.com", "correct horse", vec![a]))
        .await
        .unwrap();
    let bob = db
        .store
        .create_user(&new_user("bob@example.com", "correct horse", vec![]))
        .await
        .unwrap();
    let refused = db.store.create_user_key(ann.id, "  ").await;
    assert!(
        matches!(refused, Err(StoreError::Invalid { field: "label", .. })),
        "{refused:?}"
    );
    let unknown = db.store.create_user_key(UserId(9_999), "ci").await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { entity: "user" })),
        "{unknown:?}"
    );
    let first = db.store.create_user_key(ann.id, " ci ").await.unwrap();
    let second = db.store.create_user_key(ann.id, "laptop").await.unwrap();
    db.store.create_user_key(bob.id, "bob's").await.unwrap();
    assert!(first.value.starts_with("phx_") && first.value.len() == 47);
    assert_eq!(first.key.label, "ci");
    assert_eq!(
        first.key.mask,
        format!("phx_...{}", &first.value[first.value.len() - 4..])
    );
    assert_eq!(first.key.last_used_at, None);

    let listed = db.store.user_keys(ann.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![second.key.id, first.key.id],
        "newest first, only ann's"
    );

    let now = Utc::now();
    let (owner, key) = db
        .store
        .user_by_key(&first.value, now)
        .await
        .unwrap()
        .expect("the key finds its user");
    assert_eq!(owner, ann);
    assert_eq!(key.id, first.key.id);
    let used = db.store.user_keys(ann.id).await.unwrap();
    let stamped = used.iter().find(|k| k.id == first.key.id).unwrap();
    assert!(stamped.last_used_at.is_some(), "the use is recorded");
    assert_eq!(db.store.user_by_key("phx_nope", now).await.unwrap(), None);

    assert!(
        !db.store
            .revoke_user_key(bob.id, first.key.id)
            .await
            .unwrap(),
        "bob cannot revoke ann's key"
    );
    assert!(db
        .store
        .revoke_user_key(ann.id, first.key.id)
        .await
        .unwrap());
    assert_eq!(db.store.user_by_key(&first.value, now).await.unwrap(), None);
    assert!(db
        .store
        .user_by_key(&second.value, now)
        .await
        .unwrap()
        .is_some());
    assert_eq!(db.store.user_keys(ann.id).await.unwrap().len(), 1);
}
