//! Cohorts: the list (search by name, pages), a new cohort (property / behavioural with the
//! structured condition editor, or static from a CSV upload), a cohort's page (edit its
//! conditions as rows or as JSON, a static cohort's paginated members with add and remove,
//! the flags and cohorts that use it) and deletion with a confirmation.
//!
//! Writes go through the management API's own cohort write path
//! (`api::cohorts::{create_with, update_with, remove_members_with}`): the same rules and the
//! same 400s naming the field, shown at that field (a row of the editor when the path names
//! one).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use vexil_store::{Cohort, Page, ProjectId};

use super::super::api::cohort_members::{check_csv, MAX_DISTINCT_ID_CHARS};
use super::super::api::cohorts::{cohort_type, create_with, remove_members_with, update_with};
use super::super::api::listing::all_cohorts;
use super::super::api::to_completion;
use super::conditions::{self, Tree};
use super::page::{see_other, Frame, UiError};
use super::session::{Fields, UiForm, Viewer};
use super::suggest;
use crate::error::ApiError;
use crate::extract::Params;
use crate::state::AppState;

/// Cohorts per page of the list; members per page of a static cohort.
pub const PAGE_SIZE: u32 = 50;

/// Distinct ids one add-members form takes (a CSV upload is limited by its size instead).
const MAX_TYPED_IDS: usize = 10_000;

fn base(project: i64) -> String {
    format!("/ui/projects/{project}/cohorts")
}

fn offset_of(params: &Params) -> u32 {
    params
        .non_empty("offset")
        .and_then(|o| o.parse::<u32>().ok())
        .unwrap_or(0)
}

fn type_label(cohort: &Cohort) -> &'static str {
    match cohort_type(cohort) {
        "static" => "Static (member list)",
        "behavioral" => "Behavioural",
        _ => "Person properties",
    }
}

/// `GET /ui/projects/{project}/cohorts?search=&offset=`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<i64>,
    params: Params,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    let search = params.non_empty("search").unwrap_or_default().to_owned();
    let offset = offset_of(&params);
    let needle = search.to_lowercase();
    let matching: Vec<Cohort> = all_cohorts(&state, ProjectId(project))
        .await?
        .into_iter()
        .filter(|c| needle.is_empty() || c.name.to_lowercase().contains(&needle))
        .collect();
    let total = matching.len();
    let shown: Vec<&Cohort> = matching
        .iter()
        .skip(offset as usize)
        .take(PAGE_SIZE as usize)
        .collect();
    let snapshot = state.snapshot(ProjectId(project)).await?;
    let users = usage_counts(snapshot.flags());
    let mut counts = Vec::with_capacity(shown.len());
    for c in &shown {
        counts.push(if c.is_static {
            Some(
                state
                    .store
                    .count_cohort_members(ProjectId(project), c.id)
                    .await?,
            )
        } else {
            None
        });
    }
    let base = base(project);
    let page_link = |offset: u32| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !search.is_empty() {
            q.append_pair("search", &search);
        }
        q.append_pair("offset", &offset.to_string());
        format!("{base}?{}", q.finish())
    };
    let first = if total == 0 { 0 } else { offset as usize + 1 };
    let last = offset as usize + shown.len();
    let body = html! {
        div class="title-row" {
            h1 { "Cohorts" }
            span {
                a class="button" href=(format!("{base}/new")) { "New cohort" } " "
                a class="button secondary" href=(format!("{base}/new?static=1")) { "New static cohort" }
            }
        }
        form class="filters" method="get" action=(base) role="search" {
            div {
                label for="search" { "Search by name" }
                input id="search" name="search" type="search" value=(search);
            }
            button type="submit" { "Apply" }
        }
        p class="count" aria-live="polite" { "Showing " (first) "–" (last) " of " (total) " cohorts" }
        div class="table-wrap" {
            table {
                caption class="visually-hidden" { "Cohorts" }
                thead { tr {
                    th scope="col" { "Name" }
                    th scope="col" { "Type" }
                    th scope="col" { "Members" }
                    th scope="col" { "Used by" }
                    th scope="col" { "Updated" }
                } }
                tbody {
                    @for (c, count) in shown.iter().zip(&counts) {
                        @let used = users.iter().filter(|(id, _)| *id == c.id).count();
                        tr {
                            td { a href=(format!("{base}/{}", c.id)) { (c.name) } }
                            td { (type_label(c)) }
                            td { @match count { Some(n) => (n), None => "computed per person" } }
                            td { (used) (if used == 1 { " flag" } else { " flags" }) }
                            td { (c.updated_at.format("%Y-%m-%d %H:%M")) }
                        }
                    }
                }
            }
        }
        @if shown.is_empty() { p { "No cohort matches." } }
        nav class="pages" aria-label="Pages" {
            @if offset > 0 { a rel="prev" href=(page_link(offset.saturating_sub(PAGE_SIZE))) { "← Previous" } }
            @if last < total { a rel="next" href=(page_link(offset + PAGE_SIZE)) { "Next →" } }
        }
    };
    Ok(frame.page("Cohorts", body))
}

/// `(cohort id, flag key)` for every cohort reference of the project's flags.
fn usage_counts(flags: &[std::sync::Arc<vexil_engine::FlagDefinition>]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for f in flags.iter().filter(|f| !f.deleted) {
        let mut ids = Vec::new();
        cohort_ids_in(&f.filters, &mut ids);
        ids.sort_unstable();
        ids.dedup();
        out.extend(ids.into_iter().map(|id| (id, f.key.clone())));
    }
    out
}

/// The cohort ids `{"type": "cohort", "value": id}` leaves anywhere in `v` name: a walk of the
/// stored JSON, not a typed parse, so the list pages stay cheap with thousands of flags and
/// cohorts (measured: parsing every flag's filters per request cost tens of ms at 1,000).
fn cohort_ids_in(v: &Value, out: &mut Vec<i64>) {
    match v {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("cohort") {
                let id = match map.get("value") {
                    Some(Value::Number(n)) => n.as_i64(),
                    Some(Value::String(s)) => s.trim().parse().ok(),
                    _ => None,
                };
                out.extend(id);
            }
            map.values().for_each(|child| cohort_ids_in(child, out));
        }
        Value::Array(items) => items.iter().for_each(|child| cohort_ids_in(child, out)),
        _ => {}
    }
}

/// What the new-cohort and edit forms show after a failed save.
#[derive(Debug, Default)]
struct Problems {
    /// `(field id, message)`: `name`, `description`, `filters`, `csv`, a row id or `form`.
    errors: Vec<(String, String)>,
}

impl Problems {
    fn at(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    fn all_at(&self, field: &str) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
            .collect()
    }

    fn one(field: &str, message: impl Into<String>) -> Problems {
        Problems {
            errors: vec![(field.to_owned(), message.into())],
        }
    }

    /// An API 400, at the field (or editor row) its path names.
    fn api(e: &ApiError, tree: Option<&Tree>) -> Problems {
        let attr = e.attr.as_deref().unwrap_or_default();
        let field = match attr {
            "name" | "description" | "csv" => attr.to_owned(),
            "distinct_ids" => "members".to_owned(),
            a if a.starts_with("filters") => tree
                .and_then(|t| conditions::row_of_path(a, t))
                .unwrap_or_else(|| "filters".to_owned()),
            _ => "form".to_owned(),
        };
        Problems::one(&field, e.detail.clone())
    }
}

fn field_error(problems: &Problems, field: &str) -> Markup {
    html! {
        @for (i, m) in problems.all_at(field).iter().enumerate() {
            p class="field-error" id=(if i == 0 { format!("{field}-error") } else { format!("{field}-error-{i}") }) { (m) }
        }
    }
}

fn invalid(problems: &Problems, field: &str) -> Option<&'static str> {
    problems.at(field).map(|_| "true")
}

fn described(problems: &Problems, field: &str) -> Option<String> {
    problems.at(field).map(|_| format!("{field}-error"))
}

/// `GET /ui/projects/{project}/cohorts/new[?static=1]`.
pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<i64>,
    params: Params,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    let keys = suggest::person_keys(&state, ProjectId(project)).await?;
    let is_static = params.non_empty("static").is_some();
    Ok(frame.page(
        "New cohort",
        new_page(
            &frame,
            is_static,
            &Fields::default(),
            &Tree::empty(),
            &Problems::default(),
            &keys,
        ),
    ))
}

/// `POST /ui/projects/{project}/cohorts/new` (multipart when a CSV is uploaded).
pub async fn create(
    State(state): State<AppState>,
    Path(project): Path<i64>,
    form: UiForm,
) -> Result<Response, UiError> {
    let frame = Frame::load(&state, form.viewer.clone(), Some(ProjectId(project))).await?;
    let fields = &form.fields;
    let is_static = fields.get("is_static").is_some();
    let tree = Tree::from_form(fields);
    let keys = suggest::person_keys(&state, ProjectId(project)).await?;
    let again = |problems: Problems, status: StatusCode| {
        let page = frame.page(
            "New cohort",
            new_page(&frame, is_static, fields, &tree, &problems, &keys),
        );
        (status, page).into_response()
    };
    if !is_static && conditions::wants_more(fields) {
        return Ok(again(Problems::default(), StatusCode::OK));
    }
    let mut body = Map::new();
    body.insert("name".into(), json!(fields.text("name")));
    body.insert("description".into(), json!(fields.text("description")));
    body.insert("is_static".into(), json!(is_static));
    if is_static {
        match members_of(&form) {
            Ok(ids) => {
                body.insert("distinct_ids".into(), json!(ids));
            }
            Err(problems) => return Ok(again(problems, StatusCode::BAD_REQUEST)),
        }
    } else {
        match filters_of(fields, &tree) {
            Ok(filters) => {
                body.insert("filters".into(), filters);
            }
            Err(problems) => return Ok(again(problems, StatusCode::BAD_REQUEST)),
        }
    }
    let actor = frame.viewer.session.user.email.clone();
    let writer = state.clone();
    let written = to_completion(async move {
        create_with(&writer, ProjectId(project), &actor, &body, None).await
    })
    .await;
    match written {
        Ok(cohort) => Ok(see_other(&format!("{}/{}", base(project), cohort.id))),
        Err(e) if e.status.is_client_error() => Ok(again(
            Problems::api(&e, (!is_static).then_some(&tree)),
            StatusCode::BAD_REQUEST,
        )),
        Err(e) => Err(UiError::Api(e)),
    }
}

/// The filters a cohort form asks for: the JSON field when the form was the JSON one, else
/// the rows.
fn filters_of(fields: &Fields, tree: &Tree) -> Result<Value, Problems> {
    if fields.text("mode") == "json" {
        return match serde_json::from_str::<Value>(fields.text("filters")) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(Problems::one(
                "filters",
                "The filters must be a JSON object.",
            )),
            Err(e) => Err(Problems::one(
                "filters",
                format!("The filters are not valid JSON: {e}."),
            )),
        };
    }
    if tree.rows.is_empty() {
        return Err(Problems::one(
            "row-0-0",
            "Give at least one condition: a property, an event or a cohort.",
        ));
    }
    tree.filters().map_err(|(at, m)| Problems::one(&at, m))
}

/// The distinct ids of an add-members form: the uploaded CSV (checked line by line) and the
/// ids typed one per line.
fn members_of(form: &UiForm) -> Result<Vec<String>, Problems> {
    let mut ids = Vec::new();
    if let Some((_, csv)) = form.files.iter().find(|(name, _)| name == "csv") {
        match check_csv(csv) {
            Ok(found) if found.is_empty() => {
                return Err(Problems::one("csv", "The CSV file lists no distinct id."))
            }
            Ok(found) => ids.extend(found),
            Err(lines) => {
                let shown = 20;
                let mut errors: Vec<(String, String)> = lines
                    .iter()
                    .take(shown)
                    .map(|m| ("csv".to_owned(), m.clone()))
                    .collect();
                if lines.len() > shown {
                    errors.push((
                        "csv".to_owned(),
                        format!("… and {} more lines with problems.", lines.len() - shown),
                    ));
                }
                return Err(Problems { errors });
            }
        }
    }
    let typed: Vec<&str> = form
        .fields
        .text("distinct_ids")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if typed.len() > MAX_TYPED_IDS {
        return Err(Problems::one(
            "members",
            format!("Type at most {MAX_TYPED_IDS} distinct ids here; upload a CSV file for more."),
        ));
    }
    for (i, id) in typed.iter().enumerate() {
        if id.chars().count() > MAX_DISTINCT_ID_CHARS {
            return Err(Problems::one(
                "members",
                format!(
                    "Line {}: the distinct id is longer than {MAX_DISTINCT_ID_CHARS} characters.",
                    i + 1
                ),
            ));
        }
    }
    ids.extend(typed.into_iter().map(str::to_owned));
    Ok(ids)
}

fn new_page(
    frame: &Frame,
    is_static: bool,
    form: &Fields,
    tree: &Tree,
    problems: &Problems,
    keys: &[(String, String)],
) -> Markup {
    let project = frame.current.as_ref().map_or(0, |p| p.id.0);
    let base = base(project);
    html! {
        p class="crumbs" { a href=(base) { "← All cohorts" } }
        h1 { @if is_static { "New static cohort" } @else { "New cohort" } }
        @if let Some(m) = problems.errors.first().map(|(_, m)| m) {
            p class="error" role="alert" id="form-error" { "The cohort was not saved: " (m) }
        }
        form method="post" action=(format!("{base}/new")) enctype=[is_static.then_some("multipart/form-data")] novalidate {
            (frame.csrf())
            label for="name" { "Name" }
            input id="name" name="name" required value=(form.text("name"))
                aria-invalid=[invalid(problems, "name")] aria-describedby=[described(problems, "name")];
            (field_error(problems, "name"))
            label for="description" { "Description (optional)" }
            input id="description" name="description" value=(form.text("description"));
            (field_error(problems, "description"))
            @if is_static {
                input type="hidden" name="is_static" value="1";
                (member_inputs(problems))
                p { button type="submit" { "Create cohort" } }
            } @else {
                input type="hidden" name="mode" value="rows";
                p class="hint" { "A person is in the cohort when the conditions match: person properties, membership of another cohort, or events they performed within a window." }
                (field_error(problems, "filters"))
                (conditions::editor(tree, &problems.errors, keys))
                p { button type="submit" { "Create cohort" } }
            }
        }
    }
}

/// The CSV upload and typed-ids fields of a member form.
fn member_inputs(problems: &Problems) -> Markup {
    html! {
        label for="csv" { "Members from a CSV file (one distinct id per line, or a distinct_id column)" }
        input id="csv" name="csv" type="file" accept=".csv,text/csv,text/plain"
            aria-invalid=[invalid(problems, "csv")]
            aria-describedby=(format!("csv-hint{}", if problems.at("csv").is_some() { " csv-error" } else { "" }));
        p class="hint" id="csv-hint" { "Up to 8 MB. Blank lines and repeated ids are skipped; a line that cannot be used is reported with its number and nothing is added." }
        (field_error(problems, "csv"))
        label for="distinct-ids" { "Or type distinct ids (one per line)" }
        textarea id="distinct-ids" name="distinct_ids" rows="3"
            aria-invalid=[invalid(problems, "members")] aria-describedby=[described(problems, "members")] {}
        (field_error(problems, "members"))
    }
}

async fn load_cohort(
    state: &AppState,
    viewer: Viewer,
    project: i64,
    id: i64,
) -> Result<(Frame, Cohort), UiError> {
    let frame = Frame::load(state, viewer, Some(ProjectId(project))).await?;
    let cohort = state
        .store
        .get_cohort(ProjectId(project), id)
        .await?
        .filter(|c| !c.deleted)
        .ok_or(UiError::NotFound)?;
    Ok((frame, cohort))
}

/// `GET /ui/projects/{project}/cohorts/{id}[?offset=]`.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, id)): Path<(i64, i64)>,
    params: Params,
) -> Result<Html<String>, UiError> {
    let (frame, cohort) = load_cohort(&state, viewer, project, id).await?;
    let tree = Tree::from_filters(&cohort.filters);
    let json = serde_json::to_string_pretty(&cohort.filters).unwrap_or_default();
    let page = detail_page(
        &state,
        &frame,
        &cohort,
        Draft {
            name: cohort.name.clone(),
            description: cohort.description.clone(),
            tree,
            json,
        },
        &Problems::default(),
        offset_of(&params),
    )
    .await?;
    Ok(frame.page(&cohort.name, page))
}

/// A cohort edit as typed.
struct Draft {
    name: String,
    description: String,
    tree: Option<Tree>,
    json: String,
}

/// `POST /ui/projects/{project}/cohorts/{id}`: save the name, description and conditions
/// (from the rows, or the JSON form).
pub async fn save(
    State(state): State<AppState>,
    Path((project, id)): Path<(i64, i64)>,
    form: UiForm,
) -> Result<Response, UiError> {
    let (frame, cohort) = load_cohort(&state, form.viewer.clone(), project, id).await?;
    let fields = &form.fields;
    let json_mode = fields.text("mode") == "json";
    let tree = if json_mode {
        Tree::from_filters(&cohort.filters)
    } else {
        Some(Tree::from_form(fields))
    };
    let draft = Draft {
        name: fields.text("name").to_owned(),
        description: fields.text("description").to_owned(),
        json: if json_mode {
            fields.text("filters").to_owned()
        } else {
            serde_json::to_string_pretty(&cohort.filters).unwrap_or_default()
        },
        tree: tree.clone(),
    };
    let fail = |problems: Problems, status: StatusCode, draft: Draft| {
        let state = state.clone();
        let frame = &frame;
        let cohort = &cohort;
        async move {
            let page = detail_page(&state, frame, cohort, draft, &problems, 0).await?;
            Ok::<_, UiError>((status, frame.page(&cohort.name, page)).into_response())
        }
    };
    if !json_mode && conditions::wants_more(fields) {
        return fail(Problems::default(), StatusCode::OK, draft).await;
    }
    let mut body = Map::new();
    body.insert("name".into(), json!(draft.name));
    body.insert("description".into(), json!(draft.description));
    body.insert("version".into(), json!(fields.text("version")));
    if !cohort.is_static {
        let empty = Tree::empty();
        match filters_of(fields, tree.as_ref().unwrap_or(&empty)) {
            Ok(filters) => {
                body.insert("filters".into(), filters);
            }
            Err(problems) => return fail(problems, StatusCode::BAD_REQUEST, draft).await,
        }
    }
    let writer = state.clone();
    let written =
        to_completion(
            async move { update_with(&writer, ProjectId(project), id, &body, None).await },
        )
        .await;
    match written {
        Ok(_) => Ok(see_other(&format!("{}/{id}", base(project)))),
        Err(e) if e.status == StatusCode::CONFLICT => {
            let problems = Problems::one(
                "form",
                format!(
                    "{} Reload the page to see the stored cohort, then edit again.",
                    e.detail
                ),
            );
            fail(problems, StatusCode::CONFLICT, draft).await
        }
        Err(e) if e.status.is_client_error() => {
            let problems = if json_mode {
                let mut p = Problems::api(&e, None);
                for (f, _) in &mut p.errors {
                    if f.starts_with("row-") {
                        *f = "filters".to_owned();
                    }
                }
                p
            } else {
                Problems::api(&e, tree.as_ref())
            };
            fail(problems, StatusCode::BAD_REQUEST, draft).await
        }
        Err(e) => Err(UiError::Api(e)),
    }
}

async fn detail_page(
    state: &AppState,
    frame: &Frame,
    cohort: &Cohort,
    draft: Draft,
    problems: &Problems,
    offset: u32,
) -> Result<Markup, UiError> {
    let project = cohort.project_id;
    let base = format!("{}/{}", base(project.0), cohort.id);
    let snapshot = state.snapshot(project).await?;
    let flag_users: Vec<String> = usage_counts(snapshot.flags())
        .into_iter()
        .filter(|(c, _)| *c == cohort.id)
        .map(|(_, key)| key)
        .collect();
    let flag_ids: Vec<(String, i64)> = flag_users
        .iter()
        .filter_map(|k| snapshot.flag_by_key(k).map(|f| (k.clone(), f.id)))
        .collect();
    let cohort_users: Vec<Cohort> = all_cohorts(state, project)
        .await?
        .into_iter()
        .filter(|c| {
            let mut ids = Vec::new();
            cohort_ids_in(&c.filters, &mut ids);
            c.id != cohort.id && ids.contains(&cohort.id)
        })
        .collect();
    let members = if cohort.is_static {
        Some(
            state
                .store
                .cohort_members(project, cohort.id, Page::new(PAGE_SIZE, offset))
                .await?,
        )
    } else {
        None
    };
    let keys = if cohort.is_static {
        Vec::new()
    } else {
        suggest::person_keys(state, project).await?
    };
    let form_error = problems.at("form");
    Ok(html! {
        p class="crumbs" { a href=(format!("/ui/projects/{}/cohorts", project.0)) { "← All cohorts" } }
        div class="title-row" {
            h1 { (cohort.name) }
            span class="badge" { (type_label(cohort)) }
            a class="button danger" href=(format!("{base}/delete")) { "Delete cohort…" }
        }
        @if !cohort.description.is_empty() { p class="lead" { (cohort.description) } }
        @if let Some(m) = form_error { p class="error" role="alert" id="form-error" { "The cohort was not saved: " (m) } }
        section aria-labelledby="used-by" {
            h2 id="used-by" { "Used by" }
            @if flag_ids.is_empty() && cohort_users.is_empty() { p { "No flag or cohort uses this cohort." } }
            ul {
                @for (key, id) in &flag_ids {
                    li { "Flag " a href=(format!("/ui/projects/{}/flags/{id}", project.0)) { code { (key) } } }
                }
                @for c in &cohort_users {
                    li { "Cohort " a href=(format!("/ui/projects/{}/cohorts/{}", project.0, c.id)) { (c.name) } }
                }
            }
        }
        @if let Some(members) = &members {
            section aria-labelledby="members" {
                h2 id="members" { "Members (" (members.total) ")" }
                form method="post" action=(format!("{base}/members")) enctype="multipart/form-data" novalidate class="members-add" {
                    (frame.csrf())
                    (member_inputs(problems))
                    p { button type="submit" { "Add members" } }
                }
                div class="table-wrap" {
                    table {
                        caption class="visually-hidden" { "Members" }
                        thead { tr { th scope="col" { "Distinct id" } th scope="col" { "Person" } th scope="col" { span class="visually-hidden" { "Remove" } } } }
                        tbody {
                            @for m in &members.items {
                                tr {
                                    td { code { (m) } }
                                    td { a href=(format!("/ui/projects/{}/persons?distinct_id={}", project.0, urlencode(m))) { "Open person" } }
                                    td {
                                        form method="post" action=(format!("{base}/members/remove")) class="inline" {
                                            (frame.csrf())
                                            input type="hidden" name="distinct_id" value=(m);
                                            button type="submit" class="secondary" aria-label=(format!("Remove {m}")) { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if members.items.is_empty() { p { "No members yet." } }
                nav class="pages" aria-label="Member pages" {
                    @if offset > 0 { a rel="prev" href=(format!("{base}?offset={}", offset.saturating_sub(PAGE_SIZE))) { "← Previous" } }
                    @if u64::from(offset) + (members.items.len() as u64) < members.total {
                        a rel="next" href=(format!("{base}?offset={}", offset + PAGE_SIZE)) { "Next →" }
                    }
                }
            }
        }
        section aria-labelledby="edit" {
            h2 id="edit" { "Edit" }
            form method="post" action=(base) novalidate {
                (frame.csrf())
                input type="hidden" name="version" value=(cohort.version);
                input type="hidden" name="mode" value="rows";
                label for="name" { "Name" }
                input id="name" name="name" required value=(draft.name)
                    aria-invalid=[invalid(problems, "name")] aria-describedby=[described(problems, "name")];
                (field_error(problems, "name"))
                label for="description" { "Description (optional)" }
                input id="description" name="description" value=(draft.description);
                @if !cohort.is_static {
                    @match &draft.tree {
                        Some(tree) => {
                            (conditions::editor(tree, &problems.errors, &keys))
                        }
                        None => {
                            p class="hint" { "These conditions are nested deeper than groups of rows (or use event filters): edit them as JSON below." }
                        }
                    }
                }
                p { button type="submit" { "Save" } }
            }
            @if !cohort.is_static {
                form method="post" action=(base) novalidate {
                    (frame.csrf())
                    input type="hidden" name="version" value=(cohort.version);
                    input type="hidden" name="mode" value="json";
                    input type="hidden" name="name" value=(draft.name);
                    input type="hidden" name="description" value=(draft.description);
                    label for="filters" { "Conditions as JSON (PostHog's cohort filters)" }
                    textarea id="filters" name="filters" rows="10" data-json
                        aria-invalid=[invalid(problems, "filters")]
                        aria-describedby=(format!("filters-check{}", if problems.at("filters").is_some() { " filters-error" } else { "" })) {
                        (draft.json)
                    }
                    p class="hint" id="filters-check" aria-live="polite" {}
                    (field_error(problems, "filters"))
                    p { button type="submit" class="secondary" { "Save JSON" } }
                }
            }
        }
        section aria-labelledby="meta" {
            h2 id="meta" { "Details" }
            dl class="meta" {
                dt { "Id" } dd { (cohort.id) }
                dt { "Version" } dd { (cohort.version) }
                dt { "Created by" } dd { (cohort.created_by.as_deref().unwrap_or("—")) }
                dt { "Updated" } dd { (cohort.updated_at.format("%Y-%m-%d %H:%M UTC")) }
            }
        }
    })
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `POST …/cohorts/{id}/members` (multipart): add the CSV's and the typed distinct ids.
pub async fn add_members(
    State(state): State<AppState>,
    Path((project, id)): Path<(i64, i64)>,
    form: UiForm,
) -> Result<Response, UiError> {
    let (frame, cohort) = load_cohort(&state, form.viewer.clone(), project, id).await?;
    let problems = match members_of(&form) {
        Ok(ids) if ids.is_empty() => {
            Problems::one("csv", "Choose a CSV file or type at least one distinct id.")
        }
        Ok(ids) => {
            let body: Map<String, Value> = [("distinct_ids".to_owned(), json!(ids))]
                .into_iter()
                .collect();
            let writer = state.clone();
            let written = to_completion(async move {
                update_with(&writer, ProjectId(project), id, &body, None).await
            })
            .await;
            match written {
                Ok(_) => return Ok(see_other(&format!("{}/{id}#members", base(project)))),
                Err(e) if e.status.is_client_error() => Problems::api(&e, None),
                Err(e) => return Err(UiError::Api(e)),
            }
        }
        Err(problems) => problems,
    };
    let draft = Draft {
        name: cohort.name.clone(),
        description: cohort.description.clone(),
        tree: None,
        json: String::new(),
    };
    let page = detail_page(&state, &frame, &cohort, draft, &problems, 0).await?;
    Ok((StatusCode::BAD_REQUEST, frame.page(&cohort.name, page)).into_response())
}

/// `POST …/cohorts/{id}/members/remove`: remove one distinct id.
pub async fn remove_member(
    State(state): State<AppState>,
    Path((project, id)): Path<(i64, i64)>,
    form: UiForm,
) -> Result<Response, UiError> {
    let (_, _) = load_cohort(&state, form.viewer.clone(), project, id).await?;
    let member = form.fields.text("distinct_id").to_owned();
    if member.is_empty() {
        return Err(UiError::BadForm("Which distinct id to remove is missing."));
    }
    let writer = state.clone();
    to_completion(
        async move { remove_members_with(&writer, ProjectId(project), id, &[member]).await },
    )
    .await?;
    Ok(see_other(&format!("{}/{id}#members", base(project))))
}

/// `GET …/cohorts/{id}/delete`: the confirmation, naming what uses the cohort.
pub async fn confirm_delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, id)): Path<(i64, i64)>,
) -> Result<Html<String>, UiError> {
    let (frame, cohort) = load_cohort(&state, viewer, project, id).await?;
    let snapshot = state.snapshot(ProjectId(project)).await?;
    let users: Vec<String> = usage_counts(snapshot.flags())
        .into_iter()
        .filter(|(c, _)| *c == id)
        .map(|(_, k)| k)
        .collect();
    let base = format!("{}/{id}", base(project));
    let body = html! {
        p class="crumbs" { a href=(base) { "← " (cohort.name) } }
        h1 { "Delete " (cohort.name) "?" }
        @if users.is_empty() {
            p { "No flag uses this cohort." }
            form method="post" action=(format!("{base}/delete")) class="confirm" {
                (frame.csrf())
                input type="hidden" name="version" value=(cohort.version);
                button type="submit" class="danger" { "Delete " (cohort.name) }
                a href=(base) { "Cancel" }
            }
        } @else {
            p role="alert" class="error" { "Flags that use it: " (users.join(", ")) ". A cohort in use cannot be deleted: remove it from their release conditions first." }
            p { a href=(base) { "Back to the cohort" } }
        }
    };
    Ok(frame.page(&format!("Delete {}", cohort.name), body))
}

/// `POST …/cohorts/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path((project, id)): Path<(i64, i64)>,
    form: UiForm,
) -> Result<Response, UiError> {
    let (_, _) = load_cohort(&state, form.viewer.clone(), project, id).await?;
    let mut body = Map::new();
    body.insert("deleted".into(), json!(true));
    body.insert("version".into(), json!(form.fields.text("version")));
    let writer = state.clone();
    to_completion(async move { update_with(&writer, ProjectId(project), id, &body, None).await })
        .await?;
    Ok(see_other(&base(project)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cohort_references_anywhere_in_stored_filters() {
        let flag = json!({
            "groups": [{"properties": [{"key": "id", "type": "cohort", "value": 4},
                                       {"key": "plan", "type": "person", "value": 9}]}],
            "super_groups": [{"properties": [{"key": "id", "type": "cohort", "value": "7"}]}],
        });
        let cohort = json!({"properties": {"type": "OR", "values": [{"type": "AND", "values": [
            {"key": "id", "type": "cohort", "value": 12, "negation": true}]}]}});
        let mut ids = Vec::new();
        cohort_ids_in(&flag, &mut ids);
        cohort_ids_in(&cohort, &mut ids);
        assert_eq!(ids, [4, 7, 12]);
    }
}
