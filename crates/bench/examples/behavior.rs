//! Behavioural-cohort benchmark against a running `vexil serve` (see `bench/behavior.sh`): how
//! long after capture acknowledges an event the next `/flags` returns the flipped flag, over
//! many persons, and what the counters cost in memory per active person (measured in-process on
//! `MemoryCounters`).
//!
//! Usage: `behavior HOST PERSONAL_KEY PROJECT_TOKEN [TRIALS] [PERSONS]` (defaults 200, 100000).
//! Each trial is a new person: `/flags` (off), one `purchase` through `/batch/` (timed to its
//! acknowledgement), then `/flags` again (timed; it must be on, "performed purchase in the last
//! 5 minutes").

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::Client;
use serde_json::{json, Value};
use vexil_engine::behavior::Resolution;
use vexil_server::behavior::{Counters, Hit, MemoryCounters, Origin, Track};
use vexil_store::ProjectId;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, key, token, ..] = &args[..] else {
        eprintln!("usage: behavior HOST PERSONAL_KEY PROJECT_TOKEN [TRIALS] [PERSONS]");
        std::process::exit(2);
    };
    let trials: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(200);
    let persons: usize = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    latency(host, key, token, trials).await;
    memory(persons).await;
}

async fn latency(host: &str, key: &str, token: &str, trials: usize) {
    let client = Client::new();
    let api = |path: &str, body: Value| {
        client
            .post(format!("{host}/api/projects/@current/{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let cohort: Value = api("cohorts/", json!({"name": "bench buyers", "filters": {"properties": {"type": "AND", "values": [
        {"key": "purchase", "type": "behavioral", "value": "performed_event", "event_type": "events",
         "time_value": 5, "time_interval": "minute"}]}}}))
        .await
        .expect("cohort")
        .json()
        .await
        .expect("cohort body");
    let flag = format!("bench-buyer-{}", Utc::now().timestamp_millis());
    api(
        "feature_flags/",
        json!({"key": flag, "filters": {"groups": [{"properties": [
        {"key": "id", "type": "cohort", "value": cohort["id"]}], "rollout_percentage": 100}]}}),
    )
    .await
    .expect("flag");
    let flags = |person: String| {
        let client = client.clone();
        let flag = flag.clone();
        async move {
            let body: Value = client
                .post(format!("{host}/flags?v=2"))
                .json(&json!({"token": token, "distinct_id": person, "flag_keys_to_evaluate": [flag]}))
                .send()
                .await
                .expect("flags")
                .json()
                .await
                .expect("flags body");
            body["flags"][&flag]["enabled"].as_bool() == Some(true)
        }
    };
    let run = Utc::now().timestamp_millis();
    let (mut capture, mut flip) = (Vec::new(), Vec::new());
    let mut late = 0;
    for i in 0..trials {
        let person = format!("bench-{run}-{i}");
        assert!(!flags(person.clone()).await, "on before any purchase");
        let sent = Instant::now();
        let status = client
            .post(format!("{host}/batch/"))
            .json(
                &json!({"api_key": token, "batch": [{"event": "purchase", "distinct_id": person,
                          "timestamp": Utc::now().to_rfc3339()}]}),
            )
            .send()
            .await
            .expect("capture")
            .status();
        assert!(status.is_success(), "capture: {status}");
        let acked = Instant::now();
        let on = flags(person).await;
        let answered = Instant::now();
        if !on {
            late += 1;
        }
        capture.push(acked - sent);
        flip.push(answered - sent);
    }
    println!("capture -> flipped /flags, {trials} trials (new person each), loopback:");
    println!("  capture acknowledged:       {}", summary(&mut capture));
    println!(
        "  flipped /flags answered:    {} (from the capture request's start)",
        summary(&mut flip)
    );
    println!("  /flags after the ack still off: {late} of {trials}");
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    )
}

/// Resident set size in bytes (Linux).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

async fn memory(persons: usize) {
    let counters = MemoryCounters::new();
    let project = ProjectId(1);
    let track = Track {
        signature: r#"{"event":"purchase","filters":[]}"#.into(),
        resolution: Resolution::Seconds10,
    };
    counters
        .retain(project, std::slice::from_ref(&track))
        .await
        .expect("retain");
    let now = Utc::now();
    let ids: Vec<String> = (0..persons).map(|i| format!("person-{i:08}")).collect();
    let before = rss();
    // Three events per person, in three different 10-second buckets.
    for chunk in ids.chunks(1_000) {
        let hits: Vec<Hit<'_>> = chunk
            .iter()
            .flat_map(|id| {
                (0..3).map(|k| Hit {
                    distinct_id: id,
                    track: &track,
                    at: now - chrono::Duration::seconds(10 * k),
                })
            })
            .collect();
        counters
            .record(project, &hits, now, Origin::Live)
            .await
            .expect("record");
    }
    let after = rss();
    let f = counters.footprint();
    println!(
        "counter memory, {persons} active persons x 1 signature (3 events each, 3 buckets, 10 s resolution):"
    );
    println!(
        "  estimated heap {:.0} bytes/person ({} series, {} buckets); RSS growth {:.0} bytes/person",
        f.bytes as f64 / persons as f64,
        f.series,
        f.buckets,
        after.saturating_sub(before) as f64 / persons as f64
    );
}
