//! `vexil`: the feature-flag service and its offline tools.
//!
//! The binary only parses arguments, wires the library crates together and maps errors to exit
//! codes; all semantics live in `vexil-engine`, all wire formats in `vexil-wire`.

mod eval;
mod exit;

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::CliError;

/// Vexil: a fast, PostHog-compatible feature-flag service.
#[derive(Debug, Parser)]
#[command(name = "vexil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate flag definitions offline against `/flags` request bodies (one per line).
    Eval(eval::EvalArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), CliError> = match &cli.command {
        Command::Eval(args) => eval::run(args, &mut io::stdout().lock(), &mut io::stderr().lock()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vexil: {e}");
            e.exit_code()
        }
    }
}
