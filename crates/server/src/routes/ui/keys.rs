//! The signed-in user's personal API keys: create (the value shown once), list (label, mask,
//! created, last used) and revoke (after a confirmation). The same store calls as the API's
//! `/api/personal_api_keys/`; a revoked key is refused from the next request on every node.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use vexil_store::{Access, UserKey};

use super::super::api::keys::{create_for, no_store};
use super::page::{see_other, Frame, UiError};
use super::session::{UiForm, Viewer};
use crate::state::AppState;

const BASE: &str = "/ui/keys";

/// `GET /ui/keys`.
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, None).await?;
    render(&state, &frame, None, None).await
}

/// `POST /ui/keys` (`label`): creates a key and shows its value, once.
pub async fn create(State(state): State<AppState>, form: UiForm) -> Result<Response, UiError> {
    let frame = Frame::load(&state, form.viewer, None).await?;
    let label = form.fields.text("label");
    match create_for(&state, &frame.viewer.session.user, label).await {
        Ok(issued) => {
            let shown = Shown {
                label: issued.key.label.clone(),
                value: issued.value,
            };
            let page = render(&state, &frame, Some(&shown), None).await?;
            Ok(no_store((StatusCode::CREATED, page).into_response()))
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let page = render(&state, &frame, None, Some(&e.detail)).await?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(UiError::Api(e)),
    }
}

/// `GET /ui/keys/{id}/revoke`: the confirmation.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, None).await?;
    let key = own_key(&state, &frame, id).await?;
    let body = html! {
        h1 { "Revoke the key " q { (key.label) } "?" }
        p { "Requests with " code { (key.mask) } " are refused from the next one on, on every node. This cannot be undone: create a new key if you need one." }
        form method="post" action=(format!("{BASE}/{id}/revoke")) class="confirm" {
            (frame.csrf())
            button type="submit" class="danger" { "Revoke " (key.label) }
            a class="button secondary" href=(BASE) { "Cancel" }
        }
    };
    Ok(frame.page("Revoke key", body))
}

/// `POST /ui/keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: UiForm,
) -> Result<Response, UiError> {
    let user = form.viewer.session.user.id;
    if !state.store.revoke_user_key(user, id).await? {
        return Err(UiError::NotFound);
    }
    tracing::info!(user = %user, key = id, "personal key revoked");
    Ok(see_other(BASE))
}

async fn own_key(state: &AppState, frame: &Frame, id: i64) -> Result<UserKey, UiError> {
    state
        .store
        .user_keys(frame.viewer.session.user.id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(UiError::NotFound)
}

/// A key just created.
struct Shown {
    label: String,
    value: String,
}

async fn render(
    state: &AppState,
    frame: &Frame,
    shown: Option<&Shown>,
    error: Option<&str>,
) -> Result<Html<String>, UiError> {
    let user = &frame.viewer.session.user;
    let keys = state
        .store
        .user_keys(user.id)
        .await
        .map_err(UiError::from)?;
    let reach = match &user.access {
        Access::Admin => "every project (you are an administrator)".to_owned(),
        Access::Projects(_) => {
            let names: Vec<&str> = frame.projects.iter().map(|p| p.name.as_str()).collect();
            if names.is_empty() {
                "no project yet".to_owned()
            } else {
                names.join(", ")
            }
        }
    };
    let body = html! {
        h1 { "Personal API keys" }
        p { "A key acts as you in the management API (" code { "Authorization: Bearer phx_…" } ") and the local-evaluation feed, and reaches " (reach) ". Changes made with it are logged under your name and the key's label." }
        @if let Some(shown) = shown {
            div class="notice" role="status" id="new-key" {
                h2 { "Key " q { (shown.label) } " created" }
                p { "Copy it now: it is shown only once." }
                (secret_field("new-key-value", "Your new key", &shown.value))
            }
        }
        h2 { "Create a key" }
        @if let Some(message) = error {
            p class="error" role="alert" id="label-error" { (message) }
        }
        form method="post" action=(BASE) class="row" {
            (frame.csrf())
            div {
                label for="label" { "Label" }
                input id="label" name="label" required maxlength="40" autocomplete="off"
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "label-error")];
            }
            div { button type="submit" { "Create key" } }
        }
        h2 { "Your keys" }
        @if keys.is_empty() {
            p { "You have no keys." }
        } @else {
            ul class="cards" aria-label="Your keys" {
                @for key in &keys {
                    li {
                        strong { (key.label) } " " code { (key.mask) }
                        p class="hint" {
                            "Created " (when(key.created_at)) " · "
                            @match key.last_used_at {
                                Some(at) => { "last used " (when(at)) }
                                None => { "never used" }
                            }
                        }
                        a class="button secondary" href=(format!("{BASE}/{}/revoke", key.id))
                            aria-label=(format!("Revoke {}", key.label)) { "Revoke" }
                    }
                }
            }
        }
    };
    Ok(frame.page("Personal API keys", body))
}

/// A read-only field holding a secret just issued, with a copy button.
pub fn secret_field(id: &str, label: &str, value: &str) -> Markup {
    html! {
        label for=(id) { (label) }
        div class="copy-row" {
            input id=(id) readonly value=(value) autocomplete="off" spellcheck="false" class="secret";
            button type="button" class="secondary" data-copy=(id) { "Copy" }
        }
    }
}

/// A timestamp for people, in a `<time>` element carrying the exact value.
pub fn when(at: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) }
    }
}
