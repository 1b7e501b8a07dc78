//! The activity log in the UI: per project and per flag, newest first, paged by keyset (an
//! entry id as the cursor, so a deep page costs what the first does); each entry with
//! who (the user, and which of their keys) and when, the changed fields before and after, and
//! a one-click revert (confirmed, CSRF-checked) that writes a *new* version restoring the
//! entry's "before" through the API's update path — so a flag changed since the entry is the
//! 409 view, and the revert is itself logged.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{Map, Value};
use vexil_store::{ActivityAction, ActivityCursor, ActivityEntry, Actor, ProjectId};

use super::super::api::activity::changes;
use super::super::api::flag_input::{self, EDITABLE};
use super::super::api::flags::update_with;
use super::super::api::to_completion;
use super::keys::when;
use super::page::{see_other, Frame, UiError};
use super::session::{UiForm, Viewer};
use crate::extract::Params;
use crate::state::AppState;

/// Entries per page.
pub const PAGE_SIZE: u32 = 20;

/// `GET /ui/projects/{project}/activity?before=|after=`.
pub async fn project_log(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<i64>,
    params: Params,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    log_page(&state, &frame, None, &params).await
}

/// `GET /ui/projects/{project}/flags/{id}/activity?before=|after=`.
pub async fn flag_log(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, id)): Path<(i64, i64)>,
    params: Params,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    let flag = state
        .store
        .get_flag(ProjectId(project), id)
        .await?
        .ok_or(UiError::NotFound)?;
    log_page(&state, &frame, Some((id, flag.key)), &params).await
}

async fn log_page(
    state: &AppState,
    frame: &Frame,
    flag: Option<(i64, String)>,
    params: &Params,
) -> Result<Html<String>, UiError> {
    let project = frame.project()?.id;
    let listing = state
        .store
        .flag_activity_page(
            project,
            flag.as_ref().map(|(id, _)| *id),
            cursor(params),
            PAGE_SIZE,
        )
        .await?;
    let base = match &flag {
        Some((id, _)) => format!("/ui/projects/{project}/flags/{id}/activity"),
        None => format!("/ui/projects/{project}/activity"),
    };
    let title = match &flag {
        Some((_, key)) => format!("Activity of {key}"),
        None => "Activity".to_owned(),
    };
    let body = html! {
        @if let Some((id, key)) = &flag {
            p class="crumbs" { a href=(format!("/ui/projects/{project}/flags/{id}")) { "← " (key) } }
            h1 { "Activity of " code { (key) } }
        } @else {
            h1 { "Activity" }
        }
        p class="count" { (listing.total) " changes, newest first." }
        @if listing.items.is_empty() {
            p { "Nothing has changed yet." }
        }
        ol class="activity" {
            @for entry in &listing.items {
                li id=(format!("entry-{}", entry.id)) { (entry_markup(entry, flag.is_none())) }
            }
        }
        @if listing.newer || listing.older {
            nav class="pages" aria-label="Pages" {
                @if listing.newer {
                    a href=(base) { "⇤ Newest" }
                    @if let Some(first) = listing.items.first() {
                        a href=(format!("{base}?after={}", first.id)) rel="prev" { "← Newer" }
                    }
                }
                @if listing.older {
                    @if let Some(last) = listing.items.last() {
                        a href=(format!("{base}?before={}", last.id)) rel="next" { "Older →" }
                    }
                    a href=(format!("{base}?after=0")) { "Oldest ⇥" }
                }
            }
        }
    };
    Ok(frame.page(&title, body))
}

/// The page's cursor: `?before=ID` (older than an entry), `?after=ID` (newer than one; `0`
/// is the oldest page), else the newest entries.
fn cursor(params: &Params) -> ActivityCursor {
    let id = |name| params.non_empty(name).and_then(|v| v.parse::<i64>().ok());
    match (id("before"), id("after")) {
        (Some(before), _) => ActivityCursor::Before(before),
        (None, Some(after)) => ActivityCursor::After(after),
        (None, None) => ActivityCursor::Newest,
    }
}

/// Who made the change, for people.
fn who(actor: Option<&Actor>) -> Markup {
    html! {
        @match actor {
            Some(Actor::User { email, .. }) => { span class="who-user" { (email) } }
            Some(Actor::UserKey { email, key, .. }) => {
                span class="who-user" { (email) } " with the key " q { (key.label) } " " code { (key.mask) }
            }
            Some(Actor::ProjectKey { prefix }) => { "the project's personal key " code { (prefix) "…" } }
            Some(Actor::Named { label }) => { (label) }
            None => { "an unknown actor" }
        }
    }
}

fn verb(action: ActivityAction) -> &'static str {
    match action {
        ActivityAction::Created => "created",
        ActivityAction::Updated => "changed",
        ActivityAction::Deleted => "deleted",
    }
}

/// A value as the diff shows it: text as is, anything else as indented JSON.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string()),
    }
}

fn entry_markup(entry: &ActivityEntry, with_flag: bool) -> Markup {
    let project = entry.project_id;
    let fields = changes(entry);
    html! {
        p class="entry-head" {
            (who(entry.actor.as_ref())) " " (verb(entry.action)) " "
            @if with_flag {
                a href=(format!("/ui/projects/{project}/flags/{}", entry.flag_id)) { code { (entry.flag_key) } }
            } @else {
                "the flag"
            }
            " · " (when(entry.at))
            @if let Some(version) = entry.after.as_ref().and_then(|a| a.get("version")) {
                " · version " (version)
            }
        }
        @if entry.before.is_some() && !fields.is_empty() {
            div class="table-wrap" {
                table class="diff" {
                    caption class="visually-hidden" { "Fields changed by entry " (entry.id) }
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                    tbody {
                        @for change in &fields {
                            tr {
                                th scope="row" { (change.get("field").and_then(Value::as_str).unwrap_or("")) }
                                td class="before" { pre tabindex="0" { (shown(change.get("before").unwrap_or(&Value::Null))) } }
                                td class="after" { pre tabindex="0" { (shown(change.get("after").unwrap_or(&Value::Null))) } }
                            }
                        }
                    }
                }
            }
        }
        @if revertible(entry) {
            a class="button secondary" href=(format!("/ui/projects/{project}/activity/{}/revert", entry.id))
                aria-label=(format!("Revert entry {} of {}", entry.id, entry.flag_key)) { "Revert" }
        }
    }
}

/// Whether the entry changed anything a revert can restore.
fn revertible(entry: &ActivityEntry) -> bool {
    !revert_fields(entry).is_empty()
}

/// The fields a revert of `entry` writes: each editable field it changed, back to its value
/// before (a creation is reverted by deleting the flag).
fn revert_fields(entry: &ActivityEntry) -> Map<String, Value> {
    let mut fields = Map::new();
    let Some(after) = entry.after.as_ref() else {
        return fields;
    };
    match entry.before.as_ref() {
        None => {
            fields.insert("deleted".into(), Value::Bool(true));
        }
        Some(before) => {
            for field in EDITABLE {
                let b = before.get(*field).unwrap_or(&Value::Null);
                if after.get(*field).unwrap_or(&Value::Null) != b {
                    fields.insert((*field).to_owned(), b.clone());
                }
            }
        }
    }
    fields
}

async fn load_entry(
    state: &AppState,
    viewer: Viewer,
    project: i64,
    entry: i64,
) -> Result<(Frame, ActivityEntry), UiError> {
    let frame = Frame::load(state, viewer, Some(ProjectId(project))).await?;
    let entry = state
        .store
        .activity_entry(ProjectId(project), entry)
        .await?
        .ok_or(UiError::NotFound)?;
    Ok((frame, entry))
}

/// `GET /ui/projects/{project}/activity/{entry}/revert`: the confirmation.
pub async fn confirm_revert(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, entry)): Path<(i64, i64)>,
) -> Result<Html<String>, UiError> {
    let (frame, entry) = load_entry(&state, viewer, project, entry).await?;
    if !revertible(&entry) {
        return Err(UiError::BadForm(
            "This entry changed nothing a revert could restore.",
        ));
    }
    let body = html! {
        h1 { "Revert this change to " code { (entry.flag_key) } "?" }
        p { "A new version of the flag is written with these fields as they were before the change; the log keeps both." }
        (entry_markup_without_button(&entry))
        form method="post" action=(format!("/ui/projects/{project}/activity/{}/revert", entry.id)) class="confirm" {
            (frame.csrf())
            button type="submit" class="danger" { "Revert" }
            a class="button secondary" href=(format!("/ui/projects/{project}/flags/{}/activity", entry.flag_id)) { "Cancel" }
        }
    };
    Ok(frame.page("Revert change", body))
}

fn entry_markup_without_button(entry: &ActivityEntry) -> Markup {
    html! { div class="answer" { (entry_markup_body(entry)) } }
}

fn entry_markup_body(entry: &ActivityEntry) -> Markup {
    let fields = revert_fields(entry);
    html! {
        p { (who(entry.actor.as_ref())) " " (verb(entry.action)) " it " (when(entry.at)) "." }
        div class="table-wrap" {
            table class="diff" {
                caption { "What the revert writes" }
                thead { tr { th scope="col" { "Field" } th scope="col" { "Now (after the change)" } th scope="col" { "Restored" } } }
                tbody {
                    @for (field, value) in &fields {
                        tr {
                            th scope="row" { (field) }
                            td { pre tabindex="0" { (shown(entry.after.as_ref().and_then(|a| a.get(field)).unwrap_or(&Value::Null))) } }
                            td { pre tabindex="0" { (shown(value)) } }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /ui/projects/{project}/activity/{entry}/revert`: one write through the API's update
/// path with the entry's version as the expected one.
pub async fn revert(
    State(state): State<AppState>,
    Path((project, entry_id)): Path<(i64, i64)>,
    form: UiForm,
) -> Result<Response, UiError> {
    let (frame, entry) = load_entry(&state, form.viewer, project, entry_id).await?;
    let mut fields = revert_fields(&entry);
    if fields.is_empty() {
        return Err(UiError::BadForm(
            "This entry changed nothing a revert could restore.",
        ));
    }
    let version = entry
        .after
        .as_ref()
        .and_then(|a| a.get("version"))
        .cloned()
        .unwrap_or(Value::Null);
    fields.insert("version".into(), version);
    let write = flag_input::parse(&fields, false)?;
    let actor = frame.viewer.actor();
    let flag_id = entry.flag_id;
    let writer = state.clone();
    let written = to_completion(async move {
        update_with(
            &writer,
            ProjectId(project),
            &actor,
            flag_id,
            &write,
            &fields,
        )
        .await
        .map(|_| see_other(&format!("/ui/projects/{project}/flags/{flag_id}/activity")))
    })
    .await;
    match written {
        Ok(done) => Ok(done),
        Err(e) if e.status == StatusCode::CONFLICT => {
            let stored = state
                .store
                .get_flag(ProjectId(project), flag_id)
                .await?
                .ok_or(UiError::NotFound)?;
            let body = html! {
                h1 { "Not reverted: " code { (entry.flag_key) } " changed since" }
                div class="conflict" role="alert" id="conflict" {
                    h2 { "The flag changed after this entry" }
                    p { (e.detail) }
                    p {
                        "It is at version " (stored.version)
                        @if let Some(by) = &stored.last_modified_by { ", last changed by " (by) }
                        ". Reverting now would overwrite those later changes, so nothing was written."
                    }
                    p {
                        a class="button secondary" href=(format!("/ui/projects/{project}/flags/{flag_id}/activity")) { "See the newer changes" }
                    }
                }
            };
            Ok((StatusCode::CONFLICT, frame.page("Revert refused", body)).into_response())
        }
        Err(e) => Err(UiError::Api(e)),
    }
}
