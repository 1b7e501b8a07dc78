//! Cross-origin policy (what browsers may read).
//!
//! The public SDK endpoints — `/flags`, `/decide`, capture, the definitions feed, health — answer
//! every origin (the `Origin` mirrored, like PostHog), because posthog-js runs in pages on any
//! site. Its default `fetch` transport sends no credentials, so it needs no more than that.
//! `Access-Control-Allow-Credentials: true` is sent only to the origins an operator configured
//! ([`Settings::cors_allowed_origins`](crate::Settings)); posthog-js's XHR transport, which sets
//! `withCredentials`, needs its site listed there. The management API answers cross-origin
//! requests only from those configured origins: it is not open to other sites at all.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use tower_http::cors::{AllowCredentials, AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};

/// A configured origin, `scheme://host[:port]` as browsers send it in `Origin` (lowercase, no
/// path, no trailing slash).
#[derive(Clone, PartialEq, Eq)]
pub struct AllowedOrigin(HeaderValue);

impl fmt::Debug for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.to_str().unwrap_or("<origin>"))
    }
}

/// Why a configured origin was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CORS origin {origin:?}: {reason} (expected scheme://host[:port], e.g. https://app.example.com)")]
pub struct InvalidOrigin {
    origin: String,
    reason: &'static str,
}

impl FromStr for AllowedOrigin {
    type Err = InvalidOrigin;

    fn from_str(text: &str) -> Result<Self, InvalidOrigin> {
        let invalid = |reason| InvalidOrigin {
            origin: text.to_owned(),
            reason,
        };
        let origin = text.trim().to_ascii_lowercase();
        if origin == "*" || origin == "null" {
            return Err(invalid(
                "credentials cannot be allowed for every origin or for opaque origins",
            ));
        }
        let Some((scheme, authority)) = origin.split_once("://") else {
            return Err(invalid("no scheme"));
        };
        let scheme_ok = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !scheme_ok {
            return Err(invalid("bad scheme"));
        }
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        if authority.contains(['/', '?', '#', '@', '*']) || authority.contains(char::is_whitespace)
        {
            return Err(invalid("an origin has no path, query, user or wildcard"));
        }
        HeaderValue::from_str(&origin)
            .map(AllowedOrigin)
            .map_err(|_| invalid("not a valid header value"))
    }
}

fn credentials(origins: &[AllowedOrigin]) -> AllowCredentials {
    let origins: Arc<[AllowedOrigin]> = origins.into();
    AllowCredentials::predicate(move |origin, _| origins.iter().any(|o| o.0 == origin))
}

/// The policy of the public SDK endpoints: any origin, credentials only for configured ones.
pub fn public(origins: &[AllowedOrigin]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(credentials(origins))
        .expose_headers([HeaderName::from_static("x-posthog-rate-limit-warning")])
}

/// The policy of the management API: only configured origins, with credentials.
pub fn management(origins: &[AllowedOrigin]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().map(|o| o.0.clone())))
        .allow_methods(AllowMethods::mirror_request())
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(credentials(origins))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_and_normalised() {
        for (text, stored) in [
            ("https://app.example.com", "https://app.example.com"),
            (
                "HTTPS://App.Example.com:8443",
                "https://app.example.com:8443",
            ),
            (" http://localhost:3000 ", "http://localhost:3000"),
            ("chrome-extension://abcdef", "chrome-extension://abcdef"),
        ] {
            let origin: AllowedOrigin = text.parse().unwrap();
            assert_eq!(origin.0, stored, "{text}");
        }
        for text in [
            "*",
            "null",
            "app.example.com",
            "https://",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://*.example.com",
            "https://user@app.example.com",
            "1http://x",
            "",
        ] {
            assert!(text.parse::<AllowedOrigin>().is_err(), "{text:?}");
        }
    }
}
