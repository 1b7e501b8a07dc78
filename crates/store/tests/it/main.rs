//! Integration tests of `vexil-store`: one backend-independent suite (`suite/`), run against
//! every backend: `sqlite.rs` on temporary files, `postgres.rs` on temporary databases of the
//! server `VEXIL_TEST_POSTGRES_URL` names.

#[macro_use]
mod suite;
mod postgres;
mod sqlite;

/// The newest migration a backend ships (`sqlite` or `postgres`): what a migrated
/// database must have applied, without a count to bump with every new migration.
pub fn migration_files(backend: &str) -> i64 {
    let dir = format!("{}/src/{backend}/migrations", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .filter_map(|e| {
            // The number a file starts with (`0007_early_access.sql` → 7): numbers are handed
            // out per change, so the newest is the highest, not the count.
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.split('_').next()?.parse::<i64>().ok()
        })
        .max()
        .unwrap_or(0)
}

/// How many migration files a backend ships: each applied once.
pub fn migration_count(backend: &str) -> i64 {
    let dir = format!("{}/src/{backend}/migrations", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count() as i64
}

/// The newest migration a backend ships: the highest `NNNN` of its `NNNN_name.sql` files
/// (numbers are reserved per branch, so they may have gaps).
pub fn newest_migration(backend: &str) -> i64 {
    let dir = format!("{}/src/{backend}/migrations", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().ok()?;
            name.strip_suffix(".sql")?.split('_').next()?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}
