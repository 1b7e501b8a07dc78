//! Bounded work before trust (issue 13, item 1): credentials checked before a body is read or
//! parsed, per-endpoint limits, and the decode budget shedding once full. (The memory bound under
//! 64 hostile bodies is measured on the real binary: `crates/vexil/tests/cli.rs`.)

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vexil_server::Settings;

use crate::support::TestApp;

/// Sends a request head announcing a `content_length`-byte body and `sent` bytes of it, then
/// returns the status answered within two seconds (the body-read timeout is 30 s, so an answer
/// means the server did not wait for the rest).
async fn status_before_body(app: &TestApp, head: &str, content_length: usize, sent: usize) -> u16 {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "{head}\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(&vec![b' '; sent]).await.unwrap();
    let mut buf = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
        .await
        .expect("answered before the body arrived")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line")
}

#[tokio::test]
async fn credentials_and_limits_are_checked_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    let bad_key = format!("Authorization: Bearer phx_{}", "x".repeat(40));
    let flags_path = "POST /api/projects/@current/feature_flags/ HTTP/1.1";
    assert_eq!(
        status_before_body(&app, &format!("{flags_path}\r\n{bad_key}"), 1_000_000, 10).await,
        401,
        "management: the key, then the body"
    );
    assert_eq!(
        status_before_body(
            &app,
            "POST /i/v1/analytics/events HTTP/1.1\r\nAuthorization: Bearer phc_unknown",
            1_000_000,
            10
        )
        .await,
        401,
        "capture v1: the header token, then the body"
    );
    assert_eq!(
        status_before_body(&app, "POST /flags?v=2 HTTP/1.1", 3 << 20, 10).await,
        413,
        "/flags: a declared length over the 2 MiB limit is refused unread"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_tokens_are_refused_before_the_body_is_parsed() {
    let app = TestApp::spawn().await;
    // Each body also has a field of the wrong type, which the full parse would report (400):
    // the token is checked first, on the unparsed text.
    let (status, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": "phc_unknown", "distinct_id": {"a": 1}}),
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (401, &json!("authentication_failed"))
    );
    let (status, _) = app
        .post(
            "/batch/",
            &json!({"api_key": "phc_unknown", "batch": [{"event": 5}]}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post("/e/", &json!([{"event": 5, "distinct_id": "d"}]))
        .await;
    assert_eq!(status, 401, "no token anywhere");
    // With a known token the same bodies reach the parser.
    let (status, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": {"a": 1}}),
        )
        .await;
    assert_eq!((status, &body["attr"]), (400, &json!(null)), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_full_decode_budget_sheds_with_503_and_frees_when_bodies_are_done() {
    let settings = Settings {
        decode_budget_bytes: 16 * 1024,
        ..Settings::default()
    };
    let app = TestApp::spawn_with(settings).await;
    let flags = json!({"token": app.token(), "distinct_id": "u"});
    assert_eq!(app.post("/flags?v=2", &flags).await.0, 200);
    // A slow sender holds the whole budget with the part of its body it has sent.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /batch/ HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        app.addr
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&vec![b' '; 16 * 1024]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = app
        .client
        .post(app.url("/flags?v=2"))
        .json(&flags)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], json!("overloaded"));
    drop(slow);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.post("/flags?v=2", &flags).await.0, 200, "released");
    app.stop().await;
}
