//! Server integration tests: the real app on a random port with its own SQLite database.

mod behavior;
mod bodies;
mod capture;
mod connections;
mod cookieless;
mod cors;
mod degrade;
mod early_access;
mod evaluation;
mod faulty;
mod geoip;
mod health;
mod ingest;
mod keys;
mod limits;
mod management;
mod metrics;
mod ofrep;
mod overload;
mod propagation;
mod saved;
mod sdk_surface;
mod stream;
mod support;
mod ui;
mod user_keys;
