//! Change-propagation benchmark across nodes (see `bench/propagation.sh`): a flag PATCHed
//! through node A, and how long after the PATCH was sent `/flags` on nodes B and C serves the
//! change (p50/p99 for each, and for "both").
//!
//! Usage: `propagation A_HOST B_HOST C_HOST PERSONAL_KEY PROJECT_TOKEN [FLAGS] [CHANGES]`
//! (defaults 1000 and 200). The project is first seeded through A with FLAGS copies of the 50
//! realistic templates (`vexil_bench::realistic_flags`), so that a node reloading the whole
//! project instead of applying the changed flag would show; the changes flip one plain
//! rollout flag between 0 % and 100 %, and B and C are polled back to back (one request in
//! flight per node) until they answer the new value. With `SECRET_KEY` set (the project's
//! secret key), a client also streams `/flags/definitions/stream` from B and from C, and the
//! time from the PATCH being sent to each stream's `change` event is reported too.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

const PROBE: &str = "propagation-probe";

fn rollout(percentage: u32) -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": percentage}]})
}

fn flags_url(host: &str) -> String {
    format!("{host}/api/projects/@current/feature_flags/")
}

/// Whether `/flags` on `host` says the probe is enabled for the benchmark user.
async fn enabled(client: &Client, host: &str, token: &str) -> bool {
    let body: Value = client
        .post(format!("{host}/flags?v=2"))
        .json(&json!({"token": token, "distinct_id": "bench-user", "flag_keys": [PROBE]}))
        .send()
        .await
        .expect("flags")
        .json()
        .await
        .expect("flags body");
    body["flags"][PROBE]["enabled"] == true
}

/// Polls `host` until the probe is `on`; the time since `sent`.
async fn visible(client: Client, host: String, token: String, on: bool, sent: Instant) -> Duration {
    loop {
        if enabled(&client, &host, &token).await == on {
            return sent.elapsed();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "change never reached {host}"
        );
    }
}

/// Streams `/flags/definitions/stream` from `host`: sends `()` once the full payload arrived,
/// then the arrival time of every `change` event.
async fn stream_changes(
    client: Client,
    host: String,
    token: String,
    secret: String,
    events: mpsc::UnboundedSender<Option<Instant>>,
) {
    let mut response = client
        .get(format!("{host}/flags/definitions/stream?token={token}"))
        .bearer_auth(secret)
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), StatusCode::OK, "stream from {host}");
    let mut buffer = String::new();
    while let Some(chunk) = response.chunk().await.expect("stream chunk") {
        let at = Instant::now();
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let sent = match block.lines().find_map(|l| l.strip_prefix("event: ")) {
                Some("definitions") => events.send(None),
                Some("change") => events.send(Some(at)),
                _ => Ok(()),
            };
            if sent.is_err() {
                return;
            }
        }
    }
}

/// The next change event's arrival on `events`, as time since `sent`.
async fn next_event(
    events: &mut mpsc::UnboundedReceiver<Option<Instant>>,
    sent: Instant,
) -> Duration {
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("no change event within 10 s")
        .expect("stream ended");
    event
        .expect("a change event")
        .saturating_duration_since(sent)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    format!(
        "{name}: p50 {}, p99 {}, max {}",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().expect("samples"))
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!(
            "usage: propagation A_HOST B_HOST C_HOST PERSONAL_KEY PROJECT_TOKEN [FLAGS] [CHANGES]"
        );
        std::process::exit(2);
    }
    let (a, b, c) = (args[1].clone(), args[2].clone(), args[3].clone());
    let (key, token) = (args[4].clone(), args[5].clone());
    let flags: usize = args.get(6).map_or(1_000, |n| n.parse().expect("FLAGS"));
    let changes: usize = args.get(7).map_or(200, |n| n.parse().expect("CHANGES"));
    let client = Client::new();

    let mut created = 0;
    let mut salt = 1;
    while created < flags {
        for template in vexil_bench::realistic_flags(salt) {
            if created == flags {
                break;
            }
            let status = client
                .post(flags_url(&a))
                .bearer_auth(&key)
                .json(&json!({"key": template["key"], "filters": template["filters"]}))
                .send()
                .await
                .expect("create")
                .status();
            // Templates the write rules refuse are skipped, as in the write benchmark.
            if status == StatusCode::CREATED {
                created += 1;
            }
        }
        salt += 1;
    }
    let probe: Value = client
        .post(flags_url(&a))
        .bearer_auth(&key)
        .json(&json!({"key": PROBE, "filters": rollout(0)}))
        .send()
        .await
        .expect("create probe")
        .json()
        .await
        .expect("probe body");
    let id = probe["id"].as_i64().expect("probe id");
    for host in [&b, &c] {
        visible(
            client.clone(),
            host.clone(),
            token.clone(),
            false,
            Instant::now(),
        )
        .await;
    }

    // Streams from B and C, each connected (its full payload received) before the changes.
    let mut streams = Vec::new();
    if let Ok(secret) = std::env::var("SECRET_KEY") {
        for host in [&b, &c] {
            let (tx, mut rx) = mpsc::unbounded_channel();
            tokio::spawn(stream_changes(
                client.clone(),
                host.clone(),
                token.clone(),
                secret.clone(),
                tx,
            ));
            let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            assert!(matches!(first, Ok(Some(None))), "no payload from {host}");
            streams.push(rx);
        }
    }
    let (mut event_b, mut event_c) = (vec![], vec![]);
    let (mut on_b, mut on_c, mut on_both, mut acked) = (vec![], vec![], vec![], vec![]);
    for i in 0..changes {
        let on = i % 2 == 0;
        let sent = Instant::now();
        let poll_b = tokio::spawn(visible(client.clone(), b.clone(), token.clone(), on, sent));
        let poll_c = tokio::spawn(visible(client.clone(), c.clone(), token.clone(), on, sent));
        let status = client
            .patch(format!("{}{id}/", flags_url(&a)))
            .bearer_auth(&key)
            .json(&json!({"filters": rollout(if on { 100 } else { 0 })}))
            .send()
            .await
            .expect("patch")
            .status();
        acked.push(sent.elapsed());
        assert_eq!(status, StatusCode::OK);
        let (tb, tc) = (poll_b.await.expect("B"), poll_c.await.expect("C"));
        on_b.push(tb);
        on_c.push(tc);
        on_both.push(tb.max(tc));
        if let [sb, sc] = &mut streams[..] {
            event_b.push(next_event(sb, sent).await);
            event_c.push(next_event(sc, sent).await);
        }
    }
    println!(
        "{changes} changes through A, project of {} flags",
        created + 1
    );
    println!("{}", summary("PATCH answered by A", acked));
    println!("{}", summary("visible on B", on_b));
    println!("{}", summary("visible on C", on_c));
    println!("{}", summary("visible on B and C", on_both));
    if !event_b.is_empty() {
        let both: Vec<Duration> = event_b
            .iter()
            .zip(&event_c)
            .map(|(x, y)| *x.max(y))
            .collect();
        println!("{}", summary("change event on a stream from B", event_b));
        println!("{}", summary("change event on a stream from C", event_c));
        println!("{}", summary("change event on both streams", both));
    }
}
