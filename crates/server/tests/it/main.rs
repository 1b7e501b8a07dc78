//! Server integration tests: the real app on a random port with its own SQLite database.

mod capture;
mod cors;
mod evaluation;
mod keys;
mod limits;
mod management;
mod support;
