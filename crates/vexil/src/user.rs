//! `vexil user create`: a user of the web UI (offline, also while a server runs), and the
//! administrator a first start generates when there is none.

use std::io::Read;

use vexil_store::{hash_password, NewUser, ProjectId, Store, StoreError};

use crate::config::StorageArgs;
use crate::exit::CliError;

/// `vexil user …`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user of the web UI. The password is read from standard input (one line), never
    /// from the command line, which other processes can see.
    Create {
        /// Sign-in e-mail.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: the only way to pass it).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// A project the user belongs to (repeat for several). Without any, the user is an
        /// administrator who sees every project.
        #[arg(long = "project")]
        projects: Vec<i64>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// Runs `vexil user …`.
pub async fn run(command: &UserCommand) -> Result<(), CliError> {
    let UserCommand::Create {
        email,
        password_stdin: _,
        projects,
        storage,
    } = command;
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    // One line: a trailing newline from `echo` or a here-string is not part of it.
    let password = password.strip_suffix('\n').unwrap_or(&password);
    let password = password.strip_suffix('\r').unwrap_or(password);
    let hash = hash_password(password).map_err(input("stdin"))?;
    let store = storage.open().await?;
    let created = store
        .create_user(&NewUser {
            email: email.clone(),
            password_hash: hash,
            projects: projects.iter().copied().map(ProjectId).collect(),
        })
        .await;
    store.close().await;
    let user = created.map_err(|e| match e {
        StoreError::Duplicate { .. } => CliError::Input {
            location: "--email".into(),
            message: "a user with this e-mail already exists".into(),
        },
        StoreError::Invalid {
            field: "email",
            message,
        } => CliError::Input {
            location: "--email".into(),
            message,
        },
        StoreError::NotFound { .. } => CliError::Input {
            location: "--project".into(),
            message: "no such project in this database".into(),
        },
        other => CliError::Other(other.into()),
    })?;
    let role = if projects.is_empty() {
        "administrator (every project)".to_owned()
    } else {
        let ids: Vec<String> = projects.iter().map(i64::to_string).collect();
        format!("member of project(s) {}", ids.join(", "))
    };
    println!("Created user {} ({}), {role}", user.id, user.email);
    Ok(())
}

fn input(location: &'static str) -> impl Fn(StoreError) -> CliError {
    move |e| match e {
        StoreError::Invalid { message, .. } => CliError::Input {
            location: location.into(),
            message,
        },
        other => CliError::Other(other.into()),
    }
}

/// E-mail of the administrator a first start creates.
pub const FIRST_ADMIN_EMAIL: &str = "admin@localhost";

/// On a database without users, creates the administrator `admin@localhost` with a generated
/// password and returns the lines to print once (next to the project keys); `None` when users
/// exist.
pub async fn first_admin(store: &dyn Store) -> anyhow::Result<Option<String>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let password = vexil_store::generate_password();
    let created = store
        .create_user(&NewUser {
            email: FIRST_ADMIN_EMAIL.to_owned(),
            password_hash: hash_password(&password)?,
            projects: Vec::new(),
        })
        .await;
    match created {
        Ok(_) => {}
        // Nodes starting together on an empty database: another one created it first and
        // printed its password.
        Err(vexil_store::StoreError::Duplicate { field: "email" }) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(Some(format!(
        "Created the web UI administrator.\n  e-mail:   {FIRST_ADMIN_EMAIL}\n  password: {password}\nSign in at the address below; the password is not shown again (`vexil user create` adds users)."
    )))
}
