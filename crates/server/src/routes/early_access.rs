//! `GET /api/early_access_features/?token=…[&stage=…]`: the public list posthog-js's
//! `getEarlyAccessFeatures` reads, in PostHog's `MinimalEarlyAccessFeatureSerializer` shape
//! (`{"earlyAccessFeatures": [{id, name, description, stage, documentationUrl, flagKey,
//! payload, assignee}]}`). Authorised by the project token alone, open to every origin; the
//! stages default to `beta`, as PostHog's do. An unknown stage name is a 400 naming it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, MethodRouter};
use serde_json::{json, Value};
use vexil_store::EarlyAccessStage;

use crate::error::{refuse, ApiError};
use crate::extract::Params;
use crate::overload::Bucket;
use crate::response::json_response;
use crate::state::AppState;

/// The route's methods.
pub fn methods() -> MethodRouter<AppState> {
    get(list).fallback(refuse(
        "GET, HEAD, OPTIONS",
        "Use GET to list early access features.",
    ))
}

async fn list(State(state): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let token = params
        .non_empty("token")
        .or_else(|| params.non_empty("api_key"))
        .ok_or_else(|| {
            ApiError::not_authenticated(
                "Project token not provided. Pass it as the token query parameter.",
            )
        })?;
    let snapshot = state
        .catalog
        .by_token(token)
        .ok_or_else(|| ApiError::authentication_failed("Project token invalid."))?;
    let project = snapshot.project.id;
    state.overload.check(Bucket::Evaluation, project).await?;
    let mut stages = Vec::new();
    for (name, value) in &params.0 {
        if name == "stage" {
            let stage = value
                .parse::<EarlyAccessStage>()
                .map_err(|e| ApiError::validation("invalid_choice", e.to_string()).attr("stage"))?;
            stages.push(stage);
        }
    }
    if stages.is_empty() {
        stages.push(EarlyAccessStage::Beta);
    }
    let features: Vec<Value> = state
        .store
        .early_access_features(project)
        .await?
        .into_iter()
        .filter(|f| stages.contains(&f.stage))
        .map(|f| {
            json!({
                "id": f.id,
                "name": f.name,
                "description": f.description,
                "stage": f.stage.as_str(),
                "documentationUrl": f.documentation_url,
                "flagKey": f.flag_key,
                "payload": f.payload,
                "assignee": null,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"earlyAccessFeatures": features}),
    ))
}
