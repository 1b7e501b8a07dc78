//! The `vexil` binary as a user runs it: `eval` output, exit codes and messages, `project create`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

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
