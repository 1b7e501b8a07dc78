//! Which flags a request may see (spec §1.5 step 8): the survey-only switch, the evaluation
//! runtime (explicit or detected from headers) and evaluation-context tags.

use vexil_engine::CompiledFlag;
pub use vexil_engine::{EvaluationRuntime, RuntimeHints};

use super::{FlagsQuery, FlagsRequest};

/// The per-request flag filter of spec §1.5 step 8.
///
/// Flags it rejects are omitted from the response and count as `false` for dependencies; plug
/// it into the engine as `ctx.include = Some(&|f| filter.keeps(f))`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagFilter<'a> {
    /// `only_evaluate_survey_feature_flags`: keep only keys starting with `survey-targeting-`.
    pub survey_only: bool,
    /// The request's runtime: explicit, else detected; `None` = unknown.
    pub runtime: Option<EvaluationRuntime>,
    /// The request's `evaluation_contexts`; empty or `None` = no tag filtering.
    pub evaluation_contexts: Option<&'a [String]>,
}

impl<'a> FlagFilter<'a> {
    /// The filter for a request: its explicit `evaluation_runtime` or the detected one, its
    /// `evaluation_contexts`, and the query's survey-only switch.
    pub fn for_request(
        request: &'a FlagsRequest,
        query: &FlagsQuery,
        hints: &RuntimeHints<'_>,
    ) -> Self {
        Self::with_detected(request, query, EvaluationRuntime::detect(hints))
    }

    /// Like [`FlagFilter::for_request`], with the runtime already detected from the headers.
    pub fn with_detected(
        request: &'a FlagsRequest,
        query: &FlagsQuery,
        detected: Option<EvaluationRuntime>,
    ) -> Self {
        FlagFilter {
            survey_only: query.only_evaluate_survey_feature_flags.unwrap_or(false),
            runtime: request.evaluation_runtime.or(detected),
            evaluation_contexts: request.evaluation_contexts.as_deref(),
        }
    }

    /// Whether the filter keeps every flag that may be evaluated in any runtime: it has no
    /// survey-only switch and no context tags. In a project without runtime-limited flags
    /// ([`CompiledProject::limits_runtime`]) such a filter keeps every flag.
    ///
    /// [`CompiledProject::limits_runtime`]: vexil_engine::CompiledProject::limits_runtime
    pub fn keeps_every_unlimited_flag(&self) -> bool {
        !self.survey_only && self.evaluation_contexts.is_none_or(<[String]>::is_empty)
    }

    /// Whether the request may see `flag`.
    pub fn keeps(&self, flag: &CompiledFlag) -> bool {
        if self.survey_only && !flag.key().starts_with("survey-targeting-") {
            return false;
        }
        if !flag.runtime().allows(self.runtime) {
            return false;
        }
        match self.evaluation_contexts {
            Some(wanted) if !wanted.is_empty() => {
                let mut tags = flag.evaluation_tags().peekable();
                tags.peek().is_none() || tags.any(|t| wanted.iter().any(|w| w == t))
            }
            _ => true,
        }
    }
}
