//! Person and group property filters: operator, value types, regexes and dates, checked the
//! way the engine will read them.

use std::str::FromStr;

use chrono::Utc;
use serde_json::{Map, Value};
use vexil_engine::property::{MatchOptions, Operator, PropertyCheck, REGEX_BACKTRACK_LIMIT};

use super::invalid;
use crate::error::ApiError;

/// Most values one property filter may list.
pub const MAX_LIST_VALUES: usize = 1_000;

/// Operators whose value must be a string (PostHog refuses anything else).
const STRING_OPERATORS: &[Operator] = &[
    Operator::Regex,
    Operator::NotRegex,
    Operator::Icontains,
    Operator::NotIcontains,
    Operator::Gt,
    Operator::Gte,
    Operator::Lt,
    Operator::Lte,
];

/// Checks a person or group property filter's operator and value the way the engine will use
/// them: a known operator, value types, a compilable regex, a parseable date, list sizes.
pub fn check_operator_value(property: &Map<String, Value>, path: &str) -> Result<(), ApiError> {
    let op_path = format!("{path}.operator");
    let name = match property.get("operator") {
        None | Some(Value::Null) => "exact",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid(op_path, "Not a valid string.")),
    };
    let op = Operator::from_str(name)
        .map_err(|_| invalid(&op_path, format!("Unknown operator \"{name}\".")))?;
    match op {
        Operator::In | Operator::NotIn => {
            return Err(invalid(
                op_path,
                format!("Operator \"{name}\" is only valid on cohort properties."),
            ))
        }
        Operator::FlagEvaluatesTo => {
            return Err(invalid(
                op_path,
                "Operator \"flag_evaluates_to\" is only valid on flag properties.",
            ))
        }
        _ => {}
    }
    let value_path = format!("{path}.value");
    let value = property.get("value");
    if let Some(Value::Array(items)) = value {
        if items.len() > MAX_LIST_VALUES {
            return Err(invalid(
                value_path,
                format!("A property filter may list at most {MAX_LIST_VALUES} values."),
            ));
        }
    }
    if STRING_OPERATORS.contains(&op) && !matches!(value, Some(Value::String(_))) {
        let shown = value.map_or_else(|| "null".to_owned(), Value::to_string);
        return Err(ApiError::validation(
            "invalid_value",
            format!("Invalid value for operator {name}: {shown}. Send the value as a string."),
        )
        .attr(value_path));
    }
    if let (Operator::Regex | Operator::NotRegex, Some(Value::String(pattern))) = (op, value) {
        // The engine treats a pattern that does not compile as "never matches"; refuse it here
        // instead, compiled with the engine's dialect and backtracking budget.
        if let Err(e) = fancy_regex::RegexBuilder::new(pattern)
            .backtrack_limit(REGEX_BACKTRACK_LIMIT)
            .build()
        {
            return Err(ApiError::validation(
                "invalid_regex",
                format!("Invalid regular expression {pattern:?}: {e}"),
            )
            .attr(value_path));
        }
    }
    let date_operator = matches!(
        op,
        Operator::IsDateBefore | Operator::IsDateAfter | Operator::IsDateExact
    );
    if date_operator && !value.is_some_and(is_engine_date) {
        let shown = value.map_or_else(|| "null".to_owned(), Value::to_string);
        return Err(ApiError::validation(
            "invalid_date",
            format!(
                "Invalid date value: {shown}. Use an ISO-8601 date or a relative date such as \"-30d\"."
            ),
        )
        .attr(value_path));
    }
    Ok(())
}

/// Whether the engine reads `value` as a date operand. The engine parses an `is_date_exact`
/// operand and a property value the same way (relative forms resolved against the same `now`),
/// so a usable date equals itself, while an unusable one matches nothing.
fn is_engine_date(value: &Value) -> bool {
    value.is_string()
        && PropertyCheck::new(Operator::IsDateExact, Some(value), MatchOptions::default())
            .is_ok_and(|check| check.matches(Some(value), Utc::now()))
}
