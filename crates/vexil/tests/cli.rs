//! The `vexil` binary as a user runs it: `eval` output, exit codes and messages, `project create`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

#[path = "cli/offline.rs"]
mod offline;
#[path = "cli/own_postgres.rs"]
mod own_postgres;

fn vexil(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vexil runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("vexil exits")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

const DEFS: &str = r#"{"flags": [
  {"id": 1, "key": "beta", "active": true, "version": 2,
   "filters": {"groups": [{"properties": [{"key": "plan", "value": "pro"}]}], "payloads": {"true": "{\"a\":1}"}}},
  {"id": 2, "key": "broken", "active": true,
   "filters": {"groups": [{"properties": [{"key": "x", "operator": "frobnicate", "value": 1}]}]}}
]}"#;

#[test]
fn eval_prints_one_v2_body_per_request_line() {
    let dir = tempfile::tempdir().unwrap();
    let defs = write(dir.path(), "defs.json", DEFS);
    let requests = "{\"distinct_id\": \"u1\", \"person_properties\": {\"plan\": \"pro\"}}\n\n{\"distinct_id\": 42}\n";
    let out = vexil(
        &["eval", "--definitions", &defs, "--requests", "-"],
        requests,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "blank lines are skipped");
    let beta = &lines[0]["flags"]["beta"];
    assert_eq!(beta["enabled"], json!(true));
    assert_eq!(
        beta["metadata"],
        json!({"id": 1, "version": 2, "description": null, "payload": "{\"a\":1}", "has_experiment": false})
    );
    assert_eq!(
        lines[0]["errorsWhileComputingFlags"],
        json!(true),
        "the broken flag fails alone"
    );
    assert_eq!(lines[0]["flags"]["broken"]["failed"], json!(true));
    assert_eq!(
        lines[1]["flags"]["beta"]["reason"]["code"],
        json!("no_condition_match")
    );
    assert!(
        lines[0].get("requestId").is_none(),
        "output is deterministic"
    );
    // The invalid definition is reported on stderr with its JSON path.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("filters.groups[0].properties[0].operator"),
        "{stderr}"
    );
}

#[test]
fn bad_input_exits_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let defs = write(dir.path(), "defs.json", DEFS);
    let reqs = write(
        dir.path(),
        "reqs.jsonl",
        "{\"distinct_id\": \"a\"}\n{\"distinct_id\": \"b\", \"groups\": 3}\n",
    );
    let out = vexil(&["eval", "--definitions", &defs, "--requests", &reqs], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{reqs}:2")) && stderr.contains("groups"),
        "{stderr}"
    );

    let out = vexil(
        &["eval", "--definitions", &defs, "--requests", "-"],
        "{\"person_properties\": {}}\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<stdin>:1: distinct_id"));

    let bad_defs = write(dir.path(), "bad.json", "{\"flags\": [{\"id\": 1}]}");
    let out = vexil(&["eval", "--definitions", &bad_defs, "--requests", "-"], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("bad.json") && stderr.contains("flags[0]") && stderr.contains("key"),
        "{stderr}"
    );

    let out = vexil(
        &["eval", "--definitions", &defs, "--requests", "-"],
        "not json\n",
    );
    assert_eq!(out.status.code(), Some(2));
}

/// A 10,000-deep cohort-in-cohort chain (over `MAX_COHORT_DEPTH`) in a definitions file: the
/// flag on it fails alone, named on stderr; evaluating the chain recursively would overflow the
/// main thread's stack and abort.
#[test]
fn a_10_000_deep_cohort_chain_fails_its_flag_alone() {
    let n = 10_000;
    let cohorts: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            let criterion = if i + 1 == n {
                json!({"key": "plan", "value": "pro"})
            } else {
                json!({"key": "id", "type": "cohort", "value": i + 1})
            };
            (i.to_string(), json!({"type": "AND", "values": [criterion]}))
        })
        .collect();
    let on_cohort = |id: usize, key: &str| {
        json!({"id": id, "key": key, "active": true, "filters": {"groups": [
            {"properties": [{"key": "id", "type": "cohort", "value": id}]}]}})
    };
    let defs =
        json!({"flags": [on_cohort(0, "deep"), on_cohort(n - 1, "shallow")], "cohorts": cohorts});
    let dir = tempfile::tempdir().unwrap();
    let defs = write(dir.path(), "defs.json", &defs.to_string());
    let out = vexil(
        &["eval", "--definitions", &defs, "--requests", "-"],
        "{\"distinct_id\": \"u\", \"person_properties\": {\"plan\": \"pro\"}}\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["flags"]["deep"]["failed"], json!(true), "{body}");
    assert_eq!(body["flags"]["shallow"]["enabled"], json!(true), "{body}");
    assert!(stderr.contains("MAX_COHORT_DEPTH"), "{stderr}");
}

#[test]
fn strict_fails_on_invalid_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let defs = write(dir.path(), "defs.json", DEFS);
    let out = vexil(
        &[
            "eval",
            "--strict",
            "--definitions",
            &defs,
            "--requests",
            "-",
        ],
        "{\"distinct_id\": \"u\"}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        1,
        "output is still written"
    );
}

#[test]
fn project_create_prints_keys_once_offline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let out = vexil(
        &[
            "project",
            "create",
            "--name",
            "Shop",
            "--json",
            "--data-dir",
            &data,
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(keys["id"].is_i64());
    assert!(keys["api_token"].as_str().unwrap().starts_with("phc_"));
    assert!(keys["secret_api_key"].as_str().unwrap().starts_with("phs_"));
    assert!(keys["personal_api_key"]
        .as_str()
        .unwrap()
        .starts_with("phx_"));
    // Only hashes of the secret keys are on disk (database and write-ahead log).
    let mut db = std::fs::read(dir.path().join("vexil.db")).unwrap();
    db.extend(std::fs::read(dir.path().join("vexil.db-wal")).unwrap_or_default());
    let token = keys["api_token"].as_str().unwrap().as_bytes();
    assert!(
        db.windows(token.len()).any(|w| w == token),
        "the check reads the stored data"
    );
    for key in ["secret_api_key", "personal_api_key"] {
        let needle = keys[key].as_str().unwrap().as_bytes();
        assert!(
            !db.windows(needle.len()).any(|w| w == needle),
            "{key} stored in clear"
        );
    }
}

/// A `vexil serve` child process on a free port, killed when dropped.
struct Server {
    child: std::process::Child,
    addr: String,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    /// The data directory of a server given only a database URL (where it saves its
    /// definitions by default), so no test writes into the source tree.
    _data: Option<tempfile::TempDir>,
}

impl Server {
    fn start(data: &str) -> Server {
        Server::start_with(env!("CARGO_BIN_EXE_vexil"), data, &[], &[])
    }

    /// `bin serve` with more arguments and environment variables.
    fn start_with(bin: &str, data: &str, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::spawn(bin, &["--data-dir", data], args, envs)
    }

    /// A server on the store the `storage` arguments name.
    fn start_on(storage: &[&str]) -> Server {
        Server::spawn(env!("CARGO_BIN_EXE_vexil"), storage, &[], &[])
    }

    fn spawn(bin: &str, storage: &[&str], args: &[&str], envs: &[(&str, &str)]) -> Server {
        use std::io::BufRead;
        let data = (!storage.contains(&"--data-dir")).then(|| tempfile::tempdir().unwrap());
        let mut child = Command::new(bin)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(storage)
            .args(
                data.iter()
                    .flat_map(|d| [std::ffi::OsStr::new("--data-dir"), d.path().as_os_str()]),
            )
            .args(args)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("vexil serve runs");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "serve exited early"
            );
            if let Some(addr) = line.trim().strip_prefix("vexil listening on http://") {
                break addr.to_owned();
            }
        };
        Server {
            child,
            addr,
            _stdout: stdout,
            _data: data,
        }
    }

    /// The status of `GET path` with `key` as the bearer credential.
    fn status(&self, path: &str, key: &str) -> u16 {
        use std::io::Read;
        let mut stream = std::net::TcpStream::connect(&self.addr).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_out(args: &[&str]) -> Value {
    let out = vexil(args, "");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn rotate_and_revoke_keys_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let keys = json_out(&[
        "project",
        "create",
        "--name",
        "Shop",
        "--json",
        "--data-dir",
        &data,
    ]);
    let id = keys["id"].to_string();
    let token = keys["api_token"].as_str().unwrap();
    let old_personal = keys["personal_api_key"].as_str().unwrap();
    let old_secret = keys["secret_api_key"].as_str().unwrap();
    let server = Server::start(&data);
    let flags = "/api/projects/@current/feature_flags/";
    let feed = format!("/flags/definitions?token={token}");
    assert_eq!(server.status(flags, old_personal), 200);
    assert_eq!(server.status(&feed, old_secret), 200);

    // Rotation by another process: the running server refuses the old key at once.
    let rotated = json_out(&[
        "project",
        "rotate-key",
        "--project",
        &id,
        "--kind",
        "personal",
        "--json",
        "--data-dir",
        &data,
    ]);
    assert_eq!(rotated["kind"], "personal");
    assert_eq!(rotated["project_id"], keys["id"]);
    let new_personal = rotated["key"].as_str().unwrap();
    assert!(new_personal.starts_with("phx_") && new_personal != old_personal);
    assert_eq!(server.status(flags, old_personal), 401);
    assert_eq!(server.status(flags, new_personal), 200);

    let rotated = json_out(&[
        "project",
        "rotate-key",
        "--project",
        &id,
        "--kind",
        "secret",
        "--json",
        "--data-dir",
        &data,
    ]);
    let new_secret = rotated["key"].as_str().unwrap();
    assert!(new_secret.starts_with("phs_"));
    assert_eq!(server.status(&feed, old_secret), 401);
    assert_eq!(server.status(&feed, new_secret), 200);

    // Revocation, also in human form.
    let out = vexil(
        &[
            "project",
            "revoke-key",
            "--project",
            &id,
            "--kind",
            "secret",
            "--data-dir",
            &data,
        ],
        "",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));
    assert_eq!(server.status(&feed, new_secret), 401);
    assert_eq!(server.status(&feed, new_personal), 200);
    let revoked = json_out(&[
        "project",
        "revoke-key",
        "--project",
        &id,
        "--kind",
        "personal",
        "--json",
        "--data-dir",
        &data,
    ]);
    assert_eq!(revoked["revoked"], json!(true));
    assert_eq!(server.status(flags, new_personal), 401);
    drop(server);

    // Only hashes of the new keys are on disk.
    let mut db = std::fs::read(dir.path().join("vexil.db")).unwrap();
    db.extend(std::fs::read(dir.path().join("vexil.db-wal")).unwrap_or_default());
    for key in [new_personal, new_secret] {
        assert!(!db.windows(key.len()).any(|w| w == key.as_bytes()));
    }

    // An unknown project is bad input (exit 2), naming the option.
    let out = vexil(
        &[
            "project",
            "rotate-key",
            "--project",
            "999",
            "--kind",
            "secret",
            "--data-dir",
            &data,
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--project"));
}

/// What the server acknowledged before it was killed.
#[derive(Default)]
struct Acknowledged {
    /// Event uuids of every batch answered 200, by distinct id.
    events: Vec<(String, String)>,
    /// Highest `$set: {"seq": n}` acknowledged, per distinct id.
    seq: std::collections::HashMap<String, u64>,
    /// `(version, name)` of the last acknowledged flag update.
    flag: Option<(i64, String)>,
}

/// Acknowledged capture and flag writes survive `kill -9` on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let url = format!(
        "sqlite://{}",
        dir.path().join(vexil_store::DATA_FILE).display()
    );
    acknowledged_writes_survive_kill_9_on(&["--data-dir", &data], &url).await;
}

/// Acknowledged capture and flag writes survive `kill -9` on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_on_postgres() {
    let Some(db) = pg::TempDatabase::create().await else {
        return;
    };
    acknowledged_writes_survive_kill_9_on(&["--database-url", &db.url], &db.url).await;
}

/// Capture batches (with `$set`) and flag updates run concurrently against the real binary on
/// the store `storage` names (which `database` opens), which is SIGKILLed mid-stream and
/// restarted on the same store; every write answered 2xx before the kill is there.
async fn acknowledged_writes_survive_kill_9_on(storage: &[&str], database: &str) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let mut create = vec!["project", "create", "--name", "Crash", "--json"];
    create.extend_from_slice(storage);
    let out = vexil(&create, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = keys["api_token"].as_str().unwrap().to_owned();
    let personal = keys["personal_api_key"].as_str().unwrap().to_owned();
    let project = vexil_store::ProjectId(keys["id"].as_i64().unwrap());

    let mut server = Server::start_on(storage);
    let url = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let flags = format!("{url}/api/projects/@current/feature_flags/");
    let created: Value = client
        .post(&flags)
        .bearer_auth(&personal)
        .json(&json!({"key": "crash", "name": "v0",
                      "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flag_id = created["id"].as_i64().expect("flag created");

    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let batches_acked = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        let (acked, batches_acked, killed) = (acked.clone(), batches_acked.clone(), killed.clone());
        tasks.push(tokio::spawn(async move {
            let distinct_id = format!("writer-{writer}");
            for seq in 1u64.. {
                if killed.load(Ordering::Acquire) {
                    break;
                }
                let uuids: Vec<String> =
                    (0..20).map(|_| uuid::Uuid::new_v4().to_string()).collect();
                let batch: Vec<Value> = uuids
                    .iter()
                    .map(|u| {
                        json!({"event": "load", "distinct_id": distinct_id, "uuid": u,
                                    "properties": {"$set": {"seq": seq}}})
                    })
                    .collect();
                let sent = client
                    .post(format!("{url}/batch/"))
                    .json(&json!({"api_key": token, "batch": batch}))
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        let mut acked = acked.lock().unwrap();
                        acked
                            .events
                            .extend(uuids.into_iter().map(|u| (distinct_id.clone(), u)));
                        acked.seq.insert(distinct_id.clone(), seq);
                        batches_acked.fetch_add(1, Ordering::AcqRel);
                    }
                    _ => break, // killed: this batch is not acknowledged
                }
            }
        }));
    }
    {
        let (client, flags, personal, acked, killed) = (
            client.clone(),
            flags.clone(),
            personal.clone(),
            acked.clone(),
            killed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 1u64.. {
                if killed.load(Ordering::Acquire) {
                    break;
                }
                let name = format!("v{i}");
                let sent = client
                    .patch(format!("{flags}{flag_id}/"))
                    .bearer_auth(&personal)
                    .json(&json!({"name": name}))
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        let body: Value = match resp.json().await {
                            Ok(body) => body,
                            Err(_) => break,
                        };
                        let version = body["version"].as_i64().expect("version");
                        acked.lock().unwrap().flag = Some((version, name));
                    }
                    _ => break,
                }
            }
        }));
    }
    // Kill mid-stream, once a good number of writes is acknowledged.
    while batches_acked.load(Ordering::Acquire) < 60 {
        assert!(
            !tasks.iter().all(|t| t.is_finished()),
            "the writers stopped before the kill"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    killed.store(true, Ordering::Release);
    server.child.wait().unwrap();
    drop(server);
    for task in tasks {
        task.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.events.len() >= 60 * 20);
    let (version, name) = acked.flag.clone().expect("flag updates were acknowledged");

    // Restart on the same store: the acknowledged flag change is served.
    let server = Server::start_on(storage);
    let url = format!("http://{}", server.addr);
    let flag: Value = client
        .get(format!(
            "{url}/api/projects/@current/feature_flags/{flag_id}/"
        ))
        .bearer_auth(&personal)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored_version = flag["version"].as_i64().unwrap();
    assert!(stored_version >= version, "{flag}");
    if stored_version == version {
        assert_eq!(flag["name"], json!(name));
    }
    drop(server);

    // Every acknowledged event is stored (storing it again adds nothing), and every person
    // carries at least its last acknowledged `$set`.
    let store = vexil_store::connect(database).await.unwrap();
    let mut missing = 0;
    for (distinct_id, uuid) in &acked.events {
        let event = vexil_store::NewEvent {
            uuid: uuid::Uuid::parse_str(uuid).unwrap(),
            event: "probe".into(),
            distinct_id: distinct_id.clone(),
            properties: serde_json::Map::new(),
            timestamp: chrono::Utc::now(),
        };
        missing += store.insert_events(project, &[event]).await.unwrap();
    }
    assert_eq!(missing, 0, "acknowledged events lost");
    for (distinct_id, seq) in &acked.seq {
        let person = store
            .get_person(project, distinct_id)
            .await
            .unwrap()
            .expect("person of an acknowledged $set");
        let stored = person.properties["seq"].as_u64().unwrap();
        assert!(
            stored >= *seq,
            "{distinct_id}: seq {stored} < acknowledged {seq}"
        );
    }
    store.close().await;
}

/// A `/proc/<pid>/status` figure in bytes (`VmRSS`, `VmHWM`).
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("status field");
    kib * 1024
}

const MIB: u64 = 1024 * 1024;

/// Issue 13, item 1: 64 concurrent token-less gzip bodies, each inflating to the capture limit
/// (20 MiB of `[0,0,0,…]`, about 20 KiB on the wire), leave the server's peak resident memory
/// under its baseline + the decode budget (64 MiB) + 64 MiB of slack, and a legitimate `/flags`
/// call sent all through the attack is answered 200 every time.
///
/// The server runs 16 worker threads (`TOKIO_WORKER_THREADS`), as on a larger machine: without
/// the budget each thread inflates a body at once, 16 × 20 MiB. `VEXIL_BODIES_BIN`,
/// `VEXIL_BODIES_WORKERS` and `VEXIL_BODIES_ARGS` (space-separated) run the same attack against
/// another build or configuration, for BENCHMARKS.md; the figures are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_leave_memory_bounded_and_flags_answering() {
    use std::io::Write as _;

    const BOUND_OVER_BASELINE: u64 = 128 * MIB;
    const LIMIT: usize = 20 * 1024 * 1024;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let keys = json_out(&[
        "project",
        "create",
        "--name",
        "Bodies",
        "--json",
        "--data-dir",
        &data,
    ]);
    let token = keys["api_token"].as_str().unwrap().to_owned();
    let bin = std::env::var("VEXIL_BODIES_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_vexil").to_owned());
    let workers = std::env::var("VEXIL_BODIES_WORKERS").unwrap_or_else(|_| "16".to_owned());
    let extra = std::env::var("VEXIL_BODIES_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let server = Server::start_with(
        &bin,
        &data,
        &extra,
        &[("TOKIO_WORKER_THREADS", workers.as_str())],
    );
    let pid = server.child.id();
    let url = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let legit = json!({"token": token, "distinct_id": "u1", "person_properties": {"plan": "pro"}});
    let flags = |client: reqwest::Client| {
        let (url, legit) = (url.clone(), legit.clone());
        async move {
            let resp = client
                .post(format!("{url}/flags?v=2"))
                .json(&legit)
                .send()
                .await;
            resp.map(|r| r.status().as_u16()).unwrap_or(0)
        }
    };
    assert_eq!(flags(client.clone()).await, 200);
    let baseline = proc_status_bytes(pid, "VmRSS");

    // One event without a token whose property is `[0,0,…,0]`: exactly the limit once inflated,
    // the worst tree per byte once parsed.
    const HEAD: &[u8] = br#"{"event":"e","properties":{"x":[0"#;
    const TAIL: &[u8] = b"]}}";
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(HEAD).unwrap();
    let zeros = b",0".repeat(64 * 1024);
    let mut written = HEAD.len() + TAIL.len();
    while written + zeros.len() <= LIMIT {
        encoder.write_all(&zeros).unwrap();
        written += zeros.len();
    }
    encoder
        .write_all(&zeros[..(LIMIT - written) / 2 * 2])
        .unwrap();
    encoder.write_all(TAIL).unwrap();
    let bomb = encoder.finish().unwrap();

    let attack: Vec<_> = (0..64)
        .map(|_| {
            let (client, url, bomb) = (client.clone(), url.clone(), bomb.clone());
            tokio::spawn(async move {
                let resp = client
                    .post(format!("{url}/batch/"))
                    .header("content-type", "text/plain")
                    .body(bomb)
                    .send()
                    .await;
                resp.map(|r| r.status().as_u16()).unwrap_or(0)
            })
        })
        .collect();
    let mut legit_statuses = Vec::new();
    while !attack.iter().all(|t| t.is_finished()) {
        legit_statuses.push(flags(client.clone()).await);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut attack_statuses = std::collections::BTreeMap::<u16, usize>::new();
    for task in attack {
        *attack_statuses.entry(task.await.unwrap()).or_default() += 1;
    }
    let peak = proc_status_bytes(pid, "VmHWM");
    eprintln!(
        "hostile bodies: {} KiB gzip each, workers {workers}, args {extra:?}: baseline RSS {} MiB, \
         peak {} MiB (+{} MiB); attack answers {attack_statuses:?}; {} legitimate /flags calls, \
         statuses {:?}",
        bomb.len() / 1024,
        baseline / MIB,
        peak / MIB,
        peak.saturating_sub(baseline) / MIB,
        legit_statuses.len(),
        legit_statuses.iter().collect::<std::collections::BTreeSet<_>>(),
    );
    assert!(
        attack_statuses.keys().all(|s| [401, 503].contains(s))
            && attack_statuses.contains_key(&401),
        "token-less bodies are refused (401) or shed (503): {attack_statuses:?}"
    );
    assert!(
        !legit_statuses.is_empty() && legit_statuses.iter().all(|&s| s == 200),
        "a legitimate /flags call is answered all through the attack: {legit_statuses:?}"
    );
    assert!(
        peak.saturating_sub(baseline) < BOUND_OVER_BASELINE,
        "peak resident memory {} MiB over a baseline of {} MiB: more than the bound (+{} MiB)",
        peak / MIB,
        baseline / MIB,
        BOUND_OVER_BASELINE / MIB
    );
}

/// A user's path on PostgreSQL: `vexil migrate`, `vexil project create` and `vexil serve` with
/// `--database-url postgres://…`; a flag created through the API is served by `/flags`, and a
/// second server on the same database serves it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_create_and_serve_on_postgres() {
    let Some(db) = pg::TempDatabase::create().await else {
        return;
    };
    let storage = ["--database-url", db.url.as_str()];
    let out = vexil(&["migrate", "--database-url", &db.url], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = json_out(&[
        "project",
        "create",
        "--name",
        "Pg",
        "--json",
        "--database-url",
        &db.url,
    ]);
    let token = keys["api_token"].as_str().unwrap();
    let personal = keys["personal_api_key"].as_str().unwrap();

    let a = Server::start_on(&storage);
    let client = reqwest::Client::new();
    let created = client
        .post(format!(
            "http://{}/api/projects/@current/feature_flags/",
            a.addr
        ))
        .bearer_auth(personal)
        .json(&json!({"key": "pg-beta",
                      "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let b = Server::start_on(&storage);
    for server in [&a, &b] {
        let flags: Value = client
            .post(format!("http://{}/flags/?v=2", server.addr))
            .json(&json!({"api_key": token, "distinct_id": "u1"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(flags["flags"]["pg-beta"]["enabled"], json!(true), "{flags}");
    }
}

#[path = "support/pg.rs"]
mod pg;

#[test]
fn a_store_that_cannot_be_opened_is_reported_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vexil.db"),
        "not a database, just text\n".repeat(100),
    )
    .unwrap();
    let data_dir = dir.path().display().to_string();
    let out = vexil(&["migrate", "--data-dir", &data_dir], "");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The context alone ("opening data directory …") does not tell the user what to fix.
    assert!(stderr.contains("opening data directory"), "{stderr}");
    assert!(stderr.contains("not a database"), "{stderr}");
}

/// `vexil serve` on `data`, with what it printed before listening.
fn serve_capturing(data: &str) -> (Server, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir", data])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("vexil serve runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = String::new();
    let addr = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "serve exited early"
        );
        if let Some(addr) = line.trim().strip_prefix("vexil listening on http://") {
            break addr.to_owned();
        }
        printed.push_str(&line);
    };
    let server = Server {
        child,
        addr,
        _stdout: stdout,
        _data: None,
    };
    (server, printed)
}

/// Signs in through the web UI's form; the status of the answer.
async fn ui_sign_in(addr: &str, email: &str, password: &str) -> u16 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(format!("http://{addr}/ui/signin"))
        .send()
        .await
        .unwrap();
    let cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    let token = cookie["vexil_signin_csrf=".len()..cookie.find(';').unwrap()].to_owned();
    let body = format!(
        "csrf={token}&email={}&password={}",
        email.replace('@', "%40"),
        password.replace(' ', "+")
    );
    let answer = client
        .post(format!("http://{addr}/ui/signin"))
        .header("cookie", format!("vexil_signin_csrf={token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    if status == 303 {
        let set: Vec<_> = answer.headers().get_all("set-cookie").iter().collect();
        assert!(set
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("vexil_session=")));
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_an_admin_once_and_user_create_adds_members() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let (server, printed) = serve_capturing(&data);
    assert!(printed.contains("phc_"), "the project keys: {printed}");
    assert!(printed.contains("admin@localhost"), "{printed}");
    let password = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .expect("a generated password")
        .trim()
        .to_owned();
    assert!(password.len() >= 20, "{password}");
    assert_eq!(
        ui_sign_in(&server.addr, "admin@localhost", &password).await,
        303
    );
    assert_eq!(
        ui_sign_in(&server.addr, "admin@localhost", "not it at all").await,
        401
    );

    // Offline, while the server runs; the password comes on stdin only.
    let create = |email: &str, project: &str, stdin: &str| {
        let mut args = vec!["user", "create", "--email", email, "--password-stdin"];
        if !project.is_empty() {
            args.extend(["--project", project]);
        }
        args.extend(["--data-dir", &data]);
        vexil(&args, stdin)
    };
    let out = create("ann@example.com", "1", "ann's password\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("member of project(s) 1"));
    assert_eq!(
        ui_sign_in(&server.addr, "ann@example.com", "ann's password").await,
        303
    );

    for (email, project, stdin, field) in [
        ("ann@example.com", "1", "another password", "--email"),
        ("bob@example.com", "999", "bob's password", "--project"),
        ("bob@example.com", "", "short", "stdin"),
        ("not-an-email", "", "long enough password", "--email"),
    ] {
        let out = create(email, project, stdin);
        assert_eq!(out.status.code(), Some(2), "{email} {project}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{err}");
    }
    let out = vexil(
        &[
            "user",
            "create",
            "--email",
            "x@example.com",
            "--data-dir",
            &data,
        ],
        "",
    );
    assert!(!out.status.success(), "--password-stdin is required");
    drop(server);

    // Once: a restart prints the keys of no new project and no new password.
    let (_server, printed) = serve_capturing(&data);
    assert!(!printed.contains("password"), "{printed}");
}
/// Two nodes sharing one PostgreSQL database and one Redis.
#[path = "cli/redis.rs"]
mod redis;
