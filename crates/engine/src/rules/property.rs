//! Person and group property filters: operator, value types, regexes and dates, checked the way
//! the engine will read them.

use serde_json::Value;

use super::{Violation, ViolationCode};
use crate::date::DateFilter;
use crate::limits::{Exceeded, MAX_LIST_VALUES};
use crate::model::PropertyFilter;
use crate::property::{build_regex, Operator, RegexError};

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

/// Checks a person or group property filter's operator and value: a known operator valid on
/// property filters, list sizes, value types, a compilable regex, a readable date.
pub(super) fn check_operator_value(property: &PropertyFilter, path: &str) -> Result<(), Violation> {
    let op_path = format!("{path}.operator");
    let name = property.operator.as_deref().unwrap_or("exact");
    let op: Operator = name
        .parse()
        .map_err(|_| Violation::invalid(&op_path, format!("Unknown operator \"{name}\".")))?;
    match op {
        Operator::In | Operator::NotIn => {
            return Err(Violation::invalid(
                op_path,
                format!("Operator \"{name}\" is only valid on cohort properties."),
            ))
        }
        Operator::FlagEvaluatesTo => {
            return Err(Violation::invalid(
                op_path,
                "Operator \"flag_evaluates_to\" is only valid on flag properties.",
            ))
        }
        _ => {}
    }
    let value_path = format!("{path}.value");
    let value = property.value.as_ref();
    if let Some(Value::Array(items)) = value {
        if items.len() > MAX_LIST_VALUES {
            return Err(Violation::limit(
                value_path,
                Exceeded::ListValues(items.len()),
            ));
        }
    }
    let shown = || value.map_or_else(|| "null".to_owned(), Value::to_string);
    if STRING_OPERATORS.contains(&op) && !matches!(value, Some(Value::String(_))) {
        return Err(Violation::new(
            ViolationCode::InvalidValue,
            value_path,
            format!(
                "Invalid value for operator {name}: {}. Send the value as a string.",
                shown()
            ),
        ));
    }
    if let (Operator::Regex | Operator::NotRegex, Some(Value::String(pattern))) = (op, value) {
        // The engine treats a pattern that does not compile as "never matches" and one over a
        // limit as a defect; refuse both here, built exactly as the engine builds it.
        match build_regex(pattern) {
            Ok(_) => {}
            Err(RegexError::Invalid(e)) => {
                return Err(Violation::new(
                    ViolationCode::InvalidRegex,
                    value_path,
                    format!("Invalid regular expression {pattern:?}: {e}"),
                ))
            }
            Err(RegexError::Limit(limit)) => return Err(Violation::limit(value_path, limit)),
        }
    }
    let date_operator = matches!(
        op,
        Operator::IsDateBefore | Operator::IsDateAfter | Operator::IsDateExact
    );
    let is_date = |v: &Value| {
        v.as_str()
            .is_some_and(|s| DateFilter::parse(s) != DateFilter::Invalid)
    };
    if date_operator && !value.is_some_and(is_date) {
        return Err(Violation::new(
            ViolationCode::InvalidDate,
            value_path,
            format!(
                "Invalid date value: {}. Use an ISO-8601 date or a relative date such as \"-30d\".",
                shown()
            ),
        ));
    }
    Ok(())
}
