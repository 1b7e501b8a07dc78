//! The database is not on the evaluation path: three `vexil serve` nodes on one PostgreSQL of
//! the test's own, which is stopped under continuous `/flags` load and started again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::own_postgres::OwnPostgres;
use super::{json_out, Server};

/// Distinct ids the load cycles through.
const USERS: usize = 24;

/// Load phases, as the client checks answers.
const UP: u8 = 0;
const DOWN: u8 = 1;
const BACK: u8 = 2;

/// What the load client saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    /// Non-200 answers, transport errors, or wrong values.
    failures: Mutex<Vec<String>>,
    /// `failed: true` for the flag that reads the stored person, while the database was down.
    stored_failed_while_down: AtomicU64,
    /// Requests answered while the database was down.
    while_down: AtomicU64,
    /// The node each load worker is waiting on, by worker.
    in_flight: Mutex<HashMap<usize, String>>,
}

/// A `vexil serve` on the test's PostgreSQL, saving its definitions in `snapshots`.
fn node(url: &str, snapshots: &Path) -> Server {
    Server::spawn(
        env!("CARGO_BIN_EXE_vexil"),
        &["--database-url", url],
        // A generous lookup deadline: on a loaded machine a debug build can miss the default
        // 100 ms with the database up, which this test would count as a wrong answer.
        &[
            "--snapshot-dir",
            snapshots.to_str().expect("utf-8 path"),
            "--eval-lookup-timeout-ms",
            "2000",
        ],
        &[],
    )
}

async fn get_json(client: &reqwest::Client, url: String, bearer: Option<&str>) -> (u16, Value) {
    let mut request = client.get(url);
    if let Some(key) = bearer {
        request = request.bearer_auth(key);
    }
    let resp = request.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn flags(client: &reqwest::Client, addr: &str, body: &Value) -> Result<Value, String> {
    let resp = client
        .post(format!("http://{addr}/flags/?v=2"))
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| format!("{addr}: {e}"))?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("{addr}: {status} {body}"))
    }
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Issue 14: with PostgreSQL stopped, three nodes keep answering `/flags` (zero failed requests,
/// correct values; `failed: true` only for the flag that needs the stored person), `/decide` and
/// the definitions feed; writes fail fast with a 503 JSON body and change nothing; a node
/// restarted meanwhile serves the definitions it saved and says so; once PostgreSQL is back,
/// writes work and the restarted node reloads from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_serve_flags_while_postgres_is_down_and_recover() {
    let Some(pg) = OwnPostgres::start() else {
        return;
    };
    let keys = json_out(&[
        "project",
        "create",
        "--name",
        "Offline",
        "--json",
        "--database-url",
        &pg.url,
    ]);
    let token = keys["api_token"].as_str().unwrap().to_owned();
    let secret = keys["secret_api_key"].as_str().unwrap().to_owned();
    let personal = keys["personal_api_key"].as_str().unwrap().to_owned();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let client = reqwest::Client::new();

    // Flags first (through node a), then the other nodes, which load them at start.
    let a = node(&pg.url, dirs[0].path());
    let api = |addr: &str| format!("http://{addr}/api/projects/@current/feature_flags/");
    let mut flag_ids = HashMap::new();
    for (key, filters) in [
        (
            "everyone",
            json!({"groups": [{"properties": [], "rollout_percentage": 100}]}),
        ),
        (
            "half",
            json!({"groups": [{"properties": [], "rollout_percentage": 50}]}),
        ),
        (
            "pro-plan",
            json!({"groups": [{"properties": [{"key": "plan", "value": "pro", "type": "person"}],
                               "rollout_percentage": 100}]}),
        ),
    ] {
        let created = client
            .post(api(&a.addr))
            .bearer_auth(&personal)
            .json(&json!({"key": key, "name": key, "filters": filters}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        flag_ids.insert(key, created["id"].as_i64().unwrap());
    }
    let b = node(&pg.url, dirs[1].path());
    let mut c = node(&pg.url, dirs[2].path());

    // What each user gets while the database is up: the reference for the whole run.
    let mut expected_half = Vec::new();
    for user in 0..USERS {
        let body = flags(
            &client,
            &a.addr,
            &json!({"token": token, "distinct_id": format!("user-{user}")}),
        )
        .await
        .unwrap();
        assert!(body["flags"]["pro-plan"].get("failed").is_none(), "{body}");
        expected_half.push(body["flags"]["half"]["enabled"].as_bool().unwrap());
    }
    assert!(expected_half.iter().any(|e| *e) && expected_half.iter().any(|e| !*e));
    // Each node checks the secret key against the store once (so it may answer the feed while
    // the store is down), and saves its definitions with that key's hash.
    for server in [&a, &b, &c] {
        let (status, feed) = get_json(
            &client,
            format!("http://{}/flags/definitions?token={token}", server.addr),
            Some(&secret),
        )
        .await;
        assert_eq!(status, 200, "{feed}");
        assert_eq!(feed["flags"].as_array().unwrap().len(), 3);
    }
    let saved = dirs[2]
        .path()
        .join(format!("project-{}.json", keys["id"].as_i64().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&saved).is_ok_and(|s| s.contains("\"secret\"")) {
        assert!(
            Instant::now() < deadline,
            "node c never saved its definitions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let revision: i64 = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&pg.url).await.unwrap();
        let revision = sqlx::query_scalar("SELECT revision FROM projects WHERE id = $1")
            .bind(keys["id"].as_i64().unwrap())
            .fetch_one(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        revision
    };

    // Continuous load on every live node.
    let nodes = Arc::new(Mutex::new(vec![
        a.addr.clone(),
        b.addr.clone(),
        c.addr.clone(),
    ]));
    let phase = Arc::new(AtomicU8::new(UP));
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let expected_half = Arc::new(expected_half);
    let mut load = Vec::new();
    for worker in 0..4usize {
        let (client, nodes, phase, seen, stop, token, expected_half) = (
            client.clone(),
            nodes.clone(),
            phase.clone(),
            seen.clone(),
            stop.clone(),
            token.clone(),
            expected_half.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = worker;
            while !stop.load(Ordering::Acquire) {
                i += 1;
                let addr = {
                    // Noted as in flight under the rotation's lock, so that a node taken out of
                    // the rotation has every request that picked it noted.
                    let nodes = nodes.lock().unwrap();
                    let addr = nodes[i % nodes.len()].clone();
                    seen.in_flight.lock().unwrap().insert(worker, addr.clone());
                    addr
                };
                let user = i % USERS;
                // Half the requests carry the person property: no stored data needed.
                let with_plan = i % 2 == 0;
                let mut request = json!({"token": token, "distinct_id": format!("user-{user}")});
                if with_plan {
                    request["person_properties"] = json!({"plan": "pro"});
                }
                let now = phase.load(Ordering::Acquire);
                let answer = flags(&client, &addr, &request).await;
                seen.in_flight.lock().unwrap().remove(&worker);
                // Up throughout only if it still is: the stop may land mid-request.
                let now = now.max(phase.load(Ordering::Acquire));
                seen.requests.fetch_add(1, Ordering::Relaxed);
                if now == DOWN {
                    seen.while_down.fetch_add(1, Ordering::Relaxed);
                }
                let body = match answer {
                    Ok(body) => body,
                    Err(e) => {
                        seen.failures.lock().unwrap().push(e);
                        continue;
                    }
                };
                let f = &body["flags"];
                let mut wrong = f["everyone"]["enabled"] != json!(true)
                    || f["everyone"].get("failed").is_some()
                    || f["half"]["enabled"] != json!(expected_half[user])
                    || f["half"].get("failed").is_some();
                if with_plan {
                    wrong |= f["pro-plan"]["enabled"] != json!(true)
                        || f["pro-plan"].get("failed").is_some();
                } else if f["pro-plan"]["failed"] == json!(true) {
                    // Needs the stored person: only while the database is away.
                    wrong |= now == UP;
                    if now == DOWN {
                        seen.stored_failed_while_down
                            .fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    wrong |= f["pro-plan"]["enabled"] != json!(false);
                }
                if wrong {
                    seen.failures
                        .lock()
                        .unwrap()
                        .push(format!("{addr}: {body}"));
                }
            }
        }));
    }
    let load_started = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    // PostgreSQL stops under the load.
    let before = seen.requests.load(Ordering::Relaxed);
    let rate_up = before as f64 / load_started.elapsed().as_secs_f64();
    let down_at = Instant::now();
    phase.store(DOWN, Ordering::Release);
    pg.stop();

    // Writes fail fast with a 503 JSON body.
    let mut write_ms = Vec::new();
    for attempt in 0..6 {
        let started = Instant::now();
        let resp = client
            .patch(format!("{}{}/", api(&a.addr), flag_ids["everyone"]))
            .bearer_auth(&personal)
            .json(&json!({"name": format!("during-outage-{attempt}")}))
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["type"], "server_error", "{body}");
        assert!(body["detail"].is_string(), "{body}");
        assert!(
            elapsed < Duration::from_secs(1),
            "write answered in {elapsed:?}"
        );
        write_ms.push(elapsed.as_secs_f64() * 1e3);
    }
    let started = Instant::now();
    let capture = client
        .post(format!("http://{}/batch/", b.addr))
        .json(&json!({"api_key": token, "batch": [{"event": "e", "distinct_id": "user-1"}]}))
        .send()
        .await
        .unwrap();
    let capture_elapsed = started.elapsed();
    assert_eq!(capture.status(), 503);
    let capture: Value = capture.json().await.unwrap();
    assert!(capture["detail"].is_string(), "{capture}");
    assert!(
        capture_elapsed < Duration::from_secs(1),
        "capture answered in {capture_elapsed:?}"
    );

    // `/decide`, the feed and readiness, from memory.
    for server in [&a, &b] {
        let decide: Value = client
            .post(format!("http://{}/decide/?v=3", server.addr))
            .json(&json!({"token": token, "distinct_id": "user-1"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(decide["featureFlags"]["everyone"], json!(true), "{decide}");
        let (status, feed) = get_json(
            &client,
            format!("http://{}/flags/definitions?token={token}", server.addr),
            Some(&secret),
        )
        .await;
        assert_eq!(status, 200, "{feed}");
        assert_eq!(feed["flags"].as_array().unwrap().len(), 3);
        let (status, ready) =
            get_json(&client, format!("http://{}/_readiness", server.addr), None).await;
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["status"], "degraded", "{ready}");
        assert_eq!(ready["components"]["store"], "down", "{ready}");
        assert_eq!(ready["definitions"], "store", "{ready}");
    }

    // Node c restarts while the database is down: it serves what it saved and says so.
    // Drained first, as a load balancer would: requests cut by the kill are not the point.
    // A worker may have picked c just before it left the rotation: wait until none waits on it.
    nodes.lock().unwrap().retain(|n| *n != c.addr);
    let drained = Instant::now();
    while seen
        .in_flight
        .lock()
        .unwrap()
        .values()
        .any(|a| *a == c.addr)
    {
        assert!(
            drained.elapsed() < Duration::from_secs(30),
            "requests to c never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(c);
    let restarted_at = Instant::now();
    c = node(&pg.url, dirs[2].path());
    let restart = restarted_at.elapsed();
    let (status, ready) = get_json(&client, format!("http://{}/_readiness", c.addr), None).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["definitions"], "last_known", "{ready}");
    assert_eq!(
        ready["last_known"][0]["revision"],
        json!(revision),
        "{ready}"
    );
    let detail = ready["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "serving last known definitions (revision {revision}, saved at "
        )),
        "{detail}"
    );
    let metrics = client
        .get(format!("http://{}/metrics", c.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&metrics, "vexil_serving_last_known_definitions"),
        Some(1.0)
    );
    assert_eq!(metric(&metrics, "vexil_store_unreachable"), Some(1.0));
    let (status, feed) = get_json(
        &client,
        format!("http://{}/flags/definitions?token={token}", c.addr),
        Some(&secret),
    )
    .await;
    assert_eq!(status, 200, "the restarted node's feed: {feed}");
    nodes.lock().unwrap().push(c.addr.clone());
    tokio::time::sleep(Duration::from_millis(2_000)).await;

    // PostgreSQL comes back: writes work again, and node c reloads from it.
    let down_for = down_at.elapsed();
    let during = seen.requests.load(Ordering::Relaxed) - before;
    pg.resume();
    let back_at = Instant::now();
    phase.store(BACK, Ordering::Release);
    let write = loop {
        let resp = client
            .patch(format!("{}{}/", api(&a.addr), flag_ids["everyone"]))
            .bearer_auth(&personal)
            .json(&json!({"name": "after-outage"}))
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            break resp.json::<Value>().await.unwrap();
        }
        assert!(
            back_at.elapsed() < Duration::from_secs(15),
            "writes never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let writes_back = back_at.elapsed();
    // Nothing of the refused writes was applied: one version after the creation.
    assert_eq!(write["version"], json!(2), "{write}");
    let ready = loop {
        let (status, ready) =
            get_json(&client, format!("http://{}/_readiness", c.addr), None).await;
        if status == 200 && ready["status"] == "ready" {
            break ready;
        }
        assert!(
            back_at.elapsed() < Duration::from_secs(15),
            "node c never caught up: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let caught_up = back_at.elapsed();
    assert_eq!(ready["components"]["store"], "up");
    // A change written through the restarted node is served by it.
    let created = client
        .post(api(&c.addr))
        .bearer_auth(&personal)
        .json(&json!({"key": "after-outage", "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body = flags(
        &client,
        &c.addr,
        &json!({"token": token, "distinct_id": "user-1"}),
    )
    .await
    .unwrap();
    assert_eq!(
        body["flags"]["after-outage"]["enabled"],
        json!(true),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop.store(true, Ordering::Release);
    for task in load {
        task.await.unwrap();
    }
    let failures = seen.failures.lock().unwrap();
    let total = seen.requests.load(Ordering::Relaxed);
    let first_write = write_ms[0];
    write_ms.sort_by(f64::total_cmp);
    println!(
        "failover: {total} /flags requests, {} failed; {:.0}/s before the outage, {during} answered during the {:.1} s outage \
         ({:.0}/s, {} of them failed: true for the stored-person flag); writes while down: 503 in \
         {:.1}–{:.1} ms (first {:.1} ms), capture 503 in {:.1} ms; node restart while down {:.2} s; \
         writes back {:.0} ms after PostgreSQL was, restarted node reloaded after {:.0} ms",
        failures.len(),
        rate_up,
        down_for.as_secs_f64(),
        during as f64 / down_for.as_secs_f64(),
        seen.stored_failed_while_down.load(Ordering::Relaxed),
        write_ms[0],
        write_ms[write_ms.len() - 1],
        first_write,
        capture_elapsed.as_secs_f64() * 1e3,
        restart.as_secs_f64(),
        writes_back.as_secs_f64() * 1e3,
        caught_up.as_secs_f64() * 1e3,
    );
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        seen.while_down.load(Ordering::Relaxed) > 100,
        "too little load while down"
    );
    assert!(
        seen.stored_failed_while_down.load(Ordering::Relaxed) > 0,
        "the stored-person flag never failed while the database was down"
    );
    drop((a, b, c));
}
