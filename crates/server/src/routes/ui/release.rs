//! The structured editor of a flag's `filters`: condition sets (each with property, group
//! property, cohort and flag-dependency rows, a rollout and an optional variant override),
//! aggregation by group type, variants with their payloads, a boolean payload and a holdout.
//!
//! A stored `filters` is shown in the form only when the form gives it back unchanged
//! ([`Release::of`] checks the round trip); anything else (an extra field, a negated row, a
//! value shape the rows cannot type) is edited as JSON, so the form never drops what it does
//! not show. The form is plain HTML: repeated fields in order (`row_group`, `row_type`, …),
//! blank rows ignored, one spare row per condition set and one spare condition set, kept once
//! it has a filter or a rollout.

use maud::{html, Markup};
use serde_json::{json, Map, Value};

use vexil_store::ProjectId;

use super::conditions::{hint, PROPERTY_OPERATORS};
use super::page::UiError;
use super::session::Fields;
use super::suggest;
use crate::state::AppState;

/// What a row tests.
const ROW_TYPES: &[(&str, &str)] = &[
    ("person", "person property"),
    ("group", "group property"),
    ("cohort", "cohort (id)"),
    ("flag", "flag (id) evaluates to"),
];

/// Variant rows the form shows at least (blank ones are ignored).
const VARIANT_ROWS: usize = 4;

/// Operators of cohort and flag rows, after the property ones.
const OTHER_OPERATORS: &[(&str, &str)] = &[
    ("in", "is in (cohort)"),
    ("not_in", "is not in (cohort)"),
    ("flag_evaluates_to", "evaluates to (flag)"),
];

/// One row as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// `person`, `group`, `cohort` or `flag`.
    pub kind: String,
    /// Property key, cohort marker (`id`) or the flag's id.
    pub key: String,
    /// The operator (empty: stored without one).
    pub operator: String,
    /// The value as typed (lists joined by commas).
    pub value: String,
    /// How the value is stored: `list`, `text`, `number`, `bool` or empty (typed by operator).
    pub shape: String,
    /// A group row's group type index.
    pub group_type: String,
    /// A cohort row's cohort id (its `value`).
    pub cohort: String,
}

/// One condition set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Rollout % as typed (empty: stored without one, meaning 100).
    pub rollout: String,
    /// Variant override (empty: none).
    pub variant: String,
    /// Its rows.
    pub rows: Vec<Row>,
}

/// One variant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantRow {
    /// Its key.
    pub key: String,
    /// Its name (empty: none).
    pub name: String,
    /// Rollout % as typed.
    pub rollout: String,
    /// Its payload (JSON text, empty: none).
    pub payload: String,
}

/// The form's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Release {
    /// `aggregation_group_type_index` as typed (empty: persons).
    pub aggregation: String,
    /// The condition sets.
    pub groups: Vec<Group>,
    /// The variants (none: a boolean flag).
    pub variants: Vec<VariantRow>,
    /// The payload of `true` (boolean flags).
    pub payload: String,
    /// Holdout id as typed (empty: none).
    pub holdout_id: String,
    /// Holdout exclusion % as typed.
    pub holdout_exclusion: String,
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A value and the shape to store it back in.
fn value_of(v: Option<&Value>) -> (String, String) {
    match v {
        None | Some(Value::Null) => (String::new(), String::new()),
        Some(Value::Array(items)) => (
            items
                .iter()
                .map(|i| text_of(Some(i)))
                .collect::<Vec<_>>()
                .join(", "),
            "list".to_owned(),
        ),
        Some(Value::String(s)) => (s.clone(), "text".to_owned()),
        Some(Value::Number(n)) => (n.to_string(), "number".to_owned()),
        Some(Value::Bool(b)) => (b.to_string(), "bool".to_owned()),
        Some(other) => (other.to_string(), "json".to_owned()),
    }
}

/// A typed number: an integer when it is one, so `100` stays `100`.
fn number(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Some(json!(i));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(|f| json!(f))
}

/// Whether two filters say the same: numbers by value, and a `null` member as absent where
/// PostHog reads it so (not a condition's `aggregation_group_type_index`, where `null` means
/// persons rather than the flag's own).
fn same(a: &Value, b: &Value) -> bool {
    same_at(a, b, true)
}

fn same_at(a: &Value, b: &Value, top: bool) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_at(a, b, false))
        }
        (Value::Object(x), Value::Object(y)) => {
            let kept =
                |k: &str, v: &Value| !v.is_null() || (k == "aggregation_group_type_index" && !top);
            let present = |m: &Map<String, Value>| m.iter().filter(|(k, v)| kept(k, v)).count();
            present(x) == present(y)
                && x.iter()
                    .filter(|(k, v)| kept(k, v))
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_at(v, w, false)))
        }
        _ => a == b,
    }
}

/// A field the form names, and why it is refused.
pub type Problem = (String, String);

impl Release {
    /// The form for stored `filters`, or `None` when the form could not give them back
    /// unchanged (edit them as JSON).
    pub fn of(filters: &Value) -> Option<Release> {
        let release = Release::read(filters)?;
        let back = release.filters().ok()?;
        same(&back, filters).then_some(release)
    }

    fn read(filters: &Value) -> Option<Release> {
        let f = filters.as_object()?;
        let empty = Vec::new();
        let payloads = f.get("payloads").and_then(Value::as_object);
        let payload = |key: &str| text_of(payloads.and_then(|p| p.get(key)));
        let groups = match f.get("groups") {
            None | Some(Value::Null) => &empty,
            Some(g) => g.as_array()?,
        };
        let groups = groups
            .iter()
            .map(|g| {
                let rows = match g.get("properties") {
                    None | Some(Value::Null) => &empty,
                    Some(p) => p.as_array()?,
                };
                Some(Group {
                    rollout: text_of(g.get("rollout_percentage")),
                    variant: text_of(g.get("variant")),
                    rows: rows.iter().map(row_of).collect(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let variants = f
            .get("multivariate")
            .and_then(|m| m.get("variants"))
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .iter()
            .map(|v| {
                let key = text_of(v.get("key"));
                VariantRow {
                    payload: payload(&key),
                    name: text_of(v.get("name")),
                    rollout: text_of(v.get("rollout_percentage")),
                    key,
                }
            })
            .collect();
        let holdout = f.get("holdout");
        Some(Release {
            aggregation: text_of(f.get("aggregation_group_type_index")),
            groups,
            variants,
            payload: payload("true"),
            holdout_id: text_of(holdout.and_then(|h| h.get("id"))),
            holdout_exclusion: text_of(holdout.and_then(|h| h.get("exclusion_percentage"))),
        })
    }

    /// The form's state from submitted fields: blank rows, the spare condition set left
    /// blank and removed sets dropped.
    pub fn from_form(form: &Fields) -> Release {
        let list = |name: &str| -> Vec<String> { form.all(name).map(str::to_owned).collect() };
        let at = |list: &[String], i: usize| list.get(i).map_or("", |v| v.trim()).to_owned();
        let (rollouts, variants_of, spares, removed) = (
            list("group_rollout"),
            list("group_variant"),
            list("group_spare"),
            list("group_remove"),
        );
        let mut groups: Vec<Group> = (0..rollouts.len())
            .map(|i| Group {
                rollout: at(&rollouts, i),
                variant: at(&variants_of, i),
                rows: Vec::new(),
            })
            .collect();
        let (row_groups, kinds, keys, ops, values, shapes, types, cohorts) = (
            list("row_group"),
            list("row_type"),
            list("row_key"),
            list("row_operator"),
            list("row_value"),
            list("row_shape"),
            list("row_group_type"),
            list("row_cohort"),
        );
        for (i, group) in row_groups.iter().enumerate() {
            let row = Row {
                kind: at(&kinds, i),
                key: at(&keys, i),
                operator: at(&ops, i),
                value: at(&values, i),
                shape: at(&shapes, i),
                group_type: at(&types, i),
                cohort: at(&cohorts, i),
            };
            let blank = match row.kind.as_str() {
                "cohort" => row.cohort.is_empty(),
                _ => row.key.is_empty(),
            };
            let group = group.trim().parse::<usize>().ok();
            if let (false, Some(g)) = (blank, group.and_then(|g| groups.get_mut(g))) {
                g.rows.push(row);
            }
        }
        let mut index = 0;
        groups.retain(|g| {
            index += 1;
            let at = index - 1;
            let removed = removed.iter().any(|r| r.trim() == at.to_string());
            let spare = spares.get(at).is_some_and(|s| s == "1");
            let blank = g.rows.is_empty() && g.rollout.is_empty() && g.variant.is_empty();
            let unused = spare && blank;
            !removed && !unused
        });
        let (vkeys, vnames, vrollouts, vpayloads) = (
            list("variant_key"),
            list("variant_name"),
            list("variant_rollout"),
            list("variant_payload"),
        );
        let variants = (0..vkeys.len())
            .map(|i| VariantRow {
                key: at(&vkeys, i),
                name: at(&vnames, i),
                rollout: at(&vrollouts, i),
                payload: at(&vpayloads, i),
            })
            .filter(|v| !v.key.is_empty())
            .collect();
        Release {
            aggregation: form.text("aggregation").trim().to_owned(),
            groups,
            variants,
            payload: form.text("payload").trim().to_owned(),
            holdout_id: form.text("holdout_id").trim().to_owned(),
            holdout_exclusion: form.text("holdout_exclusion").trim().to_owned(),
        }
    }

    /// The API's `filters`, or the form field at fault and why.
    pub fn filters(&self) -> Result<Value, Problem> {
        let bad = |field: String, message: String| Err((field, message));
        let mut f = Map::new();
        if !self.aggregation.is_empty() {
            match self.aggregation.parse::<i64>() {
                Ok(i) => f.insert("aggregation_group_type_index".into(), json!(i)),
                Err(_) => {
                    return bad(
                        "aggregation".into(),
                        "Choose persons or a group type.".into(),
                    )
                }
            };
        }
        let mut groups = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let mut properties = Vec::new();
            for (r, row) in group.rows.iter().enumerate() {
                properties.push(row.filter().map_err(|m| (format!("cond-{g}-{r}"), m))?);
            }
            let mut out = Map::new();
            out.insert("properties".into(), Value::Array(properties));
            if !group.rollout.is_empty() {
                let Some(n) = number(&group.rollout) else {
                    return bad(
                        format!("cond-{g}-rollout"),
                        format!(
                            "Condition set {}: the rollout must be a number from 0 to 100.",
                            g + 1
                        ),
                    );
                };
                out.insert("rollout_percentage".into(), n);
            }
            if !group.variant.is_empty() {
                out.insert("variant".into(), json!(group.variant));
            }
            groups.push(Value::Object(out));
        }
        f.insert("groups".into(), Value::Array(groups));
        let mut payloads = Map::new();
        if !self.variants.is_empty() {
            let mut variants = Vec::new();
            for v in &self.variants {
                let Some(share) = number(&v.rollout) else {
                    return bad(
                        "variants".into(),
                        format!(
                            "Variant {}: the rollout must be a number from 0 to 100.",
                            v.key
                        ),
                    );
                };
                let mut out = Map::new();
                out.insert("key".into(), json!(v.key));
                if !v.name.is_empty() {
                    out.insert("name".into(), json!(v.name));
                }
                out.insert("rollout_percentage".into(), share);
                variants.push(Value::Object(out));
                if !v.payload.is_empty() {
                    if serde_json::from_str::<Value>(&v.payload).is_err() {
                        return bad(
                            "variants".into(),
                            format!("Variant {}: the payload is not valid JSON.", v.key),
                        );
                    }
                    payloads.insert(v.key.clone(), json!(v.payload));
                }
            }
            f.insert("multivariate".into(), json!({"variants": variants}));
        }
        if !self.payload.is_empty() {
            if !self.variants.is_empty() {
                return bad(
                    "payload".into(),
                    "A multivariate flag has a payload per variant: give it in the variant rows."
                        .into(),
                );
            }
            if serde_json::from_str::<Value>(&self.payload).is_err() {
                return bad("payload".into(), "The payload is not valid JSON.".into());
            }
            payloads.insert("true".into(), json!(self.payload));
        }
        if !payloads.is_empty() {
            f.insert("payloads".into(), Value::Object(payloads));
        }
        if !self.holdout_id.is_empty() {
            let id = number(&self.holdout_id).unwrap_or_else(|| json!(self.holdout_id));
            let Some(exclusion) = number(&self.holdout_exclusion) else {
                return bad(
                    "holdout".into(),
                    "The holdout's exclusion must be a number from 0 to 100.".into(),
                );
            };
            f.insert(
                "holdout".into(),
                json!({"id": id, "exclusion_percentage": exclusion}),
            );
        }
        Ok(Value::Object(f))
    }
}

fn row_of(p: &Value) -> Row {
    let kind = p
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("person")
        .to_owned();
    let (value, shape) = value_of(p.get("value"));
    let (value, cohort) = if kind == "cohort" {
        (String::new(), value)
    } else {
        (value, String::new())
    };
    Row {
        key: text_of(p.get("key")),
        operator: text_of(p.get("operator")),
        group_type: text_of(p.get("group_type_index")),
        kind,
        value,
        shape,
        cohort,
    }
}

impl Row {
    /// The stored property filter, or why not.
    fn filter(&self) -> Result<Value, String> {
        let mut out = Map::new();
        let kind = self.kind.as_str();
        if !ROW_TYPES.iter().any(|(k, _)| *k == kind) {
            return Err(format!("Unknown filter type {kind:?}."));
        }
        // PostHog's cohort rows are keyed `id`, the cohort being the value.
        let key = if kind == "cohort" && self.key.is_empty() {
            "id"
        } else {
            self.key.as_str()
        };
        out.insert("key".into(), json!(key));
        out.insert("type".into(), json!(kind));
        // The row's type decides what a cohort or flag row's operator can be.
        let operator = match (kind, self.operator.as_str()) {
            ("cohort", op @ ("" | "in" | "not_in")) => op,
            ("cohort", _) => "in",
            ("flag", _) => "flag_evaluates_to",
            (_, op) => op,
        };
        if !operator.is_empty() {
            out.insert("operator".into(), json!(operator));
        }
        let raw = if kind == "cohort" {
            self.cohort.as_str()
        } else {
            self.value.as_str()
        };
        let no_value = raw.is_empty()
            && self.shape.is_empty()
            && !matches!(self.operator.as_str(), "is_set" | "is_not_set");
        let value = match (self.shape.as_str(), kind) {
            ("list", _) => json!(raw
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()),
            ("text", _) => json!(raw),
            ("number", _) | (_, "cohort") => number(raw).unwrap_or_else(|| json!(raw)),
            ("bool", _) | (_, "flag") => match raw {
                "true" => json!(true),
                "false" => json!(false),
                other => json!(other),
            },
            ("json", _) => {
                serde_json::from_str(raw).map_err(|_| "The value is not valid JSON.".to_owned())?
            }
            _ => super::conditions::property_value(&self.operator, raw),
        };
        if !no_value {
            out.insert("value".into(), value);
        }
        if kind == "group" {
            match self.group_type.parse::<i64>() {
                Ok(i) => {
                    out.insert("group_type_index".into(), json!(i));
                }
                Err(_) => return Err("A group property needs its group type.".to_owned()),
            }
        }
        Ok(Value::Object(out))
    }
}

/// What the form needs to offer: group types `(index, name)`, property keys with hints, and
/// flags `(id, key)` for dependency rows.
pub struct Choices<'a> {
    /// The project's group types.
    pub group_types: &'a [(i64, String)],
    /// Property key suggestions.
    pub property_keys: &'a [(String, String)],
    /// Other flags.
    pub flags: &'a [(i64, String)],
}

/// What the form offers for a project: its group types, property key suggestions and its
/// flags (the one being edited left out).
pub struct Offered {
    group_types: Vec<(i64, String)>,
    property_keys: Vec<(String, String)>,
    flags: Vec<(i64, String)>,
}

impl Offered {
    /// Reads them for `project`, leaving flag `except` out of the dependency choices.
    pub async fn load(
        state: &AppState,
        project: ProjectId,
        except: Option<i64>,
    ) -> Result<Offered, UiError> {
        let group_types = state
            .store
            .group_types(project)
            .await?
            .into_iter()
            .map(|g| (g.group_type_index, g.name))
            .collect();
        let property_keys = suggest::person_keys(state, project).await?;
        let snapshot = state.snapshot(project).await?;
        let flags = snapshot
            .flags()
            .iter()
            .filter(|f| Some(f.id) != except)
            .map(|f| (f.id, f.key.clone()))
            .collect();
        Ok(Offered {
            group_types,
            property_keys,
            flags,
        })
    }

    /// Borrowed for [`render`].
    pub fn choices(&self) -> Choices<'_> {
        Choices {
            group_types: &self.group_types,
            property_keys: &self.property_keys,
            flags: &self.flags,
        }
    }
}

/// The form's fields (inside the caller's `<form>`); `problem` is shown at its field.
pub fn render(release: &Release, choices: &Choices<'_>, problem: Option<&Problem>) -> Markup {
    let error_at = |field: &str| problem.filter(|(f, _)| f == field).map(|(_, m)| m.as_str());
    let described = |field: &str, base: Option<String>| {
        let error = error_at(field).map(|_| format!("{field}-error"));
        match (base, error) {
            (Some(b), Some(e)) => Some(format!("{b} {e}")),
            (b, e) => b.or(e),
        }
    };
    let error = |field: &str| {
        html! {
            @if let Some(m) = error_at(field) { p class="field-error" id=(format!("{field}-error")) { (m) } }
        }
    };
    let variant_keys: Vec<&str> = release.variants.iter().map(|v| v.key.as_str()).collect();
    html! {
        input type="hidden" name="mode" value="form";
        datalist id="property-keys" { @for (k, hint) in choices.property_keys { option value=(k) { (hint) } } }
        datalist id="flag-ids" { @for (id, key) in choices.flags { option value=(id) { (key) } } }
        fieldset class="release" {
            legend { "Release conditions" }
            label for="aggregation" { "Match by" }
            select id="aggregation" name="aggregation" aria-describedby=[described("aggregation", None)] {
                option value="" selected[release.aggregation.is_empty()] { "Persons" }
                @for (i, name) in choices.group_types {
                    option value=(i) selected[release.aggregation == i.to_string()] { "Groups: " (name) }
                }
            }
            (error("aggregation"))
            @if release.groups.is_empty() { p { "No condition set: nobody gets the flag." } }
            @let spare_group = Group::default();
            @for (g, group) in release.groups.iter().chain(std::iter::once(&spare_group)).enumerate() {
                @let n = g + 1;
                @let spare = g == release.groups.len();
                fieldset class="condition-set" id=(format!("cond-{g}")) {
                    legend { "Condition set " (n) @if spare { " (new: give it a filter or a rollout to add it)" } }
                    input type="hidden" name="group_spare" value=(if spare { "1" } else { "0" });
                    @if !spare { p class="hint" { "All filters must match (AND); the flag matches when any condition set does (OR). No filter: everyone." } }
                    @let spare_row = Row { kind: "person".to_owned(), operator: "exact".to_owned(), ..Row::default() };
                    @for (r, row) in group.rows.iter().chain(std::iter::once(&spare_row)).enumerate() {
                        @let id = format!("cond-{g}-{r}");
                        @let label = format!("Condition {n} filter {}", r + 1);
                        div class="cond-row" {
                            input type="hidden" name="row_group" value=(g);
                            input type="hidden" name="row_shape" value=(row.shape);
                            div {
                                label for=(format!("{id}-type")) { (label) " type" }
                                select id=(format!("{id}-type")) name="row_type" {
                                    @for (v, l) in ROW_TYPES { option value=(v) selected[row.kind == *v] { (l) } }
                                }
                            }
                            div {
                                label for=(format!("{id}-key")) { (label) " key" }
                                input id=(format!("{id}-key")) name="row_key" value=(row.key)
                                    list=(if row.kind == "flag" { "flag-ids" } else { "property-keys" })
                                    aria-invalid=[error_at(&id).map(|_| "true")]
                                    aria-describedby=[described(&id, None)];
                            }
                            div {
                                label for=(format!("{id}-operator")) { (label) " operator" }
                                select id=(format!("{id}-operator")) name="row_operator" {
                                    @if row.operator.is_empty() && row.kind != "person" { option value="" selected { "(stored without one)" } }
                                    @for (v, l, h) in PROPERTY_OPERATORS { option value=(v) data-hint=(h) selected[row.operator == *v] { (l) } }
                                    @for (v, l) in OTHER_OPERATORS { option value=(v) selected[row.operator == *v] { (l) } }
                                }
                            }
                            div {
                                label for=(format!("{id}-value")) { (label) " value" }
                                input id=(format!("{id}-value")) name="row_value" value=(row.value)
                                    placeholder=(if row.kind == "flag" { "true, false or a variant" } else { hint(&row.operator) });
                            }
                            div {
                                label for=(format!("{id}-group-type")) { (label) " group type" }
                                select id=(format!("{id}-group-type")) name="row_group_type" {
                                    option value="" { "—" }
                                    @for (i, name) in choices.group_types {
                                        option value=(i) selected[row.group_type == i.to_string()] { (name) }
                                    }
                                }
                            }
                            div {
                                label for=(format!("{id}-cohort")) { (label) " cohort id" }
                                input id=(format!("{id}-cohort")) name="row_cohort" value=(row.cohort) inputmode="numeric";
                            }
                        }
                        (error(&id))
                    }
                    div class="row" {
                        div {
                            label for=(format!("cond-{g}-rollout")) { "Condition " (n) " rollout %" }
                            input id=(format!("cond-{g}-rollout")) name="group_rollout" type="number" min="0" max="100" step="any"
                                value=(group.rollout) placeholder=(if spare { "" } else { "100" })
                                aria-invalid=[error_at(&format!("cond-{g}-rollout")).map(|_| "true")]
                                aria-describedby=[described(&format!("cond-{g}-rollout"), None)];
                        }
                        div {
                            label for=(format!("cond-{g}-variant")) { "Condition " (n) " variant override" }
                            select id=(format!("cond-{g}-variant")) name="group_variant" {
                                option value="" selected[group.variant.is_empty()] { "None (by rollout)" }
                                @if !group.variant.is_empty() && !variant_keys.contains(&group.variant.as_str()) {
                                    option value=(group.variant) selected { (group.variant) }
                                }
                                @for key in &variant_keys { option value=(key) selected[group.variant == *key] { (key) } }
                            }
                        }
                        @if !spare {
                            div {
                                label { input type="checkbox" name="group_remove" value=(g); " Remove condition set " (n) }
                            }
                        }
                    }
                    (error(&format!("cond-{g}-rollout")))
                }
            }
        }
        fieldset aria-describedby="variant-sum" {
            legend { "Variants (optional: multivariate flag)" }
            @let spare_variants = VARIANT_ROWS.saturating_sub(release.variants.len()).max(1);
            @for (i, v) in release.variants.iter().cloned().chain(std::iter::repeat_n(VariantRow::default(), spare_variants)).enumerate() {
                div class="row" {
                    div {
                        label for=(format!("variant-key-{i}")) { "Variant " (i + 1) " key" }
                        input id=(format!("variant-key-{i}")) name="variant_key" value=(v.key);
                    }
                    div {
                        label for=(format!("variant-name-{i}")) { "Variant " (i + 1) " name" }
                        input id=(format!("variant-name-{i}")) name="variant_name" value=(v.name);
                    }
                    div {
                        label for=(format!("variant-rollout-{i}")) { "Variant " (i + 1) " rollout %" }
                        input id=(format!("variant-rollout-{i}")) name="variant_rollout" type="number"
                            min="0" max="100" step="any" value=(v.rollout);
                    }
                    div {
                        label for=(format!("variant-payload-{i}")) { "Variant " (i + 1) " payload (JSON)" }
                        input id=(format!("variant-payload-{i}")) name="variant_payload" value=(v.payload);
                    }
                }
            }
            p class="hint" id="variant-sum" aria-live="polite" { "Variant rollouts must sum to 100%. Rows with a blank key are ignored." }
            (error("variants"))
        }
        label for="payload" { "Payload (JSON, optional; boolean flags)" }
        textarea id="payload" name="payload" rows="3" data-json
            aria-invalid=[error_at("payload").map(|_| "true")]
            aria-describedby=(described("payload", Some("payload-check".to_owned())).unwrap_or_default()) { (release.payload) }
        p class="hint" id="payload-check" aria-live="polite" {}
        (error("payload"))
        fieldset {
            legend { "Holdout (optional)" }
            div class="row" {
                div {
                    label for="holdout-id" { "Holdout id" }
                    input id="holdout-id" name="holdout_id" value=(release.holdout_id);
                }
                div {
                    label for="holdout-exclusion" { "Held out %" }
                    input id="holdout-exclusion" name="holdout_exclusion" type="number" min="0" max="100" step="any"
                        value=(release.holdout_exclusion)
                        aria-describedby=[described("holdout", None)];
                }
            }
            (error("holdout"))
        }
    }
}

/// Where the API's `attr` is shown in the form (`filters.groups[1].properties[0].value` →
/// `cond-1-0`), or `None` for a field the form does not have.
pub fn field_of(attr: &str) -> Option<String> {
    let index = |s: &str, name: &str| -> Option<usize> {
        let at = s.find(&format!("{name}["))? + name.len() + 1;
        s[at..].split(']').next()?.parse().ok()
    };
    if attr.starts_with("filters.groups") {
        let g = index(attr, "groups")?;
        return Some(match index(attr, "properties") {
            Some(r) => format!("cond-{g}-{r}"),
            None => format!("cond-{g}-rollout"),
        });
    }
    Some(
        match attr {
            a if a.starts_with("filters.multivariate") => "variants",
            a if a.starts_with("filters.payloads") => "payload",
            a if a.starts_with("filters.holdout") => "holdout",
            a if a.starts_with("filters.aggregation_group_type_index") => "aggregation",
            _ => return None,
        }
        .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(filters: Value) {
        let release = Release::of(&filters).expect("shown in the form");
        let html = render(
            &release,
            &Choices {
                group_types: &[(0, "company".to_owned())],
                property_keys: &[],
                flags: &[],
            },
            None,
        )
        .into_string();
        let fields = fields_of(&release);
        for (name, _) in &fields.0 {
            assert!(
                html.contains(&format!("name=\"{name}\"")),
                "the form has {name}"
            );
        }
        let again = Release::from_form(&fields);
        assert_eq!(again, release, "read back from its fields");
        assert!(same(&again.filters().unwrap(), &filters), "{filters}");
    }

    /// The fields a browser submits for `release` (the spare rows left blank).
    fn fields_of(r: &Release) -> Fields {
        let mut f = vec![("mode".to_owned(), "form".to_owned())];
        let mut push = |k: &str, v: &str| f.push((k.to_owned(), v.to_owned()));
        push("aggregation", &r.aggregation);
        let spare = Row {
            kind: "person".into(),
            operator: "exact".into(),
            ..Row::default()
        };
        let push_row = |push: &mut dyn FnMut(&str, &str), g: usize, row: &Row| {
            push("row_group", &g.to_string());
            push("row_shape", &row.shape);
            push("row_type", &row.kind);
            push("row_key", &row.key);
            push("row_operator", &row.operator);
            push("row_value", &row.value);
            push("row_group_type", &row.group_type);
            push("row_cohort", &row.cohort);
        };
        for (g, group) in r.groups.iter().enumerate() {
            for row in group.rows.iter().chain([&spare]) {
                push_row(&mut push, g, row);
            }
            push("group_rollout", &group.rollout);
            push("group_variant", &group.variant);
            push("group_spare", "0");
        }
        // The spare condition set, left blank: one spare row.
        push_row(&mut push, r.groups.len(), &spare);
        push("group_rollout", "");
        push("group_variant", "");
        push("group_spare", "1");
        let spare = VARIANT_ROWS.saturating_sub(r.variants.len()).max(1);
        for v in r
            .variants
            .iter()
            .cloned()
            .chain(std::iter::repeat_n(VariantRow::default(), spare))
        {
            push("variant_key", &v.key);
            push("variant_name", &v.name);
            push("variant_rollout", &v.rollout);
            push("variant_payload", &v.payload);
        }
        push("payload", &r.payload);
        push("holdout_id", &r.holdout_id);
        push("holdout_exclusion", &r.holdout_exclusion);
        Fields(f)
    }

    #[test]
    fn what_the_form_shows_comes_back_unchanged() {
        round_trip(json!({"groups": []}));
        round_trip(json!({
            "aggregation_group_type_index": 0,
            "groups": [
                {"properties": [
                    {"key": "email", "type": "person", "operator": "icontains", "value": "@example.com"},
                    {"key": "plan", "type": "person", "operator": "exact", "value": ["pro", "team"]},
                    {"key": "seats", "type": "group", "group_type_index": 0, "operator": "gt", "value": 10},
                    {"key": "id", "type": "cohort", "operator": "in", "value": 12},
                    {"key": "7", "type": "flag", "operator": "flag_evaluates_to", "value": "test"},
                ], "rollout_percentage": 50, "variant": "test"},
                {"properties": [], "rollout_percentage": 100.0, "variant": null},
            ],
            "multivariate": {"variants": [
                {"key": "control", "name": "Control", "rollout_percentage": 50},
                {"key": "test", "rollout_percentage": 50},
            ]},
            "payloads": {"test": "{\"theme\": \"dark\"}"},
            "holdout": {"id": 3, "exclusion_percentage": 10},
        }));
        round_trip(json!({"groups": [{"properties": [
            {"key": "beta", "type": "person", "operator": "is_set", "value": "is_set"},
            {"key": "id", "type": "cohort", "value": "12"},
        ]}], "payloads": {"true": "[1, 2]"}}));
    }

    #[test]
    fn what_the_form_cannot_show_is_left_to_json() {
        for filters in [
            json!({"groups": [], "super_groups": [{"properties": []}]}),
            json!({"groups": [{"properties": [
                {"key": "plan", "type": "person", "operator": "exact", "value": "pro", "negation": true}
            ]}]}),
            json!({"groups": [{"properties": [], "description": "staff"}]}),
            json!({"groups": [{"properties": [{"key": "n", "value": [1, 2]}]}]}),
            json!({"groups": [{"rollout_percentage": 10}]}),
            json!({"groups": [{"properties": [], "aggregation_group_type_index": null}]}),
            json!([]),
        ] {
            assert!(Release::of(&filters).is_none(), "{filters}");
        }
    }

    #[test]
    fn form_errors_name_their_field() {
        let mut r =
            Release::of(&json!({"groups": [{"properties": [], "rollout_percentage": 5}]})).unwrap();
        r.groups[0].rollout = "lots".into();
        assert_eq!(r.filters().unwrap_err().0, "cond-0-rollout");
        r.groups[0].rollout = "5".into();
        r.groups[0].rows.push(Row {
            kind: "group".into(),
            key: "seats".into(),
            operator: "gt".into(),
            value: "3".into(),
            ..Row::default()
        });
        assert_eq!(r.filters().unwrap_err().0, "cond-0-0");
        assert_eq!(
            field_of("filters.groups[1].properties[2].value").as_deref(),
            Some("cond-1-2")
        );
        assert_eq!(
            field_of("filters.groups[0].rollout_percentage").as_deref(),
            Some("cond-0-rollout")
        );
        assert_eq!(
            field_of("filters.multivariate.variants[0]").as_deref(),
            Some("variants")
        );
        assert_eq!(field_of("key"), None);
    }

    #[test]
    fn removing_and_adding_condition_sets() {
        let r = Release::of(&json!({"groups": [
            {"properties": [], "rollout_percentage": 10},
            {"properties": [], "rollout_percentage": 20},
        ]}))
        .unwrap();
        let mut fields = fields_of(&r);
        fields.0.push(("group_remove".into(), "0".into()));
        // The spare set is the last `group_rollout`: given a rollout, it is added.
        let spare = fields
            .0
            .iter()
            .rposition(|(k, _)| k == "group_rollout")
            .unwrap();
        fields.0[spare].1 = "30".into();
        let after = Release::from_form(&fields);
        let rollouts: Vec<&str> = after.groups.iter().map(|g| g.rollout.as_str()).collect();
        assert_eq!(rollouts, ["20", "30"]);
    }
}
