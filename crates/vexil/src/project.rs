//! `vexil project …`: create a project and print its keys once; rotate or revoke a key. All
//! work offline, also while a server runs on the same database: servers check keys against the
//! store on every request, so a rotated or revoked key is refused from the next request on.

use serde::Serialize;
use vexil_store::{CreatedProject, KeyKind, ProjectId, StoreError};

use crate::config::StorageArgs;
use crate::exit::CliError;

/// `--kind`: which of a project's keys.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    /// The secret key (`phs_…`): local evaluation.
    Secret,
    /// The personal API key (`phx_…`): the management API and local evaluation.
    Personal,
}

impl From<KindArg> for KeyKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Secret => KeyKind::Secret,
            KindArg::Personal => KeyKind::Personal,
        }
    }
}

/// The project and key a `rotate-key` / `revoke-key` acts on.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// Project id (printed by `project create`).
    #[arg(long)]
    project: i64,
    /// Which key.
    #[arg(long, value_enum)]
    kind: KindArg,
    /// Print JSON (`{"project_id", "kind", "key"}`, or `"revoked": true`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    storage: StorageArgs,
}

/// `vexil project …`.
#[derive(Debug, clap::Subcommand)]
pub enum ProjectCommand {
    /// Create a project and print its keys (shown once: only hashes of the secret keys are kept).
    Create {
        /// Project name.
        #[arg(long)]
        name: String,
        /// Print JSON (`{"id", "api_token", "secret_api_key", "personal_api_key"}`).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Issue a new secret or personal key and print it once; the old key stops working at once
    /// (also on a running server). Also lifts a revocation.
    RotateKey(KeyArgs),
    /// Revoke a secret or personal key without a replacement (`rotate-key` issues a new one).
    RevokeKey(KeyArgs),
}

/// The keys of a new project, as printed.
#[derive(Debug, Serialize)]
pub struct ProjectKeys<'a> {
    /// Project id.
    pub id: i64,
    /// Project name.
    pub name: &'a str,
    /// Public project token (`phc_…`), for SDKs' `project_api_key`.
    pub api_token: &'a str,
    /// Secret key (`phs_…`), for local evaluation.
    pub secret_api_key: &'a str,
    /// Personal API key (`phx_…`), for the management API and local evaluation.
    pub personal_api_key: &'a str,
}

impl<'a> From<&'a CreatedProject> for ProjectKeys<'a> {
    fn from(c: &'a CreatedProject) -> Self {
        ProjectKeys {
            id: c.project.id.0,
            name: &c.project.name,
            api_token: &c.project.api_token,
            secret_api_key: &c.secret_key,
            personal_api_key: &c.personal_key,
        }
    }
}

/// Human-readable form of the keys.
pub fn describe(keys: &ProjectKeys<'_>) -> String {
    format!(
        "Project {id} ({name})\n  project token (phc, public):   {token}\n  secret key (phs, local eval):  {secret}\n  personal key (phx, API):       {personal}\nStore the secret and personal keys now: they are not shown again.",
        id = keys.id,
        name = keys.name,
        token = keys.api_token,
        secret = keys.secret_api_key,
        personal = keys.personal_api_key,
    )
}

/// Runs `vexil project …`.
pub async fn run(command: &ProjectCommand) -> Result<(), CliError> {
    match command {
        ProjectCommand::Create {
            name,
            json,
            storage,
        } => {
            let store = storage.open().await?;
            let created = store
                .create_project(name)
                .await
                .map_err(anyhow::Error::from)?;
            let keys = ProjectKeys::from(&created);
            if *json {
                println!(
                    "{}",
                    serde_json::to_string(&keys).map_err(anyhow::Error::from)?
                );
            } else {
                println!("{}", describe(&keys));
            }
            store.close().await;
            Ok(())
        }
        ProjectCommand::RotateKey(args) => change_key(args, Change::Rotate).await,
        ProjectCommand::RevokeKey(args) => change_key(args, Change::Revoke).await,
    }
}

#[derive(Clone, Copy)]
enum Change {
    Rotate,
    Revoke,
}

async fn change_key(args: &KeyArgs, change: Change) -> Result<(), CliError> {
    let store = args.storage.open().await?;
    let (project, kind) = (ProjectId(args.project), KeyKind::from(args.kind));
    let result = match change {
        Change::Rotate => store.rotate_key(project, kind).await.map(Some),
        Change::Revoke => store.revoke_key(project, kind).await.map(|()| None),
    };
    store.close().await;
    let issued = result.map_err(|e| match e {
        StoreError::NotFound { .. } => CliError::Input {
            location: "--project".into(),
            message: format!("no project {project} in this database"),
        },
        other => CliError::Other(other.into()),
    })?;
    let line = match (issued, args.json) {
        (Some(issued), true) => serde_json::json!({
            "project_id": project.0, "kind": kind.as_str(), "key": issued.key,
        })
        .to_string(),
        (None, true) => serde_json::json!({
            "project_id": project.0, "kind": kind.as_str(), "revoked": true,
        })
        .to_string(),
        (Some(issued), false) => format!(
            "Project {project}: new {kind} key {key}\nThe old {kind} key no longer works. Store the new key now: it is not shown again.",
            key = issued.key,
        ),
        (None, false) => format!(
            "Project {project}: the {kind} key is revoked; `vexil project rotate-key --project {project} --kind {kind}` issues a new one.",
        ),
    };
    println!("{line}");
    Ok(())
}
