//! `early_access_feature/`: PostHog's early access features — list, create, retrieve, update
//! (PATCH) and delete — each linked to one feature flag.
//!
//! As PostHog does, the linked flag carries the enrollment gate while the feature is in an
//! active stage (alpha, beta, general availability): `filters.feature_enrollment: true`, which
//! the engine answers from the person property `$feature_enrollment/<flag key>` that posthog-js
//! sets with `updateEarlyAccessFeatureEnrollment`. Creating a feature without `feature_flag_id`
//! creates its flag (key slugified from the name, rolled out to nobody but the enrolled);
//! leaving the active stages, or deleting the feature, removes the gate; moving to general
//! availability with `rollout_to_all: true` rolls the flag out to everyone. Every flag change
//! goes through the flag API's own write path ([`flags::create_with`], [`flags::update_with`]):
//! versioned, logged, checked and published like any edit.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use vexil_store::{
    EarlyAccessFeature, EarlyAccessFeatureUpdate, EarlyAccessStage, FeatureFlag,
    NewEarlyAccessFeature, ProjectId, StoreError,
};

use super::flag_input;
use super::flag_view::{flag_json, timestamp};
use super::flags;
use super::to_completion;
use crate::error::ApiError;
use crate::extract::auth::ManagedProject;
use crate::extract::{Payload, RawId};
use crate::response::json_response;
use crate::state::AppState;

/// The `Allow` header of `early_access_feature/{id}/`.
pub const ITEM_METHODS: &str = "GET, PATCH, DELETE, HEAD, OPTIONS";

/// PostHog's longest name and documentation URL.
const MAX_NAME_CHARS: usize = 200;
const MAX_URL_CHARS: usize = 800;

fn not_found() -> ApiError {
    ApiError::not_found("Early access feature")
}

/// The feature in PostHog's `EarlyAccessFeatureSerializer` shape, its flag in full.
fn feature_json(feature: &EarlyAccessFeature, flag: Option<&FeatureFlag>) -> Value {
    json!({
        "id": feature.id,
        "feature_flag": flag.map(|f| flag_json(f, None, chrono::Utc::now())),
        "name": feature.name,
        "description": feature.description,
        "stage": feature.stage.as_str(),
        "documentation_url": feature.documentation_url,
        "payload": feature.payload,
        "created_at": timestamp(feature.created_at),
        "created_by": null,
        "assignee": null,
        "user_access_level": "editor",
    })
}

async fn feature_response(
    state: &AppState,
    status: StatusCode,
    project: ProjectId,
    feature: &EarlyAccessFeature,
) -> Result<Response, ApiError> {
    let flag = state.store.get_flag(project, feature.flag_id).await?;
    Ok(json_response(status, &feature_json(feature, flag.as_ref())))
}

fn feature_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw.trim()).map_err(|_| not_found())
}

/// `GET early_access_feature/`: every feature of the project, oldest first, in PostHog's
/// paginated envelope (one page).
pub async fn list(
    State(state): State<AppState>,
    caller: ManagedProject,
) -> Result<Response, ApiError> {
    let project = caller.project.id;
    let features = state.store.early_access_features(project).await?;
    let mut results = Vec::with_capacity(features.len());
    for feature in &features {
        let flag = state.store.get_flag(project, feature.flag_id).await?;
        results.push(feature_json(feature, flag.as_ref()));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"count": results.len(), "next": null, "previous": null, "results": results}),
    ))
}

/// `GET early_access_feature/{id}/`.
pub async fn retrieve(
    State(state): State<AppState>,
    caller: ManagedProject,
    RawId(id): RawId,
) -> Result<Response, ApiError> {
    let project = caller.project.id;
    let feature = state
        .store
        .early_access_feature(project, feature_id(&id)?)
        .await?
        .ok_or_else(not_found)?;
    feature_response(&state, StatusCode::OK, project, &feature).await
}

/// The writable fields of a create or an update, checked; `None` where the body is silent.
#[derive(Debug, Default)]
struct FeatureFields {
    update: EarlyAccessFeatureUpdate,
    feature_flag_id: Option<i64>,
    rollout_to_all: bool,
}

fn text_field(
    fields: &Map<String, Value>,
    name: &'static str,
    max_chars: Option<usize>,
    allow_blank: bool,
) -> Result<Option<String>, ApiError> {
    let Some(value) = fields.get(name) else {
        return Ok(None);
    };
    let Some(text) = value.as_str() else {
        return Err(ApiError::validation("invalid", "Not a valid string.").attr(name));
    };
    if !allow_blank && text.trim().is_empty() {
        return Err(ApiError::validation("blank", "This field may not be blank.").attr(name));
    }
    if let Some(max) = max_chars {
        if text.chars().count() > max {
            return Err(ApiError::validation(
                "max_length",
                format!("Ensure this field has no more than {max} characters."),
            )
            .attr(name));
        }
    }
    Ok(Some(text.to_owned()))
}

fn parse_fields(fields: &Map<String, Value>, creating: bool) -> Result<FeatureFields, ApiError> {
    let required =
        |name: &'static str| ApiError::validation("required", "This field is required.").attr(name);
    let name = text_field(fields, "name", Some(MAX_NAME_CHARS), false)?;
    let description = text_field(fields, "description", None, true)?;
    let documentation_url = text_field(fields, "documentation_url", Some(MAX_URL_CHARS), true)?;
    if let Some(url) = documentation_url.as_deref().filter(|u| !u.is_empty()) {
        let valid = url::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !valid {
            return Err(
                ApiError::validation("invalid", "Enter a valid URL.").attr("documentation_url")
            );
        }
    }
    let stage = match fields.get("stage") {
        None => None,
        Some(Value::String(s)) => Some(
            s.parse::<EarlyAccessStage>()
                .map_err(|e| ApiError::validation("invalid_choice", e.to_string()).attr("stage"))?,
        ),
        Some(_) => {
            return Err(ApiError::validation("invalid_choice", "Not a valid choice.").attr("stage"))
        }
    };
    let payload = match fields.get("payload") {
        None => None,
        // PostHog stores a falsy payload as `{}`.
        Some(Value::Null) => Some(json!({})),
        Some(Value::Object(o)) => Some(Value::Object(o.clone())),
        Some(_) => {
            return Err(
                ApiError::validation("invalid", "The payload must be a JSON object.")
                    .attr("payload"),
            )
        }
    };
    let feature_flag_id = match fields.get("feature_flag_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            ApiError::validation("invalid", "A valid integer is required.").attr("feature_flag_id")
        })?),
    };
    let rollout_to_all = match fields.get("rollout_to_all") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(
                ApiError::validation("invalid", "Must be a valid boolean.").attr("rollout_to_all")
            )
        }
    };
    if creating {
        if name.is_none() {
            return Err(required("name"));
        }
        if stage.is_none() {
            return Err(required("stage"));
        }
    }
    Ok(FeatureFields {
        update: EarlyAccessFeatureUpdate {
            name,
            description,
            stage,
            documentation_url,
            payload,
        },
        feature_flag_id,
        rollout_to_all,
    })
}

/// Django's `slugify`: lowercase ASCII letters, digits, `_` and `-`; runs of spaces and
/// hyphens become one `-`; leading and trailing `-`/`_` dropped.
fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '_' {
            slug.push(c);
        } else if (c == '-' || c.is_whitespace()) && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches(|c| c == '-' || c == '_').to_owned()
}

/// The flag's filters with the enrollment gate set (`Some(true)`) or removed (`None`), and the
/// legacy `super_groups` dropped, as PostHog's `_set_enrollment_filters` does.
fn enrollment_filters(filters: &Value, enrolled: Option<bool>) -> Value {
    let mut filters = filters.as_object().cloned().unwrap_or_default();
    filters.remove("super_groups");
    match enrolled {
        Some(on) => filters.insert("feature_enrollment".into(), Value::Bool(on)),
        None => filters.remove("feature_enrollment"),
    };
    Value::Object(filters)
}

/// Writes `filters` to flag `id` through the flag API's update path.
async fn write_filters(
    state: &AppState,
    caller: &ManagedProject,
    id: i64,
    filters: Value,
) -> Result<FeatureFlag, ApiError> {
    let mut fields = Map::new();
    fields.insert("filters".into(), filters);
    let write = flag_input::parse(&fields, false)?;
    flags::update_with(state, caller.project.id, &caller.actor, id, &write, &fields).await
}

/// A flag that can be linked: exists, not deleted, person-based, not multivariate, and not
/// linked to another feature (PostHog's checks, answered as 400s naming `feature_flag_id`).
async fn linkable_flag(
    state: &AppState,
    project: ProjectId,
    id: i64,
) -> Result<FeatureFlag, ApiError> {
    let invalid =
        |detail: String| ApiError::validation("invalid_input", detail).attr("feature_flag_id");
    let flag = state
        .store
        .get_flag(project, id)
        .await?
        .filter(|f| !f.deleted)
        .ok_or_else(|| invalid("Feature Flag with this ID does not exist".into()))?;
    let linked = state.store.early_access_features(project).await?;
    if linked.iter().any(|f| f.flag_id == id) {
        return Err(invalid(format!(
            "Linked feature flag {} already has a feature attached to it.",
            flag.key
        )));
    }
    if !flag
        .filters
        .get("aggregation_group_type_index")
        .is_none_or(Value::is_null)
    {
        return Err(invalid(
            "Group-based feature flags are not supported for Early Access Features.".into(),
        ));
    }
    let variants = flag
        .filters
        .pointer("/multivariate/variants")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if variants > 0 {
        return Err(invalid(
            "Multivariate feature flags are not supported for Early Access Features.".into(),
        ));
    }
    Ok(flag)
}

/// `POST early_access_feature/`.
pub async fn create(State(state): State<AppState>, body: Payload) -> Result<Response, ApiError> {
    let fields = parse_fields(&body.fields, true)?;
    to_completion(async move { create_feature(&state, &body.project, fields).await }).await
}

async fn create_feature(
    state: &AppState,
    caller: &ManagedProject,
    fields: FeatureFields,
) -> Result<Response, ApiError> {
    let project = caller.project.id;
    let update = fields.update;
    let (Some(name), Some(stage)) = (update.name, update.stage) else {
        return Err(ApiError::invalid("name and stage are required"));
    };
    let flag = match fields.feature_flag_id {
        Some(id) => {
            let flag = linkable_flag(state, project, id).await?;
            if stage.is_active() {
                write_filters(
                    state,
                    caller,
                    id,
                    enrollment_filters(&flag.filters, Some(true)),
                )
                .await?
            } else {
                flag
            }
        }
        None => {
            let key = slugify(&name);
            if key.is_empty() {
                return Err(ApiError::validation(
                    "invalid_input",
                    "The name must contain a letter or digit: the feature's flag key is made from it.",
                )
                .attr("name"));
            }
            let mut filters = json!({
                "groups": [{"properties": [], "rollout_percentage": 0, "variant": null}],
            });
            if stage.is_active() {
                filters["feature_enrollment"] = Value::Bool(true);
            }
            let mut flag_fields = Map::new();
            flag_fields.insert("key".into(), Value::String(key));
            flag_fields.insert(
                "name".into(),
                Value::String(format!("Feature Flag for Early Access Feature {name}")),
            );
            flag_fields.insert("filters".into(), filters);
            flags::create_with(state, project, &caller.actor, &flag_fields).await?
        }
    };
    let new = NewEarlyAccessFeature {
        flag_id: flag.id,
        name,
        description: update.description.unwrap_or_default(),
        stage,
        documentation_url: update.documentation_url.unwrap_or_default(),
        payload: update.payload.unwrap_or_else(|| json!({})),
    };
    let feature = state
        .store
        .create_early_access_feature(project, &new)
        .await
        .map_err(|e| match e {
            StoreError::Duplicate { .. } => ApiError::validation(
                "invalid_input",
                format!(
                    "Linked feature flag {} already has a feature attached to it.",
                    flag.key
                ),
            )
            .attr("feature_flag_id"),
            other => other.into(),
        })?;
    feature_response(state, StatusCode::CREATED, project, &feature).await
}

/// `PATCH early_access_feature/{id}/`.
pub async fn update(
    State(state): State<AppState>,
    RawId(id): RawId,
    body: Payload,
) -> Result<Response, ApiError> {
    let id = feature_id(&id)?;
    let fields = parse_fields(&body.fields, false)?;
    to_completion(async move { update_feature(&state, &body.project, id, fields).await }).await
}

async fn update_feature(
    state: &AppState,
    caller: &ManagedProject,
    id: Uuid,
    fields: FeatureFields,
) -> Result<Response, ApiError> {
    let project = caller.project.id;
    let stored = state
        .store
        .early_access_feature(project, id)
        .await?
        .ok_or_else(not_found)?;
    if let Some(stage) = fields.update.stage {
        // The flag first, as PostHog does: a refused flag write leaves the feature unchanged.
        let flag = state.store.get_flag(project, stored.flag_id).await?;
        if let Some(flag) = flag.filter(|f| !f.deleted) {
            let filters = if stage != stored.stage
                && stage == EarlyAccessStage::GeneralAvailability
                && fields.rollout_to_all
            {
                let mut filters = enrollment_filters(&flag.filters, None);
                filters["groups"] = json!([{"properties": [], "rollout_percentage": 100}]);
                Some(filters)
            } else if !stored.stage.is_active() && stage.is_active() {
                Some(enrollment_filters(&flag.filters, Some(true)))
            } else if !stage.is_active() {
                Some(enrollment_filters(&flag.filters, None))
            } else {
                None
            };
            if let Some(filters) = filters.filter(|f| *f != flag.filters) {
                write_filters(state, caller, flag.id, filters).await?;
            }
        }
    }
    let feature = state
        .store
        .update_early_access_feature(project, id, &fields.update)
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => not_found(),
            other => other.into(),
        })?;
    feature_response(state, StatusCode::OK, project, &feature).await
}

/// `DELETE early_access_feature/{id}/`: removes the enrollment gate from the flag (which stays),
/// then the feature; 204.
pub async fn delete(
    State(state): State<AppState>,
    caller: ManagedProject,
    RawId(id): RawId,
) -> Result<Response, ApiError> {
    let id = feature_id(&id)?;
    to_completion(async move {
        let project = caller.project.id;
        let stored = state
            .store
            .early_access_feature(project, id)
            .await?
            .ok_or_else(not_found)?;
        if let Some(flag) = state
            .store
            .get_flag(project, stored.flag_id)
            .await?
            .filter(|f| !f.deleted)
        {
            let filters = enrollment_filters(&flag.filters, None);
            if filters != flag.filters {
                write_filters(&state, &caller, flag.id, filters).await?;
            }
        }
        if !state.store.delete_early_access_feature(project, id).await? {
            return Err(not_found());
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_as_django_does() {
        assert_eq!(slugify("New Dashboard UI"), "new-dashboard-ui");
        assert_eq!(slugify("  Beta -- v2! "), "beta-v2");
        assert_eq!(slugify("snake_case ok"), "snake_case-ok");
        assert_eq!(slugify("¡¿?!"), "");
    }

    #[test]
    fn enrollment_gate_is_set_and_removed_with_super_groups() {
        let filters = json!({"groups": [], "super_groups": [{"properties": []}]});
        assert_eq!(
            enrollment_filters(&filters, Some(true)),
            json!({"groups": [], "feature_enrollment": true})
        );
        assert_eq!(
            enrollment_filters(&json!({"groups": [], "feature_enrollment": true}), None),
            json!({"groups": []})
        );
    }
}
