//! Flag use by day on PostgreSQL: server evaluations added by the nodes, calls counted with their
//! events.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use super::Db;
use crate::usage::{fold, Source};
use crate::{Day, EvaluationCount, ProjectId, Result, UsageDay};

/// Counts one stored `$feature_flag_called` call on its day (inside the event's transaction).
pub(super) async fn add_call(
    conn: &mut PgConnection,
    project: ProjectId,
    flag_key: &str,
    day: Day,
) -> Result<()> {
    add(conn, project, flag_key, day, Source::Calls, 1).await
}

async fn add(
    conn: &mut PgConnection,
    project: ProjectId,
    flag_key: &str,
    day: Day,
    source: Source,
    count: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO flag_usage_days (project_id, flag_key, day, source, count)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (project_id, flag_key, day, source)
         DO UPDATE SET count = flag_usage_days.count + excluded.count",
    )
    .bind(project.0)
    .bind(flag_key)
    .bind(day.0)
    .bind(source.as_str())
    .bind(count)
    .execute(&mut *conn)
    .await
    .map_err(crate::sql::or_missing("project"))?;
    Ok(())
}

pub(super) async fn add_evaluations(
    db: &Db,
    project: ProjectId,
    counts: &[EvaluationCount],
    at: DateTime<Utc>,
) -> Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    // The same lock order on every node: two additions at once never deadlock.
    let mut sorted: Vec<&EvaluationCount> = counts.iter().collect();
    sorted.sort_by(|a, b| (&a.flag_key, a.day).cmp(&(&b.flag_key, b.day)));
    let mut tx = db.write().await?;
    for c in sorted {
        let count = i64::try_from(c.count).unwrap_or(i64::MAX);
        add(
            &mut tx,
            project,
            &c.flag_key,
            c.day,
            Source::Evaluations,
            count,
        )
        .await?;
        sqlx::query(
            "INSERT INTO flag_last_evaluated (project_id, flag_key, at) VALUES ($1, $2, $3)
             ON CONFLICT (project_id, flag_key)
             DO UPDATE SET at = GREATEST(flag_last_evaluated.at, excluded.at)",
        )
        .bind(project.0)
        .bind(&c.flag_key)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn last_evaluations(
    db: &Db,
    project: ProjectId,
) -> Result<HashMap<String, DateTime<Utc>>> {
    let rows = sqlx::query("SELECT flag_key, at FROM flag_last_evaluated WHERE project_id = $1")
        .bind(project.0)
        .fetch_all(&mut *db.acquire().await?)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("flag_key")?, r.try_get("at")?)))
        .collect()
}

pub(super) async fn usage(
    db: &Db,
    project: ProjectId,
    keys: &[&str],
    since: Day,
) -> Result<Vec<UsageDay>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT flag_key, day, source, count FROM flag_usage_days
         WHERE project_id = $1 AND day >= $2 AND flag_key = ANY($3)",
    )
    .bind(project.0)
    .bind(since.0)
    .bind(keys)
    .fetch_all(&mut *db.acquire().await?)
    .await?;
    let rows = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get("flag_key")?,
                r.try_get("day")?,
                r.try_get("source")?,
                r.try_get("count")?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(fold(rows))
}
