//! Users' personal API keys.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{is_fk_violation, micros, time, users, Db};
use crate::user::UserId;
use crate::user_key::{issue, validate_key_label, LAST_USED_GRANULARITY};
use crate::{hash_key, IssuedUserKey, Result, StoreError, User, UserKey};

const COLUMNS: &str = "k.id, k.user_id, k.label, k.mask, k.created_at, k.last_used_at";

fn from_row(row: &SqliteRow) -> Result<UserKey> {
    let last_used: Option<i64> = row.try_get("last_used_at")?;
    Ok(UserKey {
        id: row.try_get("id")?,
        user: UserId(row.try_get("user_id")?),
        label: row.try_get("label")?,
        mask: row.try_get("mask")?,
        created_at: time(row.try_get("created_at")?)?,
        last_used_at: last_used.map(time).transpose()?,
    })
}

pub(super) async fn create(db: &Db, user: UserId, label: &str) -> Result<IssuedUserKey> {
    let label = validate_key_label(label)?;
    let (value, mask) = issue();
    let mut tx = db.write().await?;
    let inserted = sqlx::query(
        "INSERT INTO user_api_keys (user_id, label, mask, key_hash, created_at)
         VALUES (?, ?, ?, ?, ?)
         RETURNING id, user_id, label, mask, created_at, last_used_at",
    )
    .bind(user.0)
    .bind(&label)
    .bind(&mask)
    .bind(hash_key(&value))
    .bind(micros(crate::now()))
    .fetch_one(&mut *tx)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(e) if is_fk_violation(&e) => return Err(StoreError::NotFound { entity: "user" }),
        Err(e) => return Err(e.into()),
    };
    let key = from_row(&row)?;
    tx.commit().await?;
    Ok(IssuedUserKey { key, value })
}

pub(super) async fn list(db: &Db, user: UserId) -> Result<Vec<UserKey>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM user_api_keys k WHERE k.user_id = ? ORDER BY k.id DESC"
    ))
    .bind(user.0)
    .fetch_all(&db.reader)
    .await?;
    rows.iter().map(from_row).collect()
}

pub(super) async fn revoke(db: &Db, user: UserId, id: i64) -> Result<bool> {
    let mut tx = db.write().await?;
    let done = sqlx::query("DELETE FROM user_api_keys WHERE id = ? AND user_id = ?")
        .bind(id)
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn owner(
    db: &Db,
    value: &str,
    now: DateTime<Utc>,
) -> Result<Option<(User, UserKey)>> {
    let mut conn = db.reader.acquire().await?;
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, u.email, u.is_admin, u.created_at AS user_created_at
         FROM user_api_keys k JOIN users u ON u.id = k.user_id
         WHERE k.key_hash = ?"
    ))
    .bind(hash_key(value))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut key = from_row(&row)?;
    let user = users::load_as(&mut conn, &row, "user_id", "user_created_at").await?;
    drop(conn);
    if key
        .last_used_at
        .is_none_or(|at| now - at >= LAST_USED_GRANULARITY)
    {
        let mut tx = db.write().await?;
        sqlx::query("UPDATE user_api_keys SET last_used_at = ? WHERE id = ?")
            .bind(micros(now))
            .bind(key.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        key.last_used_at = Some(now);
    }
    Ok(Some((user, key)))
}
