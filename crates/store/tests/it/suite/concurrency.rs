//! Concurrent writers: optimistic concurrency and no lost version bumps.

use std::sync::Arc;

use vexil_store::{FlagUpdate, NewFlag, Page, Store, StoreError};

use super::{everyone, TestDb};

const WRITERS: usize = 8;

pub async fn same_expected_version_exactly_one_wins(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let flag = db
        .store
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let s: Arc<dyn Store> = db.store.clone();
            tokio::spawn(async move {
                let update = FlagUpdate {
                    name: Some(format!("writer {i}")),
                    ..FlagUpdate::default()
                };
                s.update_flag(p, flag.id, &update, Some(1), None).await
            })
        })
        .collect();
    let mut won = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(f) => won.push(f),
            Err(StoreError::Conflict { current_version }) => {
                assert_eq!(current_version, 2);
                conflicts += 1;
            }
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one writer wins");
    assert_eq!(conflicts, WRITERS - 1);
    let stored = db.store.get_flag(p, flag.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.name, won[0].name);
    let log = db
        .store
        .flag_activity(p, Some(flag.id), Page::default())
        .await
        .unwrap();
    assert_eq!(log.total, 2, "created + the one winning update");
}

pub async fn unversioned_updates_never_lose_a_bump(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let flag = db
        .store
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let s: Arc<dyn Store> = db.store.clone();
            tokio::spawn(async move {
                s.update_flag(p, flag.id, &FlagUpdate::default(), None, None)
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().unwrap().version);
    }
    versions.sort();
    let expected: Vec<i64> = (2..2 + WRITERS as i64).collect();
    assert_eq!(versions, expected, "every update saw its own version");
    let stored = db.store.get_flag(p, flag.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 1 + WRITERS as i64);
}

pub async fn concurrent_group_type_creation_agrees(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let s: Arc<dyn Store> = db.store.clone();
            let name = if i % 2 == 0 { "company" } else { "team" };
            tokio::spawn(async move { (name, s.ensure_group_type(p, name).await) })
        })
        .collect();
    let mut seen = std::collections::HashMap::new();
    for t in tasks {
        let (name, index) = t.await.unwrap();
        let index = index.unwrap();
        assert_eq!(*seen.entry(name).or_insert(index), index, "{name}");
    }
    let types = db.store.group_types(p).await.unwrap();
    assert_eq!(types.len(), 2);
}

/// Checked updates run one at a time: each check sees the row the previous one wrote, so a
/// check comparing versions never sees the same stored version twice.
pub async fn checked_updates_are_serialised(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let flag = db
        .store
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let s: Arc<dyn Store> = db.store.clone();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let update = FlagUpdate {
                    name: Some(format!("writer {i}")),
                    ..FlagUpdate::default()
                };
                let check = move |before: Option<&vexil_store::FeatureFlag>,
                                  after: &vexil_store::FeatureFlag| {
                    let before = before.map_or(0, |b| b.version);
                    seen.lock().unwrap().push((before, after.version));
                    Ok(())
                };
                s.update_flag_checked(p, flag.id, &update, None, &check)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let expected: Vec<(i64, i64)> = (1..=WRITERS as i64).map(|v| (v, v + 1)).collect();
    assert_eq!(seen, expected, "every check saw the previous writer's row");
    let log = db
        .store
        .flag_activity(p, Some(flag.id), Page::default())
        .await
        .unwrap();
    assert_eq!(log.total, 1 + WRITERS as u64);
}
