//! `GET /api/schema/`: the OpenAPI document (built in [`crate::openapi`]) as YAML by default,
//! as JSON with `?format=json` or `Accept: application/json` (drf-spectacular's rules). Public,
//! like PostHog's: it describes the API, it holds no data.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::extract::Params;
use crate::response::json_response;

/// The media type drf-spectacular serves the YAML document with.
const YAML_TYPE: &str = "application/vnd.oai.openapi; charset=utf-8";

/// `GET /api/schema/`.
pub async fn schema(headers: HeaderMap, params: Params) -> Response {
    let wants_json = match params.non_empty("format") {
        Some(f) => f.eq_ignore_ascii_case("json") || f.eq_ignore_ascii_case("openapi-json"),
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("json")),
    };
    let document = crate::openapi::document();
    if wants_json {
        return json_response(StatusCode::OK, document);
    }
    match serde_norway::to_string(document) {
        Ok(yaml) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(YAML_TYPE))],
            yaml,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "OpenAPI YAML rendering failed; serving JSON");
            json_response(StatusCode::OK, document)
        }
    }
}
