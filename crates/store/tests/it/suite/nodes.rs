//! Two stores on one database stand in for two nodes (two processes, two pools): what one
//! commits the other sees, and concurrent writes to the same person lose nothing.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;
use vexil_store::{
    CapturedEvent, ChangesSince, Effect, KeyKind, NewCohort, NewEvent, NewFlag, PersonUpdate,
    ProjectId, ReloadReason, Replay, Store, MAX_REPLAYED,
};

use super::{everyone, props, TestDb};

/// Batches each node writes, and events per batch.
const BATCHES: usize = 20;
const EVENTS: usize = 5;

/// A capture batch for `distinct_id` whose events `$set` `<node>_<batch>_<event>` (all new
/// keys) and `last = <node>` (a key both nodes write).
fn batch(node: &str, n: usize, distinct_id: &str) -> Vec<CapturedEvent> {
    (0..EVENTS)
        .map(|i| CapturedEvent {
            event: NewEvent {
                uuid: Uuid::new_v4(),
                event: "$set".into(),
                distinct_id: distinct_id.into(),
                properties: props(json!({})),
                timestamp: Utc::now(),
            },
            effects: vec![Effect::Person(PersonUpdate {
                set: props(json!({format!("{node}_{n}_{i}"): true, "last": node})),
                ..PersonUpdate::default()
            })],
        })
        .collect()
}

/// Item 4 of issue 14: two nodes capture `$set`s of different properties for the same person
/// at the same time, many times; every property either of them set is there at the end.
pub async fn concurrent_sets_from_two_nodes_all_survive(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let other = vexil_store::connect(&db.url).await.unwrap();
    // Half the batches name the person by an alias, so the nodes also race through a merge.
    db.store.identify(p, "u1", "alias").await.unwrap();
    let nodes: [(&'static str, Arc<dyn Store>); 2] =
        [("a", db.store.clone()), ("b", other.clone())];
    let tasks: Vec<_> = nodes
        .into_iter()
        .map(|(node, store)| {
            tokio::spawn(async move {
                for n in 0..BATCHES {
                    let id = if n % 2 == 0 { "u1" } else { "alias" };
                    let outcome = store.write_capture(p, &batch(node, n, id)).await.unwrap();
                    assert_eq!(outcome.new_events, EVENTS as u64);
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let person = other.get_person(p, "u1").await.unwrap().unwrap();
    for node in ["a", "b"] {
        for n in 0..BATCHES {
            for i in 0..EVENTS {
                let key = format!("{node}_{n}_{i}");
                assert_eq!(
                    person.properties.get(&key),
                    Some(&json!(true)),
                    "{key} lost"
                );
            }
        }
    }
    assert_eq!(person.properties.len(), 2 * BATCHES * EVENTS + 1);
    assert_eq!(db.raw.count_events(p).await, (2 * BATCHES * EVENTS) as i64);
    other.close().await;
}

/// The project's revision moves with every committed change to its definitions or keys, in
/// every node's view, and not with person or event writes.
pub async fn revision_moves_with_every_definition_change(db: &mut TestDb) {
    let a = db.project("A").await.project.id;
    let b = db.project("B").await.project.id;
    let other = vexil_store::connect(&db.url).await.unwrap();
    let revision = |revisions: Vec<(vexil_store::ProjectId, i64)>, p| {
        revisions
            .into_iter()
            .find(|(id, _)| *id == p)
            .map(|(_, r)| r)
            .unwrap()
    };
    let s = db.store.clone();
    let mut last = revision(other.revisions().await.unwrap(), a);
    let b_before = revision(other.revisions().await.unwrap(), b);

    let flag = s
        .create_flag(a, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let cohort = s
        .create_cohort(a, &NewCohort::static_list("List"))
        .await
        .unwrap();
    for step in 0..7 {
        let written = match step {
            0 => s
                .update_flag(a, flag.id, &Default::default(), None, None)
                .await
                .map(drop),
            1 => s.delete_flag(a, flag.id, None, None).await.map(drop),
            2 => s.ensure_group_type(a, "company").await.map(drop),
            3 => s
                .add_cohort_members(a, cohort.id, &["u1".into()])
                .await
                .map(drop),
            4 => s
                .update_cohort(a, cohort.id, &Default::default(), None)
                .await
                .map(drop),
            5 => s.rotate_key(a, KeyKind::Secret).await.map(drop),
            _ => s.revoke_key(a, KeyKind::Personal).await,
        };
        written.unwrap();
        let now = revision(other.revisions().await.unwrap(), a);
        assert!(now > last, "step {step}: revision {now} after {last}");
        last = now;
    }
    assert!(
        last >= 2 + 7,
        "creating the flag and the cohort moved it too"
    );

    // Reads and person, group and event writes leave it; so does an existing group type.
    s.ensure_group_type(a, "company").await.unwrap();
    s.apply_person_update(a, "u1", &PersonUpdate::default())
        .await
        .unwrap();
    s.upsert_group(a, 0, "acme", &props(json!({"x": 1})))
        .await
        .unwrap();
    s.definitions(a).await.unwrap();
    assert_eq!(revision(other.revisions().await.unwrap(), a), last);
    assert_eq!(revision(other.revisions().await.unwrap(), b), b_before);
    // One project's revision alone is the same number.
    assert_eq!(other.revision(a).await.unwrap(), Some(last));
    assert_eq!(other.revision(b).await.unwrap(), Some(b_before));
    assert_eq!(
        other
            .revision(vexil_store::ProjectId(i64::MAX))
            .await
            .unwrap(),
        None
    );
    other.close().await;
}

/// Another node holding revision R reads only what changed after R: the changed flags' rows as
/// they are now (a deleted one marked deleted), read with the revision they bring it to; a
/// cohort or key change, a revision the log does not reach back to, one ahead of the store or
/// too many revisions ask for a reload instead.
pub async fn changes_since_replays_flags_and_reloads_the_rest(db: &mut TestDb) {
    let a = db.project("A").await.project.id;
    let s = db.store.clone();
    let other = vexil_store::connect(&db.url).await.unwrap();
    let since = |r: i64| {
        let other = other.clone();
        async move { other.changes_since(a, r).await.unwrap().unwrap() }
    };
    let flags = |c: ChangesSince| match c.replay {
        Replay::Flags(rows) => rows,
        Replay::Reload(reason) => panic!("reload ({reason:?}) where flags replay"),
    };
    let r0 = other.revision(a).await.unwrap().unwrap();
    assert_eq!(
        since(r0).await,
        ChangesSince {
            revision: r0,
            replay: Replay::Flags(vec![])
        }
    );

    let beta = s
        .create_flag(a, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let gamma = s
        .create_flag(a, &NewFlag::new("gamma", everyone()))
        .await
        .unwrap();
    s.update_flag(a, beta.id, &Default::default(), None, None)
        .await
        .unwrap();
    s.delete_flag(a, gamma.id, None, None).await.unwrap();
    let all = since(r0).await;
    assert_eq!(all.revision, r0 + 4);
    let rows = flags(all);
    assert_eq!(
        rows.iter()
            .map(|f| (f.id, f.version, f.deleted))
            .collect::<Vec<_>>(),
        vec![(beta.id, 2, false), (gamma.id, 2, true)],
        "each changed flag once, as it is now, in id order"
    );
    assert_eq!(rows[0], s.get_flag(a, beta.id).await.unwrap().unwrap());
    // Only what came after the reader's revision.
    let later = flags(since(r0 + 3).await);
    assert_eq!(
        later.iter().map(|f| f.id).collect::<Vec<_>>(),
        vec![gamma.id]
    );
    assert_eq!(flags(since(r0 + 4).await), vec![]);

    // A revision before the log, or ahead of the store.
    let gap = Replay::Reload(ReloadReason::Gap);
    assert_eq!(since(r0 - 1).await.replay, gap);
    assert_eq!(since(r0 + 5).await.replay, gap);

    let cohort = s
        .create_cohort(a, &NewCohort::static_list("List"))
        .await
        .unwrap();
    assert_eq!(since(r0).await.replay, Replay::Reload(ReloadReason::Cohort));
    s.add_cohort_members(a, cohort.id, &["u1".into()])
        .await
        .unwrap();
    s.rotate_key(a, KeyKind::Secret).await.unwrap();
    let keys = since(r0 + 4).await;
    assert_eq!(keys.revision, r0 + 7);
    assert_eq!(keys.replay, Replay::Reload(ReloadReason::Project));
    assert_eq!(flags(since(r0 + 7).await), vec![]);

    let r = r0 + 7;
    for _ in 0..=MAX_REPLAYED {
        s.update_flag(a, beta.id, &Default::default(), None, None)
            .await
            .unwrap();
    }
    assert_eq!(since(r).await.replay, Replay::Reload(ReloadReason::TooMany));
    let recent = flags(since(r + 1).await);
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].version, 3 + MAX_REPLAYED as i64);

    assert_eq!(
        other.changes_since(ProjectId(i64::MAX), 0).await.unwrap(),
        None
    );
    other.close().await;
}
