//! Capture batches: events with their person and group changes in one transaction.

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;
use vexil_store::{
    CapturedEvent, Effect, NewEvent, PersonUpdate, StoreError, MAX_PERSON_PROPERTIES,
};

use super::{props, TestDb};

fn captured(name: &str, distinct_id: &str, effects: Vec<Effect>) -> CapturedEvent {
    CapturedEvent {
        event: NewEvent {
            uuid: Uuid::new_v4(),
            event: name.into(),
            distinct_id: distinct_id.into(),
            properties: props(json!({})),
            timestamp: Utc::now(),
        },
        effects,
    }
}

fn set(v: serde_json::Value) -> Effect {
    Effect::Person(PersonUpdate {
        set: props(v),
        ..PersonUpdate::default()
    })
}

pub async fn one_batch_merges_each_person_once(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    // A person touched a hundred times, an identify merging an anonymous person mid-batch,
    // a group set twice.
    s.apply_person_update(p, "anon", &PersonUpdate::default())
        .await
        .unwrap();
    let mut batch: Vec<CapturedEvent> = (0..100)
        .map(|i| {
            captured(
                "$set",
                "hot",
                vec![set(json!({"n": i, format!("k{}", i % 3): i}))],
            )
        })
        .collect();
    batch.push(captured(
        "$set",
        "anon",
        vec![set(json!({"from_anon": true, "n": -1}))],
    ));
    batch.push(captured(
        "$identify",
        "hot",
        vec![Effect::Merge {
            other: "anon".into(),
        }],
    ));
    batch.push(captured(
        "$set",
        "anon",
        vec![set(json!({"after_merge": 1}))],
    ));
    for tier in ["free", "pro"] {
        batch.push(captured(
            "$groupidentify",
            "hot",
            vec![Effect::Group {
                group_type_index: 0,
                group_key: "acme".into(),
                set: props(json!({"tier": tier})),
            }],
        ));
    }
    let outcome = s.write_capture(p, &batch).await.unwrap();
    assert_eq!(outcome.new_events, 105);
    assert_eq!(outcome.duplicates, 0);
    assert!(outcome.skipped.is_empty());

    let person = s.get_person(p, "hot").await.unwrap().unwrap();
    assert_eq!(person.distinct_ids, ["anon", "hot"]);
    assert!(person.is_identified);
    assert_eq!(
        serde_json::Value::Object(person.properties),
        json!({"n": 99, "k0": 99, "k1": 97, "k2": 98, "from_anon": true, "after_merge": 1})
    );
    // Created at version 0, written once for the whole batch.
    assert_eq!(db.raw.person_version(p, "hot").await, 1);
    let group = s.get_group(p, 0, "acme").await.unwrap().unwrap();
    assert_eq!(group.properties, props(json!({"tier": "pro"})));
}

pub async fn duplicates_are_skipped_with_their_effects(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let first = captured("$set", "u", vec![set(json!({"plan": "free"}))]);
    let twice = vec![first.clone(), first.clone()];
    let outcome = s.write_capture(p, &twice).await.unwrap();
    assert_eq!((outcome.new_events, outcome.duplicates), (1, 1));
    // A newer change, then the old event delivered again: the old `$set` is not re-applied.
    let newer = captured("$set", "u", vec![set(json!({"plan": "pro"}))]);
    s.write_capture(p, &[newer]).await.unwrap();
    let outcome = s.write_capture(p, &[first]).await.unwrap();
    assert_eq!((outcome.new_events, outcome.duplicates), (0, 1));
    let person = s.get_person(p, "u").await.unwrap().unwrap();
    assert_eq!(person.properties, props(json!({"plan": "pro"})));
    assert_eq!(db.raw.count_events(p).await, 2);
}

pub async fn a_limit_breaks_the_whole_batch_and_names_the_event(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let many: serde_json::Map<String, serde_json::Value> = (0..MAX_PERSON_PROPERTIES)
        .map(|i| (format!("p{i}"), json!(i)))
        .collect();
    let full = captured("$set", "u", vec![set(serde_json::Value::Object(many))]);
    s.write_capture(p, &[full]).await.unwrap();
    let batch = vec![
        captured("ok", "other", vec![set(json!({"a": 1}))]),
        // Overwriting is fine at the limit; one more key is not.
        captured("$set", "u", vec![set(json!({"p0": "again"}))]),
        captured("$set", "u", vec![set(json!({"one_more": 1}))]),
    ];
    let err = s.write_capture(p, &batch).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::LimitExceeded {
                limit: "MAX_PERSON_PROPERTIES",
                max: MAX_PERSON_PROPERTIES,
                event: 2
            }
        ),
        "{err:?}"
    );
    // Nothing of the batch was written.
    assert_eq!(db.raw.count_events(p).await, 1);
    assert_eq!(s.get_person(p, "other").await.unwrap(), None);
    let person = s.get_person(p, "u").await.unwrap().unwrap();
    assert_eq!(person.properties["p0"], json!(0));
    // Without the offending event the batch goes through.
    let outcome = s.write_capture(p, &batch[..2]).await.unwrap();
    assert_eq!(outcome.new_events, 2);
}

pub async fn invalid_effects_are_skipped_and_reported(db: &mut TestDb) {
    let p = db.project("A").await.project.id;
    let s = &*db.store;
    let bad_group = |index: i64, key: &str| Effect::Group {
        group_type_index: index,
        group_key: key.into(),
        set: props(json!({"x": 1})),
    };
    let batch = vec![
        captured("$groupidentify", "u", vec![bad_group(0, "")]),
        captured("$groupidentify", "u", vec![bad_group(9, "k")]),
        captured("$set", "u", vec![set(json!({"kept": true}))]),
    ];
    let outcome = s.write_capture(p, &batch).await.unwrap();
    assert_eq!(outcome.new_events, 3);
    let events: Vec<usize> = outcome.skipped.iter().map(|(i, _)| *i).collect();
    assert_eq!(events, [0, 1]);
    assert!(outcome.skipped[0].1.contains("group_key"), "{outcome:?}");
    assert_eq!(
        s.get_person(p, "u").await.unwrap().unwrap().properties,
        props(json!({"kept": true}))
    );
}
