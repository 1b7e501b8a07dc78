//! Capture at scale, safely: caps refused whole, the person-property cap failing one request
//! alone, a panicking writer failing only its batch and coming back, reported by readiness.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use vexil_server::Settings;

use crate::support::TestApp;

async fn count(app: &TestApp, distinct_id: &str, event: &str) -> u64 {
    app.store
        .count_events(
            app.project.project.id,
            distinct_id,
            event,
            DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        )
        .await
        .unwrap()
}

fn batch(app: &TestApp, events: Vec<Value>) -> Value {
    json!({"api_key": app.token(), "batch": events})
}

fn event(name: &str, distinct_id: &str, properties: Value) -> Value {
    json!({"event": name, "distinct_id": distinct_id, "properties": properties})
}

#[tokio::test]
async fn requests_over_a_cap_are_refused_whole_naming_the_limit() {
    let app = TestApp::spawn().await;
    // Each body starts with a good event that must not be stored either.
    let good = || event("good", "u", json!({"$set": {"plan": "pro"}}));

    let mut too_many = vec![good()];
    too_many.extend((0..2_000).map(|_| event("many", "u", json!({}))));
    let (status, body) = app.post("/batch/", &batch(&app, too_many)).await;
    assert_eq!((status, body["attr"].clone()), (413, json!("batch")));
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("MAX_EVENTS_PER_REQUEST (2000)"),
        "{body}"
    );
    // At the cap is fine.
    let at_cap: Vec<Value> = (0..2_000).map(|_| event("cap", "v", json!({}))).collect();
    let (status, _) = app.post("/batch/", &batch(&app, at_cap)).await;
    assert_eq!(status, 200);

    let huge = event("huge", "u", json!({"blob": "x".repeat(1_000_001)}));
    let (status, body) = app.post("/batch/", &batch(&app, vec![good(), huge])).await;
    assert_eq!((status, body["attr"].clone()), (413, json!("batch[1]")));
    assert!(
        body["detail"].as_str().unwrap().contains("MAX_EVENT_BYTES"),
        "{body}"
    );

    let big_value = event("$set", "u", json!({"$set": {"bio": "x".repeat(70_000)}}));
    let (status, body) = app
        .post("/batch/", &batch(&app, vec![good(), big_value]))
        .await;
    assert_eq!(
        (status, body["code"].clone(), body["attr"].clone()),
        (
            400,
            json!("limit_exceeded"),
            json!("batch[1].properties.$set.bio")
        )
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("MAX_PROPERTY_VALUE_BYTES (65536)"),
        "{body}"
    );

    assert_eq!(count(&app, "u", "good").await, 0, "nothing stored");
    assert_eq!(count(&app, "v", "cap").await, 2_000);
    assert_eq!(
        app.store
            .get_person(app.project.project.id, "u")
            .await
            .unwrap(),
        None
    );
    app.stop().await;
}

#[tokio::test]
async fn the_person_property_cap_fails_only_its_request() {
    // A long batching window so that the two requests share one transaction.
    let app = std::sync::Arc::new(
        TestApp::spawn_with(Settings {
            ingest_batch_delay: Duration::from_millis(300),
            ..Settings::default()
        })
        .await,
    );
    let max = vexil_store::MAX_PERSON_PROPERTIES;
    let full: serde_json::Map<String, Value> =
        (0..max).map(|i| (format!("p{i}"), json!(i))).collect();
    let (status, _) = app
        .post(
            "/batch/",
            &batch(&app, vec![event("$set", "u", json!({"$set": full}))]),
        )
        .await;
    assert_eq!(status, 200);

    let over = {
        let app = std::sync::Arc::clone(&app);
        tokio::spawn(async move {
            let body = batch(
                &app,
                vec![
                    event("first", "u", json!({})),
                    event("$set", "u", json!({"$set": {"one_more": 1}})),
                ],
            );
            app.post("/batch/", &body).await
        })
    };
    let fine = {
        let app = std::sync::Arc::clone(&app);
        tokio::spawn(async move {
            let body = batch(
                &app,
                vec![event("$set", "w", json!({"$set": {"plan": "pro"}}))],
            );
            app.post("/batch/", &body).await
        })
    };
    let (status, body) = over.await.unwrap();
    assert_eq!(
        (status, body["code"].clone(), body["attr"].clone()),
        (400, json!("limit_exceeded"), json!("batch[1]"))
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("MAX_PERSON_PROPERTIES ({max})")),
        "{body}"
    );
    assert_eq!(fine.await.unwrap().0, 200);
    assert_eq!(count(&app, "u", "first").await, 0, "nothing of the request");
    let w = app
        .store
        .get_person(app.project.project.id, "w")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.properties["plan"], json!("pro"));
}

#[tokio::test]
async fn a_panicking_writer_fails_its_batch_restarts_and_is_reported() {
    let app = TestApp::spawn_with(Settings {
        ingest_restart_delay: Duration::from_millis(1_500),
        ingest_panic_on_event: Some("boom".into()),
        ..Settings::default()
    })
    .await;
    let readiness = || async {
        let resp = app.client.get(app.url("/_readiness")).send().await.unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    let (status, body) = readiness().await;
    assert_eq!(
        (
            status,
            body["components"]["capture"].clone(),
            body["capture_restarts"].clone()
        ),
        (200, json!("up"), json!(0))
    );

    let body = batch(
        &app,
        vec![
            event("before", "u", json!({"$set": {"a": 1}})),
            event("boom", "u", json!({})),
        ],
    );
    let (status, answer) = app.post("/batch/", &body).await;
    assert_eq!(
        (status, answer["code"].clone()),
        (503, json!("unavailable"))
    );

    // Down until the restart delay has passed: readiness says so.
    let (status, body) = readiness().await;
    assert_eq!(
        (status, body["components"].clone()),
        (503, json!({"store": "up", "capture": "down"}))
    );
    // A request sent meanwhile waits for the new writer and is stored.
    let after = batch(&app, vec![event("after", "u", json!({"$set": {"b": 2}}))]);
    let (status, _) = app.post("/batch/", &after).await;
    assert_eq!(status, 200);
    let (status, body) = readiness().await;
    assert_eq!(
        (
            status,
            body["components"]["capture"].clone(),
            body["capture_restarts"].clone()
        ),
        (200, json!("up"), json!(1))
    );

    // Nothing of the failed batch was written.
    assert_eq!(count(&app, "u", "before").await, 0);
    let person = app
        .store
        .get_person(app.project.project.id, "u")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Value::Object(person.properties), json!({"b": 2}));
    app.stop().await;
}

#[tokio::test]
async fn retention_deletes_old_events_in_the_background() {
    let app = TestApp::spawn_with(Settings {
        event_retention: Some(Duration::from_secs(86_400)),
        retention_interval: Duration::from_millis(50),
        ..Settings::default()
    })
    .await;
    let p = app.project.project.id;
    let at = |days: i64| vexil_store::NewEvent {
        uuid: uuid::Uuid::new_v4(),
        event: "$feature_flag_called".into(),
        distinct_id: "u".into(),
        properties: serde_json::from_value(
            json!({"$feature_flag": format!("flag-{days}"), "$feature_flag_response": true}),
        )
        .unwrap(),
        timestamp: Utc::now() - chrono::TimeDelta::days(days),
    };
    let old: Vec<_> = (0..2_500).map(|_| at(3)).collect();
    app.store
        .insert_events(p, &[old.as_slice(), &[at(0)]].concat())
        .await
        .unwrap();
    let mut left = u64::MAX;
    for _ in 0..100 {
        left = count(&app, "u", "$feature_flag_called").await;
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 1, "only the recent event is left");
    let calls = app.store.last_flag_calls(p).await.unwrap();
    assert_eq!(calls.keys().collect::<Vec<_>>(), ["flag-0"]);
    app.stop().await;
}

/// Mounts a tmpfs of `size` at a new temporary directory; `None` without the privilege.
struct TinyDisk(tempfile::TempDir);

impl TinyDisk {
    fn mount(size: &str) -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyDisk(dir))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        // Lazily: a file the test process still holds open must not leave the mount behind.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test]
async fn a_full_disk_fails_writes_clearly_and_corrupts_nothing() {
    let Some(disk) = TinyDisk::mount("3m") else {
        eprintln!("skipped: mounting a tmpfs needs root (the error mapping is unit-tested)");
        return;
    };
    let app = TestApp::spawn_in(
        tempfile::tempdir_in(disk.0.path()).unwrap(),
        Settings::default(),
        |store| store,
    )
    .await;
    let big = |tag: &str, n: usize| {
        let events = (0..n)
            .map(|i| event(tag, "u", json!({"i": i, "pad": "x".repeat(2_000)})))
            .collect();
        batch(&app, events)
    };
    let (status, _) = app.post("/batch/", &big("before", 50)).await;
    assert_eq!(status, 200);

    // Fill the file system.
    let filler = disk.0.path().join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let mut refused = None;
    for _ in 0..5 {
        let (status, body) = app.post("/batch/", &big("full", 400)).await;
        if status != 200 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("a write on a full disk is refused");
    assert_eq!(
        (status, body["code"].clone()),
        (507, json!("insufficient_storage")),
        "{body}"
    );
    // A management write is refused the same way.
    let (status, body) = app
        .api(
            reqwest::Method::POST,
            "/api/projects/@current/feature_flags/",
            Some(&json!({"key": "on-full-disk", "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}})),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (507, json!("insufficient_storage")),
        "{body}"
    );
    // Reads keep working.
    assert_eq!(count(&app, "u", "before").await, 50);

    // Space comes back: writes work again and nothing is corrupt.
    std::fs::remove_file(&filler).unwrap();
    let (status, _) = app.post("/batch/", &big("after", 10)).await;
    assert_eq!(status, 200);
    assert_eq!(count(&app, "u", "after").await, 10);
    let acknowledged_full = count(&app, "u", "full").await;
    assert_eq!(acknowledged_full % 400, 0, "whole batches only");
    // Reopened from disk, the same data is there and the store writes.
    let p = app.project.project.id;
    let dir = app.stop_keeping_data().await;
    let store = vexil_store::open_data_dir(dir.path()).await.unwrap();
    let since = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
    for (name, n) in [("before", 50), ("full", acknowledged_full), ("after", 10)] {
        assert_eq!(
            store.count_events(p, "u", name, since).await.unwrap(),
            n,
            "{name}"
        );
    }
    store
        .create_flag(
            p,
            &vexil_store::NewFlag::new("after-full", json!({"groups": []})),
        )
        .await
        .unwrap();
    store.close().await;
    drop(dir);
    drop(disk);
}
