//! Users, memberships and sessions.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::{is_fk_violation, is_unique_violation, micros, time, Db};
use crate::user::{
    session_secret, Access, IssuedSession, NewUser, PasswordHash, Session, User, UserId,
};
use crate::{hash_key, normalise_email, ProjectId, Result, StoreError};

/// The user of `row` (`id, email, is_admin, created_at`), with their memberships.
async fn load(conn: &mut SqliteConnection, row: &SqliteRow) -> Result<User> {
    load_as(conn, row, "id", "created_at").await
}

/// [`load`] with the user's id and creation time in the columns `id` and `created_at`.
pub(super) async fn load_as(
    conn: &mut SqliteConnection,
    row: &SqliteRow,
    id: &str,
    created_at: &str,
) -> Result<User> {
    let id = UserId(row.try_get(id)?);
    let is_admin: bool = row.try_get("is_admin")?;
    let access = if is_admin {
        Access::Admin
    } else {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT project_id FROM memberships WHERE user_id = ? ORDER BY project_id",
        )
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await?;
        Access::Projects(ids.into_iter().map(ProjectId).collect())
    };
    Ok(User {
        id,
        email: row.try_get("email")?,
        access,
        created_at: time(row.try_get(created_at)?)?,
    })
}

pub(super) async fn create(db: &Db, user: &NewUser) -> Result<User> {
    let email = normalise_email(&user.email)?;
    let mut tx = db.write().await?;
    let inserted = sqlx::query(
        "INSERT INTO users (email, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?)
         RETURNING id, email, is_admin, created_at",
    )
    .bind(&email)
    .bind(user.password_hash.as_str())
    .bind(user.projects.is_empty())
    .bind(micros(crate::now()))
    .fetch_one(&mut *tx)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(e) if is_unique_violation(&e) => return Err(StoreError::Duplicate { field: "email" }),
        Err(e) => return Err(e.into()),
    };
    let id: i64 = row.try_get("id")?;
    for project in &user.projects {
        let added = sqlx::query(
            "INSERT INTO memberships (user_id, project_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(project.0)
        .execute(&mut *tx)
        .await;
        match added {
            Ok(_) => {}
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::NotFound { entity: "project" })
            }
            Err(e) => return Err(e.into()),
        }
    }
    let created = load(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(created)
}

pub(super) async fn count(db: &Db) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&db.reader)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) async fn for_sign_in(db: &Db, email: &str) -> Result<Option<(User, PasswordHash)>> {
    let Ok(email) = normalise_email(email) else {
        return Ok(None);
    };
    let mut conn = db.reader.acquire().await?;
    let row = sqlx::query(
        "SELECT id, email, is_admin, created_at, password_hash FROM users WHERE email = ?",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let user = load(&mut conn, &row).await?;
    Ok(Some((
        user,
        PasswordHash::from_stored(row.try_get("password_hash")?),
    )))
}

pub(super) async fn create_session(
    db: &Db,
    user: UserId,
    expires_at: DateTime<Utc>,
) -> Result<IssuedSession> {
    let session = IssuedSession {
        id: session_secret(),
        csrf_token: session_secret(),
        expires_at,
    };
    let mut tx = db.write().await?;
    let inserted = sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(hash_key(&session.id))
    .bind(user.0)
    .bind(&session.csrf_token)
    .bind(micros(crate::now()))
    .bind(micros(expires_at))
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_fk_violation(&e) => return Err(StoreError::NotFound { entity: "user" }),
        Err(e) => return Err(e.into()),
    }
    // Expired sessions go when new ones come, so the table stays as small as the live set.
    sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
        .bind(micros(crate::now()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(session)
}

pub(super) async fn session(db: &Db, id: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
    let mut conn = db.reader.acquire().await?;
    let row = sqlx::query(
        "SELECT u.id, u.email, u.is_admin, u.created_at, s.csrf_token, s.expires_at
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ? AND s.expires_at > ?",
    )
    .bind(hash_key(id))
    .bind(micros(now))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Session {
        user: load(&mut conn, &row).await?,
        csrf_token: row.try_get("csrf_token")?,
        expires_at: time(row.try_get("expires_at")?)?,
    }))
}

pub(super) async fn delete_session(db: &Db, id: &str) -> Result<()> {
    let mut tx = db.write().await?;
    sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
        .bind(hash_key(id))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
