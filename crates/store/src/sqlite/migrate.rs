//! The SQLite schema migrations: embedded SQL files applied in order, each in its own
//! transaction, recorded with a checksum so an edited or unknown migration is caught.

use sha2::{Digest, Sha256};
use sqlx::sqlite::SqlitePool;
use sqlx::Row;

use crate::{Result, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Published migrations never change; add a new file instead.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "key_revocation",
        sql: include_str!("migrations/0002_key_revocation.sql"),
    },
    Migration {
        version: 3,
        name: "retention",
        sql: include_str!("migrations/0003_retention.sql"),
    },
    Migration {
        version: 4,
        name: "revision",
        sql: include_str!("migrations/0004_revision.sql"),
    },
    Migration {
        version: 5,
        name: "users",
        sql: include_str!("migrations/0005_users.sql"),
    },
    Migration {
        version: 6,
        name: "definition_changes",
        sql: include_str!("migrations/0006_definition_changes.sql"),
    },
    Migration {
        version: 7,
        name: "early_access",
        sql: include_str!("migrations/0007_early_access.sql"),
    },
    Migration {
        version: 8,
        name: "user_keys",
        sql: include_str!("migrations/0008_user_keys.sql"),
    },
    Migration {
        version: 9,
        name: "flag_usage",
        sql: include_str!("migrations/0009_flag_usage.sql"),
    },
    Migration {
        version: 10,
        name: "activity_by_project",
        sql: include_str!("migrations/0010_activity_by_project.sql"),
    },
];

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Brings the schema up to date; refuses a database migrated by a newer or different build.
pub(super) async fn run(pool: &SqlitePool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS vexil_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             checksum   TEXT    NOT NULL,
             applied_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
         )",
    )
    .execute(&mut *conn)
    .await?;

    for m in MIGRATIONS {
        // Re-checked under the write lock, so two processes opening a fresh file at once apply
        // each migration once.
        let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
        let applied = sqlx::query("SELECT checksum FROM vexil_migrations WHERE version = ?")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?;
        match applied {
            Some(row) => {
                let stored: String = row.try_get("checksum")?;
                if stored != checksum(m.sql) {
                    return Err(StoreError::Migration(format!(
                        "migration {} ({}) differs from the one applied to this database",
                        m.version, m.name
                    )));
                }
            }
            None => {
                sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(|e| {
                    StoreError::Migration(format!("migration {} ({}): {e}", m.version, m.name))
                })?;
                sqlx::query(
                    "INSERT INTO vexil_migrations (version, name, checksum) VALUES (?, ?, ?)",
                )
                .bind(m.version)
                .bind(m.name)
                .bind(checksum(m.sql))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    }

    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM vexil_migrations")
        .fetch_one(&mut *conn)
        .await?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(v) = newest.filter(|v| *v > known) {
        return Err(StoreError::Migration(format!(
            "the database is at schema version {v}, newer than this build's {known}"
        )));
    }
    Ok(())
}
