//! `/flags` and legacy `/decide` (spec §1): decode → resolve project → one batched lookup of
//! stored person/group data (with a deadline) → pure evaluation on the project's snapshot →
//! projection into the requested response shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::Value;
use vexil_engine::{evaluate, CompiledFlag, Context, GroupCoverage};
use vexil_store::{EvalInputs, ProjectId};
use vexil_wire::request::{FlagFilter, FlagsQuery, FlagsRequest, ResponseShape, RuntimeHints};
use vexil_wire::response::{ConfigFields, Envelope, FlagsResponse};

use crate::error::ApiError;
use crate::extract::body::decode_body;
use crate::routes::{body_rejection, json_bytes, json_response};
use crate::snapshot::ProjectSnapshot;
use crate::state::AppState;

const ALLOW: &str = "GET, POST, OPTIONS, HEAD";

/// `/flags`.
pub async fn flags(
    state: State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, method, uri, headers, body, false).await
}

/// `/decide`: same handler, decide response shapes.
pub async fn decide(
    state: State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, method, uri, headers, body, true).await
}

async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    path_is_decide: bool,
) -> Response {
    let from_decide = path_is_decide
        || headers
            .get("x-original-endpoint")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"decide"));
    let query = FlagsQuery::parse(uri.query().unwrap_or(""));
    let effective = query.effective(from_decide);
    let shape = ResponseShape::for_version(from_decide, effective.version);
    let request_id = request_id(&headers);
    let envelope = Envelope {
        request_id: Some(&request_id),
        evaluated_at: Some(Utc::now().timestamp_millis()),
        ..Envelope::default()
    };
    match method {
        Method::POST => {}
        Method::GET => {
            let config = ConfigFields::Minimal;
            let envelope = Envelope {
                config: Some(&config),
                ..envelope
            };
            return json_response(StatusCode::OK, &FlagsResponse::empty(shape, envelope));
        }
        Method::HEAD => {
            return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]).into_response()
        }
        Method::OPTIONS => {
            return (StatusCode::NO_CONTENT, [(header::ALLOW, ALLOW)]).into_response()
        }
        _ => return ApiError::method_not_allowed("Use POST to evaluate flags.").into_response(),
    }

    let body = match body {
        Ok(body) => body,
        Err(rejection) => return body_rejection(rejection).into_response(),
    };
    let decoded = match decode_body(&state.decoder, &headers, &query, &body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let request = match FlagsRequest::from_json(decoded) {
        Ok(r) => r,
        Err(e) => return ApiError::invalid(format!("Invalid request: {e}.")).into_response(),
    };
    let Some(token) = request.token() else {
        return ApiError::not_authenticated(
            "No API token provided. Please include a valid API token in your request.",
        )
        .into_response();
    };
    let Some(snapshot) = state.catalog.by_token(token) else {
        return ApiError::authentication_failed(
            "The provided API key is invalid or has expired. Please check your API key and try again.",
        )
        .into_response();
    };
    let config_fields = effective
        .config
        .then(|| ConfigFields::Full(snapshot_config(&snapshot)));
    let envelope = Envelope {
        config: config_fields.as_ref(),
        ..envelope
    };
    if request.disable_flags {
        return json_response(StatusCode::OK, &FlagsResponse::empty(shape, envelope));
    }
    let Some(distinct_id) = request.distinct_id.as_deref() else {
        return ApiError::invalid(
            "The distinct_id field is missing from the request. Please include a valid identifier.",
        )
        .attr("distinct_id")
        .into_response();
    };

    // Like PostHog, skip the database when the request carries every property the flags read.
    let covered = snapshot
        .compiled
        .requirements()
        .covered_by(request.person_properties.as_ref(), |index| {
            group_coverage(&snapshot, &request, index)
        });
    let stored = if covered {
        Ok(EvalInputs::default())
    } else {
        load_inputs(&state, &snapshot, &request, distinct_id).await
    };
    let hints = RuntimeHints {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        has_browser_headers: ["origin", "referer", "sec-fetch-mode", "sec-fetch-site"]
            .iter()
            .any(|h| headers.contains_key(*h)),
    };
    let filter = FlagFilter::for_request(&request, &query, &hints);
    let keep = |flag: &CompiledFlag| filter.keeps(flag);

    let (inputs, lookup_failed) = match &stored {
        Ok(inputs) => (Some(inputs), false),
        Err(()) => (None, true),
    };
    let stored_groups = inputs.map(|i| snapshot.stored_groups(i));
    let mut ctx: Context<'_> = request.context(Utc::now());
    ctx.include = Some(&keep);
    if let Some(inputs) = inputs {
        ctx.stored_person_properties = inputs.person_properties.as_ref();
        ctx.static_cohorts = Some(&inputs.static_cohorts);
        if !inputs.hash_key_overrides.is_empty() {
            ctx.hash_key_overrides = Some(&inputs.hash_key_overrides);
        }
    }
    ctx.stored_group_properties = stored_groups.as_ref();

    let evaluation = evaluate(&snapshot.compiled, &ctx);
    let response = FlagsResponse::from_results(
        shape,
        &evaluation.flags,
        evaluation.errors_while_computing_flags || lookup_failed,
        envelope,
    );
    // A v2 record is ~250 bytes; the direct writer skips serde's per-field work.
    let mut body = Vec::with_capacity(256 + 256 * evaluation.flags.len());
    match response.write_json(&mut body) {
        Ok(()) => json_bytes(body),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            ApiError::internal().into_response()
        }
    }
}

/// Reads stored person/group data for the request within the configured deadline. On timeout
/// or error the request is answered from its own properties and reports
/// `errorsWhileComputingFlags`.
async fn load_inputs(
    state: &AppState,
    snapshot: &Arc<ProjectSnapshot>,
    request: &FlagsRequest,
    distinct_id: &str,
) -> Result<EvalInputs, ()> {
    let group_keys = snapshot.group_keys(request.groups.as_ref());
    let groups: Vec<(i64, &str)> = group_keys.iter().map(|(i, k)| (*i, k.as_str())).collect();
    let project: ProjectId = snapshot.project.id;
    let anon = request.effective_anon_distinct_id();
    let store = &state.store;
    let lookup = async {
        if snapshot.uses_continuity() {
            if let Some(anon) = anon.filter(|a| *a != distinct_id) {
                let keys: Vec<&str> = snapshot
                    .compiled
                    .flags()
                    .iter()
                    .filter(|f| f.active() && f.ensure_experience_continuity())
                    .map(|f| f.key())
                    .collect();
                store
                    .insert_hash_key_overrides(project, &[distinct_id, anon], &keys, anon)
                    .await?;
            }
        }
        store
            .evaluation_inputs(
                project,
                distinct_id,
                &groups,
                snapshot.uses_continuity(),
                anon,
            )
            .await
    };
    match tokio::time::timeout(state.settings.eval_lookup_timeout, lookup).await {
        Ok(Ok(inputs)) => Ok(inputs),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, project = %project, "person lookup failed; evaluating on request data");
            Err(())
        }
        Err(_) => {
            tracing::warn!(project = %project, "person lookup timed out; evaluating on request data");
            Err(())
        }
    }
}

fn group_coverage<'r>(
    snapshot: &ProjectSnapshot,
    request: &'r FlagsRequest,
    index: i64,
) -> GroupCoverage<'r> {
    let Some(name) = snapshot.compiled.group_type(index) else {
        return GroupCoverage::NotInRequest;
    };
    let supplied = request
        .groups
        .as_ref()
        .and_then(|g| g.get(name))
        .is_some_and(|key| match key {
            Value::String(s) => !s.is_empty(),
            Value::Number(_) => true,
            _ => false,
        });
    if !supplied {
        return GroupCoverage::NotInRequest;
    }
    GroupCoverage::Properties(
        request
            .group_properties
            .as_ref()
            .and_then(|g| g.get(name))
            .and_then(Value::as_object),
    )
}

fn snapshot_config(snapshot: &ProjectSnapshot) -> vexil_wire::response::FullConfig {
    vexil_wire::response::FullConfig {
        has_feature_flags: snapshot.compiled.flags().iter().any(|f| f.active()),
        ..Default::default()
    }
}

/// The request id: a valid UUID from `X-Request-Id`, else a new v4.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
        .unwrap_or_else(uuid::Uuid::new_v4)
        .to_string()
}
