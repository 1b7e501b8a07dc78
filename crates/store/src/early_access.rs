//! Early access features (PostHog's `early_access_feature`): a named, staged feature a person
//! can opt into from the browser, each linked to one feature flag whose `feature_enrollment`
//! gate reads the person property `$feature_enrollment/<flag key>`.
//!
//! The store keeps the feature rows; changing the linked flag's filters is the caller's job,
//! through the flag write path (so it is versioned, logged and published like any flag edit).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// A feature's lifecycle stage, as PostHog names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EarlyAccessStage {
    /// Not shown to anyone yet.
    Draft,
    /// An idea people may register interest in.
    Concept,
    /// Early testing; people can opt in.
    Alpha,
    /// Public beta; people can opt in (the stage the public list shows by default).
    Beta,
    /// Released to everyone.
    GeneralAvailability,
    /// Retired.
    Archived,
}

impl EarlyAccessStage {
    /// Every stage, in lifecycle order.
    pub const ALL: [EarlyAccessStage; 6] = [
        EarlyAccessStage::Draft,
        EarlyAccessStage::Concept,
        EarlyAccessStage::Alpha,
        EarlyAccessStage::Beta,
        EarlyAccessStage::GeneralAvailability,
        EarlyAccessStage::Archived,
    ];

    /// The wire name (`general-availability`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EarlyAccessStage::Draft => "draft",
            EarlyAccessStage::Concept => "concept",
            EarlyAccessStage::Alpha => "alpha",
            EarlyAccessStage::Beta => "beta",
            EarlyAccessStage::GeneralAvailability => "general-availability",
            EarlyAccessStage::Archived => "archived",
        }
    }

    /// Whether people can be enrolled at this stage (PostHog's `ActiveStage`: alpha, beta,
    /// general availability): the linked flag then carries the `feature_enrollment` gate.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            EarlyAccessStage::Alpha
                | EarlyAccessStage::Beta
                | EarlyAccessStage::GeneralAvailability
        )
    }
}

impl fmt::Display for EarlyAccessStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage name that is not one of [`EarlyAccessStage::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a valid choice (draft, concept, alpha, beta, general-availability, archived)"
)]
pub struct UnknownStage(pub String);

impl FromStr for EarlyAccessStage {
    type Err = UnknownStage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EarlyAccessStage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| UnknownStage(s.to_owned()))
    }
}

/// A stored early access feature.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyAccessFeature {
    /// Its id (PostHog's are UUIDs).
    pub id: Uuid,
    /// The linked flag's id.
    pub flag_id: i64,
    /// The linked flag's key (read with the row).
    pub flag_key: String,
    /// Display name.
    pub name: String,
    /// Longer text shown in the opt-in UI.
    pub description: String,
    /// Lifecycle stage.
    pub stage: EarlyAccessStage,
    /// Link to documentation (empty when none).
    pub documentation_url: String,
    /// Arbitrary JSON metadata (an object; `{}` when none).
    pub payload: Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A feature to create, linked to an existing flag of the project.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEarlyAccessFeature {
    /// The linked flag's id; a flag is linked to at most one feature
    /// ([`crate::StoreError::Duplicate`] on `feature_flag_id` otherwise).
    pub flag_id: i64,
    /// Display name.
    pub name: String,
    /// Longer text.
    pub description: String,
    /// Lifecycle stage.
    pub stage: EarlyAccessStage,
    /// Documentation link (may be empty).
    pub documentation_url: String,
    /// JSON metadata.
    pub payload: Value,
}

/// A partial update: `None` keeps the stored value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EarlyAccessFeatureUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New stage.
    pub stage: Option<EarlyAccessStage>,
    /// New documentation link.
    pub documentation_url: Option<String>,
    /// New payload.
    pub payload: Option<Value>,
}

impl EarlyAccessFeature {
    /// The row with `update` applied.
    pub fn updated(&self, update: &EarlyAccessFeatureUpdate) -> EarlyAccessFeature {
        EarlyAccessFeature {
            name: update.name.clone().unwrap_or_else(|| self.name.clone()),
            description: update
                .description
                .clone()
                .unwrap_or_else(|| self.description.clone()),
            stage: update.stage.unwrap_or(self.stage),
            documentation_url: update
                .documentation_url
                .clone()
                .unwrap_or_else(|| self.documentation_url.clone()),
            payload: update
                .payload
                .clone()
                .unwrap_or_else(|| self.payload.clone()),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_round_trip_and_unknown_names_are_refused() {
        for stage in EarlyAccessStage::ALL {
            assert_eq!(stage.as_str().parse::<EarlyAccessStage>(), Ok(stage));
        }
        assert_eq!(
            "ga".parse::<EarlyAccessStage>(),
            Err(UnknownStage("ga".into()))
        );
        let active: Vec<_> = EarlyAccessStage::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(
            active,
            [
                EarlyAccessStage::Alpha,
                EarlyAccessStage::Beta,
                EarlyAccessStage::GeneralAvailability
            ]
        );
    }
}
