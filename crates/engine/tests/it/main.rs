//! Engine integration tests: shared conformance vectors, semantic scenarios and properties.

mod conformance;
mod incremental;
mod keys;
mod limits;
mod properties;
mod rules;
mod scenarios;
mod support;
mod unavailable;
