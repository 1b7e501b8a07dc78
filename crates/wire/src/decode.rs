//! The one request-body decoder (spec §1.3): content type, gzip, base64 and form bodies → JSON.
//!
//! Every endpoint that accepts a body (`/flags`, `/decide`, capture) goes through
//! [`Decoder::decode`], so that the SDK quirks PostHog tolerates are tolerated everywhere in the
//! same way:
//!
//! * `application/json` and `text/plain` (also the default when no content type is sent): gzip when
//!   `compression=gzip|gzip-js`, when `Content-Encoding` mentions gzip, or when the body starts with
//!   the gzip magic bytes `1f 8b` (posthog-js sends gzip as `text/plain` with no other hint); zlib
//!   when `Content-Encoding` is `deflate` (capture v1); then
//!   JSON, tolerating bare `NaN`/`Infinity`/`-Infinity` (read as `null`); if that fails, the body
//!   is tried as percent-encoded base64 of JSON.
//! * `application/x-www-form-urlencoded`: `data=<percent-encoded base64 of JSON>` (old posthog-js).
//! * Invalid UTF-8 is decoded lossily (U+FFFD), never rejected.
//! * The decoded text is capped ([`Decoder::new`]); gzip is inflated through the cap, so a small
//!   gzip bomb costs at most the cap in memory. Exceeding it is [`DecodeError::TooLarge`] (413).

use std::borrow::Cow;
use std::io::Read;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use flate2::read::{GzDecoder, ZlibDecoder};
use percent_encoding::percent_decode;
use serde_json::Value;

/// Default cap on the decoded (decompressed) body: 20 MiB.
pub const DEFAULT_MAX_DECODED_BYTES: usize = 20 * 1024 * 1024;

/// How a request says its body is encoded: two headers and the `compression` query parameter.
///
/// Values are passed as received; absent headers and empty strings mean "not given".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BodyEncoding<'a> {
    /// The `Content-Type` header (parameters after `;` are ignored).
    pub content_type: Option<&'a str>,
    /// The `Content-Encoding` header.
    pub content_encoding: Option<&'a str>,
    /// The `compression` query parameter.
    pub compression: Option<&'a str>,
}

/// The `compression` query parameter, interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `gzip` or `gzip-js`.
    Gzip,
    /// `base64`.
    Base64,
    /// Anything else (`lz64` included: PostHog's Rust service does not support it either).
    Unsupported,
}

impl Compression {
    /// Interprets a `compression` value; `None` for an empty (= absent) value.
    pub fn from_param(value: &str) -> Option<Compression> {
        let value = value.trim();
        if value.is_empty() {
            None
        } else if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("gzip-js") {
            Some(Compression::Gzip)
        } else if value.eq_ignore_ascii_case("base64") {
            Some(Compression::Base64)
        } else {
            Some(Compression::Unsupported)
        }
    }
}

/// Why a body could not be decoded.
///
/// The `Display` text is the `<msg>` of the server's
/// `400 Failed to decode request: <msg>. Please check your request format and try again.`;
/// [`DecodeError::TooLarge`] maps to 413 instead (see [`DecodeError::is_too_large`]).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The content type is none of JSON, text or form.
    #[error("unsupported content type: {0}")]
    UnsupportedContentType(String),
    /// The `compression` parameter names an unknown compression.
    #[error("Unsupported compression type")]
    UnsupportedCompression,
    /// `compression=gzip` was combined with a form body.
    #[error("Gzip compression not supported for form-urlencoded data")]
    GzipFormBody,
    /// The body claimed (or looked like) gzip or deflate but did not inflate.
    #[error("decompression failed: {0}")]
    Gzip(#[source] std::io::Error),
    /// A form body's `data` field is not valid base64.
    #[error("Base64 decoding error: {0}")]
    Base64(#[source] base64::DecodeError),
    /// Neither JSON nor base64-wrapped JSON.
    #[error("invalid JSON")]
    InvalidJson,
    /// The decoded body is larger than the configured cap.
    #[error("decoded request body exceeds the {limit}-byte limit")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
}

impl DecodeError {
    /// Whether this is the 413 case rather than a 400.
    pub fn is_too_large(&self) -> bool {
        matches!(self, DecodeError::TooLarge { .. })
    }
}

/// The body decoder, configured with a cap on the decoded size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    max_decoded_bytes: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_DECODED_BYTES)
    }
}

/// Decodes `body` with the default cap ([`DEFAULT_MAX_DECODED_BYTES`]).
pub fn decode(encoding: BodyEncoding<'_>, body: &[u8]) -> Result<Value, DecodeError> {
    Decoder::default().decode(encoding, body)
}

/// A compressed body's format.
#[derive(Clone, Copy)]
enum Codec {
    /// gzip (by parameter, `Content-Encoding` or magic bytes).
    Gzip,
    /// zlib-wrapped deflate (`Content-Encoding: deflate`, capture v1).
    Zlib,
}

enum ContentKind {
    Json,
    Form,
}

impl Decoder {
    /// A decoder that rejects bodies whose decoded form exceeds `max_decoded_bytes`.
    pub const fn new(max_decoded_bytes: usize) -> Self {
        Decoder { max_decoded_bytes }
    }

    /// The configured cap, in bytes.
    pub const fn max_decoded_bytes(&self) -> usize {
        self.max_decoded_bytes
    }

    /// Decodes a request body into JSON (spec §1.3). Never panics.
    pub fn decode(&self, encoding: BodyEncoding<'_>, body: &[u8]) -> Result<Value, DecodeError> {
        let compression = encoding.compression.and_then(Compression::from_param);
        match content_kind(encoding.content_type)? {
            ContentKind::Json => self.decode_json_body(encoding, compression, body),
            ContentKind::Form => self.decode_form_body(compression, body),
        }
    }

    fn decode_json_body(
        &self,
        encoding: BodyEncoding<'_>,
        compression: Option<Compression>,
        body: &[u8],
    ) -> Result<Value, DecodeError> {
        let codec = match compression {
            Some(Compression::Gzip) => Some(Codec::Gzip),
            Some(Compression::Unsupported) => return Err(DecodeError::UnsupportedCompression),
            // Base64 is handled by the fallback below, like PostHog's decoder.
            Some(Compression::Base64) => None,
            None => {
                let declared = encoding.content_encoding.map(str::to_ascii_lowercase);
                let declared = declared.as_deref().unwrap_or("");
                if declared.contains("gzip") || body.starts_with(&[0x1f, 0x8b]) {
                    Some(Codec::Gzip)
                } else if declared.contains("deflate") {
                    Some(Codec::Zlib)
                } else {
                    None
                }
            }
        };
        let bytes: Cow<'_, [u8]> = match codec {
            Some(codec) => Cow::Owned(self.inflate(codec, body)?),
            None => {
                self.check_size(body.len())?;
                Cow::Borrowed(body)
            }
        };
        if let Some(value) = parse_json(&bytes) {
            return Ok(value);
        }
        // Some clients send (percent-encoded) base64 of the JSON with a JSON content type.
        match base64_text(&percent_decode(&bytes).collect::<Vec<u8>>()) {
            Ok(decoded) => {
                self.check_size(decoded.len())?;
                parse_json(&decoded).ok_or(DecodeError::InvalidJson)
            }
            Err(_) => Err(DecodeError::InvalidJson),
        }
    }

    fn decode_form_body(
        &self,
        compression: Option<Compression>,
        body: &[u8],
    ) -> Result<Value, DecodeError> {
        match compression {
            Some(Compression::Gzip) => return Err(DecodeError::GzipFormBody),
            Some(Compression::Unsupported) => return Err(DecodeError::UnsupportedCompression),
            Some(Compression::Base64) | None => {}
        }
        let form: Vec<u8> = percent_decode(body).collect();
        // `data=<base64>`; a bare base64 body is tolerated. The value ends at the next `=`
        // (PostHog splits on `=`, dropping the padding it re-adds below) or `&`.
        let text = match form.strip_prefix(b"data=") {
            Some(rest) => {
                let end = rest
                    .iter()
                    .position(|&b| b == b'=' || b == b'&')
                    .unwrap_or(rest.len());
                &rest[..end]
            }
            None => &form[..],
        };
        let decoded = base64_text(text).map_err(DecodeError::Base64)?;
        self.check_size(decoded.len())?;
        parse_json(&decoded).ok_or(DecodeError::InvalidJson)
    }

    /// Inflates gzip or zlib, stopping one byte past the cap.
    fn inflate(&self, codec: Codec, compressed: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let limit = self.max_decoded_bytes;
        let read_limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        // Reserve modestly: the compressed size says little about the inflated size.
        let mut out =
            Vec::with_capacity(compressed.len().saturating_mul(4).min(limit).min(1 << 20));
        let result = match codec {
            Codec::Gzip => GzDecoder::new(compressed)
                .take(read_limit)
                .read_to_end(&mut out),
            Codec::Zlib => ZlibDecoder::new(compressed)
                .take(read_limit)
                .read_to_end(&mut out),
        };
        result.map_err(DecodeError::Gzip)?;
        self.check_size(out.len())?;
        Ok(out)
    }

    fn check_size(&self, len: usize) -> Result<(), DecodeError> {
        if len > self.max_decoded_bytes {
            Err(DecodeError::TooLarge {
                limit: self.max_decoded_bytes,
            })
        } else {
            Ok(())
        }
    }
}

fn content_kind(content_type: Option<&str>) -> Result<ContentKind, DecodeError> {
    let full = content_type.map(str::trim).filter(|c| !c.is_empty());
    let Some(full) = full else {
        return Ok(ContentKind::Json);
    };
    let base = full.split(';').next().unwrap_or_default().trim();
    if base.eq_ignore_ascii_case("application/json") || base.eq_ignore_ascii_case("text/plain") {
        Ok(ContentKind::Json)
    } else if base.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(ContentKind::Form)
    } else {
        Err(DecodeError::UnsupportedContentType(full.to_owned()))
    }
}

/// Standard alphabet, padding optional, non-zero trailing bits accepted: as lenient as the
/// Python decoders older SDK traffic was written against.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Strips whitespace, pads to a multiple of 4 and decodes standard base64.
fn base64_text(text: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
    let mut cleaned: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let rem = cleaned.len() % 4;
    if rem != 0 {
        cleaned.resize(cleaned.len() + 4 - rem, b'=');
    }
    LENIENT_BASE64.decode(&cleaned)
}

/// Parses JSON from bytes, decoding invalid UTF-8 lossily and reading bare `NaN`, `Infinity` and
/// `-Infinity` as `null` (PostHog's JSON5 tolerance). Nesting is bounded by serde_json's
/// recursion limit, so hostile input cannot exhaust the stack.
pub(crate) fn parse_json(bytes: &[u8]) -> Option<Value> {
    let text = String::from_utf8_lossy(bytes);
    match serde_json::from_str(&text) {
        Ok(value) => Some(value),
        Err(_) => {
            let patched = replace_non_finite(&text)?;
            serde_json::from_str(&patched).ok()
        }
    }
}

/// Rewrites bare non-finite number literals outside strings to `null`; `None` if there were none.
fn replace_non_finite(text: &str) -> Option<String> {
    const LITERALS: [&str; 6] = ["-Infinity", "+Infinity", "Infinity", "-NaN", "+NaN", "NaN"];
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let boundary_before = i == 0 || !is_word_byte(bytes[i - 1]);
        let literal = LITERALS.iter().find(|lit| {
            let end = i + lit.len();
            bytes.get(i..end) == Some(lit.as_bytes())
                && bytes.get(end).is_none_or(|&next| !is_word_byte(next))
        });
        match literal {
            Some(lit) if boundary_before => {
                // Literals are ASCII, so `i` and `i + len` are char boundaries.
                let s = out.get_or_insert_with(|| String::with_capacity(text.len()));
                s.push_str(text.get(copied..i)?);
                s.push_str("null");
                i += lit.len();
                copied = i;
            }
            _ => i += 1,
        }
    }
    let mut s = out?;
    s.push_str(text.get(copied..)?);
    Some(s)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.'
}
