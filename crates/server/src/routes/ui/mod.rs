//! The web UI, served at `/ui/` (and `/` redirects there) by the same process as the APIs:
//! server-rendered HTML (maud templates, checked at compile time and escaped by default), one
//! embedded stylesheet and one small script, no external requests. Pages work without
//! JavaScript; the script only adds the live variant sum and the JSON checks of the editor.
//!
//! Every page needs a signed-in user ([`session::Viewer`]); every form carries the session's
//! CSRF token ([`session::UiForm`]); a user sees only the projects they belong to. Writes go
//! through the management API's own write path (`api::flags::create_with` / `update_with`):
//! the same rules, the same 400s naming the field and 409s on stale versions, and the activity
//! log names the user.

mod activity;
mod assets;
mod cohorts;
mod conditions;
mod edit;
mod editor;
mod flags;
mod keys;
mod locality;
mod page;
mod persons;
mod release;
mod session;
mod settings;
mod signin;
mod suggest;
mod test_user;
mod usage;

use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// The UI's routes (merged into the main router).
pub fn router() -> Router<AppState> {
    let flag = "/ui/projects/{project}/flags/{id}";
    Router::new()
        .route("/", get(|| async { page::see_other("/ui/") }))
        .route("/ui", get(|| async { page::see_other("/ui/") }))
        .route("/ui/", get(signin::home))
        .route("/ui/signin", get(signin::form).post(signin::submit))
        .route("/ui/signout", axum::routing::post(signin::signout))
        .route("/ui/assets/{name}", get(assets::asset))
        .route("/ui/projects/{project}/flags", get(flags::list))
        .route(
            "/ui/projects/{project}/flags/new",
            get(editor::new_form).post(editor::create),
        )
        .route(flag, get(flags::detail))
        .route(
            &format!("{flag}/disable"),
            get(flags::confirm_disable).post(flags::disable),
        )
        .route(
            &format!("{flag}/enable"),
            axum::routing::post(flags::enable),
        )
        .route(&format!("{flag}/edit"), get(edit::form).post(edit::save))
        .merge(data_routes())
        .merge(admin_routes())
}

/// Cohorts and persons.
fn data_routes() -> Router<AppState> {
    let cohort = "/ui/projects/{project}/cohorts/{id}";
    Router::new()
        .route("/ui/projects/{project}/cohorts", get(cohorts::list))
        .route(
            "/ui/projects/{project}/cohorts/new",
            get(cohorts::new_form).post(cohorts::create),
        )
        .route(cohort, get(cohorts::detail).post(cohorts::save))
        .route(
            &format!("{cohort}/members"),
            axum::routing::post(cohorts::add_members),
        )
        .route(
            &format!("{cohort}/members/remove"),
            axum::routing::post(cohorts::remove_member),
        )
        .route(
            &format!("{cohort}/delete"),
            get(cohorts::confirm_delete).post(cohorts::delete),
        )
        .route("/ui/projects/{project}/persons", get(persons::find))
        .route("/ui/projects/{project}/persons/view", get(persons::view))
}

/// Personal keys, the activity log and revert, project settings.
fn admin_routes() -> Router<AppState> {
    let project = "/ui/projects/{project}";
    Router::new()
        .route("/ui/keys", get(keys::list).post(keys::create))
        .route(
            "/ui/keys/{id}/revoke",
            get(keys::confirm_revoke).post(keys::revoke),
        )
        .route(&format!("{project}/activity"), get(activity::project_log))
        .route(
            &format!("{project}/flags/{{id}}/activity"),
            get(activity::flag_log),
        )
        .route(
            &format!("{project}/activity/{{entry}}/revert"),
            get(activity::confirm_revert).post(activity::revert),
        )
        .route(&format!("{project}/settings"), get(settings::page))
        .route(
            &format!("{project}/settings/keys/{{kind}}/{{action}}"),
            get(settings::confirm_key).post(settings::key_action),
        )
}
