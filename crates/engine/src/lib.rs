//! Vexil's evaluation engine: PostHog-identical feature-flag semantics as a pure function.
//!
//! No IO, no async, no clock: [`CompiledProject::compile`] turns a project's [`Definitions`]
//! (PostHog's local-evaluation payload) into a fast form once; [`evaluate`] then answers
//! "what does every flag return for this user, and why?" from a [`Context`] that carries the
//! request, stored data the caller looked up, and `now`.
//!
//! ```
//! use vexil_engine::{evaluate, CompiledProject, Context, Definitions, FlagValue};
//!
//! let defs: Definitions = serde_json::from_value(serde_json::json!({
//!     "flags": [{
//!         "id": 1, "key": "beta", "active": true,
//!         "filters": {"groups": [{
//!             "properties": [{"key": "email", "operator": "icontains", "value": "@acme.com"}],
//!             "rollout_percentage": 100
//!         }]}
//!     }]
//! })).unwrap();
//! let project = CompiledProject::compile(&defs);
//!
//! let props = serde_json::json!({"email": "ada@acme.com"});
//! let mut ctx = Context::new("user-1", chrono::DateTime::UNIX_EPOCH);
//! ctx.person_properties = props.as_object();
//! let result = evaluate(&project, &ctx);
//! assert_eq!(result.get("beta").unwrap().value, FlagValue::True);
//! assert_eq!(result.get("beta").unwrap().reason.description().to_string(), "Matched condition set 1");
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod behavior;
mod cohort;
mod compile;
mod context;
mod date;
mod eval;
mod graph;
pub mod hash;
mod incremental;
mod keys;
pub mod limits;
pub mod model;
mod outcome;
pub mod property;
pub mod reason;
pub mod rules;
mod runtime;
mod version;

pub use compile::{CompiledFlag, CompiledProject, DefinitionError, GroupCoverage, Requirements};
pub use context::{id_text, BehavioralData, Context, GroupKey, Properties};
pub use eval::evaluate;
pub use model::{Definitions, FlagDefinition};
pub use outcome::{Evaluation, FlagResult, FlagValue};
pub use reason::{ErrorCode, Reason, ReasonCode, ReasonDetail};
pub use runtime::{EvaluationRuntime, RuntimeHints};
