//! Groups (B2B entities such as companies), keyed by group type index and group key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Properties;

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
