//! `feature_flags/`: list, create, retrieve, update (PATCH/PUT), the refused DELETE, and the
//! small collection routes (`bulk_keys`, `local_evaluation`, `{id}/dependent_flags`).
//!
//! A write is one store transaction (the version rule and every write rule run inside it,
//! against the project's snapshot, under the project's write lock), then the written row is
//! applied to the snapshot before answering, so `/flags` sees the change immediately.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Map, Value};
use vexil_engine::rules::{self, FlagWrite as RuleWrite, Stored};
use vexil_store::{Actor, FeatureFlag, FlagQuery, Page, ProjectId, StoreError};

use super::flag_input::{self, FlagWrite};
use super::flag_list::ListQuery;
use super::flag_view::{flag_json, FlagStatus};
use super::paging::{offset_envelope, offset_page, Links};
use super::to_completion;
use crate::error::ApiError;
use crate::extract::auth::ManagedProject;
use crate::extract::{ItemId, Params, Payload};
use crate::response::json_response;
use crate::snapshot::{ProjectSnapshot, ProjectWriter};
use crate::state::AppState;

/// The `Allow` header of `feature_flags/{id}/`.
pub const ITEM_METHODS: &str = "GET, PATCH, PUT, HEAD, OPTIONS";

fn not_found() -> ApiError {
    ApiError::not_found("Feature flag")
}

/// Store errors in the flag API's words.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Duplicate { .. } => {
            ApiError::validation("unique", "There is already a feature flag with this key.")
                .attr("key")
        }
        StoreError::NotFound { .. } => not_found(),
        other => other.into(),
    }
}

/// When each flag was last called: evaluated by a server (as of the nodes' last usage
/// write, [`crate::usage`]) or reported by `$feature_flag_called`, whichever is later.
pub async fn last_called(
    state: &AppState,
    project: ProjectId,
) -> Result<std::collections::HashMap<String, chrono::DateTime<Utc>>, ApiError> {
    let (mut calls, evaluations) = tokio::try_join!(
        state.store.last_flag_calls(project),
        state.store.last_flag_evaluations(project),
    )?;
    for (key, at) in evaluations {
        let last = calls.entry(key).or_insert(at);
        *last = (*last).max(at);
    }
    Ok(calls)
}

async fn flag_response(
    state: &AppState,
    status: StatusCode,
    flag: &FeatureFlag,
) -> Result<Response, ApiError> {
    let calls = last_called(state, flag.project_id).await?;
    let body = flag_json(flag, calls.get(&flag.key).copied(), Utc::now());
    Ok(json_response(status, &body))
}

/// The engine's write rules ([`rules::check_flag`]) on `candidate`, against the project as
/// the snapshot holds it (which the project's write lock keeps equal to the store's).
fn check(
    snapshot: &ProjectSnapshot,
    candidate: &FeatureFlag,
    before: Option<&FeatureFlag>,
    filters_sent: bool,
) -> Result<(), ApiError> {
    // PostHog's invariant: only remote-configuration flags have encrypted payloads (a plain
    // flag marked so would vanish from `/flags` and the feed).
    if candidate.has_encrypted_payloads && !candidate.is_remote_configuration {
        return Err(ApiError::validation(
            "invalid_input",
            "Only remote configuration flags can have encrypted payloads.",
        )
        .attr("has_encrypted_payloads"));
    }
    let flag = candidate.definition();
    let before = before.map(FeatureFlag::definition);
    let write = RuleWrite {
        flag: &flag,
        before: before.as_ref(),
        filters_sent,
    };
    let stored = Stored {
        flags: snapshot.flags(),
        cohorts: snapshot.cohort_ids(),
    };
    Ok(rules::check_flag(&write, &stored)?)
}

fn duplicate_key() -> ApiError {
    store_error(StoreError::Duplicate { field: "key" })
}

/// Publishes a committed row to the project's snapshot. The write stands either way; a failed
/// reload marks the project stale and is retried until it succeeds ([`AppState::stale`]).
async fn publish(state: &AppState, writer: &ProjectWriter<'_>, flag: &FeatureFlag) {
    if let Err(e) = writer.apply(flag).await {
        state.stale(flag.project_id, &e);
    }
}

/// `GET feature_flags/`.
pub async fn list(
    State(state): State<AppState>,
    caller: ManagedProject,
    params: Params,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let query = ListQuery::parse(&params)?;
    let page = offset_page(&params, 100);
    let now = Utc::now();
    let selected = select(&state, caller.project.id, &query, page, now).await?;
    let results = selected
        .flags
        .iter()
        .map(|f| flag_json(f, selected.calls.get(&f.key).copied(), now))
        .collect();
    let links = Links::new(&headers, &uri, &params);
    Ok(json_response(
        StatusCode::OK,
        &offset_envelope(results, selected.total, page, &links),
    ))
}

/// One page of a flag list, with what it was selected on.
pub struct Selected {
    /// The page's flags.
    pub flags: Vec<FeatureFlag>,
    /// How many flags match in all.
    pub total: u64,
    /// When each flag key was last called ([`last_called`]).
    pub calls: std::collections::HashMap<String, chrono::DateTime<Utc>>,
}

/// The flags of `project` matching `query`, in its order, one `page` of them: the list of the
/// API and of the web UI. The store filters, orders and pages; the filters it cannot apply run
/// here over its ordered list. For `STALE`, only the flags the store's ages show unused for
/// the stale period are read (the rest cannot be stale), then tested whole.
pub async fn select(
    state: &AppState,
    project: ProjectId,
    query: &ListQuery,
    page: Page,
    now: chrono::DateTime<Utc>,
) -> Result<Selected, ApiError> {
    let calls = last_called(state, project).await?;
    let ids = if query.stale() {
        let ages = state.store.flag_ages(project).await?;
        Some(
            ages.into_iter()
                .filter(|f| FlagStatus::unused(f.created_at, calls.get(&f.key).copied(), now))
                .map(|f| f.id)
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    let store_query = |page| FlagQuery {
        search: query.search.clone(),
        active: query.store_active(),
        ids: ids.clone(),
        order: query.order,
        page,
    };
    let (flags, total) = if query.store_only() {
        let listing = state.store.list_flags(project, &store_query(page)).await?;
        (listing.items, listing.total)
    } else {
        let all = state
            .store
            .list_flags(project, &store_query(Page::new(u32::MAX, 0)))
            .await?
            .items;
        let kept: Vec<FeatureFlag> = all
            .into_iter()
            .filter(|f| query.keeps(f, calls.get(&f.key).copied(), now))
            .collect();
        let total = kept.len() as u64;
        let window = kept
            .into_iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .collect();
        (window, total)
    };
    Ok(Selected {
        flags,
        total,
        calls,
    })
}

/// `POST feature_flags/`.
pub async fn create(State(state): State<AppState>, body: Payload) -> Result<Response, ApiError> {
    to_completion(create_flag(state, body)).await
}

async fn create_flag(state: AppState, body: Payload) -> Result<Response, ApiError> {
    let flag = create_with(
        &state,
        body.project.project.id,
        &body.project.actor,
        &body.fields,
    )
    .await?;
    flag_response(&state, StatusCode::CREATED, &flag).await
}

/// Creates a flag from the API's fields (`key`, `name`, `filters`, `active`, …) on behalf of
/// `actor`: the one create path of the API and the web UI, with every write rule. Run it
/// through [`to_completion`].
pub async fn create_with(
    state: &AppState,
    project: ProjectId,
    actor: &Actor,
    fields: &Map<String, Value>,
) -> Result<FeatureFlag, ApiError> {
    let new = flag_input::parse(fields, true)?.into_new(actor)?;
    let writer = state.catalog.writer(state.store.as_ref(), project).await?;
    let snapshot = writer.snapshot();
    let check = |_: Option<&FeatureFlag>, candidate: &FeatureFlag| {
        if snapshot.flag_by_key(&candidate.key).is_some() {
            return Err(duplicate_key().rejection());
        }
        check(&snapshot, candidate, None, true).map_err(ApiError::rejection)
    };
    let flag = state
        .store
        .create_flag_checked(project, &new, &check)
        .await
        .map_err(store_error)?;
    publish(state, &writer, &flag).await;
    Ok(flag)
}

/// `GET feature_flags/{id}/` (deleted flags too: they keep their row).
pub async fn retrieve(
    State(state): State<AppState>,
    caller: ManagedProject,
    ItemId(id): ItemId,
) -> Result<Response, ApiError> {
    let flag = state
        .store
        .get_flag(caller.project.id, id)
        .await?
        .ok_or_else(not_found)?;
    flag_response(&state, StatusCode::OK, &flag).await
}

/// `PATCH feature_flags/{id}/`.
pub async fn update(
    State(state): State<AppState>,
    ItemId(id): ItemId,
    body: Payload,
) -> Result<Response, ApiError> {
    let write = flag_input::parse(&body.fields, false)?;
    to_completion(async move { apply_update(&state, &body, id, &write).await }).await
}

/// `PUT feature_flags/{id}/`: as PATCH, with `key` required.
pub async fn replace(
    State(state): State<AppState>,
    ItemId(id): ItemId,
    body: Payload,
) -> Result<Response, ApiError> {
    let write = flag_input::parse(&body.fields, false)?;
    if write.update.key.is_none() {
        return Err(ApiError::validation("required", "This field is required.").attr("key"));
    }
    to_completion(async move { apply_update(&state, &body, id, &write).await }).await
}

async fn apply_update(
    state: &AppState,
    body: &Payload,
    id: i64,
    write: &FlagWrite,
) -> Result<Response, ApiError> {
    let project = body.project.project.id;
    let after = update_with(state, project, &body.project.actor, id, write, &body.fields).await?;
    flag_response(state, StatusCode::OK, &after).await
}

/// Applies `write` (parsed from `fields` by [`flag_input::parse`]) to flag `id` on behalf of
/// `actor`: the one update path of the API and the web UI — the version rule (409), key
/// uniqueness and every write rule, in the store's transaction, then the publication. Run it
/// through [`to_completion`].
pub async fn update_with(
    state: &AppState,
    project: ProjectId,
    actor: &Actor,
    id: i64,
    write: &FlagWrite,
    fields: &Map<String, Value>,
) -> Result<FeatureFlag, ApiError> {
    let writer = state.catalog.writer(state.store.as_ref(), project).await?;
    let snapshot = writer.snapshot();
    // Runs inside the store's transaction, on the row as stored: no other write can come in
    // between, so a write without `version` always applies to the latest row.
    let check = |before: Option<&FeatureFlag>, candidate: &FeatureFlag| {
        let Some(before) = before else {
            return Ok(());
        };
        if write.version.is_some_and(|v| v != before.version) {
            let stored_json = flag_json(before, None, Utc::now());
            if let Some(conflict) = write.version_conflict(before, &stored_json, fields) {
                return Err(conflict.rejection());
            }
        }
        if candidate.key != before.key && !candidate.deleted {
            if let Some(other) = snapshot.flag_by_key(&candidate.key) {
                if other.id != id {
                    return Err(duplicate_key().rejection());
                }
            }
        }
        let filters_sent = write.update.filters.is_some();
        check(&snapshot, candidate, Some(before), filters_sent).map_err(ApiError::rejection)
    };
    let after = state
        .store
        .update_flag_checked(project, id, &write.update, Some(actor), &check)
        .await
        .map_err(store_error)?;
    publish(state, &writer, &after).await;
    Ok(after)
}

/// `DELETE feature_flags/{id}/`: refused (PostHog forbids hard deletes); soft-delete with
/// `PATCH {"deleted": true}`.
pub async fn delete() -> ApiError {
    ApiError::method_not_allowed(
        ITEM_METHODS,
        "Feature flags cannot be deleted with DELETE. Soft-delete with PATCH {\"deleted\": true} instead.",
    )
}

/// `GET feature_flags/{id}/dependent_flags/`: active flags that depend on this one.
pub async fn dependent_flags(
    State(state): State<AppState>,
    caller: ManagedProject,
    ItemId(id): ItemId,
) -> Result<Response, ApiError> {
    let project = caller.project.id;
    state
        .store
        .get_flag(project, id)
        .await?
        .ok_or_else(not_found)?;
    let snapshot = state.snapshot(project).await?;
    let dependents: Vec<Value> = rules::dependents(id, snapshot.flags())
        .iter()
        .map(|f| json!({"id": f.id, "key": f.key, "name": f.name.as_deref().unwrap_or_default()}))
        .collect();
    Ok(json_response(StatusCode::OK, &dependents))
}

/// `POST feature_flags/bulk_keys/` with `{"ids": [..]}` → `{"keys": {"<id>": "<key>"}}` for the
/// project's non-deleted flags among them.
pub async fn bulk_keys(State(state): State<AppState>, body: Payload) -> Result<Response, ApiError> {
    let bad_ids = || ApiError::invalid("ids must be a list of flag ids.").attr("ids");
    let ids: Vec<i64> = match body.fields.get("ids") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(bad_ids)?,
        None | Some(Value::Null) => {
            return Err(ApiError::validation("required", "This field is required.").attr("ids"))
        }
        Some(_) => return Err(bad_ids()),
    };
    let project = body.project.project.id;
    let mut keys = Map::new();
    for id in ids {
        if let Some(flag) = state.store.get_flag(project, id).await? {
            if !flag.deleted {
                keys.insert(id.to_string(), Value::String(flag.key));
            }
        }
    }
    Ok(json_response(StatusCode::OK, &json!({"keys": keys})))
}

/// `GET feature_flags/local_evaluation/`: the project's definitions feed (as
/// `/flags/definitions` serves it).
pub async fn local_evaluation(
    State(state): State<AppState>,
    caller: ManagedProject,
) -> Result<Response, ApiError> {
    let snapshot = state.snapshot(caller.project.id).await?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        snapshot.definitions_body(),
    )
        .into_response())
}
