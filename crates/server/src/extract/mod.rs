//! The only place HTTP becomes typed input: request bodies, credentials, path ids and query
//! parameters, each as an extractor (or the one function behind it).

pub mod auth;
pub mod body;
pub mod flags;
pub mod ofrep;
mod params;
mod payload;

pub use params::{ItemId, Params, RawId};
pub use payload::{Fields, Payload};
