//! Projects, their credentials, their revision and their group type mapping.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{bump_revision, is_fk_violation, is_unique_violation, Db, CHANGES_CHANNEL};
use crate::keys::{self, KeyKind, PERSONAL_KEY_PREFIX, PROJECT_TOKEN_PREFIX, SECRET_KEY_PREFIX};
use crate::Revised;
use crate::{
    CreatedProject, GroupType, IssuedKey, Project, ProjectId, Result, StoreError,
    MAX_GROUP_TYPE_INDEX,
};

const COLUMNS: &str = "id, name, api_token, created_at";

fn from_row(row: &PgRow) -> Result<Project> {
    Ok(Project {
        id: ProjectId(row.try_get("id")?),
        name: row.try_get("name")?,
        api_token: row.try_get("api_token")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) async fn create(db: &Db, name: &str) -> Result<CreatedProject> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::invalid("name", "The name must not be empty."));
    }
    let api_token = keys::generate(PROJECT_TOKEN_PREFIX);
    let secret_key = keys::generate(SECRET_KEY_PREFIX);
    let personal_key = keys::generate(PERSONAL_KEY_PREFIX);
    let mut tx = db.write().await?;
    let row = sqlx::query(
        "INSERT INTO projects
             (name, api_token, secret_key_hash, personal_key_hash, revision, created_at)
         VALUES ($1, $2, $3, $4, 1, $5)
         RETURNING id, name, api_token, created_at",
    )
    .bind(name)
    .bind(&api_token)
    .bind(keys::hash_key(&secret_key))
    .bind(keys::hash_key(&personal_key))
    .bind(crate::now())
    .fetch_one(&mut *tx)
    .await?;
    let project = from_row(&row)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(format!("{}:1", project.id.0))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(CreatedProject {
        project,
        secret_key,
        personal_key,
    })
}

pub(super) async fn list(db: &Db) -> Result<Vec<Project>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM projects ORDER BY id"))
        .fetch_all(&mut *db.acquire().await?)
        .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn revisions(db: &Db) -> Result<Vec<(ProjectId, i64)>> {
    let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT id, revision FROM projects ORDER BY id")
        .fetch_all(&mut *db.acquire().await?)
        .await?;
    Ok(rows.into_iter().map(|(id, r)| (ProjectId(id), r)).collect())
}

pub(super) async fn revision(db: &Db, project: ProjectId) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT revision FROM projects WHERE id = $1")
            .bind(project.0)
            .fetch_optional(&mut *db.acquire().await?)
            .await?,
    )
}

pub(super) async fn get(db: &Db, project: ProjectId) -> Result<Option<Project>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM projects WHERE id = $1"))
        .bind(project.0)
        .fetch_optional(&mut *db.acquire().await?)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn by_token(db: &Db, token: &str) -> Result<Option<Project>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM projects WHERE api_token = $1"
    ))
    .bind(token)
    .fetch_optional(&mut *db.acquire().await?)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn by_personal_key(db: &Db, key: &str) -> Result<Option<Project>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM projects
         WHERE personal_key_hash = $1 AND personal_key_revoked_at IS NULL"
    ))
    .bind(keys::hash_key(key))
    .fetch_optional(&mut *db.acquire().await?)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn verify_key(
    db: &Db,
    project: ProjectId,
    kind: KeyKind,
    key: &str,
) -> Result<bool> {
    // Read on every call, never cached: a rotation or revocation committed by any node is seen
    // by the next check.
    let sql = match kind {
        KeyKind::Secret => {
            "SELECT secret_key_hash FROM projects WHERE id = $1 AND secret_key_revoked_at IS NULL"
        }
        KeyKind::Personal => {
            "SELECT personal_key_hash FROM projects
             WHERE id = $1 AND personal_key_revoked_at IS NULL"
        }
    };
    let stored: Option<String> = sqlx::query_scalar(sql)
        .bind(project.0)
        .fetch_optional(&mut *db.acquire().await?)
        .await?;
    Ok(stored.is_some_and(|s| keys::verify(&s, key)))
}

pub(super) async fn rotate_key(db: &Db, project: ProjectId, kind: KeyKind) -> Result<IssuedKey> {
    let key = keys::generate(kind.prefix());
    let sql = match kind {
        KeyKind::Secret => {
            "UPDATE projects SET secret_key_hash = $1, secret_key_revoked_at = NULL WHERE id = $2"
        }
        KeyKind::Personal => {
            "UPDATE projects SET personal_key_hash = $1, personal_key_revoked_at = NULL
             WHERE id = $2"
        }
    };
    let mut tx = db.write().await?;
    let updated = sqlx::query(sql)
        .bind(keys::hash_key(&key))
        .bind(project.0)
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound { entity: "project" });
    }
    bump_revision(&mut tx, project, Revised::Project).await?;
    tx.commit().await?;
    Ok(IssuedKey { project, kind, key })
}

pub(super) async fn revoke_key(db: &Db, project: ProjectId, kind: KeyKind) -> Result<()> {
    // The first revocation's time is kept.
    let sql = match kind {
        KeyKind::Secret => {
            "UPDATE projects SET secret_key_revoked_at = COALESCE(secret_key_revoked_at, $1)
             WHERE id = $2"
        }
        KeyKind::Personal => {
            "UPDATE projects SET personal_key_revoked_at = COALESCE(personal_key_revoked_at, $1)
             WHERE id = $2"
        }
    };
    let mut tx = db.write().await?;
    let updated = sqlx::query(sql)
        .bind(crate::now())
        .bind(project.0)
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::NotFound { entity: "project" });
    }
    bump_revision(&mut tx, project, Revised::Project).await?;
    tx.commit().await?;
    Ok(())
}

async fn group_type_index(
    conn: &mut PgConnection,
    project: ProjectId,
    name: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT group_type_index FROM group_types WHERE project_id = $1 AND name = $2",
    )
    .bind(project.0)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?)
}

pub(super) async fn ensure_group_type(db: &Db, project: ProjectId, name: &str) -> Result<i64> {
    if name.is_empty() {
        return Err(StoreError::invalid(
            "group_type",
            "The group type name must not be empty.",
        ));
    }
    // Fast path without a lock: the type usually exists already.
    let mut conn = db.acquire().await?;
    if let Some(index) = group_type_index(&mut conn, project, name).await? {
        return Ok(index);
    }
    drop(conn);

    let mut tx = db.write().await?;
    // The bump locks the project row: concurrent creators queue here and re-read below.
    bump_revision(&mut tx, project, Revised::Project).await?;
    if let Some(index) = group_type_index(&mut tx, project, name).await? {
        return Ok(index); // rolled back: nothing changed
    }
    let next: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(group_type_index) + 1, 0) FROM group_types WHERE project_id = $1",
    )
    .bind(project.0)
    .fetch_one(&mut *tx)
    .await?;
    if next > MAX_GROUP_TYPE_INDEX {
        return Err(StoreError::invalid(
            "group_type",
            format!(
                "A project has at most {} group types.",
                MAX_GROUP_TYPE_INDEX + 1
            ),
        ));
    }
    let inserted = sqlx::query(
        "INSERT INTO group_types (project_id, group_type_index, name, created_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(project.0)
    .bind(next)
    .bind(name)
    .bind(crate::now())
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_fk_violation(&e) => return Err(StoreError::NotFound { entity: "project" }),
        Err(e) if is_unique_violation(&e) => return Err(StoreError::Duplicate { field: "name" }),
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    Ok(next)
}

pub(super) async fn group_types(
    conn: &mut PgConnection,
    project: ProjectId,
) -> Result<Vec<GroupType>> {
    let rows = sqlx::query(
        "SELECT group_type_index, name FROM group_types WHERE project_id = $1
         ORDER BY group_type_index",
    )
    .bind(project.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(GroupType {
                group_type_index: r.try_get("group_type_index")?,
                name: r.try_get("name")?,
            })
        })
        .collect()
}
