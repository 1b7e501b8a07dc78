//! Changes made by another process on the same SQLite file (`vexil project create`, another
//! store handle) reach the running server through the periodic revision check: SQLite has no
//! change feed. The PostgreSQL cluster (three real nodes, announcements, a lost connection) is
//! tested with the binary, in `crates/vexil/tests/cluster.rs`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vexil_server::Settings;
use vexil_store::NewFlag;

use crate::support::TestApp;

/// `/flags` for the distinct id `u1`: the status and the `flags` map.
async fn flags(app: &TestApp, token: &str) -> (u16, Value) {
    let (status, body) = app
        .post(
            "/flags/?v=2",
            &json!({"api_key": token, "distinct_id": "u1"}),
        )
        .await;
    (status, body["flags"].clone())
}

/// Polls `/flags` until `holds` accepts it; fails after a bound (not a timing check).
async fn eventually(app: &TestApp, token: &str, what: &str, holds: impl Fn(u16, &Value) -> bool) {
    let start = Instant::now();
    loop {
        let (status, flags) = flags(app, token).await;
        if holds(status, &flags) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not within 20 s: {what} ({status} {flags})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn another_process_s_changes_arrive_through_the_revision_check() {
    let app = TestApp::spawn_with(Settings {
        revision_check_interval: Duration::from_millis(50),
        ..Settings::default()
    })
    .await;
    let other = vexil_store::open_data_dir(app.data_dir()).await.unwrap();
    let project = app.project.project.id;
    let everyone = json!({"groups": [{"properties": [], "rollout_percentage": 100}]});
    let flag = other
        .create_flag(project, &NewFlag::new("beta", everyone))
        .await
        .unwrap();
    eventually(&app, app.token(), "a flag created elsewhere", |_, f| {
        f["beta"]["enabled"] == json!(true)
    })
    .await;
    other
        .delete_flag(project, flag.id, None, None)
        .await
        .unwrap();
    eventually(&app, app.token(), "a flag deleted elsewhere", |_, f| {
        f.get("beta").is_none()
    })
    .await;

    let created = other.create_project("Elsewhere").await.unwrap();
    eventually(
        &app,
        &created.project.api_token,
        "a project created elsewhere",
        |status, _| status == 200,
    )
    .await;
    other.close().await;
    app.stop().await;
}
