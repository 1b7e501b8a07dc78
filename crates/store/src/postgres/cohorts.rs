//! Cohorts and static cohort membership.

use std::collections::HashSet;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{bump_revision, count, json, Db};
use crate::Revised;
use crate::{Cohort, CohortUpdate, Listing, NewCohort, Page, ProjectId, Result, StoreError};

const COLUMNS: &str = "id, project_id, name, description, filters, is_static, deleted, version, \
    created_by, created_at, updated_at";

fn from_row(row: &PgRow) -> Result<Cohort> {
    Ok(Cohort {
        id: row.try_get("id")?,
        project_id: ProjectId(row.try_get("project_id")?),
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        filters: json(row.try_get("filters")?, "cohort filters")?,
        is_static: row.try_get("is_static")?,
        deleted: row.try_get("deleted")?,
        version: row.try_get("version")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) async fn create(db: &Db, project: ProjectId, new: &NewCohort) -> Result<Cohort> {
    new.validate()?;
    let mut cohort = new.to_cohort(project, crate::now());
    let mut tx = db.write().await?;
    cohort.id = sqlx::query_scalar(
        "INSERT INTO cohorts (project_id, name, description, filters, is_static, deleted,
             version, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, FALSE, 1, $6, $7, $8)
         RETURNING id",
    )
    .bind(project.0)
    .bind(&cohort.name)
    .bind(&cohort.description)
    .bind(cohort.filters.to_string())
    .bind(cohort.is_static)
    .bind(&cohort.created_by)
    .bind(cohort.created_at)
    .bind(cohort.updated_at)
    .fetch_one(&mut *tx)
    .await
    .map_err(crate::sql::or_missing("project"))?;
    bump_revision(&mut tx, project, Revised::Cohort(cohort.id)).await?;
    tx.commit().await?;
    Ok(cohort)
}

pub(super) async fn update(
    db: &Db,
    project: ProjectId,
    id: i64,
    update: &CohortUpdate,
    expected_version: Option<i64>,
) -> Result<Cohort> {
    let mut tx = db.write().await?;
    // Locked until commit, so the version check below holds for the write.
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM cohorts WHERE id = $1 AND project_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(project.0)
    .fetch_optional(&mut *tx)
    .await?;
    let before = from_row(&row.ok_or(StoreError::NotFound { entity: "cohort" })?)?;
    if expected_version.is_some_and(|expected| expected != before.version) {
        return Err(StoreError::Conflict {
            current_version: before.version,
        });
    }
    let after = update.apply(&before, crate::now())?;
    sqlx::query(
        "UPDATE cohorts SET name = $1, description = $2, filters = $3, deleted = $4,
             updated_at = $5, version = version + 1
         WHERE id = $6 AND project_id = $7",
    )
    .bind(&after.name)
    .bind(&after.description)
    .bind(after.filters.to_string())
    .bind(after.deleted)
    .bind(after.updated_at)
    .bind(id)
    .bind(project.0)
    .execute(&mut *tx)
    .await?;
    bump_revision(&mut tx, project, Revised::Cohort(id)).await?;
    tx.commit().await?;
    Ok(after)
}

pub(super) async fn get(
    conn: &mut PgConnection,
    project: ProjectId,
    id: i64,
) -> Result<Option<Cohort>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM cohorts WHERE id = $1 AND project_id = $2"
    ))
    .bind(id)
    .bind(project.0)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn list(db: &Db, project: ProjectId, page: Page) -> Result<Listing<Cohort>> {
    let mut conn = db.acquire().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM cohorts WHERE project_id = $1 AND NOT deleted
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(project.0)
    .bind(i64::from(page.limit))
    .bind(i64::from(page.offset))
    .fetch_all(&mut *conn)
    .await?;
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM cohorts WHERE project_id = $1 AND NOT deleted")
            .bind(project.0)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Listing {
        items: rows.iter().map(from_row).collect::<Result<_>>()?,
        total: count(total),
    })
}

/// The project's non-deleted dynamic cohorts (for the definitions feed).
pub(super) async fn dynamic(conn: &mut PgConnection, project: ProjectId) -> Result<Vec<Cohort>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM cohorts
         WHERE project_id = $1 AND NOT deleted AND NOT is_static ORDER BY id"
    ))
    .bind(project.0)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The cohort, which must exist in the project and be static.
async fn static_cohort(conn: &mut PgConnection, project: ProjectId, id: i64) -> Result<Cohort> {
    let cohort = get(conn, project, id)
        .await?
        .ok_or(StoreError::NotFound { entity: "cohort" })?;
    if cohort.is_static {
        Ok(cohort)
    } else {
        Err(StoreError::invalid(
            "is_static",
            "Members can only be listed for a static cohort.",
        ))
    }
}

pub(super) async fn add_members(
    db: &Db,
    project: ProjectId,
    cohort: i64,
    distinct_ids: &[String],
) -> Result<u64> {
    let mut tx = db.write().await?;
    static_cohort(&mut tx, project, cohort).await?;
    // Inserted in the slice's order (members list in insertion order); a repeated id counts
    // once.
    let added = sqlx::query(
        "INSERT INTO cohort_static_members (project_id, cohort_id, distinct_id, added_at)
         SELECT $1, $2, d, $4 FROM UNNEST($3::text[]) WITH ORDINALITY AS u (d, n) ORDER BY n
         ON CONFLICT DO NOTHING",
    )
    .bind(project.0)
    .bind(cohort)
    .bind(distinct_ids)
    .bind(crate::now())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    bump_revision(&mut tx, project, Revised::Cohort(cohort)).await?;
    tx.commit().await?;
    Ok(added)
}

pub(super) async fn remove_members(
    db: &Db,
    project: ProjectId,
    cohort: i64,
    distinct_ids: &[String],
) -> Result<u64> {
    let mut tx = db.write().await?;
    static_cohort(&mut tx, project, cohort).await?;
    let removed = sqlx::query(
        "DELETE FROM cohort_static_members
         WHERE project_id = $1 AND cohort_id = $2 AND distinct_id = ANY($3)",
    )
    .bind(project.0)
    .bind(cohort)
    .bind(distinct_ids)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    bump_revision(&mut tx, project, Revised::Cohort(cohort)).await?;
    tx.commit().await?;
    Ok(removed)
}

pub(super) async fn members(
    db: &Db,
    project: ProjectId,
    cohort: i64,
    page: Page,
) -> Result<Listing<String>> {
    let mut conn = db.acquire().await?;
    static_cohort(&mut conn, project, cohort).await?;
    let items: Vec<String> = sqlx::query_scalar(
        "SELECT distinct_id FROM cohort_static_members
         WHERE project_id = $1 AND cohort_id = $2 ORDER BY id LIMIT $3 OFFSET $4",
    )
    .bind(project.0)
    .bind(cohort)
    .bind(i64::from(page.limit))
    .bind(i64::from(page.offset))
    .fetch_all(&mut *conn)
    .await?;
    let total = count_members(&mut conn, project, cohort).await?;
    Ok(Listing { items, total })
}

pub(super) async fn count_members(
    conn: &mut PgConnection,
    project: ProjectId,
    cohort: i64,
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM cohort_static_members WHERE project_id = $1 AND cohort_id = $2",
    )
    .bind(project.0)
    .bind(cohort)
    .fetch_one(&mut *conn)
    .await?;
    Ok(count(n))
}

/// Static cohorts listing `distinct_id` or, when `person` is known, any of its distinct ids.
pub(super) async fn static_memberships(
    conn: &mut PgConnection,
    project: ProjectId,
    distinct_id: &str,
    person: Option<i64>,
) -> Result<HashSet<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT m.cohort_id
         FROM cohort_static_members m JOIN cohorts c ON c.id = m.cohort_id
         WHERE m.project_id = $1 AND NOT c.deleted AND c.is_static
           AND m.distinct_id IN (
               SELECT distinct_id FROM person_distinct_ids WHERE person_id = $2
               UNION ALL SELECT $3)",
    )
    .bind(project.0)
    .bind(person)
    .bind(distinct_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids.into_iter().collect())
}
