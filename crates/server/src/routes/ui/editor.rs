//! The new-flag editor: key, name, enabled and the release conditions in the structured form
//! of [`release`] (condition sets with property, group, cohort and flag rows, rollouts and
//! variant overrides, aggregation, variants with a live sum check, payloads checked as typed,
//! holdout). It posts the API's own fields to the API's create path, so a 400 comes back
//! naming its field (`attr`) and is shown at that field.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use vexil_store::ProjectId;

use super::super::api::flags::create_with;
use super::super::api::to_completion;
use super::page::{see_other, Frame, UiError};
use super::release::{self, Group, Offered, Release};
use super::session::{Fields, UiForm, Viewer};
use crate::state::AppState;

/// Where an error is shown: a field id of the form, or the top of the form.
fn field_of(attr: Option<&str>) -> String {
    match attr.unwrap_or_default() {
        "key" => "key".to_owned(),
        "name" => "name".to_owned(),
        a => release::field_of(a).unwrap_or_else(|| "form".to_owned()),
    }
}

/// `GET /ui/projects/{project}/flags/new`.
pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<i64>,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    let offered = Offered::load(&state, ProjectId(project), None).await?;
    Ok(frame.page(
        "New flag",
        render(&frame, &Fields::default(), None, &offered),
    ))
}

/// `POST /ui/projects/{project}/flags/new`.
pub async fn create(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    form: UiForm,
) -> Result<Response, UiError> {
    let frame = Frame::load(&state, form.viewer.clone(), Some(ProjectId(project))).await?;
    let fields = form.fields;
    let problem = match api_fields(&fields) {
        Err(problem) => problem,
        Ok(body) => {
            let actor = frame.viewer.actor();
            let writer = state.clone();
            let written = to_completion(async move {
                create_with(&writer, ProjectId(project), &actor, &body)
                    .await
                    .map(|flag| see_other(&format!("/ui/projects/{project}/flags/{}", flag.id)))
            })
            .await;
            match written {
                Ok(done) => return Ok(done),
                Err(e) if e.status.is_client_error() => (field_of(e.attr.as_deref()), e.detail),
                Err(e) => return Err(UiError::Api(e)),
            }
        }
    };
    let offered = Offered::load(&state, ProjectId(project), None).await?;
    let page = frame.page(
        "New flag",
        render(&frame, &fields, Some(&problem), &offered),
    );
    Ok((StatusCode::BAD_REQUEST, page).into_response())
}

/// The API's fields from the form, or the field at fault and why.
fn api_fields(form: &Fields) -> Result<Map<String, Value>, (String, String)> {
    let filters = Release::from_form(form).filters()?;
    let mut body = Map::new();
    body.insert("key".into(), json!(form.text("key")));
    body.insert("name".into(), json!(form.text("name")));
    body.insert("active".into(), json!(form.get("active").is_some()));
    body.insert("filters".into(), filters);
    Ok(body)
}

fn render(
    frame: &Frame,
    form: &Fields,
    problem: Option<&(String, String)>,
    offered: &Offered,
) -> Markup {
    let project = frame.current.as_ref().map_or(0, |p| p.id.0);
    let fresh = form.0.is_empty();
    let error_at = |field: &str| problem.filter(|(f, _)| f == field).map(|(_, m)| m.as_str());
    let invalid = |field: &str| error_at(field).map(|_| "true");
    let described = |field: &str| error_at(field).map(|_| format!("{field}-error"));
    let error = |field: &str| {
        html! {
            @if let Some(m) = error_at(field) { p class="field-error" id=(format!("{field}-error")) { (m) } }
        }
    };
    // A new flag starts with one condition set for everyone (add a filter to target).
    let release = if fresh {
        Release {
            groups: vec![Group {
                rollout: "100".to_owned(),
                ..Group::default()
            }],
            ..Release::default()
        }
    } else {
        Release::from_form(form)
    };
    html! {
        p class="crumbs" { a href=(format!("/ui/projects/{project}/flags")) { "← All flags" } }
        h1 { "New feature flag" }
        @if let Some((_, message)) = problem {
            p class="error" role="alert" id="form-error" { "The flag was not saved: " (message) }
        }
        form method="post" action=(format!("/ui/projects/{project}/flags/new")) novalidate {
            (frame.csrf())
            label for="key" { "Key" }
            input id="key" name="key" required value=(form.text("key")) autocomplete="off"
                aria-invalid=[invalid("key")] aria-describedby=[described("key")];
            p class="hint" { "Letters, digits, - and _; what your code asks for." }
            (error("key"))
            label for="name" { "Name (description)" }
            input id="name" name="name" value=(form.text("name"))
                aria-invalid=[invalid("name")] aria-describedby=[described("name")];
            (error("name"))
            label { input type="checkbox" name="active" value="on" checked[fresh || form.get("active").is_some()]; " Enabled" }
            (release::render(&release, &offered.choices(), problem))
            p { button type="submit" { "Create flag" } }
        }
    }
}
