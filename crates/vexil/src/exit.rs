//! Errors the CLI reports, and the exit code each one maps to.

use std::process::ExitCode;

/// A failure the user should see, with its exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: a file, line or field the user must fix (exit 2).
    #[error("{location}: {message}")]
    Input {
        /// `file[:line[:column]]`.
        location: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// `--strict` found invalid flag definitions (exit 1).
    #[error("{0} flag definition(s) are invalid")]
    InvalidDefinitions(usize),
    /// Writing output failed (exit 1).
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    /// Anything else (exit 1).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Input { .. } => ExitCode::from(2),
            _ => ExitCode::from(1),
        }
    }
}
