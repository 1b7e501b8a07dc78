//! OFREP requests as typed input: the project from the token in `Authorization: Bearer` or
//! `X-API-Key` (checked, and its evaluation bucket drawn from, before the body is read), and
//! the body through the one decoder into the [`FlagsRequest`] `/flags` evaluates.

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use vexil_wire::decode::BodyEncoding;
use vexil_wire::ofrep::{self, ContextError, ErrorCode};
use vexil_wire::FlagsRequest;

use super::auth::bearer;
use super::body::{read, reserve_decoding, RawBody};
use crate::budget::Endpoint;
use crate::error::ApiError;
use crate::overload::Bucket;
use crate::snapshot::ProjectSnapshot;
use crate::state::AppState;

/// An OFREP evaluation request: its project, and its context or why it could not be read.
///
/// Missing or unknown tokens (401), the rate limit (429), an unreadable or oversized body are
/// rejections in the service's error shape; a body that is not an OFREP request is left to the
/// handler, which answers it in OFREP's shape naming the flag.
#[derive(Debug)]
pub struct OfrepCall {
    /// The project the token names.
    pub snapshot: Arc<ProjectSnapshot>,
    /// The context, as the request `/flags` evaluates.
    pub request: Result<FlagsRequest, OfrepBodyError>,
}

/// Why an OFREP body is not a usable request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfrepBodyError {
    /// Not JSON (or not decodable).
    #[error("the body is not valid JSON: {0}")]
    Decode(String),
    /// JSON, but not an evaluation request.
    #[error(transparent)]
    Context(#[from] ContextError),
}

impl OfrepBodyError {
    /// The OFREP error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            OfrepBodyError::Decode(_) => ErrorCode::ParseError,
            OfrepBodyError::Context(e) => e.code(),
        }
    }
}

/// The project token of an OFREP request: `Authorization: Bearer <token>`, else `X-API-Key`.
fn token(headers: &HeaderMap) -> Option<&str> {
    bearer(headers).or_else(|| {
        headers
            .get("x-api-key")?
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    })
}

/// The project token of an OFREP stream: the `token` query parameter (browsers' `EventSource`
/// cannot send headers; the token is public), else as for evaluation.
pub fn stream_token(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, v)| k == "token" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
        .or_else(|| token(headers).map(str::to_owned))
}

impl FromRequest<AppState> for OfrepCall {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let token = token(req.headers()).ok_or_else(|| {
            ApiError::not_authenticated(
                "No project token provided. Send it as `Authorization: Bearer <token>` or `X-API-Key: <token>`.",
            )
        })?;
        let snapshot = state.catalog.by_token(token).ok_or_else(|| {
            ApiError::authentication_failed(
                "The provided project token is invalid. Please check it and try again.",
            )
        })?;
        state
            .overload
            .check(Bucket::Evaluation, snapshot.project.id)
            .await?;
        // Read and decoded like a `/flags` body: its limit, charged to the decode budget.
        let RawBody {
            headers,
            bytes,
            mut reservation,
        } = read(req, state, Endpoint::Flags).await?;
        let header_str = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let encoding = BodyEncoding {
            content_type: header_str(header::CONTENT_TYPE),
            content_encoding: header_str(header::CONTENT_ENCODING),
            compression: None,
        };
        let decoder = state.bodies.decoder(Endpoint::Flags);
        reserve_decoding(&mut reservation, decoder, encoding, &bytes).await?;
        let request = match decoder.decode(encoding, &bytes) {
            Ok(json) => ofrep::parse_request(json).map_err(OfrepBodyError::from),
            Err(e) if e.is_too_large() => {
                return Err(ApiError::too_large(format!(
                    "The request body is too large: {e}."
                )))
            }
            Err(e) => Err(OfrepBodyError::Decode(e.to_string())),
        };
        Ok(OfrepCall { snapshot, request })
    }
}
