//! PostHog-compatible wire formats for Vexil: what goes over HTTP, without the HTTP.
//!
//! Pure functions and types, no IO and no async, shared by the server, the SDK and the CLI:
//!
//! * [`mod@decode`] — the one request-body decoder (JSON, text, gzip, base64, form `data=`), with a
//!   decompressed-size cap.
//! * [`request`] — the `/flags` body ([`FlagsRequest`]), its query string ([`FlagsQuery`]), the
//!   response shape they select ([`ResponseShape`]) and the per-request flag filter.
//! * [`response`] — an engine [`Evaluation`](vexil_engine::Evaluation) projected into flags v2,
//!   flags v1, decide v2 and decide v1 bodies ([`FlagsResponse`]), config fields, error bodies.
//! * [`definitions`] — the local-evaluation payload and its ETag.
//! * [`capture`] — `/batch/` and `/e/` event bodies.
//! * [`ofrep`] — OpenFeature Remote Evaluation Protocol requests and responses.
//!
//! ```
//! use vexil_engine::{evaluate, CompiledProject, Definitions};
//! use vexil_wire::{decode, BodyEncoding, Envelope, FlagsQuery, FlagsRequest, FlagsResponse, ResponseShape};
//!
//! let defs: Definitions = serde_json::from_str(
//!     r#"{"flags": [{"id": 1, "key": "beta", "active": true,
//!                    "filters": {"groups": [{"rollout_percentage": 100}]}}]}"#,
//! ).unwrap();
//! let project = CompiledProject::compile(&defs);
//!
//! let query = FlagsQuery::parse("v=2");
//! let body = br#"{"api_key": "phc_x", "distinct_id": 42}"#;
//! let json = decode(query.body_encoding(Some("application/json"), None), body).unwrap();
//! let request = FlagsRequest::from_json(json).unwrap();
//! assert_eq!(request.distinct_id.as_deref(), Some("42"));
//!
//! let evaluation = evaluate(&project, &request.context(chrono::DateTime::UNIX_EPOCH));
//! let shape = ResponseShape::select(false, &query);
//! let response = FlagsResponse::new(shape, &evaluation, Envelope::default());
//! let out = serde_json::to_value(&response).unwrap();
//! assert_eq!(out["flags"]["beta"]["enabled"], true);
//! assert_eq!(out["flags"]["beta"]["reason"]["description"], "Matched condition set 1");
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod capture;
pub mod decode;
pub mod definitions;
mod distinct_id;
mod field;
pub mod ofrep;
pub mod request;
pub mod response;
mod scan;

pub use capture::{CaptureBatch, CaptureError, Event};
pub use decode::{decode, BodyEncoding, Compression, DecodeError, Decoder, JsonText};
pub use definitions::{DefinitionsError, FeedOptions};
pub use distinct_id::{truncate as truncate_distinct_id, MAX_DISTINCT_ID_CHARS};
pub use field::FieldError;
pub use request::{
    EvaluationRuntime, FlagFilter, FlagsQuery, FlagsRequest, RequestError, ResponseShape,
    RuntimeHints,
};
pub use response::{ConfigFields, Envelope, ErrorBody, FlagRecord, FlagsResponse};
