//! Open-loop, fixed-rate HTTP/1.1 load generator (see `bench/overload.sh`).
//!
//! Requests are scheduled at a fixed rate whatever the answers: request `i` is due at
//! `start + i / rate`. A due request goes out on an idle keep-alive connection, on a new one
//! while fewer than `--connections` are open, or else waits in the generator for the first
//! connection to free up. Its latency runs from the time it was *due*, not from when it left,
//! so a server that falls behind is charged for every request it made wait (no coordinated
//! omission); how late requests left is reported separately, so that a generator that cannot
//! keep up is visible rather than mistaken for the server.
//!
//! Usage: `openloop URL --body FILE --rate N --duration SECS [--connections N] [--timeout SECS]
//! [--header 'name: value']... [--json]`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

/// The command line.
#[derive(Debug, Parser)]
struct Args {
    /// `http://host:port/path?query` (plain HTTP/1.1).
    url: Uri,
    /// Request body (POSTed); without it, GET.
    #[arg(long)]
    body: Option<PathBuf>,
    /// Requests per second offered.
    #[arg(long)]
    rate: u32,
    /// Seconds of schedule.
    #[arg(long)]
    duration: f64,
    /// Most connections open at once.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    /// Seconds a sent request may take before it is abandoned (and its connection closed).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Extra request header, `name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What every request is made of.
struct Target {
    addr: SocketAddr,
    method: Method,
    path: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Target {
    fn request(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(self.path.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        Ok(request.body(Full::new(self.body.clone()))?)
    }
}

/// How a request ended.
enum Outcome {
    /// An answer with this status.
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// Connecting failed.
    Connect,
    /// The connection failed mid-request.
    Broken,
}

/// One worker's tally; latencies in microseconds.
#[derive(Default)]
struct Tally {
    by_status: BTreeMap<u16, Vec<u64>>,
    timeouts: u64,
    connect_errors: u64,
    broken: u64,
    /// How long after being due each request left.
    send_lag: Vec<u64>,
    /// Requests that left before the schedule ended.
    sent_on_schedule: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (status, mut latencies) in other.by_status {
            self.by_status
                .entry(status)
                .or_default()
                .append(&mut latencies);
        }
        self.timeouts += other.timeouts;
        self.connect_errors += other.connect_errors;
        self.broken += other.broken;
        self.send_lag.extend(other.send_lag);
        self.sent_on_schedule += other.sent_on_schedule;
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The queue of due requests (their due times), shared by the connections.
struct Queue {
    due: Mutex<mpsc::UnboundedReceiver<Instant>>,
    /// Due and not yet taken by a connection.
    waiting: AtomicUsize,
    /// Connections waiting for a due request.
    idle: AtomicUsize,
}

/// One connection: takes due requests until the queue closes or `stop` passes (what is still
/// queued then counts as not sent).
async fn connection(
    target: Arc<Target>,
    queue: Arc<Queue>,
    schedule_end: Instant,
    stop: Instant,
    timeout: Duration,
) -> Tally {
    let mut tally = Tally::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        queue.idle.fetch_add(1, Ordering::Relaxed);
        let next =
            tokio::time::timeout_at(stop.into(), async { queue.due.lock().await.recv().await })
                .await;
        queue.idle.fetch_sub(1, Ordering::Relaxed);
        let Ok(Some(due)) = next else { break };
        queue.waiting.fetch_sub(1, Ordering::Relaxed);
        let sent = Instant::now();
        // `timeout_at` only fires on a pending `recv`: with a backlog it never is.
        if sent >= stop {
            break;
        }
        tally
            .send_lag
            .push(micros(sent.saturating_duration_since(due)));
        if sent < schedule_end {
            tally.sent_on_schedule += 1;
        }
        let outcome = match tokio::time::timeout(timeout, exchange(&target, &mut sender)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Timeout,
        };
        let latency = micros(due.elapsed());
        match outcome {
            Outcome::Status(status) => tally.by_status.entry(status).or_default().push(latency),
            Outcome::Timeout => {
                sender = None;
                tally.timeouts += 1;
            }
            Outcome::Connect => tally.connect_errors += 1,
            Outcome::Broken => {
                sender = None;
                tally.broken += 1;
            }
        }
    }
    tally
}

/// Sends one request on `sender` (connecting first if there is none or it is closed) and reads
/// the whole answer.
async fn exchange(target: &Target, sender: &mut Option<SendRequest<Full<Bytes>>>) -> Outcome {
    if sender.as_ref().is_none_or(SendRequest::is_closed) {
        *sender = match connect(target.addr).await {
            Ok(s) => Some(s),
            Err(_) => return Outcome::Connect,
        };
    }
    let Some(s) = sender.as_mut() else {
        return Outcome::Connect;
    };
    let Ok(request) = target.request() else {
        return Outcome::Broken;
    };
    if s.ready().await.is_err() {
        return Outcome::Broken;
    }
    let Ok(response) = s.send_request(request).await else {
        return Outcome::Broken;
    };
    let status = response.status().as_u16();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            return Outcome::Broken;
        }
    }
    Outcome::Status(status)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// `p`-th percentile of sorted `values`, in milliseconds.
fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    // Nearest rank; the float round trip is exact for any realistic sample count.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, last + 1);
    #[allow(clippy::cast_precision_loss)]
    Some(sorted[rank - 1] as f64 / 1_000.0)
}

const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("max", 100.0),
];

fn summary(values: &mut [u64]) -> serde_json::Value {
    values.sort_unstable();
    let mut out = serde_json::Map::new();
    out.insert("count".into(), values.len().into());
    for (name, p) in PERCENTILES {
        out.insert(name.into(), json!(percentile(values, p)));
    }
    out.into()
}

fn target(args: &Args) -> anyhow::Result<Target> {
    if args.url.scheme_str() != Some("http") {
        bail!("only http:// URLs");
    }
    let authority = args.url.authority().context("URL without a host")?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(
        authority.host(),
        authority.port_u16().unwrap_or(80),
    ))?
    .next()
    .context("host did not resolve")?;
    let path: Uri = args
        .url
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()?;
    let mut headers = vec![(HOST, HeaderValue::from_str(authority.as_str())?)];
    let (method, body) = match &args.body {
        Some(file) => {
            let body =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
            (Method::POST, Bytes::from(body))
        }
        None => (Method::GET, Bytes::new()),
    };
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("header without a colon: {header}"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())?;
        headers.retain(|(n, _)| *n != name);
        headers.push((name, HeaderValue::from_str(value.trim())?));
    }
    Ok(Target {
        addr,
        method,
        path,
        headers,
        body,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = Arc::new(target(&args)?);
    let timeout = Duration::try_from_secs_f64(args.timeout).context("--timeout")?;
    let schedule = Duration::try_from_secs_f64(args.duration).context("--duration")?;
    if args.rate == 0 || schedule.is_zero() || args.connections == 0 {
        bail!("--rate, --duration and --connections must be positive");
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = (f64::from(args.rate) * args.duration).round() as u64;
    let interval = Duration::from_secs(1) / args.rate;

    let (due_tx, due_rx) = mpsc::unbounded_channel();
    let queue = Arc::new(Queue {
        due: Mutex::new(due_rx),
        waiting: AtomicUsize::new(0),
        idle: AtomicUsize::new(0),
    });
    let start = Instant::now() + Duration::from_millis(50);
    let schedule_end = start + schedule;
    let stop = schedule_end + timeout;
    let mut connections = Vec::new();
    for i in 0..total {
        let due = start + interval * u32::try_from(i).context("too many requests")?;
        tokio::time::sleep_until(due.into()).await;
        queue.waiting.fetch_add(1, Ordering::Relaxed);
        if due_tx.send(due).is_err() {
            bail!("every connection stopped");
        }
        // Open a connection when no open one is free to take this request.
        if queue.waiting.load(Ordering::Relaxed) > queue.idle.load(Ordering::Relaxed)
            && connections.len() < args.connections
        {
            connections.push(tokio::spawn(connection(
                Arc::clone(&target),
                Arc::clone(&queue),
                schedule_end,
                stop,
                timeout,
            )));
        }
    }
    let dispatched = Instant::now();
    drop(due_tx);
    let mut tally = Tally::default();
    let opened = connections.len();
    for c in connections {
        tally.merge(c.await?);
    }

    let answered: u64 = tally.by_status.values().map(|v| v.len() as u64).sum();
    let failed = tally.timeouts + tally.connect_errors + tally.broken;
    let not_sent = total.saturating_sub(answered + failed);
    let per_second = |n: u64| {
        #[allow(clippy::cast_precision_loss)]
        let n = n as f64;
        n / args.duration
    };
    let mut by_status = serde_json::Map::new();
    let mut all = Vec::new();
    for (status, latencies) in &mut tally.by_status {
        all.extend_from_slice(latencies);
        let mut s = summary(latencies);
        s["per_second"] = json!(per_second(latencies.len() as u64));
        by_status.insert(status.to_string(), s);
    }
    let report = json!({
        "rate": args.rate,
        "duration_s": args.duration,
        "offered": total,
        "sent_on_schedule": tally.sent_on_schedule,
        "sent_per_second": per_second(tally.sent_on_schedule),
        "dispatch_behind_ms": micros(dispatched.saturating_duration_since(schedule_end)) as f64 / 1_000.0,
        "send_lag_ms": summary(&mut tally.send_lag),
        "connections_opened": opened,
        "answered": answered,
        "answered_per_second": per_second(answered),
        "timeouts": tally.timeouts,
        "connect_errors": tally.connect_errors,
        "broken": tally.broken,
        "not_sent": not_sent,
        "latency_ms_by_status": by_status,
        "latency_ms_all_answers": summary(&mut all),
    });
    if args.json {
        println!("{report:#}");
    } else {
        print_text(&report);
    }
    Ok(())
}

fn print_text(r: &serde_json::Value) {
    let ms = |v: &serde_json::Value| v.as_f64().map_or("-".to_owned(), |v| format!("{v:.2}"));
    println!(
        "offered {} req/s × {} s = {} requests; sent on schedule {} ({:.0} req/s); {} connections",
        r["rate"],
        r["duration_s"],
        r["offered"],
        r["sent_on_schedule"],
        r["sent_per_second"].as_f64().unwrap_or(0.0),
        r["connections_opened"]
    );
    let lag = &r["send_lag_ms"];
    println!(
        "send lag behind schedule: p50 {} p99 {} max {} ms",
        ms(&lag["p50"]),
        ms(&lag["p99"]),
        ms(&lag["max"])
    );
    println!(
        "answered {} ({:.0} req/s); timeouts {}, connect errors {}, broken {}, not sent {}",
        r["answered"],
        r["answered_per_second"].as_f64().unwrap_or(0.0),
        r["timeouts"],
        r["connect_errors"],
        r["broken"],
        r["not_sent"]
    );
    println!("latency from due time, ms: status count req/s p50 p90 p99 p99.9 max");
    let row = |name: &str, s: &serde_json::Value| {
        println!(
            "  {name:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            s["count"],
            s["per_second"]
                .as_f64()
                .map_or("-".to_owned(), |v| format!("{v:.0}")),
            ms(&s["p50"]),
            ms(&s["p90"]),
            ms(&s["p99"]),
            ms(&s["p99.9"]),
            ms(&s["max"])
        );
    };
    if let Some(by_status) = r["latency_ms_by_status"].as_object() {
        for (status, s) in by_status {
            row(status, s);
        }
    }
    row("all", &r["latency_ms_all_answers"]);
}
