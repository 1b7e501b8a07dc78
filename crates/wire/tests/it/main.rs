//! vexil-wire integration tests: conformance projections, decoding, request and query parsing,
//! definitions, capture, SDK wire examples, and never-panic properties.

mod capture;
mod decode;
mod definitions;
mod projection;
mod properties;
mod query;
mod request;
mod support;
mod wire_examples;
mod writer;
