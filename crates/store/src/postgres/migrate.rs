//! The PostgreSQL schema migrations: embedded SQL files applied in order under a session
//! advisory lock, each in its own transaction, recorded with a checksum so an edited or unknown
//! migration is caught. Any number of nodes may start at once: the first migrates, the others
//! wait for the lock and find the work done.

use sha2::{Digest, Sha256};
use sqlx::Executor as _;

use super::Db;
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
        name: "users",
        sql: include_str!("migrations/0002_users.sql"),
    },
    Migration {
        version: 3,
        name: "definition_changes",
        sql: include_str!("migrations/0003_definition_changes.sql"),
    },
    Migration {
        version: 4,
        name: "early_access",
        sql: include_str!("migrations/0004_early_access.sql"),
    },
    Migration {
        version: 5,
        name: "user_keys",
        sql: include_str!("migrations/0005_user_keys.sql"),
    },
    Migration {
        version: 6,
        name: "flag_usage",
        sql: include_str!("migrations/0006_flag_usage.sql"),
    },
    Migration {
        version: 7,
        name: "activity_by_project",
        sql: include_str!("migrations/0007_activity_by_project.sql"),
    },
];

/// The advisory lock key that serialises migrations across nodes (`"vexil-mg"` as a number).
const MIGRATION_LOCK: i64 = 0x7665_7869_6c2d_6d67;

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Brings the schema up to date; refuses a database migrated by a newer or different build.
pub(super) async fn run(db: &Db) -> Result<()> {
    let mut conn = db.acquire().await?;
    // A session lock (not a transaction one): it spans every migration's own transaction.
    // It is released below, or by the server when this connection dies.
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let migrated = apply(&mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    migrated?;
    unlocked?;
    Ok(())
}

async fn apply(conn: &mut sqlx::PgConnection) -> Result<()> {
    conn.execute(sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS vexil_migrations (
             version    BIGINT      PRIMARY KEY,
             name       TEXT        NOT NULL,
             checksum   TEXT        NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    ))
    .await?;

    for m in MIGRATIONS {
        let applied: Option<String> =
            sqlx::query_scalar("SELECT checksum FROM vexil_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *conn)
                .await?;
        match applied {
            Some(stored) if stored != checksum(m.sql) => {
                return Err(StoreError::Migration(format!(
                    "migration {} ({}) differs from the one applied to this database",
                    m.version, m.name
                )));
            }
            Some(_) => {}
            None => {
                // One simple-query message runs as one implicit transaction: the migration and
                // its record commit together or not at all. The values are this build's own
                // constants (a number, a name, a hex digest), safe to inline.
                let sql = format!(
                    "{}\n;INSERT INTO vexil_migrations (version, name, checksum) \
                     VALUES ({}, '{}', '{}')",
                    m.sql,
                    m.version,
                    m.name,
                    checksum(m.sql)
                );
                conn.execute(sqlx::raw_sql(&sql)).await.map_err(|e| {
                    StoreError::Migration(format!("migration {} ({}): {e}", m.version, m.name))
                })?;
            }
        }
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
