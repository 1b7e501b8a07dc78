//! "Test a user" on a flag: a distinct id (and optional person properties and groups) → the
//! value, payload and reason from the server's one evaluation path (stored properties, cohorts
//! and counts included), then per condition which filters matched with the property values
//! actually used, and the person's rollout and variant hash buckets — "why did X get this?".

use maud::{html, Markup};
use serde_json::{Map, Value};
use vexil_engine::hash::hash01;
use vexil_engine::property::{MatchOptions, Operator, PropertyCheck};
use vexil_store::FeatureFlag;
use vexil_wire::request::FlagsRequest;

use super::flags::filter_text;
use crate::evaluate::{behavior_counts, Stored};
use crate::extract::Params;
use crate::snapshot::ProjectSnapshot;
use crate::state::AppState;

/// The question: who, with which extra properties and groups.
#[derive(Debug, Clone)]
pub struct Test {
    /// The distinct id.
    pub distinct_id: String,
    /// Person properties layered over the stored ones (JSON object text as typed).
    pub properties_text: String,
    /// Groups (`{"company": "acme"}`) as typed.
    pub groups_text: String,
    properties: Map<String, Value>,
    groups: Map<String, Value>,
}

/// A problem with the question, shown at its field.
#[derive(Debug, Clone)]
pub struct TestError {
    /// The field id at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
    /// The question as typed.
    pub test: Test,
}

fn object(text: &str, field: &'static str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!(
            "{field} must be a JSON object, like {{\"plan\": \"pro\"}}."
        )),
        Err(e) => Err(format!("{field} is not valid JSON: {e}.")),
    }
}

impl Test {
    /// The question in the query string, if one was asked (`distinct_id` present).
    pub fn from_params(params: &Params) -> Option<Result<Test, TestError>> {
        let distinct_id = params.get("distinct_id")?.trim().to_owned();
        let properties_text = params.get("properties").unwrap_or_default().to_owned();
        let groups_text = params.get("groups").unwrap_or_default().to_owned();
        let mut test = Test {
            distinct_id,
            properties_text,
            groups_text,
            properties: Map::new(),
            groups: Map::new(),
        };
        let fail = |field, message, test: Test| {
            Some(Err(TestError {
                field,
                message,
                test,
            }))
        };
        if test.distinct_id.is_empty() {
            return fail("test-distinct-id", "Enter a distinct id.".to_owned(), test);
        }
        match object(&test.properties_text, "Properties") {
            Ok(m) => test.properties = m,
            Err(message) => return fail("test-properties", message, test),
        }
        match object(&test.groups_text, "Groups") {
            Ok(m) => test.groups = m,
            Err(message) => return fail("test-groups", message, test),
        }
        Some(Ok(test))
    }
}

/// One property filter of a condition, checked.
#[derive(Debug, Clone)]
pub struct FilterCheck {
    /// `email icontains "@example.com"`.
    pub text: String,
    /// The value used (request over stored); `None` when the person has none.
    pub actual: Option<Value>,
    /// Whether it matched; `None` for filters decided elsewhere (cohorts, flags, groups).
    pub matched: Option<bool>,
}

/// One condition, checked.
#[derive(Debug, Clone)]
pub struct ConditionCheck {
    /// Its filters.
    pub filters: Vec<FilterCheck>,
    /// Its rollout percentage.
    pub rollout: f64,
}

/// The answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The flag's value (`false` when disabled).
    pub value: Value,
    /// The payload of that value.
    pub payload: Option<Value>,
    /// The reason code and its description.
    pub reason: String,
    /// Which condition decided (0-based).
    pub condition_index: Option<usize>,
    /// Every condition, checked.
    pub conditions: Vec<ConditionCheck>,
    /// The person's rollout bucket (0–100).
    pub rollout_bucket: f64,
    /// The person's variant bucket (0–100).
    pub variant_bucket: f64,
    /// When stored data could not be read.
    pub error: Option<String>,
}

/// What the server's evaluation path reads from storage for `distinct_id` (and `groups`):
/// the person's stored inputs and behavioural counts, or — when that read fails — the failure
/// the engine is told about, with the error's text.
pub async fn stored_for(
    state: &AppState,
    snapshot: &ProjectSnapshot,
    distinct_id: &str,
    groups: &Map<String, Value>,
) -> (Stored, Option<String>) {
    let now = state.settings.clock.now();
    let project = snapshot.project.id;
    let group_keys = snapshot.group_keys(Some(groups));
    let lookup: Vec<(i64, &str)> = group_keys.iter().map(|(i, k)| (*i, k.as_str())).collect();
    let stored = async {
        let counts = behavior_counts(state, snapshot, distinct_id, now)
            .await
            .map_err(|e| e.to_string())?;
        let inputs = state
            .store
            .evaluation_inputs(
                project,
                distinct_id,
                &lookup,
                snapshot.uses_continuity(),
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(Stored::Loaded(inputs, counts))
    }
    .await;
    match stored {
        Ok(s) => (s, None),
        Err(e) => (
            Stored::Failed(vexil_engine::ErrorCode::DatabaseError),
            Some(e),
        ),
    }
}

/// Evaluates `flag` for `test` on the server's evaluation path.
pub async fn run(
    state: &AppState,
    snapshot: &ProjectSnapshot,
    flag: &FeatureFlag,
    test: &Test,
) -> Answer {
    let now = state.settings.clock.now();
    let (stored, error) = stored_for(state, snapshot, &test.distinct_id, &test.groups).await;
    let request = FlagsRequest {
        distinct_id: Some(test.distinct_id.clone()),
        groups: Some(test.groups.clone()),
        person_properties: Some(test.properties.clone()),
        // Only this flag (and what it depends on): not the whole project.
        flag_keys: Some(vec![flag.key.clone()]),
        ..FlagsRequest::default()
    };
    let evaluation = snapshot.evaluate(&request, None, &stored, now);
    let mut person = stored
        .inputs()
        .and_then(|i| i.person_properties.clone())
        .unwrap_or_default();
    person.extend(test.properties.clone());
    person.insert(
        "distinct_id".into(),
        Value::String(test.distinct_id.clone()),
    );

    let (value, payload, reason, condition_index) = match evaluation.get(&flag.key) {
        Some(r) => (
            r.value.to_json(),
            r.payload.cloned(),
            format!("{} — {}", r.reason.code.as_str(), r.reason.description()),
            r.reason.condition_index,
        ),
        None => (
            Value::Bool(false),
            None,
            "disabled — the flag is disabled".to_owned(),
            None,
        ),
    };
    let prefix = format!("{}.", flag.key);
    Answer {
        value,
        payload,
        reason,
        condition_index,
        conditions: check_conditions(&flag.filters, &person, now),
        rollout_bucket: hash01(&prefix, &test.distinct_id, "") * 100.0,
        variant_bucket: hash01(&prefix, &test.distinct_id, "variant") * 100.0,
        error,
    }
}

fn check_conditions(
    filters: &Value,
    person: &Map<String, Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<ConditionCheck> {
    let empty = Vec::new();
    let groups = filters
        .get("groups")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    groups
        .iter()
        .map(|group| {
            let props = group
                .get("properties")
                .and_then(Value::as_array)
                .unwrap_or(&empty);
            ConditionCheck {
                filters: props.iter().map(|p| check_filter(p, person, now)).collect(),
                rollout: group
                    .get("rollout_percentage")
                    .and_then(Value::as_f64)
                    .unwrap_or(100.0),
            }
        })
        .collect()
}

fn check_filter(
    filter: &Value,
    person: &Map<String, Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> FilterCheck {
    let text = filter_text(filter);
    let kind = filter
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("person");
    if kind != "person" {
        return FilterCheck {
            text,
            actual: None,
            matched: None,
        };
    }
    let key = filter
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let actual = person.get(key).cloned();
    let matched = filter
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or("exact")
        .parse::<Operator>()
        .ok()
        .and_then(|op| PropertyCheck::new(op, filter.get("value"), MatchOptions::default()).ok())
        .map(|check| check.matches(actual.as_ref(), now));
    FilterCheck {
        text,
        actual,
        matched,
    }
}

/// The form and, when asked, the answer.
pub fn section(
    base: &str,
    test: Option<&Result<Test, TestError>>,
    answer: Option<&Answer>,
) -> Markup {
    let (typed, error) = match test {
        Some(Ok(t)) => (Some(t), None),
        Some(Err(e)) => (Some(&e.test), Some(e)),
        None => (None, None),
    };
    let err_for = |field: &str| {
        error
            .filter(|e| e.field == field)
            .map(|e| e.message.clone())
    };
    let described = |field: &'static str| {
        error
            .filter(|e| e.field == field)
            .map(|_| format!("{field}-error"))
    };
    html! {
        section aria-labelledby="test" id="test-a-user" {
            h2 id="test" { "Test a user" }
            form method="get" action=(format!("{base}#test-a-user")) class="test-form" {
                label for="test-distinct-id" { "Distinct id" }
                input id="test-distinct-id" name="distinct_id" required
                    value=(typed.map(|t| t.distinct_id.as_str()).unwrap_or_default())
                    aria-invalid=[described("test-distinct-id").map(|_| "true")]
                    aria-describedby=[described("test-distinct-id")];
                @if let Some(m) = err_for("test-distinct-id") { p class="field-error" id="test-distinct-id-error" { (m) } }
                label for="test-properties" { "Person properties (JSON, optional)" }
                textarea id="test-properties" name="properties" rows="2"
                    aria-invalid=[described("test-properties").map(|_| "true")]
                    aria-describedby=[described("test-properties")] {
                    (typed.map(|t| t.properties_text.as_str()).unwrap_or_default())
                }
                @if let Some(m) = err_for("test-properties") { p class="field-error" id="test-properties-error" { (m) } }
                label for="test-groups" { "Groups (JSON, optional)" }
                textarea id="test-groups" name="groups" rows="1"
                    aria-invalid=[described("test-groups").map(|_| "true")]
                    aria-describedby=[described("test-groups")] {
                    (typed.map(|t| t.groups_text.as_str()).unwrap_or_default())
                }
                @if let Some(m) = err_for("test-groups") { p class="field-error" id="test-groups-error" { (m) } }
                button type="submit" { "Test" }
            }
            @if let Some(a) = answer {
                div class="answer" role="status" {
                    @if let Some(e) = &a.error {
                        p class="error" { "Stored data could not be read (" (e) "): the answer uses the typed properties only." }
                    }
                    dl class="meta" {
                        dt { "Value" } dd { code class="value" { (a.value) } }
                        dt { "Payload" } dd { @if let Some(p) = &a.payload { code { (p) } } @else { "—" } }
                        dt { "Reason" } dd class="reason" { (a.reason) }
                        dt { "Rollout bucket" } dd { (format!("{:.2}", a.rollout_bucket)) " (in a condition's rollout when ≤ its percentage)" }
                        dt { "Variant bucket" } dd { (format!("{:.2}", a.variant_bucket)) }
                    }
                    ol class="checks" {
                        @for (i, c) in a.conditions.iter().enumerate() {
                            li class=[(a.condition_index == Some(i)).then_some("decided")] {
                                strong { "Condition " (i + 1) }
                                @if a.condition_index == Some(i) { " — decided the value" }
                                ul {
                                    @if c.filters.is_empty() { li { "Everyone ✓" } }
                                    @for f in &c.filters {
                                        li {
                                            (f.text) " — "
                                            @match f.matched {
                                                Some(true) => span class="yes" { "matched ✓" },
                                                Some(false) => span class="no" { "did not match ✗" },
                                                None => span { "decided by the server (see reason)" },
                                            }
                                            @if f.matched.is_some() {
                                                " (value: "
                                                @match &f.actual { Some(v) => code { (v) }, None => "not set" }
                                                ")"
                                            }
                                        }
                                    }
                                }
                                p { "Rollout " (c.rollout) "%: bucket " (format!("{:.2}", a.rollout_bucket))
                                    @if a.rollout_bucket <= c.rollout { " is inside ✓" } @else { " is outside ✗" } }
                            }
                        }
                    }
                }
            }
        }
    }
}
