//! Change-propagation benchmark across nodes (see `bench/propagation.sh`): a flag PATCHed
//! through node A, and how long after the PATCH was sent `/flags` on nodes B and C serves the
//! change (p50/p99 for each, and for "both").
//!
//! Usage: `propagation A_HOST B_HOST C_HOST PERSONAL_KEY PROJECT_TOKEN [FLAGS] [CHANGES]`
//! (defaults 1000 and 200). The project is first seeded through A with FLAGS copies of the 50
//! realistic templates (`vexil_bench::realistic_flags`), since a node reloads the whole project
//! for a change made elsewhere; the changes flip one plain rollout flag between 0 % and 100 %,
//! and B and C are polled back to back (one request in flight per node) until they answer
//! the new value.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

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
    }
    println!(
        "{changes} changes through A, project of {} flags",
        created + 1
    );
    println!("{}", summary("PATCH answered by A", acked));
    println!("{}", summary("visible on B", on_b));
    println!("{}", summary("visible on C", on_c));
    println!("{}", summary("visible on B and C", on_both));
}
