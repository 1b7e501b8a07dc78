//! `/flags` and `/decide` as typed input (spec §1.2–§1.4): the endpoint and response shape the
//! query asks for, the request id, the runtime the headers suggest, and — for a POST — the
//! decoded body as a [`FlagsRequest`] with its project resolved from the token.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use vexil_wire::decode::JsonText;
use vexil_wire::request::{
    EffectiveQuery, EvaluationRuntime, FlagsQuery, FlagsRequest, ResponseShape, RuntimeHints,
};

use super::body::read_json_skimmed;
use crate::address::client_address;
use crate::budget::Endpoint;
use crate::error::ApiError;
use crate::overload::Bucket;
use crate::snapshot::ProjectSnapshot;
use crate::state::AppState;

/// What every `/flags` or `/decide` request says about its answer, whatever its method.
#[derive(Debug, Clone)]
pub struct FlagsEndpoint {
    /// The query string.
    pub query: FlagsQuery,
    /// `v` and `config` after PostHog's defaulting rule.
    pub effective: EffectiveQuery,
    /// The response shape.
    pub shape: ResponseShape,
    /// A valid UUID from `X-Request-Id`, else a new v4.
    pub request_id: String,
    /// Whether the request carries a header only browsers send (`Origin`, `Referer`,
    /// `Sec-Fetch-*`): with the `User-Agent`, what the runtime is detected from.
    pub browser_headers: bool,
}

impl FlagsEndpoint {
    fn new(uri: &Uri, headers: &HeaderMap) -> Self {
        // The `/decide` path, or PostHog Cloud's ingress header on it.
        let from_decide = uri.path().starts_with("/decide")
            || headers
                .get("x-original-endpoint")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"decide"));
        let query = FlagsQuery::parse(uri.query().unwrap_or(""));
        let effective = query.effective(from_decide);
        FlagsEndpoint {
            shape: ResponseShape::for_version(from_decide, effective.version),
            effective,
            query,
            request_id: request_id(headers),
            browser_headers: ["origin", "referer", "sec-fetch-mode", "sec-fetch-site"]
                .iter()
                .any(|h| headers.contains_key(*h)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FlagsEndpoint {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(FlagsEndpoint::new(&parts.uri, &parts.headers))
    }
}

/// A `/flags` or `/decide` POST: the endpoint, the decoded request and its project.
///
/// Rejections, in order: an unreadable body (413/400/408), no room in the decode budget (503),
/// an undecodable body (400), a body that is not an object or a token that is not a string
/// (400), no token (401), an unknown token (401), the project's rate limit (429), another known
/// field of the wrong type (400). Everything up to the token is checked on the decoded text,
/// without parsing it (PostHog parses first, so a body with both an unknown token and a
/// wrong-typed field is a 400 there and a 401 here).
#[derive(Debug)]
pub struct FlagsCall {
    /// What the request says about its answer.
    pub endpoint: FlagsEndpoint,
    /// The body, aliases resolved and the group-key rule applied.
    pub request: FlagsRequest,
    /// The project the token names.
    pub snapshot: Arc<ProjectSnapshot>,
    /// Who sent it, for GeoIP and cookieless hashing.
    pub client: Client,
}

impl FlagsCall {
    /// The runtime the request's `User-Agent` and browser headers suggest; `None` when they
    /// cannot tell. Scans the `User-Agent`, so callers ask only when it matters.
    pub fn detected_runtime(&self) -> Option<EvaluationRuntime> {
        EvaluationRuntime::detect(&RuntimeHints {
            user_agent: self
                .client
                .user_agent
                .as_ref()
                .and_then(|v| v.to_str().ok()),
            has_browser_headers: self.endpoint.browser_headers,
        })
    }
}

/// What a `/flags` request says about its sender beyond the body.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The client's address (the peer, or `X-Forwarded-For` from a trusted proxy); `None`
    /// without a socket (in-process calls).
    pub address: Option<IpAddr>,
    /// The `Origin` header.
    pub origin: Option<HeaderValue>,
    /// The `User-Agent` header.
    pub user_agent: Option<HeaderValue>,
}

impl FromRequest<AppState> for FlagsCall {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let endpoint = FlagsEndpoint::new(req.uri(), req.headers());
        let client = Client {
            address: client_address(
                req.headers(),
                req.extensions(),
                &state.settings.trusted_proxies,
            ),
            origin: req.headers().get(header::ORIGIN).cloned(),
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
        };
        let accept = |text: &JsonText<'_>, skimmed: Option<Result<Option<String>, _>>| {
            let token = skimmed
                .unwrap_or_else(|| FlagsRequest::token_of(text).map(|t| t.map(Cow::into_owned)))
                .map_err(|e| ApiError::invalid(format!("Invalid request: {e}.")))?
                .ok_or_else(|| {
                    ApiError::not_authenticated(
                        "No API token provided. Please include a valid API token in your request.",
                    )
                })?;
            let snapshot = state.catalog.by_token(&token).ok_or_else(|| {
                ApiError::authentication_failed(
                    "The provided API key is invalid or has expired. Please check your API key and try again.",
                )
            })?;
            Ok(snapshot)
        };
        let (_, snapshot, body) = read_json_skimmed(
            req,
            state,
            Endpoint::Flags,
            &endpoint.query,
            FlagsRequest::skim_token,
            accept,
        )
        .await?;
        // After the body is parsed (the token check above is synchronous): one shared bucket
        // round trip with Redis.
        state
            .overload
            .check(Bucket::Evaluation, snapshot.project.id)
            .await?;
        let request = FlagsRequest::from_body(body)
            .map_err(|e| ApiError::invalid(format!("Invalid request: {e}.")))?;
        Ok(FlagsCall {
            endpoint,
            request,
            snapshot,
            client,
        })
    }
}

/// The request id: a valid UUID from `X-Request-Id`, else a new v4.
fn request_id(headers: &HeaderMap) -> String {
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
        .unwrap_or_else(crate::random::fast_v4);
    id.hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .to_owned()
}
