//! Local evaluation (spec §2): `/flags/definitions` and the legacy
//! `/api/feature_flag/local_evaluation`, served from the in-memory snapshot with a strong ETag.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

use crate::error::{refuse, ApiError};
use crate::extract::auth::definitions_access;
use crate::state::AppState;

const ALLOW: &str = "GET, OPTIONS, HEAD";

/// The methods of the definitions paths.
pub fn methods() -> MethodRouter<AppState> {
    get(definitions)
        .head(|| async { (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]) })
        .options(|| async { (StatusCode::NO_CONTENT, [(header::ALLOW, ALLOW)]) })
        .fallback(refuse(ALLOW, "Use GET to fetch flag definitions."))
}

/// `GET /flags/definitions?token=phc_…[&send_cohorts]`.
async fn definitions(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let project = match definitions_access(&state, &headers, uri.query()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(snapshot) = state.catalog.by_id(project) else {
        return ApiError::unavailable("Flag definitions are not loaded yet; retry shortly.")
            .into_response();
    };
    let etag = HeaderValue::from_str(snapshot.etag()).ok();
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| vexil_wire::definitions::if_none_match(v, snapshot.etag()));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            snapshot.definitions_body(),
        )
            .into_response()
    };
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}
