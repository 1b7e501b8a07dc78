//! `/array/{token}/config` and `/array/{token}/config.js`: the remote config posthog-js
//! (≥ 1.350) loads before it asks `/flags`, as PostHog's `config_endpoint` and
//! `config_js_endpoint` serve it — the JSON object, or a script that stores the same object in
//! `window._POSTHOG_REMOTE_CONFIG[token]`.
//!
//! Vexil serves feature flags only, so the config turns off what it has no backend for
//! (session recording, surveys, heatmaps, product tours, site apps) and says whether the
//! project has active flags (`hasFeatureFlags`: posthog-js skips `/flags` when it is `false`).
//! Capture goes to `/e/`, which Vexil stores. Errors are JSON: an empty token is a 401, a
//! malformed one a 400, an unknown one a 404 (PostHog answers the same statuses).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use serde_json::{json, Value};

use crate::error::{refuse, ApiError};
use crate::overload::Bucket;
use crate::response::json_response;
use crate::snapshot::ProjectSnapshot;
use crate::state::AppState;

/// Methods the config paths answer (`OPTIONS` by the CORS layer).
const ALLOW: &str = "GET, HEAD, OPTIONS";

/// PostHog's cache policy for the config.
const CACHE_CONTROL: &str = "public, max-age=300";

/// PostHog's bound on a token in this path.
const MAX_TOKEN_CHARS: usize = 200;

/// The two routes, `(path, methods)`.
pub fn routes() -> [(&'static str, MethodRouter<AppState>); 2] {
    let refused = || refuse(ALLOW, "Use GET to read the remote config.");
    [
        ("/array/{token}/config", get(config).fallback(refused())),
        (
            "/array/{token}/config.js",
            get(config_js).fallback(refused()),
        ),
    ]
}

async fn project(
    state: &AppState,
    token: &str,
) -> Result<std::sync::Arc<ProjectSnapshot>, ApiError> {
    if token.is_empty() {
        return Err(ApiError::not_authenticated("Empty project token."));
    }
    let well_formed = token.chars().count() <= MAX_TOKEN_CHARS
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !well_formed {
        return Err(ApiError::invalid(
            "The project token may only contain letters, digits, '_' and '-' (at most 200).",
        )
        .attr("token"));
    }
    let snapshot = state
        .catalog
        .by_token(token)
        .ok_or_else(|| ApiError::not_found("Project"))?;
    state
        .overload
        .check(Bucket::Evaluation, snapshot.project.id)
        .await?;
    Ok(snapshot)
}

/// The config object for a project.
fn config_of(snapshot: &ProjectSnapshot) -> Value {
    let has_feature_flags = snapshot.flags().iter().any(|f| f.active);
    json!({
        "token": snapshot.project.api_token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": has_feature_flags,
        "captureDeadClicks": false,
        "capturePerformance": false,
        "autocapture_opt_out": false,
        "autocaptureExceptions": false,
        "analytics": {"endpoint": "/e/"},
        "elementsChainAsString": true,
        "errorTracking": {"autocaptureExceptions": false, "suppressionRules": []},
        "logs": {"captureConsoleLogs": false},
        "sessionRecording": false,
        "heatmaps": false,
        "surveys": false,
        "productTours": false,
        "defaultIdentifiedOnly": true,
        "siteApps": [],
    })
}

fn cached(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin, Referer"));
    response
}

async fn config(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = project(&state, &token).await?;
    Ok(cached(json_response(StatusCode::OK, &config_of(&snapshot))))
}

async fn config_js(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = project(&state, &token).await?;
    let mut config = config_of(&snapshot);
    if let Some(object) = config.as_object_mut() {
        object.remove("siteApps");
    }
    // The token was checked to be [A-Za-z0-9_-]: safe inside the quotes. JSON is valid
    // JavaScript, and serde_json escapes what could end the script.
    let script = format!(
        "(function() {{\n  window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {{}};\n  window._POSTHOG_REMOTE_CONFIG['{token}'] = {{\n    config: {config},\n    siteApps: []\n  }}\n}}());",
        token = snapshot.project.api_token,
    );
    let response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/javascript"),
        )],
        script,
    )
        .into_response();
    Ok(cached(response))
}
