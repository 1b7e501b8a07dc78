//! Change-stream benchmark against a running `vexil serve` (see `bench/stream.sh`): how long a
//! flag change made through the management API takes to reach a client of
//! `/flags/definitions/stream` (p50/p99), how many idle streams one server holds and the server's
//! memory per stream, and how long one change takes to reach every one of them.
//!
//! Usage: `stream HOST PERSONAL_KEY TOKEN SECRET_KEY SERVER_PID STREAMS CHANGES`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

struct Args {
    host: String,
    personal: String,
    token: String,
    secret: String,
    pid: u32,
    streams: usize,
    changes: usize,
}

fn args() -> anyhow::Result<Args> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [host, personal, token, secret, pid, streams, changes] = a.as_slice() else {
        bail!("usage: stream HOST PERSONAL_KEY TOKEN SECRET_KEY SERVER_PID STREAMS CHANGES");
    };
    Ok(Args {
        host: host.trim_end_matches('/').to_owned(),
        personal: personal.clone(),
        token: token.clone(),
        secret: secret.clone(),
        pid: pid.parse()?,
        streams: streams.parse()?,
        changes: changes.parse()?,
    })
}

/// The server's resident set, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

/// An open stream read by its own task, which reports the arrival of each `change` event.
async fn open_stream(
    addr: &str,
    args: &Args,
    arrivals: mpsc::UnboundedSender<Instant>,
    ready: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let mut socket = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /flags/definitions/stream?token={} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        args.token, args.secret
    );
    socket.write_all(request.as_bytes()).await?;
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 16 * 1024];
        let mut seen_payload = false;
        let mut tail = String::new();
        loop {
            let n = match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let now = Instant::now();
            tail.push_str(&String::from_utf8_lossy(&buffer[..n]));
            if !seen_payload && tail.contains("event: definitions") {
                seen_payload = true;
                ready.fetch_add(1, Ordering::SeqCst);
            }
            // A publication arrives as one chunk: count its change events.
            let changes = tail.matches("event: change\n").count();
            for _ in 0..changes {
                let _ = arrivals.send(now);
            }
            // Keep only what may hold the start of an event split across reads.
            let keep = tail.rfind("\n\n").map_or(0, |i| i + 2);
            tail.drain(..keep);
            if changes > 0 {
                tail.clear();
            }
        }
    });
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
}

struct Api {
    client: reqwest::Client,
    base: String,
    personal: String,
}

impl Api {
    async fn create_flag(&self, key: &str) -> anyhow::Result<i64> {
        let flag: Value = self
            .client
            .post(format!(
                "{}/api/projects/@current/feature_flags/",
                self.base
            ))
            .bearer_auth(&self.personal)
            .json(&json!({"key": key, "filters": {"groups": [{"rollout_percentage": 50}]}}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        flag["id"].as_i64().context("flag id")
    }

    async fn rename(&self, id: i64, name: &str) -> anyhow::Result<()> {
        self.client
            .patch(format!(
                "{}/api/projects/@current/feature_flags/{id}/",
                self.base
            ))
            .bearer_auth(&self.personal)
            .json(&json!({"name": name}))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

/// `changes` renames of `flag`, each timed from just before the PATCH is sent to the arrival of
/// its event at the watcher; the PATCH's own round trip alongside.
async fn latency(
    api: &Api,
    flag: i64,
    watcher: &mut mpsc::UnboundedReceiver<Instant>,
    changes: usize,
    label: &str,
) -> anyhow::Result<()> {
    let mut to_event = Vec::with_capacity(changes);
    let mut to_ack = Vec::with_capacity(changes);
    for i in 0..changes {
        let start = Instant::now();
        api.rename(flag, &format!("{label} {i}")).await?;
        to_ack.push(start.elapsed());
        let arrived = tokio::time::timeout(Duration::from_secs(10), watcher.recv())
            .await
            .context("no event within 10 s")?
            .context("watcher gone")?;
        to_event.push(arrived.duration_since(start));
    }
    to_event.sort();
    to_ack.sort();
    println!(
        "{label}: change -> event at the client over {changes} changes: p50 {}, p99 {}, max {} (PATCH acknowledged: p50 {}, p99 {})",
        ms(percentile(&to_event, 50.0)),
        ms(percentile(&to_event, 99.0)),
        ms(*to_event.last().unwrap_or(&Duration::ZERO)),
        ms(percentile(&to_ack, 50.0)),
        ms(percentile(&to_ack, 99.0)),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let addr = args
        .host
        .strip_prefix("http://")
        .context("HOST must be http://…")?
        .to_owned();
    let api = Api {
        client: reqwest::Client::new(),
        base: args.host.clone(),
        personal: args.personal.clone(),
    };
    let flag = api.create_flag("stream-bench").await?;
    for i in 0..50 {
        api.create_flag(&format!("filler-{i}")).await?;
    }

    // One watcher, alone.
    let ready = Arc::new(AtomicUsize::new(0));
    let (tx, mut watcher) = mpsc::unbounded_channel();
    open_stream(&addr, &args, tx, Arc::clone(&ready)).await?;
    while ready.load(Ordering::SeqCst) < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Warm up the server's allocations before the first RSS reading.
    latency(&api, flag, &mut watcher, 20, "warm-up").await?;
    latency(&api, flag, &mut watcher, args.changes, "1 stream").await?;

    // Idle streams.
    let before = rss_kib(args.pid)?;
    let (fan_tx, mut fan_rx) = mpsc::unbounded_channel();
    let opened = Instant::now();
    for _ in 0..args.streams {
        open_stream(&addr, &args, fan_tx.clone(), Arc::clone(&ready)).await?;
    }
    drop(fan_tx);
    while ready.load(Ordering::SeqCst) < args.streams + 1 {
        if opened.elapsed() > Duration::from_secs(120) {
            bail!(
                "only {} of {} streams opened",
                ready.load(Ordering::SeqCst) - 1,
                args.streams
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open_for = opened.elapsed();
    // Let the heartbeat timers and buffers settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(args.pid)?;
    let per_stream = (after.saturating_sub(before) as f64) * 1024.0 / args.streams as f64;
    println!(
        "{} idle streams open in {:.1} s; server RSS {} MiB -> {} MiB: {:.1} KiB per stream",
        args.streams,
        open_for.as_secs_f64(),
        before / 1024,
        after / 1024,
        per_stream / 1024.0,
    );

    // One change to every stream: how long until the last one has it.
    let mut fan_out = Vec::with_capacity(args.streams);
    for round in 0..5 {
        let start = Instant::now();
        api.rename(flag, &format!("fan-out {round}")).await?;
        let _ = tokio::time::timeout(Duration::from_secs(10), watcher.recv()).await;
        let mut arrivals = Vec::with_capacity(args.streams);
        while arrivals.len() < args.streams {
            let at = tokio::time::timeout(Duration::from_secs(30), fan_rx.recv())
                .await
                .context("fan-out incomplete after 30 s")?
                .context("streams gone")?;
            arrivals.push(at.duration_since(start));
        }
        arrivals.sort();
        fan_out.push((
            percentile(&arrivals, 50.0),
            percentile(&arrivals, 99.0),
            *arrivals.last().unwrap_or(&Duration::ZERO),
        ));
    }
    for (round, (p50, p99, max)) in fan_out.iter().enumerate() {
        println!(
            "fan-out {round}: one change -> its event at all {} streams: p50 {}, p99 {}, last {}",
            args.streams,
            ms(*p50),
            ms(*p99),
            ms(*max)
        );
    }

    // The watcher again, with every idle stream open (each change now goes to all of them).
    let drain = tokio::spawn(async move { while fan_rx.recv().await.is_some() {} });
    latency(
        &api,
        flag,
        &mut watcher,
        args.changes,
        &format!("1 of {} streams", args.streams + 1),
    )
    .await?;
    drain.abort();
    println!("server RSS at the end: {} MiB", rss_kib(args.pid)? / 1024);
    Ok(())
}
