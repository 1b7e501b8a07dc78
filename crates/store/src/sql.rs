//! Reading rows, shared by the SQL backends: stored JSON, uuids and counts, and the
//! constraint violations both databases report through sqlx.

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{FlagOrder, FlagOrderField, PropertyKey, Result, StoreError, ValueKind};

/// A stored JSON column.
pub(crate) fn json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

/// A stored uuid column kept as text.
pub(crate) fn uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::corrupt(format!("uuid {text:?}: {e}")))
}

/// A count read from SQL (never negative) as `u64`.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The `ORDER BY` clause of a flag list. `key` and `name` are the backend's expressions that
/// sort those columns by [`FlagOrderField`]'s rules (the other columns sort alike in both).
pub(crate) fn flag_order_by(order: FlagOrder, key: &str, name: &str) -> String {
    let column = match order.field {
        FlagOrderField::Key => key,
        FlagOrderField::Name => name,
        FlagOrderField::CreatedAt => "created_at",
        FlagOrderField::UpdatedAt => "updated_at",
        FlagOrderField::Active => "active",
        FlagOrderField::Id => "id",
    };
    let direction = if order.descending { "DESC" } else { "ASC" };
    format!("{column} {direction}, id DESC")
}

/// Whether `e` is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Whether `e` is a foreign-key violation.
pub(crate) fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// For `map_err` on a write whose foreign key names `entity`: a violation means the `entity` is
/// missing (`NotFound`); any other error is passed on.
pub(crate) fn or_missing(entity: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| {
        if is_fk_violation(&e) {
            StoreError::NotFound { entity }
        } else {
            e.into()
        }
    }
}

/// Property keys from `(group type index, key, backend type name, count)` rows: one entry per
/// key and source with the most common type's kind and the total count, most common first.
pub(crate) fn property_keys(rows: Vec<(Option<i64>, String, String, u64)>) -> Vec<PropertyKey> {
    /// Counts by value kind, per (group type index, key).
    type Kinds = std::collections::HashMap<(Option<i64>, String), Vec<(ValueKind, u64)>>;
    let mut by_key = Kinds::new();
    for (group, key, type_name, n) in rows {
        let kinds = by_key.entry((group, key)).or_default();
        let kind = ValueKind::of_type_name(&type_name);
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, count)) => *count += n,
            None => kinds.push((kind, n)),
        }
    }
    let mut out: Vec<PropertyKey> = by_key
        .into_iter()
        .map(|((group_type_index, key), kinds)| {
            let count = kinds.iter().map(|(_, n)| n).sum();
            let kind = kinds
                .iter()
                .max_by_key(|(_, n)| *n)
                .map_or(ValueKind::Other, |(k, _)| *k);
            PropertyKey {
                group_type_index,
                key,
                kind,
                count,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.group_type_index.cmp(&b.group_type_index))
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}
