//! Write benchmark against a running `vexil serve` (see `bench/writes.sh`): how long creating
//! flags one by one takes, how long after a PATCH is sent `/flags` serves the change, and how
//! concurrent PATCHes without `version` fare.
//!
//! Usage: `writes HOST PERSONAL_KEY PROJECT_TOKEN [FLAGS] [PATCHES]` (defaults 10000, 200).
//! Flags are copies of the 50 realistic templates (`vexil_bench::realistic_flags`); the
//! PATCHed flags are plain rollouts flipped between 0 % and 100 %, and a change counts as
//! visible when `/flags?v=2` (asked for that flag only) returns the new value.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

struct Api {
    client: Client,
    host: String,
    key: String,
    token: String,
}

impl Api {
    fn flags_url(&self) -> String {
        format!("{}/api/projects/@current/feature_flags/", self.host)
    }

    /// Creates a flag; `None` when the API refuses it (a template the write rules reject).
    async fn create(&self, body: &Value) -> Option<Value> {
        let response = self
            .client
            .post(self.flags_url())
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .expect("create");
        let status = response.status();
        let body: Value = response.json().await.expect("create body");
        if status == StatusCode::BAD_REQUEST {
            return None;
        }
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Some(body)
    }

    async fn patch(&self, id: i64, body: &Value) -> StatusCode {
        self.client
            .patch(format!("{}{id}/", self.flags_url()))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .expect("patch")
            .status()
    }

    /// Whether `/flags` currently says `key` is enabled for the benchmark user.
    async fn enabled(&self, key: &str) -> bool {
        let body: Value = self
            .client
            .post(format!("{}/flags?v=2", self.host))
            .json(&json!({"token": self.token, "distinct_id": "bench-user", "flag_keys": [key]}))
            .send()
            .await
            .expect("flags")
            .json()
            .await
            .expect("flags body");
        body["flags"][key]["enabled"] == true
    }
}

fn rollout(percentage: u32) -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": percentage}]})
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: writes HOST PERSONAL_KEY PROJECT_TOKEN [FLAGS] [PATCHES]");
        std::process::exit(2);
    }
    let flags: usize = args.get(4).map_or(10_000, |n| n.parse().expect("FLAGS"));
    let patches: usize = args.get(5).map_or(200, |n| n.parse().expect("PATCHES"));
    let api = Api {
        client: Client::new(),
        host: args[1].clone(),
        key: args[2].clone(),
        token: args[3].clone(),
    };

    // Seed: the plain rollouts among the templates become the PATCH targets.
    let mut targets = Vec::new();
    let started = Instant::now();
    let mut created = 0;
    let mut refused = 0;
    let mut salt = 1;
    while created < flags {
        for template in vexil_bench::realistic_flags(salt) {
            if created == flags {
                break;
            }
            let key = template["key"].as_str().expect("key").to_owned();
            let plain = key.starts_with("rollout-");
            let filters = if plain {
                rollout(0)
            } else {
                template["filters"].clone()
            };
            let Some(body) = api.create(&json!({"key": key, "filters": filters})).await else {
                refused += 1;
                continue;
            };
            if plain {
                targets.push((body["id"].as_i64().expect("id"), key));
            }
            created += 1;
            if created == 2_000 {
                println!(
                    "created 2,000 flags one by one in {:.2} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        salt += 1;
    }
    println!(
        "created {created} flags one by one in {:.2} s ({refused} template copies refused by the write rules, not counted)",
        started.elapsed().as_secs_f64()
    );

    // PATCH → visible on /flags.
    let mut latencies = Vec::with_capacity(patches);
    let mut patch_only = Vec::with_capacity(patches);
    let mut polls = 0usize;
    for i in 0..patches {
        let (id, key) = &targets[(i * 7919) % targets.len()];
        let on = !api.enabled(key).await;
        let sent = Instant::now();
        let status = api
            .patch(*id, &json!({"filters": rollout(if on { 100 } else { 0 })}))
            .await;
        patch_only.push(sent.elapsed());
        assert_eq!(status, StatusCode::OK);
        loop {
            polls += 1;
            if api.enabled(key).await == on {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(10),
                "change never became visible"
            );
        }
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    patch_only.sort();
    println!(
        "PATCH → visible on /flags ({patches} PATCHes, {flags} flags): p50 {}, p99 {}, max {} \
         (PATCH answered: p50 {}, p99 {}; /flags polls per change: {:.2})",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().expect("patches")),
        ms(percentile(&patch_only, 0.5)),
        ms(percentile(&patch_only, 0.99)),
        polls as f64 / patches as f64
    );

    // 20 concurrent PATCHes of one flag without `version`.
    let (id, _) = &targets[0];
    let writers: Vec<_> = (0..20u32)
        .map(|i| {
            let request = api
                .client
                .patch(format!("{}{id}/", api.flags_url()))
                .bearer_auth(&api.key)
                .json(&json!({"filters": rollout(i * 5)}));
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    let mut conflicts = 0;
    let mut ok = 0;
    for w in writers {
        match w.await.expect("join").expect("send") {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    println!("20 concurrent PATCHes without version: {ok} applied, {conflicts} conflicts");
}
