//! Error bodies PostHog's flag services return (spec §1.7, §2.2), so that SDKs that read
//! `detail` (posthog-python) or only the status (node, js) react the same way to Vexil.

use std::fmt::Display;

use serde::Serialize;

/// A JSON error body: `{"type", "code", "detail", "attr": null}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// `type`, e.g. `authentication_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `code`, e.g. `not_authenticated`.
    pub code: &'static str,
    /// Human text.
    pub detail: &'static str,
    /// The offending attribute; always `null` in these bodies.
    pub attr: Option<&'static str>,
}

impl ErrorBody {
    /// 401 on `/flags`: no token, or an empty one.
    pub const NO_TOKEN: ErrorBody = ErrorBody::auth(
        "not_authenticated",
        "No API token provided. Please include a valid API token in your request.",
    );
    /// 401 on `/flags` and definitions: the token names no project.
    pub const INVALID_TOKEN: ErrorBody = ErrorBody::auth(
        "authentication_failed",
        "The provided API key is invalid or has expired. Please check your API key and try again.",
    );
    /// 401 on definitions: no `Authorization` header.
    pub const NO_CREDENTIALS: ErrorBody = ErrorBody::auth(
        "not_authenticated",
        "Authentication credentials were not provided.",
    );
    /// 401 on definitions: a `phs_` secret token that does not belong to the project.
    pub const INVALID_SECRET_TOKEN: ErrorBody =
        ErrorBody::auth("authentication_failed", "Secret API token is invalid.");
    /// 401 on definitions: an unknown, inactive or unauthorised personal API key.
    pub const INVALID_PERSONAL_API_KEY: ErrorBody =
        ErrorBody::auth("authentication_failed", "Personal API key is invalid.");
    /// 403 on definitions: a personal API key without `feature_flag:read`/`write` scope
    /// (detail text is Django REST framework's default; PostHog's exact wording is unverified).
    pub const PERMISSION_DENIED: ErrorBody = ErrorBody {
        kind: "authentication_error",
        code: "permission_denied",
        detail: "You do not have permission to perform this action.",
        attr: None,
    };
    /// 429: IP or token rate limit.
    pub const RATE_LIMITED: ErrorBody = ErrorBody {
        kind: "validation_error",
        code: "rate_limit_exceeded",
        detail: "Rate limit exceeded",
        attr: None,
    };
    /// 402 on definitions: the project is over its feature-flag quota.
    pub const QUOTA_LIMITED: ErrorBody = ErrorBody {
        kind: "quota_limited",
        code: "payment_required",
        detail: "You have exceeded your feature flag request quota",
        attr: None,
    };

    const fn auth(code: &'static str, detail: &'static str) -> ErrorBody {
        ErrorBody {
            kind: "authentication_error",
            code,
            detail,
            attr: None,
        }
    }
}

/// Plain-text 400 body for a request without `distinct_id` (and without `disable_flags`).
pub const MISSING_DISTINCT_ID_TEXT: &str =
    "The distinct_id field is missing from the request. Please include a valid identifier.";

/// Plain-text 400 body for an undecodable request (`err` is usually a
/// [`DecodeError`](crate::decode::DecodeError) or [`RequestError`](crate::request::RequestError)).
pub fn decode_failure_text(err: &impl Display) -> String {
    format!("Failed to decode request: {err}. Please check your request format and try again.")
}
