//! Distinct ids as clients send them: strings or numbers, stored as at most 200 characters.

use serde_json::Value;

use crate::field::FieldError;

/// Longest distinct id kept, in Unicode scalar values; longer ones are truncated (PostHog keeps
/// distinct ids to `VARCHAR(200)`-compatible lengths).
pub const MAX_DISTINCT_ID_CHARS: usize = 200;

/// Reads a distinct id: a string as-is, a number in its JSON decimal form (`8675309` →
/// `"8675309"`, `123.45` → `"123.45"`), truncated to [`MAX_DISTINCT_ID_CHARS`].
pub(crate) fn from_value(name: &'static str, value: Value) -> Result<String, FieldError> {
    let mut id = match value {
        Value::String(s) => s,
        other => match vexil_engine::id_text(&other) {
            Some(text) => text.into_owned(),
            None => return Err(FieldError::new(name, "a string or number")),
        },
    };
    truncate(&mut id);
    Ok(id)
}

/// Truncates `id` to its first [`MAX_DISTINCT_ID_CHARS`] Unicode scalar values.
pub fn truncate(id: &mut String) {
    // Fewer bytes than the limit means fewer characters too.
    if id.len() <= MAX_DISTINCT_ID_CHARS {
        return;
    }
    if let Some((cut, _)) = id.char_indices().nth(MAX_DISTINCT_ID_CHARS) {
        id.truncate(cut);
    }
}
