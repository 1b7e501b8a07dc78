//! Semantic versions as PostHog's server reads them: lenient about `v` prefixes, missing
//! minor/patch components and leading zeros, strict about everything else.

use semver::{Version, VersionReq};

/// `"v3.08"` → `3.8.0`; pre-release and build suffixes are kept.
pub(crate) fn parse(raw: &str) -> Option<Version> {
    let normalized = normalize(raw);
    // Fast path, allocation-free: plain numeric `X[.Y[.Z]]`, the common case on the hot path.
    if let Some(v) = parse_numeric(normalized) {
        return Some(v);
    }
    Version::parse(&canonical(normalized)).ok()
}

/// `X`, `X.Y` or `X.Y.Z` with only ASCII digits (leading zeros allowed, as [`canonical`]
/// strips them); anything else is left to the general path.
fn parse_numeric(s: &str) -> Option<Version> {
    let mut parts = [0u64; 3];
    for (i, part) in s.split('.').enumerate() {
        if i == 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        parts[i] = part.parse().ok()?;
    }
    Some(Version::new(parts[0], parts[1], parts[2]))
}

/// `~X.Y.Z`: `>=X.Y.Z, <X.(Y+1).0`.
pub(crate) fn tilde(raw: &str) -> Option<VersionReq> {
    VersionReq::parse(&format!("~{}", canonical(normalize(raw)))).ok()
}

/// `^X.Y.Z` with Cargo semantics.
pub(crate) fn caret(raw: &str) -> Option<VersionReq> {
    VersionReq::parse(&format!("^{}", canonical(normalize(raw)))).ok()
}

/// `1.*`, `1.2.*` (`*` read as `x`).
pub(crate) fn wildcard(raw: &str) -> Option<VersionReq> {
    let joined = normalize(raw)
        .split('.')
        .map(strip_leading_zeros)
        .collect::<Vec<_>>()
        .join(".")
        .replace('*', "x");
    VersionReq::parse(&joined).ok()
}

fn normalize(raw: &str) -> &str {
    raw.strip_prefix('v').unwrap_or(raw).trim()
}

fn strip_leading_zeros(part: &str) -> &str {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return part;
    }
    match part.trim_start_matches('0') {
        "" => "0",
        trimmed => trimmed,
    }
}

fn canonical(version: &str) -> String {
    let (core, suffix) = match version.find(['-', '+']) {
        Some(i) => version.split_at(i),
        None => (version, ""),
    };
    let mut parts: Vec<&str> = core.split('.').map(strip_leading_zeros).collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    let mut out = parts.join(".");
    out.push_str(suffix);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_forms() {
        assert_eq!(parse("v3.08").unwrap(), Version::new(3, 8, 0));
        assert_eq!(parse(" 2 ").unwrap(), Version::new(2, 0, 0));
        assert!(parse("1.2.3-beta").unwrap() < Version::new(1, 2, 3));
        assert!(parse("1.2.3.4").is_none());
        assert!(wildcard("1.*").unwrap().matches(&Version::new(1, 9, 0)));
        assert_eq!(parse("007.1").unwrap(), Version::new(7, 1, 0));
        assert!(parse("1..2").is_none());
        assert!(parse("").is_none());
    }
}
