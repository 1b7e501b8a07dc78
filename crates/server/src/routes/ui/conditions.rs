//! The structured condition editor of cohorts: groups of rows joined by AND / OR, each row a
//! person-property test (every operator, value hints by operator), a cohort membership or a
//! behavioural criterion (performed an event, N times, or not, within a window) — turned into
//! the `filters.properties` tree the API accepts, and read back from a stored one. A tree the
//! rows cannot show (deeper nesting, event filters) is edited as JSON instead.
//!
//! The form is plain HTML: the rows are repeated fields (`row_group`, `row_key`, …) in order,
//! blank rows are ignored, and "add a row / group" re-renders the form with one more.

use maud::{html, Markup};
use serde_json::{json, Map, Value};

use super::session::Fields;

/// Person-property operators: value, label, hint for the value.
pub const PROPERTY_OPERATORS: &[(&str, &str, &str)] = &[
    (
        "exact",
        "equals",
        "one value, or several separated by commas",
    ),
    (
        "is_not",
        "does not equal",
        "one value, or several separated by commas",
    ),
    ("icontains", "contains (any case)", "text"),
    ("not_icontains", "does not contain", "text"),
    ("starts_with", "starts with", "text"),
    ("ends_with", "ends with", "text"),
    ("regex", "matches regex", "a regular expression"),
    ("not_regex", "does not match regex", "a regular expression"),
    ("gt", "greater than", "a number"),
    ("gte", "greater than or equal", "a number"),
    ("lt", "less than", "a number"),
    ("lte", "less than or equal", "a number"),
    ("is_set", "is set", "no value needed"),
    ("is_not_set", "is not set", "no value needed"),
    (
        "is_date_before",
        "date before",
        "a date (2026-01-31) or relative (-7d)",
    ),
    (
        "is_date_after",
        "date after",
        "a date (2026-01-31) or relative (-7d)",
    ),
    ("semver_gte", "version ≥", "a version (1.2.0)"),
    ("semver_lt", "version <", "a version (1.2.0)"),
    ("semver_caret", "version ^", "a version (1.2.0)"),
];

/// Cohort-membership operators (the key is the other cohort's id).
const COHORT_OPERATORS: &[(&str, &str)] = &[
    ("in_cohort", "is in cohort (id)"),
    ("not_in_cohort", "is not in cohort (id)"),
];

/// Behavioural operators (the key is the event name): `value` of the leaf, then the count
/// comparison of `performed_event_multiple`.
const BEHAVIOR_OPERATORS: &[(&str, &str)] = &[
    ("performed_event", "performed event (at least once)"),
    (
        "performed_event_multiple:gte",
        "performed event at least N times",
    ),
    (
        "performed_event_multiple:exact",
        "performed event exactly N times",
    ),
    (
        "performed_event_multiple:lte",
        "performed event at most N times",
    ),
    ("not_performed_event", "did not perform event"),
];

/// Window units of behavioural rows.
const UNITS: &[(&str, &str)] = &[
    ("minute", "minutes"),
    ("hour", "hours"),
    ("day", "days"),
    ("week", "weeks"),
];

/// The value hint of a person-property operator.
pub fn hint(operator: &str) -> &'static str {
    PROPERTY_OPERATORS
        .iter()
        .find(|(v, _, _)| *v == operator)
        .map_or("text", |(_, _, h)| *h)
}

/// A person-property value as typed → the JSON the API stores for `operator`: a list for
/// (in)equality, a number for comparisons when it parses, the operator itself for
/// `is_set` / `is_not_set`, text otherwise.
pub fn property_value(operator: &str, raw: &str) -> Value {
    match operator {
        "is_set" | "is_not_set" => json!(operator),
        "exact" | "is_not" => json!(raw
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()),
        "gt" | "gte" | "lt" | "lte" => raw
            .parse::<f64>()
            .map(|n| json!(n))
            .unwrap_or_else(|_| json!(raw)),
        _ => json!(raw),
    }
}

/// A stored value as the row shows it (lists joined by commas).
fn value_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// One row of the editor, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// The group (0-based) the row belongs to.
    pub group: usize,
    /// Property key, cohort id or event name.
    pub key: String,
    /// One of the operators above.
    pub operator: String,
    /// Property value, or N for "N times".
    pub value: String,
    /// Window length of a behavioural row.
    pub window: String,
    /// Window unit of a behavioural row.
    pub unit: String,
}

/// The editor's state: how groups and rows combine, and the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// `AND` or `OR` between the groups.
    pub outer: String,
    /// `AND` or `OR` inside each group, by group.
    pub inner: Vec<String>,
    /// The rows, in order.
    pub rows: Vec<Row>,
}

/// Rows shown per group beyond the filled ones.
const SPARE_ROWS: usize = 1;

impl Tree {
    /// An empty editor with one group.
    pub fn empty() -> Tree {
        Tree {
            outer: "OR".to_owned(),
            inner: vec!["AND".to_owned()],
            rows: Vec::new(),
        }
    }

    /// The rows of a stored cohort's `filters`, if the editor can show them: `None` for a
    /// tree deeper than groups of leaves, or leaves with event filters.
    pub fn from_filters(filters: &Value) -> Option<Tree> {
        let Some(top) = filters.get("properties") else {
            return Some(Tree::empty());
        };
        let outer = top.get("type").and_then(Value::as_str).unwrap_or("AND");
        let values = top.get("values").and_then(Value::as_array)?;
        let mut tree = Tree {
            outer: outer.to_ascii_uppercase(),
            inner: Vec::new(),
            rows: Vec::new(),
        };
        // A flat list of leaves is one group.
        let groups: Vec<(String, &Vec<Value>)> = if values.iter().all(|v| v.get("values").is_none())
        {
            tree.outer = "OR".to_owned();
            vec![(outer.to_ascii_uppercase(), values)]
        } else {
            values
                .iter()
                .map(|g| {
                    Some((
                        g.get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("AND")
                            .to_ascii_uppercase(),
                        g.get("values").and_then(Value::as_array)?,
                    ))
                })
                .collect::<Option<Vec<_>>>()?
        };
        for (g, (inner, leaves)) in groups.into_iter().enumerate() {
            tree.inner.push(inner);
            for leaf in leaves {
                tree.rows.push(row_of(g, leaf)?);
            }
        }
        if tree.inner.is_empty() {
            tree.inner.push("AND".to_owned());
        }
        Some(tree)
    }

    /// The editor's state from a submitted form (blank rows dropped; `add_group` /
    /// `add_row=<g>` buttons add one).
    pub fn from_form(form: &Fields) -> Tree {
        let groups: Vec<&str> = form.all("row_group").collect();
        let keys: Vec<&str> = form.all("row_key").collect();
        let ops: Vec<&str> = form.all("row_operator").collect();
        let values: Vec<&str> = form.all("row_value").collect();
        let windows: Vec<&str> = form.all("row_window").collect();
        let units: Vec<&str> = form.all("row_unit").collect();
        let at = |list: &[&str], i: usize| list.get(i).map_or("", |v| v.trim()).to_owned();
        let mut inner: Vec<String> = form
            .all("group_match")
            .map(|m| if m == "OR" { "OR" } else { "AND" }.to_owned())
            .collect();
        if inner.is_empty() {
            inner.push("AND".to_owned());
        }
        let rows = (0..keys.len())
            .filter(|&i| !keys[i].trim().is_empty())
            .map(|i| Row {
                group: at(&groups, i)
                    .parse::<usize>()
                    .unwrap_or(0)
                    .min(inner.len() - 1),
                key: at(&keys, i),
                operator: at(&ops, i),
                value: at(&values, i),
                window: at(&windows, i),
                unit: at(&units, i),
            })
            .collect();
        if form.get("add_group").is_some() {
            inner.push("AND".to_owned());
        }
        Tree {
            outer: if form.text("outer_match") == "AND" {
                "AND"
            } else {
                "OR"
            }
            .to_owned(),
            inner,
            rows,
        }
    }

    /// The `filters` object the API takes, or the row at fault (its field id) and why.
    pub fn filters(&self) -> Result<Value, (String, String)> {
        let mut groups = Vec::new();
        for (g, inner) in self.inner.iter().enumerate() {
            let mut leaves = Vec::new();
            for (r, row) in self.rows.iter().filter(|r| r.group == g).enumerate() {
                leaves.push(leaf(row).map_err(|m| (row_id(g, r), m))?);
            }
            if !leaves.is_empty() {
                groups.push(json!({"type": inner, "values": leaves}));
            }
        }
        Ok(json!({"properties": {"type": self.outer, "values": groups}}))
    }
}

/// The id of row `r` of group `g` (where its errors are shown).
pub fn row_id(g: usize, r: usize) -> String {
    format!("row-{g}-{r}")
}

/// Where an API error path inside `filters.properties` points: the row's id, if it names one.
pub fn row_of_path(path: &str, tree: &Tree) -> Option<String> {
    let rest = path.strip_prefix("filters.properties.values[")?;
    let (first, rest) = rest.split_once(']')?;
    let first: usize = first.parse().ok()?;
    // Groups with no rows are left out of the filters: count only the non-empty ones.
    let groups: Vec<usize> = (0..tree.inner.len())
        .filter(|g| tree.rows.iter().any(|r| r.group == *g))
        .collect();
    let g = *groups.get(first)?;
    let second = rest
        .strip_prefix(".values[")
        .and_then(|r| r.split_once(']'))
        .and_then(|(n, _)| n.parse::<usize>().ok())
        .unwrap_or(0);
    Some(row_id(g, second))
}

fn row_of(group: usize, leaf: &Value) -> Option<Row> {
    if leaf.get("values").is_some() || leaf.get("event_filters").is_some_and(|f| !f.is_null()) {
        return None;
    }
    let kind = leaf.get("type").and_then(Value::as_str).unwrap_or("person");
    let key = value_text(leaf.get("key"));
    let negated = leaf.get("negation").and_then(Value::as_bool) == Some(true);
    let row = match kind {
        "person" => Row {
            group,
            key,
            operator: leaf
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or("exact")
                .to_owned(),
            value: value_text(leaf.get("value")),
            unit: "day".to_owned(),
            ..Row::default()
        },
        "cohort" => Row {
            group,
            key: value_text(leaf.get("value")),
            operator: if negated {
                "not_in_cohort"
            } else {
                "in_cohort"
            }
            .to_owned(),
            unit: "day".to_owned(),
            ..Row::default()
        },
        "behavioral" => {
            let verb = leaf
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let operator = if verb == "performed_event_multiple" {
                format!(
                    "performed_event_multiple:{}",
                    leaf.get("operator")
                        .and_then(Value::as_str)
                        .unwrap_or("gte")
                )
            } else {
                verb.to_owned()
            };
            Row {
                group,
                key,
                value: value_text(leaf.get("operator_value")),
                window: value_text(leaf.get("time_value")),
                unit: leaf
                    .get("time_interval")
                    .and_then(Value::as_str)
                    .unwrap_or("day")
                    .to_owned(),
                operator,
            }
        }
        _ => return None,
    };
    let known = PROPERTY_OPERATORS
        .iter()
        .any(|(v, _, _)| *v == row.operator)
        || COHORT_OPERATORS.iter().any(|(v, _)| *v == row.operator)
        || BEHAVIOR_OPERATORS.iter().any(|(v, _)| *v == row.operator);
    (known && !(kind == "person" && negated)).then_some(row)
}

/// The leaf the API takes for a row, or why the row is incomplete.
fn leaf(row: &Row) -> Result<Value, String> {
    let op = row.operator.as_str();
    if COHORT_OPERATORS.iter().any(|(v, _)| *v == op) {
        let id: i64 = row
            .key
            .parse()
            .map_err(|_| format!("“{}” is not a cohort id (a number).", row.key))?;
        let mut leaf = json!({"key": "id", "type": "cohort", "value": id});
        if op == "not_in_cohort" {
            leaf["negation"] = json!(true);
        }
        return Ok(leaf);
    }
    if let Some(verb) = BEHAVIOR_OPERATORS
        .iter()
        .map(|(v, _)| *v)
        .find(|v| *v == op)
    {
        let window: u64 = row.window.parse().map_err(|_| {
            "Give the window as a whole number (e.g. 30 for the last 30 days).".to_owned()
        })?;
        let mut leaf = Map::new();
        leaf.insert("key".into(), json!(row.key));
        leaf.insert("type".into(), json!("behavioral"));
        leaf.insert("event_type".into(), json!("events"));
        leaf.insert("time_value".into(), json!(window));
        leaf.insert(
            "time_interval".into(),
            json!(if row.unit.is_empty() {
                "day"
            } else {
                &row.unit
            }),
        );
        match verb.split_once(':') {
            Some((value, cmp)) => {
                let n: u64 = row.value.parse().map_err(|_| {
                    "Give N, how many times, as a whole number in the value field.".to_owned()
                })?;
                leaf.insert("value".into(), json!(value));
                leaf.insert("operator".into(), json!(cmp));
                leaf.insert("operator_value".into(), json!(n));
            }
            None => {
                leaf.insert("value".into(), json!(verb));
            }
        }
        return Ok(Value::Object(leaf));
    }
    if !PROPERTY_OPERATORS.iter().any(|(v, _, _)| *v == op) {
        return Err(format!("Unknown operator “{op}”."));
    }
    Ok(json!({
        "key": row.key, "type": "person", "operator": op,
        "value": property_value(op, &row.value),
    }))
}

/// The editor's fields (inside the caller's `form`): the groups, their rows (the filled ones
/// and one blank per group), and the buttons that add a group. `errors` maps row ids to
/// messages; `keys` feeds the property-key suggestions.
pub fn editor(tree: &Tree, errors: &[(String, String)], keys: &[(String, String)]) -> Markup {
    let error_at = |id: &str| {
        errors
            .iter()
            .find(|(f, _)| f == id)
            .map(|(_, m)| m.as_str())
    };
    html! {
        div class="tree" {
            label for="outer-match" { "Groups combine with" }
            select id="outer-match" name="outer_match" {
                option value="OR" selected[tree.outer != "AND"] { "OR — a person in any group" }
                option value="AND" selected[tree.outer == "AND"] { "AND — a person in every group" }
            }
            datalist id="property-keys" {
                @for (k, hint) in keys { option value=(k) { (hint) } }
            }
            @for (g, inner) in tree.inner.iter().enumerate() {
                @let rows: Vec<&Row> = tree.rows.iter().filter(|r| r.group == g).collect();
                fieldset class="group" {
                    legend { "Group " (g + 1) }
                    label for=(format!("group-match-{g}")) { "Rows of group " (g + 1) " combine with" }
                    select id=(format!("group-match-{g}")) name="group_match" {
                        option value="AND" selected[inner != "OR"] { "AND — every row matches" }
                        option value="OR" selected[inner == "OR"] { "OR — any row matches" }
                    }
                    @for r in 0..rows.len() + SPARE_ROWS {
                        @let row = rows.get(r).copied().cloned().unwrap_or_else(|| Row { group: g, operator: "exact".into(), unit: "day".into(), ..Row::default() });
                        @let id = row_id(g, r);
                        @let err = error_at(&id);
                        div class="cond-row" id=(id) {
                            input type="hidden" name="row_group" value=(g);
                            div {
                                label for=(format!("{id}-key")) { "Row " (r + 1) ": property, event or cohort id" }
                                input id=(format!("{id}-key")) name="row_key" list="property-keys" value=(row.key)
                                    aria-invalid=[err.map(|_| "true")]
                                    aria-describedby=[err.map(|_| format!("{id}-error"))];
                            }
                            div {
                                label for=(format!("{id}-operator")) { "Row " (r + 1) " operator" }
                                select id=(format!("{id}-operator")) name="row_operator" {
                                    optgroup label="Person property" {
                                        @for (v, l, h) in PROPERTY_OPERATORS { option value=(v) data-hint=(h) selected[row.operator == *v] { (l) } }
                                    }
                                    optgroup label="Cohort" {
                                        @for (v, l) in COHORT_OPERATORS { option value=(v) selected[row.operator == *v] { (l) } }
                                    }
                                    optgroup label="Behaviour (key: event name)" {
                                        @for (v, l) in BEHAVIOR_OPERATORS { option value=(v) selected[row.operator == *v] { (l) } }
                                    }
                                }
                            }
                            div {
                                label for=(format!("{id}-value")) { "Row " (r + 1) " value (or N)" }
                                input id=(format!("{id}-value")) name="row_value" value=(row.value)
                                    aria-describedby=(format!("{id}-hint"));
                            }
                            div {
                                label for=(format!("{id}-window")) { "Row " (r + 1) " within the last" }
                                input id=(format!("{id}-window")) name="row_window" type="number" min="1" value=(row.window) class="short";
                            }
                            div {
                                label for=(format!("{id}-unit")) { "Row " (r + 1) " window unit" }
                                select id=(format!("{id}-unit")) name="row_unit" {
                                    @for (v, l) in UNITS { option value=(v) selected[row.unit == *v || (row.unit.is_empty() && *v == "day")] { (l) } }
                                }
                            }
                            p class="hint" id=(format!("{id}-hint")) data-hint-for=(format!("{id}-operator")) {
                                (row_hint(&row.operator))
                            }
                            @if let Some(m) = err { p class="field-error" id=(format!("{id}-error")) { (m) } }
                        }
                    }
                    p { button type="submit" class="secondary" name="add_row" value=(g) formnovalidate { "Add a row to group " (g + 1) } }
                }
            }
            p { button type="submit" class="secondary" name="add_group" value="1" formnovalidate { "Add a group" } }
        }
    }
}

/// What a row's value and window mean for its operator.
pub fn row_hint(operator: &str) -> String {
    if COHORT_OPERATORS.iter().any(|(v, _)| *v == operator) {
        "Key: the other cohort's id. Value and window are not used.".to_owned()
    } else if operator.starts_with("performed_event_multiple") {
        "Key: the event name. Value: N, how many times. Window: how far back to count.".to_owned()
    } else if BEHAVIOR_OPERATORS.iter().any(|(v, _)| *v == operator) {
        "Key: the event name. Window: how far back to look. Value is not used.".to_owned()
    } else {
        format!(
            "Key: a person property. Value: {}. Window is not used.",
            hint(operator)
        )
    }
}

/// Whether a submitted editor form asked for one more row or group (not a save).
pub fn wants_more(form: &Fields) -> bool {
    form.get("add_group").is_some() || form.get("add_row").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn rows_become_the_api_tree_and_back() {
        let form = fields(&[
            ("outer_match", "OR"),
            ("group_match", "AND"),
            ("group_match", "OR"),
            ("row_group", "0"),
            ("row_key", "email"),
            ("row_operator", "icontains"),
            ("row_value", "@example.com"),
            ("row_window", ""),
            ("row_unit", "day"),
            ("row_group", "0"),
            ("row_key", ""),
            ("row_operator", "exact"),
            ("row_value", ""),
            ("row_window", ""),
            ("row_unit", "day"),
            ("row_group", "1"),
            ("row_key", "purchase"),
            ("row_operator", "performed_event_multiple:gte"),
            ("row_value", "3"),
            ("row_window", "7"),
            ("row_unit", "day"),
            ("row_group", "1"),
            ("row_key", "4"),
            ("row_operator", "not_in_cohort"),
            ("row_value", ""),
            ("row_window", ""),
            ("row_unit", "day"),
        ]);
        let tree = Tree::from_form(&form);
        let filters = tree.filters().unwrap();
        assert_eq!(
            filters,
            json!({"properties": {"type": "OR", "values": [
                {"type": "AND", "values": [{"key": "email", "type": "person", "operator": "icontains", "value": "@example.com"}]},
                {"type": "OR", "values": [
                    {"key": "purchase", "type": "behavioral", "event_type": "events", "time_value": 7,
                     "time_interval": "day", "value": "performed_event_multiple", "operator": "gte", "operator_value": 3},
                    {"key": "id", "type": "cohort", "value": 4, "negation": true},
                ]},
            ]}})
        );
        assert_eq!(Tree::from_filters(&filters), Some(tree));
    }

    #[test]
    fn incomplete_rows_name_their_row() {
        let form = fields(&[
            ("row_group", "0"),
            ("row_key", "purchase"),
            ("row_operator", "performed_event"),
            ("row_window", "soon"),
        ]);
        let (at, message) = Tree::from_form(&form).filters().unwrap_err();
        assert_eq!(at, "row-0-0");
        assert!(message.contains("window"), "{message}");
        let deep = json!({"properties": {"type": "AND", "values": [{"type": "OR", "values": [
            {"type": "AND", "values": []}]}]}});
        assert_eq!(Tree::from_filters(&deep), None);
    }
}
