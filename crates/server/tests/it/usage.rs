//! Flag usage: server evaluations counted in memory and added to the store by day,
//! periodically and at shutdown, summing over nodes; `last_called_at` and staleness see them.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use vexil_server::Settings;
use vexil_store::{Day, UsageDay};

use crate::support::TestApp;

fn rolled_out() -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": 100}]})
}

/// A node that writes its counts only when it stops.
fn writes_at_shutdown() -> Settings {
    Settings {
        usage_flush_interval: Duration::from_secs(3_600),
        ..Settings::default()
    }
}

async fn flags(app: &TestApp, distinct_id: &str) {
    let (status, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": distinct_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn ofrep(app: &TestApp, key: &str) {
    let resp = app
        .client
        .post(app.url(&format!("/ofrep/v1/evaluate/flags/{key}")))
        .bearer_auth(app.token())
        .json(&json!({"context": {"targetingKey": "u1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn today(evaluations: u64, key: &str) -> UsageDay {
    UsageDay {
        flag_key: key.into(),
        day: Day::of(Utc::now()),
        evaluations,
        calls: 0,
    }
}

#[tokio::test]
async fn evaluations_of_every_node_are_added_by_day_at_shutdown() {
    let app = TestApp::spawn_with(writes_at_shutdown()).await;
    let project = app.project.clone();
    app.put_flag("a", rolled_out()).await;
    app.put_flag("b", rolled_out()).await;
    for i in 0..3 {
        flags(&app, &format!("u{i}")).await;
    }
    ofrep(&app, "a").await;
    assert!(
        app.store
            .flag_usage(project.project.id, &["a", "b"], Day::of(Utc::now()))
            .await
            .unwrap()
            .is_empty(),
        "nothing written per request"
    );
    let dir = app.stop_keeping_data().await;

    // A second node on the same database adds its own counts.
    let app = TestApp::respawn(dir, project.clone(), writes_at_shutdown()).await;
    flags(&app, "u9").await;
    let (status, flag) = app
        .api(
            reqwest::Method::GET,
            "/api/projects/@current/feature_flags/?search=b",
            None,
        )
        .await;
    assert_eq!(status, 200, "{flag}");
    assert!(
        flag["results"][0]["last_called_at"].is_string(),
        "evaluated by a server: {flag}"
    );
    let dir = app.stop_keeping_data().await;
    let store_after = vexil_store::open_data_dir(dir.path()).await.unwrap();
    let usage = store_after
        .flag_usage(
            project.project.id,
            &["a", "b"],
            Day::of(Utc::now()).minus(1),
        )
        .await
        .unwrap();
    assert_eq!(usage, vec![today(5, "a"), today(4, "b")]);
    let last = store_after
        .last_flag_evaluations(project.project.id)
        .await
        .unwrap();
    assert!(last.contains_key("a") && last.contains_key("b"), "{last:?}");
    store_after.close().await;
}

#[tokio::test]
async fn evaluations_are_added_periodically_while_serving() {
    let app = TestApp::spawn_with(Settings {
        usage_flush_interval: Duration::from_millis(20),
        ..Settings::default()
    })
    .await;
    let project = app.project.project.id;
    app.put_flag("a", rolled_out()).await;
    flags(&app, "u1").await;
    flags(&app, "u2").await;
    // A flush may fall between the two requests (1, then 2): wait for both to be counted.
    let mut usage = Vec::new();
    for _ in 0..500 {
        usage = app
            .store
            .flag_usage(project, &["a"], Day::of(Utc::now()))
            .await
            .unwrap();
        if usage == vec![today(2, "a")] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(usage, vec![today(2, "a")]);
    // Later writes add only what grew since: 2 + 1, not 2 + 3.
    flags(&app, "u3").await;
    for _ in 0..500 {
        usage = app
            .store
            .flag_usage(project, &["a"], Day::of(Utc::now()))
            .await
            .unwrap();
        if usage != vec![today(2, "a")] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(usage, vec![today(3, "a")]);
    let store = app.store.clone();
    app.stop().await;
    let usage = store
        .flag_usage(project, &["a"], Day::of(Utc::now()))
        .await
        .unwrap();
    assert_eq!(usage, vec![today(3, "a")], "nothing more at shutdown");
}
