//! Integration tests of `vexil-store`: one backend-independent suite (`suite/`), run against
//! every backend (`sqlite.rs` today; a `postgres.rs` runs the same list with its own `TestDb`).

#[macro_use]
mod suite;
mod sqlite;
