//! `GET feature_flags/evaluation_reasons/?distinct_id=…&groups=<json>`: every flag's value and
//! reason for one person, evaluated on the project's snapshot by the same
//! [`ProjectSnapshot::evaluate`](crate::snapshot::ProjectSnapshot::evaluate) as `/flags`, with the
//! person's stored properties, static cohorts and groups.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use vexil_wire::request::FlagsRequest;

use crate::error::ApiError;
use crate::evaluate::{behavior_counts, Stored};
use crate::extract::auth::ManagedProject;
use crate::extract::Params;
use crate::response::json_response;
use crate::state::AppState;

/// Reason reported for inactive flags (the Django-era admin API's word).
const DISABLED: &str = "disabled";

/// `GET feature_flags/evaluation_reasons/`.
pub async fn evaluation_reasons(
    State(state): State<AppState>,
    caller: ManagedProject,
    params: Params,
) -> Result<Response, ApiError> {
    let distinct_id = params.non_empty("distinct_id").ok_or_else(|| {
        ApiError::validation("required", "The distinct_id query parameter is required.")
            .attr("distinct_id")
    })?;
    let groups: Map<String, Value> = match params.non_empty("groups") {
        None => Map::new(),
        Some(raw) => match serde_json::from_str(raw) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(ApiError::invalid(
                    "groups must be a JSON object of group type → group key.",
                )
                .attr("groups"))
            }
        },
    };
    let project = caller.project.id;
    let snapshot = state.snapshot(project).await?;
    let group_keys = snapshot.group_keys(Some(&groups));
    let lookup: Vec<(i64, &str)> = group_keys.iter().map(|(i, k)| (*i, k.as_str())).collect();
    let now = state.settings.clock.now();
    let counts = behavior_counts(&state, &snapshot, distinct_id, now)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, project = %project, "behavioural counts unavailable");
            ApiError::unavailable("Behavioural counts are unavailable; retry shortly.")
        })?;
    let inputs = state
        .store
        .evaluation_inputs(
            project,
            distinct_id,
            &lookup,
            snapshot.uses_continuity(),
            None,
        )
        .await?;
    let request = FlagsRequest {
        distinct_id: Some(distinct_id.to_owned()),
        groups: Some(groups),
        ..FlagsRequest::default()
    };
    let evaluation = snapshot.evaluate(&request, None, &Stored::Loaded(inputs, counts), now);

    let mut out = Map::new();
    for flag in snapshot.compiled.flags() {
        let entry = match evaluation.get(flag.key()) {
            Some(r) => json!({
                "value": r.value.to_json(),
                "evaluation": {
                    "reason": r.reason.code.as_str(),
                    "condition_index": r.reason.condition_index,
                    "description": r.reason.description(),
                },
            }),
            None => json!({
                "value": false,
                "evaluation": {"reason": DISABLED, "condition_index": null, "description": "Feature flag is disabled"},
            }),
        };
        out.insert(flag.key().to_owned(), entry);
    }
    Ok(json_response(StatusCode::OK, &out))
}
