//! Temporary PostgreSQL databases on the server `VEXIL_TEST_POSTGRES_URL` names (as in the
//! store's tests): skipped with a notice when it is unset, a failure when `CI=true`.
//! Shared by the binary's test files (`#[path] mod pg;`).

use sqlx::{Connection, PgConnection};

/// A fresh database, dropped with this value.
pub struct TempDatabase {
    server: String,
    name: String,
    /// Its URL.
    pub url: String,
}

impl TempDatabase {
    /// A new empty database, or `None` when no server is configured.
    pub async fn create() -> Option<TempDatabase> {
        let server = match std::env::var("VEXIL_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!("CI=true but VEXIL_TEST_POSTGRES_URL is not set")
            }
            _ => {
                eprintln!("skipped: set VEXIL_TEST_POSTGRES_URL to run the PostgreSQL tests");
                return None;
            }
        };
        let name = format!("vexil_cli_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let (base, query) = server
            .split_once('?')
            .map_or((server.as_str(), None), |(b, q)| (b, Some(q)));
        let authority = base.find("://").map_or(0, |i| i + 3);
        let end = base[authority..]
            .find('/')
            .map_or(base.len(), |i| i + authority);
        let mut url = format!("{}/{name}", &base[..end]);
        if let Some(q) = query {
            url = format!("{url}?{q}");
        }
        Some(TempDatabase { server, name, url })
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&server).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}
