//! Property key suggestions for the editors: keys of stored persons and groups (with the type
//! of their values, for value hints), then the keys the project's flags already read.

use vexil_store::{ProjectId, ValueKind};

use super::page::UiError;
use crate::state::AppState;

/// Persons and groups sampled for their keys (the latest of each).
const SAMPLE: u32 = 1_000;

/// `(key, hint)` for the property-key datalist: stored person keys first (most common first),
/// then group keys (`group 0: …`), then keys flags read that no sampled person has.
pub async fn person_keys(
    state: &AppState,
    project: ProjectId,
) -> Result<Vec<(String, String)>, UiError> {
    let stored = state.store.property_keys(project, SAMPLE).await?;
    let snapshot = state.snapshot(project).await?;
    let mut out: Vec<(String, String)> = Vec::with_capacity(stored.len());
    for k in &stored {
        let kind = match k.kind {
            ValueKind::Text => "text",
            ValueKind::Number => "number",
            ValueKind::Boolean => "true / false",
            ValueKind::Other => "mixed",
        };
        let hint = match k.group_type_index {
            None => format!("person property, {kind}, on {} persons", k.count),
            Some(g) => format!("group {g} property, {kind}, on {} groups", k.count),
        };
        if !out.iter().any(|(key, _)| *key == k.key) {
            out.push((k.key.clone(), hint));
        }
    }
    for key in &snapshot.compiled.requirements().person_keys {
        let key = key.to_string();
        if !out.iter().any(|(k, _)| *k == key) {
            out.push((key, "read by a flag".to_owned()));
        }
    }
    Ok(out)
}
