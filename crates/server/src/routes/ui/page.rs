//! The page shell (header, project switcher, sign-out) every page is rendered in, and the UI's
//! one error type, answered as an HTML page (or a redirect to the sign-in page).

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use vexil_store::{Access, FeatureFlag, Project, ProjectId, StoreError};

use super::assets;
use super::session::{Viewer, CSRF_FIELD};
use crate::error::ApiError;
use crate::state::AppState;

/// What can stop a page.
#[derive(Debug)]
pub enum UiError {
    /// No live session: go to the sign-in page.
    SignIn,
    /// A form without the session's CSRF token.
    Csrf,
    /// An unreadable form.
    BadForm(&'static str),
    /// Not there, or not the viewer's to see (the same answer, so ids reveal nothing).
    NotFound,
    /// A failure of the shared API code, shown with its status and sentence.
    Api(ApiError),
}

impl From<StoreError> for UiError {
    fn from(e: StoreError) -> Self {
        UiError::Api(e.into())
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        UiError::Api(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, detail) = match self {
            UiError::SignIn => return see_other("/ui/signin"),
            UiError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form did not carry a valid security token (CSRF). Reload the page and submit it again.".to_owned(),
            ),
            UiError::BadForm(detail) => (StatusCode::BAD_REQUEST, "Bad form", detail.to_owned()),
            UiError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it belongs to a project you are not a member of.".to_owned(),
            ),
            UiError::Api(e) => (e.status, "Something went wrong", e.detail),
        };
        let body = shell(
            title,
            None,
            html! {
                h1 { (title) }
                p role="alert" { (detail) }
                p { a href="/ui/" { "Back to the flags" } }
            },
        );
        (status, Html(body.into_string())).into_response()
    }
}

/// A `303 See Other` to `location` (after a form post, or to the sign-in page).
pub fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}

/// What the header shows: the viewer, their projects and the current one.
#[derive(Debug)]
pub struct Frame {
    /// The signed-in user.
    pub viewer: Viewer,
    /// The projects the viewer sees.
    pub projects: Vec<Project>,
    /// The project the page is about.
    pub current: Option<Project>,
}

impl Frame {
    /// The viewer's frame, with `project` as the current one: [`UiError::NotFound`] when the
    /// viewer does not belong to it.
    pub async fn load(
        state: &AppState,
        viewer: Viewer,
        project: Option<ProjectId>,
    ) -> Result<Frame, UiError> {
        let projects = visible_projects(state, &viewer.session.user.access).await?;
        let current = match project {
            None => None,
            Some(id) => Some(
                projects
                    .iter()
                    .find(|p| p.id == id)
                    .cloned()
                    .ok_or(UiError::NotFound)?,
            ),
        };
        Ok(Frame {
            viewer,
            projects,
            current,
        })
    }

    /// The viewer's frame in `project` and that project's flag `id`: [`UiError::NotFound`]
    /// when the viewer does not belong to the project or the flag is absent or deleted.
    pub async fn load_with_flag(
        state: &AppState,
        viewer: Viewer,
        project: ProjectId,
        id: i64,
    ) -> Result<(Frame, FeatureFlag), UiError> {
        let frame = Frame::load(state, viewer, Some(project)).await?;
        let flag = state
            .store
            .get_flag(project, id)
            .await?
            .filter(|f| !f.deleted)
            .ok_or(UiError::NotFound)?;
        Ok((frame, flag))
    }

    /// The current project (pages that have one).
    pub fn project(&self) -> Result<&Project, UiError> {
        self.current.as_ref().ok_or(UiError::NotFound)
    }

    /// The session's CSRF token, for forms.
    pub fn csrf(&self) -> Markup {
        csrf_input(&self.viewer.session.csrf_token)
    }

    /// A page with the header.
    pub fn page(&self, title: &str, body: Markup) -> Html<String> {
        Html(shell(title, Some(self), body).into_string())
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_input(token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(token); }
}

/// The projects `access` covers, oldest first.
pub async fn visible_projects(state: &AppState, access: &Access) -> Result<Vec<Project>, UiError> {
    let all = state.store.list_projects().await?;
    Ok(all.into_iter().filter(|p| access.allows(p.id)).collect())
}

/// The HTML document: head with the embedded stylesheet and script, the header when signed in.
pub fn shell(title: &str, frame: Option<&Frame>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Vexil" }
                // No favicon request (and no 404 for it).
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(assets::STYLE_PATH);
                script src=(assets::SCRIPT_PATH) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                @if let Some(frame) = frame {
                    (header(frame))
                }
                main id="main" { (body) }
            }
        }
    }
}

/// The current project's sections.
fn sections(project: ProjectId) -> Markup {
    html! {
        nav aria-label="Sections" {
            ul class="sections" {
                @for (path, label) in [("flags", "Flags"), ("cohorts", "Cohorts"), ("persons", "Persons"), ("activity", "Activity"), ("settings", "Settings")] {
                    li { a href=(format!("/ui/projects/{}/{path}", project.0)) { (label) } }
                }
            }
        }
    }
}

/// The viewer's own pages.
fn account_nav() -> Markup {
    html! {
        nav aria-label="Account" {
            ul class="sections" {
                li { a href="/ui/keys" { "API keys" } }
            }
        }
    }
}

fn header(frame: &Frame) -> Markup {
    html! {
        header class="top" {
            a class="brand" href="/ui/" { "Vexil" }
            nav aria-label="Projects" {
                ul class="projects" {
                    @for p in &frame.projects {
                        @let here = frame.current.as_ref().is_some_and(|c| c.id == p.id);
                        li {
                            a href=(format!("/ui/projects/{}/flags", p.id))
                                aria-current=[here.then_some("page")] { (p.name) }
                        }
                    }
                }
            }
            @if let Some(current) = &frame.current {
                (sections(current.id))
            }
            (account_nav())
            form class="signout" method="post" action="/ui/signout" {
                (frame.csrf())
                span class="who" { (frame.viewer.session.user.email) }
                button type="submit" { "Sign out" }
            }
        }
    }
}
