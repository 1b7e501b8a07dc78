//! Behavioural criteria ("performed `purchase` at least 3 times in the last 5 minutes"): the
//! leaf shape parsed once for the write rules and the compiler, the window and the bucket
//! resolution its counts are kept at, and the [`Signature`]s (event name + event filters) a
//! capture pipeline counts for a compiled project ([`Behaviors`]).
//!
//! Counting itself happens outside the engine: the caller counts captured events per signature
//! and per person, then answers [`crate::BehavioralData::count`] for the [`BehaviorQuery`]s of
//! the project, read once per request.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::compile::parse_operator;
use crate::context::Properties;
use crate::limits::{Exceeded, MAX_BEHAVIORAL_WINDOW_DAYS};
use crate::model::PropertyFilter;
use crate::property::{MatchOptions, OperatorError, Test};

/// The values of a behavioural leaf's `value` Vexil evaluates.
const SUPPORTED_VALUES: &str = "performed_event, performed_event_multiple, not_performed_event";

/// How long a behavioural criterion looks back: `time_value` × `time_interval`, at most
/// [`MAX_BEHAVIORAL_WINDOW_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    seconds: u32,
}

impl Window {
    /// A window of `seconds`, if within 1 second and [`MAX_BEHAVIORAL_WINDOW_DAYS`].
    pub fn from_seconds(seconds: u32) -> Option<Window> {
        (seconds > 0 && seconds <= MAX_BEHAVIORAL_WINDOW_DAYS * 86_400)
            .then_some(Window { seconds })
    }

    /// The window's length.
    pub fn length(self) -> Duration {
        Duration::seconds(i64::from(self.seconds))
    }

    /// The first instant inside the window ending at `now`.
    pub fn since(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        now.checked_sub_signed(self.length())
    }

    /// The bucket size counts for this window are kept at.
    pub fn resolution(self) -> Resolution {
        match self.seconds {
            s if s <= Resolution::Seconds10.span_seconds() => Resolution::Seconds10,
            s if s <= Resolution::Minute.span_seconds() => Resolution::Minute,
            _ => Resolution::Hour,
        }
    }
}

/// A bucket size for counts, scaled with the window: a window is exact to one bucket, and a
/// counter keeps at most [`Resolution::span_seconds`] / [`Resolution::bucket_seconds`] buckets
/// (360, 1,440 or 720).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    /// 10-second buckets, for windows up to an hour.
    Seconds10,
    /// 1-minute buckets, for windows up to a day.
    Minute,
    /// 1-hour buckets, for windows up to [`MAX_BEHAVIORAL_WINDOW_DAYS`].
    Hour,
}

impl Resolution {
    /// Every resolution, finest first.
    pub const ALL: [Resolution; 3] = [Resolution::Seconds10, Resolution::Minute, Resolution::Hour];

    /// Length of one bucket.
    pub fn bucket_seconds(self) -> u32 {
        match self {
            Resolution::Seconds10 => 10,
            Resolution::Minute => 60,
            Resolution::Hour => 3_600,
        }
    }

    /// The longest window kept at this resolution: older buckets can be dropped.
    pub fn span_seconds(self) -> u32 {
        match self {
            Resolution::Seconds10 => 3_600,
            Resolution::Minute => 86_400,
            Resolution::Hour => MAX_BEHAVIORAL_WINDOW_DAYS * 86_400,
        }
    }

    /// The bucket holding instant `at` (seconds since the epoch, divided by the bucket size).
    pub fn bucket(self, at: DateTime<Utc>) -> i64 {
        at.timestamp().div_euclid(i64::from(self.bucket_seconds()))
    }
}

/// How a count decides a behavioural criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountRule {
    AtLeastOnce,
    Never,
    Compare(CountCmp, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountCmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CountRule {
    pub(crate) fn holds(self, count: u64) -> bool {
        match self {
            CountRule::AtLeastOnce => count >= 1,
            CountRule::Never => count == 0,
            CountRule::Compare(cmp, n) => match cmp {
                CountCmp::Eq => count == n,
                CountCmp::Gt => count > n,
                CountCmp::Gte => count >= n,
                CountCmp::Lt => count < n,
                CountCmp::Lte => count <= n,
            },
        }
    }
}

/// What is counted: events of one name whose properties pass every event filter.
#[derive(Debug)]
pub struct Signature {
    key: Box<str>,
    event: Box<str>,
    filters: Vec<(Box<str>, Test)>,
}

impl Signature {
    /// A stable identity for the counted events (the event name and filters as canonical JSON):
    /// counters keyed by it survive recompiles and are shared by cohorts counting the same.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The counted event's name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// Whether an event of this signature's name with these `properties` is counted.
    pub fn matches(&self, properties: &Properties, now: DateTime<Utc>) -> bool {
        self.filters
            .iter()
            .all(|(key, test)| test.matches(properties.get(&**key), now))
    }
}

/// One count a project's cohorts read: events of a signature in a window ending at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BehaviorQuery {
    signature: usize,
    window: Window,
}

impl BehaviorQuery {
    /// Index of the counted signature in [`Behaviors::signatures`].
    pub fn signature(&self) -> usize {
        self.signature
    }

    /// The window counted.
    pub fn window(&self) -> Window {
        self.window
    }
}

/// The behavioural criteria of a compiled project: what capture must count, and what one
/// evaluation reads ([`crate::BehavioralData::count`] is asked by index into
/// [`Behaviors::queries`]).
#[derive(Debug, Default)]
pub struct Behaviors {
    signatures: Vec<Signature>,
    by_key: HashMap<Box<str>, usize>,
    by_event: HashMap<Box<str>, Vec<usize>>,
    queries: Vec<BehaviorQuery>,
    query_index: HashMap<BehaviorQuery, usize>,
}

impl Behaviors {
    /// Whether no cohort of the project is behavioural (capture then counts nothing).
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Every counted signature.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Every count an evaluation may read; [`crate::BehavioralData::count`] takes an index.
    pub fn queries(&self) -> &[BehaviorQuery] {
        &self.queries
    }

    /// The signatures an event of this name and `properties` counts for.
    pub fn matching<'a>(
        &'a self,
        event: &str,
        properties: &'a Properties,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a Signature> + 'a {
        self.by_event
            .get(event)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|&i| &self.signatures[i])
            .filter(move |s| s.matches(properties, now))
    }

    /// The resolutions signature `index` is read at.
    pub fn resolutions(&self, index: usize) -> impl Iterator<Item = Resolution> + '_ {
        Resolution::ALL.into_iter().filter(move |r| {
            self.queries
                .iter()
                .any(|q| q.signature == index && q.window.resolution() == *r)
        })
    }

    /// The longest window any criterion reads (`None` without behavioural criteria).
    pub fn longest_window(&self) -> Option<Window> {
        self.queries
            .iter()
            .map(|q| q.window)
            .max_by_key(|w| w.seconds)
    }

    /// Registers a parsed leaf; returns its query index.
    pub(crate) fn add(&mut self, leaf: Parsed) -> usize {
        let signature = match self.by_key.get(&leaf.signature.key) {
            Some(&i) => i,
            None => {
                let i = self.signatures.len();
                self.by_key.insert(leaf.signature.key.clone(), i);
                self.by_event
                    .entry(leaf.signature.event.clone())
                    .or_default()
                    .push(i);
                self.signatures.push(leaf.signature);
                i
            }
        };
        let query = BehaviorQuery {
            signature,
            window: leaf.window,
        };
        *self.query_index.entry(query).or_insert_with(|| {
            self.queries.push(query);
            self.queries.len() - 1
        })
    }
}

/// A behavioural leaf, parsed.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) signature: Signature,
    pub(crate) window: Window,
    pub(crate) rule: CountRule,
}

/// Why a behavioural leaf cannot be evaluated: the field (relative to the leaf) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeafError {
    /// A shape or value Vexil does not evaluate.
    Unsupported { field: String, message: String },
    /// Over one of the [`crate::limits`].
    Limit { field: String, exceeded: Exceeded },
}

fn unsupported(field: impl Into<String>, message: impl Into<String>) -> LeafError {
    LeafError::Unsupported {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses a `type: "behavioral"` leaf, refusing every shape Vexil would not count.
pub(crate) fn parse(f: &PropertyFilter, opts: MatchOptions) -> Result<Parsed, LeafError> {
    if f.key.is_empty() {
        return Err(unsupported(
            "key",
            "Behavioral filters need the event name as key.",
        ));
    }
    if let Some(kind) = f.event_type.as_deref().filter(|k| *k != "events") {
        return Err(unsupported(
            "event_type",
            format!("Behavioral filters on {kind:?} are not supported; use event_type \"events\"."),
        ));
    }
    if f.explicit_datetime.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(unsupported(
            "explicit_datetime",
            "Behavioral filters with an explicit start date are not supported; use time_value and time_interval.",
        ));
    }
    let rule = match f.value.as_ref().and_then(Value::as_str) {
        Some("performed_event") => CountRule::AtLeastOnce,
        Some("not_performed_event") => CountRule::Never,
        Some("performed_event_multiple") => {
            let n = count_value(f.operator_value.as_ref()).ok_or_else(|| {
                unsupported(
                    "operator_value",
                    "performed_event_multiple needs a non-negative whole number as operator_value.",
                )
            })?;
            let cmp = match f.operator.as_deref().unwrap_or("gte") {
                "exact" | "eq" => CountCmp::Eq,
                "gt" => CountCmp::Gt,
                "gte" => CountCmp::Gte,
                "lt" => CountCmp::Lt,
                "lte" => CountCmp::Lte,
                other => {
                    return Err(unsupported(
                        "operator",
                        format!(
                            "Unsupported count operator {other:?} (use exact, gt, gte, lt or lte)."
                        ),
                    ))
                }
            };
            CountRule::Compare(cmp, n)
        }
        Some(other) => {
            return Err(unsupported(
                "value",
                format!(
                    "Unsupported behavioral filter {other:?}; Vexil evaluates {SUPPORTED_VALUES}."
                ),
            ))
        }
        None => {
            return Err(unsupported(
                "value",
                format!("Behavioral filters need a value: one of {SUPPORTED_VALUES}."),
            ))
        }
    };
    let window = window(f)?;
    let filters = f
        .event_filters
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, ef)| event_filter(ef, opts).map_err(|e| e.within(&format!("event_filters[{i}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let key = serde_json::json!({
        "event": f.key,
        "filters": f.event_filters.iter().flatten().map(|ef| serde_json::json!({
            "key": ef.key, "operator": ef.operator, "value": ef.value,
        })).collect::<Vec<_>>(),
    })
    .to_string();
    Ok(Parsed {
        signature: Signature {
            key: key.into(),
            event: f.key.as_str().into(),
            filters,
        },
        window,
        rule,
    })
}

impl LeafError {
    fn within(self, parent: &str) -> LeafError {
        let join = |field: String| {
            if field.is_empty() {
                parent.to_owned()
            } else {
                format!("{parent}.{field}")
            }
        };
        match self {
            LeafError::Unsupported { field, message } => LeafError::Unsupported {
                field: join(field),
                message,
            },
            LeafError::Limit { field, exceeded } => LeafError::Limit {
                field: join(field),
                exceeded,
            },
        }
    }
}

fn count_value(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn window(f: &PropertyFilter) -> Result<Window, LeafError> {
    let amount = count_value(f.time_value.as_ref())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            unsupported(
                "time_value",
                "time_value must be a whole number of at least 1.",
            )
        })?;
    let (unit_seconds, unit): (u64, &str) = match f.time_interval.as_deref() {
        Some("minute") => (60, "minute"),
        Some("hour") => (3_600, "hour"),
        Some("day") => (86_400, "day"),
        Some("week") => (7 * 86_400, "week"),
        // The longest a month and a year can be: they are refused unless that fits.
        Some("month") => (31 * 86_400, "month"),
        Some("year") => (366 * 86_400, "year"),
        other => {
            return Err(unsupported(
                "time_interval",
                format!(
                "Unsupported time_interval {other:?} (use minute, hour, day, week, month or year)."
            ),
            ))
        }
    };
    amount
        .checked_mul(unit_seconds)
        .and_then(|s| u32::try_from(s).ok())
        .and_then(Window::from_seconds)
        .ok_or_else(|| LeafError::Limit {
            field: "time_value".to_owned(),
            exceeded: Exceeded::BehavioralWindow(format!("{amount} {unit}")),
        })
}

fn event_filter(f: &PropertyFilter, opts: MatchOptions) -> Result<(Box<str>, Test), LeafError> {
    if let Some(kind) = f.kind.as_deref().filter(|k| *k != "event") {
        return Err(unsupported(
            "type",
            format!("Event filters of behavioral filters are on event properties (type \"event\"), not {kind:?}."),
        ));
    }
    if f.key.is_empty() {
        return Err(unsupported("key", "Event filters need a property key."));
    }
    let op = parse_operator(f, "").map_err(|(_, e)| unsupported("operator", e.message))?;
    let test = Test::compile(op, f.value.as_ref(), opts).map_err(|e| match e {
        OperatorError::Limit(exceeded) => LeafError::Limit {
            field: "value".to_owned(),
            exceeded,
        },
        OperatorError::WrongFilterType(_) => unsupported("operator", e.to_string()),
    })?;
    Ok((f.key.as_str().into(), test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn leaf(v: serde_json::Value) -> PropertyFilter {
        serde_json::from_value(v).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn windows_pick_a_resolution_that_scales_with_them() {
        let w = |secs| Window::from_seconds(secs).unwrap().resolution();
        assert_eq!(w(60), Resolution::Seconds10);
        assert_eq!(w(3_600), Resolution::Seconds10);
        assert_eq!(w(3_601), Resolution::Minute);
        assert_eq!(w(86_400), Resolution::Minute);
        assert_eq!(w(86_401), Resolution::Hour);
        assert_eq!(w(30 * 86_400), Resolution::Hour);
        assert_eq!(Window::from_seconds(30 * 86_400 + 1), None);
        for r in Resolution::ALL {
            let buckets = r.span_seconds() / r.bucket_seconds();
            assert!(buckets <= 1_440, "{r:?} keeps {buckets} buckets");
        }
    }

    #[test]
    fn buckets_are_aligned_to_their_size() {
        let t = at("2026-01-01T00:00:19Z");
        assert_eq!(
            Resolution::Seconds10.bucket(t),
            Resolution::Seconds10.bucket(at("2026-01-01T00:00:10Z"))
        );
        assert_ne!(
            Resolution::Seconds10.bucket(t),
            Resolution::Seconds10.bucket(at("2026-01-01T00:00:20Z"))
        );
        assert_eq!(
            Resolution::Hour.bucket(t),
            Resolution::Hour.bucket(at("2026-01-01T00:59:59Z"))
        );
        // Before the epoch too (floor, not truncation).
        assert_eq!(Resolution::Seconds10.bucket(at("1969-12-31T23:59:59Z")), -1);
    }

    #[test]
    fn the_leaf_shape_parses_into_window_rule_and_signature() {
        let p = parse(
            &leaf(json!({"key": "purchase", "type": "behavioral", "value": "performed_event_multiple",
                          "operator": "gte", "operator_value": 3, "time_value": 5, "time_interval": "minute",
                          "event_type": "events"})),
            MatchOptions::default(),
        )
        .unwrap();
        assert_eq!(p.window.length(), Duration::minutes(5));
        assert_eq!(p.rule, CountRule::Compare(CountCmp::Gte, 3));
        assert!(p.rule.holds(3) && !p.rule.holds(2));
        assert_eq!(p.signature.event(), "purchase");
        assert_eq!(
            p.window.since(at("2026-01-01T00:10:00Z")),
            Some(at("2026-01-01T00:05:00Z"))
        );
    }

    #[test]
    fn event_filters_are_matched_against_the_event_properties() {
        let p = parse(
            &leaf(json!({"key": "purchase", "value": "performed_event", "time_value": 1, "time_interval": "day",
                          "event_filters": [{"key": "plan", "type": "event", "value": "pro"},
                                            {"key": "amount", "type": "event", "operator": "gt", "value": 10}]})),
            MatchOptions::default(),
        )
        .unwrap();
        let props = |v: serde_json::Value| v.as_object().unwrap().clone();
        let now = at("2026-01-01T00:00:00Z");
        assert!(p
            .signature
            .matches(&props(json!({"plan": "pro", "amount": 20})), now));
        assert!(!p
            .signature
            .matches(&props(json!({"plan": "free", "amount": 20})), now));
        assert!(!p
            .signature
            .matches(&props(json!({"plan": "pro", "amount": 5})), now));
        assert!(!p.signature.matches(&props(json!({"amount": 20})), now));
    }

    #[test]
    fn the_same_event_and_filters_share_a_signature_and_windows_a_query() {
        let mut b = Behaviors::default();
        let l = |window: u32, unit: &str| {
            parse(
                &leaf(json!({"key": "purchase", "value": "performed_event", "time_value": window, "time_interval": unit})),
                MatchOptions::default(),
            )
            .unwrap()
        };
        let q1 = b.add(l(5, "minute"));
        let q2 = b.add(l(5, "minute"));
        let q3 = b.add(l(2, "day"));
        assert_eq!(q1, q2);
        assert_ne!(q1, q3);
        assert_eq!(b.signatures().len(), 1);
        assert_eq!(
            b.resolutions(0).collect::<Vec<_>>(),
            [Resolution::Seconds10, Resolution::Hour]
        );
        assert_eq!(
            b.longest_window().map(Window::length),
            Some(Duration::days(2))
        );
        let props = Properties::new();
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(b.matching("purchase", &props, now).count(), 1);
        assert_eq!(b.matching("signup", &props, now).count(), 0);
    }

    #[test]
    fn unsupported_shapes_name_their_field() {
        let err = |v: serde_json::Value| match parse(&leaf(v), MatchOptions::default()) {
            Err(LeafError::Unsupported { field, .. } | LeafError::Limit { field, .. }) => field,
            Ok(_) => "accepted".to_owned(),
        };
        let base = json!({"key": "purchase", "value": "performed_event", "time_value": 5, "time_interval": "minute"});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert_eq!(err(base.clone()), "accepted");
        assert_eq!(
            err(with("value", json!("performed_event_first_time"))),
            "value"
        );
        assert_eq!(
            err(with("value", json!("performed_event_sequence"))),
            "value"
        );
        assert_eq!(err(with("event_type", json!("actions"))), "event_type");
        assert_eq!(
            err(with("explicit_datetime", json!("-30d"))),
            "explicit_datetime"
        );
        assert_eq!(
            err(with("time_interval", json!("fortnight"))),
            "time_interval"
        );
        assert_eq!(err(with("time_value", json!(0))), "time_value");
        assert_eq!(err(with("time_interval", json!("month"))), "time_value");
        let mut days = with("time_interval", json!("day"));
        days["time_value"] = json!(30);
        assert_eq!(err(days.clone()), "accepted");
        days["time_value"] = json!(31);
        assert_eq!(err(days), "time_value");
        assert_eq!(err(with("key", json!(""))), "key");
        assert_eq!(
            err(with(
                "event_filters",
                json!([{"key": "plan", "type": "person", "value": "x"}])
            )),
            "event_filters[0].type"
        );
        let multiple = with("value", json!("performed_event_multiple"));
        let mut no_count = multiple.clone();
        no_count["operator"] = json!("gte");
        assert_eq!(err(no_count), "operator_value");
    }
}
