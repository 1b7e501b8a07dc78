//! The flag list (search, filters, order and pages, run on the server by the API's own
//! [`select`]), a flag's page (its conditions, the locality badge, the kill switch, "test a
//! user") and the kill switch's confirmation.

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde_json::{Map, Value};
use vexil_engine::model::Filters;
use vexil_store::{FeatureFlag, Page, ProjectId};

use super::super::api::flag_input;
use super::super::api::flag_list::ListQuery;
use super::super::api::flag_view::{stored_filters, FlagStatus};
use super::super::api::flags::{last_called, select, update_with};
use super::super::api::to_completion;
use super::locality::{self, Locality};
use super::page::{see_other, Frame, UiError};
use super::session::{UiForm, Viewer};
use super::test_user;
use super::usage::{self, ago};
use crate::extract::Params;
use crate::state::AppState;

/// Flags per page of the list.
pub const PAGE_SIZE: u32 = 50;

/// `GET /ui/projects/{project}/flags?search=&active=&type=&order=&offset=`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<i64>,
    params: Params,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    let project = frame.project()?.clone();
    let query = ListQuery::parse(&params)?;
    let offset = params
        .non_empty("offset")
        .and_then(|o| o.parse::<u32>().ok())
        .unwrap_or(0);
    let now = Utc::now();
    let selected = select(
        &state,
        project.id,
        &query,
        Page::new(PAGE_SIZE, offset),
        now,
    )
    .await?;
    let snapshot = state.snapshot(project.id).await?;
    let keys: Vec<&str> = selected.flags.iter().map(|f| f.key.as_str()).collect();
    let weeks = usage::weeks(&state, project.id, &keys, now).await?;
    let param = |name: &str| params.non_empty(name).unwrap_or_default().to_owned();
    let (search, active, kind, order) = (
        param("search"),
        param("active"),
        param("type"),
        param("order"),
    );
    let base = format!("/ui/projects/{}/flags", project.id);
    let page_link = |offset: u32| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("search", &search),
            ("active", &active),
            ("type", &kind),
            ("order", &order),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.append_pair("offset", &offset.to_string());
        format!("{base}?{}", q.finish())
    };
    let first = if selected.total == 0 {
        0
    } else {
        u64::from(offset) + 1
    };
    let last = u64::from(offset) + selected.flags.len() as u64;
    let body = html! {
        div class="title-row" {
            h1 { "Feature flags" }
            a class="button" href=(format!("{base}/new")) { "New flag" }
        }
        form class="filters" method="get" action=(base) role="search" {
            div {
                label for="search" { "Search key or name" }
                input id="search" name="search" type="search" value=(search);
            }
            div {
                label for="active" { "Status" }
                select id="active" name="active" {
                    (option("", "Any", &active))
                    (option("true", "Enabled", &active))
                    (option("false", "Disabled", &active))
                    (option("STALE", "Stale", &active))
                }
            }
            div {
                label for="type" { "Type" }
                select id="type" name="type" {
                    (option("", "Any", &kind))
                    (option("boolean", "Boolean", &kind))
                    (option("multivariant", "Multivariate", &kind))
                }
            }
            div {
                label for="order" { "Sort by" }
                select id="order" name="order" {
                    (option("", "Newest first", &order))
                    (option("key", "Key A–Z", &order))
                    (option("-key", "Key Z–A", &order))
                    (option("-updated_at", "Recently updated", &order))
                    (option("created_at", "Oldest first", &order))
                }
            }
            button type="submit" { "Apply" }
        }
        p class="count" aria-live="polite" { "Showing " (first) "–" (last) " of " (selected.total) " flags" }
        div class="table-wrap" {
            table {
                caption class="visually-hidden" { "Feature flags" }
                thead { tr {
                    th scope="col" { "Key" }
                    th scope="col" { "Name" }
                    th scope="col" { "Status" }
                    th scope="col" { "Type" }
                    th scope="col" { "Evaluation" }
                    th scope="col" { "Last evaluated" }
                    th scope="col" { "Last " (usage::DAYS) " days" }
                } }
                tbody {
                    @for flag in &selected.flags {
                        @let filters = stored_filters(flag);
                        @let called = selected.calls.get(&flag.key).copied();
                        tr {
                            td { a href=(format!("{base}/{}", flag.id)) { code { (flag.key) } } }
                            td { (flag.name) }
                            td { (status_badge(flag, &filters, called, now)) }
                            td { (if filters.variants().is_empty() { "Boolean" } else { "Multivariate" }) }
                            td { (locality_badge(&locality::of(&snapshot, &flag.definition(), flag.is_remote_configuration && flag.has_encrypted_payloads), false)) }
                            td { (ago(called, now)) }
                            td { @if let Some(week) = weeks.get(&flag.key) { (usage::cell(week)) } }
                        }
                    }
                }
            }
        }
        @if selected.flags.is_empty() {
            p { "No flag matches." }
        }
        nav class="pages" aria-label="Pages" {
            @if offset > 0 {
                a rel="prev" href=(page_link(offset.saturating_sub(PAGE_SIZE))) { "← Previous" }
            }
            @if last < selected.total {
                a rel="next" href=(page_link(offset + PAGE_SIZE)) { "Next →" }
            }
        }
    };
    Ok(frame.page("Feature flags", body))
}

fn option(value: &str, label: &str, current: &str) -> Markup {
    html! { option value=(value) selected[value.eq_ignore_ascii_case(current)] { (label) } }
}

/// Enabled / disabled / stale.
fn status_badge(
    flag: &FeatureFlag,
    filters: &Filters,
    called: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Markup {
    let stale = FlagStatus::of(flag, filters, called, now) == FlagStatus::Stale;
    html! {
        @if !flag.active { span class="badge off" { "Disabled" } }
        @else if stale { span class="badge stale" { "Stale" } }
        @else { span class="badge on" { "Enabled" } }
    }
}

/// The locality badge; `detailed` lists the reasons.
pub fn locality_badge(locality: &Locality, detailed: bool) -> Markup {
    match locality {
        Locality::Local => html! {
            span class="badge local" title="SDKs with the definitions feed evaluate it in-process" { "Evaluable locally" }
        },
        Locality::Server(reasons) => html! {
            span class="badge server" title=(reasons.join("; ")) { "Needs the server" }
            @if detailed {
                ul class="reasons" {
                    @for r in reasons { li { (r) } }
                }
            }
        },
    }
}

/// `GET /ui/projects/{project}/flags/{id}[?distinct_id=…]`: the flag, and the "test a user"
/// answer when a distinct id is given.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, id)): Path<(i64, i64)>,
    params: Params,
) -> Result<Html<String>, UiError> {
    let (frame, flag) = Frame::load_with_flag(&state, viewer, ProjectId(project), id).await?;
    let snapshot = state.snapshot(flag.project_id).await?;
    let filters = stored_filters(&flag);
    let calls = last_called(&state, flag.project_id).await?;
    let now = Utc::now();
    let weeks = usage::weeks(&state, flag.project_id, &[flag.key.as_str()], now).await?;
    let base = format!("/ui/projects/{project}/flags/{id}");
    let locality = locality::of(
        &snapshot,
        &flag.definition(),
        flag.is_remote_configuration && flag.has_encrypted_payloads,
    );
    let test = test_user::Test::from_params(&params);
    let answer = match &test {
        Some(Ok(input)) => Some(test_user::run(&state, &snapshot, &flag, input).await),
        _ => None,
    };
    let body = html! {
        p class="crumbs" { a href=(format!("/ui/projects/{project}/flags")) { "← All flags" } }
        div class="title-row" {
            h1 { code { (flag.key) } }
            (status_badge(&flag, &filters, calls.get(&flag.key).copied(), now))
            a class="button secondary" href=(format!("{base}/edit")) { "Edit flag" }
            a class="button secondary" href=(format!("{base}/activity")) { "Activity" }
        }
        @if !flag.name.is_empty() { p class="lead" { (flag.name) } }
        section aria-labelledby="where" {
            h2 id="where" { "Where it evaluates" }
            (locality_badge(&locality, true))
        }
        section aria-labelledby="switch" class="switch" {
            h2 id="switch" { "Kill switch" }
            @if flag.active {
                p { "The flag is enabled: its conditions decide who gets it." }
                a class="button danger" href=(format!("{base}/disable")) { "Disable flag…" }
            } @else {
                p { "The flag is disabled: everyone gets " code { "false" } "." }
                form method="post" action=(format!("{base}/enable")) {
                    (frame.csrf())
                    input type="hidden" name="version" value=(flag.version);
                    button type="submit" { "Enable flag" }
                }
            }
        }
        section aria-labelledby="conditions" {
            h2 id="conditions" { "Release conditions" }
            (conditions(&flag.filters))
        }
        @if let Some(week) = weeks.get(&flag.key) {
            (usage::section(week, calls.get(&flag.key).copied(), now))
        }
        (test_user::section(&base, test.as_ref(), answer.as_ref()))
        section aria-labelledby="meta" {
            h2 id="meta" { "Details" }
            dl class="meta" {
                dt { "Version" } dd { (flag.version) }
                dt { "Created by" } dd { (flag.created_by.as_deref().unwrap_or("—")) }
                dt { "Last modified by" } dd { (flag.last_modified_by.as_deref().unwrap_or("—")) }
                dt { "Updated" } dd { (flag.updated_at.format("%Y-%m-%d %H:%M UTC")) }
            }
        }
    };
    Ok(frame.page(&flag.key, body))
}

/// The flag's conditions, variants and payloads as stored.
fn conditions(filters: &Value) -> Markup {
    let empty = Vec::new();
    let groups = filters
        .get("groups")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let variants = filters
        .pointer("/multivariate/variants")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let payloads = filters.get("payloads").and_then(Value::as_object);
    html! {
        @if groups.is_empty() { p { "No condition: nobody gets the flag." } }
        ol class="conditions" {
            @for (i, group) in groups.iter().enumerate() {
                li {
                    h3 { "Condition " (i + 1) }
                    @let props = group.get("properties").and_then(Value::as_array).unwrap_or(&empty);
                    @if props.is_empty() { p { "Everyone" } }
                    ul {
                        @for p in props {
                            li { (filter_text(p)) }
                        }
                    }
                    p { "Rollout: " (percent(group.get("rollout_percentage"))) }
                    @if let Some(v) = group.get("variant").and_then(Value::as_str) {
                        p { "Variant override: " code { (v) } }
                    }
                }
            }
        }
        @if !variants.is_empty() {
            h3 { "Variants" }
            table {
                thead { tr { th scope="col" { "Key" } th scope="col" { "Rollout" } th scope="col" { "Payload" } } }
                tbody {
                    @for v in variants {
                        @let key = v.get("key").and_then(Value::as_str).unwrap_or_default();
                        tr {
                            td { code { (key) } }
                            td { (percent(v.get("rollout_percentage"))) }
                            td { (payload_text(payloads, key)) }
                        }
                    }
                }
            }
        } @else if let Some(p) = payloads.and_then(|p| p.get("true")) {
            p { "Payload: " code { (json_text(p)) } }
        }
    }
}

fn payload_text(payloads: Option<&Map<String, Value>>, key: &str) -> String {
    payloads
        .and_then(|p| p.get(key))
        .map(json_text)
        .unwrap_or_else(|| "—".to_owned())
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn percent(v: Option<&Value>) -> String {
    match v.and_then(Value::as_f64) {
        Some(p) => format!("{p}%"),
        None => "100%".to_owned(),
    }
}

/// `email icontains "@example.com"` for a property filter.
pub fn filter_text(p: &Value) -> String {
    let key = p.get("key").map(json_text).unwrap_or_default();
    let kind = p.get("type").and_then(Value::as_str).unwrap_or("person");
    let op = p.get("operator").and_then(Value::as_str).unwrap_or("exact");
    let value = p.get("value").map(|v| v.to_string()).unwrap_or_default();
    match kind {
        "cohort" => format!("in cohort {key}"),
        "flag" => format!("flag {key} evaluates to {value}"),
        "person" => format!("{key} {op} {value}"),
        other => format!("{other} property {key} {op} {value}"),
    }
}

/// `GET …/{id}/disable`: the kill switch's confirmation.
pub async fn confirm_disable(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((project, id)): Path<(i64, i64)>,
) -> Result<Html<String>, UiError> {
    let (frame, flag) = Frame::load_with_flag(&state, viewer, ProjectId(project), id).await?;
    let base = format!("/ui/projects/{project}/flags/{id}");
    let body = html! {
        h1 { "Disable " code { (flag.key) } "?" }
        p { "Everyone will get " code { "false" } " from the next request on, whatever the conditions say. You can enable it again at any time." }
        form method="post" action=(format!("{base}/disable")) class="confirm" {
            (frame.csrf())
            input type="hidden" name="version" value=(flag.version);
            button type="submit" class="danger" { "Disable " (flag.key) }
            a class="button secondary" href=(base) { "Cancel" }
        }
    };
    Ok(frame.page("Disable flag", body))
}

/// `POST …/{id}/disable` and `…/enable`: one write through the API's update path (the
/// activity log names the user).
pub async fn set_active(
    state: AppState,
    project: i64,
    id: i64,
    form: UiForm,
    active: bool,
) -> Result<Response, UiError> {
    let (frame, flag) = Frame::load_with_flag(&state, form.viewer, ProjectId(project), id).await?;
    let mut fields = Map::new();
    fields.insert("active".into(), Value::Bool(active));
    let write = flag_input::parse(&fields, false)?;
    let actor = frame.viewer.actor();
    let project_id = flag.project_id;
    to_completion(async move {
        update_with(&state, project_id, &actor, id, &write, &fields)
            .await
            .map(|_| see_other(&format!("/ui/projects/{project}/flags/{id}")))
    })
    .await
    .map_err(UiError::Api)
}

/// `POST …/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    Path((project, id)): Path<(i64, i64)>,
    form: UiForm,
) -> Result<Response, UiError> {
    set_active(state, project, id, form, false).await
}

/// `POST …/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    Path((project, id)): Path<(i64, i64)>,
    form: UiForm,
) -> Result<Response, UiError> {
    set_active(state, project, id, form, true).await
}
