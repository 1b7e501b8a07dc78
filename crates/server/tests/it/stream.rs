//! Change streams through the live server: `/flags/definitions/stream` (the full payload on
//! connect, a change event per committed change, `Last-Event-ID` replay, the full payload for a
//! too-old id, heartbeats, auth, the stream cap, shutdown) and the OFREP stream advertised by
//! bulk responses.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use vexil_server::{Settings, StreamLimits};

use vexil_testkit::sse::{Event, Sse};

use crate::support::TestApp;

const FLAGS: &str = "/api/projects/@current/feature_flags/";
const COHORTS: &str = "/api/projects/@current/cohorts/";

fn definitions_stream(app: &TestApp) -> String {
    format!("/flags/definitions/stream?token={}", app.token())
}

fn secret(app: &TestApp) -> String {
    format!("Bearer {}", app.project.secret_key)
}

async fn definitions(app: &TestApp) -> (String, String) {
    let response = app
        .client
        .get(app.url(&format!("/flags/definitions?token={}", app.token())))
        .bearer_auth(&app.project.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    (etag, response.text().await.unwrap())
}

async fn create_flag(app: &TestApp, key: &str) -> i64 {
    let (status, flag) = app
        .api(
            Method::POST,
            FLAGS,
            Some(&json!({"key": key, "filters": {"groups": [{"rollout_percentage": 100}]}})),
        )
        .await;
    assert_eq!(status, 201, "{flag}");
    flag["id"].as_i64().unwrap()
}

async fn patch_flag(app: &TestApp, id: i64, body: Value) {
    let (status, flag) = app
        .api(Method::PATCH, &format!("{FLAGS}{id}/"), Some(&body))
        .await;
    assert_eq!(status, 200, "{flag}");
}

/// The `definitions` event carries the exact `/flags/definitions` body and its ETag.
fn assert_full_payload(event: &Event, etag: &str, body: &str) {
    assert_eq!(event.event, "definitions");
    let data = event.json();
    assert_eq!(data["etag"], etag);
    let prefix = format!(
        "{{\"etag\":{},\"revision\":{},\"definitions\":",
        serde_json::to_string(etag).unwrap(),
        data["revision"]
    );
    assert_eq!(
        event.data,
        format!("{prefix}{body}}}"),
        "the payload is the body byte for byte"
    );
    assert_eq!(
        event.id.as_deref(),
        Some(data["revision"].to_string().as_str())
    );
}

#[tokio::test]
async fn definitions_stream_sends_the_payload_then_each_change_and_replays_what_was_missed() {
    let app = TestApp::spawn().await;
    let first = create_flag(&app, "first").await;
    let (etag, body) = definitions(&app).await;

    let mut stream = Sse::open(
        &app.client,
        &app.url(&definitions_stream(&app)),
        &[("authorization", &secret(&app))],
    )
    .await;
    assert_eq!(stream.headers()["etag"], etag.as_str());
    let payload = stream.next().await;
    assert_full_payload(&payload, &etag, &body);
    let connected_at: i64 = payload.id.clone().unwrap().parse().unwrap();

    // A change through the management API: one event naming the flag, with the new ETag.
    let second = create_flag(&app, "second").await;
    let created = stream.next().await;
    let (etag_after, _) = definitions(&app).await;
    assert_ne!(etag_after, etag);
    assert_eq!(created.event, "change");
    let data = created.json();
    assert_eq!(
        (&data["type"], &data["action"], &data["key"], &data["id"]),
        (
            &json!("flag"),
            &json!("created"),
            &json!("second"),
            &json!(second)
        )
    );
    assert_eq!(data["etag"], etag_after.as_str());
    let seen: i64 = created.id.clone().unwrap().parse().unwrap();
    assert!(seen > connected_at, "ids grow: {seen} after {connected_at}");
    assert_eq!(data["revision"], seen);
    drop(stream);

    // Three changes while disconnected: an update, a deletion, a cohort.
    patch_flag(&app, first, json!({"active": false})).await;
    patch_flag(&app, second, json!({"deleted": true})).await;
    let (status, cohort) = app
        .api(
            Method::POST,
            COHORTS,
            Some(
                &json!({"name": "Pros", "filters": {"properties": {"type": "AND", "values": [
                {"key": "plan", "value": "pro", "type": "person"}]}}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{cohort}");
    let (etag_now, body_now) = definitions(&app).await;

    // Reconnecting with Last-Event-ID: exactly those three, in order, then live again.
    let last = seen.to_string();
    let mut stream = Sse::open(
        &app.client,
        &app.url(&definitions_stream(&app)),
        &[("authorization", &secret(&app)), ("last-event-id", &last)],
    )
    .await;
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(stream.next().await);
    }
    let summary: Vec<(Value, Value, Value)> = missed
        .iter()
        .map(|e| {
            let d = e.json();
            (d["type"].clone(), d["action"].clone(), d["key"].clone())
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("flag"), json!("updated"), json!("first")),
            (json!("flag"), json!("deleted"), json!("second")),
            (
                json!("cohort"),
                json!("created"),
                cohort["id"].to_string().into()
            ),
        ]
    );
    assert!(missed.iter().all(|e| e.event == "change"));
    assert_eq!(missed[2].json()["etag"], etag_now.as_str());
    assert!(
        stream.quiet_for(Duration::from_millis(300)).await.is_none(),
        "nothing beyond what was missed"
    );
    patch_flag(&app, first, json!({"active": true})).await;
    let live = stream.next().await;
    assert_eq!(live.json()["key"], "first");
    drop(stream);

    // The latest id: nothing to replay. No id: the full payload.
    let latest = live.id.unwrap();
    let mut stream = Sse::open(
        &app.client,
        &app.url(&definitions_stream(&app)),
        &[("authorization", &secret(&app)), ("last-event-id", &latest)],
    )
    .await;
    assert!(stream.quiet_for(Duration::from_millis(300)).await.is_none());
    let (etag_now, body_now_2) = definitions(&app).await;
    assert_ne!(body_now, body_now_2);
    let mut fresh = Sse::open(
        &app.client,
        &app.url(&definitions_stream(&app)),
        &[("authorization", &secret(&app))],
    )
    .await;
    assert_full_payload(&fresh.next().await, &etag_now, &body_now_2);
}

#[tokio::test]
async fn a_last_event_id_older_than_the_replay_ring_gets_the_full_payload() {
    let app = TestApp::spawn_with(Settings {
        streams: StreamLimits {
            replay: 2,
            ..StreamLimits::default()
        },
        ..Settings::default()
    })
    .await;
    let mut stream = Sse::open(
        &app.client,
        &app.url(&definitions_stream(&app)),
        &[("authorization", &secret(&app))],
    )
    .await;
    let start = stream.next().await.id.unwrap();
    let mut ids = Vec::new();
    for key in ["a", "b", "c"] {
        create_flag(&app, key).await;
        ids.push(stream.next().await.id.unwrap());
    }
    let (etag, body) = definitions(&app).await;
    // The ring holds the last two: from the first change on, they replay.
    let mut replayed = Sse::open(
        &app.client,
        &app.url(&definitions_stream(&app)),
        &[("authorization", &secret(&app)), ("last-event-id", &ids[0])],
    )
    .await;
    let keys = [
        replayed.next().await.json()["key"].clone(),
        replayed.next().await.json()["key"].clone(),
    ];
    assert_eq!(keys, [json!("b"), json!("c")]);
    // From before the first change: too old, the full payload instead.
    let mut full = Sse::open(
        &app.client,
        &app.url(&definitions_stream(&app)),
        &[("authorization", &secret(&app)), ("last-event-id", &start)],
    )
    .await;
    assert_full_payload(&full.next().await, &etag, &body);
    assert!(full.quiet_for(Duration::from_millis(200)).await.is_none());
}

#[tokio::test]
async fn idle_streams_get_heartbeats_and_shutdown_ends_them() {
    let app = TestApp::spawn_with(Settings {
        streams: StreamLimits {
            heartbeat: Duration::from_millis(50),
            ..StreamLimits::default()
        },
        ..Settings::default()
    })
    .await;
    let mut stream = Sse::open(
        &app.client,
        &app.url(&definitions_stream(&app)),
        &[("authorization", &secret(&app))],
    )
    .await;
    stream.next().await;
    // A heartbeat is a comment: no event, but bytes on the wire.
    assert!(stream.quiet_for(Duration::from_millis(400)).await.is_none());
    assert!(
        stream.comments.iter().filter(|c| *c == "heartbeat").count() >= 2,
        "{:?}",
        stream.comments
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "vexil_streams_open 1"),
        "{metrics}"
    );
    // A graceful stop returns although a stream is open: the stream ends.
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("shutdown waited for the stream");
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        stream.until_closed().await;
    })
    .await;
    assert!(rest.is_ok(), "the stream did not end");
}

#[tokio::test]
async fn streams_need_the_definitions_keys_and_are_capped() {
    let app = TestApp::spawn_with(Settings {
        streams: StreamLimits {
            max_streams: 1,
            ..StreamLimits::default()
        },
        ..Settings::default()
    })
    .await;
    let get = |path: String, headers: Vec<(&'static str, String)>| {
        let mut request = app.client.get(app.url(&path));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    // No key, a project token as the key, a wrong token, a bad Last-Event-ID.
    let cases = [
        (definitions_stream(&app), vec![], 401),
        (
            definitions_stream(&app),
            vec![("authorization", format!("Bearer {}", app.token()))],
            401,
        ),
        (
            "/flags/definitions/stream?token=phc_nope".to_owned(),
            vec![("authorization", secret(&app))],
            401,
        ),
        (
            definitions_stream(&app),
            vec![
                ("authorization", secret(&app)),
                ("last-event-id", "yesterday".to_owned()),
            ],
            400,
        ),
        ("/ofrep/v1/stream".to_owned(), vec![], 401),
        ("/ofrep/v1/stream?token=phc_nope".to_owned(), vec![], 401),
    ];
    for (path, headers, status) in cases {
        let response = get(path.clone(), headers).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["detail"].is_string(), "{body}");
    }
    // The personal key works too (as for /flags/definitions).
    let personal = format!("Bearer {}", app.personal_key());
    let mut open = Sse::open(
        &app.client,
        &app.url(&definitions_stream(&app)),
        &[("authorization", &personal)],
    )
    .await;
    open.next().await;
    // One stream at most: the next is refused, and accepted once the first is gone.
    let refused = get(
        definitions_stream(&app),
        vec![("authorization", secret(&app))],
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    drop(open);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let response = get(
            definitions_stream(&app),
            vec![("authorization", secret(&app))],
        )
        .await
        .unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ofrep_bulk_responses_advertise_a_stream_of_refetch_evaluation_events() {
    let app = TestApp::spawn().await;
    let id = create_flag(&app, "banner").await;
    // As a provider re-fetches after an event: the SSE metadata in the query is accepted.
    let response = app
        .client
        .post(app.url("/ofrep/v1/evaluate/flags?flagConfigEtag=%22x%22&flagConfigLastModified=1"))
        .bearer_auth(app.token())
        .json(&json!({"context": {"targetingKey": "u1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bulk: Value = response.json().await.unwrap();
    let streams = bulk["eventStreams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0]["type"], "sse");
    let uri = streams[0]["endpoint"]["requestUri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(uri, format!("/ofrep/v1/stream?token={}", app.token()));

    // The provider connects to origin + requestUri, without headers (as EventSource does).
    let mut stream = Sse::open(&app.client, &app.url(&uri), &[]).await;
    patch_flag(&app, id, json!({"active": false})).await;
    let event = stream.next().await;
    let (etag, _) = definitions(&app).await;
    assert_eq!(
        event.event, "message",
        "the ADR's envelope event is always `message`"
    );
    let data = event.json();
    assert_eq!(data["type"], "refetchEvaluation");
    assert_eq!(data["etag"], etag.as_str());
    assert!(data["lastModified"].as_i64().unwrap() > 1_700_000_000);
    let seen = event.id.unwrap();
    drop(stream);

    // Two changes missed: one refetchEvaluation (the latest) on reconnect, none without news.
    patch_flag(&app, id, json!({"active": true})).await;
    create_flag(&app, "other").await;
    let mut stream = Sse::open(&app.client, &app.url(&uri), &[("last-event-id", &seen)]).await;
    let resumed = stream.next().await;
    assert_eq!(resumed.json()["type"], "refetchEvaluation");
    assert!(stream.quiet_for(Duration::from_millis(300)).await.is_none());
    let mut idle = Sse::open(
        &app.client,
        &app.url(&uri),
        &[("last-event-id", resumed.id.as_deref().unwrap())],
    )
    .await;
    assert!(idle.quiet_for(Duration::from_millis(300)).await.is_none());
    // The token may come in a header instead.
    let auth = format!("Bearer {}", app.token());
    let mut by_header = Sse::open(
        &app.client,
        &app.url("/ofrep/v1/stream"),
        &[("authorization", &auth)],
    )
    .await;
    create_flag(&app, "third").await;
    assert_eq!(by_header.next().await.json()["type"], "refetchEvaluation");
}
