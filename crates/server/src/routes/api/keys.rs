//! Who is calling (spec §12): `GET /api/personal_api_keys/@current` and `GET /api/users/@me/`,
//! which agent tools use to find their project, the user object shown as `created_by` /
//! `last_modified_by` / activity `user`, and a user's own keys in PostHog's
//! `/api/personal_api_keys/` shape (`POST` → the value once, `GET` → the list without values,
//! `DELETE {id}/` → revoked at once).
//!
//! A personal key is either a user's (created by its user, reaching the projects they belong
//! to) or a project's own (`vexil project create`): for the latter the "user" is that
//! project's key holder (id = project id, first name = the key's label). Organisations are not
//! modelled: each project's is a stable UUID derived from its id.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use uuid::Uuid;
use vexil_store::{Access, Actor, IssuedUserKey, ProjectId, User, UserId, UserKey};

use super::flag_view::timestamp;
use crate::error::ApiError;
use crate::extract::auth::{KeyHolder, ManagedProject};
use crate::response::json_response;
use crate::state::AppState;

/// The scopes a Vexil personal key carries: everything, on its own project.
const SCOPES: &[&str] = &["*"];

/// A UUID that is the same for the same `seed` in every process and version (FNV-1a, with
/// the version-4 bits set so strict UUID validators accept it).
fn stable_uuid(seed: &str) -> Uuid {
    let fnv = |offset: u64| {
        seed.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let high = fnv(0xcbf2_9ce4_8422_2325);
    let low = fnv(0x8422_2325_cbf2_9ce4);
    let bytes = ((u128::from(high) << 64) | u128::from(low)).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The organisation UUID of a project.
pub fn organization_id(project: ProjectId) -> Uuid {
    stable_uuid(&format!("vexil-organization-{project}"))
}

/// The user id shown for a project's key holder.
pub fn user_id(project: ProjectId) -> i64 {
    project.0
}

/// `{id, uuid, distinct_id, email, first_name}` for the holder of `project`'s key, named by the
/// key's `label`.
pub fn user_json(project: ProjectId, label: &str) -> Value {
    let uuid = stable_uuid(&format!("vexil-user-{project}"));
    json!({
        "id": user_id(project),
        "uuid": uuid,
        "distinct_id": uuid,
        "email": format!("project-{project}@vexil.invalid"),
        "first_name": label,
        "last_name": "",
    })
}

/// The user object of a Vexil user.
pub fn account_json(id: UserId, email: &str) -> Value {
    let uuid = stable_uuid(&format!("vexil-account-{id}"));
    json!({
        "id": id.0,
        "uuid": uuid,
        "distinct_id": uuid,
        "email": email,
        "first_name": email.split('@').next().unwrap_or_default(),
        "last_name": "",
    })
}

/// The user object of whoever made a change in `project`: the user (directly or through one
/// of their keys), or the project key's holder.
pub fn actor_json(project: ProjectId, actor: &Actor) -> Value {
    match actor.user() {
        Some((id, email)) => account_json(id, email),
        None => user_json(project, &actor.label()),
    }
}

/// The ids PostHog's `scoped_teams` lists: none (every project) for an administrator.
fn scoped_teams(access: &Access) -> Vec<i64> {
    match access {
        Access::Admin => Vec::new(),
        Access::Projects(ids) => ids.iter().map(|p| p.0).collect(),
    }
}

/// A user's key in PostHog's shape (`value` only when just created).
pub fn user_key_json(user: &User, key: &UserKey, value: Option<&str>) -> Value {
    let mut out = json!({
        "id": key.id,
        "label": key.label,
        "mask_value": key.mask,
        "created_at": timestamp(key.created_at),
        "last_used_at": key.last_used_at.map(timestamp),
        "last_rolled_at": null,
        "user_id": user.id.0,
        "scopes": SCOPES,
        "scoped_teams": scoped_teams(&user.access),
        "scoped_organizations": [],
    });
    if let (Some(value), Some(obj)) = (value, out.as_object_mut()) {
        obj.insert("value".into(), Value::String(value.to_owned()));
    }
    out
}

/// `GET /api/personal_api_keys/@current`.
pub async fn current_key(caller: ManagedProject) -> Response {
    let project = caller.project.id;
    if let KeyHolder::User(user, key) = &caller.holder {
        return json_response(StatusCode::OK, &user_key_json(user, key, None));
    }
    json_response(
        StatusCode::OK,
        &json!({
            "id": stable_uuid(&format!("vexil-key-{project}")),
            "label": caller.actor.label(),
            "scopes": SCOPES,
            "scoped_teams": [project.0],
            "scoped_organizations": [organization_id(project)],
            "created_at": caller.project.created_at,
            "last_used_at": null,
        }),
    )
}

/// `GET /api/users/@me/`: the key's user (a project key's holder), with the project as `team`.
pub async fn me(caller: ManagedProject) -> Response {
    let project = &caller.project;
    let organization = json!({"id": organization_id(project.id), "name": project.name});
    let mut user = match &caller.holder {
        KeyHolder::User(user, _) => account_json(user.id, &user.email),
        KeyHolder::Project(_) => user_json(project.id, &caller.actor.label()),
    };
    if let Some(obj) = user.as_object_mut() {
        obj.insert(
            "team".into(),
            json!({
                "id": project.id.0,
                "name": project.name,
                "organization": organization_id(project.id),
                "api_token": project.api_token,
            }),
        );
        obj.insert("organization".into(), organization.clone());
        obj.insert("organizations".into(), json!([organization]));
        obj.insert("scopes".into(), json!(SCOPES));
    }
    json_response(StatusCode::OK, &user)
}

/// A request to `/api/personal_api_keys/` by a user's key: a project's own key has no user
/// whose keys it could manage (403).
pub struct KeyOwner(pub User);

impl axum::extract::FromRequestParts<AppState> for KeyOwner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match KeyHolder::of(parts, state).await? {
            KeyHolder::User(user, _) => Ok(KeyOwner(user)),
            KeyHolder::Project(_) => Err(ApiError::forbidden(
                "This is a project's own key, not a user's: personal API keys are created and listed by their user (sign in to the web UI, or use one of your keys).",
            )),
        }
    }
}

/// A response that carries a key must not be kept by any cache.
pub fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Creates a key for `user` from a label: the one create path of the API and the web UI.
pub async fn create_for(
    state: &AppState,
    user: &User,
    label: &str,
) -> Result<IssuedUserKey, ApiError> {
    let issued = state.store.create_user_key(user.id, label).await?;
    tracing::info!(user = %user.id, key = issued.key.id, "personal key created");
    Ok(issued)
}

/// `GET /api/personal_api_keys/`: the caller's keys, newest first, without values.
pub async fn list_keys(
    State(state): State<AppState>,
    KeyOwner(user): KeyOwner,
) -> Result<Response, ApiError> {
    let keys = state.store.user_keys(user.id).await?;
    let items: Vec<Value> = keys.iter().map(|k| user_key_json(&user, k, None)).collect();
    Ok(json_response(StatusCode::OK, &items))
}

/// `POST /api/personal_api_keys/` with `{"label": …}` → 201 with the key's `value`, shown once.
pub async fn create_key(
    State(state): State<AppState>,
    KeyOwner(user): KeyOwner,
    body: Bytes,
) -> Result<Response, ApiError> {
    let fields: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::parse(format!("The body is not valid JSON: {e}")))?;
    let label = match fields.get("label") {
        Some(Value::String(label)) => label,
        None | Some(Value::Null) => {
            return Err(ApiError::validation("required", "This field is required.").attr("label"))
        }
        Some(_) => return Err(ApiError::invalid("label must be a string.").attr("label")),
    };
    if let Some(scopes) = fields.get("scopes").and_then(Value::as_array) {
        if scopes.iter().any(|s| s.as_str() != Some("*")) {
            return Err(ApiError::invalid(
                "Vexil keys carry every scope: send [\"*\"] or leave scopes out.",
            )
            .attr("scopes"));
        }
    }
    let issued = create_for(&state, &user, label).await?;
    Ok(no_store(json_response(
        StatusCode::CREATED,
        &user_key_json(&user, &issued.key, Some(&issued.value)),
    )))
}

fn key_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found("Personal API key"))
}

/// `GET /api/personal_api_keys/{id}/`.
pub async fn get_key(
    State(state): State<AppState>,
    KeyOwner(user): KeyOwner,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = key_id(&id)?;
    let keys = state.store.user_keys(user.id).await?;
    let key = keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::not_found("Personal API key"))?;
    Ok(json_response(
        StatusCode::OK,
        &user_key_json(&user, key, None),
    ))
}

/// `DELETE /api/personal_api_keys/{id}/` → 204; the key is refused from the next request on.
pub async fn delete_key(
    State(state): State<AppState>,
    KeyOwner(user): KeyOwner,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = key_id(&id)?;
    if !state.store.revoke_user_key(user.id, id).await? {
        return Err(ApiError::not_found("Personal API key"));
    }
    tracing::info!(user = %user.id, key = id, "personal key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_uuids_are_deterministic_v4() {
        let a = stable_uuid("x");
        assert_eq!(a, stable_uuid("x"));
        assert_ne!(a, stable_uuid("y"));
        assert_eq!(a.get_version_num(), 4);
    }
}
