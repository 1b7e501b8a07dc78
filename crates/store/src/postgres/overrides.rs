//! Experience-continuity hash-key overrides (§8.2), stored per person and flag key.

use std::collections::HashMap;

use sqlx::{PgConnection, Row};

use super::{lock_persons, Db};
use crate::{ProjectId, Result};

/// Overrides of the persons behind `distinct_ids`; the earliest distinct id's person wins.
pub(super) async fn get(
    conn: &mut PgConnection,
    project: ProjectId,
    distinct_ids: &[&str],
) -> Result<HashMap<String, String>> {
    if distinct_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT d.distinct_id, o.flag_key, o.hash_key
         FROM person_distinct_ids d JOIN hash_key_overrides o ON o.person_id = d.person_id
         WHERE d.project_id = $1 AND d.distinct_id = ANY($2)",
    )
    .bind(project.0)
    .bind(distinct_ids)
    .fetch_all(&mut *conn)
    .await?;

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
    // A merge moves overrides between persons and deletes one: not in the middle of this.
    lock_persons(&mut tx, project).await?;
    let written = sqlx::query(
        "INSERT INTO hash_key_overrides (project_id, person_id, flag_key, hash_key)
         SELECT $1, p.person_id, k.flag_key, $4
         FROM (SELECT DISTINCT person_id FROM person_distinct_ids
               WHERE project_id = $1 AND distinct_id = ANY($2)) p
         CROSS JOIN UNNEST($3::text[]) AS k (flag_key)
         ON CONFLICT DO NOTHING",
    )
    .bind(project.0)
    .bind(distinct_ids)
    .bind(flag_keys)
    .bind(hash_key)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(written)
}
