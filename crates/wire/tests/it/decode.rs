//! The body decoder: every content type, compression and tolerance of spec §1.3.

use base64::Engine as _;
use serde_json::{json, Value};
use vexil_wire::{decode, BodyEncoding, DecodeError, Decoder};

use crate::support::gzip;

const BODY: &str = r#"{"token":"phc_x","distinct_id":"u1"}"#;

fn enc<'a>(
    content_type: Option<&'a str>,
    content_encoding: Option<&'a str>,
    compression: Option<&'a str>,
) -> BodyEncoding<'a> {
    BodyEncoding {
        content_type,
        content_encoding,
        compression,
    }
}

fn expected() -> Value {
    json!({"token": "phc_x", "distinct_id": "u1"})
}

#[test]
fn plain_json_with_and_without_content_type() {
    for ct in [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("Application/JSON"),
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
    ] {
        assert_eq!(
            decode(enc(ct, None, None), BODY.as_bytes()).unwrap(),
            expected(),
            "{ct:?}"
        );
    }
}

#[test]
fn gzip_by_parameter_header_or_magic_bytes() {
    let gz = gzip(BODY.as_bytes());
    for c in ["gzip", "gzip-js"] {
        assert_eq!(
            decode(enc(Some("application/json"), None, Some(c)), &gz).unwrap(),
            expected()
        );
    }
    assert_eq!(
        decode(enc(Some("application/json"), Some("gzip"), None), &gz).unwrap(),
        expected()
    );
    assert_eq!(
        decode(enc(None, Some("x-gzip, identity"), None), &gz).unwrap(),
        expected()
    );
    // posthog-js 1.449: gzip as text/plain with no other hint.
    assert_eq!(
        decode(enc(Some("text/plain"), None, None), &gz).unwrap(),
        expected()
    );
    // An empty compression value counts as absent.
    assert_eq!(
        decode(enc(Some("text/plain"), None, Some("")), &gz).unwrap(),
        expected()
    );
}

#[test]
fn broken_gzip_is_a_decode_error() {
    let mut gz = gzip(BODY.as_bytes());
    gz.truncate(gz.len() / 2);
    let err = decode(enc(Some("text/plain"), None, None), &gz).unwrap_err();
    assert!(matches!(err, DecodeError::Gzip(_)), "{err:?}");
    assert!(err.to_string().starts_with("decompression failed: "));
    let err = decode(enc(None, None, Some("gzip")), BODY.as_bytes()).unwrap_err();
    assert!(matches!(err, DecodeError::Gzip(_)), "{err:?}");
}

#[test]
fn base64_json_bodies() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(BODY);
    // compression=base64 defers to the JSON-then-base64 fallback.
    assert_eq!(
        decode(enc(None, None, Some("base64")), b64.as_bytes()).unwrap(),
        expected()
    );
    // Without the parameter the fallback still applies: unpadded, percent-encoded, or with
    // spaces inserted (which are stripped).
    let unpadded = b64.trim_end_matches('=');
    assert_eq!(
        decode(enc(None, None, None), unpadded.as_bytes()).unwrap(),
        expected()
    );
    let percent = b64
        .replace('=', "%3D")
        .replace('+', "%2B")
        .replace('/', "%2F");
    assert_eq!(
        decode(enc(None, None, None), percent.as_bytes()).unwrap(),
        expected()
    );
    let spaced = format!("{} {}", &b64[..8], &b64[8..]);
    assert_eq!(
        decode(enc(None, None, None), spaced.as_bytes()).unwrap(),
        expected()
    );
}

#[test]
fn form_data_base64() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(BODY);
    let encoded = b64
        .replace('=', "%3D")
        .replace('+', "%2B")
        .replace('/', "%2F");
    let form = Some("application/x-www-form-urlencoded");
    let body = format!("data={encoded}");
    assert_eq!(
        decode(enc(form, None, None), body.as_bytes()).unwrap(),
        expected()
    );
    assert_eq!(
        decode(enc(form, None, Some("base64")), body.as_bytes()).unwrap(),
        expected()
    );
    // Other form fields after `data` are ignored.
    let body = format!("data={encoded}&compression=base64");
    assert_eq!(
        decode(enc(form, None, None), body.as_bytes()).unwrap(),
        expected()
    );
    // No `data=` prefix is tolerated.
    assert_eq!(
        decode(enc(form, None, None), encoded.as_bytes()).unwrap(),
        expected()
    );
}

#[test]
fn form_data_rejects_gzip_and_unknown_compression() {
    let form = Some("application/x-www-form-urlencoded");
    let err = decode(enc(form, None, Some("gzip")), b"data=e30=").unwrap_err();
    assert!(matches!(err, DecodeError::GzipFormBody), "{err:?}");
    let err = decode(enc(form, None, Some("lz64")), b"data=e30=").unwrap_err();
    assert!(
        matches!(err, DecodeError::UnsupportedCompression),
        "{err:?}"
    );
    let err = decode(enc(form, None, None), b"data=!!!!").unwrap_err();
    assert!(matches!(err, DecodeError::Base64(_)), "{err:?}");
}

#[test]
fn form_data_decodes_invalid_utf8_lossily() {
    let mut raw = br#"{"distinct_id":"a"#.to_vec();
    raw.push(0xff);
    raw.extend_from_slice(br#"b"}"#);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let body = format!("data={b64}");
    let v = decode(
        enc(Some("application/x-www-form-urlencoded"), None, None),
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(v["distinct_id"], "a\u{FFFD}b");
}

#[test]
fn non_finite_literals_read_as_null() {
    let body = br#"{"a": NaN, "b": Infinity, "c": -Infinity, "d": [1, NaN, +Infinity],
                   "e": "NaN and Infinity stay", "f": {"g": NaN}, "h": 1.5}"#;
    let v = decode(BodyEncoding::default(), body).unwrap();
    assert_eq!(
        v,
        json!({"a": null, "b": null, "c": null, "d": [1, null, null],
               "e": "NaN and Infinity stay", "f": {"g": null}, "h": 1.5})
    );
    // Words that merely contain the literals are still invalid JSON.
    let err = decode(BodyEncoding::default(), br#"{"a": NaNa}"#).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidJson), "{err:?}");
}

#[test]
fn unsupported_compression_and_content_type() {
    let err = decode(enc(None, None, Some("lz64")), BODY.as_bytes()).unwrap_err();
    assert!(
        matches!(err, DecodeError::UnsupportedCompression),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "Unsupported compression type");

    let err = decode(enc(Some("application/xml"), None, None), BODY.as_bytes()).unwrap_err();
    assert!(
        matches!(err, DecodeError::UnsupportedContentType(_)),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "unsupported content type: application/xml");
    assert!(!err.is_too_large());
}

#[test]
fn invalid_json() {
    for body in [&b"{"[..], b"", b"not json at all", b"{\"a\":1}}"] {
        let err = decode(BodyEncoding::default(), body).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidJson), "{body:?}: {err:?}");
        assert_eq!(err.to_string(), "invalid JSON");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = "[".repeat(200_000);
    let err = decode(BodyEncoding::default(), deep.as_bytes()).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidJson), "{err:?}");
}

#[test]
fn lossy_utf8_after_decompression() {
    let mut raw = br#"{"distinct_id":"x"#.to_vec();
    raw.extend_from_slice(&[0xc3, 0x28]);
    raw.extend_from_slice(br#""}"#);
    let v = decode(enc(Some("text/plain"), None, None), &gzip(&raw)).unwrap();
    assert_eq!(v["distinct_id"], "x\u{FFFD}(");
    let v = decode(BodyEncoding::default(), &raw).unwrap();
    assert_eq!(v["distinct_id"], "x\u{FFFD}(");
}

#[test]
fn too_large_bodies() {
    let decoder = Decoder::new(1024);
    assert_eq!(decoder.max_decoded_bytes(), 1024);
    let big = format!(r#"{{"distinct_id":"{}"}}"#, "a".repeat(2000));
    let err = decoder
        .decode(BodyEncoding::default(), big.as_bytes())
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");

    // A gzip bomb: 50 MB of zeros compresses to ~50 KB and stops inflating at the cap.
    let bomb = gzip(&vec![b' '; 50 * 1024 * 1024]);
    assert!(bomb.len() < 100 * 1024);
    let err = Decoder::new(1024 * 1024)
        .decode(enc(Some("text/plain"), None, None), &bomb)
        .unwrap_err();
    assert!(
        matches!(err, DecodeError::TooLarge { limit: 1_048_576 }),
        "{err:?}"
    );

    let b64 = base64::engine::general_purpose::STANDARD.encode(&big);
    let err = decoder
        .decode(
            enc(Some("application/x-www-form-urlencoded"), None, None),
            format!("data={b64}").as_bytes(),
        )
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");

    // Exactly at the cap is fine.
    let exact = Decoder::new(BODY.len());
    assert_eq!(
        exact
            .decode(BodyEncoding::default(), BODY.as_bytes())
            .unwrap(),
        expected()
    );
    let gz = gzip(BODY.as_bytes());
    assert_eq!(
        exact.decode(BodyEncoding::default(), &gz).unwrap(),
        expected()
    );
    let err = Decoder::new(BODY.len() - 1)
        .decode(BodyEncoding::default(), &gz)
        .unwrap_err();
    assert!(err.is_too_large());
}

#[test]
fn default_cap_is_twenty_mebibytes() {
    assert_eq!(Decoder::default().max_decoded_bytes(), 20 * 1024 * 1024);
}

#[test]
fn deflate_content_encoding_is_zlib() {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(BODY.as_bytes()).unwrap();
    let body = z.finish().unwrap();
    assert_eq!(
        decode(enc(Some("application/json"), Some("deflate"), None), &body).unwrap(),
        expected()
    );
    // A zlib bomb stops at the cap, like gzip.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![b' '; 4096]).unwrap();
    let bomb = z.finish().unwrap();
    let err = vexil_wire::decode::Decoder::new(1024)
        .decode(enc(None, Some("deflate"), None), &bomb)
        .unwrap_err();
    assert!(err.is_too_large(), "{err:?}");
}

/// A compressed body that inflates to `mib` MiB of spaces, built without compressing them: one
/// sync-flushed deflate chunk (1 MiB of spaces, about 1 KiB compressed, byte-aligned) repeated,
/// then an empty final block and the container's trailer.
struct Bomb {
    header: &'static [u8],
    chunk: Vec<u8>,
    zlib: bool,
}

const MIB: usize = 1024 * 1024;

impl Bomb {
    fn new(zlib: bool) -> Bomb {
        use std::io::Write;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b' '; MIB]).unwrap();
        e.flush().unwrap(); // a sync flush: complete, byte-aligned, non-final blocks
        let chunk = e.get_ref().clone();
        let header: &[u8] = if zlib {
            &[0x78, 0xda]
        } else {
            &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff]
        };
        Bomb {
            header,
            chunk,
            zlib,
        }
    }

    /// The header and the first `mib` chunks: a valid stream cut off after `mib` MiB.
    fn prefix(&self, mib: usize) -> Vec<u8> {
        let mut out = self.header.to_vec();
        for _ in 0..mib {
            out.extend_from_slice(&self.chunk);
        }
        out
    }

    /// The whole stream.
    fn complete(&self, mib: usize) -> Vec<u8> {
        let mut out = self.prefix(mib);
        out.extend_from_slice(&[0x03, 0x00]); // final fixed-Huffman block holding only end-of-block
        let n = (mib * MIB) as u64;
        if self.zlib {
            // Adler-32 of n spaces: a = 1 + 32n, b = Σ a_i = n + 32·n(n+1)/2, both mod 65521.
            let n = u128::from(n);
            let a = (1 + 32 * n) % 65521;
            let b = (n + 16 * n * (n + 1)) % 65521;
            out.extend_from_slice(&(((b << 16) | a) as u32).to_be_bytes());
        } else {
            let mut one = flate2::Crc::new();
            one.update(&vec![b' '; MIB]);
            let mut crc = flate2::Crc::new();
            for _ in 0..mib {
                crc.combine(&one);
            }
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&(n as u32).to_le_bytes()); // ISIZE is the size mod 2^32
        }
        out
    }
}

/// The bomb construction is a valid stream of exactly the promised size (checked small).
#[test]
fn bomb_construction_is_valid() {
    use std::io::Read;
    for zlib in [false, true] {
        let bomb = Bomb::new(zlib);
        assert!(bomb.chunk.len() < 2048, "{}", bomb.chunk.len());
        let body = bomb.complete(3);
        let mut out = Vec::new();
        if zlib {
            flate2::read::ZlibDecoder::new(&body[..]).read_to_end(&mut out)
        } else {
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out)
        }
        .unwrap();
        assert_eq!(out.len(), 3 * MIB);
        assert!(out.iter().all(|&b| b == b' '));
        // A cut-off stream is an inflation error when read to the end.
        let mut out = Vec::new();
        let cut = bomb.prefix(2);
        let err = if zlib {
            flate2::read::ZlibDecoder::new(&cut[..]).read_to_end(&mut out)
        } else {
            flate2::read::GzDecoder::new(&cut[..]).read_to_end(&mut out)
        };
        assert!(err.is_err(), "zlib {zlib}");
    }
}

/// Inflation stops at the cap: a stream cut off after 2 MiB is `TooLarge` for a 1 MiB cap, not a
/// truncated-stream error, so the decoder never inflated past (about) the cap. A complete 4 GiB
/// bomb (about 4 MiB compressed) is then `TooLarge` too, without inflating it.
#[test]
fn bombs_stop_inflating_at_the_cap() {
    let decoder = Decoder::new(MIB);
    for (zlib, encoding) in [
        (false, enc(Some("text/plain"), None, None)),
        (true, enc(Some("application/json"), Some("deflate"), None)),
    ] {
        let bomb = Bomb::new(zlib);
        let err = decoder.decode(encoding, &bomb.prefix(2)).unwrap_err();
        assert!(
            matches!(err, DecodeError::TooLarge { limit: MIB }),
            "zlib {zlib}: {err:?}"
        );
        // Within the cap, the same cut-off stream is reported as broken.
        let err = Decoder::new(4 * MIB)
            .decode(encoding, &bomb.prefix(2))
            .unwrap_err();
        assert!(matches!(err, DecodeError::Gzip(_)), "zlib {zlib}: {err:?}");

        let full = bomb.complete(4096);
        assert!(full.len() < 8 * MIB, "{}", full.len());
        let err = decoder.decode(encoding, &full).unwrap_err();
        assert!(
            matches!(err, DecodeError::TooLarge { limit: MIB }),
            "zlib {zlib}: {err:?}"
        );
    }
}
