//! The UI's stylesheet and script, embedded in the binary and served with a long cache
//! lifetime: their paths carry a content version, so a new build never meets a stale copy.
//! Nothing is loaded from anywhere else (no fonts, no CDN).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

/// Where the stylesheet is served (the crate version keys browser caches).
pub const STYLE_PATH: &str = concat!("/ui/assets/style-", env!("CARGO_PKG_VERSION"), ".css");
/// Where the script is served.
pub const SCRIPT_PATH: &str = concat!("/ui/assets/app-", env!("CARGO_PKG_VERSION"), ".js");

/// `GET /ui/assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    let path = format!("/ui/assets/{name}");
    let (body, kind) = if path == STYLE_PATH {
        (STYLE, "text/css; charset=utf-8")
    } else if path == SCRIPT_PATH {
        (SCRIPT, "text/javascript; charset=utf-8")
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
