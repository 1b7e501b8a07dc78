//! The management API (`/api/projects/{project_id}/…`, `/api/environments/{project_id}/…`):
//! PostHog-compatible flags, cohorts, persons, the flag activity log, "who am I" for agent
//! tools, and the OpenAPI document at `/api/schema/`.
//!
//! Every route authenticates with the [`ManagedProject`](crate::extract::auth::ManagedProject)
//! extractor (a personal key, scoped to the `{project_id}` of the path), answers errors in
//! PostHog's JSON shape, and accepts its path with or without the trailing slash. One module per
//! resource; request plumbing and paging each have their own. Write rules are the engine's
//! (`vexil_engine::rules`), answered as 400s naming the field.

mod activity;
mod cohort_members;
mod cohorts;
mod evaluation;
mod flag_input;
mod flag_list;
mod flag_view;
mod flags;
mod keys;
mod paging;
mod persons;
mod remote_config;
mod request;
mod schema;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use vexil_store::{FeatureFlag, FlagQuery, Page, ProjectId};

use crate::error::ApiError;
use crate::snapshot::ProjectSnapshot;
use crate::state::AppState;

/// The two mount points of every project-scoped route (PostHog serves both).
pub const PREFIXES: [&str; 2] = [
    "/api/projects/{project_id}",
    "/api/environments/{project_id}",
];

/// Management routes (merged into the main router).
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for prefix in PREFIXES {
        router = project_routes(router, prefix);
    }
    router = both(
        router,
        "/api/personal_api_keys/@current",
        get(keys::current_key).fallback(refuse("GET, HEAD")),
    );
    router = both(
        router,
        "/api/users/@me",
        get(keys::me).fallback(refuse("GET, HEAD")),
    );
    both(
        router,
        "/api/schema",
        get(schema::schema).fallback(refuse("GET, HEAD")),
    )
}

fn project_routes(router: Router<AppState>, prefix: &str) -> Router<AppState> {
    let read = "GET, HEAD";
    let routes: Vec<(&str, MethodRouter<AppState>)> = vec![
        (
            "/feature_flags",
            get(flags::list)
                .post(flags::create)
                .fallback(refuse("GET, POST, HEAD")),
        ),
        (
            "/feature_flags/activity",
            get(activity::all_activity).fallback(refuse(read)),
        ),
        (
            "/feature_flags/evaluation_reasons",
            get(evaluation::evaluation_reasons).fallback(refuse(read)),
        ),
        (
            "/feature_flags/bulk_keys",
            post(flags::bulk_keys).fallback(refuse("POST")),
        ),
        (
            "/feature_flags/local_evaluation",
            get(flags::local_evaluation).fallback(refuse(read)),
        ),
        (
            "/feature_flags/{id}",
            get(flags::retrieve)
                .patch(flags::update)
                .put(flags::replace)
                .delete(flags::delete)
                .fallback(refuse(flags::ITEM_METHODS)),
        ),
        (
            "/feature_flags/{id}/activity",
            get(activity::flag_activity).fallback(refuse(read)),
        ),
        (
            "/feature_flags/{id}/remote_config",
            get(remote_config::remote_config).fallback(refuse(read)),
        ),
        (
            "/feature_flags/{id}/dependent_flags",
            get(flags::dependent_flags).fallback(refuse(read)),
        ),
        (
            "/cohorts",
            get(cohorts::list)
                .post(cohorts::create)
                .fallback(refuse("GET, POST, HEAD")),
        ),
        (
            "/cohorts/{id}",
            get(cohorts::retrieve)
                .patch(cohorts::update)
                .fallback(refuse("GET, PATCH, HEAD")),
        ),
        (
            "/cohorts/{id}/persons",
            get(cohorts::persons).fallback(refuse(read)),
        ),
        ("/persons", get(persons::list).fallback(refuse(read))),
        (
            "/persons/{id}",
            axum::routing::delete(persons::delete).fallback(refuse("DELETE")),
        ),
    ];
    routes.into_iter().fold(router, |router, (path, methods)| {
        both(router, &format!("{prefix}{path}"), methods)
    })
}

/// Registers `path` and `path/`.
fn both(router: Router<AppState>, path: &str, methods: MethodRouter<AppState>) -> Router<AppState> {
    router
        .route(path, methods.clone())
        .route(&format!("{path}/"), methods)
}

/// A method fallback: 405 in the JSON error shape with the route's `Allow` header.
fn refuse(
    allow: &'static str,
) -> impl FnOnce() -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move || {
        let mut response =
            ApiError::method_not_allowed(format!("Method not allowed here (allowed: {allow})."))
                .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        std::future::ready(response)
    }
}

/// The project's compiled snapshot, loading it if this process has not yet.
async fn snapshot(state: &AppState, project: ProjectId) -> Result<Arc<ProjectSnapshot>, ApiError> {
    if let Some(s) = state.catalog.by_id(project) {
        return Ok(s);
    }
    state.catalog.refresh(state.store.as_ref(), project).await?;
    state
        .catalog
        .by_id(project)
        .ok_or_else(|| ApiError::unavailable("Flag definitions are not loaded yet; retry shortly."))
}

/// Recompiles the project's snapshot after a committed write. The write stands either way; a
/// failed refresh is logged (the next successful one catches up).
async fn refresh(state: &AppState, project: ProjectId) {
    if let Err(e) = state.catalog.refresh(state.store.as_ref(), project).await {
        tracing::error!(error = %e, project = %project, "snapshot refresh after a write failed");
    }
}

/// Every non-deleted cohort of the project (static ones included).
async fn all_cohorts(
    state: &AppState,
    project: ProjectId,
) -> Result<Vec<vexil_store::Cohort>, ApiError> {
    Ok(state
        .store
        .list_cohorts(project, Page::new(u32::MAX, 0))
        .await?
        .items)
}

/// Every non-deleted flag of the project.
async fn all_flags(state: &AppState, project: ProjectId) -> Result<Vec<FeatureFlag>, ApiError> {
    let query = FlagQuery {
        page: Page::new(u32::MAX, 0),
        ..FlagQuery::default()
    };
    Ok(state.store.list_flags(project, &query).await?.items)
}
