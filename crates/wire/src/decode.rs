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
//! * Decoding stops at checked text ([`Decoder::decode_text`] → [`JsonText`]): the caller reads
//!   the few fields that decide whether the body is worth parsing (its token) before building
//!   the tree, which for hostile input (`[0,0,0,…]`) is many times the text's size.

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
        self.decode_text(encoding, body)?.parse()
    }

    /// Decodes a request body into checked JSON text, without building the document: what
    /// [`Decoder::decode`] parses. Only what decoding produces is allocated (the inflated or
    /// base64-decoded text, at most the cap); plain JSON is borrowed from `body`. Read the few
    /// fields that decide whether to go on ([`JsonText::read`]) before paying for
    /// [`JsonText::parse`], whose tree can take many times the text's size.
    pub fn decode_text<'a>(
        &self,
        encoding: BodyEncoding<'_>,
        body: &'a [u8],
    ) -> Result<JsonText<'a>, DecodeError> {
        let compression = encoding.compression.and_then(Compression::from_param);
        match content_kind(encoding.content_type)? {
            ContentKind::Json => self.decode_json_body(encoding, compression, body),
            ContentKind::Form => self.decode_form_body(compression, body),
        }
    }

    /// [`Decoder::decode_text`], with `skim` reading from the text what decides whether to go
    /// on (a token). When the body is its own text — JSON, not compressed, valid UTF-8 under
    /// the cap — `skim` runs on it first, and when it answers it has read one complete JSON
    /// document (a skim must answer `None` otherwise), so the JSON check, a pass of its own, is
    /// not repeated. Otherwise the body is decoded and checked as by `decode_text` and skimmed
    /// after. Either way the text is what `decode_text` returns.
    pub fn decode_text_skimmed<'a, S>(
        &self,
        encoding: BodyEncoding<'_>,
        body: &'a [u8],
        skim: impl Fn(&JsonText<'_>) -> Option<S>,
    ) -> Result<(JsonText<'a>, Option<S>), DecodeError> {
        if let Some(text) = self.plain_json(encoding, body) {
            let text = JsonText {
                text: Cow::Borrowed(text),
            };
            if let Some(skimmed) = skim(&text) {
                return Ok((text, Some(skimmed)));
            }
        }
        let text = self.decode_text(encoding, body)?;
        let skimmed = skim(&text);
        Ok((text, skimmed))
    }

    /// `body` as text when [`Decoder::decode_text`] would take it as it is (before checking
    /// that it is JSON): a JSON content type, no compression, under the cap, valid UTF-8.
    fn plain_json<'a>(&self, encoding: BodyEncoding<'_>, body: &'a [u8]) -> Option<&'a str> {
        let compression = encoding.compression.and_then(Compression::from_param);
        let plain = matches!(content_kind(encoding.content_type), Ok(ContentKind::Json))
            && compression != Some(Compression::Unsupported)
            && codec(encoding, compression, body).is_none()
            && self.check_size(body.len()).is_ok();
        if !plain {
            return None;
        }
        std::str::from_utf8(body).ok()
    }

    /// Whether decoding `body` allocates a text as large as the cap: true when it is compressed
    /// (by parameter, header or magic bytes). Other decodings produce at most the body's size.
    pub fn inflates(encoding: BodyEncoding<'_>, body: &[u8]) -> bool {
        let compression = encoding.compression.and_then(Compression::from_param);
        matches!(content_kind(encoding.content_type), Ok(ContentKind::Json))
            && codec(encoding, compression, body).is_some()
    }

    fn decode_json_body<'a>(
        &self,
        encoding: BodyEncoding<'_>,
        compression: Option<Compression>,
        body: &'a [u8],
    ) -> Result<JsonText<'a>, DecodeError> {
        if compression == Some(Compression::Unsupported) {
            return Err(DecodeError::UnsupportedCompression);
        }
        let bytes: Cow<'a, [u8]> = match codec(encoding, compression, body) {
            Some(codec) => Cow::Owned(self.inflate(codec, body)?),
            None => {
                self.check_size(body.len())?;
                Cow::Borrowed(body)
            }
        };
        let text = match JsonText::check(bytes_to_text(bytes)) {
            Ok(json) => return Ok(json),
            Err(text) => text,
        };
        // Some clients send (percent-encoded) base64 of the JSON with a JSON content type.
        match base64_text(&percent_decode(text.as_bytes()).collect::<Vec<u8>>()) {
            Ok(decoded) => {
                self.check_size(decoded.len())?;
                JsonText::check(bytes_to_text(Cow::Owned(decoded)))
                    .map_err(|_| DecodeError::InvalidJson)
            }
            Err(_) => Err(DecodeError::InvalidJson),
        }
    }

    fn decode_form_body(
        &self,
        compression: Option<Compression>,
        body: &[u8],
    ) -> Result<JsonText<'static>, DecodeError> {
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
        JsonText::check(bytes_to_text(Cow::Owned(decoded))).map_err(|_| DecodeError::InvalidJson)
    }

    /// Inflates gzip or zlib, stopping one byte past the cap.
    fn inflate(&self, codec: Codec, compressed: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let limit = self.max_decoded_bytes;
        let read_limit = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        // Reserve the cap at once: pages are only resident once written, and growing by
        // doubling would copy the text and hold two buffers (up to 2.5x the cap) at the peak.
        let mut out = Vec::new();
        if out.try_reserve_exact(limit.saturating_add(1)).is_err() {
            out.reserve(compressed.len().saturating_mul(4).min(limit).min(1 << 20));
        }
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

/// The compression a JSON or text body is in, if any (spec §1.3).
fn codec(
    encoding: BodyEncoding<'_>,
    compression: Option<Compression>,
    body: &[u8],
) -> Option<Codec> {
    match compression {
        Some(Compression::Gzip) => Some(Codec::Gzip),
        // Base64 is handled by the fallback, like PostHog's decoder.
        Some(Compression::Base64 | Compression::Unsupported) => None,
        None => {
            let declared = encoding.content_encoding.unwrap_or("");
            let has = |name: &str| {
                declared
                    .as_bytes()
                    .windows(name.len())
                    .any(|w| w.eq_ignore_ascii_case(name.as_bytes()))
            };
            if has("gzip") || body.starts_with(&[0x1f, 0x8b]) {
                Some(Codec::Gzip)
            } else if has("deflate") {
                Some(Codec::Zlib)
            } else {
                None
            }
        }
    }
}

/// A decoded body: text known to be one JSON document (after the tolerances of spec §1.3), not
/// yet parsed.
#[derive(Debug, Clone)]
pub struct JsonText<'a> {
    text: Cow<'a, str>,
}

impl<'a> JsonText<'a> {
    /// The text if it is JSON, or JSON once bare non-finite literals are read as `null`; else
    /// the text back. Checking builds nothing: every value is skipped.
    fn check(text: Cow<'a, str>) -> Result<Self, Cow<'a, str>> {
        if is_json(&text) {
            return Ok(JsonText { text });
        }
        match replace_non_finite(&text) {
            Some(patched) if is_json(&patched) => Ok(JsonText {
                text: Cow::Owned(patched),
            }),
            _ => Err(text),
        }
    }

    /// The text's length in bytes.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether the text is empty (never, for checked JSON).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Whether this text owns its bytes (decoding produced them) rather than borrowing the body.
    pub fn is_owned(&self) -> bool {
        matches!(self.text, Cow::Owned(_))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Reads the document as `T`, borrowing strings from the text where it can: a type that
    /// names a few fields and skips the rest (`serde::de::IgnoredAny`) costs no allocation per
    /// value, whatever the body holds.
    pub fn read<'t, T: serde::Deserialize<'t>>(&'t self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.text)
    }

    /// Reads the document with a stateful seed (see [`JsonText::read`]).
    pub(crate) fn read_seed<'t, S: serde::de::DeserializeSeed<'t>>(
        &'t self,
        seed: S,
    ) -> Result<S::Value, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(&self.text);
        let value = seed.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    /// Parses the document: into a [`Value`], or a type that reads it the same way (such as
    /// [`FlagsBody`](crate::request::FlagsBody)).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, DecodeError> {
        serde_json::from_str(&self.text).map_err(|_| DecodeError::InvalidJson)
    }
}

/// Whether `text` is one JSON document (nesting bounded by serde_json's recursion limit).
fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// Bytes as text, invalid UTF-8 decoded lossily (U+FFFD); borrowed when already valid.
fn bytes_to_text(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        // `from_utf8` validates valid text several times faster than `from_utf8_lossy`, which
        // walks it chunk by chunk; the lossy pass is only for the invalid rest.
        Cow::Borrowed(b) => match std::str::from_utf8(b) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(b),
        },
        Cow::Owned(b) => match String::from_utf8(b) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
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
