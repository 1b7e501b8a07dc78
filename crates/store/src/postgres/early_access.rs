//! Early access features: one row per feature, linked to one flag of the project.

use chrono::Utc;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{json, Db};
use crate::{
    EarlyAccessFeature, EarlyAccessFeatureUpdate, NewEarlyAccessFeature, ProjectId, Result,
    StoreError,
};

const COLUMNS: &str = "e.id, e.flag_id, f.key AS flag_key, e.name, e.description, e.stage,
     e.documentation_url, e.payload, e.created_at
     FROM early_access_features e JOIN feature_flags f ON f.id = e.flag_id";

fn from_row(row: &PgRow) -> Result<EarlyAccessFeature> {
    let stage: String = row.try_get("stage")?;
    Ok(EarlyAccessFeature {
        id: row.try_get("id")?,
        flag_id: row.try_get("flag_id")?,
        flag_key: row.try_get("flag_key")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        stage: stage
            .parse()
            .map_err(|e| StoreError::corrupt(format!("early access stage: {e}")))?,
        documentation_url: row.try_get("documentation_url")?,
        payload: json(row.try_get("payload")?, "early access payload")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn get(
    conn: &mut PgConnection,
    project: ProjectId,
    id: Uuid,
) -> Result<Option<EarlyAccessFeature>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} WHERE e.project_id = $1 AND e.id = $2"
    ))
    .bind(project.0)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn create(
    db: &Db,
    project: ProjectId,
    feature: &NewEarlyAccessFeature,
) -> Result<EarlyAccessFeature> {
    let mut tx = db.write().await?;
    let flag: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM feature_flags WHERE project_id = $1 AND id = $2 AND NOT deleted",
    )
    .bind(project.0)
    .bind(feature.flag_id)
    .fetch_optional(&mut *tx)
    .await?;
    if flag.is_none() {
        return Err(StoreError::NotFound { entity: "flag" });
    }
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO early_access_features
             (id, project_id, flag_id, name, description, stage, documentation_url, payload,
              created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(project.0)
    .bind(feature.flag_id)
    .bind(&feature.name)
    .bind(&feature.description)
    .bind(feature.stage.as_str())
    .bind(&feature.documentation_url)
    .bind(feature.payload.to_string())
    .bind(Utc::now())
    .execute(&mut *tx)
    .await
    .map_err(|e| {
        if super::is_unique_violation(&e) {
            StoreError::Duplicate {
                field: "feature_flag_id",
            }
        } else {
            e.into()
        }
    })?;
    let created = get(&mut tx, project, id)
        .await?
        .ok_or(StoreError::NotFound {
            entity: "early access feature",
        })?;
    tx.commit().await?;
    Ok(created)
}

pub(super) async fn list(db: &Db, project: ProjectId) -> Result<Vec<EarlyAccessFeature>> {
    let mut conn = db.acquire().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} WHERE e.project_id = $1 ORDER BY e.created_at, e.id"
    ))
    .bind(project.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn one(
    db: &Db,
    project: ProjectId,
    id: Uuid,
) -> Result<Option<EarlyAccessFeature>> {
    let mut conn = db.acquire().await?;
    get(&mut conn, project, id).await
}

pub(super) async fn update(
    db: &Db,
    project: ProjectId,
    id: Uuid,
    update: &EarlyAccessFeatureUpdate,
) -> Result<EarlyAccessFeature> {
    let mut tx = db.write().await?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} WHERE e.project_id = $1 AND e.id = $2 FOR UPDATE OF e"
    ))
    .bind(project.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let stored = row
        .as_ref()
        .map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound {
            entity: "early access feature",
        })?;
    let after = stored.updated(update);
    sqlx::query(
        "UPDATE early_access_features
         SET name = $1, description = $2, stage = $3, documentation_url = $4, payload = $5
         WHERE project_id = $6 AND id = $7",
    )
    .bind(&after.name)
    .bind(&after.description)
    .bind(after.stage.as_str())
    .bind(&after.documentation_url)
    .bind(after.payload.to_string())
    .bind(project.0)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(after)
}

pub(super) async fn delete(db: &Db, project: ProjectId, id: Uuid) -> Result<bool> {
    let mut conn = db.acquire().await?;
    let done = sqlx::query("DELETE FROM early_access_features WHERE project_id = $1 AND id = $2")
        .bind(project.0)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
