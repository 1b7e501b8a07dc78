//! The flag activity log (spec §8): `feature_flags/{id}/activity/` and
//! `feature_flags/activity/`, paged by `limit` (default 10) and `page`, newest first. Each
//! stored entry keeps the whole flag before and after; the API shows the fields that changed.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};
use vexil_store::{ActivityAction, ActivityEntry, Listing, ProjectId};

use super::flag_view::timestamp;
use super::keys::actor_json;
use super::paging::{Links, NumberedPage};
use crate::error::ApiError;
use crate::extract::auth::ManagedProject;
use crate::extract::{ItemId, Params};
use crate::response::json_response;
use crate::state::AppState;

/// Flag fields whose changes the log shows: the editable ones (bookkeeping fields such as
/// `version` and `updated_at` change on every write and are left out).
const TRACKED: &[&str] = super::flag_input::EDITABLE;

/// `GET feature_flags/{id}/activity/`.
pub async fn flag_activity(
    State(state): State<AppState>,
    caller: ManagedProject,
    ItemId(id): ItemId,
    params: Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let project = caller.project.id;
    if state.store.get_flag(project, id).await?.is_none() {
        return Err(ApiError::not_found("Feature flag"));
    }
    page(&state, project, Some(id), &params, &headers, &uri).await
}

/// `GET feature_flags/activity/`.
pub async fn all_activity(
    State(state): State<AppState>,
    caller: ManagedProject,
    params: Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    page(&state, caller.project.id, None, &params, &headers, &uri).await
}

async fn page(
    state: &AppState,
    project: ProjectId,
    flag: Option<i64>,
    params: &Params,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ApiError> {
    let numbered = NumberedPage::from_params(params, 10);
    let listing = match numbered.window() {
        Some(window) => state.store.flag_activity(project, flag, window).await?,
        None => Listing {
            items: Vec::new(),
            total: state
                .store
                .flag_activity(project, flag, vexil_store::Page::new(1, 0))
                .await?
                .total,
        },
    };
    let results = listing.items.iter().map(entry_json).collect();
    let links = Links::new(headers, uri, params);
    Ok(json_response(
        StatusCode::OK,
        &numbered.envelope(results, listing.total, &links),
    ))
}

/// One entry in PostHog's activity-log shape.
pub fn entry_json(entry: &ActivityEntry) -> Value {
    let item_id = entry.flag_id.to_string();
    json!({
        "id": entry.id,
        "user": entry.actor.as_ref().map(|a| actor_json(entry.project_id, a)),
        // Vexil's addition: which key, if a user's key made the change.
        "actor": entry.actor,
        "activity": entry.action.as_str(),
        "scope": "FeatureFlag",
        "item_id": item_id,
        "detail": {
            "id": item_id,
            "name": entry.flag_key,
            "short_id": null,
            "type": null,
            "changes": changes(entry),
        },
        "created_at": timestamp(entry.at),
        "is_system": false,
    })
}

fn change(action: &str, field: Option<&str>, before: &Value, after: &Value) -> Value {
    json!({"type": "FeatureFlag", "action": action, "field": field, "before": before, "after": after})
}

/// The fields an entry changed, as PostHog lists them (`{type, action, field, before, after}`).
pub fn changes(entry: &ActivityEntry) -> Vec<Value> {
    let null = Value::Null;
    let after = entry.after.as_ref().unwrap_or(&null);
    let Some(before) = entry.before.as_ref() else {
        return vec![change("created", None, &null, after)];
    };
    TRACKED
        .iter()
        .filter_map(|field| {
            let b = before.get(*field).unwrap_or(&null);
            let a = after.get(*field).unwrap_or(&null);
            (a != b).then(|| {
                let action = if *field == "deleted" && entry.action == ActivityAction::Deleted {
                    "deleted"
                } else {
                    "changed"
                };
                change(action, Some(field), b, a)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_list_only_tracked_fields_that_differ() {
        let entry = ActivityEntry {
            id: 1,
            project_id: ProjectId(1),
            flag_id: 7,
            flag_key: "k".into(),
            action: ActivityAction::Deleted,
            actor: None,
            at: chrono::DateTime::UNIX_EPOCH,
            before: Some(json!({"name": "a", "deleted": false, "version": 1})),
            after: Some(json!({"name": "b", "deleted": true, "version": 2})),
        };
        let c = changes(&entry);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0]["field"], "name");
        assert_eq!(c[1]["action"], "deleted");
        assert_eq!(entry_json(&entry)["item_id"], "7");
    }
}
