//! Persons: properties, distinct ids, identify/alias merges, deletion.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::{json, micros, time, Db};
use crate::person::merge_properties;
use crate::{is_illegal_merge_id, Person, PersonUpdate, ProjectId, Properties, Result, StoreError};

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

async fn create(
    conn: &mut SqliteConnection,
    project: ProjectId,
    properties: &Properties,
    is_identified: bool,
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
    .bind(micros(crate::now()))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| {
        if super::is_fk_violation(&e) {
            StoreError::NotFound { entity: "project" }
        } else {
            e.into()
        }
    })?;
    for d in distinct_ids {
        attach(conn, project, id, d).await?;
    }
    Ok(id)
}

async fn attach(
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

async fn save(
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
    let id = match get(&mut tx, project, distinct_id).await? {
        Some(mut person) => {
            if update.apply(&mut person.properties) {
                save(
                    &mut tx,
                    person.id,
                    &person.properties,
                    person.is_identified,
                    person.created_at,
                )
                .await?;
            }
            person.id
        }
        None => {
            let mut props = Properties::new();
            update.apply(&mut props);
            create(&mut tx, project, &props, false, &[distinct_id]).await?
        }
    };
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
    let kept = get(&mut tx, project, distinct_id).await?;
    let legal = !is_illegal_merge_id(distinct_id) && !is_illegal_merge_id(other_id);
    if !legal || distinct_id == other_id {
        // Nothing to join: make sure the event's own person exists.
        let id = match kept {
            Some(p) => {
                if legal && !p.is_identified {
                    save(&mut tx, p.id, &p.properties, true, p.created_at).await?;
                }
                p.id
            }
            None => create(&mut tx, project, &Properties::new(), legal, &[distinct_id]).await?,
        };
        let person = reload(&mut tx, id).await?;
        tx.commit().await?;
        return Ok(person);
    }

    let other = get(&mut tx, project, other_id).await?;
    let id = match (kept, other) {
        (None, None) => {
            create(
                &mut tx,
                project,
                &Properties::new(),
                true,
                &[distinct_id, other_id],
            )
            .await?
        }
        (Some(p), None) => {
            attach(&mut tx, project, p.id, other_id).await?;
            save(&mut tx, p.id, &p.properties, true, p.created_at).await?;
            p.id
        }
        (None, Some(o)) => {
            attach(&mut tx, project, o.id, distinct_id).await?;
            save(&mut tx, o.id, &o.properties, true, o.created_at).await?;
            o.id
        }
        (Some(p), Some(o)) if p.id == o.id || o.is_identified => {
            // Same person already, or PostHog's guard: an identified person is never merged
            // away (two known users must not fuse).
            save(&mut tx, p.id, &p.properties, true, p.created_at).await?;
            p.id
        }
        (Some(mut p), Some(o)) => {
            merge_properties(&mut p.properties, o.properties);
            let created_at = p.created_at.min(o.created_at);
            save(&mut tx, p.id, &p.properties, true, created_at).await?;
            sqlx::query("UPDATE person_distinct_ids SET person_id = ? WHERE person_id = ?")
                .bind(p.id)
                .bind(o.id)
                .execute(&mut *tx)
                .await?;
            // Keep the merged person's continuity hash keys; the kept person's win.
            sqlx::query(
                "INSERT INTO hash_key_overrides (project_id, person_id, flag_key, hash_key)
                 SELECT project_id, ?, flag_key, hash_key FROM hash_key_overrides
                 WHERE person_id = ?
                 ON CONFLICT DO NOTHING",
            )
            .bind(p.id)
            .bind(o.id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM persons WHERE id = ?")
                .bind(o.id)
                .execute(&mut *tx)
                .await?;
            p.id
        }
    };
    let person = reload(&mut tx, id).await?;
    tx.commit().await?;
    Ok(person)
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
