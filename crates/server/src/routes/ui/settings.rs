//! A project's settings: its public token (with a copy button), rotation and revocation of its
//! secret and personal keys (a new value shown once; the old one refused at once, through the
//! store every credential check reads), and SDK snippets for posthog-js, posthog-python and
//! posthog-node with this server's address and the token filled in.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use vexil_store::{KeyKind, Project, ProjectId};

use super::super::api::keys::no_store;
use super::keys::secret_field;
use super::page::{see_other, Frame, UiError};
use super::session::{UiForm, Viewer};
use crate::state::AppState;

/// What a key action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Rotate,
    Revoke,
}

impl Action {
    fn parse(name: &str) -> Result<Action, UiError> {
        match name {
            "rotate" => Ok(Action::Rotate),
            "revoke" => Ok(Action::Revoke),
            _ => Err(UiError::NotFound),
        }
    }
}

fn kind(name: &str) -> Result<KeyKind, UiError> {
    KeyKind::from_name(name).ok_or(UiError::NotFound)
}

fn describe(kind: KeyKind) -> (&'static str, &'static str) {
    match kind {
        KeyKind::Secret => (
            "Project secret key",
            "Server SDKs use it for local evaluation (the definitions feed) and remote configuration.",
        ),
        KeyKind::Personal => (
            "Project personal key",
            "The project's own management-API key (from vexil project create). Users' own keys are under Personal API keys.",
        ),
    }
}

/// The address SDKs reach this server at, as the browser reached it.
fn host(headers: &HeaderMap) -> String {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost:8000");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// `GET /ui/projects/{project}/settings`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<i64>,
    headers: HeaderMap,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    Ok(render(&frame, &headers, None))
}

/// A key just issued by a rotation.
struct Issued {
    kind: KeyKind,
    value: String,
}

fn render(frame: &Frame, headers: &HeaderMap, issued: Option<&Issued>) -> Html<String> {
    let Some(project) = frame.current.as_ref() else {
        return frame.page("Settings", html! {});
    };
    let base = format!("/ui/projects/{}/settings", project.id);
    let body = html! {
        h1 { "Settings of " (project.name) }
        @if let Some(issued) = issued {
            div class="notice" role="status" id="issued-key" {
                h2 { (describe(issued.kind).0) " rotated" }
                p { "The old key is refused from now on. Copy the new one now: it is shown only once." }
                (secret_field("issued-key-value", "The new key", &issued.value))
            }
        }
        h2 { "Project token" }
        p { "Public: client SDKs send it with every request. It names the project and authorises nothing else." }
        div class="copy-row" {
            input id="project-token" readonly value=(project.api_token) aria-label="Project token" spellcheck="false";
            button type="button" class="secondary" data-copy="project-token" { "Copy" }
        }
        h2 { "Keys" }
        ul class="cards" {
            @for kind in KeyKind::ALL {
                @let (title, what) = describe(kind);
                li {
                    strong { (title) } " " code { (kind.prefix()) "…" }
                    p class="hint" { (what) }
                    a class="button secondary" href=(format!("{base}/keys/{kind}/rotate")) { "Rotate " (title.to_lowercase()) }
                    " "
                    a class="button secondary" href=(format!("{base}/keys/{kind}/revoke")) { "Revoke " (title.to_lowercase()) }
                }
            }
        }
        h2 { "Connect an SDK" }
        (snippets(project, &host(headers)))
    };
    frame.page("Project settings", body)
}

fn snippets(project: &Project, host: &str) -> Markup {
    let token = &project.api_token;
    let js = format!(
        "import posthog from 'posthog-js'\n\nposthog.init('{token}', {{\n    api_host: '{host}',\n}})\n\nif (posthog.isFeatureEnabled('my-flag')) {{\n    // …\n}}"
    );
    let python = format!(
        "from posthog import Posthog\n\nposthog = Posthog(\n    '{token}',\n    host='{host}',\n    # for local evaluation: the project secret key (phs_…) or a personal key\n    personal_api_key='phs_…',\n)\n\nposthog.feature_enabled('my-flag', 'user distinct id')"
    );
    let node = format!(
        "import {{ PostHog }} from 'posthog-node'\n\nconst client = new PostHog('{token}', {{\n    host: '{host}',\n    // for local evaluation: the project secret key (phs_…) or a personal key\n    personalApiKey: 'phs_…',\n}})\n\nawait client.isFeatureEnabled('my-flag', 'user distinct id')"
    );
    html! {
        @for (id, name, install, code) in [
            ("snippet-js", "posthog-js (browser)", "npm install posthog-js", js),
            ("snippet-python", "posthog-python", "pip install posthog", python),
            ("snippet-node", "posthog-node", "npm install posthog-node", node),
        ] {
            section class="snippet" aria-labelledby=(format!("{id}-title")) {
                h3 id=(format!("{id}-title")) { (name) }
                p { code { (install) } }
                pre id=(id) tabindex="0" aria-label=(format!("{name} example")) { code { (code) } }
                button type="button" class="secondary" data-copy=(id) { "Copy " (name) " example" }
            }
        }
    }
}

/// `GET …/settings/keys/{kind}/{rotate|revoke}`: the confirmation.
pub async fn confirm_key(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, kind_name, action)): Path<(i64, String, String)>,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    let (kind, action) = (kind(&kind_name)?, Action::parse(&action)?);
    let (title, what) = describe(kind);
    let verb = match action {
        Action::Rotate => "Rotate",
        Action::Revoke => "Revoke",
    };
    let consequence = match action {
        Action::Rotate => "A new key is issued and shown once; the current one is refused from the next request on, on every node. Update every SDK and tool that uses it.",
        Action::Revoke => "The current key is refused from the next request on, on every node, and no key replaces it until you rotate.",
    };
    let body = html! {
        h1 { (verb) " the " (title.to_lowercase()) "?" }
        p { (what) }
        p { (consequence) }
        form method="post" action=(format!("/ui/projects/{project}/settings/keys/{kind}/{}", verb.to_lowercase())) class="confirm" {
            (frame.csrf())
            button type="submit" class="danger" { (verb) " " (title.to_lowercase()) }
            a class="button secondary" href=(format!("/ui/projects/{project}/settings")) { "Cancel" }
        }
    };
    Ok(frame.page(&format!("{verb} key"), body))
}

/// `POST …/settings/keys/{kind}/{rotate|revoke}`.
pub async fn key_action(
    State(state): State<AppState>,
    Path((project, kind_name, action)): Path<(i64, String, String)>,
    headers: HeaderMap,
    form: UiForm,
) -> Result<Response, UiError> {
    let frame = Frame::load(&state, form.viewer, Some(ProjectId(project))).await?;
    let (kind, action) = (kind(&kind_name)?, Action::parse(&action)?);
    let id = frame.project()?.id;
    let by = frame.viewer.session.user.email.clone();
    match action {
        Action::Rotate => {
            let issued = state.store.rotate_key(id, kind).await?;
            tracing::info!(project = %id, kind = %kind, by = %by, "key rotated");
            let shown = Issued {
                kind,
                value: issued.key,
            };
            let page = render(&frame, &headers, Some(&shown));
            Ok(no_store((StatusCode::OK, page).into_response()))
        }
        Action::Revoke => {
            state.store.revoke_key(id, kind).await?;
            tracing::info!(project = %id, kind = %kind, by = %by, "key revoked");
            Ok(see_other(&format!("/ui/projects/{project}/settings")))
        }
    }
}
