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
    /// Database URL (`sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`); overrides
    /// `--data-dir`.
    #[arg(long, env = "VEXIL_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StorageArgs {
    /// Opens (and migrates) the store.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        match &self.database_url {
            Some(url) => vexil_store::connect(url)
                .await
                .with_context(|| format!("opening database {}", redacted(url))),
            None => vexil_store::open_data_dir(&self.data_dir)
                .await
                .with_context(|| format!("opening data directory {}", self.data_dir.display())),
        }
    }
}

impl StorageArgs {
    /// Opens the store for `serve`: like [`StorageArgs::open`], except that an unreachable
    /// PostgreSQL database is not an error — the store is returned unmigrated (it migrates
    /// once the database answers) and the caller may start from its saved definitions.
    pub async fn open_for_serving(&self) -> anyhow::Result<Arc<dyn Store>> {
        let Some(url) = &self.database_url else {
            return self.open().await;
        };
        let context = || format!("opening database {}", redacted(url));
        let store = vexil_store::connect_deferred(url)
            .await
            .with_context(context)?;
        match store.migrate().await {
            Ok(()) => Ok(store),
            Err(e) if e.is_unreachable() => {
                tracing::warn!(database = %redacted(url), "the database cannot be reached; starting from the saved definitions, migrating once it answers");
                Ok(store)
            }
            Err(e) => Err(e).with_context(context),
        }
    }

    /// Where `serve` saves its definitions by default: `<data-dir>/snapshots` with a
    /// PostgreSQL database, nowhere with the embedded one (its database is on this disk).
    pub fn default_snapshot_dir(&self) -> Option<PathBuf> {
        self.database_url
            .as_deref()
            .filter(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
            .map(|_| self.data_dir.join("snapshots"))
    }
}

/// `url` with the password (`scheme://user:PASSWORD@host…`) replaced by `***`, for messages.
pub(crate) fn redacted(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => match url[start..start + at].find(':') {
            Some(colon) => format!("{}***{}", &url[..start + colon + 1], &url[start + at..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_are_redacted_from_urls() {
        for (url, shown) in [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?sslmode=disable",
                "postgres://h/db?sslmode=disable",
            ),
            (
                "sqlite:///tmp/x@y:z/vexil.db",
                "sqlite:///tmp/x@y:z/vexil.db",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
    }
}
