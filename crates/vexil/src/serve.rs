//! `vexil serve`: run the service on the embedded store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use vexil_server::{
    AllowedOrigin, AppState, ConnectionLimits, Idleness, OverloadLimits, Rate, Settings,
    StreamLimits,
};

use crate::config::StorageArgs;
use crate::project::{describe, ProjectKeys};

/// Arguments of `vexil serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VEXIL_ADDR", default_value = "127.0.0.1:8360")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Directory where each project's last good definitions are saved (atomically, after
    /// every change) and read back when the node starts while its database is unreachable.
    /// Default: `<data-dir>/snapshots` with a PostgreSQL `--database-url`; unused with the
    /// embedded database unless given.
    #[arg(long, env = "VEXIL_SNAPSHOT_DIR")]
    pub snapshot_dir: Option<std::path::PathBuf>,
    /// Deadline (ms) for the stored person/group lookup of a `/flags` request.
    #[arg(long, env = "VEXIL_EVAL_LOOKUP_TIMEOUT_MS", default_value_t = 100)]
    pub eval_lookup_timeout_ms: u64,
    /// A MaxMind City or Country database (`.mmdb`): `/flags` and `/decide` add PostHog's
    /// `$geoip_*` person properties for the client's address (the SDK's own values win; a
    /// request with `geoip_disable` gets none). Read once at start.
    #[arg(long, env = "VEXIL_GEOIP_DB")]
    pub geoip_db: Option<std::path::PathBuf>,
    /// Proxies (CIDRs, comma-separated: `10.0.0.0/8,::1/128`) whose `X-Forwarded-For` names the
    /// client for GeoIP and cookieless hashing; from any other peer the header is ignored.
    #[arg(long, env = "VEXIL_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<vexil_server::IpNet>,
    /// Largest capture or management request body, raw and after decompression, in bytes.
    #[arg(long, env = "VEXIL_MAX_BODY_BYTES", default_value_t = vexil_wire::decode::DEFAULT_MAX_DECODED_BYTES)]
    pub max_body_bytes: usize,
    /// Largest `/flags` or `/decide` request body, raw and after decompression, in bytes.
    #[arg(long, env = "VEXIL_MAX_FLAGS_BODY_BYTES", default_value_t = vexil_server::DEFAULT_MAX_FLAGS_BODY_BYTES)]
    pub max_flags_body_bytes: usize,
    /// Bytes of request bodies held or being decoded at once across the process; past it
    /// requests are shed with 503 (0: no cap).
    #[arg(long, env = "VEXIL_DECODE_BUDGET_BYTES", default_value_t = vexil_server::DEFAULT_DECODE_BUDGET_BYTES)]
    pub decode_budget_bytes: usize,
    /// Origins (`https://app.example.com`, comma-separated) sent
    /// `Access-Control-Allow-Credentials: true`; the only ones the management API answers
    /// cross-origin. The SDK endpoints answer every origin, without credentials.
    #[arg(long, env = "VEXIL_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<AllowedOrigin>,
    /// Days events and flag calls are kept (by event time); 0 keeps them forever.
    #[arg(long, env = "VEXIL_EVENT_RETENTION_DAYS", default_value_t = 30)]
    pub event_retention_days: u64,
    /// How often every project's revision is compared with the store's (`250ms`, `1s`, `2.5s`):
    /// the safety net that heals a missed change announcement between nodes, and how changes
    /// made by other processes arrive on SQLite.
    #[arg(
        long,
        env = "VEXIL_REVISION_CHECK_INTERVAL",
        default_value = "1s",
        value_parser = interval
    )]
    pub revision_check_interval: Duration,
    /// How often the evaluations this node answered are added to the stored flag usage (the
    /// web UI's evaluations per day and last evaluated; `250ms`, `10s`); once more at shutdown.
    #[arg(
        long,
        env = "VEXIL_FLAG_USAGE_FLUSH_INTERVAL",
        default_value = "10s",
        value_parser = interval
    )]
    pub flag_usage_flush_interval: Duration,
    #[command(flatten)]
    pub connections: ConnectionArgs,
    #[command(flatten)]
    pub overload: OverloadArgs,
    #[command(flatten)]
    pub streams: StreamArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Test builds only: an adjustable clock, moved by `POST /_test/clock`.
    #[cfg(feature = "test-clock")]
    #[arg(long)]
    pub test_clock: bool,
    #[command(flatten)]
    pub observability: ObservabilityArgs,
}

/// Shared state across nodes.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL (`redis://[:PASSWORD@]HOST:PORT[/DB]`): nodes share their per-project rate
    /// limits and behavioural counts through it. Optional; when it fails, each node uses its
    /// own until it answers again.
    #[arg(long, env = "VEXIL_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Longest wait (ms) for one Redis call before the node falls back to its own state.
    #[arg(long, env = "VEXIL_REDIS_TIMEOUT_MS", default_value_t = 50)]
    pub redis_timeout_ms: u64,
    /// After a Redis failure, how long (ms) nodes use their own state before trying again.
    #[arg(long, env = "VEXIL_REDIS_COOLDOWN_MS", default_value_t = 1_000)]
    pub redis_cooldown_ms: u64,
    /// Prefix of Vexil's Redis keys (deployments sharing one Redis need different ones).
    #[arg(long, env = "VEXIL_REDIS_NAMESPACE", default_value = "vexil")]
    pub redis_namespace: String,
}

impl RedisArgs {
    /// The client, if a URL is given; an invalid URL is a configuration error.
    async fn connect(&self) -> anyhow::Result<Option<Arc<vexil_cache::Redis>>> {
        let Some(url) = &self.redis_url else {
            return Ok(None);
        };
        let mut config = vexil_cache::RedisConfig::new(url.clone());
        config.timeout = Duration::from_millis(self.redis_timeout_ms.max(1));
        config.cooldown = Duration::from_millis(self.redis_cooldown_ms);
        config.namespace.clone_from(&self.redis_namespace);
        let redis = vexil_cache::Redis::new(config)
            .with_context(|| format!("Redis URL {}", crate::config::redacted(url)))?;
        match redis.ping().await {
            Ok(()) => {
                tracing::info!("Redis answers: rate limits and behavioural counts are shared")
            }
            Err(e) => {
                tracing::warn!(error = %e, "Redis does not answer: this node uses its own state until it does")
            }
        }
        Ok(Some(Arc::new(redis)))
    }
}

/// Metrics and access logs.
#[derive(Debug, Clone, clap::Args)]
pub struct ObservabilityArgs {
    /// Serve `GET /metrics` (Prometheus text format) on the main address. It needs no
    /// credentials: keep the port private or turn it off.
    #[arg(
        long,
        env = "VEXIL_METRICS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub metrics: bool,
    /// Share (0.0–1.0) of requests answered below 500 that get an access-log line
    /// (`vexil::access` target); every 5xx gets one.
    #[arg(
        long,
        env = "VEXIL_ACCESS_LOG_SAMPLE_RATE",
        default_value_t = vexil_server::DEFAULT_ACCESS_LOG_SAMPLE_RATE,
        value_parser = sample_rate
    )]
    pub access_log_sample_rate: f64,
}

/// A positive duration written `<n>ms` or `<n>s` (`250ms`, `1s`, `2.5s`).
fn interval(text: &str) -> Result<Duration, String> {
    let parsed = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse::<u64>().ok().map(Duration::from_millis)
    } else if let Some(s) = text.strip_suffix('s') {
        s.parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    } else {
        None
    };
    match parsed {
        Some(d) if !d.is_zero() && d <= Duration::from_secs(3_600) => Ok(d),
        _ => Err(format!(
            "{text:?} is not a duration from 1ms to 3600s written like 250ms, 1s or 2.5s"
        )),
    }
}

/// A share between 0.0 and 1.0.
fn sample_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a number from 0.0 to 1.0")),
    }
}

/// Load shedding and per-project rate limits (a zero rate turns a limit off).
#[derive(Debug, Clone, clap::Args)]
pub struct OverloadArgs {
    /// Most `/flags` and `/decide` requests handled at once; past it 503 with `Retry-After`
    /// (0: no cap).
    #[arg(long, env = "VEXIL_MAX_IN_FLIGHT_EVALUATIONS", default_value_t = 1_024)]
    pub max_in_flight_evaluations: usize,
    /// `/flags` and `/decide` are also shed while the server runs later than this (ms) on its
    /// queue of ready work (0: off).
    #[arg(long, env = "VEXIL_MAX_QUEUE_DELAY_MS", default_value_t = 500)]
    pub max_queue_delay_ms: u64,
    /// A growing share of `/flags` and `/decide` is shed (503) while the server's worker
    /// threads have had no idle moment for longer than this (ms) and connections whose request
    /// has arrived wait half as long for a worker, and less once they idle or stop waiting:
    /// under overload requests queue there, unseen by the other two limits (0: off).
    #[arg(long, env = "VEXIL_MAX_BUSY_MS", default_value_t = 100)]
    pub max_busy_ms: u64,
    /// Per project: sustained `/flags` + `/decide` requests per second (429 past it).
    #[arg(long, env = "VEXIL_EVALUATION_RATE", default_value_t = 50_000)]
    pub evaluation_rate: u32,
    /// Per project: `/flags` + `/decide` burst.
    #[arg(long, env = "VEXIL_EVALUATION_BURST", default_value_t = 100_000)]
    pub evaluation_burst: u32,
    /// Per project: sustained capture requests per second.
    #[arg(long, env = "VEXIL_CAPTURE_RATE", default_value_t = 20_000)]
    pub capture_rate: u32,
    /// Per project: capture burst.
    #[arg(long, env = "VEXIL_CAPTURE_BURST", default_value_t = 40_000)]
    pub capture_burst: u32,
    /// Per project: sustained management API requests per second.
    #[arg(long, env = "VEXIL_MANAGEMENT_RATE", default_value_t = 1_000)]
    pub management_rate: u32,
    /// Per project: management API burst.
    #[arg(long, env = "VEXIL_MANAGEMENT_BURST", default_value_t = 2_000)]
    pub management_burst: u32,
}

impl OverloadArgs {
    fn limits(&self) -> OverloadLimits {
        let rate = |per_second, burst| Rate { per_second, burst };
        OverloadLimits {
            max_in_flight_evaluations: self.max_in_flight_evaluations,
            max_queue_delay: Duration::from_millis(self.max_queue_delay_ms),
            max_busy: Duration::from_millis(self.max_busy_ms),
            idleness: None,
            evaluation_rate: rate(self.evaluation_rate, self.evaluation_burst),
            capture_rate: rate(self.capture_rate, self.capture_burst),
            management_rate: rate(self.management_rate, self.management_burst),
        }
    }
}

/// Connection hygiene: timeouts and the cap on open connections.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Longest wait (ms) for a complete request head, from the connection's opening or the end
    /// of its previous response (so also the keep-alive idle limit).
    #[arg(long, env = "VEXIL_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,
    /// Longest a request body may take to arrive (ms), from the end of its head; 408 past it.
    #[arg(long, env = "VEXIL_BODY_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_read_timeout_ms: u64,
    /// Most connections open at once; past it new ones wait in the listen backlog.
    #[arg(long, env = "VEXIL_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
}

impl ConnectionArgs {
    fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(self.body_read_timeout_ms),
            max_connections: self.max_connections,
        }
    }
}

/// Change streams (`/flags/definitions/stream`, the OFREP stream).
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// Seconds of silence after which a stream gets a heartbeat comment.
    #[arg(long, env = "VEXIL_STREAM_HEARTBEAT_SECS", default_value_t = 15)]
    pub stream_heartbeat_secs: u64,
    /// Most streams open at once (each also holds one of `--max-connections`); past it new
    /// ones get a 503.
    #[arg(long, env = "VEXIL_MAX_STREAMS", default_value_t = 5_000)]
    pub max_streams: usize,
    /// Change publications each project keeps for clients reconnecting with `Last-Event-ID`;
    /// an older id gets the full payload.
    #[arg(long, env = "VEXIL_STREAM_REPLAY", default_value_t = vexil_server::DEFAULT_STREAM_REPLAY)]
    pub stream_replay: usize,
}

impl StreamArgs {
    fn limits(&self) -> StreamLimits {
        StreamLimits {
            heartbeat: Duration::from_secs(self.stream_heartbeat_secs.max(1)),
            max_streams: self.max_streams,
            replay: self.stream_replay,
        }
    }
}

/// Runs the server until Ctrl-C / SIGTERM. `idleness` is fed by the runtime's park hooks
/// (`main`), for load shedding by saturation.
pub async fn run(args: &ServeArgs, idleness: Arc<Idleness>) -> anyhow::Result<()> {
    let store = args.storage.open_for_serving().await?;
    match store.list_projects().await {
        Ok(projects) if projects.is_empty() => {
            let created = store.create_project("Default project").await?;
            println!(
                "Created the default project.\n{}",
                describe(&ProjectKeys::from(&created))
            );
        }
        Ok(_) => {}
        // Starting from the saved definitions (AppState::new), or failing there if none.
        Err(e) if e.is_unreachable() => {}
        Err(e) => return Err(e.into()),
    }
    // Not while the database is unreachable: the next start that reaches it does this.
    if !store.unreachable() {
        if let Some(admin) = crate::user::first_admin(store.as_ref()).await? {
            println!("{admin}");
        }
    }
    let snapshot_dir = args
        .snapshot_dir
        .clone()
        .or_else(|| args.storage.default_snapshot_dir());
    let redis = args.redis.connect().await?;
    let settings = Settings {
        redis,
        eval_lookup_timeout: Duration::from_millis(args.eval_lookup_timeout_ms),
        max_body_bytes: args.max_body_bytes,
        max_flags_body_bytes: args.max_flags_body_bytes,
        decode_budget_bytes: args.decode_budget_bytes,
        cors_allowed_origins: args.cors_allowed_origins.clone(),
        connections: args.connections.limits(),
        overload: OverloadLimits {
            idleness: Some(idleness),
            ..args.overload.limits()
        },
        streams: args.streams.limits(),
        metrics_endpoint: args.observability.metrics,
        access_log_sample_rate: args.observability.access_log_sample_rate,
        event_retention: (args.event_retention_days > 0)
            .then(|| Duration::from_secs(args.event_retention_days.saturating_mul(86_400))),
        clock: clock(args),
        revision_check_interval: args.revision_check_interval,
        usage_flush_interval: args.flag_usage_flush_interval,
        snapshot_dir: snapshot_dir.clone(),
        geoip: match &args.geoip_db {
            Some(path) => Some(Arc::new(vexil_server::GeoIp::open(path)?)),
            None => None,
        },
        trusted_proxies: args.trusted_proxies.clone(),
        ..Settings::default()
    };
    let state = AppState::new(store.clone(), settings).await.map_err(|e| {
        match (&snapshot_dir, e.is_unreachable()) {
            (Some(dir), true) => anyhow::Error::new(e).context(format!(
                "the database cannot be reached and {} holds no saved definitions to start from",
                dir.display()
            )),
            _ => e.into(),
        }
    })?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "vexil listening");
    println!("vexil listening on http://{local}");
    vexil_server::serve(listener, state, shutdown_signal()).await?;
    store.close().await;
    Ok(())
}

#[cfg(feature = "test-clock")]
fn clock(args: &ServeArgs) -> vexil_server::Clock {
    if args.test_clock {
        tracing::warn!("test clock: POST /_test/clock moves this server's time");
        vexil_server::Clock::adjustable()
    } else {
        vexil_server::Clock::system()
    }
}

#[cfg(not(feature = "test-clock"))]
fn clock(_: &ServeArgs) -> vexil_server::Clock {
    vexil_server::Clock::system()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::interval;

    #[test]
    fn intervals_parse_in_ms_or_s() {
        assert_eq!(interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(interval("2.5s"), Ok(Duration::from_millis(2_500)));
        for bad in [
            "", "1", "0s", "0ms", "-1s", "1m", "NaNs", "infs", "1e9s", "s", "ms",
        ] {
            assert!(interval(bad).is_err(), "{bad:?}");
        }
    }
}
