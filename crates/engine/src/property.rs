//! Property operators: parsed once into a [`Test`], then matched against a property value.
//!
//! Semantics are PostHog's server semantics (`/flags`): a missing property never raises; positive
//! operators are false on it and negative ones (`is_not`, `not_icontains`, `not_regex`, …) true.
//! Any error while matching (a non-numeric bound, an unparseable filter version, a regex that hits
//! its backtrack limit) is "no match".

use std::borrow::Cow;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use fancy_regex::Regex;
use serde_json::Value;

use crate::date::DateFilter;
use crate::limits::{Exceeded, MAX_LIST_VALUES, MAX_REGEX_LENGTH, REGEX_SIZE_LIMIT};
use crate::version;

pub use crate::limits::REGEX_BACKTRACK_LIMIT;

/// Every operator PostHog accepts in a property filter.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Exact,
    IsNot,
    Icontains,
    NotIcontains,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    IcontainsMulti,
    NotIcontainsMulti,
    Regex,
    NotRegex,
    Gt,
    Gte,
    Lt,
    Lte,
    Between,
    NotBetween,
    IsSet,
    IsNotSet,
    IsDateBefore,
    IsDateAfter,
    IsDateExact,
    SemverEq,
    SemverNeq,
    SemverGt,
    SemverGte,
    SemverLt,
    SemverLte,
    SemverTilde,
    SemverCaret,
    SemverWildcard,
    In,
    NotIn,
    FlagEvaluatesTo,
}

/// An operator name PostHog does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operator {0:?}")]
pub struct UnknownOperator(pub String);

impl FromStr for Operator {
    type Err = UnknownOperator;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use Operator::*;
        Ok(match s {
            "exact" => Exact,
            "is_not" => IsNot,
            "icontains" => Icontains,
            "not_icontains" => NotIcontains,
            "starts_with" => StartsWith,
            "not_starts_with" => NotStartsWith,
            "ends_with" => EndsWith,
            "not_ends_with" => NotEndsWith,
            "icontains_multi" => IcontainsMulti,
            "not_icontains_multi" => NotIcontainsMulti,
            "regex" => Regex,
            "not_regex" => NotRegex,
            "gt" => Gt,
            "gte" => Gte,
            "lt" => Lt,
            "lte" => Lte,
            "between" => Between,
            "not_between" => NotBetween,
            "is_set" => IsSet,
            "is_not_set" => IsNotSet,
            "is_date_before" => IsDateBefore,
            "is_date_after" => IsDateAfter,
            "is_date_exact" => IsDateExact,
            "semver_eq" => SemverEq,
            "semver_neq" => SemverNeq,
            "semver_gt" => SemverGt,
            "semver_gte" => SemverGte,
            "semver_lt" => SemverLt,
            "semver_lte" => SemverLte,
            "semver_tilde" => SemverTilde,
            "semver_caret" => SemverCaret,
            "semver_wildcard" => SemverWildcard,
            "in" => In,
            "not_in" => NotIn,
            "flag_evaluates_to" => FlagEvaluatesTo,
            other => return Err(UnknownOperator(other.to_owned())),
        })
    }
}

/// How `exact`/`is_not` compare, decided once from the filter value.
#[derive(Debug, Clone)]
pub(crate) enum ExactExpect {
    /// Filter is boolean-like: compare truthiness of both sides.
    Truthy(bool),
    /// Filter is a list: any item equal (Unicode-lowercased string forms).
    AnyOf(Vec<Box<str>>),
    /// Single value (Unicode-lowercased string form).
    One(Box<str>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, lhs: &T, rhs: &T) -> bool {
        match self {
            Cmp::Gt => lhs > rhs,
            Cmp::Gte => lhs >= rhs,
            Cmp::Lt => lhs < rhs,
            Cmp::Lte => lhs <= rhs,
            Cmp::Eq => lhs == rhs,
            Cmp::Neq => lhs != rhs,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateCmp {
    Before,
    After,
    Exact,
}

/// A compiled property test: everything derivable from the filter alone is done here.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    IsSet,
    IsNotSet,
    /// A value-requiring operator without a value: never matches.
    Never,
    Exact {
        expect: ExactExpect,
        negate: bool,
    },
    Contains {
        needle: Box<str>,
        negate: bool,
    },
    StartsWith {
        needle: Box<str>,
        negate: bool,
    },
    EndsWith {
        needle: Box<str>,
        negate: bool,
    },
    ContainsAny {
        needles: Vec<Box<str>>,
        negate: bool,
    },
    /// `None` = invalid pattern (false for both operators once the property exists).
    Regex {
        regex: Option<Box<Regex>>,
        negate: bool,
    },
    /// `None` = non-numeric filter value.
    Numeric {
        cmp: Cmp,
        rhs: Option<f64>,
    },
    Between {
        bounds: Option<(f64, f64)>,
        negate: bool,
    },
    Semver {
        cmp: Cmp,
        rhs: Option<semver::Version>,
    },
    SemverRange {
        req: Option<semver::VersionReq>,
    },
    Date {
        cmp: DateCmp,
        rhs: DateFilter,
    },
}

/// Matching options that are properties of the project, not of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchOptions {
    /// `property_matching_version`: 2 disables boolean-string coercion for `exact`/`is_not`.
    pub property_matching_version: u8,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            property_matching_version: 1,
        }
    }
}

/// A property operator whose value could not be used, reported by [`Test::compile`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// `in`/`not_in`/`flag_evaluates_to` on a property filter.
    #[error("operator {0:?} is only valid on cohort or flag filters")]
    WrongFilterType(&'static str),
    /// A value over one of the [`crate::limits`] (a flag using it fails).
    #[error(transparent)]
    Limit(#[from] Exceeded),
}

impl Test {
    /// Compiles `operator value` into a test. Filter values the server would reject at match time
    /// compile to tests that never match, so that behaviour stays identical.
    pub(crate) fn compile(
        operator: Operator,
        value: Option<&Value>,
        opts: MatchOptions,
    ) -> Result<Test, OperatorError> {
        use Operator as O;
        match operator {
            O::IsSet => return Ok(Test::IsSet),
            O::IsNotSet => return Ok(Test::IsNotSet),
            O::In | O::NotIn => return Err(OperatorError::WrongFilterType("in/not_in")),
            O::FlagEvaluatesTo => return Err(OperatorError::WrongFilterType("flag_evaluates_to")),
            _ => {}
        }
        let Some(value) = value else {
            return Ok(Test::Never);
        };
        if let Value::Array(items) = value {
            if items.len() > MAX_LIST_VALUES {
                return Err(Exceeded::ListValues(items.len()).into());
            }
        }
        Ok(match operator {
            O::Exact | O::IsNot => Test::Exact {
                expect: exact_expectation(value, opts),
                negate: operator == O::IsNot,
            },
            O::Icontains | O::NotIcontains => Test::Contains {
                needle: ascii_lower(&text(value)),
                negate: operator == O::NotIcontains,
            },
            O::StartsWith | O::NotStartsWith => Test::StartsWith {
                needle: ascii_lower(&text(value)),
                negate: operator == O::NotStartsWith,
            },
            O::EndsWith | O::NotEndsWith => Test::EndsWith {
                needle: ascii_lower(&text(value)),
                negate: operator == O::NotEndsWith,
            },
            O::IcontainsMulti | O::NotIcontainsMulti => Test::ContainsAny {
                needles: match value {
                    Value::Array(items) => items.iter().map(|v| ascii_lower(&text(v))).collect(),
                    single => vec![ascii_lower(&text(single))],
                },
                negate: operator == O::NotIcontainsMulti,
            },
            O::Regex | O::NotRegex => Test::Regex {
                // A pattern that does not compile never matches (PostHog's semantics); one over
                // a limit is a defect.
                regex: match build_regex(&text(value)) {
                    Ok(regex) => Some(Box::new(regex)),
                    Err(RegexError::Invalid(_)) => None,
                    Err(RegexError::Limit(limit)) => return Err(limit.into()),
                },
                negate: operator == O::NotRegex,
            },
            O::Gt | O::Gte | O::Lt | O::Lte => Test::Numeric {
                cmp: match operator {
                    O::Gt => Cmp::Gt,
                    O::Gte => Cmp::Gte,
                    O::Lt => Cmp::Lt,
                    _ => Cmp::Lte,
                },
                rhs: number(value),
            },
            O::Between | O::NotBetween => Test::Between {
                bounds: between_bounds(value),
                negate: operator == O::NotBetween,
            },
            O::SemverEq
            | O::SemverNeq
            | O::SemverGt
            | O::SemverGte
            | O::SemverLt
            | O::SemverLte => Test::Semver {
                cmp: match operator {
                    O::SemverEq => Cmp::Eq,
                    O::SemverNeq => Cmp::Neq,
                    O::SemverGt => Cmp::Gt,
                    O::SemverGte => Cmp::Gte,
                    O::SemverLt => Cmp::Lt,
                    _ => Cmp::Lte,
                },
                rhs: version::parse(&text(value)),
            },
            O::SemverTilde => Test::SemverRange {
                req: version::tilde(&text(value)),
            },
            O::SemverCaret => Test::SemverRange {
                req: version::caret(&text(value)),
            },
            O::SemverWildcard => Test::SemverRange {
                req: version::wildcard(&text(value)),
            },
            O::IsDateBefore | O::IsDateAfter | O::IsDateExact => Test::Date {
                cmp: match operator {
                    O::IsDateBefore => DateCmp::Before,
                    O::IsDateAfter => DateCmp::After,
                    _ => DateCmp::Exact,
                },
                rhs: match value.as_str() {
                    Some(s) => DateFilter::parse(s),
                    None => DateFilter::Invalid,
                },
            },
            O::IsSet | O::IsNotSet | O::In | O::NotIn | O::FlagEvaluatesTo => Test::Never,
        })
    }

    /// Whether the test passes for a property value (`None` = the key is absent).
    pub(crate) fn matches(&self, prop: Option<&Value>, now: DateTime<Utc>) -> bool {
        match self {
            Test::IsSet => prop.is_some(),
            Test::IsNotSet => prop.is_none(),
            Test::Never => false,
            Test::Exact { expect, negate } => match prop {
                None => *negate,
                Some(p) => exact_matches(expect, p) != *negate,
            },
            Test::Contains { needle, negate } => match prop {
                None => *negate,
                Some(p) => contains_ascii_ci(&text(p), needle) != *negate,
            },
            Test::StartsWith { needle, negate } => match prop {
                None => *negate,
                Some(p) => starts_with_ascii_ci(&text(p), needle) != *negate,
            },
            Test::EndsWith { needle, negate } => match prop {
                None => *negate,
                Some(p) => ends_with_ascii_ci(&text(p), needle) != *negate,
            },
            Test::ContainsAny { needles, negate } => match prop {
                None => *negate,
                Some(p) => {
                    let hay = text(p);
                    needles.iter().any(|n| contains_ascii_ci(&hay, n)) != *negate
                }
            },
            Test::Regex { regex, negate } => match (prop, regex) {
                (None, _) => *negate,
                (Some(_), None) => false,
                (Some(p), Some(re)) => match re.find(&text(p)) {
                    Ok(found) => found.is_some() != *negate,
                    // Backtrack limit exceeded: an error, which is "no match".
                    Err(_) => false,
                },
            },
            Test::Numeric { cmp, rhs } => match (prop.and_then(number), rhs) {
                (Some(lhs), Some(rhs)) => cmp.holds(&lhs, rhs),
                _ => false,
            },
            Test::Between { bounds, negate } => match prop {
                None => *negate,
                Some(p) => match (bounds, number(p)) {
                    (Some((lo, hi)), Some(x)) if !x.is_nan() => (x >= *lo && x <= *hi) != *negate,
                    _ => false,
                },
            },
            Test::Semver { cmp, rhs } => match (prop.and_then(|p| version::parse(&text(p))), rhs) {
                (Some(lhs), Some(rhs)) => cmp.holds(&lhs, rhs),
                _ => false,
            },
            Test::SemverRange { req } => match (prop.and_then(|p| version::parse(&text(p))), req) {
                (Some(v), Some(req)) => req.matches(&v),
                _ => false,
            },
            Test::Date { cmp, rhs } => {
                let (Some(lhs), Some(rhs)) = (
                    prop.and_then(|p| crate::date::property_instant(p, now)),
                    rhs.resolve(now),
                ) else {
                    return false;
                };
                match cmp {
                    DateCmp::Before => lhs < rhs,
                    DateCmp::After => lhs > rhs,
                    DateCmp::Exact => lhs == rhs,
                }
            }
        }
    }
}

/// A standalone property check: operator and filter value compiled once, matched many times.
///
/// ```
/// use vexil_engine::property::{Operator, PropertyCheck, MatchOptions};
/// use serde_json::json;
/// let check = PropertyCheck::new(Operator::Icontains, Some(&json!("@Example.com")), MatchOptions::default()).unwrap();
/// let now = chrono::DateTime::UNIX_EPOCH;
/// assert!(check.matches(Some(&json!("ada@example.COM")), now));
/// assert!(!check.matches(None, now));
/// ```
#[derive(Debug, Clone)]
pub struct PropertyCheck(Test);

impl PropertyCheck {
    /// Compiles an operator and its filter value.
    pub fn new(
        operator: Operator,
        value: Option<&Value>,
        opts: MatchOptions,
    ) -> Result<Self, OperatorError> {
        Test::compile(operator, value, opts).map(PropertyCheck)
    }

    /// Matches a property value (`None` = absent) at instant `now` (for relative dates).
    pub fn matches(&self, prop: Option<&Value>, now: DateTime<Utc>) -> bool {
        self.0.matches(prop, now)
    }
}

/// PostHog's string form of a value: strings as-is, everything else compact JSON.
pub fn text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        other => text(other).parse::<f64>().ok(),
    }
}

fn between_bounds(value: &Value) -> Option<(f64, f64)> {
    let items = value.as_array()?;
    let [lo, hi] = items.as_slice() else {
        return None;
    };
    let (lo, hi) = (number(lo)?, number(hi)?);
    (!lo.is_nan() && !hi.is_nan() && lo <= hi).then_some((lo, hi))
}

/// Why a `regex` / `not_regex` pattern cannot be used.
#[derive(Debug)]
pub(crate) enum RegexError {
    /// Not a pattern the engine's dialect compiles.
    Invalid(Box<fancy_regex::Error>),
    /// Over a limit.
    Limit(Exceeded),
}

/// Builds a pattern the way the engine matches it: the engine's dialect, backtracking budget and
/// size limits. The write rules call it too, so what they accept compiles here.
pub(crate) fn build_regex(pattern: &str) -> Result<Regex, RegexError> {
    let length = pattern.chars().count();
    if length > MAX_REGEX_LENGTH {
        return Err(RegexError::Limit(Exceeded::RegexLength(length)));
    }
    fancy_regex::RegexBuilder::new(pattern)
        .backtrack_limit(REGEX_BACKTRACK_LIMIT)
        .delegate_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            fancy_regex::Error::CompileError(fancy_regex::CompileError::InnerError(inner))
                if inner.size_limit().is_some() =>
            {
                RegexError::Limit(Exceeded::RegexSize)
            }
            e => RegexError::Invalid(Box::new(e)),
        })
}

fn ascii_lower(s: &str) -> Box<str> {
    s.to_ascii_lowercase().into_boxed_str()
}

fn is_bool_like(value: &Value) -> bool {
    match value {
        Value::Bool(_) => true,
        Value::String(s) => s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false"),
        Value::Array(items) => items.iter().all(is_bool_like),
        _ => false,
    }
}

fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        Value::Array(items) => items.iter().all(is_truthy),
        _ => false,
    }
}

fn exact_expectation(value: &Value, opts: MatchOptions) -> ExactExpect {
    let is_empty_array = matches!(value, Value::Array(items) if items.is_empty());
    let coerce = opts.property_matching_version < 2 || is_empty_array;
    if coerce && is_bool_like(value) {
        return ExactExpect::Truthy(is_truthy(value));
    }
    match value {
        Value::Array(items) => ExactExpect::AnyOf(
            items
                .iter()
                .map(|v| text(v).to_lowercase().into_boxed_str())
                .collect(),
        ),
        other => ExactExpect::One(text(other).to_lowercase().into_boxed_str()),
    }
}

fn exact_matches(expect: &ExactExpect, prop: &Value) -> bool {
    match expect {
        ExactExpect::Truthy(t) => is_truthy(prop) == *t,
        ExactExpect::One(want) => eq_lowercased(&text(prop), want),
        ExactExpect::AnyOf(wants) => {
            let got = text(prop);
            if got.is_ascii() {
                wants.iter().any(|w| got.eq_ignore_ascii_case(w))
            } else {
                let lowered = got.to_lowercase();
                wants.iter().any(|w| **w == *lowered)
            }
        }
    }
}

/// `lower(got) == want` where `want` is already Unicode-lowercased; allocation-free for ASCII.
fn eq_lowercased(got: &str, want: &str) -> bool {
    if got.is_ascii() {
        // ASCII lowercases to ASCII, so a non-ASCII `want` byte can never match.
        got.eq_ignore_ascii_case(want)
    } else {
        got.to_lowercase() == want
    }
}

fn contains_ascii_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    if n.len() > h.len() {
        return false;
    }
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn starts_with_ascii_ci(hay: &str, needle: &str) -> bool {
    hay.len() >= needle.len()
        && hay.as_bytes()[..needle.len()].eq_ignore_ascii_case(needle.as_bytes())
}

fn ends_with_ascii_ci(hay: &str, needle: &str) -> bool {
    hay.len() >= needle.len()
        && hay.as_bytes()[hay.len() - needle.len()..].eq_ignore_ascii_case(needle.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(op: &str, filter: Value, prop: Option<Value>) -> bool {
        let op: Operator = op.parse().unwrap();
        Test::compile(op, Some(&filter), MatchOptions::default())
            .unwrap()
            .matches(prop.as_ref(), DateTime::UNIX_EPOCH)
    }

    #[test]
    fn missing_property_rules() {
        assert!(!check("exact", json!("x"), None));
        assert!(check("is_not", json!("x"), None));
        assert!(check("not_icontains", json!("x"), None));
        assert!(check("not_regex", json!("x"), None));
        assert!(check("not_between", json!([1, 2]), None));
        assert!(!check("gt", json!(1), None));
    }

    #[test]
    fn invalid_regex_is_false_both_ways() {
        assert!(!check("regex", json!("[invalid"), Some(json!("a"))));
        assert!(!check("not_regex", json!("[invalid"), Some(json!("a"))));
    }

    #[test]
    fn catastrophic_regex_is_bounded() {
        let hay = "a".repeat(64) + "!";
        // No lookaround or backreference: fancy-regex hands this to the linear `regex` crate,
        // so it never reaches the backtrack limit.
        assert!(!check("regex", json!("^(a+)+$"), Some(json!(hay))));

        // The lookahead forces fancy-regex's backtracking VM, where `(a+)+` on n `a`s that never
        // reach a `b` costs about 2^(n+1) steps (fancy-regex 0.14: n = 12 → 8,204; n = 14 →
        // 32,782).
        let vm = json!("^(a+)+(?=b)");
        let hostile = |n: usize| Some(json!("a".repeat(n) + "!"));
        // Within the budget: evaluated to a real non-match, so `not_regex` holds.
        assert!(!check("regex", vm.clone(), hostile(12)));
        assert!(check("not_regex", vm.clone(), hostile(12)));
        // Over REGEX_BACKTRACK_LIMIT, under fancy-regex's default of 1,000,000: the limit
        // that applies is ours, and hitting it is "no match" both ways.
        assert!(!check("not_regex", vm.clone(), hostile(14)));
        // About 2^65 steps: only the limit lets this return (in milliseconds).
        assert!(!check("regex", vm.clone(), hostile(64)));
        assert!(!check("not_regex", vm, hostile(64)));
    }

    #[test]
    fn between_is_inclusive() {
        assert!(check("between", json!([1, 5]), Some(json!(5))));
        assert!(!check("between", json!([5, 1]), Some(json!(3))));
        assert!(!check("not_between", json!([1, 5]), Some(json!("NaN"))));
    }
}
