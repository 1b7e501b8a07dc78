//! Experience-continuity hash-key overrides (§8.2), stored per person and flag key.

use std::collections::HashMap;

use sqlx::{Row, SqliteConnection};

use super::{placeholders, Db};
use crate::{ProjectId, Result};

/// Overrides of the persons behind `distinct_ids`; the earliest distinct id's person wins.
pub(super) async fn get(
    conn: &mut SqliteConnection,
    project: ProjectId,
    distinct_ids: &[&str],
) -> Result<HashMap<String, String>> {
    if distinct_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT d.distinct_id, o.flag_key, o.hash_key
         FROM person_distinct_ids d JOIN hash_key_overrides o ON o.person_id = d.person_id
         WHERE d.project_id = ? AND d.distinct_id IN ({})",
        placeholders(distinct_ids.len())
    );
    let mut q = sqlx::query(&sql).bind(project.0);
    for d in distinct_ids {
        q = q.bind(*d);
    }
    let rows = q.fetch_all(&mut *conn).await?;

    let mut best: HashMap<String, (usize, String)> = HashMap::new();
    for row in &rows {
        let owner: String = row.try_get("distinct_id")?;
        let rank = distinct_ids
            .iter()
            .position(|d| *d == owner)
            .unwrap_or(usize::MAX);
        let flag_key: String = row.try_get("flag_key")?;
        let hash_key: String = row.try_get("hash_key")?;
        match best.get(&flag_key) {
            Some((r, _)) if *r <= rank => {}
            _ => {
                best.insert(flag_key, (rank, hash_key));
            }
        }
    }
    Ok(best.into_iter().map(|(k, (_, h))| (k, h)).collect())
}

pub(super) async fn insert(
    db: &Db,
    project: ProjectId,
    distinct_ids: &[&str],
    flag_keys: &[&str],
    hash_key: &str,
) -> Result<u64> {
    if distinct_ids.is_empty() || flag_keys.is_empty() {
        return Ok(0);
    }
    let mut tx = db.write().await?;
    let sql = format!(
        "SELECT DISTINCT person_id FROM person_distinct_ids
         WHERE project_id = ? AND distinct_id IN ({})",
        placeholders(distinct_ids.len())
    );
    let mut q = sqlx::query_scalar(&sql).bind(project.0);
    for d in distinct_ids {
        q = q.bind(*d);
    }
    let persons: Vec<i64> = q.fetch_all(&mut *tx).await?;
    let mut written = 0;
    for person in persons {
        for key in flag_keys {
            written += sqlx::query(
                "INSERT INTO hash_key_overrides (project_id, person_id, flag_key, hash_key)
                 VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(project.0)
            .bind(person)
            .bind(*key)
            .bind(hash_key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
    }
    tx.commit().await?;
    Ok(written)
}
