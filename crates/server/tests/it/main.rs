//! Server integration tests: the real app on a random port with its own SQLite database.

mod evaluation;
mod support;
