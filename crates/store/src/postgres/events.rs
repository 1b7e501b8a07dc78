//! Captured events and the flag-call history derived from `$feature_flag_called`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use super::{usage, Db};
use crate::{Day, FlagCallRecord, NewEvent, ProjectId, Result, StoreError};

pub(super) async fn insert(db: &Db, project: ProjectId, events: &[NewEvent]) -> Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let inserted_at = crate::now();
    let mut tx = db.write().await?;
    let mut new = 0;
    for e in events {
        if insert_one(&mut tx, project, e, inserted_at).await? {
            new += 1;
        }
    }
    tx.commit().await?;
    Ok(new)
}

/// Inserts one event (and its flag call); `false` when its uuid is already stored.
pub(super) async fn insert_one(
    conn: &mut PgConnection,
    project: ProjectId,
    e: &NewEvent,
    inserted_at: DateTime<Utc>,
) -> Result<bool> {
    let written = sqlx::query(
        "INSERT INTO events
             (project_id, uuid, event, distinct_id, properties, timestamp, inserted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (project_id, uuid) DO NOTHING",
    )
    .bind(project.0)
    .bind(e.uuid)
    .bind(&e.event)
    .bind(&e.distinct_id)
    .bind(
        serde_json::to_string(&e.properties)
            .map_err(|err| StoreError::invalid("properties", err.to_string()))?,
    )
    .bind(e.timestamp)
    .bind(inserted_at)
    .execute(&mut *conn)
    .await
    .map_err(|err| {
        if super::is_fk_violation(&err) {
            StoreError::NotFound { entity: "project" }
        } else {
            err.into()
        }
    })?
    .rows_affected();
    if written == 0 {
        return Ok(false); // a retried delivery: already stored, flag call included
    }
    if let Some(call) = e.flag_call() {
        let recorded = sqlx::query(
            "INSERT INTO flag_calls
                 (project_id, event_uuid, flag_key, response, distinct_id, person_id, at)
             VALUES ($1, $2, $3, $4, $5,
                 (SELECT person_id FROM person_distinct_ids
                  WHERE project_id = $1 AND distinct_id = $5),
                 $6)
             ON CONFLICT (project_id, event_uuid) DO NOTHING",
        )
        .bind(project.0)
        .bind(e.uuid)
        .bind(call.flag_key)
        .bind(call.response.to_string())
        .bind(&e.distinct_id)
        .bind(e.timestamp)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if recorded > 0 {
            usage::add_call(conn, project, call.flag_key, Day::of(e.timestamp)).await?;
        }
    }
    Ok(true)
}

pub(super) async fn count(
    db: &Db,
    project: ProjectId,
    distinct_id: &str,
    event: &str,
    since: DateTime<Utc>,
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events
         WHERE project_id = $1 AND event = $2 AND timestamp >= $3
           AND distinct_id IN (
               SELECT distinct_id FROM person_distinct_ids
               WHERE person_id = (SELECT person_id FROM person_distinct_ids
                                  WHERE project_id = $1 AND distinct_id = $4)
               UNION ALL SELECT $4)",
    )
    .bind(project.0)
    .bind(event)
    .bind(since)
    .bind(distinct_id)
    .fetch_one(&mut *db.acquire().await?)
    .await?;
    Ok(super::count(n))
}

/// Events by id after the cursor `after`. Ids are assigned at insert, not at commit, so a scan
/// running while other nodes capture may pass an id whose transaction commits later; the
/// caller scans at start, to rebuild derived state.
pub(super) async fn scan(
    db: &Db,
    project: ProjectId,
    names: &[String],
    since: DateTime<Utc>,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, NewEvent)>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT id, uuid, event, distinct_id, properties, timestamp FROM events
         WHERE project_id = $1 AND id > $2 AND timestamp >= $3 AND event = ANY($4)
         ORDER BY id LIMIT $5",
    )
    .bind(project.0)
    .bind(after)
    .bind(since)
    .bind(names)
    .bind(i64::from(limit))
    .fetch_all(&mut *db.acquire().await?)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                NewEvent {
                    uuid: r.try_get("uuid")?,
                    event: r.try_get("event")?,
                    distinct_id: r.try_get("distinct_id")?,
                    properties: super::json(r.try_get("properties")?, "event properties")?,
                    timestamp: r.try_get("timestamp")?,
                },
            ))
        })
        .collect()
}

pub(super) async fn last_flag_calls(
    db: &Db,
    project: ProjectId,
) -> Result<HashMap<String, DateTime<Utc>>> {
    let rows = sqlx::query(
        "SELECT flag_key, MAX(at) AS last_at FROM flag_calls WHERE project_id = $1
         GROUP BY flag_key",
    )
    .bind(project.0)
    .fetch_all(&mut *db.acquire().await?)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("flag_key")?, r.try_get("last_at")?)))
        .collect()
}

pub(super) async fn flag_calls(
    db: &Db,
    project: ProjectId,
    flag_key: &str,
    limit: u32,
) -> Result<Vec<FlagCallRecord>> {
    let rows = sqlx::query(
        "SELECT f.event_uuid, f.flag_key, f.distinct_id, f.response, f.at, e.properties
         FROM flag_calls f
         LEFT JOIN events e ON e.project_id = f.project_id AND e.uuid = f.event_uuid
         WHERE f.project_id = $1 AND f.flag_key = $2
         ORDER BY f.at DESC, f.id DESC LIMIT $3",
    )
    .bind(project.0)
    .bind(flag_key)
    .bind(i64::from(limit))
    .fetch_all(&mut *db.acquire().await?)
    .await?;
    rows.iter()
        .map(|r| {
            let properties: Option<String> = r.try_get("properties")?;
            Ok(FlagCallRecord {
                uuid: r.try_get("event_uuid")?,
                flag_key: r.try_get("flag_key")?,
                distinct_id: r.try_get("distinct_id")?,
                response: super::json(r.try_get("response")?, "flag call response")?,
                at: r.try_get("at")?,
                properties: match properties {
                    Some(text) => super::json(&text, "event properties")?,
                    None => Default::default(),
                },
            })
        })
        .collect()
}

/// Deletes up to `limit` events and up to `limit` flag calls that happened before `before`,
/// oldest first, in one short transaction.
pub(super) async fn purge(db: &Db, before: DateTime<Utc>, limit: u64) -> Result<u64> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut tx = db.write().await?;
    let events = sqlx::query(
        "DELETE FROM events WHERE id IN
             (SELECT id FROM events WHERE timestamp < $1 ORDER BY timestamp LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let calls = sqlx::query(
        "DELETE FROM flag_calls WHERE id IN
             (SELECT id FROM flag_calls WHERE at < $1 ORDER BY at LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(events + calls)
}
