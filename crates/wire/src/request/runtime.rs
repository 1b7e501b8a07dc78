//! Which flags a request may see (spec §1.5 step 8): the survey-only switch, the evaluation
//! runtime (explicit or detected from headers) and evaluation-context tags.

use vexil_engine::CompiledFlag;

use super::{FlagsQuery, FlagsRequest};

/// The runtime a request evaluates for (`evaluation_runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvaluationRuntime {
    /// Every flag.
    All,
    /// Browser and mobile clients.
    Client,
    /// Server SDKs.
    Server,
}

impl EvaluationRuntime {
    /// Case-insensitive `all` / `client` / `server`; anything else reads as `All`.
    pub fn parse(value: &str) -> Self {
        let v = value.trim();
        if v.eq_ignore_ascii_case("client") {
            EvaluationRuntime::Client
        } else if v.eq_ignore_ascii_case("server") {
            EvaluationRuntime::Server
        } else {
            EvaluationRuntime::All
        }
    }

    /// Detects the runtime from request headers; `None` when it cannot be told.
    pub fn detect(hints: &RuntimeHints<'_>) -> Option<Self> {
        if let Some(ua) = hints.user_agent {
            const BROWSERS: [&str; 5] = ["Mozilla/", "Chrome/", "Safari/", "Firefox/", "Edge/"];
            const SERVER_SDKS: [&str; 8] = [
                "posthog-python/",
                "posthog-ruby/",
                "posthog-php/",
                "posthog-java/",
                "posthog-go/",
                "posthog-node/",
                "posthog-dotnet/",
                "posthog-elixir/",
            ];
            const MOBILE_SDKS: [&str; 4] = [
                "posthog-android/",
                "posthog-ios/",
                "posthog-react-native/",
                "posthog-flutter/",
            ];
            if BROWSERS.iter().any(|b| ua.contains(b)) {
                return Some(EvaluationRuntime::Client);
            }
            if SERVER_SDKS.iter().any(|s| ua.starts_with(s))
                || ua.contains("python-requests/")
                || ua.contains("curl/")
            {
                return Some(EvaluationRuntime::Server);
            }
            if MOBILE_SDKS.iter().any(|s| ua.starts_with(s)) {
                return Some(EvaluationRuntime::Client);
            }
        }
        hints
            .has_browser_headers
            .then_some(EvaluationRuntime::Client)
    }
}

/// What runtime detection reads from a request's headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeHints<'a> {
    /// The `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// Whether any of `Origin`, `Referer`, `Sec-Fetch-Mode`, `Sec-Fetch-Site` is present.
    pub has_browser_headers: bool,
}

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
        FlagFilter {
            survey_only: query.only_evaluate_survey_feature_flags.unwrap_or(false),
            runtime: request
                .evaluation_runtime
                .or_else(|| EvaluationRuntime::detect(hints)),
            evaluation_contexts: request.evaluation_contexts.as_deref(),
        }
    }

    /// Whether the request may see `flag`.
    pub fn keeps(&self, flag: &CompiledFlag) -> bool {
        if self.survey_only && !flag.key().starts_with("survey-targeting-") {
            return false;
        }
        let flag_runtime = flag.evaluation_runtime().map(EvaluationRuntime::parse);
        let runtime_ok = match (self.runtime, flag_runtime) {
            (_, None | Some(EvaluationRuntime::All)) | (Some(EvaluationRuntime::All), _) => true,
            (Some(wanted), Some(declared)) => wanted == declared,
            (None, Some(_)) => false,
        };
        if !runtime_ok {
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
