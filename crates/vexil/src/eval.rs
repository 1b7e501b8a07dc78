//! `vexil eval`: evaluate a definitions file against a stream of `/flags` request bodies offline.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use vexil_engine::{evaluate, CompiledProject, Definitions};
use vexil_wire::request::{FlagsRequest, ResponseShape};
use vexil_wire::response::{Envelope, FlagsResponse};

use crate::exit::CliError;

/// Arguments of `vexil eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Local-evaluation payload: `{"flags": [...], "group_type_mapping": {...}, "cohorts": {...}}`.
    #[arg(long, value_name = "DEFS.json")]
    pub definitions: PathBuf,
    /// One `/flags` request body per line (`-` reads standard input).
    #[arg(long, value_name = "REQS.jsonl")]
    pub requests: PathBuf,
    /// Evaluation instant for relative dates (RFC 3339); defaults to the current time.
    #[arg(long)]
    pub now: Option<DateTime<Utc>>,
    /// Exit with status 1 if any flag definition is invalid.
    #[arg(long)]
    pub strict: bool,
}

/// Runs the command, writing one `/flags?v=2` body per request line to `out`.
pub fn run(args: &EvalArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let project = load_definitions(&args.definitions)?;
    let mut defective = 0usize;
    for flag in project.flags() {
        if let Some(defect) = flag.defect() {
            defective += 1;
            let _ = writeln!(
                err,
                "warning: {}: flag {:?}: {defect}",
                args.definitions.display(),
                flag.key()
            );
        } else if flag.has_missing_dependency() {
            let _ = writeln!(
                err,
                "warning: {}: flag {:?}: depends on a missing flag or is part of a dependency cycle",
                args.definitions.display(),
                flag.key()
            );
        }
    }

    let now = args.now.unwrap_or_else(Utc::now);
    let (label, reader): (String, Box<dyn BufRead>) = if args.requests == Path::new("-") {
        (
            "<stdin>".to_owned(),
            Box::new(BufReader::new(io::stdin().lock())),
        )
    } else {
        let file = File::open(&args.requests).map_err(|e| CliError::Input {
            location: args.requests.display().to_string(),
            message: e.to_string(),
        })?;
        (
            args.requests.display().to_string(),
            Box::new(BufReader::new(file)),
        )
    };
    let mut out = BufWriter::new(out);
    for (n, line) in reader.lines().enumerate() {
        let location = format!("{label}:{}", n + 1);
        let line = line.map_err(|e| CliError::Input {
            location: location.clone(),
            message: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let body: serde_json::Value = serde_json::from_str(&line).map_err(|e| CliError::Input {
            location: location.clone(),
            message: format!("invalid JSON: {e}"),
        })?;
        let request = FlagsRequest::from_json(body).map_err(|e| CliError::Input {
            location: location.clone(),
            message: e.to_string(),
        })?;
        if request.distinct_id.is_none() {
            return Err(CliError::Input {
                location,
                message: "distinct_id: missing (every request needs a distinct_id)".to_owned(),
            });
        }
        let evaluation = evaluate(&project, &request.context(now));
        let body = FlagsResponse::new(ResponseShape::FlagsV2, &evaluation, Envelope::default());
        serde_json::to_writer(&mut out, &body).map_err(|e| CliError::Output(e.into()))?;
        out.write_all(b"\n").map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    if args.strict && defective > 0 {
        return Err(CliError::InvalidDefinitions(defective));
    }
    Ok(())
}

fn load_definitions(path: &Path) -> Result<CompiledProject, CliError> {
    let location = path.display().to_string();
    let file = File::open(path).map_err(|e| CliError::Input {
        location: location.clone(),
        message: e.to_string(),
    })?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(file));
    let defs: Definitions = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        CliError::Input {
            location: format!("{location}:{}:{}", inner.line(), inner.column()),
            message: if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            },
        }
    })?;
    Ok(CompiledProject::compile(&defs))
}
