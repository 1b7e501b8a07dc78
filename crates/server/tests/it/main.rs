//! Server integration tests: the real app on a random port with its own SQLite database.

mod capture;
mod connections;
mod cors;
mod evaluation;
mod health;
mod keys;
mod limits;
mod management;
mod support;
