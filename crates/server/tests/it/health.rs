//! Health probes: readiness names the component that is down and never answers error text.

use serde_json::{json, Value};

use crate::support::TestApp;

async fn readiness(app: &TestApp) -> (u16, Value) {
    let resp = app.client.get(app.url("/_readiness")).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn readiness_names_what_is_down_without_error_text() {
    let app = TestApp::spawn().await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["components"], json!({"store": "up", "capture": "up"}));
    assert_eq!(
        (body["projects"].clone(), body["loaded"].clone()),
        (json!(1), json!(1))
    );

    // The capture writer stops: capture is down, the store still up.
    app.state.ingest.shutdown().await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({"status": "unavailable", "components": {"store": "up", "capture": "down"}})
    );

    // The database goes away (its pool closed): the store is down, and the answer says only that.
    app.store.close().await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({"status": "unavailable", "components": {"store": "down", "capture": "down"}}),
        "no error text, paths or counts"
    );
    let liveness = app.client.get(app.url("/_liveness")).send().await.unwrap();
    assert_eq!(liveness.status().as_u16(), 200);
    app.stop().await;
}
