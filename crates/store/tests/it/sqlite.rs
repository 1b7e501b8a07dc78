//! The suite on a temporary SQLite file, plus checks only SQLite has (URL forms, pragmas).

use async_trait::async_trait;
use sqlx::sqlite::SqlitePool;
use sqlx::Row;
use vexil_store::{connect, open_data_dir, ProjectId, StoreError};

use crate::suite::{RawRows, TestDb};

struct SqliteRaw {
    url: String,
}

#[async_trait]
impl RawRows for SqliteRaw {
    async fn project_keys(&self, project: ProjectId) -> (String, String, String) {
        let pool = SqlitePool::connect(&self.url).await.unwrap();
        let row = sqlx::query(
            "SELECT api_token, secret_key_hash, personal_key_hash FROM projects WHERE id = ?",
        )
        .bind(project.0)
        .fetch_one(&pool)
        .await
        .unwrap();
        let keys = (
            row.get("api_token"),
            row.get("secret_key_hash"),
            row.get("personal_key_hash"),
        );
        pool.close().await;
        keys
    }

    async fn person_version(&self, project: ProjectId, distinct_id: &str) -> i64 {
        let pool = SqlitePool::connect(&self.url).await.unwrap();
        let version = sqlx::query_scalar(
            "SELECT version FROM persons WHERE id = (SELECT person_id FROM person_distinct_ids
             WHERE project_id = ? AND distinct_id = ?)",
        )
        .bind(project.0)
        .bind(distinct_id)
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        version
    }

    async fn count_events(&self, project: ProjectId) -> i64 {
        let pool = SqlitePool::connect(&self.url).await.unwrap();
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE project_id = ?")
            .bind(project.0)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }
}

/// A store on a fresh file in a temporary directory.
pub async fn setup() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("vexil.db").display());
    let store = connect(&url).await.unwrap();
    TestDb {
        raw: Box::new(SqliteRaw { url: url.clone() }),
        url,
        store,
        _guard: Box::new(dir),
    }
}

/// [`setup`] for the shared suite, which SQLite never skips.
async fn suite_setup() -> Option<TestDb> {
    Some(setup().await)
}

store_suite!(crate::sqlite::suite_setup);

#[tokio::test]
async fn file_is_in_wal_mode() {
    let db = setup().await;
    let pool = SqlitePool::connect(&db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM vexil_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        version,
        crate::newest_migration("sqlite"),
        "the newest migration applied"
    );
}

/// SQLite pushes no changes: readers compare `revisions()` (one writer process at a time).
#[tokio::test]
async fn sqlite_has_no_change_feed() {
    let db = setup().await;
    assert!(db.store.changes().is_none());
}

#[tokio::test]
async fn in_memory_url_works_and_is_private() {
    let a = connect("sqlite::memory:").await.unwrap();
    let b = connect("sqlite::memory:").await.unwrap();
    a.create_project("A").await.unwrap();
    assert_eq!(a.list_projects().await.unwrap().len(), 1);
    assert!(b.list_projects().await.unwrap().is_empty());
}

#[tokio::test]
async fn data_dir_helper_creates_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let store = open_data_dir(&data).await.unwrap();
    let created = store.create_project("A").await.unwrap();
    store.close().await;
    assert!(data.join("vexil.db").is_file());
    let store = open_data_dir(&data).await.unwrap();
    assert_eq!(
        store
            .project_by_token(&created.project.api_token)
            .await
            .unwrap(),
        Some(created.project)
    );
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in ["mysql://x", "", "vexil.db", "postgresx://localhost/vexil"] {
        assert!(matches!(
            connect(url).await,
            Err(StoreError::UnsupportedUrl(_))
        ));
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let db = setup().await;
    db.store.close().await;
    let pool = SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query("INSERT INTO vexil_migrations (version, name, checksum) VALUES (99, 'future', '')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(matches!(
        connect(&db.url).await,
        Err(StoreError::Migration(_))
    ));
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let db = setup().await;
    let p = db.store.create_project("A").await.unwrap().project.id;
    let flag = db
        .store
        .create_flag(
            p,
            &vexil_store::NewFlag::new("beta", crate::suite::everyone()),
        )
        .await
        .unwrap();
    let pool = SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE feature_flags SET filters = '{not json', evaluation_runtime = 'moon'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(matches!(
        db.store.get_flag(p, flag.id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        db.store.definitions(p).await,
        Err(StoreError::Corrupt(_))
    ));
}

/// Two stores on one file stand in for two processes: their writes serialise on SQLite's lock
/// (`BEGIN IMMEDIATE` + busy timeout) and the version check still lets exactly one win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_agree_on_versions() {
    use vexil_store::{FlagUpdate, NewFlag};

    let db = setup().await;
    let other = connect(&db.url).await.unwrap();
    let p = db.store.create_project("A").await.unwrap().project.id;
    let flag = db
        .store
        .create_flag(p, &NewFlag::new("beta", crate::suite::everyone()))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = if i % 2 == 0 {
                db.store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                s.update_flag(p, flag.id, &FlagUpdate::default(), Some(1), None)
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(f) => {
                assert_eq!(f.version, 2);
                wins += 1;
            }
            Err(StoreError::Conflict { current_version }) => assert_eq!(current_version, 2),
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    // Each store sees the other's committed write.
    let seen = other.get_flag(p, flag.id).await.unwrap().unwrap();
    assert_eq!(seen.version, 2);
}

#[tokio::test]
async fn activity_keyset_pages_read_an_index_in_order() {
    let db = setup().await;
    let pool = SqlitePool::connect(&db.url).await.unwrap();
    // The shapes of the project-wide keyset pages (`flags::activity_page`): an index range in
    // id order, never every entry of the project sorted in a temporary b-tree.
    for (bound, direction) in [
        ("", "DESC"),
        (" AND id < 10", "DESC"),
        (" AND id > 10", "ASC"),
    ] {
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT id, before, after FROM flag_activity
             WHERE project_id = 1{bound} ORDER BY id {direction} LIMIT 21"
        );
        let plan: Vec<String> = sqlx::query(&sql)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        assert!(
            plan.iter().all(|step| !step.contains("TEMP B-TREE")),
            "{bound} {direction}: {plan:?}"
        );
    }
    pool.close().await;
}
