//! Observability through the live server: `/metrics` (parsed whole by a Prometheus text-format
//! parser on every scrape) moves with requests, evaluations, refusals, capture batches, writer
//! restarts and stale snapshots; the access log carries the request id and is sampled.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_parse::{Scrape, Value as Metric};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use vexil_server::{OverloadLimits, Rate, Settings};
use vexil_store::Store;

use crate::faulty::{Faults, FaultyStore};
use crate::support::TestApp;

/// `GET /metrics`, checked line by line and parsed.
async fn scrape(app: &TestApp) -> Scrape {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    for line in text.lines() {
        assert!(exposition_line(line), "not exposition format: {line:?}");
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// Whether `line` is a line of the Prometheus text format (0.0.4): `# HELP name text`,
/// `# TYPE name type`, or `name{label="value",...} number`. `prometheus_parse` is lenient (it
/// skips what it cannot read, and its label pattern refuses some valid values, such as route
/// templates with braces), so every line is checked against the grammar here first.
fn exposition_line(line: &str) -> bool {
    fn name(s: &str) -> Option<&str> {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(s.len());
        let first = s.chars().next()?;
        (end > 0 && !first.is_ascii_digit()).then(|| &s[end..])
    }
    if let Some(rest) = line.strip_prefix("# HELP ") {
        return name(rest).is_some_and(|r| r.starts_with(' '));
    }
    if let Some(rest) = line.strip_prefix("# TYPE ") {
        return name(rest).is_some_and(|r| {
            ["counter", "gauge", "histogram", "summary", "untyped"].contains(&r.trim_start())
        });
    }
    let Some(mut rest) = name(line) else {
        return false;
    };
    if let Some(labels) = rest.strip_prefix('{') {
        rest = labels;
        loop {
            let Some(after) = name(rest).and_then(|r| r.strip_prefix("=\"")) else {
                return false;
            };
            // A quoted value: `\\`, `\"` and `\n` escapes, no raw newline or quote.
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\' | '"' | 'n')) => {}
                        _ => return false,
                    },
                    Some((i, '"')) => break i,
                    Some((_, '\n')) | None => return false,
                    Some(_) => {}
                }
            };
            rest = &after[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            } else {
                return false;
            }
        }
    }
    let Some(value) = rest.strip_prefix(' ') else {
        return false;
    };
    value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value)
}

/// The sample of `name` whose labels include `labels`: its value (a histogram's count).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))?;
    Some(match &sample.value {
        Metric::Counter(v) | Metric::Gauge(v) | Metric::Untyped(v) => *v,
        Metric::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)?,
        Metric::Summary(_) => panic!("no summaries here"),
    })
}

fn flags_body(app: &TestApp) -> Value {
    json!({"token": app.token(), "distinct_id": "u"})
}

fn all_on() -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": 100}]})
}

fn all_off() -> Value {
    json!({"groups": [{"properties": [], "rollout_percentage": 0}]})
}

#[tokio::test]
async fn a_flags_request_is_timed_by_route_and_counted_per_flag_and_result() {
    let app = TestApp::spawn().await;
    app.put_flag("on", all_on()).await;
    app.put_flag("off", all_off()).await;
    let (status, body) = app.post("/flags?v=2", &flags_body(&app)).await;
    assert_eq!(status, 200, "{body}");

    let m = scrape(&app).await;
    let route = [("route", "/flags"), ("method", "POST")];
    assert_eq!(
        value(&m, "vexil_http_request_duration_seconds", &route),
        Some(1.0)
    );
    let ok = [("route", "/flags"), ("method", "POST"), ("status", "2xx")];
    assert_eq!(value(&m, "vexil_http_requests_total", &ok), Some(1.0));
    let project = app.project.project.id.to_string();
    let count = |m: &Scrape, flag: &str, result: &str| {
        let labels = [
            ("project", project.as_str()),
            ("flag", flag),
            ("result", result),
        ];
        value(m, "vexil_flag_evaluations_total", &labels)
    };
    assert_eq!(count(&m, "on", "enabled"), Some(1.0));
    assert_eq!(count(&m, "on", "disabled"), Some(0.0));
    assert_eq!(count(&m, "off", "disabled"), Some(1.0));
    assert_eq!(count(&m, "off", "enabled"), Some(0.0));

    // A flag write swaps the snapshot: the counts carry over.
    app.put_flag("third", all_on()).await;
    let (status, _) = app.post("/flags?v=2", &flags_body(&app)).await;
    assert_eq!(status, 200);
    let m = scrape(&app).await;
    assert_eq!(count(&m, "on", "enabled"), Some(2.0));
    assert_eq!(count(&m, "third", "enabled"), Some(1.0));
    assert!(value(&m, "vexil_snapshot_version", &[("project", &project)]).unwrap() >= 2.0);
    assert!(value(&m, "vexil_snapshot_age_seconds", &[("project", &project)]).is_some());
    // No person lookup was needed (no flag reads properties); the route of the scrape itself
    // shows up on the next one.
    assert_eq!(
        value(&m, "vexil_http_requests_total", &[("route", "/metrics")]),
        Some(1.0)
    );
    app.stop().await;
}

#[tokio::test]
async fn shed_and_rate_limited_requests_are_counted() {
    let app = TestApp::spawn_with(Settings {
        overload: OverloadLimits {
            max_in_flight_evaluations: 1,
            evaluation_rate: Rate {
                per_second: 1,
                burst: 2,
            },
            ..OverloadLimits::default()
        },
        ..Settings::default()
    })
    .await;
    // A request whose body is still on its way holds the only slot (and a token).
    let body = flags_body(&app).to_string();
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /flags?v=2 HTTP/1.1\r\nHost: vexil\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..10]
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.post("/flags?v=2", &flags_body(&app)).await.0, 503);
    slow.write_all(&body.as_bytes()[10..]).await.unwrap();
    drop(slow);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The burst of two is spent (the slow one and this one): the next is limited.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.post("/flags?v=2", &flags_body(&app)).await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let limited = statuses.iter().filter(|s| **s == 429).count() as f64;

    let m = scrape(&app).await;
    let shed = value(
        &m,
        "vexil_evaluations_shed_total",
        &[("reason", "in_flight")],
    );
    assert_eq!(shed, Some(1.0));
    let counted = value(&m, "vexil_rate_limited_total", &[("bucket", "evaluation")]);
    assert_eq!(counted, Some(limited));
    let capture = value(&m, "vexil_rate_limited_total", &[("bucket", "capture")]);
    assert_eq!(capture, Some(0.0));
    let server_errors = [("route", "/flags"), ("status", "5xx")];
    assert_eq!(
        value(&m, "vexil_http_requests_total", &server_errors),
        Some(1.0)
    );
    app.stop().await;
}

fn capture_batch(app: &TestApp, names: &[&str]) -> Value {
    let events: Vec<Value> = names
        .iter()
        .map(|name| json!({"event": name, "distinct_id": "u", "properties": {}}))
        .collect();
    json!({"api_key": app.token(), "batch": events})
}

#[tokio::test]
async fn a_capture_batch_moves_the_batch_and_store_metrics() {
    let app = TestApp::spawn().await;
    let m = scrape(&app).await;
    assert_eq!(value(&m, "vexil_ingest_batch_events", &[]), Some(0.0));
    assert_eq!(value(&m, "vexil_ingest_queue_depth", &[]), Some(0.0));

    let (status, body) = app
        .post("/batch/", &capture_batch(&app, &["a", "b", "c"]))
        .await;
    assert_eq!(status, 200, "{body}");
    let m = scrape(&app).await;
    assert_eq!(value(&m, "vexil_ingest_batch_events", &[]), Some(1.0));
    assert_eq!(value(&m, "vexil_ingest_batch_events_sum", &[]), Some(3.0));
    let write = [("operation", "write_capture")];
    assert_eq!(
        value(&m, "vexil_store_operation_duration_seconds", &write),
        Some(1.0)
    );
    assert_eq!(value(&m, "vexil_store_errors_total", &write), Some(0.0));
    assert_eq!(value(&m, "vexil_ingest_queue_depth", &[]), Some(0.0));
    app.stop().await;
}

#[tokio::test]
async fn a_writer_restart_is_counted() {
    let app = TestApp::spawn_with(Settings {
        ingest_restart_delay: Duration::from_millis(10),
        ingest_panic_on_event: Some("boom".into()),
        ..Settings::default()
    })
    .await;
    let m = scrape(&app).await;
    assert_eq!(
        value(&m, "vexil_ingest_writer_restarts_total", &[]),
        Some(0.0)
    );
    let (status, _) = app.post("/batch/", &capture_batch(&app, &["boom"])).await;
    assert_eq!(status, 503);
    let m = scrape(&app).await;
    assert_eq!(
        value(&m, "vexil_ingest_writer_restarts_total", &[]),
        Some(1.0)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_project_serving_an_older_snapshot_than_its_store_is_reported() {
    let faults = Arc::new(Faults::default());
    let wrap = {
        let faults = Arc::clone(&faults);
        move |inner: Arc<dyn Store>| -> Arc<dyn Store> { Arc::new(FaultyStore { inner, faults }) }
    };
    let app = TestApp::spawn_wrapped(Settings::default(), wrap).await;
    let m = scrape(&app).await;
    assert_eq!(value(&m, "vexil_stale_projects", &[]), Some(0.0));

    // Every reload fails from now on: a cohort write commits but cannot go live.
    faults.failing_reloads.store(u32::MAX, Ordering::SeqCst);
    let cohort = json!({"name": "Pro", "filters": {"properties": {"type": "AND", "values": [
        {"type": "AND", "values": [{"key": "plan", "type": "person", "value": "pro"}]}]}}});
    let path = "/api/projects/@current/cohorts/";
    let (status, body) = app.api(reqwest::Method::POST, path, Some(&cohort)).await;
    assert_eq!(status, 201, "{body}");
    let m = scrape(&app).await;
    assert_eq!(value(&m, "vexil_stale_projects", &[]), Some(1.0));
    let failures = value(&m, "vexil_snapshot_publication_failures_total", &[]);
    assert_eq!(failures, Some(1.0));
    let load = [("operation", "load_project")];
    assert!(value(&m, "vexil_store_errors_total", &load).unwrap() >= 1.0);

    faults.failing_reloads.store(0, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.state.catalog.stale_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let m = scrape(&app).await;
    assert_eq!(value(&m, "vexil_stale_projects", &[]), Some(0.0));
    app.stop().await;
}

/// Log output captured as JSON lines: the events of the threads that asked for it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static SINK: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Writes to the current thread's sink, if any.
struct ThreadSink;

impl Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|sink| {
            if let Some(sink) = &*sink.borrow() {
                sink.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The access-log events written so far.
    fn access_events(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|event| event["target"] == "vexil::access")
            .map(|event| event["fields"].clone())
            .collect()
    }
}

/// Captures this thread's log events (the test's single-threaded runtime runs the server too).
/// One global subscriber for the whole test binary: a thread-scoped one races with tests on
/// other threads over tracing's per-callsite interest cache.
fn capture_logs() -> Captured {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(|| ThreadSink)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    let captured = Captured::default();
    SINK.with(|sink| *sink.borrow_mut() = Some(captured.clone()));
    captured
}

#[tokio::test]
async fn the_access_log_carries_the_request_id_and_echoes_it() {
    let logs = capture_logs();
    let app = TestApp::spawn_with(Settings {
        access_log_sample_rate: 1.0,
        ..Settings::default()
    })
    .await;
    let resp = app
        .client
        .post(app.url("/flags?v=2"))
        .header("x-request-id", "client-42")
        .json(&flags_body(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "client-42");

    // An id with a character that could forge a log line is replaced by a fresh UUID.
    let resp = app
        .client
        .post(app.url("/flags?v=2"))
        .header("x-request-id", "bad id\"")
        .json(&flags_body(&app))
        .send()
        .await
        .unwrap();
    let fresh = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&fresh).is_ok(), "{fresh}");
    // The /flags envelope reports the same id.
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["requestId"], json!(fresh));

    let events = logs.access_events();
    assert_eq!(events.len(), 2, "{events:?}");
    let project = app.project.project.id.0;
    assert_eq!(
        (
            &events[0]["request_id"],
            &events[0]["method"],
            &events[0]["route"],
            &events[0]["status"],
            &events[0]["project"],
        ),
        (
            &json!("client-42"),
            &json!("POST"),
            &json!("/flags"),
            &json!(200),
            &json!(project),
        )
    );
    assert!(events[0]["duration_us"].is_u64(), "{:?}", events[0]);
    assert!(events[0]["bytes"].as_u64().unwrap() > 0, "{:?}", events[0]);
    assert_eq!(events[1]["request_id"], json!(fresh));
    app.stop().await;
}

#[tokio::test]
async fn a_zero_sample_rate_logs_no_success_but_every_server_error() {
    let logs = capture_logs();
    let app = TestApp::spawn_with(Settings {
        access_log_sample_rate: 0.0,
        ingest_restart_delay: Duration::from_millis(10),
        ingest_panic_on_event: Some("boom".into()),
        ..Settings::default()
    })
    .await;
    assert_eq!(app.post("/flags?v=2", &flags_body(&app)).await.0, 200);
    let (status, _) = app.post("/batch/", &capture_batch(&app, &["boom"])).await;
    assert_eq!(status, 503);
    let events = logs.access_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (&events[0]["route"], &events[0]["status"]),
        (&json!("/batch/"), &json!(503))
    );
    app.stop().await;
}
