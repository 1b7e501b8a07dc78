//! Flag use by day on SQLite: server evaluations added by the nodes, calls counted with their
//! events.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};

use super::{micros, placeholders, time, Db};
use crate::usage::{fold, Source};
use crate::{Day, EvaluationCount, ProjectId, Result, UsageDay};

/// Counts one stored `$feature_flag_called` call on its day (inside the event's transaction).
pub(super) async fn add_call(
    conn: &mut SqliteConnection,
    project: ProjectId,
    flag_key: &str,
    day: Day,
) -> Result<()> {
    add(conn, project, flag_key, day, Source::Calls, 1).await
}

async fn add(
    conn: &mut SqliteConnection,
    project: ProjectId,
    flag_key: &str,
    day: Day,
    source: Source,
    count: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO flag_usage_days (project_id, flag_key, day, source, count)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (project_id, flag_key, day, source)
         DO UPDATE SET count = count + excluded.count",
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
    let mut tx = db.write().await?;
    for c in counts {
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
            "INSERT INTO flag_last_evaluated (project_id, flag_key, at) VALUES (?, ?, ?)
             ON CONFLICT (project_id, flag_key) DO UPDATE SET at = max(at, excluded.at)",
        )
        .bind(project.0)
        .bind(&c.flag_key)
        .bind(micros(at))
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
    let rows = sqlx::query("SELECT flag_key, at FROM flag_last_evaluated WHERE project_id = ?")
        .bind(project.0)
        .fetch_all(&db.reader)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("flag_key")?, time(r.try_get("at")?)?)))
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
    let sql = format!(
        "SELECT flag_key, day, source, count FROM flag_usage_days
         WHERE project_id = ? AND day >= ? AND flag_key IN ({})",
        placeholders(keys.len())
    );
    let mut query = sqlx::query(&sql).bind(project.0).bind(since.0);
    for key in keys {
        query = query.bind(*key);
    }
    let rows = query.fetch_all(&db.reader).await?;
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
