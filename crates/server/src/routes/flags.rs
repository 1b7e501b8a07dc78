//! `/flags` and legacy `/decide` (spec §1): a POST is extracted into a [`FlagsCall`] (decoded
//! body, project by token), evaluated on the project's snapshot with whatever stored data it
//! needs, and projected into the requested response shape. `GET` answers the minimal response,
//! `HEAD` an empty 200, `OPTIONS` a 204.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use chrono::Utc;
use vexil_wire::request::FlagFilter;
use vexil_wire::response::{ConfigFields, Envelope, FlagsResponse};

use crate::access::LoggedProject;
use crate::cookieless::{Visitor, SENTINEL};
use crate::error::{refuse, ApiError};
use crate::evaluate::{stored_inputs, Stored};
use crate::extract::flags::{Client, FlagsCall, FlagsEndpoint};
use crate::response::{json_bytes, json_response};
use crate::state::AppState;

const ALLOW: &str = "GET, POST, OPTIONS, HEAD";

/// The methods of `/flags` and `/decide` (the path picks the response shapes).
pub fn methods() -> MethodRouter<AppState> {
    post(|State(state): State<AppState>, req: Request| serve(state, req))
        .get(minimal)
        .head(|| async { (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]) })
        .options(|| async { (StatusCode::NO_CONTENT, [(header::ALLOW, ALLOW)]) })
        .fallback(refuse(ALLOW, "Use POST to evaluate flags."))
}

/// `POST`: evaluate every flag the request may see. The connection calls this directly
/// ([`super::App`]); the router's `POST` route, for in-process callers, calls it too.
pub async fn serve(state: AppState, req: Request) -> Response {
    match FlagsCall::from_request(req, &state).await {
        Ok(call) => evaluate(&state, call).await,
        Err(refusal) => refusal.into_response(),
    }
}

async fn evaluate(state: &AppState, call: FlagsCall) -> Response {
    // Which runtime the client evaluates for matters only when a flag is limited to one.
    let limits_runtime = call.snapshot.compiled.limits_runtime();
    let detected_runtime = if limits_runtime && call.request.evaluation_runtime.is_none() {
        call.detected_runtime()
    } else {
        None
    };
    let FlagsCall {
        endpoint,
        mut request,
        snapshot,
        client,
    } = call;
    let now = state.settings.clock.now();
    let config = endpoint
        .effective
        .config
        .then(|| ConfigFields::Full(snapshot.remote_config()));
    let envelope = Envelope {
        request_id: Some(&endpoint.request_id),
        evaluated_at: Some(now.timestamp_millis()),
        config: config.as_ref(),
        ..Envelope::default()
    };
    if request.disable_flags {
        return json_response(
            StatusCode::OK,
            &FlagsResponse::empty(endpoint.shape, envelope),
        );
    }
    if request.distinct_id.as_deref() == Some(SENTINEL) {
        match cookieless_id(state, &endpoint, &request, &client, snapshot.project.id.0).await {
            Ok(id) => request.distinct_id = Some(id),
            Err(e) => return e.into_response(),
        }
    }
    if let (Some(geoip), Some(ip), false) =
        (&state.settings.geoip, client.address, request.geoip_disable)
    {
        geoip.enrich(&mut request.person_properties, ip);
    }
    let Some(distinct_id) = request.distinct_id.as_deref() else {
        return ApiError::invalid(
            "The distinct_id field is missing from the request. Please include a valid identifier.",
        )
        .attr("distinct_id")
        .into_response();
    };

    let stored = stored_inputs(state, &snapshot, &request, distinct_id, now).await;
    let filter = FlagFilter::with_detected(&request, &endpoint.query, detected_runtime);
    let filter = (limits_runtime || !filter.keeps_every_unlimited_flag()).then_some(&filter);
    let evaluation = snapshot.evaluate(&request, filter, &stored, now);
    state.metrics.count_evaluations(&snapshot, &evaluation);

    let response = FlagsResponse::from_results(
        endpoint.shape,
        &evaluation.flags,
        evaluation.errors_while_computing_flags || matches!(stored, Stored::Failed(_)),
        envelope,
    );
    // A v2 record is ~250 bytes; the direct writer skips serde's per-field work.
    let mut body = Vec::with_capacity(256 + 256 * evaluation.flags.len());
    match response.write_json(&mut body) {
        Ok(()) => {
            let mut response = json_bytes(body);
            response
                .extensions_mut()
                .insert(LoggedProject(snapshot.project.id));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            ApiError::internal().into_response()
        }
    }
}

/// The server-side distinct id of a cookieless visitor (PostHog's stateless
/// `cookieless_server_hash_mode`), from the address, headers and request fields.
async fn cookieless_id(
    state: &AppState,
    endpoint: &FlagsEndpoint,
    request: &vexil_wire::request::FlagsRequest,
    client: &Client,
    project: i64,
) -> Result<String, ApiError> {
    let Some(ip) = client.address else {
        return Err(ApiError::invalid("Cookieless mode needs the client's address.").attr("ip"));
    };
    let header = |v: &Option<axum::http::HeaderValue>| {
        v.as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (origin, user_agent) = (header(&client.origin), header(&client.user_agent));
    let visitor = Visitor {
        ip,
        origin: &origin,
        user_agent: &user_agent,
        timezone: request.timezone.as_deref(),
        hash_extra: request.cookieless_hash_extra.as_deref(),
        sent_at_ms: endpoint.query.sent_at,
    };
    state
        .salts
        .distinct_id(project, &visitor, state.settings.clock.now())
        .await
        .map_err(|e| ApiError::invalid(format!("{e}.")).attr(e.attr()))
}

/// `GET`: never evaluates; the empty-flags envelope with the minimal config.
async fn minimal(endpoint: FlagsEndpoint) -> Response {
    let config = ConfigFields::Minimal;
    let envelope = Envelope {
        request_id: Some(&endpoint.request_id),
        evaluated_at: Some(Utc::now().timestamp_millis()),
        config: Some(&config),
        ..Envelope::default()
    };
    json_response(
        StatusCode::OK,
        &FlagsResponse::empty(endpoint.shape, envelope),
    )
}
