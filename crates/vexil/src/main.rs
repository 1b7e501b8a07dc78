//! `vexil`: the feature-flag service and its offline tools.
//!
//! The binary only parses arguments, wires the library crates together and maps errors to exit
//! codes; all semantics live in `vexil-engine`, all wire formats in `vexil-wire`.

mod config;
mod eval;
mod exit;
mod project;
mod serve;
mod user;

use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use vexil_server::Idleness;

use crate::exit::CliError;

/// mimalloc: measured faster than the system allocator on the `/flags` path (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Vexil: a fast, PostHog-compatible feature-flag service.
#[derive(Debug, Parser)]
#[command(name = "vexil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start; `serve`'s options are most of it"
)]
enum Command {
    /// Evaluate flag definitions offline against `/flags` request bodies (one per line).
    Eval(eval::EvalArgs),
    /// Run the service (embedded SQLite by default).
    Serve(serve::ServeArgs),
    /// Manage projects and their keys (offline, also while a server runs).
    #[command(subcommand)]
    Project(project::ProjectCommand),
    /// Manage users of the web UI (offline, also while a server runs).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Bring the database schema up to date and exit. `serve` and `project` also migrate when
    /// they open the store (under a lock on PostgreSQL, so nodes may start together); this
    /// runs that step alone, e.g. before a rolling deploy.
    Migrate(config::StorageArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), CliError> = match &cli.command {
        Command::Eval(args) => eval::run(args, &mut io::stdout().lock(), &mut io::stderr().lock()),
        Command::Serve(args) => {
            init_tracing();
            let idleness = Arc::new(Idleness::default());
            serving_runtime(&idleness).and_then(|rt| {
                rt.block_on(serve::run(args, idleness))
                    .map_err(CliError::from)
            })
        }
        Command::Project(command) => runtime().and_then(|rt| rt.block_on(project::run(command))),
        Command::User(command) => runtime().and_then(|rt| rt.block_on(user::run(command))),
        Command::Migrate(storage) => runtime().and_then(|rt| rt.block_on(migrate(storage))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `:#` prints anyhow's whole chain: "opening database …: <the cause>".
            eprintln!("vexil: {e:#}");
            e.exit_code()
        }
    }
}

/// `vexil migrate`: opening the store migrates it.
async fn migrate(storage: &config::StorageArgs) -> Result<(), CliError> {
    let store = storage.open().await?;
    store.close().await;
    println!("vexil: the database schema is up to date");
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Other(e.into()))
}

/// The server's runtime: as [`runtime`], with park hooks measuring how long its workers idle
/// (the saturation signal of load shedding).
fn serving_runtime(idleness: &Arc<Idleness>) -> Result<tokio::runtime::Runtime, CliError> {
    let (parking, unparked) = (Arc::clone(idleness), Arc::clone(idleness));
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(move || parking.parking())
        .on_thread_unpark(move || unparked.unparked())
        .build()
        .map_err(|e| CliError::Other(e.into()))
}

/// Logs go to stderr; `RUST_LOG` filters (default `info`), `VEXIL_LOG_FORMAT=json` for JSON.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    if std::env::var("VEXIL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
