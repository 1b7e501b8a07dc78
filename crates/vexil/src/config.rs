//! Storage location options shared by the commands that open the store.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use vexil_store::Store;

/// Where the data lives: a data directory (embedded SQLite) or an explicit database URL.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Data directory for the embedded database (created if missing).
    #[arg(long, env = "VEXIL_DATA_DIR", default_value = "./vexil-data")]
    pub data_dir: PathBuf,
    /// Database URL (`sqlite://PATH`); overrides `--data-dir`.
    #[arg(long, env = "VEXIL_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StorageArgs {
    /// Opens (and migrates) the store.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        match &self.database_url {
            Some(url) => vexil_store::connect(url)
                .await
                .with_context(|| format!("opening database {url}")),
            None => vexil_store::open_data_dir(&self.data_dir)
                .await
                .with_context(|| format!("opening data directory {}", self.data_dir.display())),
        }
    }
}
