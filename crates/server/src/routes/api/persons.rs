//! `persons/` (spec §11): look a person up by distinct id, and delete one by uuid (the
//! right-to-be-forgotten path). Persons are written by capture, never through this API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use uuid::Uuid;
use vexil_store::Person;

use super::flag_view::timestamp;
use crate::error::ApiError;
use crate::extract::auth::ManagedProject;
use crate::extract::{Params, RawId};
use crate::response::json_response;
use crate::state::AppState;

/// A person in PostHog's shape. `name` is the `email` or `name` property, else the first
/// distinct id.
pub fn person_json(person: &Person) -> Value {
    let name = ["email", "name"]
        .iter()
        .find_map(|k| person.properties.get(*k).and_then(Value::as_str))
        .or_else(|| person.distinct_ids.first().map(String::as_str))
        .unwrap_or_default();
    json!({
        "id": person.uuid,
        "uuid": person.uuid,
        "name": name,
        "distinct_ids": person.distinct_ids,
        "properties": person.properties,
        "created_at": timestamp(person.created_at),
        "is_identified": person.is_identified,
    })
}

/// `GET persons/?distinct_id=X` → `{"results": [person], "next": null, "previous": null}`
/// (`results` empty when nobody has that id).
pub async fn list(
    State(state): State<AppState>,
    caller: ManagedProject,
    params: Params,
) -> Result<Response, ApiError> {
    let distinct_id = params.non_empty("distinct_id").ok_or_else(|| {
        ApiError::validation(
            "required",
            "Pass ?distinct_id= to look a person up (listing every person is not supported).",
        )
        .attr("distinct_id")
    })?;
    let person = state
        .store
        .get_person(caller.project.id, distinct_id)
        .await?;
    let results: Vec<Value> = person.iter().map(person_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"results": results, "next": null, "previous": null}),
    ))
}

/// `DELETE persons/{uuid}/`: 202 once the person, their distinct ids and hash-key overrides
/// are removed; 404 for an unknown uuid.
pub async fn delete(
    State(state): State<AppState>,
    caller: ManagedProject,
    RawId(id): RawId,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("Person");
    let uuid = Uuid::parse_str(id.trim()).map_err(|_| not_found())?;
    if state.store.delete_person(caller.project.id, uuid).await? {
        Ok(StatusCode::ACCEPTED.into_response())
    } else {
        Err(not_found())
    }
}
