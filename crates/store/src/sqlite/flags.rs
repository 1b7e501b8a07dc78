//! Feature flags: versioned writes with their activity-log entries, listing, and the
//! local-evaluation definitions built from them.

use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use vexil_engine::Definitions;

use super::{
    bump_revision, cohorts, count, is_fk_violation, is_unique_violation, json, micros,
    placeholders, projects, time, Db,
};
use crate::actor::ActorColumns;
use crate::flag::snapshot;
use crate::sql::flag_order_by;
use crate::watch::{self, ChangesSince, ReloadReason, Replay, Revised, MAX_REPLAYED};
use crate::{
    ActivityAction, ActivityCursor, ActivityEntry, ActivityPage, Actor, EvaluationRuntime,
    FeatureFlag, FlagAge, FlagCheck, FlagQuery, FlagUpdate, Listing, NewFlag, Page, ProjectId,
    Result, StoreError,
};

const COLUMNS: &str = "id, project_id, key, name, filters, active, deleted, \
    ensure_experience_continuity, version, evaluation_runtime, evaluation_tags, tags, \
    bucketing_identifier, is_remote_configuration, has_encrypted_payloads, has_experiment, \
    created_by, last_modified_by, created_at, updated_at";

fn from_row(row: &SqliteRow) -> Result<FeatureFlag> {
    let runtime: String = row.try_get("evaluation_runtime")?;
    Ok(FeatureFlag {
        id: row.try_get("id")?,
        project_id: ProjectId(row.try_get("project_id")?),
        key: row.try_get("key")?,
        name: row.try_get("name")?,
        filters: json(row.try_get("filters")?, "flag filters")?,
        active: row.try_get("active")?,
        deleted: row.try_get("deleted")?,
        ensure_experience_continuity: row.try_get("ensure_experience_continuity")?,
        version: row.try_get("version")?,
        evaluation_runtime: EvaluationRuntime::parse(&runtime)
            .ok_or_else(|| StoreError::corrupt(format!("evaluation_runtime {runtime:?}")))?,
        evaluation_tags: json(row.try_get("evaluation_tags")?, "flag evaluation_tags")?,
        tags: json(row.try_get("tags")?, "flag tags")?,
        bucketing_identifier: row.try_get("bucketing_identifier")?,
        is_remote_configuration: row.try_get("is_remote_configuration")?,
        has_encrypted_payloads: row.try_get("has_encrypted_payloads")?,
        has_experiment: row.try_get("has_experiment")?,
        created_by: row.try_get("created_by")?,
        last_modified_by: row.try_get("last_modified_by")?,
        created_at: time(row.try_get("created_at")?)?,
        updated_at: time(row.try_get("updated_at")?)?,
    })
}

fn string_list(list: &[String]) -> String {
    Value::from(list.to_vec()).to_string()
}

/// Maps a write error on `feature_flags` to the store's vocabulary.
fn write_error(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Duplicate { field: "key" }
    } else if is_fk_violation(&e) {
        StoreError::NotFound { entity: "project" }
    } else {
        e.into()
    }
}

pub(super) async fn create(
    db: &Db,
    project: ProjectId,
    new: &NewFlag,
    check: &FlagCheck<'_>,
) -> Result<FeatureFlag> {
    new.validate()?;
    let mut tx = db.write().await?;
    let mut flag = new.to_flag(project, crate::now());
    check(None, &flag)?;
    flag.id = sqlx::query_scalar(
        "INSERT INTO feature_flags (project_id, key, name, filters, active, deleted,
             ensure_experience_continuity, version, evaluation_runtime, evaluation_tags, tags,
             bucketing_identifier, is_remote_configuration, has_encrypted_payloads,
             has_experiment, created_by, last_modified_by, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 0, ?, 1, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(project.0)
    .bind(&flag.key)
    .bind(&flag.name)
    .bind(flag.filters.to_string())
    .bind(flag.active)
    .bind(flag.ensure_experience_continuity)
    .bind(flag.evaluation_runtime.as_str())
    .bind(string_list(&flag.evaluation_tags))
    .bind(string_list(&flag.tags))
    .bind(&flag.bucketing_identifier)
    .bind(flag.is_remote_configuration)
    .bind(flag.has_encrypted_payloads)
    .bind(&flag.created_by)
    .bind(&flag.last_modified_by)
    .bind(micros(flag.created_at))
    .bind(micros(flag.updated_at))
    .fetch_one(&mut *tx)
    .await
    .map_err(write_error)?;
    log(
        &mut tx,
        ActivityAction::Created,
        None,
        &flag,
        new.created_by.as_ref(),
    )
    .await?;
    bump_revision(&mut tx, project, Revised::Flag(flag.id)).await?;
    tx.commit().await?;
    Ok(flag)
}

pub(super) async fn update(
    db: &Db,
    project: ProjectId,
    id: i64,
    update: &FlagUpdate,
    actor: Option<&Actor>,
    check: &FlagCheck<'_>,
) -> Result<FeatureFlag> {
    // `BEGIN IMMEDIATE` on the one writer connection: from the read below to the commit no
    // other write can interleave, so the check and the version bump see the latest row.
    let mut tx = db.write().await?;
    let before = get(&mut tx, project, id)
        .await?
        .ok_or(StoreError::NotFound { entity: "flag" })?;
    let after = update.apply(&before, crate::now(), actor)?;
    check(Some(&before), &after)?;
    sqlx::query(
        "UPDATE feature_flags SET key = ?, name = ?, filters = ?, active = ?, deleted = ?,
             ensure_experience_continuity = ?, evaluation_runtime = ?, evaluation_tags = ?,
             tags = ?, bucketing_identifier = ?, is_remote_configuration = ?,
             has_encrypted_payloads = ?, last_modified_by = ?, updated_at = ?, version = ?
         WHERE id = ? AND project_id = ?",
    )
    .bind(&after.key)
    .bind(&after.name)
    .bind(after.filters.to_string())
    .bind(after.active)
    .bind(after.deleted)
    .bind(after.ensure_experience_continuity)
    .bind(after.evaluation_runtime.as_str())
    .bind(string_list(&after.evaluation_tags))
    .bind(string_list(&after.tags))
    .bind(&after.bucketing_identifier)
    .bind(after.is_remote_configuration)
    .bind(after.has_encrypted_payloads)
    .bind(&after.last_modified_by)
    .bind(micros(after.updated_at))
    .bind(after.version)
    .bind(id)
    .bind(project.0)
    .execute(&mut *tx)
    .await
    .map_err(write_error)?;
    log(
        &mut tx,
        ActivityAction::of_update(&before, &after),
        Some(&before),
        &after,
        actor,
    )
    .await?;
    bump_revision(&mut tx, project, Revised::Flag(id)).await?;
    tx.commit().await?;
    Ok(after)
}

/// [`crate::Store::changes_since`]: the revision, the log after `since` and the changed flags,
/// all read in one transaction (one snapshot of the WAL).
pub(super) async fn changes_since(
    db: &Db,
    project: ProjectId,
    since: i64,
) -> Result<Option<ChangesSince>> {
    let mut tx = db.reader.begin().await?;
    let revision: Option<i64> = sqlx::query_scalar("SELECT revision FROM projects WHERE id = ?")
        .bind(project.0)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(revision) = revision else {
        return Ok(None);
    };
    let log: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT revision, kind, entity_id FROM definition_changes
         WHERE project_id = ? AND revision > ? ORDER BY revision LIMIT ?",
    )
    .bind(project.0)
    .bind(since)
    .bind(i64::try_from(MAX_REPLAYED + 1).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await?;
    let replay = match watch::plan(since, revision, &log)? {
        Err(reason) => Replay::Reload(reason),
        Ok(ids) if ids.is_empty() => Replay::Flags(Vec::new()),
        Ok(ids) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM feature_flags
                 WHERE project_id = ? AND id IN ({}) ORDER BY id",
                placeholders(ids.len())
            );
            let mut query = sqlx::query(&sql).bind(project.0);
            for id in &ids {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&mut *tx).await?;
            let flags = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
            if flags.len() == ids.len() {
                Replay::Flags(flags)
            } else {
                // A logged flag whose row is gone: only a reload can say what the project is.
                Replay::Reload(ReloadReason::Gap)
            }
        }
    };
    tx.commit().await?;
    Ok(Some(ChangesSince { revision, replay }))
}

async fn log(
    conn: &mut SqliteConnection,
    action: ActivityAction,
    before: Option<&FeatureFlag>,
    after: &FeatureFlag,
    actor: Option<&Actor>,
) -> Result<()> {
    let who = Actor::columns(actor);
    let before = before.map(snapshot).transpose()?.map(|v| v.to_string());
    sqlx::query(
        "INSERT INTO flag_activity (project_id, flag_id, flag_key, action, actor, at, before, after,
             actor_user_id, actor_key_id, actor_key_label, actor_key_mask)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(after.project_id.0)
    .bind(after.id)
    .bind(&after.key)
    .bind(action.as_str())
    .bind(who.label)
    .bind(micros(after.updated_at))
    .bind(before)
    .bind(snapshot(after)?.to_string())
    .bind(who.user_id)
    .bind(who.key_id)
    .bind(who.key_label)
    .bind(who.key_mask)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn get(
    conn: &mut SqliteConnection,
    project: ProjectId,
    id: i64,
) -> Result<Option<FeatureFlag>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM feature_flags WHERE id = ? AND project_id = ?"
    ))
    .bind(id)
    .bind(project.0)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub(super) async fn get_by_key(
    db: &Db,
    project: ProjectId,
    key: &str,
) -> Result<Option<FeatureFlag>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM feature_flags WHERE project_id = ? AND key = ? AND deleted = 0"
    ))
    .bind(project.0)
    .bind(key)
    .fetch_optional(&db.reader)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// `%needle%` for `LIKE … ESCAPE '\'`, with the needle's own wildcards escaped.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The collation [`crate::FlagOrderField::Name`] sorts by: [`crate::compare_names`],
/// registered on every connection.
pub(super) const NAME_COLLATION: &str = "vexil_name";

pub(super) async fn list(
    db: &Db,
    project: ProjectId,
    query: &FlagQuery,
) -> Result<Listing<FeatureFlag>> {
    let mut filter = String::from("project_id = ? AND deleted = 0");
    if query.active.is_some() {
        filter.push_str(" AND active = ?");
    }
    let pattern = query
        .search
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(like_pattern);
    if pattern.is_some() {
        filter.push_str(" AND (key LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')");
    }
    // One bound JSON array, however many ids (no limit on bound parameters to meet).
    let ids = query.ids.as_deref().map(|ids| Value::from(ids).to_string());
    if ids.is_some() {
        filter.push_str(" AND id IN (SELECT value FROM json_each(?))");
    }
    // Binds in the order `filter` names them; shared by the page and the count.
    macro_rules! bind_filter {
        ($q:expr) => {{
            let mut q = $q.bind(project.0);
            if let Some(active) = query.active {
                q = q.bind(active);
            }
            if let Some(p) = &pattern {
                q = q.bind(p).bind(p);
            }
            if let Some(ids) = &ids {
                q = q.bind(ids);
            }
            q
        }};
    }

    let mut conn = db.reader.acquire().await?;
    let order = flag_order_by(
        query.order,
        "key",
        &format!("name COLLATE {NAME_COLLATION}"),
    );
    let page_sql = format!(
        "SELECT {COLUMNS} FROM feature_flags WHERE {filter} ORDER BY {order} LIMIT ? OFFSET ?"
    );
    let rows = bind_filter!(sqlx::query(&page_sql))
        .bind(i64::from(query.page.limit))
        .bind(i64::from(query.page.offset))
        .fetch_all(&mut *conn)
        .await?;
    let count_sql = format!("SELECT COUNT(*) FROM feature_flags WHERE {filter}");
    let total: i64 = bind_filter!(sqlx::query_scalar(&count_sql))
        .fetch_one(&mut *conn)
        .await?;
    Ok(Listing {
        items: rows.iter().map(from_row).collect::<Result<_>>()?,
        total: count(total),
    })
}

pub(super) async fn ages(db: &Db, project: ProjectId) -> Result<Vec<FlagAge>> {
    // One row holding every flag as `[id, key, created_at]`: sqlx hands SQLite rows over one
    // at a time from its worker thread, which costs more than the row itself here.
    let packed: String = sqlx::query_scalar(
        "SELECT COALESCE(json_group_array(json_array(id, key, created_at)), '[]') FROM (
             SELECT id, key, created_at FROM feature_flags
             WHERE project_id = ? AND deleted = 0 ORDER BY id)",
    )
    .bind(project.0)
    .fetch_one(&db.reader)
    .await?;
    let mut rows: Vec<(i64, String, i64)> = json(&packed, "flag ages")?;
    // An aggregate's input order is not promised: sort here (already sorted: linear).
    rows.sort_unstable_by_key(|(id, _, _)| *id);
    rows.into_iter()
        .map(|(id, key, created)| {
            Ok(FlagAge {
                id,
                key,
                created_at: time(created)?,
            })
        })
        .collect()
}

/// The columns [`activity_from_row`] reads.
const ACTIVITY_COLUMNS: &str =
    "id, project_id, flag_id, flag_key, action, actor, at, before, after, \
    actor_user_id, actor_key_id, actor_key_label, actor_key_mask";

pub(super) async fn activity_entry(
    db: &Db,
    project: ProjectId,
    id: i64,
) -> Result<Option<ActivityEntry>> {
    let row = sqlx::query(&format!(
        "SELECT {ACTIVITY_COLUMNS} FROM flag_activity WHERE project_id = ? AND id = ?"
    ))
    .bind(project.0)
    .bind(id)
    .fetch_optional(&db.reader)
    .await?;
    row.as_ref().map(activity_from_row).transpose()
}

fn activity_from_row(row: &SqliteRow) -> Result<ActivityEntry> {
    let action: String = row.try_get("action")?;
    let before: Option<String> = row.try_get("before")?;
    let after: Option<String> = row.try_get("after")?;
    Ok(ActivityEntry {
        id: row.try_get("id")?,
        project_id: ProjectId(row.try_get("project_id")?),
        flag_id: row.try_get("flag_id")?,
        flag_key: row.try_get("flag_key")?,
        action: ActivityAction::parse(&action)
            .ok_or_else(|| StoreError::corrupt(format!("activity action {action:?}")))?,
        actor: Actor::from_columns(ActorColumns {
            label: row.try_get("actor")?,
            user_id: row.try_get("actor_user_id")?,
            key_id: row.try_get("actor_key_id")?,
            key_label: row.try_get("actor_key_label")?,
            key_mask: row.try_get("actor_key_mask")?,
        }),
        at: time(row.try_get("at")?)?,
        before: before.map(|b| json(&b, "activity before")).transpose()?,
        after: after.map(|a| json(&a, "activity after")).transpose()?,
    })
}

pub(super) async fn activity(
    db: &Db,
    project: ProjectId,
    flag: Option<i64>,
    page: Page,
) -> Result<Listing<ActivityEntry>> {
    let filter = if flag.is_some() {
        "project_id = ? AND flag_id = ?"
    } else {
        "project_id = ?"
    };
    let mut conn = db.reader.acquire().await?;
    let page_sql = format!(
        "SELECT {ACTIVITY_COLUMNS}
         FROM flag_activity WHERE {filter} ORDER BY id DESC LIMIT ? OFFSET ?"
    );
    let mut q = sqlx::query(&page_sql).bind(project.0);
    if let Some(f) = flag {
        q = q.bind(f);
    }
    let rows = q
        .bind(i64::from(page.limit))
        .bind(i64::from(page.offset))
        .fetch_all(&mut *conn)
        .await?;
    let count_sql = format!("SELECT COUNT(*) FROM flag_activity WHERE {filter}");
    let mut q = sqlx::query_scalar(&count_sql).bind(project.0);
    if let Some(f) = flag {
        q = q.bind(f);
    }
    let total: i64 = q.fetch_one(&mut *conn).await?;
    Ok(Listing {
        items: rows.iter().map(activity_from_row).collect::<Result<_>>()?,
        total: count(total),
    })
}

pub(super) async fn activity_page(
    db: &Db,
    project: ProjectId,
    flag: Option<i64>,
    cursor: ActivityCursor,
    limit: u32,
) -> Result<ActivityPage> {
    let filter = if flag.is_some() {
        "project_id = ? AND flag_id = ?"
    } else {
        "project_id = ?"
    };
    let keyset = cursor.keyset();
    let mut conn = db.reader.acquire().await?;
    let bound = keyset
        .bound
        .map_or(String::new(), |(cond, _)| format!(" AND {cond}?"));
    let page_sql = format!(
        "SELECT {ACTIVITY_COLUMNS} FROM flag_activity WHERE {filter}{bound}
         ORDER BY id {} LIMIT ?",
        keyset.direction
    );
    let mut q = sqlx::query(&page_sql).bind(project.0);
    if let Some(f) = flag {
        q = q.bind(f);
    }
    if let Some((_, id)) = keyset.bound {
        q = q.bind(id);
    }
    let rows = q.bind(i64::from(limit) + 1).fetch_all(&mut *conn).await?;
    let near = match keyset.near {
        None => false,
        Some((cond, id)) => {
            let sql =
                format!("SELECT EXISTS (SELECT 1 FROM flag_activity WHERE {filter} AND {cond}?)");
            let mut q = sqlx::query_scalar(&sql).bind(project.0);
            if let Some(f) = flag {
                q = q.bind(f);
            }
            q.bind(id).fetch_one(&mut *conn).await?
        }
    };
    let count_sql = format!("SELECT COUNT(*) FROM flag_activity WHERE {filter}");
    let mut q = sqlx::query_scalar(&count_sql).bind(project.0);
    if let Some(f) = flag {
        q = q.bind(f);
    }
    let total: i64 = q.fetch_one(&mut *conn).await?;
    let rows = rows
        .iter()
        .map(activity_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok(cursor.page(rows, limit, count(total), near))
}

pub(super) async fn definitions(db: &Db, project: ProjectId) -> Result<Definitions> {
    // One read transaction: flags, mapping and cohorts come from the same snapshot.
    let mut tx = db.reader.begin().await?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM feature_flags WHERE project_id = ? AND deleted = 0 ORDER BY id"
    ))
    .bind(project.0)
    .fetch_all(&mut *tx)
    .await?;
    let flags = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    let group_types = projects::group_types(&mut tx, project).await?;
    let cohorts = cohorts::dynamic(&mut tx, project).await?;
    tx.rollback().await?;
    Ok(crate::definitions::build(flags, group_types, cohorts))
}
