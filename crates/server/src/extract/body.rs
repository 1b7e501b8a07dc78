//! Request bodies, read with bounded work before trust: under the endpoint's limit, charged to
//! the decode budget as they arrive and before they are decompressed ([`crate::budget`]), decoded
//! by the wire crate's single decoder to checked text, and parsed only once the caller has
//! accepted what the text says about itself (its token).

use std::future::poll_fn;
use std::pin::Pin;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use bytes::BytesMut;
use http_body::Body as _;
use serde::de::DeserializeOwned;
use serde_json::Value;
use vexil_wire::decode::{BodyEncoding, DecodeError, Decoder, JsonText};
use vexil_wire::request::FlagsQuery;

use crate::budget::{Endpoint, Reservation};
use crate::error::ApiError;
use crate::state::AppState;

/// A body read whole under its endpoint's limit, still charged to the decode budget.
#[derive(Debug)]
pub struct RawBody {
    /// The request's headers.
    pub headers: HeaderMap,
    /// The body.
    pub bytes: Bytes,
    /// Its share of the budget, held until dropped.
    pub reservation: Reservation,
}

/// Reads `req`'s body under `endpoint`'s limit: a `Content-Length` over it is refused before a
/// byte is read, and the bytes are charged to the decode budget chunk by chunk as they arrive,
/// so a slow sender holds only what it has sent.
pub async fn read(req: Request, state: &AppState, endpoint: Endpoint) -> Result<RawBody, ApiError> {
    let limit = state.bodies.decoder(endpoint).max_decoded_bytes();
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    let mut reservation = state.bodies.budget.reservation();
    let bytes = collect(body, limit, &mut reservation).await?;
    Ok(RawBody {
        headers: parts.headers,
        bytes,
        reservation,
    })
}

/// The body's bytes, at most `limit`, each chunk charged before it is kept.
async fn collect(
    mut body: Body,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, ApiError> {
    // Most bodies arrive in one chunk: keep it as is, copy only from a second one on.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame.map_err(read_error)?.into_data() else {
            continue;
        };
        let so_far = joined
            .as_ref()
            .map_or_else(|| first.as_ref().map_or(0, Bytes::len), BytesMut::len);
        let total = so_far + data.len();
        if total > limit {
            return Err(too_large(limit));
        }
        reservation.cover(total).await?;
        match (&mut joined, first.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(head)) => {
                let mut buf = BytesMut::with_capacity(total);
                buf.extend_from_slice(&head);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
        }
    }
    Ok(joined.map(BytesMut::freeze).or(first).unwrap_or_default())
}

/// Reads and decodes a JSON body (gzip, base64 and form too) for `endpoint`: the decoded text
/// is shown to `accept` — which checks its token — and parsed only if `accept` succeeds. Until
/// then the request has cost its raw bytes and decoded text, both charged to the budget; the
/// parsed tree, many times the text's size for hostile input, is only built for accepted ones.
pub async fn read_json<T>(
    req: Request,
    state: &AppState,
    endpoint: Endpoint,
    query: &FlagsQuery,
    accept: impl FnOnce(&JsonText<'_>) -> Result<T, ApiError>,
) -> Result<(HeaderMap, T, Value), ApiError> {
    read_json_skimmed(
        req,
        state,
        endpoint,
        query,
        |_| None::<()>,
        |text, _| accept(text),
    )
    .await
}

/// [`read_json`] with a skim of the text for `accept` (see
/// [`Decoder::decode_text_skimmed`]): a plain JSON body that the skim reads whole is not
/// checked by a pass of its own. The text is parsed into `P`: a [`Value`], or a type that
/// refuses the same texts and keeps only what its caller reads.
pub async fn read_json_skimmed<S, T, P: DeserializeOwned>(
    req: Request,
    state: &AppState,
    endpoint: Endpoint,
    query: &FlagsQuery,
    skim: impl Fn(&JsonText<'_>) -> Option<S>,
    accept: impl FnOnce(&JsonText<'_>, Option<S>) -> Result<T, ApiError>,
) -> Result<(HeaderMap, T, P), ApiError> {
    let RawBody {
        headers,
        bytes,
        mut reservation,
    } = read(req, state, endpoint).await?;
    let decoder = state.bodies.decoder(endpoint);
    let encoding = body_encoding(&headers, query);
    reserve_decoding(&mut reservation, decoder, encoding, &bytes).await?;
    let (text, skimmed) = decoder
        .decode_text_skimmed(encoding, &bytes, skim)
        .map_err(decode_error)?;
    reservation.shrink_to(bytes.len() + if text.is_owned() { text.len() } else { 0 });
    let accepted = accept(&text, skimmed)?;
    let json = text.parse().map_err(decode_error)?;
    Ok((headers, accepted, json))
}

/// Grows `reservation` to cover `bytes` and what decoding them may allocate: inflating, the
/// decoder's whole cap; the other decodings (base64, `NaN` patching), at most the body's size
/// again.
pub async fn reserve_decoding(
    reservation: &mut Reservation,
    decoder: &Decoder,
    encoding: BodyEncoding<'_>,
    bytes: &[u8],
) -> Result<(), ApiError> {
    let decoding = if Decoder::inflates(encoding, bytes) {
        decoder.max_decoded_bytes()
    } else {
        bytes.len()
    };
    reservation.cover(bytes.len() + decoding).await
}

fn body_encoding<'a>(headers: &'a HeaderMap, query: &'a FlagsQuery) -> BodyEncoding<'a> {
    let header_str = |name| headers.get(name).and_then(|v| v.to_str().ok());
    BodyEncoding {
        content_type: header_str(header::CONTENT_TYPE),
        content_encoding: header_str(header::CONTENT_ENCODING),
        compression: query.compression.as_deref(),
    }
}

/// The 400 (or 413) of a body the decoder refused.
fn decode_error(e: DecodeError) -> ApiError {
    let detail =
        format!("Failed to decode request: {e}. Please check your request format and try again.");
    if e.is_too_large() {
        ApiError::too_large(detail)
    } else {
        ApiError::parse(detail)
    }
}

/// The 413 of a body over its endpoint's limit.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(format!(
        "The request body is too large: this endpoint accepts at most {limit} bytes."
    ))
}

/// Maps a failure to read the request body (connection error, body-read timeout) to a JSON error.
fn read_error(error: axum::Error) -> ApiError {
    if crate::connection::BodyReadTimeout::caused(&error) {
        ApiError::timeout("The request body did not arrive in time.")
    } else {
        ApiError::parse(format!("Failed to read the request body: {error}."))
    }
}
