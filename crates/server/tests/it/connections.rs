//! Connection hygiene through the live server: half-sent heads, idle connections and slow
//! bodies are cut off by their timeouts, and the connection cap holds, while ordinary requests
//! keep being answered.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vexil_server::{ConnectionLimits, Settings};

use crate::support::TestApp;

fn with_limits(limits: ConnectionLimits) -> Settings {
    Settings {
        connections: limits,
        ..Settings::default()
    }
}

/// Reads until the server closes `stream`; returns what it sent, or `None` if it stayed open
/// for `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| got)
}

async fn flags_ok(app: &TestApp) -> Duration {
    let started = Instant::now();
    let (status, body) = app
        .post(
            "/flags?v=2",
            &json!({"token": app.token(), "distinct_id": "u"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    started.elapsed()
}

// Two workers: the test's own 2,000 sockets must not starve the server it measures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_half_sent_heads_neither_stop_service_nor_stay_open() {
    let header_read_timeout = Duration::from_millis(3_000);
    let app = TestApp::spawn_with(with_limits(ConnectionLimits {
        header_read_timeout,
        ..ConnectionLimits::default()
    }))
    .await;
    let mut slow = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"POST /flags HTTP/1.1\r\nHost: vexil\r\nContent-Type: appl")
            .await
            .unwrap();
        slow.push(stream);
    }
    let took = flags_ok(&app).await;
    assert!(took < Duration::from_secs(1), "answered in {took:?}");

    let deadline = Instant::now() + header_read_timeout + Duration::from_secs(3);
    for stream in &mut slow {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            closed_within(stream, left).await.is_some(),
            "a half-sent head still open after the header-read timeout"
        );
    }
    flags_ok(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_timeout() {
    let header_read_timeout = Duration::from_millis(500);
    let app = TestApp::spawn_with(with_limits(ConnectionLimits {
        header_read_timeout,
        ..ConnectionLimits::default()
    }))
    .await;
    // One that never says anything, one kept alive after a request.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut kept = TcpStream::connect(app.addr).await.unwrap();
    kept.write_all(b"GET /_liveness HTTP/1.1\r\nHost: vexil\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(3))
        .await
        .is_some());
    assert!(closed_within(&mut kept, Duration::from_secs(3))
        .await
        .is_some());
    assert!(started.elapsed() >= header_read_timeout - Duration::from_millis(100));
    app.stop().await;
}

#[tokio::test]
async fn a_body_slower_than_the_timeout_is_answered_408() {
    let app = TestApp::spawn_with(with_limits(ConnectionLimits {
        body_read_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    }))
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"POST /flags HTTP/1.1\r\nHost: vexil\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"token\":")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("still open long after the body-read timeout");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    flags_ok(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_for_a_free_slot() {
    let app = TestApp::spawn_with(with_limits(ConnectionLimits {
        max_connections: 20,
        ..ConnectionLimits::default()
    }))
    .await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = app
        .client
        .get(app.url("/_liveness"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(waiting.is_err(), "answered past the connection cap");
    drop(held);
    let resp = app.client.get(app.url("/_liveness")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    app.stop().await;
}
