//! Behavioural-cohort benchmark against a running `vexil serve` (see `bench/behavior.sh`): how
//! long after capture acknowledges an event the next `/flags` returns the flipped flag, over
//! many persons, and what the counters cost in memory per active person (measured in-process on
//! `MemoryCounters`).
//!
//! Usage: `behavior HOST PERSONAL_KEY PROJECT_TOKEN [TRIALS] [PERSONS]` (defaults 200, 100000).
//! Each trial is a new person: `/flags` (off), one `purchase` through `/batch/` (timed to its
//! acknowledgement), then `/flags` again (timed; it must be on, "performed purchase in the last
//! 5 minutes").
//!
//! Several nodes (`bench/behavior-redis.sh`): `FLAGS_HOST` sends the `/flags` checks to another
//! node than the capture (`HOST`), and `REDIS_URL` measures the counters' memory in that Redis
//! (`MEMORY USAGE` of every series, `used_memory` before and after) instead of in-process.

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
    if std::env::var("SETUP_ONLY").is_ok() {
        // Only create the cohort and flag (printed), for nodes started after it.
        latency(host, host, key, token, 0).await;
        return;
    }
    let persons: usize = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let flags_host = std::env::var("FLAGS_HOST").unwrap_or_else(|_| host.clone());
    latency(host, &flags_host, key, token, trials).await;
    match std::env::var("REDIS_URL") {
        Ok(url) => redis_memory(&url, persons).await,
        Err(_) => memory(persons).await,
    }
}

async fn latency(host: &str, flags_host: &str, key: &str, token: &str, trials: usize) {
    let client = Client::new();
    let api = |path: &str, body: Value| {
        client
            .post(format!("{host}/api/projects/@current/{path}"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let flag = match std::env::var("FLAG") {
        Ok(flag) => flag,
        Err(_) => create_flag(&api).await,
    };
    if std::env::var("SETUP_ONLY").is_ok() {
        println!("{flag}");
        return;
    }
    let flags = |person: String| {
        let client = client.clone();
        let flag = flag.clone();
        async move {
            let body: Value = client
                .post(format!("{flags_host}/flags?v=2"))
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
    let nodes = if flags_host == host {
        "one node".to_owned()
    } else {
        format!("capture on {host}, /flags on {flags_host}")
    };
    println!("capture -> flipped /flags, {trials} trials (new person each), loopback, {nodes}:");
    println!("  capture acknowledged:       {}", summary(&mut capture));
    println!(
        "  flipped /flags answered:    {} (from the capture request's start)",
        summary(&mut flip)
    );
    println!("  /flags after the ack still off: {late} of {trials}");
}

/// Creates "performed purchase in the last 5 minutes" and a flag on it; returns the flag's key.
async fn create_flag<F, Fut>(api: &F) -> String
where
    F: Fn(&str, Value) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
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
    flag
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

/// The same persons and events as [`memory`], recorded in Redis the way `SharedCounters` does
/// (one script call per 1,000 persons), measured by Redis itself.
async fn redis_memory(url: &str, persons: usize) {
    use vexil_cache::{CounterHit, Redis, RedisConfig};
    let mut config = RedisConfig::new(url);
    config.namespace = format!("vexil-bench-{}", Utc::now().timestamp_millis());
    config.timeout = Duration::from_secs(10);
    let redis = Redis::new(config).expect("Redis URL");
    let used = || async {
        let client = redis::Client::open(url).expect("Redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("Redis");
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await
            .expect("INFO");
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    // The track `SharedCounters` names "signature\nbucket seconds".
    let track = "{\"event\":\"purchase\",\"filters\":[]}\n10";
    let project = 1;
    let rebuild = redis
        .begin_rebuild(project, &[track], Duration::from_secs(60))
        .await
        .expect("rebuild")
        .expect("lease");
    assert!(redis.finish_rebuild(rebuild).await.expect("publish"));
    let now = Utc::now();
    let ids: Vec<String> = (0..persons).map(|i| format!("person-{i:08}")).collect();
    let before = used().await;
    let bucket = Resolution::Seconds10.bucket(now);
    for chunk in ids.chunks(1_000) {
        let hits: Vec<CounterHit<'_>> = chunk
            .iter()
            .flat_map(|id| {
                (0..3).map(move |k| CounterHit {
                    track,
                    distinct_id: id,
                    bucket: bucket - k,
                    count: 1,
                    oldest: bucket - 360,
                    max_buckets: 361,
                    ttl_seconds: 3_610,
                })
            })
            .collect();
        redis.record(project, &hits, false).await.expect("record");
    }
    let after = used().await;
    let (series, bytes) = redis.counter_memory(project).await.expect("MEMORY USAGE");
    println!(
        "counter memory in Redis, {persons} active persons x 1 signature (3 events each, 3 buckets, 10 s resolution):"
    );
    println!(
        "  MEMORY USAGE {:.0} bytes/person ({series} series); used_memory growth {:.0} bytes/person",
        bytes as f64 / persons as f64,
        after.saturating_sub(before) as f64 / persons as f64
    );
}
