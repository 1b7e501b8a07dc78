//! `vexil project create`: create a project offline and print its keys once.

use serde::Serialize;
use vexil_store::CreatedProject;

use crate::config::StorageArgs;

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
pub async fn run(command: &ProjectCommand) -> anyhow::Result<()> {
    match command {
        ProjectCommand::Create {
            name,
            json,
            storage,
        } => {
            let store = storage.open().await?;
            let created = store.create_project(name).await?;
            let keys = ProjectKeys::from(&created);
            if *json {
                println!("{}", serde_json::to_string(&keys)?);
            } else {
                println!("{}", describe(&keys));
            }
            store.close().await;
            Ok(())
        }
    }
}
