//! Groups (`$groupidentify`): properties per (group type index, group key).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{json, lock_persons, Db};
use crate::changes::Changes;
use crate::{Group, ProjectId, Properties, Result, StoreError};

fn group_from_row(row: &PgRow) -> Result<Group> {
    Ok(Group {
        group_type_index: row.try_get("group_type_index")?,
        group_key: row.try_get("group_key")?,
        properties: json(row.try_get("properties")?, "group properties")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) async fn get(
    conn: &mut PgConnection,
    project: ProjectId,
    group_type_index: i64,
    group_key: &str,
) -> Result<Option<Group>> {
    let row = sqlx::query(
        "SELECT group_type_index, group_key, properties, created_at, updated_at
         FROM project_groups WHERE project_id = $1 AND group_type_index = $2 AND group_key = $3",
    )
    .bind(project.0)
    .bind(group_type_index)
    .bind(group_key)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(group_from_row).transpose()
}

/// Writes a group's properties (created at `now` if new).
pub(super) async fn save(
    conn: &mut PgConnection,
    project: ProjectId,
    group_type_index: i64,
    group_key: &str,
    properties: &Properties,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO project_groups
             (project_id, group_type_index, group_key, properties, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (project_id, group_type_index, group_key)
         DO UPDATE SET properties = excluded.properties, updated_at = excluded.updated_at",
    )
    .bind(project.0)
    .bind(group_type_index)
    .bind(group_key)
    .bind(serde_json::Value::Object(properties.clone()).to_string())
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(crate::sql::or_missing("project"))?;
    Ok(())
}

pub(super) async fn upsert(
    db: &Db,
    project: ProjectId,
    group_type_index: i64,
    group_key: &str,
    set: &Properties,
) -> Result<Group> {
    crate::group::check(group_type_index, group_key)?;
    let mut tx = db.write().await?;
    lock_persons(&mut tx, project).await?;
    let mut changes = Changes::new(project);
    changes
        .group(&mut *tx, group_type_index, group_key, set)
        .await?;
    changes.flush(&mut *tx).await?;
    let group = get(&mut tx, project, group_type_index, group_key)
        .await?
        .ok_or(StoreError::NotFound { entity: "group" })?;
    tx.commit().await?;
    Ok(group)
}
