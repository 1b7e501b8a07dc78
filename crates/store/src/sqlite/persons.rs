//! Persons: properties, distinct ids, identify/alias merges, deletion.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::{json, micros, time, Db};
use crate::changes::Changes;
use crate::{Person, PersonUpdate, ProjectId, Properties, Result, StoreError};

/// The person id behind a distinct id.
pub(super) async fn person_id(
    conn: &mut SqliteConnection,
    project: ProjectId,
    distinct_id: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT person_id FROM person_distinct_ids WHERE project_id = ? AND distinct_id = ?",
    )
    .bind(project.0)
    .bind(distinct_id)
    .fetch_optional(&mut *conn)
    .await?)
}

fn person_from_row(row: &SqliteRow, distinct_ids: Vec<String>) -> Result<Person> {
    let uuid: String = row.try_get("uuid")?;
    Ok(Person {
        id: row.try_get("id")?,
        uuid: super::uuid(&uuid)?,
        properties: json(row.try_get("properties")?, "person properties")?,
        distinct_ids,
        is_identified: row.try_get("is_identified")?,
        created_at: time(row.try_get("created_at")?)?,
    })
}

/// A person's `(properties, is_identified, created_at)`.
pub(super) async fn row(
    conn: &mut SqliteConnection,
    person: i64,
) -> Result<Option<(Properties, bool, DateTime<Utc>)>> {
    let Some(row) =
        sqlx::query("SELECT properties, is_identified, created_at FROM persons WHERE id = ?")
            .bind(person)
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        json(row.try_get("properties")?, "person properties")?,
        row.try_get("is_identified")?,
        time(row.try_get("created_at")?)?,
    )))
}

async fn load(conn: &mut SqliteConnection, person: i64) -> Result<Option<Person>> {
    let Some(row) = sqlx::query(
        "SELECT id, uuid, properties, is_identified, created_at FROM persons WHERE id = ?",
    )
    .bind(person)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT distinct_id FROM person_distinct_ids WHERE person_id = ? ORDER BY id",
    )
    .bind(person)
    .fetch_all(&mut *conn)
    .await?;
    person_from_row(&row, ids).map(Some)
}

/// The person behind a distinct id, with all their distinct ids.
pub(super) async fn get(
    conn: &mut SqliteConnection,
    project: ProjectId,
    distinct_id: &str,
) -> Result<Option<Person>> {
    match person_id(conn, project, distinct_id).await? {
        Some(id) => load(conn, id).await,
        None => Ok(None),
    }
}

/// Loads a person the caller just wrote (inside its transaction).
async fn reload(conn: &mut SqliteConnection, person: i64) -> Result<Person> {
    load(conn, person)
        .await?
        .ok_or(StoreError::NotFound { entity: "person" })
}

pub(super) async fn create(
    conn: &mut SqliteConnection,
    project: ProjectId,
    properties: &Properties,
    is_identified: bool,
    created_at: DateTime<Utc>,
    distinct_ids: &[&str],
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO persons (project_id, uuid, properties, is_identified, version, created_at)
         VALUES (?, ?, ?, ?, 0, ?) RETURNING id",
    )
    .bind(project.0)
    .bind(Uuid::new_v4().to_string())
    .bind(serde_json::Value::Object(properties.clone()).to_string())
    .bind(is_identified)
    .bind(micros(created_at))
    .fetch_one(&mut *conn)
    .await
    .map_err(crate::sql::or_missing("project"))?;
    for d in distinct_ids {
        attach(conn, project, id, d).await?;
    }
    Ok(id)
}

pub(super) async fn attach(
    conn: &mut SqliteConnection,
    project: ProjectId,
    person: i64,
    distinct_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO person_distinct_ids (project_id, distinct_id, person_id) VALUES (?, ?, ?)",
    )
    .bind(project.0)
    .bind(distinct_id)
    .bind(person)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn save(
    conn: &mut SqliteConnection,
    person: i64,
    properties: &Properties,
    is_identified: bool,
    created_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE persons SET properties = ?, is_identified = ?, created_at = ?,
             version = version + 1
         WHERE id = ?",
    )
    .bind(serde_json::Value::Object(properties.clone()).to_string())
    .bind(is_identified)
    .bind(micros(created_at))
    .bind(person)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn apply_update(
    db: &Db,
    project: ProjectId,
    distinct_id: &str,
    update: &PersonUpdate,
) -> Result<Person> {
    let mut tx = db.write().await?;
    let mut changes = Changes::new(project);
    let id = changes.update(&mut *tx, distinct_id, update).await?;
    changes.flush(&mut *tx).await?;
    let person = reload(&mut tx, id).await?;
    tx.commit().await?;
    Ok(person)
}

pub(super) async fn identify(
    db: &Db,
    project: ProjectId,
    distinct_id: &str,
    other_id: &str,
) -> Result<Person> {
    let mut tx = db.write().await?;
    let mut changes = Changes::new(project);
    let id = changes.identify(&mut *tx, distinct_id, other_id).await?;
    changes.flush(&mut *tx).await?;
    let person = reload(&mut tx, id).await?;
    tx.commit().await?;
    Ok(person)
}

/// Moves person `merged`'s distinct ids and continuity hash keys to `kept` (the kept
/// person's hash keys win) and deletes `merged`.
pub(super) async fn merge_rows(conn: &mut SqliteConnection, kept: i64, merged: i64) -> Result<()> {
    sqlx::query("UPDATE person_distinct_ids SET person_id = ? WHERE person_id = ?")
        .bind(kept)
        .bind(merged)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO hash_key_overrides (project_id, person_id, flag_key, hash_key)
         SELECT project_id, ?, flag_key, hash_key FROM hash_key_overrides
         WHERE person_id = ?
         ON CONFLICT DO NOTHING",
    )
    .bind(kept)
    .bind(merged)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM persons WHERE id = ?")
        .bind(merged)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn delete(db: &Db, project: ProjectId, uuid: Uuid) -> Result<bool> {
    let mut tx = db.write().await?;
    // Distinct ids and hash-key overrides go with it (ON DELETE CASCADE).
    let deleted = sqlx::query("DELETE FROM persons WHERE project_id = ? AND uuid = ?")
        .bind(project.0)
        .bind(uuid.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(deleted > 0)
}

/// Persons whose property `key` reads as `value`, newest first.
pub(super) async fn find(
    conn: &mut SqliteConnection,
    project: ProjectId,
    key: &str,
    value: &str,
    limit: u32,
) -> Result<Vec<Person>> {
    // JSON booleans come out of json_each as 1/0: compare them as their JSON text.
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT p.id FROM persons p
         WHERE p.project_id = ? AND EXISTS (
             SELECT 1 FROM json_each(p.properties) j
             WHERE j.key = ? AND (CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                                  ELSE CAST(j.value AS TEXT) END) = ?)
         ORDER BY p.id DESC LIMIT ?",
    )
    .bind(project.0)
    .bind(key)
    .bind(value)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(person) = load(conn, id).await? {
            out.push(person);
        }
    }
    Ok(out)
}

/// The property keys of the latest `sample` persons and groups, most common first.
pub(super) async fn property_keys(
    conn: &mut SqliteConnection,
    project: ProjectId,
    sample: u32,
) -> Result<Vec<crate::PropertyKey>> {
    let rows = sqlx::query(
        "SELECT NULL AS group_type_index, j.key AS key, j.type AS type, COUNT(*) AS n
         FROM (SELECT properties FROM persons WHERE project_id = ?1 ORDER BY id DESC LIMIT ?2) p,
              json_each(p.properties) j
         GROUP BY j.key, j.type
         UNION ALL
         SELECT g.group_type_index, j.key, j.type, COUNT(*)
         FROM (SELECT group_type_index, properties FROM project_groups WHERE project_id = ?1
               ORDER BY updated_at DESC LIMIT ?2) g,
              json_each(g.properties) j
         GROUP BY g.group_type_index, j.key, j.type",
    )
    .bind(project.0)
    .bind(i64::from(sample))
    .fetch_all(&mut *conn)
    .await?;
    let mut typed = Vec::with_capacity(rows.len());
    for row in rows {
        let n: i64 = row.try_get("n")?;
        typed.push((
            row.try_get::<Option<i64>, _>("group_type_index")?,
            row.try_get::<String, _>("key")?,
            row.try_get::<String, _>("type")?,
            u64::try_from(n).unwrap_or(0),
        ));
    }
    Ok(crate::sql::property_keys(typed))
}
