//! Who is calling (spec §12): `GET /api/personal_api_keys/@current` and `GET /api/users/@me/`,
//! which agent tools use to find their project, and the user object shown as `created_by` /
//! `last_modified_by` / activity `user`.
//!
//! Vexil has no users or organisations: a personal key belongs to one project, so the "user"
//! is that project's key holder (id = project id, first name = the key's label) and the
//! "organisation" is a stable UUID derived from the project id.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use uuid::Uuid;
use vexil_store::ProjectId;

use crate::extract::auth::ManagedProject;
use crate::response::json_response;

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

/// `GET /api/personal_api_keys/@current`.
pub async fn current_key(caller: ManagedProject) -> Response {
    let project = caller.project.id;
    json_response(
        StatusCode::OK,
        &json!({
            "id": stable_uuid(&format!("vexil-key-{project}")),
            "label": caller.actor,
            "scopes": SCOPES,
            "scoped_teams": [project.0],
            "scoped_organizations": [organization_id(project)],
            "created_at": caller.project.created_at,
            "last_used_at": null,
        }),
    )
}

/// `GET /api/users/@me/`.
pub async fn me(caller: ManagedProject) -> Response {
    let project = &caller.project;
    let organization = json!({"id": organization_id(project.id), "name": project.name});
    let mut user = user_json(project.id, &caller.actor);
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
