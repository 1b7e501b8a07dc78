//! The management API (`/api/projects/{project_id}/…`, `/api/environments/{project_id}/…`):
//! PostHog-compatible flags, cohorts, persons, the flag activity log, "who am I" for agent
//! tools, rotation and revocation of the project's keys, and the OpenAPI document at
//! `/api/schema/`.
//!
//! Every route authenticates with the [`ManagedProject`](crate::extract::auth::ManagedProject)
//! extractor (a personal key, scoped to the `{project_id}` of the path), answers errors in
//! PostHog's JSON shape, and accepts its path with or without the trailing slash. One module per
//! resource; request plumbing and paging each have their own. Write rules are the engine's
//! (`vexil_engine::rules`), answered as 400s naming the field.

pub(super) mod activity;
pub(super) mod cohort_members;
pub(super) mod cohorts;
pub(super) mod credentials;
mod early_access;
pub(super) mod evaluation;
mod flag_calls;
pub(super) mod flag_input;
pub(super) mod flag_list;
pub(super) mod flag_view;
pub(super) mod flags;
pub(super) mod keys;
pub(super) mod listing;
mod paging;
pub(super) mod persons;
mod remote_config;
mod schema;

use std::future::Future;

use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::error::ApiError;
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
        "/api/personal_api_keys",
        get(keys::list_keys)
            .post(keys::create_key)
            .fallback(refuse("GET, POST, HEAD")),
    );
    router = both(
        router,
        "/api/personal_api_keys/{key_id}",
        get(keys::get_key)
            .delete(keys::delete_key)
            .fallback(refuse("GET, DELETE, HEAD")),
    );
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
            "/feature_flags/{id}/calls",
            get(flag_calls::flag_calls).fallback(refuse(read)),
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
        (
            "/early_access_feature",
            get(early_access::list)
                .post(early_access::create)
                .fallback(refuse("GET, POST, HEAD")),
        ),
        (
            "/early_access_feature/{id}",
            get(early_access::retrieve)
                .patch(early_access::update)
                .delete(early_access::delete)
                .fallback(refuse(early_access::ITEM_METHODS)),
        ),
        (
            "/keys/{kind}/rotate",
            post(credentials::rotate).fallback(refuse("POST")),
        ),
        (
            "/keys/{kind}/revoke",
            post(credentials::revoke).fallback(refuse("POST")),
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

/// The method fallback of a management route answering `allow`.
fn refuse(
    allow: &'static str,
) -> impl FnOnce() -> std::future::Ready<ApiError> + Clone + Send + Sync + 'static {
    crate::error::refuse(
        allow,
        format!("Method not allowed here (allowed: {allow})."),
    )
}

/// Runs a write — its commit and the publication to the project's snapshot — to completion
/// even if the client goes away meanwhile: a handler dropped between the two would leave a
/// committed change that never goes live.
pub(super) async fn to_completion<T: Send + 'static>(
    write: impl Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(write).await {
        Ok(answer) => answer,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(ApiError::unavailable("The server is shutting down.")),
    }
}
