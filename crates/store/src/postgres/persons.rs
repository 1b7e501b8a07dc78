//! Persons: properties, distinct ids, identify/alias merges, deletion.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{json, lock_persons, Db};
use crate::changes::Changes;
use crate::{Person, PersonUpdate, ProjectId, Properties, Result, StoreError};

/// The person id behind a distinct id.
pub(super) async fn person_id(
    conn: &mut PgConnection,
    project: ProjectId,
    distinct_id: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT person_id FROM person_distinct_ids WHERE project_id = $1 AND distinct_id = $2",
    )
    .bind(project.0)
    .bind(distinct_id)
    .fetch_optional(&mut *conn)
    .await?)
}

fn person_from_row(row: &PgRow, distinct_ids: Vec<String>) -> Result<Person> {
    Ok(Person {
        id: row.try_get("id")?,
        uuid: row.try_get("uuid")?,
        properties: json(row.try_get("properties")?, "person properties")?,
        distinct_ids,
        is_identified: row.try_get("is_identified")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A person's `(properties, is_identified, created_at)`.
pub(super) async fn row(
    conn: &mut PgConnection,
    person: i64,
) -> Result<Option<(Properties, bool, DateTime<Utc>)>> {
    let Some(row) =
        sqlx::query("SELECT properties, is_identified, created_at FROM persons WHERE id = $1")
            .bind(person)
            .fetch_optional(&mut *conn)
            .await?
    else {
        return Ok(None);
    };
    Ok(Some((
        json(row.try_get("properties")?, "person properties")?,
        row.try_get("is_identified")?,
        row.try_get("created_at")?,
    )))
}

async fn load(conn: &mut PgConnection, person: i64) -> Result<Option<Person>> {
    let Some(row) = sqlx::query(
        "SELECT id, uuid, properties, is_identified, created_at FROM persons WHERE id = $1",
    )
    .bind(person)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT distinct_id FROM person_distinct_ids WHERE person_id = $1 ORDER BY id",
    )
    .bind(person)
    .fetch_all(&mut *conn)
    .await?;
    person_from_row(&row, ids).map(Some)
}

/// The person behind a distinct id, with all their distinct ids.
pub(super) async fn get(
    conn: &mut PgConnection,
    project: ProjectId,
    distinct_id: &str,
) -> Result<Option<Person>> {
    // One statement reads the id and the person, so a merge committing in between cannot
    // leave a distinct id pointing at a person already gone.
    let Some(row) = sqlx::query(
        "SELECT p.id, p.uuid, p.properties, p.is_identified, p.created_at,
             ARRAY(SELECT o.distinct_id FROM person_distinct_ids o
                   WHERE o.person_id = p.id ORDER BY o.id) AS distinct_ids
         FROM person_distinct_ids d JOIN persons p ON p.id = d.person_id
         WHERE d.project_id = $1 AND d.distinct_id = $2",
    )
    .bind(project.0)
    .bind(distinct_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let ids: Vec<String> = row.try_get("distinct_ids")?;
    person_from_row(&row, ids).map(Some)
}

/// Loads a person the caller just wrote (inside its transaction).
async fn reload(conn: &mut PgConnection, person: i64) -> Result<Person> {
    load(conn, person)
        .await?
        .ok_or(StoreError::NotFound { entity: "person" })
}

pub(super) async fn create(
    conn: &mut PgConnection,
    project: ProjectId,
    properties: &Properties,
    is_identified: bool,
    created_at: DateTime<Utc>,
    distinct_ids: &[&str],
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO persons (project_id, uuid, properties, is_identified, version, created_at)
         VALUES ($1, $2, $3, $4, 0, $5) RETURNING id",
    )
    .bind(project.0)
    .bind(Uuid::new_v4())
    .bind(serde_json::Value::Object(properties.clone()).to_string())
    .bind(is_identified)
    .bind(created_at)
    .fetch_one(&mut *conn)
    .await
    .map_err(crate::sql::or_missing("project"))?;
    for d in distinct_ids {
        attach(conn, project, id, d).await?;
    }
    Ok(id)
}

pub(super) async fn attach(
    conn: &mut PgConnection,
    project: ProjectId,
    person: i64,
    distinct_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO person_distinct_ids (project_id, distinct_id, person_id) VALUES ($1, $2, $3)",
    )
    .bind(project.0)
    .bind(distinct_id)
    .bind(person)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn save(
    conn: &mut PgConnection,
    person: i64,
    properties: &Properties,
    is_identified: bool,
    created_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE persons SET properties = $1, is_identified = $2, created_at = $3,
             version = version + 1
         WHERE id = $4",
    )
    .bind(serde_json::Value::Object(properties.clone()).to_string())
    .bind(is_identified)
    .bind(created_at)
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
    lock_persons(&mut tx, project).await?;
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
    lock_persons(&mut tx, project).await?;
    let mut changes = Changes::new(project);
    let id = changes.identify(&mut *tx, distinct_id, other_id).await?;
    changes.flush(&mut *tx).await?;
    let person = reload(&mut tx, id).await?;
    tx.commit().await?;
    Ok(person)
}

/// Moves person `merged`'s distinct ids and continuity hash keys to `kept` (the kept
/// person's hash keys win) and deletes `merged`.
pub(super) async fn merge_rows(conn: &mut PgConnection, kept: i64, merged: i64) -> Result<()> {
    sqlx::query("UPDATE person_distinct_ids SET person_id = $1 WHERE person_id = $2")
        .bind(kept)
        .bind(merged)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO hash_key_overrides (project_id, person_id, flag_key, hash_key)
         SELECT project_id, $1, flag_key, hash_key FROM hash_key_overrides
         WHERE person_id = $2
         ON CONFLICT DO NOTHING",
    )
    .bind(kept)
    .bind(merged)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM persons WHERE id = $1")
        .bind(merged)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn delete(db: &Db, project: ProjectId, uuid: Uuid) -> Result<bool> {
    let mut tx = db.write().await?;
    lock_persons(&mut tx, project).await?;
    // Distinct ids and hash-key overrides go with it (ON DELETE CASCADE).
    let deleted = sqlx::query("DELETE FROM persons WHERE project_id = $1 AND uuid = $2")
        .bind(project.0)
        .bind(uuid)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(deleted > 0)
}

/// Persons whose property `key` reads as `value`, newest first.
pub(super) async fn find(
    conn: &mut PgConnection,
    project: ProjectId,
    key: &str,
    value: &str,
    limit: u32,
) -> Result<Vec<Person>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM persons
         WHERE project_id = $1 AND (properties::jsonb ->> $2) = $3
         ORDER BY id DESC LIMIT $4",
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
    conn: &mut PgConnection,
    project: ProjectId,
    sample: u32,
) -> Result<Vec<crate::PropertyKey>> {
    let rows = sqlx::query(
        "SELECT NULL::bigint AS group_type_index, e.key AS key, jsonb_typeof(e.value) AS type,
                COUNT(*) AS n
         FROM (SELECT properties FROM persons WHERE project_id = $1 ORDER BY id DESC LIMIT $2) p,
              jsonb_each(p.properties::jsonb) e
         GROUP BY e.key, jsonb_typeof(e.value)
         UNION ALL
         SELECT g.group_type_index::bigint, e.key, jsonb_typeof(e.value), COUNT(*)
         FROM (SELECT group_type_index, properties FROM project_groups WHERE project_id = $1
               ORDER BY updated_at DESC LIMIT $2) g,
              jsonb_each(g.properties::jsonb) e
         GROUP BY g.group_type_index, e.key, jsonb_typeof(e.value)",
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
