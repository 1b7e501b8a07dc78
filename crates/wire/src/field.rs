//! Typed reads of known fields from decoded JSON objects: aliases, `null` as absent, and a
//! [`FieldError`] naming the field when a value has the wrong type.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// A known field holds a value of the wrong JSON type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be {expected}")]
pub struct FieldError {
    /// The field as the client named it, with its path for nested fields
    /// (`group_properties.company`, `batch[3].properties`).
    pub field: Cow<'static, str>,
    /// What it must be, e.g. `an object`.
    pub expected: &'static str,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<Cow<'static, str>>, expected: &'static str) -> Self {
        FieldError {
            field: field.into(),
            expected,
        }
    }
}

/// Removes and returns the first of `names` present with a non-null value, with the name used.
///
/// Aliases are taken in order of preference; later aliases of a field already found are left in
/// the map (and ignored, like any unknown field).
pub(crate) fn take(
    map: &mut Map<String, Value>,
    names: &[&'static str],
) -> Option<(&'static str, Value)> {
    names
        .iter()
        .find_map(|&name| Some((name, present(map.remove(name))?)))
}

/// A field's value as sent, `null` read as absent (as PostHog reads every optional field).
pub(crate) fn present(value: Option<Value>) -> Option<Value> {
    value.filter(|v| !v.is_null())
}

pub(crate) fn string(name: &'static str, value: Value) -> Result<String, FieldError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(FieldError::new(name, "a string")),
    }
}

pub(crate) fn boolean(name: &'static str, value: Value) -> Result<bool, FieldError> {
    match value {
        Value::Bool(b) => Ok(b),
        _ => Err(FieldError::new(name, "a boolean")),
    }
}

pub(crate) fn object(
    name: impl Into<Cow<'static, str>>,
    value: Value,
) -> Result<Map<String, Value>, FieldError> {
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(FieldError::new(name, "an object")),
    }
}

pub(crate) fn string_list(name: &'static str, value: Value) -> Result<Vec<String>, FieldError> {
    let err = || FieldError::new(name, "an array of strings");
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(err()),
            })
            .collect(),
        _ => Err(err()),
    }
}

/// `take` + a converter, for optional fields.
pub(crate) fn optional<T>(
    map: &mut Map<String, Value>,
    names: &[&'static str],
    convert: impl FnOnce(&'static str, Value) -> Result<T, FieldError>,
) -> Result<Option<T>, FieldError> {
    take(map, names)
        .map(|(name, value)| convert(name, value))
        .transpose()
}
