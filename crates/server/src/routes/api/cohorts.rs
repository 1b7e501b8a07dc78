//! `cohorts/` (spec §10): list, create, retrieve, PATCH (soft delete with `{"deleted": true}`),
//! static member lists (CSV upload or `distinct_ids`) and `cohorts/{id}/persons/`.
//!
//! Every write holds the project's write lock and its committed result reloads the snapshot, so flags targeting the cohort
//! evaluate against the change immediately (a failed refresh is retried until it succeeds,
//! `AppState::stale`; the write runs to completion even if the client goes away).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Map, Value};
use vexil_engine::model::PropertyGroup;
use vexil_engine::rules::{self, StoredCohort};
use vexil_store::{Cohort, CohortUpdate, NewCohort, ProjectId};

use super::cohort_members::requested_members;
use super::flag_view::timestamp;
use super::keys::user_json;
use super::listing::all_cohorts;
use super::paging::{offset_envelope, offset_page, Links};
use super::persons::person_json;
use super::to_completion;
use crate::error::ApiError;
use crate::extract::auth::ManagedProject;
use crate::extract::{Fields, ItemId, Params, Payload};
use crate::response::json_response;
use crate::snapshot::ProjectWriter;
use crate::state::AppState;

fn not_found() -> ApiError {
    ApiError::not_found("Cohort")
}

fn has_behavioral(filters: &Value) -> bool {
    filters
        .get("properties")
        .and_then(|p| PropertyGroup::parse(p).ok())
        .is_some_and(|g| g.filters().iter().any(|f| f.kind() == "behavioral"))
}

/// PostHog's `cohort_type`: `static`, `behavioral` (any behavioural criterion) or
/// `person_property`.
pub fn cohort_type(cohort: &Cohort) -> &'static str {
    if cohort.is_static {
        "static"
    } else if has_behavioral(&cohort.filters) {
        "behavioral"
    } else {
        "person_property"
    }
}

/// The cohort object; `count` is the member count of a static cohort (null for dynamic ones,
/// whose membership is computed per person at evaluation time).
pub fn cohort_json(cohort: &Cohort, count: Option<u64>) -> Value {
    let cohort_type = cohort_type(cohort);
    json!({
        "id": cohort.id,
        "name": cohort.name,
        "description": cohort.description,
        "filters": cohort.filters,
        "groups": [],
        "query": null,
        "is_static": cohort.is_static,
        "cohort_type": cohort_type,
        "deleted": cohort.deleted,
        "count": count,
        "is_calculating": false,
        "errors_calculating": 0,
        "last_calculation": timestamp(cohort.updated_at),
        "created_at": timestamp(cohort.created_at),
        "created_by": cohort.created_by.as_deref().map(|a| user_json(cohort.project_id, a)),
        "version": cohort.version,
    })
}

async fn cohort_response(
    state: &AppState,
    status: StatusCode,
    cohort: &Cohort,
) -> Result<Response, ApiError> {
    let count = if cohort.is_static {
        Some(
            state
                .store
                .count_cohort_members(cohort.project_id, cohort.id)
                .await?,
        )
    } else {
        None
    };
    Ok(json_response(status, &cohort_json(cohort, count)))
}

/// The engine's write rules ([`rules::check_cohort`]) on `filters` written to cohort `id`
/// (`None` on create), against the project's stored cohorts.
async fn check_filters(
    state: &AppState,
    project: ProjectId,
    filters: &Value,
    id: Option<i64>,
) -> Result<(), ApiError> {
    let cohorts = all_cohorts(state, project).await?;
    let stored: Vec<StoredCohort<'_>> = cohorts
        .iter()
        .map(|c| StoredCohort {
            id: c.id,
            name: &c.name,
            filters: &c.filters,
            is_static: c.is_static,
        })
        .collect();
    Ok(rules::check_cohort(filters, id, &stored)?)
}

/// Reloads the project after a committed cohort write, then lets the next writer in. The write
/// stands either way; a failed reload marks the project stale and is retried until it succeeds.
async fn publish(state: &AppState, writer: ProjectWriter<'_>) {
    if let Err(e) = writer.reload().await {
        state.stale(writer.snapshot().project.id, &e);
    }
}

/// The `filters` of a request, which must be an object when present.
fn filters_field(fields: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    match fields.get("filters") {
        None | Some(Value::Null) => Ok(None),
        Some(f @ Value::Object(_)) => Ok(Some(f.clone())),
        Some(_) => Err(ApiError::invalid("Filters must be a JSON object.").attr("filters")),
    }
}

fn members_need_static() -> ApiError {
    ApiError::invalid("Only static cohorts (is_static: true) take a member list.").attr("is_static")
}

/// `GET cohorts/`: non-deleted cohorts, newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: ManagedProject,
    params: Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let project = caller.project.id;
    let page = offset_page(&params, 100);
    let listing = state.store.list_cohorts(project, page).await?;
    let mut results = Vec::with_capacity(listing.items.len());
    for cohort in &listing.items {
        let count = if cohort.is_static {
            Some(state.store.count_cohort_members(project, cohort.id).await?)
        } else {
            None
        };
        results.push(cohort_json(cohort, count));
    }
    let links = Links::new(&headers, &uri, &params);
    Ok(json_response(
        StatusCode::OK,
        &offset_envelope(results, listing.total, page, &links),
    ))
}

/// `POST cohorts/` (JSON, or multipart with a `csv` file for a static cohort).
pub async fn create(State(state): State<AppState>, body: Payload) -> Result<Response, ApiError> {
    to_completion(create_cohort(state, body)).await
}

async fn create_cohort(state: AppState, body: Payload) -> Result<Response, ApiError> {
    let project = body.project.project.id;
    let cohort = create_with(
        &state,
        project,
        &body.project.actor.label(),
        &body.fields,
        body.csv.as_deref(),
    )
    .await?;
    cohort_response(&state, StatusCode::CREATED, &cohort).await
}

/// Creates a cohort from the API's fields (and an uploaded member CSV): the one create path of
/// the API and the web UI. Holds the project's write lock and publishes the result.
pub async fn create_with(
    state: &AppState,
    project: ProjectId,
    actor: &str,
    fields: &Map<String, Value>,
    csv: Option<&[u8]>,
) -> Result<Cohort, ApiError> {
    let name = fields
        .string_field("name")?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::validation("required", "This field is required.").attr("name"))?;
    let members = requested_members(fields, csv)?;
    let is_static = fields.bool_field("is_static")?.unwrap_or(csv.is_some());
    if members.is_some() && !is_static {
        return Err(members_need_static());
    }
    let filters = filters_field(fields)?;
    if filters.is_none() && fields.get("groups").is_some_and(|g| !g.is_null()) {
        return Err(ApiError::invalid(
            "Legacy `groups` cohorts are not supported; describe the cohort with `filters`.",
        )
        .attr("groups"));
    }
    // A static cohort's filters are `{}`; the rules still count it against the project's limit.
    let filters = match filters {
        Some(f) if !is_static => f,
        _ => Value::Object(Map::new()),
    };
    // Held from the checks to the publication, as a flag write holds it: the snapshot moves
    // from one committed state to the next, and the write's own announcement finds it current.
    let writer = state.catalog.writer(state.store.as_ref(), project).await?;
    check_filters(state, project, &filters, None).await?;
    let new = NewCohort {
        name,
        description: fields.string_field("description")?.unwrap_or_default(),
        filters,
        is_static,
        created_by: Some(actor.to_owned()),
    };
    let cohort = state.store.create_cohort(project, &new).await?;
    let added = match &members {
        Some(members) => {
            state
                .store
                .add_cohort_members(project, cohort.id, members)
                .await
        }
        None => Ok(0),
    };
    // The cohort is committed even if its members are not: publish it before answering either way.
    publish(state, writer).await;
    added?;
    Ok(cohort)
}

/// `GET cohorts/{id}/`.
pub async fn retrieve(
    State(state): State<AppState>,
    caller: ManagedProject,
    ItemId(id): ItemId,
) -> Result<Response, ApiError> {
    let cohort = state
        .store
        .get_cohort(caller.project.id, id)
        .await?
        .ok_or_else(not_found)?;
    cohort_response(&state, StatusCode::OK, &cohort).await
}

/// `PATCH cohorts/{id}/`: name, description, filters (dynamic cohorts), `deleted`, `version`
/// (optimistic concurrency), and members to add (static cohorts).
pub async fn update(
    State(state): State<AppState>,
    ItemId(id): ItemId,
    body: Payload,
) -> Result<Response, ApiError> {
    to_completion(update_cohort(state, id, body)).await
}

async fn update_cohort(state: AppState, id: i64, body: Payload) -> Result<Response, ApiError> {
    let project = body.project.project.id;
    let cohort = update_with(&state, project, id, &body.fields, body.csv.as_deref()).await?;
    cohort_response(&state, StatusCode::OK, &cohort).await
}

/// Updates cohort `id` from the API's fields (and adds the members of an uploaded CSV): the
/// one update path of the API and the web UI.
pub async fn update_with(
    state: &AppState,
    project: ProjectId,
    id: i64,
    fields: &Map<String, Value>,
    csv: Option<&[u8]>,
) -> Result<Cohort, ApiError> {
    let before = state
        .store
        .get_cohort(project, id)
        .await?
        .ok_or_else(not_found)?;
    if let Some(is_static) = fields.bool_field("is_static")? {
        if is_static != before.is_static {
            return Err(
                ApiError::invalid("A cohort cannot change between static and dynamic.")
                    .attr("is_static"),
            );
        }
    }
    let members = requested_members(fields, csv)?;
    if members.is_some() && !before.is_static {
        return Err(members_need_static());
    }
    let filters = filters_field(fields)?;
    let writer = state.catalog.writer(state.store.as_ref(), project).await?;
    if fields.bool_field("deleted")? == Some(true) && !before.deleted {
        refuse_if_used(&writer, id)?;
    }
    if let Some(f) = &filters {
        if before.is_static {
            return Err(ApiError::invalid("Static cohorts have no filters.").attr("filters"));
        }
        check_filters(state, project, f, Some(id)).await?;
    }
    let update = CohortUpdate {
        name: fields.string_field("name")?,
        description: fields.string_field("description")?,
        filters,
        deleted: fields.bool_field("deleted")?,
    };
    let version = fields.int_field("version")?;
    let mut cohort = before;
    if update != CohortUpdate::default() || version.is_some() {
        cohort = state
            .store
            .update_cohort(project, id, &update, version)
            .await?;
    }
    let added = match &members {
        Some(members) => state.store.add_cohort_members(project, id, members).await,
        None => Ok(0),
    };
    // The update is committed even if the members are not: publish it before answering either way.
    publish(state, writer).await;
    added?;
    Ok(cohort)
}

/// A cohort live flags target cannot be deleted (PostHog refuses it too): the 409 names them.
/// Read from the snapshot, which the project's write lock (held) keeps equal to the store.
fn refuse_if_used(writer: &ProjectWriter<'_>, id: i64) -> Result<(), ApiError> {
    let snapshot = writer.snapshot();
    let users: Vec<&str> = snapshot
        .flags()
        .iter()
        .filter(|f| !f.deleted && vexil_store::feed_cohort_references(f).contains(&id))
        .map(|f| f.key.as_str())
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    Err(ApiError::conflict(format!(
        "This cohort is used by feature flags: {}. Remove it from their release conditions before deleting it.",
        users.join(", ")
    ))
    .attr("deleted"))
}

/// Removes distinct ids from static cohort `id`; returns how many were members. Held under
/// the project's write lock like every cohort write.
pub async fn remove_members_with(
    state: &AppState,
    project: ProjectId,
    id: i64,
    distinct_ids: &[String],
) -> Result<u64, ApiError> {
    let cohort = state
        .store
        .get_cohort(project, id)
        .await?
        .filter(|c| !c.deleted)
        .ok_or_else(not_found)?;
    if !cohort.is_static {
        return Err(members_need_static());
    }
    let writer = state.catalog.writer(state.store.as_ref(), project).await?;
    let removed = state
        .store
        .remove_cohort_members(project, id, distinct_ids)
        .await;
    publish(state, writer).await;
    Ok(removed?)
}

/// `GET cohorts/{id}/persons/`: a static cohort's members, as persons (a listed distinct id
/// that no person has yet shows as a person-less entry with just that id).
pub async fn persons(
    State(state): State<AppState>,
    caller: ManagedProject,
    ItemId(id): ItemId,
    params: Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let project = caller.project.id;
    let cohort = state
        .store
        .get_cohort(project, id)
        .await?
        .ok_or_else(not_found)?;
    if !cohort.is_static {
        return Err(ApiError::invalid(
            "Members can only be listed for static cohorts; dynamic cohorts are evaluated per person.",
        )
        .attr("is_static"));
    }
    let page = offset_page(&params, 100);
    let listing = state.store.cohort_members(project, id, page).await?;
    let mut results = Vec::with_capacity(listing.items.len());
    for distinct_id in &listing.items {
        results.push(match state.store.get_person(project, distinct_id).await? {
            Some(person) => person_json(&person),
            None => json!({
                "id": null, "uuid": null, "name": distinct_id, "distinct_ids": [distinct_id],
                "properties": {}, "created_at": null, "is_identified": false,
            }),
        });
    }
    let links = Links::new(&headers, &uri, &params);
    Ok(json_response(
        StatusCode::OK,
        &offset_envelope(results, listing.total, page, &links),
    ))
}
