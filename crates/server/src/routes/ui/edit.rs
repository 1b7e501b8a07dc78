//! Editing a flag: key, name, enabled, experience continuity, evaluation runtime and tags, and
//! its `filters` in the structured form of [`release`] (condition sets, variants, payloads,
//! holdout) — or as JSON, checked as typed, for anything the form cannot show (it is offered
//! only when it gives the stored filters back unchanged) or when the user asks for it.
//! The form carries the version it was opened at: a stale save answers the API's 409, shown
//! with what is stored now next to the edit, and the choice to reload or re-apply the edit.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use vexil_store::{FeatureFlag, ProjectId};

use super::super::api::flag_input;
use super::super::api::flags::update_with;
use super::super::api::to_completion;
use super::page::{see_other, Frame, UiError};
use super::release::{self, Offered, Release};
use super::session::{Fields, UiForm, Viewer};
use crate::extract::Params;
use crate::state::AppState;

/// What the user typed, as the form shows it.
#[derive(Debug, Clone)]
struct Draft {
    key: String,
    name: String,
    active: bool,
    continuity: bool,
    runtime: String,
    tags: String,
    /// The filters as JSON text (the JSON mode).
    filters: String,
    /// The structured form's state (`None`: the JSON mode).
    release: Option<Release>,
    version: i64,
}

impl Draft {
    /// The stored flag, in the form when it can show its filters (and `json` is not asked).
    fn of(flag: &FeatureFlag, json: bool) -> Draft {
        Draft {
            release: if json {
                None
            } else {
                Release::of(&flag.filters)
            },
            key: flag.key.clone(),
            name: flag.name.clone(),
            active: flag.active,
            continuity: flag.ensure_experience_continuity,
            runtime: flag.evaluation_runtime.as_str().to_owned(),
            tags: flag.evaluation_tags.join(", "),
            filters: serde_json::to_string_pretty(&flag.filters).unwrap_or_default(),
            version: flag.version,
        }
    }

    fn from_form(form: &Fields) -> Draft {
        Draft {
            key: form.text("key").to_owned(),
            name: form.text("name").to_owned(),
            active: form.get("active").is_some(),
            continuity: form.get("ensure_experience_continuity").is_some(),
            runtime: form.text("evaluation_runtime").to_owned(),
            tags: form.text("evaluation_tags").to_owned(),
            filters: form.text("filters").to_owned(),
            release: (form.text("mode") == "form").then(|| Release::from_form(form)),
            version: form.text("version").parse().unwrap_or(0),
        }
    }

    /// The filters the draft says, or the field at fault and why.
    fn filters_value(&self) -> Result<Value, (String, String)> {
        if let Some(release) = &self.release {
            return release.filters();
        }
        let filters: Value = serde_json::from_str(&self.filters).map_err(|e| {
            (
                "filters".to_owned(),
                format!("The filters are not valid JSON: {e}."),
            )
        })?;
        if !filters.is_object() {
            return Err((
                "filters".to_owned(),
                "The filters must be a JSON object.".to_owned(),
            ));
        }
        Ok(filters)
    }

    /// The API's fields, or the field at fault and why.
    fn api_fields(&self) -> Result<Map<String, Value>, (String, String)> {
        let filters = self.filters_value()?;
        let tags: Vec<&str> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let mut fields = Map::new();
        fields.insert("key".into(), json!(self.key));
        fields.insert("name".into(), json!(self.name));
        fields.insert("active".into(), json!(self.active));
        fields.insert(
            "ensure_experience_continuity".into(),
            json!(self.continuity),
        );
        fields.insert("evaluation_runtime".into(), json!(self.runtime));
        fields.insert("evaluation_tags".into(), json!(tags));
        fields.insert("filters".into(), filters);
        fields.insert("version".into(), json!(self.version));
        Ok(fields)
    }
}

/// Where an API error is shown: a field of the form (in the structured form, the row or
/// condition set the `filters` path names).
fn field_of(attr: Option<&str>, structured: bool) -> String {
    let attr = attr.unwrap_or_default();
    let field = match attr {
        "key" => "key",
        "name" => "name",
        "evaluation_runtime" => "evaluation-runtime",
        "evaluation_tags" => "evaluation-tags",
        "ensure_experience_continuity" => "continuity",
        a if a.starts_with("filters") && structured => {
            return release::field_of(a).unwrap_or_else(|| "form".to_owned())
        }
        a if a.starts_with("filters") => "filters",
        _ => "form",
    };
    field.to_owned()
}

/// A failed save.
enum Problem {
    /// A field is wrong.
    Field(String, String),
    /// The flag changed since the form was opened: what is stored now.
    Stale(String, Box<FeatureFlag>),
}

/// `GET /ui/projects/{project}/flags/{id}/edit[?mode=json]`.
pub async fn form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, id)): Path<(i64, i64)>,
    params: Params,
) -> Result<Html<String>, UiError> {
    let (frame, flag) = Frame::load_with_flag(&state, viewer, ProjectId(project), id).await?;
    let title = format!("Edit {}", flag.key);
    let json = params.non_empty("mode") == Some("json");
    let offered = Offered::load(&state, flag.project_id, Some(flag.id)).await?;
    Ok(frame.page(
        &title,
        render(&frame, &flag, &Draft::of(&flag, json), None, &offered),
    ))
}

/// `POST /ui/projects/{project}/flags/{id}/edit`.
pub async fn save(
    State(state): State<AppState>,
    Path((project, id)): Path<(i64, i64)>,
    form: UiForm,
) -> Result<Response, UiError> {
    let (frame, flag) = Frame::load_with_flag(&state, form.viewer, ProjectId(project), id).await?;
    let draft = Draft::from_form(&form.fields);
    let offered = Offered::load(&state, flag.project_id, Some(flag.id)).await?;
    let title = format!("Edit {}", flag.key);
    let structured = draft.release.is_some();
    let problem = match draft.api_fields() {
        Err((field, message)) => Problem::Field(field, message),
        Ok(fields) => {
            let write = flag_input::parse(&fields, false);
            let actor = frame.viewer.actor();
            let writer = state.clone();
            let written = match write {
                Err(e) => Err(e),
                Ok(write) => {
                    to_completion(async move {
                        update_with(&writer, ProjectId(project), &actor, id, &write, &fields)
                            .await
                            .map(|_| see_other(&format!("/ui/projects/{project}/flags/{id}")))
                    })
                    .await
                }
            };
            match written {
                Ok(done) => return Ok(done),
                Err(e) if e.status == StatusCode::CONFLICT => {
                    let stored = state
                        .store
                        .get_flag(ProjectId(project), id)
                        .await?
                        .ok_or(UiError::NotFound)?;
                    Problem::Stale(e.detail, Box::new(stored))
                }
                Err(e) if e.status.is_client_error() => {
                    Problem::Field(field_of(e.attr.as_deref(), structured), e.detail)
                }
                Err(e) => return Err(UiError::Api(e)),
            }
        }
    };
    let status = match problem {
        Problem::Stale(..) => StatusCode::CONFLICT,
        Problem::Field(..) => StatusCode::BAD_REQUEST,
    };
    let page = frame.page(
        &title,
        render(&frame, &flag, &draft, Some(&problem), &offered),
    );
    Ok((status, page).into_response())
}

fn render(
    frame: &Frame,
    flag: &FeatureFlag,
    draft: &Draft,
    problem: Option<&Problem>,
    offered: &Offered,
) -> Markup {
    let project = flag.project_id.0;
    let base = format!("/ui/projects/{project}/flags/{}", flag.id);
    let field_error = |field: &str| match problem {
        Some(Problem::Field(f, m)) if *f == field => Some(m.as_str()),
        _ => None,
    };
    let invalid = |field: &str| field_error(field).map(|_| "true");
    let described = |field: &str| field_error(field).map(|_| format!("{field}-error"));
    let error = |field: &str| {
        html! {
            @if let Some(m) = field_error(field) { p class="field-error" id=(format!("{field}-error")) { (m) } }
        }
    };
    // A stale save is re-applied on top of the version stored now.
    let (version, stale) = match problem {
        Some(Problem::Stale(detail, stored)) => (stored.version, Some((detail, stored))),
        _ => (draft.version, None),
    };
    html! {
        p class="crumbs" { a href=(base) { "← " (flag.key) } }
        h1 { "Edit " code { (flag.key) } }
        @if let Some((detail, stored)) = stale {
            div class="conflict" role="alert" id="conflict" {
                h2 { "This flag changed while you were editing it" }
                p { (detail) }
                (changes(draft, stored))
                p {
                    a class="button secondary" href=(format!("{base}/edit")) { "Reload (discard my edit)" }
                    " or save again below to re-apply your edit on top of version " (stored.version) "."
                }
            }
        }
        @if let Some(Problem::Field(_, message)) = problem {
            p class="error" role="alert" id="form-error" { "The flag was not saved: " (message) }
        }
        form method="post" action=(format!("{base}/edit")) novalidate {
            (frame.csrf())
            input type="hidden" name="version" value=(version);
            label for="key" { "Key" }
            input id="key" name="key" required value=(draft.key) autocomplete="off"
                aria-invalid=[invalid("key")] aria-describedby=[described("key")];
            (error("key"))
            label for="name" { "Name (description)" }
            input id="name" name="name" value=(draft.name)
                aria-invalid=[invalid("name")] aria-describedby=[described("name")];
            (error("name"))
            label { input type="checkbox" name="active" value="on" checked[draft.active]; " Enabled" }
            label { input type="checkbox" name="ensure_experience_continuity" value="on" checked[draft.continuity];
                " Experience continuity (keep a person's value across identification; needs the server)" }
            (error("continuity"))
            label for="evaluation-runtime" { "Evaluation runtime" }
            select id="evaluation-runtime" name="evaluation_runtime" {
                @for (value, label) in [("all", "All (server and client SDKs)"), ("server", "Server SDKs only"), ("client", "Client SDKs only")] {
                    option value=(value) selected[draft.runtime == value] { (label) }
                }
            }
            (error("evaluation-runtime"))
            label for="evaluation-tags" { "Evaluation contexts (tags, comma-separated)" }
            input id="evaluation-tags" name="evaluation_tags" value=(draft.tags)
                aria-invalid=[invalid("evaluation-tags")] aria-describedby=[described("evaluation-tags")];
            (error("evaluation-tags"))
            @if let Some(release) = &draft.release {
                @let problem = match problem {
                    Some(Problem::Field(f, m)) => Some((f.clone(), m.clone())),
                    _ => None,
                };
                (release::render(release, &offered.choices(), problem.as_ref()))
                p { a href=(format!("{base}/edit?mode=json")) { "Edit the filters as JSON (advanced)" } }
            } @else {
                @if Release::of(&flag.filters).is_none() {
                    p class="hint" id="json-only" { "These filters hold something the form cannot show, so they are edited as JSON here (nothing is dropped)." }
                } @else {
                    p { a href=(format!("{base}/edit")) { "Edit the conditions with the form" } }
                }
                input type="hidden" name="mode" value="json";
                label for="filters" { "Filters (JSON: release conditions, variants, payloads, holdout, …)" }
                p class="hint" id="filters-hint" {
                    "PostHog's " code { "filters" } " object: " code { "groups" } " (each with "
                    code { "properties" } ", " code { "rollout_percentage" } ", " code { "variant" } "), "
                    code { "multivariate" } ", " code { "payloads" } ", " code { "holdout" } ", "
                    code { "aggregation_group_type_index" } ", " code { "super_groups" } "."
                }
                textarea id="filters" name="filters" rows="16" data-json
                    aria-invalid=[invalid("filters")]
                    aria-describedby=(format!("filters-hint filters-check{}", if field_error("filters").is_some() { " filters-error" } else { "" })) {
                    (draft.filters)
                }
                p class="hint" id="filters-check" aria-live="polite" {}
                (error("filters"))
            }
            p { button type="submit" { "Save" } }
        }
    }
}

/// The fields where what is stored now differs from the edit.
fn changes(draft: &Draft, stored: &FeatureFlag) -> Markup {
    let now = Draft::of(stored, true);
    let mine = draft.filters_value().ok();
    let same_filters = mine.as_ref() == Some(&stored.filters);
    let mine_text = mine
        .map(|m| serde_json::to_string_pretty(&m).unwrap_or_default())
        .unwrap_or_else(|| draft.filters.clone());
    let rows: Vec<(&str, String, String)> = [
        (
            "Key",
            now.key.clone(),
            draft.key.clone(),
            now.key == draft.key,
        ),
        (
            "Name",
            now.name.clone(),
            draft.name.clone(),
            now.name == draft.name,
        ),
        (
            "Enabled",
            now.active.to_string(),
            draft.active.to_string(),
            now.active == draft.active,
        ),
        ("Filters", now.filters.clone(), mine_text, same_filters),
    ]
    .into_iter()
    .filter(|(_, _, _, same)| !same)
    .map(|(f, a, b, _)| (f, a, b))
    .collect();
    html! {
        @if let Some(by) = &stored.last_modified_by { p { "Last changed by " (by) " (version " (stored.version) ")." } }
        table {
            caption { "Where your edit and the stored flag differ" }
            thead { tr { th scope="col" { "Field" } th scope="col" { "Stored now" } th scope="col" { "Your edit" } } }
            tbody {
                @for (field, stored, mine) in &rows {
                    // Focusable: a long value scrolls inside its cell.
                    tr { th scope="row" { (field) } td { pre tabindex="0" { (stored) } } td { pre tabindex="0" { (mine) } } }
                }
            }
        }
    }
}
