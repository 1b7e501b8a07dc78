//! OpenFeature Remote Evaluation Protocol: `POST /ofrep/v1/evaluate/flags/{key}` (one flag) and
//! `POST /ofrep/v1/evaluate/flags` (every flag, with an `ETag`; `If-None-Match` → 304). The
//! context becomes the request `/flags` evaluates ([`OfrepCall`]), evaluated on the same path
//! ([`stored_inputs`], [`crate::snapshot::ProjectSnapshot::evaluate`]) and projected by `vexil_wire::ofrep`.
//!
//! Bulk responses advertise the project's change stream in `eventStreams` (ADR-0008): an
//! `endpoint` whose `requestUri` is `/ofrep/v1/stream?token=…`, sending `refetchEvaluation`
//! messages (`routes/stream.rs`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Router;
use serde::Serialize;
use vexil_wire::ofrep::{BulkResponse, EventStream, Failure, Resolution};

use crate::error::{refuse, ApiError};
use crate::evaluate::stored_inputs;
use crate::extract::ofrep::{OfrepBodyError, OfrepCall};
use crate::overload::OFREP_EVALUATE_PATH;
use crate::response::json_response;
use crate::snapshot::RemoteConfig;
use crate::state::AppState;

const ALLOW: &str = "POST, OPTIONS";

/// The OFREP routes (the caller adds shedding and the public CORS policy).
pub fn router() -> Router<AppState> {
    let methods = |handler: MethodRouter<AppState>| {
        handler
            .options(|| async { (StatusCode::NO_CONTENT, [(header::ALLOW, ALLOW)]) })
            .fallback(refuse(ALLOW, "Use POST to evaluate flags."))
    };
    Router::new()
        .route(OFREP_EVALUATE_PATH, methods(post(evaluate_all)))
        .route(
            &format!("{OFREP_EVALUATE_PATH}/{{key}}"),
            methods(post(evaluate_one)),
        )
}

/// One flag: 200 with its value, or 404 / 400 / 500 in OFREP's failure shape.
async fn evaluate_one(
    State(state): State<AppState>,
    Path(key): Path<String>,
    call: OfrepCall,
) -> Response {
    let OfrepCall { snapshot, request } = call;
    let mut request = match request {
        Ok(request) => request,
        Err(e) => return failure(&context_failure(Some(&key), &e)),
    };
    // A remote-configuration flag's value is its payload, the same for every context; an
    // encrypted one is not served here, as `/flags` does not serve it.
    match snapshot.remote_config_flag(&key) {
        Some((def, RemoteConfig::Plain)) => {
            return resolution(&Resolution::remote_configuration(def))
        }
        Some((_, RemoteConfig::Encrypted)) => return failure(&Failure::not_found(&key)),
        None => {}
    }
    let Some(flag) = snapshot.compiled.flag(&key) else {
        return failure(&Failure::not_found(&key));
    };
    if !flag.active() {
        return resolution(&Resolution::disabled(flag));
    }
    request.flag_keys = Some(vec![key.clone()]);
    let Some(distinct_id) = request.distinct_id.as_deref() else {
        return failure(&Failure::targeting_key_missing(Some(&key)));
    };
    let now = state.settings.clock.now();
    let stored = stored_inputs(&state, &snapshot, &request, distinct_id, now).await;
    let evaluation = snapshot.evaluate(&request, None, &stored, now);
    state.metrics.count_evaluations(&snapshot, &evaluation);
    match evaluation.get(&key) {
        Some(result) => resolution(&Resolution::from_result(result)),
        None => {
            tracing::error!(flag = %key, "an active flag was not evaluated");
            ApiError::internal().into_response()
        }
    }
}

/// Every flag of the project: active ones evaluated, inactive ones `DISABLED`,
/// remote-configuration ones `STATIC` (encrypted ones left out); a strong ETag of the body, 304 when the client has it.
async fn evaluate_all(
    State(state): State<AppState>,
    headers: HeaderMap,
    call: OfrepCall,
) -> Response {
    let OfrepCall { snapshot, request } = call;
    let request = match request {
        Ok(request) => request,
        Err(e) => return failure(&context_failure(None, &e)),
    };
    let Some(distinct_id) = request.distinct_id.as_deref() else {
        return failure(&Failure::targeting_key_missing(None));
    };
    let now = state.settings.clock.now();
    let stored = stored_inputs(&state, &snapshot, &request, distinct_id, now).await;
    let evaluation = snapshot.evaluate(&request, None, &stored, now);
    state.metrics.count_evaluations(&snapshot, &evaluation);
    let mut evaluated = evaluation.flags.iter().peekable();
    let mut flags = Vec::with_capacity(snapshot.flags().len());
    // Results come in definition order with inactive flags left out: merge them back in.
    for flag in snapshot.compiled.flags() {
        let remote_config = snapshot.is_remote_config(flag.id());
        match evaluated.peek() {
            Some(r) if std::ptr::eq(r.flag, &**flag) => {
                if !remote_config {
                    flags.push(Resolution::from_result(r));
                }
                evaluated.next();
            }
            _ if !flag.active() && !remote_config => flags.push(Resolution::disabled(flag)),
            _ => {}
        }
    }
    flags.extend(
        snapshot
            .remote_config_flags()
            .filter(|(_, kind)| *kind == RemoteConfig::Plain)
            .map(|(def, _)| Resolution::remote_configuration(def)),
    );
    let stream = format!(
        "{}?token={}",
        crate::streams::OFREP_STREAM_PATH,
        form_urlencoded::byte_serialize(snapshot.project.api_token.as_bytes()).collect::<String>()
    );
    let event_streams = [EventStream {
        request_uri: &stream,
    }];
    let body = match serde_json::to_vec(&BulkResponse {
        flags: &flags,
        event_streams: &event_streams,
    }) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "OFREP response serialisation failed");
            return ApiError::internal().into_response();
        }
    };
    let etag = vexil_wire::definitions::etag(&body);
    let etag_header = HeaderValue::from_str(&etag).ok();
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    if let Some(etag) = etag_header {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

fn context_failure<'k>(key: Option<&'k str>, error: &OfrepBodyError) -> Failure<'k> {
    Failure::new(key, error.code(), format!("Invalid request: {error}."))
}

fn resolution(resolution: &Resolution<'_>) -> Response {
    respond(resolution.status(), resolution)
}

fn failure(failure: &Failure<'_>) -> Response {
    respond(failure.error_code.status(), failure)
}

fn respond<T: Serialize>(status: u16, body: &T) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, body)
}
