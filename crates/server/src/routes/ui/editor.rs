//! The new-flag editor: key, name, one release condition on a person property (every property
//! operator, value hints by operator), rollout, up to four variants with a live sum check, and
//! a JSON payload checked as typed. It posts the API's own fields to the API's create path, so
//! a 400 comes back naming its field (`attr`) and is shown at that field.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde_json::{json, Map, Value};
use vexil_store::ProjectId;

use super::super::api::flags::create_with;
use super::super::api::to_completion;
use super::conditions::{hint, property_value, PROPERTY_OPERATORS};
use super::page::{see_other, Frame, UiError};
use super::session::{Fields, UiForm, Viewer};
use super::suggest;
use crate::state::AppState;

/// Variant rows the form offers.
const VARIANT_ROWS: usize = 4;

/// Where an error is shown: a field id of the form, or the top of the form.
fn field_of(attr: Option<&str>) -> &'static str {
    match attr.unwrap_or_default() {
        "key" => "key",
        "name" => "name",
        a if a.contains("payload") => "payload",
        a if a.contains("multivariate") || a.contains("variant") => "variants",
        a if a.contains("rollout") => "rollout",
        a if a.contains("properties") || a.contains("groups") => "property-key",
        _ => "form",
    }
}

/// `GET /ui/projects/{project}/flags/new`.
pub async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(project): Path<i64>,
) -> Result<Html<String>, UiError> {
    let frame = Frame::load(&state, viewer, Some(ProjectId(project))).await?;
    let suggestions = suggest::person_keys(&state, ProjectId(project)).await?;
    Ok(frame.page(
        "New flag",
        render(&frame, &Fields::default(), None, &suggestions),
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
    let suggestions = suggest::person_keys(&state, ProjectId(project)).await?;
    let page = frame.page(
        "New flag",
        render(&frame, &fields, Some(&problem), &suggestions),
    );
    Ok((StatusCode::BAD_REQUEST, page).into_response())
}

/// The API's fields from the form, or the field at fault and why.
fn api_fields(form: &Fields) -> Result<Map<String, Value>, (&'static str, String)> {
    let mut properties = Vec::new();
    let key = form.text("property_key");
    let operator = form.text("operator");
    if !key.is_empty() {
        let value = property_value(operator, form.text("property_value"));
        properties
            .push(json!({"key": key, "type": "person", "operator": operator, "value": value}));
    }
    let rollout_text = form.text("rollout");
    let rollout = if rollout_text.is_empty() {
        100.0
    } else {
        rollout_text.parse::<f64>().map_err(|_| {
            (
                "rollout",
                "The rollout must be a number from 0 to 100.".to_owned(),
            )
        })?
    };
    let mut filters = json!({
        "groups": [{"properties": properties, "rollout_percentage": rollout}],
    });
    let keys: Vec<&str> = form.all("variant_key").map(str::trim).collect();
    let shares: Vec<&str> = form.all("variant_rollout").map(str::trim).collect();
    let variant_payloads: Vec<&str> = form.all("variant_payload").map(str::trim).collect();
    let mut variants = Vec::new();
    let mut payloads = Map::new();
    for (i, key) in keys.iter().enumerate().filter(|(_, k)| !k.is_empty()) {
        let share = shares.get(i).copied().unwrap_or_default();
        let share: f64 = share.parse().map_err(|_| {
            (
                "variants",
                format!("Variant {key}: the rollout must be a number from 0 to 100."),
            )
        })?;
        variants.push(json!({"key": key, "rollout_percentage": share}));
        let payload = variant_payloads.get(i).copied().unwrap_or_default();
        if !payload.is_empty() {
            if serde_json::from_str::<Value>(payload).is_err() {
                return Err((
                    "variants",
                    format!("Variant {key}: the payload is not valid JSON."),
                ));
            }
            payloads.insert((*key).to_owned(), json!(payload));
        }
    }
    let payload_text = form.text("payload");
    if !payload_text.is_empty() {
        if !variants.is_empty() {
            return Err((
                "payload",
                "A multivariate flag has a payload per variant: give it in the variant rows."
                    .to_owned(),
            ));
        }
        if serde_json::from_str::<Value>(payload_text).is_err() {
            return Err(("payload", "The payload is not valid JSON.".to_owned()));
        }
        payloads.insert("true".into(), json!(payload_text));
    }
    if !payloads.is_empty() {
        filters["payloads"] = Value::Object(payloads);
    }
    if !variants.is_empty() {
        filters["multivariate"] = json!({"variants": variants});
    }
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
    problem: Option<&(&'static str, String)>,
    suggestions: &[(String, String)],
) -> Markup {
    let project = frame.current.as_ref().map_or(0, |p| p.id.0);
    let fresh = form.0.is_empty();
    let error_at = |field: &str| {
        problem
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    };
    let invalid = |field: &str| error_at(field).map(|_| "true");
    let described = |field: &str| error_at(field).map(|_| format!("{field}-error"));
    let error = |field: &str| {
        html! {
            @if let Some(m) = error_at(field) { p class="field-error" id=(format!("{field}-error")) { (m) } }
        }
    };
    let operator = if fresh {
        "exact"
    } else {
        form.text("operator")
    };
    let keys: Vec<&str> = form.all("variant_key").collect();
    let shares: Vec<&str> = form.all("variant_rollout").collect();
    let variant_payloads: Vec<&str> = form.all("variant_payload").collect();
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
            fieldset {
                legend { "Release condition" }
                div class="row" {
                    div {
                        label for="property-key" { "Person property" }
                        input id="property-key" name="property_key" list="property-keys"
                            value=(form.text("property_key")) placeholder="email"
                            aria-invalid=[invalid("property-key")] aria-describedby=[described("property-key")];
                        datalist id="property-keys" { @for (k, hint) in suggestions { option value=(k) { (hint) } } }
                    }
                    div {
                        label for="operator" { "Operator" }
                        select id="operator" name="operator" {
                            @for (value, label, _) in PROPERTY_OPERATORS {
                                option value=(value) selected[*value == operator] { (label) }
                            }
                        }
                    }
                    div {
                        label for="property-value" { "Value" }
                        input id="property-value" name="property_value" value=(form.text("property_value"))
                            aria-describedby="property-value-hint";
                    }
                }
                p class="hint" id="property-value-hint" {
                    "Value: " (hint(operator))
                    ". Leave the property empty to target everyone."
                }
                (error("property-key"))
                label for="rollout" { "Rollout (% of matching users)" }
                input id="rollout" name="rollout" type="number" min="0" max="100" step="any"
                    value=(if fresh { "100" } else { form.text("rollout") })
                    aria-invalid=[invalid("rollout")] aria-describedby=[described("rollout")];
                (error("rollout"))
            }
            fieldset aria-describedby="variant-sum" {
                legend { "Variants (optional: multivariate flag)" }
                @for i in 0..VARIANT_ROWS {
                    div class="row" {
                        div {
                            label for=(format!("variant-key-{i}")) { "Variant " (i + 1) " key" }
                            input id=(format!("variant-key-{i}")) name="variant_key"
                                value=(keys.get(i).copied().unwrap_or_default());
                        }
                        div {
                            label for=(format!("variant-rollout-{i}")) { "Variant " (i + 1) " rollout %" }
                            input id=(format!("variant-rollout-{i}")) name="variant_rollout" type="number"
                                min="0" max="100" step="any" value=(shares.get(i).copied().unwrap_or_default());
                        }
                        div {
                            label for=(format!("variant-payload-{i}")) { "Variant " (i + 1) " payload (JSON)" }
                            input id=(format!("variant-payload-{i}")) name="variant_payload"
                                value=(variant_payloads.get(i).copied().unwrap_or_default());
                        }
                    }
                }
                p class="hint" id="variant-sum" aria-live="polite" { "Variant rollouts must sum to 100%." }
                (error("variants"))
            }
            label for="payload" { "Payload (JSON, optional; boolean flags)" }
            textarea id="payload" name="payload" rows="3" data-json
                aria-invalid=[invalid("payload")] aria-describedby="payload-check" { (form.text("payload")) }
            p class="hint" id="payload-check" aria-live="polite" {}
            (error("payload"))
            p { button type="submit" { "Create flag" } }
        }
    }
}
