//! Captured events and flag-call history.

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;
use vexil_store::{
    Day, EvaluationCount, FlagCallDetails, FlagCallError, NewEvent, PersonUpdate, ProjectId,
    StoreError, UsageDay,
};

use super::{props, TestDb};

fn event(name: &str, distinct_id: &str, minutes: i64) -> NewEvent {
    NewEvent {
        uuid: Uuid::new_v4(),
        event: name.into(),
        distinct_id: distinct_id.into(),
        properties: props(json!({"$lib": "posthog-python"})),
        timestamp: base() + Duration::minutes(minutes),
    }
}

fn flag_called(key: &str, response: serde_json::Value, minutes: i64) -> NewEvent {
    let mut e = event("$feature_flag_called", "u1", minutes);
    e.properties = props(json!({"$feature_flag": key, "$feature_flag_response": response}));
    e
}

fn base() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap()
}

pub async fn batch_insert_is_idempotent_by_uuid(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let batch = vec![
        event("$pageview", "u1", 0),
        event("$pageview", "u1", 1),
        event("signup", "u1", 2),
    ];
    assert_eq!(s.insert_events(p, &batch).await.unwrap(), 3);
    assert_eq!(
        s.insert_events(p, &batch).await.unwrap(),
        0,
        "a retried batch"
    );
    let mut mixed = batch.clone();
    mixed.push(event("$pageview", "u1", 3));
    mixed.push(mixed[0].clone()); // duplicate inside one batch
    assert_eq!(s.insert_events(p, &mixed).await.unwrap(), 1);
    assert_eq!(s.insert_events(p, &[]).await.unwrap(), 0);
    assert_eq!(
        s.count_events(p, "u1", "$pageview", base()).await.unwrap(),
        3
    );

    // The same uuid in another project is another event.
    let q = db.project("B").await.project.id;
    assert_eq!(s.insert_events(q, &batch).await.unwrap(), 3);
}

pub async fn scan_events_pages_named_events_since_a_time(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    let batch: Vec<NewEvent> = (0..5)
        .map(|i| event("purchase", "u1", i))
        .chain([event("signup", "u1", 3), event("purchase", "u2", -10)])
        .collect();
    s.insert_events(p, &batch).await.unwrap();
    s.insert_events(q, &[event("purchase", "u1", 4)])
        .await
        .unwrap();
    let names = vec!["purchase".to_owned()];
    let since = base() + Duration::minutes(1);
    let first = s.scan_events(p, &names, since, 0, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    let rest = s
        .scan_events(p, &names, since, first[2].0, 3)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1, "u1's purchases at minutes 1..=4 only");
    let all: Vec<&NewEvent> = first.iter().chain(&rest).map(|(_, e)| e).collect();
    assert!(all
        .iter()
        .all(|e| e.event == "purchase" && e.timestamp >= since));
    assert_eq!(all[0], &batch[1], "in storage order, whole");
    assert!(s
        .scan_events(p, &[], since, 0, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn count_events_follows_the_person(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    s.insert_events(
        p,
        &[
            event("purchase", "anon", -10),
            event("purchase", "anon", 5),
            event("purchase", "user", 6),
            event("purchase", "stranger", 7),
            event("refund", "user", 8),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        s.count_events(p, "user", "purchase", base()).await.unwrap(),
        1
    );
    s.apply_person_update(p, "anon", &PersonUpdate::default())
        .await
        .unwrap();
    s.identify(p, "user", "anon").await.unwrap();
    assert_eq!(
        s.count_events(p, "user", "purchase", base()).await.unwrap(),
        2
    );
    assert_eq!(
        s.count_events(p, "anon", "purchase", base()).await.unwrap(),
        2
    );
    assert_eq!(
        s.count_events(p, "user", "purchase", base() - Duration::hours(1))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        s.count_events(p, "user", "purchase", base() + Duration::minutes(6))
            .await
            .unwrap(),
        1,
        "since is inclusive"
    );
    assert_eq!(
        s.count_events(p, "nobody", "purchase", base())
            .await
            .unwrap(),
        0
    );
}

pub async fn flag_calls_are_recorded_once(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let late = flag_called("beta", json!(true), 30);
    let batch = vec![
        flag_called("beta", json!(false), 10),
        late.clone(),
        flag_called("exp", json!("test"), 20),
        event("$feature_flag_called", "u1", 99), // names no flag: stored, not a call
    ];
    assert_eq!(s.insert_events(p, &batch).await.unwrap(), 4);
    let calls = s.last_flag_calls(p).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls["beta"], base() + Duration::minutes(30));
    assert_eq!(calls["exp"], base() + Duration::minutes(20));
    assert_eq!(s.insert_events(p, &[late]).await.unwrap(), 0);
    let q = db.project("B").await.project.id;
    assert!(s.last_flag_calls(q).await.unwrap().is_empty());
}

pub async fn flag_calls_come_back_with_their_event_properties(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let mut reported = flag_called("beta", json!("test"), 10);
    reported.properties = props(json!({
        "$feature_flag": "beta", "$feature_flag_response": "test", "locally_evaluated": true,
        "$feature_flag_id": 7, "$feature_flag_version": "3",
        "$feature_flag_error": "timeout, api_error_429,weird",
        "$feature_flag_has_experiment": true, "$lib": "posthog-node"
    }));
    let bare = flag_called("beta", json!(false), 20);
    let batch = vec![
        reported.clone(),
        bare.clone(),
        flag_called("exp", json!(true), 30),
    ];
    s.insert_events(p, &batch).await.unwrap();
    let calls = s.flag_calls(p, "beta", 10).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].uuid, bare.uuid, "newest first");
    assert_eq!(calls[0].response, json!(false));
    assert_eq!(calls[0].details(), FlagCallDetails::default());
    let (call, details) = (&calls[1], calls[1].details());
    assert_eq!(
        (call.uuid, &call.distinct_id, &call.response, call.at),
        (
            reported.uuid,
            &reported.distinct_id,
            &json!("test"),
            reported.timestamp
        )
    );
    assert_eq!(call.properties, reported.properties);
    assert_eq!(details.locally_evaluated, Some(true));
    assert_eq!((details.flag_id, details.flag_version), (Some(7), Some(3)));
    assert_eq!(details.has_experiment, Some(true));
    assert_eq!(
        details.errors,
        [
            FlagCallError::Timeout,
            FlagCallError::ApiError(429),
            FlagCallError::Other("weird".into())
        ]
    );
    assert_eq!(details.lib.as_deref(), Some("posthog-node"));
    assert_eq!(s.flag_calls(p, "beta", 1).await.unwrap().len(), 1);
    let q = db.project("B").await.project.id;
    assert!(s.flag_calls(q, "beta", 10).await.unwrap().is_empty());
}

pub async fn unknown_project_is_not_found(db: &mut TestDb) {
    let err = db
        .store
        .insert_events(ProjectId(999_999), &[event("$pageview", "u1", 0)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { entity: "project" }),
        "{err:?}"
    );
}

pub async fn purge_deletes_old_events_and_flag_calls_in_chunks(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let q = db.project("B").await.project.id;
    let s = &*db.store;
    // base() is 2025-01-01 12:00; five old events per project (one a flag call), two recent.
    let mut old: Vec<NewEvent> = (0..4).map(|i| event("$pageview", "u1", -100 - i)).collect();
    old.push(flag_called("beta", json!(true), -50));
    let recent = vec![
        event("$pageview", "u1", 10),
        flag_called("gamma", json!(true), 20),
    ];
    for project in [p, q] {
        s.insert_events(project, &old).await.unwrap();
        s.insert_events(project, &recent).await.unwrap();
    }
    // 8 old events and 2 old flag calls: chunks of 3 per table.
    let mut deleted = Vec::new();
    loop {
        let n = s.purge_events(base(), 3).await.unwrap();
        deleted.push(n);
        if n < 3 {
            break;
        }
    }
    assert_eq!(deleted.iter().sum::<u64>(), 12, "{deleted:?}");
    assert!(deleted.iter().all(|&n| n <= 6), "{deleted:?}");
    for project in [p, q] {
        assert_eq!(
            s.count_events(project, "u1", "$pageview", base() - Duration::days(1))
                .await
                .unwrap(),
            1
        );
        let calls = s.last_flag_calls(project).await.unwrap();
        assert_eq!(calls.keys().collect::<Vec<_>>(), ["gamma"]);
        // A purged event is gone: delivering it again stores it again.
        assert_eq!(s.insert_events(project, &old[..1]).await.unwrap(), 1);
    }
    assert_eq!(s.purge_events(base(), 3).await.unwrap(), 2);
}

pub async fn flag_usage_adds_evaluations_and_counts_calls_by_day(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let today = Day::of(base());
    let count = |key: &str, day: Day, count: u64| EvaluationCount {
        flag_key: key.into(),
        day,
        count,
    };
    // Two nodes add what each counted: the counts sum up.
    let first = base() + Duration::minutes(1);
    let second = base() + Duration::minutes(2);
    s.add_flag_evaluations(p, &[count("beta", today, 3), count("exp", today, 2)], first)
        .await
        .unwrap();
    s.add_flag_evaluations(
        p,
        &[count("beta", today, 4), count("beta", today.minus(1), 1)],
        second,
    )
    .await
    .unwrap();
    // A late addition stamped earlier does not move the last evaluation back.
    s.add_flag_evaluations(p, &[count("beta", today, 1)], base())
        .await
        .unwrap();
    // Calls count once per stored event, on the event's day.
    let call = flag_called("beta", json!(true), 5);
    let batch = vec![
        call.clone(),
        flag_called("beta", json!(false), 6),
        flag_called("beta", json!(true), -24 * 60),
    ];
    assert_eq!(s.insert_events(p, &batch).await.unwrap(), 3);
    assert_eq!(s.insert_events(p, &[call]).await.unwrap(), 0);

    let usage = s
        .flag_usage(p, &["beta", "exp", "none"], today.minus(6))
        .await
        .unwrap();
    let day = |key: &str, day: Day, evaluations: u64, calls: u64| UsageDay {
        flag_key: key.into(),
        day,
        evaluations,
        calls,
    };
    assert_eq!(
        usage,
        vec![
            day("beta", today.minus(1), 1, 1),
            day("beta", today, 8, 2),
            day("exp", today, 2, 0),
        ]
    );
    assert_eq!(
        s.flag_usage(p, &["beta"], today).await.unwrap(),
        vec![day("beta", today, 8, 2)]
    );
    assert!(s.flag_usage(p, &[], today).await.unwrap().is_empty());

    let last = s.last_flag_evaluations(p).await.unwrap();
    assert_eq!(last.len(), 2);
    assert_eq!(last["beta"], second);
    assert_eq!(last["exp"], first);

    let q = db.project("B").await.project.id;
    assert!(s.last_flag_evaluations(q).await.unwrap().is_empty());
    assert!(s.flag_usage(q, &["beta"], today).await.unwrap().is_empty());
    let err = s
        .add_flag_evaluations(ProjectId(987_654), &[count("beta", today, 1)], base())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}
