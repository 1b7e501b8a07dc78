//! The one error type of the HTTP layer: every failure becomes a status and a JSON body
//! `{"type", "code", "detail", "attr"}` (PostHog's error shape), never a panic.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use vexil_store::StoreError;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// PostHog error class: `validation_error`, `authentication_error`, `invalid_request`, ...
    pub kind: &'static str,
    /// Machine word: `invalid_input`, `not_found`, `conflict`, ...
    pub code: &'static str,
    /// One human sentence saying what is wrong and what to do.
    pub detail: String,
    /// The field at fault, when there is one.
    pub attr: Option<String>,
    /// The `Allow` header of a 405: the methods the path answers.
    pub allow: Option<&'static str>,
    /// The `Retry-After` header (seconds) of a 429 or a shed 503.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    detail: &'a str,
    attr: Option<&'a str>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            detail: detail.into(),
            attr: None,
            allow: None,
            retry_after: None,
        }
    }

    /// Names the field at fault.
    pub fn attr(mut self, attr: impl Into<String>) -> Self {
        self.attr = Some(attr.into());
        self
    }

    /// 400 `validation_error` / `invalid_input`.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "invalid_input",
            detail,
        )
    }

    /// 400 with a specific code.
    pub fn validation(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", code, detail)
    }

    /// 400 for a body that is not valid JSON (or not decodable).
    pub fn parse(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "parse_error",
            detail,
        )
    }

    /// 413 for a body over the decoded-size cap.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "validation_error",
            "payload_too_large",
            detail,
        )
    }

    /// 408 for a request body that did not arrive within the body-read timeout.
    pub fn timeout(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "validation_error",
            "request_timeout",
            detail,
        )
    }

    /// 401 without credentials.
    pub fn not_authenticated(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "not_authenticated",
            detail,
        )
    }

    /// 401 with wrong credentials.
    pub fn authentication_failed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "authentication_failed",
            detail,
        )
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "authentication_error",
            "permission_denied",
            detail,
        )
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "not_found",
            format!("{what} not found."),
        )
    }

    /// 405, naming the methods the path answers (the `Allow` header). The only way a 405 is
    /// made: routers use [`refuse`] as their method fallback.
    pub fn method_not_allowed(allow: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "method_not_allowed",
                detail,
            )
        }
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_request", "conflict", detail)
    }

    /// 503: a dependency is unavailable; the write was not applied.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "unavailable",
            detail,
        )
    }

    /// 429 with PostHog's body, retry after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        ApiError {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "validation_error",
                "rate_limit_exceeded",
                "Rate limit exceeded",
            )
        }
    }

    /// 503 for a request shed because the server is at capacity; retry in a second.
    pub fn overloaded() -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "overloaded",
                "The server is at capacity; please retry shortly.",
            )
        }
    }

    /// 507: the disk is full; the write was rolled back and nothing changed.
    pub fn insufficient_storage() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "server_error",
            "insufficient_storage",
            "The server's disk is full: nothing was written. Please retry later.",
        )
    }

    /// 500; the detail must not leak internals.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "error",
            "Internal server error. The request was not applied; please retry.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            kind: self.kind,
            code: self.code,
            detail: &self.detail,
            attr: self.attr.as_deref(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A broken write rule: 400 naming the field.
impl From<vexil_engine::rules::Violation> for ApiError {
    fn from(v: vexil_engine::rules::Violation) -> Self {
        let error = ApiError::validation(v.code.as_str(), v.detail);
        // An empty attr: the write as a whole is refused (a project at a count limit).
        if v.attr.is_empty() {
            error
        } else {
            error.attr(v.attr)
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

/// So that a check run inside a store transaction can refuse a write with the answer to give
/// ([`StoreError::Rejected`]).
impl std::error::Error for ApiError {}

impl ApiError {
    /// This error as the refusal of a store write's check.
    pub fn rejection(self) -> StoreError {
        StoreError::Rejected(Box::new(self))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(e) => match e.downcast::<ApiError>() {
                Ok(answer) => *answer,
                Err(other) => {
                    tracing::error!(error = %other, "store write refused");
                    ApiError::internal()
                }
            },
            StoreError::NotFound { entity } => ApiError::not_found(entity),
            StoreError::Conflict { current_version } => ApiError::conflict(format!(
                "The object was changed since you read it (stored version is {current_version}). Please refresh and try again."
            )),
            StoreError::Duplicate { field } => ApiError::validation(
                "unique",
                format!("There is already an object with this {field}."),
            )
            .attr(field),
            StoreError::Invalid { field, message } => ApiError::invalid(message).attr(field),
            StoreError::LimitExceeded { limit, max, .. } => ApiError::validation(
                "limit_exceeded",
                format!("The write would break the limit {limit} ({max}); nothing was changed."),
            ),
            StoreError::Full(e) => {
                tracing::error!(error = %e, "disk full");
                ApiError::insufficient_storage()
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::unavailable(
                    "Storage is unavailable; nothing was changed. Please retry.",
                )
            }
        }
    }
}

/// A method fallback for a route answering `allow`: 405 in the JSON error shape with that
/// `Allow` header and `detail`.
pub fn refuse(
    allow: &'static str,
    detail: impl Into<String>,
) -> impl FnOnce() -> std::future::Ready<ApiError> + Clone + Send + Sync + 'static {
    let detail = detail.into();
    move || std::future::ready(ApiError::method_not_allowed(allow, detail))
}
