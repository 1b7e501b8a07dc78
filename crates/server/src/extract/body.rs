//! Request bodies: the wire crate's single decoder, fed with the request's headers and
//! `compression` parameter, and the one mapping of a body that could not be read.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;
use vexil_wire::decode::{BodyEncoding, Decoder};
use vexil_wire::request::FlagsQuery;

use crate::error::ApiError;
use crate::state::AppState;

/// A body decoded to JSON with the query string that says how (`compression`) and when it was
/// sent (`_`, posthog-js's `sent_at`).
#[derive(Debug)]
pub struct DecodedBody {
    /// The decoded body.
    pub json: Value,
    /// The query string's `/flags`-family parameters.
    pub query: FlagsQuery,
}

impl FromRequest<AppState> for DecodedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let query = FlagsQuery::parse(req.uri().query().unwrap_or(""));
        let (headers, bytes) = headers_and_bytes(req, state).await?;
        let json = decode_body(&state.decoder, &headers, &query, &bytes)?;
        Ok(DecodedBody { json, query })
    }
}

/// The request's headers and its whole body (under the body limit).
pub async fn headers_and_bytes(
    req: Request,
    state: &AppState,
) -> Result<(HeaderMap, Bytes), ApiError> {
    let (mut parts, body) = req.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
        .await
        .map_err(body_rejection)?;
    Ok((headers, bytes))
}

/// Decodes a request body (JSON, gzip, base64, form) into JSON, or the 400/413 to answer.
pub fn decode_body(
    decoder: &Decoder,
    headers: &HeaderMap,
    query: &FlagsQuery,
    body: &[u8],
) -> Result<Value, ApiError> {
    let header_str = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let encoding = BodyEncoding {
        content_type: header_str(header::CONTENT_TYPE),
        content_encoding: header_str(header::CONTENT_ENCODING),
        compression: query.compression.as_deref(),
    };
    decoder.decode(encoding, body).map_err(|e| {
        let detail = format!(
            "Failed to decode request: {e}. Please check your request format and try again."
        );
        if e.is_too_large() {
            ApiError::too_large(detail)
        } else {
            ApiError::parse(detail)
        }
    })
}

/// Maps a failure to read the request body (too large, connection error) to a JSON error.
pub fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("The request body is too large.")
    } else if crate::connection::BodyReadTimeout::caused(&rejection) {
        ApiError::timeout("The request body did not arrive in time.")
    } else {
        ApiError::parse(format!("Failed to read the request body: {rejection}."))
    }
}
