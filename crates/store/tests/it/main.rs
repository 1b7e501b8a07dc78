//! Integration tests of `vexil-store`: one backend-independent suite (`suite/`), run against
//! every backend: `sqlite.rs` on temporary files, `postgres.rs` on temporary databases of the
//! server `VEXIL_TEST_POSTGRES_URL` names.

#[macro_use]
mod suite;
mod postgres;
mod sqlite;
