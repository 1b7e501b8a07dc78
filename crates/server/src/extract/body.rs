//! Body decoding for every endpoint that takes one: the wire crate's single decoder, fed with
//! the request's headers and `compression` parameter.

use axum::http::{header, HeaderMap};
use serde_json::Value;
use vexil_wire::decode::{BodyEncoding, Decoder};
use vexil_wire::request::FlagsQuery;

use crate::error::ApiError;

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
