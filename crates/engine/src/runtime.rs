//! Evaluation runtimes (spec §1.5 step 8): where a flag may be evaluated, which runtime a request
//! evaluates for (explicit, or detected from how the client describes itself), and the rule that
//! matches the two. Parsed once — a flag's at compile time, a request's when it is read.

use serde::{Deserialize, Serialize};

/// Where a flag may be evaluated (`evaluation_runtime`), and the runtime a `/flags` request
/// evaluates for (spec §1.5 step 8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvaluationRuntime {
    /// Only server-side SDKs and `/flags` calls from servers.
    Server,
    /// Only client-side SDKs (browsers, mobile).
    Client,
    /// Everywhere (the default).
    #[default]
    All,
}

impl EvaluationRuntime {
    /// The stored and wire form: `server`, `client` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            EvaluationRuntime::Server => "server",
            EvaluationRuntime::Client => "client",
            EvaluationRuntime::All => "all",
        }
    }

    /// Parses the stored form exactly (`server`, `client`, `all`); anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "server" => Some(EvaluationRuntime::Server),
            "client" => Some(EvaluationRuntime::Client),
            "all" => Some(EvaluationRuntime::All),
            _ => None,
        }
    }

    /// PostHog's lenient reading of a sent or served value: `all` / `client` / `server` in any
    /// case, surrounding spaces ignored; anything else reads as [`EvaluationRuntime::All`].
    pub fn lenient(s: &str) -> Self {
        let v = s.trim();
        if v.eq_ignore_ascii_case("client") {
            EvaluationRuntime::Client
        } else if v.eq_ignore_ascii_case("server") {
            EvaluationRuntime::Server
        } else {
            EvaluationRuntime::All
        }
    }

    /// Detects the runtime a client evaluates for from how it describes itself; `None` when it
    /// cannot be told.
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

    /// Whether a flag declared for `self` may be seen by a request evaluating for `request`
    /// (`None` = unknown: only flags for every runtime).
    pub fn allows(self, request: Option<EvaluationRuntime>) -> bool {
        match (request, self) {
            (_, EvaluationRuntime::All) | (Some(EvaluationRuntime::All), _) => true,
            (Some(wanted), declared) => wanted == declared,
            (None, _) => false,
        }
    }
}

/// How a client describes itself, for [`EvaluationRuntime::detect`] (read from HTTP headers
/// by the caller).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeHints<'a> {
    /// The `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// Whether any of `Origin`, `Referer`, `Sec-Fetch-Mode`, `Sec-Fetch-Site` is present.
    pub has_browser_headers: bool,
}
