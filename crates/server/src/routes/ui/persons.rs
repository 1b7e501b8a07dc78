//! Persons: find one by distinct id or by a property value, and a person's page — their
//! properties, distinct ids and static cohorts, and every flag's value, payload and reason for
//! them from the server's one evaluation path (the same stored inputs as "test a user"), each
//! linking to that flag's "test a user" explanation. The flag table shows
//! [`FLAGS_PER_PAGE`] flags a page, by key, with a key search; only the page's flags are
//! evaluated.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{Map, Value};
use vexil_store::{Person, ProjectId};
use vexil_wire::request::FlagsRequest;

use super::super::api::cohort_members::MAX_DISTINCT_ID_CHARS;
use super::page::{Frame, UiError};
use super::session::Viewer;
use super::test_user::stored_for;
use crate::extract::Params;
use crate::state::AppState;

/// Persons a property search shows at most.
const MAX_FOUND: u32 = 50;

/// Flags per page of a person's flag table (each page evaluates only its own flags).
pub const FLAGS_PER_PAGE: usize = 100;

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn person_link(project: i64, distinct_id: &str) -> String {
    format!(
        "/ui/projects/{project}/persons/view?distinct_id={}",
        urlencode(distinct_id)
    )
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `GET /ui/projects/{project}/persons[?distinct_id=… | ?key=…&value=…]`.
pub async fn find(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<i64>,
    params: Params,
) -> Result<Response, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    let distinct_id = params.non_empty("distinct_id").map(str::trim);
    let key = params.non_empty("key").map(str::trim).unwrap_or_default();
    let value = params.get("value").map(str::trim).unwrap_or_default();
    let mut error: Option<(&str, String)> = None;
    let mut found: Option<Vec<Person>> = None;
    if let Some(id) = distinct_id {
        if id.chars().count() > MAX_DISTINCT_ID_CHARS {
            error = Some((
                "distinct-id",
                format!("A distinct id is at most {MAX_DISTINCT_ID_CHARS} characters."),
            ));
        } else if state
            .store
            .get_person(ProjectId(project), id)
            .await?
            .is_some()
        {
            return Ok(super::page::see_other(&person_link(project, id)));
        } else {
            found = Some(Vec::new());
        }
    } else if !key.is_empty() {
        found = Some(
            state
                .store
                .find_persons(ProjectId(project), key, value, MAX_FOUND)
                .await?,
        );
    } else if params.get("key").is_some() {
        error = Some(("property-key", "Give the property to search by.".to_owned()));
    }
    let keys = super::suggest::person_keys(&state, ProjectId(project)).await?;
    let error_for = |field: &str| error.as_ref().filter(|(f, _)| *f == field).map(|(_, m)| m);
    let base = format!("/ui/projects/{project}/persons");
    let body = html! {
        h1 { "Persons" }
        div class="finders" {
            form method="get" action=(base) role="search" class="filters" {
                div {
                    label for="distinct-id" { "Distinct id" }
                    input id="distinct-id" name="distinct_id" value=(distinct_id.unwrap_or_default())
                        aria-invalid=[error_for("distinct-id").map(|_| "true")]
                        aria-describedby=[error_for("distinct-id").map(|_| "distinct-id-error")];
                }
                button type="submit" { "Find by distinct id" }
            }
            @if let Some(m) = error_for("distinct-id") { p class="field-error" id="distinct-id-error" { (m) } }
            form method="get" action=(base) role="search" class="filters" {
                div {
                    label for="property-key" { "Property" }
                    input id="property-key" name="key" list="property-keys" value=(key)
                        aria-invalid=[error_for("property-key").map(|_| "true")]
                        aria-describedby=[error_for("property-key").map(|_| "property-key-error")];
                    datalist id="property-keys" { @for (k, hint) in &keys { option value=(k) { (hint) } } }
                }
                div {
                    label for="property-value" { "Value" }
                    input id="property-value" name="value" value=(value) aria-describedby="property-value-hint";
                }
                button type="submit" { "Find by property" }
            }
            p class="hint" id="property-value-hint" { "Exact value; numbers and true/false as written in JSON. Shows the " (MAX_FOUND) " newest matches." }
            @if let Some(m) = error_for("property-key") { p class="field-error" id="property-key-error" { (m) } }
        }
        @if let Some(found) = &found {
            h2 { "Results" }
            @if found.is_empty() {
                p role="status" { "No person matches. Persons are created when events or identify calls arrive." }
            } @else {
                p class="count" role="status" { (found.len()) " found" (if found.len() as u32 == MAX_FOUND { " (the newest; narrow the search for others)" } else { "" }) }
                div class="table-wrap" {
                    table {
                        caption class="visually-hidden" { "Persons found" }
                        thead { tr { th scope="col" { "Person" } th scope="col" { "Distinct ids" } th scope="col" { "Created" } } }
                        tbody {
                            @for p in found {
                                @let first = p.distinct_ids.first().cloned().unwrap_or_default();
                                tr {
                                    td { a href=(person_link(project, &first)) { (display_name(p)) } }
                                    td { (p.distinct_ids.join(", ")) }
                                    td { (p.created_at.format("%Y-%m-%d %H:%M")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame.page("Persons", body).into_response())
}

fn display_name(p: &Person) -> String {
    ["email", "name"]
        .iter()
        .find_map(|k| p.properties.get(*k).and_then(Value::as_str))
        .or_else(|| p.distinct_ids.first().map(String::as_str))
        .unwrap_or_default()
        .to_owned()
}

/// `GET /ui/projects/{project}/persons/view?distinct_id=…`: the person and every flag's
/// value for them.
pub async fn view(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<i64>,
    params: Params,
) -> Result<Response, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    let Some(distinct_id) = params.non_empty("distinct_id").map(str::trim) else {
        return Err(UiError::BadForm(
            "Which person? Give ?distinct_id= (find one on the Persons page).",
        ));
    };
    let person = state
        .store
        .get_person(ProjectId(project), distinct_id)
        .await?;
    let snapshot = state.snapshot(ProjectId(project)).await?;
    let (stored, error) = stored_for(&state, &snapshot, distinct_id, &Map::new()).await;
    let search = params
        .non_empty("search")
        .map(str::trim)
        .unwrap_or_default();
    let offset = params
        .non_empty("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let cohorts = state
        .store
        .static_cohorts_for(ProjectId(project), distinct_id)
        .await?;
    let mut cohorts: Vec<i64> = cohorts.into_iter().collect();
    cohorts.sort_unstable();
    let needle = search.to_lowercase();
    let mut matching: Vec<&vexil_engine::FlagDefinition> = snapshot
        .flags()
        .iter()
        .map(AsRef::as_ref)
        .filter(|f| !f.deleted && (needle.is_empty() || f.key.to_lowercase().contains(&needle)))
        .collect();
    matching.sort_by(|a, b| a.key.cmp(&b.key));
    let total = matching.len();
    let flags: Vec<&vexil_engine::FlagDefinition> = matching
        .into_iter()
        .skip(offset)
        .take(FLAGS_PER_PAGE)
        .collect();
    // Only this page's flags (and, through `flag_keys`, their dependencies) are evaluated.
    let request = FlagsRequest {
        distinct_id: Some(distinct_id.to_owned()),
        flag_keys: Some(flags.iter().map(|f| f.key.clone()).collect()),
        ..FlagsRequest::default()
    };
    let now = state.settings.clock.now();
    let evaluation = snapshot.evaluate(&request, None, &stored, now);
    let page_link = |offset: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("distinct_id", distinct_id);
        if !search.is_empty() {
            q.append_pair("search", search);
        }
        q.append_pair("offset", &offset.to_string());
        format!("/ui/projects/{project}/persons/view?{}#flags", q.finish())
    };
    let first = if flags.is_empty() { 0 } else { offset + 1 };
    let last = offset + flags.len();
    let title = person
        .as_ref()
        .map_or_else(|| distinct_id.to_owned(), display_name);
    let test_link = |id: i64| {
        format!(
            "/ui/projects/{project}/flags/{id}?distinct_id={}#test-a-user",
            urlencode(distinct_id)
        )
    };
    let body = html! {
        p class="crumbs" { a href=(format!("/ui/projects/{project}/persons")) { "← Find persons" } }
        h1 { (title) }
        @if let Some(e) = &error {
            p class="error" role="alert" { "Stored data could not be read (" (e) "): flags that need it show as failed." }
        }
        @match &person {
            None => p role="status" { "No stored person has the distinct id " code { (distinct_id) } ": the flags below are evaluated with no stored properties." },
            Some(p) => (person_details(project, p, &cohorts)),
        }
        section aria-labelledby="flags" {
            h2 id="flags" { "Flags for " code { (distinct_id) } }
            form class="filters" method="get" action=(format!("/ui/projects/{project}/persons/view")) role="search" {
                input type="hidden" name="distinct_id" value=(distinct_id);
                div {
                    label for="flag-search" { "Search flag key" }
                    input id="flag-search" name="search" type="search" value=(search);
                }
                button type="submit" { "Search flags" }
            }
            p class="count" aria-live="polite" { "Showing " (first) "–" (last) " of " (total) " flags" }
            @if total == 0 {
                p { (if search.is_empty() { "The project has no flag yet." } else { "No flag matches." }) }
            }
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Every flag's value for this person" }
                    thead { tr {
                        th scope="col" { "Flag" } th scope="col" { "Value" } th scope="col" { "Payload" }
                        th scope="col" { "Reason" } th scope="col" { "Why" }
                    } }
                    tbody {
                        @for f in &flags {
                            @let result = evaluation.get(&f.key);
                            tr {
                                td { a href=(format!("/ui/projects/{project}/flags/{}", f.id)) { code { (f.key) } } }
                                @match result {
                                    Some(r) => {
                                        td { code class="value" { (r.value.to_json()) } }
                                        td { @match r.payload { Some(p) => code { (p) }, None => "—" } }
                                        td { (r.reason.code.as_str()) " — " (r.reason.description()) }
                                    }
                                    None => {
                                        td { code class="value" { "false" } }
                                        td { "—" }
                                        td { (if f.active { "not evaluated" } else { "disabled — the flag is disabled" }) }
                                    }
                                }
                                td { a href=(test_link(f.id)) aria-label=(format!("Explain {} for this person", f.key)) { "Explain" } }
                            }
                        }
                    }
                }
            }
            nav class="pages" aria-label="Pages of flags" {
                @if offset > 0 {
                    a rel="prev" href=(page_link(offset.saturating_sub(FLAGS_PER_PAGE))) { "← Previous" }
                }
                @if last < total {
                    a rel="next" href=(page_link(offset + FLAGS_PER_PAGE)) { "Next →" }
                }
            }
        }
    };
    let status = if person.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    Ok((status, frame.page(&title, body)).into_response())
}

fn person_details(project: i64, p: &Person, cohorts: &[i64]) -> Markup {
    let mut props: Vec<(&String, &Value)> = p.properties.iter().collect();
    props.sort_by(|a, b| a.0.cmp(b.0));
    html! {
        section aria-labelledby="ids" {
            h2 id="ids" { "Distinct ids" }
            ul { @for id in &p.distinct_ids { li { code { (id) } } } }
            dl class="meta" {
                dt { "Identified" } dd { (if p.is_identified { "yes" } else { "no" }) }
                dt { "Created" } dd { (p.created_at.format("%Y-%m-%d %H:%M UTC")) }
                dt { "Person id" } dd { code { (p.uuid) } }
                dt { "Static cohorts" } dd {
                    @if cohorts.is_empty() { "none" }
                    @for (i, c) in cohorts.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href=(format!("/ui/projects/{project}/cohorts/{c}")) { "cohort " (c) }
                    }
                }
            }
        }
        section aria-labelledby="props" {
            h2 id="props" { "Properties (" (props.len()) ")" }
            @if props.is_empty() { p { "No stored property." } }
            div class="table-wrap" {
                table {
                    caption class="visually-hidden" { "Properties" }
                    thead { tr { th scope="col" { "Property" } th scope="col" { "Value" } } }
                    tbody {
                        @for (k, v) in &props {
                            tr { td { code { (k) } } td { code { (value_text(v)) } } }
                        }
                    }
                }
            }
        }
    }
}
