//! Several `vexil serve` processes on one PostgreSQL database, as a cluster runs: a change made
//! through one node reaches every node's `/flags` (announced over `LISTEN/NOTIFY`), a change
//! whose announcement is lost arrives through the periodic revision check, and the feed
//! survives losing its connection; a node applies flag changes made elsewhere from their rows
//! (no reload) to the same snapshot a fresh load builds, and a change made through one node
//! reaches change streams on the others. `scripts/cluster.sh` is run here too, in its quick mode, and
//! `docs/deployment.md` is checked against `vexil serve --help`.

use std::future::Future;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

#[path = "support/pg.rs"]
mod pg;

use vexil_testkit::sse::Sse;

const FLAGS: &str = "/api/projects/@current/feature_flags/";
const COHORTS: &str = "/api/projects/@current/cohorts/";
/// Longest a change may take to show (a bound, not a timing check: propagation takes
/// milliseconds; this only turns "never" into a failure instead of a hang).
const DEADLINE: Duration = Duration::from_secs(20);

/// A `vexil serve` child process on a free port, killed when dropped.
struct Node {
    child: Child,
    url: String,
    /// Where the node saves its snapshots (else `./vexil-data`, in the source tree).
    _data: tempfile::TempDir,
}

impl Node {
    /// A node on `database` comparing revisions every `check` (`250ms`, `3600s`).
    fn start(database: &str, check: &str) -> Node {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vexil"))
            .args(["serve", "--addr", "127.0.0.1:0", "--database-url", database])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--revision-check-interval", check])
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
            if let Some(addr) = line.trim().strip_prefix("vexil listening on ") {
                break addr.to_owned();
            }
        };
        // Nothing more is printed; dropping the pipe's reader is harmless.
        Node {
            child,
            url: addr,
            _data: data,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The project's keys, created with `vexil project create` (before any node starts, so none
/// creates a default project).
fn create_project(database: &str, name: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args(["project", "create", "--name", name, "--json"])
        .args(["--database-url", database])
        .output()
        .expect("vexil runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Cluster {
    client: reqwest::Client,
    token: String,
    personal: String,
    secret: String,
}

impl Cluster {
    fn new(keys: &Value) -> Cluster {
        Cluster {
            client: reqwest::Client::new(),
            token: keys["api_token"].as_str().unwrap().to_owned(),
            personal: keys["personal_api_key"].as_str().unwrap().to_owned(),
            secret: keys["secret_api_key"].as_str().unwrap().to_owned(),
        }
    }

    /// `/flags/definitions` on `node`: its ETag.
    async fn etag(&self, node: &Node) -> String {
        let response = self
            .client
            .get(format!(
                "{}/flags/definitions?token={}",
                node.url, self.token
            ))
            .bearer_auth(&self.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.headers()["etag"].to_str().unwrap().to_owned()
    }

    /// A management call through `node`; returns the status and the JSON body.
    async fn api(&self, node: &Node, method: Method, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", node.url))
            .bearer_auth(&self.personal)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `/flags` on `node` for `token`: the status and the `flags` map.
    async fn flags_for(&self, node: &Node, token: &str, properties: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/flags/?v=2", node.url))
            .json(&json!({"api_key": token, "distinct_id": "u1", "person_properties": properties}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (status, body["flags"].clone())
    }

    /// `/flags` on `node`: whether flag `key` is enabled (`None`: not served).
    async fn enabled(&self, node: &Node, properties: Value, key: &str) -> Option<bool> {
        let (status, flags) = self.flags_for(node, &self.token, properties).await;
        assert_eq!(status, 200, "{flags}");
        flags.get(key).map(|f| f["enabled"] == json!(true))
    }
}

/// Polls `holds` until it is true, failing after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut holds: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !holds().await {
        assert!(
            start.elapsed() < DEADLINE,
            "not within {DEADLINE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A metric's value in `node`'s `/metrics`: the sum of the lines starting with `series` (a
/// series named without labels sums over all of them).
async fn counter(client: &reqwest::Client, node: &Node, series: &str) -> f64 {
    let text = client
        .get(format!("{}/metrics", node.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix(series))
        .map(|rest| match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once('}').map_or("", |(_, value)| value),
            None => rest,
        })
        .filter_map(|rest| rest.trim().parse::<f64>().ok())
        .sum()
}

fn everyone() -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": 100}]})
}

fn nobody() -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": 0}]})
}

fn on_cohort(id: &Value) -> Value {
    json!({"groups": [{"properties": [{"key": "id", "type": "cohort", "value": id}], "rollout_percentage": 100}]})
}

fn plan_is(plan: &str) -> Value {
    json!({"properties": {"type": "AND", "values": [
        {"type": "AND", "values": [{"key": "plan", "type": "person", "value": plan}]}]}})
}

/// Three nodes that compare revisions only once an hour: every change made through node A —
/// flag create, update, delete, a cohort edit, a new project — reaches B's and C's `/flags`
/// through announcements alone, also after their feed connections were cut; A does not reload
/// for its own writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_node_reach_every_node() {
    let Some(db) = pg::TempDatabase::create().await else {
        return;
    };
    let keys = create_project(&db.url, "Cluster");
    let cluster = Cluster::new(&keys);
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&db.url, "3600s")).collect();
    let (a, others) = (&nodes[0], &nodes[1..]);
    let c = &cluster;
    let none = json!({});

    let (status, flag) = c
        .api(
            a,
            Method::POST,
            FLAGS,
            json!({"key": "beta", "filters": everyone()}),
        )
        .await;
    assert_eq!(status, 201, "{flag}");
    for node in others {
        eventually("the new flag on B and C", || async {
            c.enabled(node, none.clone(), "beta").await == Some(true)
        })
        .await;
    }

    let beta = format!("{FLAGS}{}/", flag["id"]);
    let (status, body) = c
        .api(a, Method::PATCH, &beta, json!({"filters": nobody()}))
        .await;
    assert_eq!(status, 200, "{body}");
    for node in others {
        eventually("the updated flag on B and C", || async {
            c.enabled(node, none.clone(), "beta").await == Some(false)
        })
        .await;
    }

    let (status, cohort) = c
        .api(
            a,
            Method::POST,
            COHORTS,
            json!({"name": "Plan", "filters": plan_is("pro")}),
        )
        .await;
    assert_eq!(status, 201, "{cohort}");
    let (status, body) = c
        .api(
            a,
            Method::POST,
            FLAGS,
            json!({"key": "on-plan", "filters": on_cohort(&cohort["id"])}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let pro = json!({"plan": "pro"});
    let enterprise = json!({"plan": "enterprise"});
    for node in others {
        eventually("the cohort flag on B and C", || async {
            c.enabled(node, pro.clone(), "on-plan").await == Some(true)
        })
        .await;
    }
    let (status, body) = c
        .api(
            a,
            Method::PATCH,
            &format!("{COHORTS}{}/", cohort["id"]),
            json!({"filters": plan_is("enterprise")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for node in others {
        eventually("the edited cohort on B and C", || async {
            c.enabled(node, enterprise.clone(), "on-plan").await == Some(true)
                && c.enabled(node, pro.clone(), "on-plan").await == Some(false)
        })
        .await;
    }

    let (status, body) = c
        .api(a, Method::PATCH, &beta, json!({"deleted": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    for node in others {
        eventually("the deleted flag gone from B and C", || async {
            c.enabled(node, none.clone(), "beta").await.is_none()
        })
        .await;
    }

    // A published each of its writes itself: the announcements it heard of them reloaded
    // nothing, while B and C applied flag-only changes (beta created, updated, deleted) from
    // their rows and reloaded for the cohort and the flag that references it. (At least one
    // of each: two announcements that arrive together are caught up by one apply or reload.)
    let reloads = "vexil_propagation_reloads_total{trigger=\"announcement\"}";
    let applied = "vexil_propagation_applied_total{trigger=\"announcement\"}";
    assert_eq!(
        counter(&c.client, a, reloads).await + counter(&c.client, a, applied).await,
        0.0,
        "A reloaded or applied its own writes again"
    );
    for node in others {
        assert!(counter(&c.client, node, applied).await >= 1.0);
        assert!(counter(&c.client, node, reloads).await >= 1.0);
    }

    // A project created by another process is served by every node.
    let other = create_project(&db.url, "Later");
    let other_token = other["api_token"].as_str().unwrap();
    for node in &nodes {
        eventually("the new project on every node", || async {
            c.flags_for(node, other_token, none.clone()).await.0 == 200
        })
        .await;
    }

    // Cut every node's feed connection: they subscribe again, and a change made right after
    // still arrives (announced on the new subscription, or found by the check made on
    // resubscribing).
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(cut.len(), 3, "one feed connection per node");
    let (status, body) = c
        .api(
            a,
            Method::POST,
            FLAGS,
            json!({"key": "after-cut", "filters": everyone()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for node in others {
        eventually("a change after the feed was cut, on B and C", || async {
            c.enabled(node, none.clone(), "after-cut").await == Some(true)
        })
        .await;
    }
    eventually("every node subscribed again", || async {
        let mut n = 0;
        for node in &nodes {
            if counter(&c.client, node, "vexil_change_feed_subscriptions_total").await >= 2.0 {
                n += 1;
            }
        }
        n == nodes.len()
    })
    .await;
    admin.close().await.unwrap();
}

/// A change committed without an announcement (as when one is lost: a notification is not
/// queued for a listener that is reconnecting) reaches a node through the periodic revision
/// check; so does a change of the project's public token, which then names the project on
/// that node while the old one no longer does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_announcement_heals_through_the_revision_check() {
    let Some(db) = pg::TempDatabase::create().await else {
        return;
    };
    let keys = create_project(&db.url, "Heal");
    let cluster = Cluster::new(&keys);
    let c = &cluster;
    let project = keys["id"].as_i64().unwrap();
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&db.url, "200ms")).collect();
    let none = json!({});
    let (status, body) = c
        .api(
            &nodes[0],
            Method::POST,
            FLAGS,
            json!({"key": "beta", "filters": everyone()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for node in &nodes {
        eventually("the flag on every node", || async {
            c.enabled(node, none.clone(), "beta").await == Some(true)
        })
        .await;
    }

    // The write a node would make, minus `pg_notify`.
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "UPDATE feature_flags SET active = false, version = version + 1 WHERE key = 'beta'",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE projects SET revision = revision + 1 WHERE id = $1")
        .bind(project)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for node in &nodes {
        eventually("the unannounced change on every node", || async {
            // An inactive flag is left out of the response.
            c.enabled(node, none.clone(), "beta").await.is_none()
        })
        .await;
        let healed = "vexil_propagation_reloads_total{trigger=\"check\"}";
        assert!(counter(&c.client, node, healed).await >= 1.0);
    }

    let new_token = format!("phc_{}", uuid::Uuid::new_v4().simple());
    sqlx::query("UPDATE projects SET api_token = $1, revision = revision + 1 WHERE id = $2")
        .bind(&new_token)
        .bind(project)
        .execute(&mut conn)
        .await
        .unwrap();
    for node in &nodes {
        eventually("the new token on every node", || async {
            c.flags_for(node, &new_token, none.clone()).await.0 == 200
        })
        .await;
        let (status, _) = c.flags_for(node, &c.token, none.clone()).await;
        assert_ne!(status, 200, "the old token still names the project");
    }
    conn.close().await.unwrap();
}

fn on_flag(id: &Value) -> Value {
    json!({"groups": [{"properties": [
        {"key": id.to_string(), "type": "flag", "operator": "flag_evaluates_to", "value": true}
    ], "rollout_percentage": 100}]})
}

fn person_plan(plan: &str) -> Value {
    json!({"groups": [{"properties": [{"key": "plan", "type": "person", "value": plan}], "rollout_percentage": 100}]})
}

/// Issue 14 item 2: flag changes made through node A reach node B as the changed rows, applied
/// without reloading the project, and every snapshot B so builds is the one a fresh load of
/// the same revision builds: B's `/flags/definitions` ETag equals A's after each change, and a
/// node started at the end (a whole load) has it too. The changes cover what an incremental
/// path can get wrong: a new flag, a flag another flag depends on switched off, re-keyed and
/// deleted (its dependant must follow), several changes coalesced into one catch-up. A cohort
/// edit that changes a flag's answer is not replayable row by row: B reloads for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_changes_elsewhere_are_applied_as_a_fresh_load_would_build_them() {
    let Some(db) = pg::TempDatabase::create().await else {
        return;
    };
    let keys = create_project(&db.url, "Incremental");
    let cluster = Cluster::new(&keys);
    let c = &cluster;
    let nodes: Vec<Node> = (0..2).map(|_| Node::start(&db.url, "3600s")).collect();
    let (a, b) = (&nodes[0], &nodes[1]);
    let none = json!({});
    let pro = json!({"plan": "pro"});
    // B's snapshot is A's (each built incrementally) once B has the change.
    let same = |what: &'static str| async move {
        let want = c.etag(a).await;
        eventually(what, || async { c.etag(b).await == want }).await;
    };
    let create = |key: &'static str, filters: Value| async move {
        let (status, flag) = c
            .api(
                a,
                Method::POST,
                FLAGS,
                json!({"key": key, "filters": filters}),
            )
            .await;
        assert_eq!(status, 201, "{flag}");
        flag
    };
    let patch = |flag: Value, body: Value| async move {
        let path = format!("{FLAGS}{}/", flag["id"]);
        let (status, body) = c.api(a, Method::PATCH, &path, body).await;
        assert_eq!(status, 200, "{body}");
    };

    let base = create("base", everyone()).await;
    same("a new flag").await;
    let dep = create("dep", on_flag(&base["id"])).await;
    let plan = create("plan", person_plan("pro")).await;
    same("two new flags, one reading another").await;
    assert_eq!(c.enabled(b, none.clone(), "dep").await, Some(true));
    assert_eq!(c.enabled(b, pro.clone(), "plan").await, Some(true));
    assert_eq!(c.enabled(b, none.clone(), "plan").await, Some(false));

    patch(base.clone(), json!({"filters": nobody()})).await;
    same("the flag read by another switched off").await;
    assert_eq!(c.enabled(b, none.clone(), "base").await, Some(false));
    assert_eq!(c.enabled(b, none.clone(), "dep").await, Some(false));

    patch(
        base.clone(),
        json!({"key": "base-renamed", "filters": everyone()}),
    )
    .await;
    same("the flag read by another re-keyed").await;
    assert_eq!(c.enabled(b, none.clone(), "base").await, None);
    assert_eq!(c.enabled(b, none.clone(), "base-renamed").await, Some(true));
    assert_eq!(c.enabled(b, none.clone(), "dep").await, Some(true));

    // A burst: B catches up on several revisions at once, ending with two deletions (the
    // dependant first: a flag others depend on cannot be deleted).
    patch(plan.clone(), json!({"filters": person_plan("enterprise")})).await;
    let extra = create("extra", nobody()).await;
    patch(extra.clone(), json!({"filters": everyone()})).await;
    patch(dep.clone(), json!({"deleted": true})).await;
    patch(base.clone(), json!({"deleted": true})).await;
    same("a burst of changes, ending with deletions").await;
    let (_, flags) = c.flags_for(b, &c.token, pro.clone()).await;
    let served: Vec<(&str, bool)> = flags
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, f)| (k.as_str(), f["enabled"] == json!(true)))
        .collect();
    assert_eq!(served, vec![("extra", true), ("plan", false)], "{flags}");
    let reloads = "vexil_propagation_reloads_total";
    let applied = "vexil_propagation_applied_total";
    assert_eq!(counter(&c.client, b, reloads).await, 0.0, "B reloaded");
    assert!(counter(&c.client, b, applied).await >= 5.0);

    // A node loading the project whole builds the same snapshot.
    let fresh = Node::start(&db.url, "3600s");
    assert_eq!(c.etag(&fresh).await, c.etag(b).await);

    // A cohort edit changes a flag's answer without touching a flag row: B reloads for it.
    let (status, cohort) = c
        .api(
            a,
            Method::POST,
            COHORTS,
            json!({"name": "Plan", "filters": plan_is("pro")}),
        )
        .await;
    assert_eq!(status, 201, "{cohort}");
    create("on-plan", on_cohort(&cohort["id"])).await;
    eventually("the cohort flag on B", || async {
        c.enabled(b, pro.clone(), "on-plan").await == Some(true)
    })
    .await;
    let reloaded = counter(&c.client, b, reloads).await;
    assert!(reloaded >= 1.0);
    let (status, body) = c
        .api(
            a,
            Method::PATCH,
            &format!("{COHORTS}{}/", cohort["id"]),
            json!({"filters": plan_is("enterprise")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("the edited cohort on B", || async {
        c.enabled(b, pro.clone(), "on-plan").await == Some(false)
    })
    .await;
    assert!(counter(&c.client, b, reloads).await > reloaded);
    same("after the cohort edit").await;
}

/// Issue 15 item 3 across nodes: a client streaming `/flags/definitions/stream` from node B and
/// one streaming `/ofrep/v1/stream` from node C get an event for each change made through node
/// A; B's event ids are store revisions, so a client reconnecting to B — or to C — with
/// `Last-Event-ID` receives exactly the changes it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_node_reach_streams_on_the_others() {
    let Some(db) = pg::TempDatabase::create().await else {
        return;
    };
    let keys = create_project(&db.url, "Streams");
    let cluster = Cluster::new(&keys);
    let c = &cluster;
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&db.url, "3600s")).collect();
    let (a, b, n3) = (&nodes[0], &nodes[1], &nodes[2]);
    let definitions =
        |node: &Node| format!("{}/flags/definitions/stream?token={}", node.url, c.token);
    let auth = format!("Bearer {}", c.secret);
    let mut on_b = Sse::open(&c.client, &definitions(b), &[("authorization", &auth)]).await;
    let payload = on_b.next().await;
    assert_eq!(payload.event, "definitions", "{payload:?}");
    let ofrep = format!("{}/ofrep/v1/stream?token={}", n3.url, c.token);
    let mut on_c = Sse::open(&c.client, &ofrep, &[]).await;

    let (status, flag) = c
        .api(
            a,
            Method::POST,
            FLAGS,
            json!({"key": "beta", "filters": everyone()}),
        )
        .await;
    assert_eq!(status, 201, "{flag}");
    let created = on_b.next().await;
    assert_eq!(created.event, "change");
    let data = created.json();
    assert_eq!(
        (&data["type"], &data["action"], &data["key"]),
        (&json!("flag"), &json!("created"), &json!("beta"))
    );
    assert_eq!(data["etag"], c.etag(b).await.as_str());
    let refetch = on_c.next().await;
    assert_eq!(refetch.json()["type"], "refetchEvaluation");
    assert_eq!(
        refetch.id, created.id,
        "both nodes stamp the change with its revision"
    );
    let seen = created.id.clone().unwrap();
    drop(on_b);

    // Two changes while disconnected, each live on B and C before the next.
    let beta = format!("{FLAGS}{}/", flag["id"]);
    let none = json!({});
    let (status, body) = c
        .api(a, Method::PATCH, &beta, json!({"filters": nobody()}))
        .await;
    assert_eq!(status, 200, "{body}");
    // Live on both before the next: a node that hears of two changes at once applies them
    // together and publishes one event for the flag (its state after both).
    eventually("the update on B and C", || async {
        c.enabled(b, none.clone(), "beta").await == Some(false)
            && c.enabled(n3, none.clone(), "beta").await == Some(false)
    })
    .await;
    let (status, body) = c
        .api(a, Method::PATCH, &beta, json!({"deleted": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    eventually("the deletion on B and C", || async {
        c.enabled(b, none.clone(), "beta").await.is_none()
            && c.enabled(n3, none.clone(), "beta").await.is_none()
    })
    .await;
    for node in [b, n3] {
        let mut resumed = Sse::open(
            &c.client,
            &definitions(node),
            &[("authorization", &auth), ("last-event-id", &seen)],
        )
        .await;
        let missed = [resumed.next().await, resumed.next().await];
        let actions: Vec<Value> = missed.iter().map(|e| e.json()["action"].clone()).collect();
        assert_eq!(
            actions,
            vec![json!("updated"), json!("deleted")],
            "{missed:?}"
        );
        assert!(missed.iter().all(|e| e.json()["key"] == "beta"));
        assert!(
            resumed
                .quiet_for(Duration::from_millis(300))
                .await
                .is_none(),
            "nothing beyond what was missed"
        );
    }
}

/// `scripts/cluster.sh --quick`: PostgreSQL (a fresh database here), three nodes and the
/// round-robin demo — the script users run, so it cannot rot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_script_runs_its_demo() {
    let Some(db) = pg::TempDatabase::create().await else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/cluster.sh");
    let url = db.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args([script, "--quick", "--bin", env!("CARGO_BIN_EXE_vexil")])
            .env("VEXIL_DATABASE_URL", url)
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "all three nodes serve cluster-demo=true",
        "all three nodes serve cluster-demo=false",
        "cluster.sh: demo passed",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}

/// Every option of `vexil serve --help` has a row in `docs/deployment.md` with its
/// environment variable and default, and every row names a real option.
#[test]
fn the_deployment_guide_lists_every_serve_option() {
    let help = Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args(["serve", "--help"])
        .output()
        .expect("vexil runs");
    let help = String::from_utf8(help.stdout).unwrap();
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/deployment.md"
    ))
    .unwrap();
    let rows: Vec<&str> = guide.lines().filter(|l| l.starts_with("| `--")).collect();
    // clap's long help: "      --flag <VALUE>" then the description with [env: …] [default: …].
    let mut options = Vec::new();
    let mut lines = help.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim_start().strip_prefix("--") else {
            continue;
        };
        let flag = rest.split([' ', '=']).next().unwrap().to_owned();
        if flag == "help" {
            continue;
        }
        let mut text = String::new();
        while let Some(next) = lines.peek() {
            if next.trim_start().starts_with('-') {
                break;
            }
            text.push_str(lines.next().unwrap());
        }
        let env = text
            .split("[env: ")
            .nth(1)
            .and_then(|t| t.split('=').next())
            .unwrap_or_else(|| panic!("--{flag} has no environment variable"))
            .to_owned();
        let default = text
            .split("[default: ")
            .nth(1)
            .and_then(|t| t.split(']').next())
            .map(str::to_owned);
        options.push((flag, env, default));
    }
    assert!(
        options.len() >= 20,
        "parsed {} options from:\n{help}",
        options.len()
    );
    for (flag, env, default) in &options {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| `--{flag}` |")))
            .unwrap_or_else(|| panic!("docs/deployment.md has no row for --{flag}"));
        assert!(row.contains(&format!("`{env}`")), "{row}: expected {env}");
        let shown = default
            .as_deref()
            .map_or("—".to_owned(), |d| format!("`{d}`"));
        assert!(
            row.contains(&format!("| {shown} |")),
            "{row}: expected default {shown}"
        );
    }
    for row in &rows {
        let flag = row.split('`').nth(1).unwrap().trim_start_matches("--");
        assert!(
            options.iter().any(|(f, _, _)| f == flag),
            "docs/deployment.md lists --{flag}, which vexil serve does not have"
        );
    }
}
