//! Local evaluation (spec §2): `/flags/definitions` and the legacy
//! `/api/feature_flag/local_evaluation`, served from the in-memory snapshot with a strong ETag.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::auth::{definitions_access, token_param};
use crate::state::AppState;

const ALLOW: &str = "GET, OPTIONS, HEAD";

/// `GET /flags/definitions?token=phc_…[&send_cohorts]`.
pub async fn definitions(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match method {
        Method::GET => {}
        Method::HEAD => {
            return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]).into_response()
        }
        Method::OPTIONS => {
            return (StatusCode::NO_CONTENT, [(header::ALLOW, ALLOW)]).into_response()
        }
        _ => {
            let mut response =
                ApiError::method_not_allowed("Use GET to fetch flag definitions.").into_response();
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ALLOW));
            return response;
        }
    }
    let token = token_param(uri.query());
    let project = match definitions_access(&state, &headers, token.as_deref()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(snapshot) = state.catalog.by_id(project) else {
        return ApiError::unavailable("Flag definitions are not loaded yet; retry shortly.")
            .into_response();
    };
    let etag = HeaderValue::from_str(&snapshot.etag).ok();
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| vexil_wire::definitions::if_none_match(v, &snapshot.etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            snapshot.definitions_body.clone(),
        )
            .into_response()
    };
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}
