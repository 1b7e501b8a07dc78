//! Saved definitions: each project's snapshot inputs are written to the snapshot directory after
//! a change, and a directory that cannot be written is counted and logged while flags keep
//! answering.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vexil_server::Settings;

use crate::support::TestApp;

fn saving_to(dir: &Path) -> Settings {
    Settings {
        snapshot_dir: Some(dir.to_owned()),
        snapshot_save_interval: Duration::from_millis(20),
        ..Settings::default()
    }
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    resp.text().await.unwrap()
}

#[tokio::test]
async fn definitions_are_saved_after_each_change() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = dir.path().join("snapshots");
    let app = TestApp::spawn_with(saving_to(&snapshots)).await;
    let file = snapshots.join(format!("project-{}.json", app.project.project.id));
    app.put_flag(
        "saved-beta",
        json!({"groups": [{"rollout_percentage": 100}]}),
    )
    .await;
    wait_for("the flag in the saved copy", async || {
        std::fs::read_to_string(&file).is_ok_and(|s| s.contains("saved-beta"))
    })
    .await;
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["format"], json!(1));
    assert_eq!(saved["project"]["api_token"], json!(app.token()));
    assert!(saved["revision"].as_i64().unwrap() >= 2, "{saved}");
    assert_eq!(saved["definitions"]["flags"][0]["key"], json!("saved-beta"));
    // Written through a temp file and renamed: nothing else is left in the directory.
    let names: Vec<String> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    app.stop().await;
}

#[tokio::test]
async fn an_unwritable_snapshot_dir_is_counted_and_flags_keep_answering() {
    // A directory under a regular file cannot be created, even by root.
    let file = tempfile::NamedTempFile::new().unwrap();
    let app = TestApp::spawn_with(saving_to(&file.path().join("snapshots"))).await;
    app.put_flag("still-on", json!({"groups": [{"rollout_percentage": 100}]}))
        .await;
    wait_for("a counted save failure", async || {
        metrics(&app).await.lines().any(|l| {
            l.strip_prefix("vexil_snapshot_save_failures_total ")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= 1)
        })
    })
    .await;
    let (status, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": "u"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["flags"]["still-on"]["enabled"], json!(true), "{body}");
    let ready = app.client.get(app.url("/_readiness")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    app.stop().await;
}
