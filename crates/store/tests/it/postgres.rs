//! The suite on PostgreSQL, one fresh database per test on the server `VEXIL_TEST_POSTGRES_URL`
//! names (e.g. `postgres://postgres@127.0.0.1:5432/postgres`; `scripts/test.sh` sets it),
//! dropped afterwards; plus checks only PostgreSQL has (migration lock, change notifications).
//!
//! Without the variable every case is skipped with a notice — unless `CI=true`, where a
//! skipped backend is a failure.

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Connection, PgConnection, Row};
use vexil_store::{connect, NewFlag, ProjectId, StoreError};

use crate::suite::{everyone, RawRows, TestDb};

/// The server to create test databases on, or `None` (after a notice) to skip.
fn server_url() -> Option<String> {
    match std::env::var("VEXIL_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("CI=true but VEXIL_TEST_POSTGRES_URL is not set: the PostgreSQL backend would go untested")
        }
        _ => {
            eprintln!("skipped: set VEXIL_TEST_POSTGRES_URL to run the PostgreSQL store tests");
            None
        }
    }
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + "://".len());
    let authority_end = base[authority..]
        .find('/')
        .map_or(base.len(), |i| i + authority);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database that exists until this is dropped.
struct TempDatabase {
    server: String,
    name: String,
}

impl TempDatabase {
    /// Creates an empty database with a unique name.
    async fn create(server: &str) -> TempDatabase {
        let name = format!("vexil_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(server)
            .await
            .expect("connect to VEXIL_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        TempDatabase {
            server: server.to_owned(),
            name,
        }
    }

    fn url(&self) -> String {
        with_database(&self.server, &self.name)
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = PgConnection::connect(&server).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

struct PgRaw {
    url: String,
}

impl PgRaw {
    async fn pool(&self) -> PgPool {
        PgPool::connect(&self.url).await.unwrap()
    }
}

#[async_trait]
impl RawRows for PgRaw {
    async fn project_keys(&self, project: ProjectId) -> (String, String, String) {
        let pool = self.pool().await;
        let row = sqlx::query(
            "SELECT api_token, secret_key_hash, personal_key_hash FROM projects WHERE id = $1",
        )
        .bind(project.0)
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        (
            row.get("api_token"),
            row.get("secret_key_hash"),
            row.get("personal_key_hash"),
        )
    }

    async fn person_version(&self, project: ProjectId, distinct_id: &str) -> i64 {
        let pool = self.pool().await;
        let version = sqlx::query_scalar(
            "SELECT version FROM persons WHERE id = (SELECT person_id FROM person_distinct_ids
             WHERE project_id = $1 AND distinct_id = $2)",
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
        let pool = self.pool().await;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE project_id = $1")
            .bind(project.0)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }
}

/// A store on a fresh database, or `None` when no server is configured.
pub async fn setup() -> Option<TestDb> {
    let server = server_url()?;
    let db = TempDatabase::create(&server).await;
    let url = db.url();
    let store = connect(&url).await.unwrap();
    Some(TestDb {
        raw: Box::new(PgRaw { url: url.clone() }),
        url,
        store,
        _guard: Box::new(db),
    })
}

store_suite!(crate::postgres::setup);

#[test]
fn database_names_are_replaced_in_urls() {
    for (url, expected) in [
        ("postgres://u@h:5432/postgres", "postgres://u@h:5432/x"),
        (
            "postgres://u:p@h/db?sslmode=disable",
            "postgres://u:p@h/x?sslmode=disable",
        ),
        ("postgres://h", "postgres://h/x"),
        ("postgresql://h/db", "postgresql://h/x"),
    ] {
        assert_eq!(with_database(url, "x"), expected, "{url}");
    }
}

/// N nodes starting at once on an empty database: the advisory lock lets one migrate while
/// the others wait, then they all find the schema current. Each node is a thread with its own
/// runtime and pool, as separate processes would be.
#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    const NODES: usize = 8;
    let Some(server) = server_url() else { return };
    let db = TempDatabase::create(&server).await;
    let url = db.url();
    let start = std::sync::Arc::new(std::sync::Barrier::new(NODES));
    let nodes: Vec<_> = (0..NODES)
        .map(|i| {
            let (url, start) = (url.clone(), start.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    start.wait();
                    let store = connect(&url).await?;
                    store.create_project(&format!("node {i}")).await?;
                    store.close().await;
                    Ok::<_, StoreError>(())
                })
            })
        })
        .collect();
    for n in nodes {
        n.join().unwrap().expect("every node starts and writes");
    }
    let pool = PgPool::connect(&url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vexil_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    // Each migration once, however many nodes raced to apply it.
    assert_eq!(applied, crate::migration_count("postgres"));
    let projects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(projects, NODES as i64);
    pool.close().await;
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some(db) = setup().await else { return };
    db.store.close().await;
    let pool = PgPool::connect(&db.url).await.unwrap();
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
    let Some(db) = setup().await else { return };
    let p = db.store.create_project("A").await.unwrap().project.id;
    let flag = db
        .store
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
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

/// Every committed change is announced as `<project>:<revision>` on `vexil_changes`; a
/// rolled-back write announces nothing.
#[tokio::test]
async fn committed_changes_are_announced() {
    let Some(db) = setup().await else { return };
    let mut listener = PgListener::connect(&db.url).await.unwrap();
    listener
        .listen(vexil_store::postgres::CHANGES_CHANNEL)
        .await
        .unwrap();
    let p = db.store.create_project("A").await.unwrap().project.id;
    let mut next = async || {
        // A bound, not a timing check: a missing notification fails instead of hanging.
        let n = tokio::time::timeout(std::time::Duration::from_secs(30), listener.recv())
            .await
            .expect("a notification within 30 s")
            .unwrap();
        n.payload().to_owned()
    };
    assert_eq!(next().await, format!("{}:1", p.0));
    db.store
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    assert_eq!(next().await, format!("{}:2", p.0));
    assert!(matches!(
        db.store
            .create_flag(p, &NewFlag::new("beta", everyone()))
            .await,
        Err(StoreError::Duplicate { .. })
    ));
    db.store.ensure_group_type(p, "company").await.unwrap();
    assert_eq!(
        next().await,
        format!("{}:3", p.0),
        "the failed create neither bumped nor announced"
    );
}

/// `Store::changes`: subscribed first, then every committed change as `(project, revision)`
/// from any node; a lost connection is reported and followed by a new subscription, and
/// announcements resume on it.
#[tokio::test]
async fn the_change_feed_reports_changes_and_resubscribes() {
    use vexil_store::Change;
    let Some(db) = setup().await else { return };
    let mut changes = db.store.changes().expect("PostgreSQL has a change feed");
    let mut next = async || {
        // A bound, not a timing check: a missing event fails instead of hanging.
        tokio::time::timeout(std::time::Duration::from_secs(30), changes.recv())
            .await
            .expect("a change within 30 s")
            .expect("the feed runs")
    };
    assert_eq!(next().await, Change::Resubscribed);
    let other = connect(&db.url).await.unwrap();
    let p = other.create_project("A").await.unwrap().project.id;
    let committed = |revision| Change::Committed {
        project: p,
        revision,
    };
    assert_eq!(next().await, committed(1));
    db.store
        .create_flag(p, &NewFlag::new("beta", everyone()))
        .await
        .unwrap();
    assert_eq!(next().await, committed(2));

    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(cut, [true]);
    assert_eq!(next().await, Change::Lost);
    assert_eq!(next().await, Change::Resubscribed);
    other.ensure_group_type(p, "company").await.unwrap();
    assert_eq!(next().await, committed(3));
    admin.close().await.unwrap();
    other.close().await;
}

#[tokio::test]
async fn an_unreachable_server_fails_instead_of_waiting() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let url = "postgres://postgres@127.0.0.1:1/vexil";
    let refused = connect(url).await.err();
    assert!(
        matches!(refused, Some(StoreError::Unavailable)),
        "{refused:?}"
    );
    assert!(refused.is_some_and(|e| e.is_unreachable()));

    // Deferred: nothing is tried until a call; once one finds the database gone, the breaker
    // opens and the following calls fail without waiting for the pool.
    let store = vexil_store::connect_deferred(url).await.unwrap();
    assert!(!store.unreachable());
    assert!(matches!(
        store.list_projects().await,
        Err(StoreError::Unavailable)
    ));
    assert!(store.unreachable());
    let started = std::time::Instant::now();
    for _ in 0..100 {
        assert!(matches!(
            store.revisions().await,
            Err(StoreError::Unavailable)
        ));
    }
    assert!(
        started.elapsed() < std::time::Duration::from_millis(500),
        "100 calls took {:?}",
        started.elapsed()
    );
    assert!(matches!(
        store.migrate().await,
        Err(StoreError::Unavailable)
    ));
}
