//! Groups (B2B entities such as companies), keyed by group type index and group key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Properties, Result, StoreError, MAX_GROUP_TYPE_INDEX};

/// A group (B2B entity) of one group type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The group type index (0–4).
    pub group_type_index: i64,
    /// The group's key (e.g. a company id).
    pub group_key: String,
    /// Stored properties.
    pub properties: Properties,
    /// First seen.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The store's rule for a group type index (0–4).
pub(crate) fn check_index(group_type_index: i64) -> Result<()> {
    if (0..=MAX_GROUP_TYPE_INDEX).contains(&group_type_index) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "group_type_index",
            format!("The group type index must be between 0 and {MAX_GROUP_TYPE_INDEX}."),
        ))
    }
}

/// The store's rules for a group written by `$groupidentify`.
pub(crate) fn check(group_type_index: i64, group_key: &str) -> Result<()> {
    check_index(group_type_index)?;
    if group_key.is_empty() {
        return Err(StoreError::invalid(
            "group_key",
            "The group key must not be empty.",
        ));
    }
    Ok(())
}
