//! Why a flag evaluated the way it did: PostHog's reason codes, their priority and descriptions.

use std::fmt;

use serde::{Serialize, Serializer};

/// The outcome class of one flag evaluation (`reason.code` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCode {
    /// Decided by early-access enrollment (`feature_enrollment` / `super_groups`).
    SuperConditionValue,
    /// The user is in the flag's holdout.
    HoldoutConditionValue,
    /// A condition matched (properties and rollout).
    ConditionMatch,
    /// A condition's properties matched but the rollout hash excluded the user.
    OutOfRolloutBound,
    /// No condition's properties matched.
    NoConditionMatch,
    /// Group conditions skipped: the request did not supply the group.
    NoGroupType,
    /// The flag is inactive.
    FlagDisabled,
    /// A flag this flag depends on is missing or part of a cycle.
    MissingDependency,
    /// Evaluation failed; the record carries `failed: true`.
    Error(ErrorCode),
}

/// Why a flag could not be evaluated (`failed: true` records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The flag's filters could not be parsed or compiled.
    FlagDataParsingError,
    /// A cohort the flag uses is part of a cohort reference cycle.
    CohortCycle,
    /// Experience-continuity hash-key overrides could not be loaded.
    HashKeyOverrideError,
    /// Stored person/group data could not be loaded in time.
    DatabaseError,
    /// A data source timed out.
    Timeout,
}

impl ErrorCode {
    /// Wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagDataParsingError => "flag_data_parsing_error",
            ErrorCode::CohortCycle => "cohort_dependency_cycle",
            ErrorCode::HashKeyOverrideError => "hash_key_override_error",
            ErrorCode::DatabaseError => "database_error",
            ErrorCode::Timeout => "timeout",
        }
    }

    fn description(self) -> &'static str {
        match self {
            ErrorCode::FlagDataParsingError => "Flag definition could not be parsed",
            ErrorCode::CohortCycle => "Flag uses a cohort that is part of a cohort reference cycle",
            ErrorCode::HashKeyOverrideError => {
                "Experience continuity overrides could not be loaded"
            }
            ErrorCode::DatabaseError => "Stored person or group data could not be loaded",
            ErrorCode::Timeout => "A data source timed out",
        }
    }
}

impl ReasonCode {
    /// Every code.
    pub const ALL: [ReasonCode; 13] = [
        ReasonCode::SuperConditionValue,
        ReasonCode::HoldoutConditionValue,
        ReasonCode::ConditionMatch,
        ReasonCode::OutOfRolloutBound,
        ReasonCode::NoConditionMatch,
        ReasonCode::NoGroupType,
        ReasonCode::FlagDisabled,
        ReasonCode::MissingDependency,
        ReasonCode::Error(ErrorCode::FlagDataParsingError),
        ReasonCode::Error(ErrorCode::CohortCycle),
        ReasonCode::Error(ErrorCode::HashKeyOverrideError),
        ReasonCode::Error(ErrorCode::DatabaseError),
        ReasonCode::Error(ErrorCode::Timeout),
    ];

    /// This code's position in [`ReasonCode::ALL`] (for tables indexed by code).
    pub const fn index(self) -> usize {
        match self {
            ReasonCode::SuperConditionValue => 0,
            ReasonCode::HoldoutConditionValue => 1,
            ReasonCode::ConditionMatch => 2,
            ReasonCode::OutOfRolloutBound => 3,
            ReasonCode::NoConditionMatch => 4,
            ReasonCode::NoGroupType => 5,
            ReasonCode::FlagDisabled => 6,
            ReasonCode::MissingDependency => 7,
            ReasonCode::Error(ErrorCode::FlagDataParsingError) => 8,
            ReasonCode::Error(ErrorCode::CohortCycle) => 9,
            ReasonCode::Error(ErrorCode::HashKeyOverrideError) => 10,
            ReasonCode::Error(ErrorCode::DatabaseError) => 11,
            ReasonCode::Error(ErrorCode::Timeout) => 12,
        }
    }

    /// Wire code, e.g. `condition_match`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::SuperConditionValue => "super_condition_value",
            ReasonCode::HoldoutConditionValue => "holdout_condition_value",
            ReasonCode::ConditionMatch => "condition_match",
            ReasonCode::OutOfRolloutBound => "out_of_rollout_bound",
            ReasonCode::NoConditionMatch => "no_condition_match",
            ReasonCode::NoGroupType => "no_group_type",
            ReasonCode::FlagDisabled => "flag_disabled",
            ReasonCode::MissingDependency => "missing_dependency",
            ReasonCode::Error(e) => e.as_str(),
        }
    }

    /// Priority used to pick the reported reason across conditions (higher wins, ties go to the
    /// later condition).
    pub(crate) fn score(self) -> i8 {
        match self {
            ReasonCode::SuperConditionValue => 6,
            ReasonCode::HoldoutConditionValue => 5,
            ReasonCode::ConditionMatch => 4,
            ReasonCode::OutOfRolloutBound => 3,
            ReasonCode::NoConditionMatch => 2,
            ReasonCode::NoGroupType => 1,
            ReasonCode::FlagDisabled => 0,
            ReasonCode::MissingDependency | ReasonCode::Error(_) => -1,
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Extra detail that changes only the human description of `no_condition_match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReasonDetail {
    /// Nothing to add.
    #[default]
    None,
    /// Person conditions did not match and group conditions were skipped (group not supplied).
    GroupsNotEvaluated,
    /// A behavioral cohort could not be evaluated (no behavioral data source).
    CohortNotEvaluated,
}

impl ReasonDetail {
    /// Every detail.
    pub const ALL: [ReasonDetail; 3] = [
        ReasonDetail::None,
        ReasonDetail::GroupsNotEvaluated,
        ReasonDetail::CohortNotEvaluated,
    ];

    /// This detail's position in [`ReasonDetail::ALL`].
    pub const fn index(self) -> usize {
        match self {
            ReasonDetail::None => 0,
            ReasonDetail::GroupsNotEvaluated => 1,
            ReasonDetail::CohortNotEvaluated => 2,
        }
    }
}

/// `reason` of one flag result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reason {
    /// The reason code.
    pub code: ReasonCode,
    /// Index of the deciding condition, when one decided.
    pub condition_index: Option<usize>,
    /// Description refinement.
    pub detail: ReasonDetail,
}

impl Reason {
    pub(crate) const fn new(code: ReasonCode, condition_index: Option<usize>) -> Self {
        Reason {
            code,
            condition_index,
            detail: ReasonDetail::None,
        }
    }

    /// Human description, as PostHog words it (`"Matched condition set 2"`).
    pub fn description(&self) -> ReasonDescription {
        ReasonDescription(*self)
    }
}

/// Lazily formatted description of a [`Reason`] (formats without allocating).
#[derive(Debug, Clone, Copy)]
pub struct ReasonDescription(Reason);

impl fmt::Display for ReasonDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.static_text() {
            Some(text) => f.write_str(text),
            None => write!(
                f,
                "Matched condition set {}",
                self.0.condition_index.unwrap_or(0) + 1
            ),
        }
    }
}

impl ReasonDescription {
    /// The text when it has no number in it (every code but `condition_match`), so callers can
    /// write it without formatting.
    pub fn static_text(&self) -> Option<&'static str> {
        let r = self.0;
        Some(match r.code {
            ReasonCode::ConditionMatch => return None,
            ReasonCode::NoConditionMatch => match r.detail {
                ReasonDetail::None => "No matching condition set",
                ReasonDetail::GroupsNotEvaluated => {
                    "No matching condition set (group conditions not evaluated: group not provided)"
                }
                ReasonDetail::CohortNotEvaluated => {
                    "No matching condition set (behavioral or realtime cohort not evaluated)"
                }
            },
            ReasonCode::OutOfRolloutBound => "Out of rollout bound",
            ReasonCode::NoGroupType => "No group type",
            ReasonCode::SuperConditionValue => "Super condition value",
            ReasonCode::HoldoutConditionValue => "Holdout condition value",
            ReasonCode::FlagDisabled => "Feature flag is disabled",
            ReasonCode::MissingDependency => "Flag cannot be evaluated due to missing dependency",
            ReasonCode::Error(e) => e.description(),
        })
    }
}

impl Serialize for ReasonDescription {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Serialising a `&'static str` skips the formatting machinery on the hot path.
        match self.static_text() {
            Some(text) => s.serialize_str(text),
            None => s.collect_str(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ReasonCode, ReasonDetail};

    #[test]
    fn every_code_and_detail_is_listed_once_at_its_index() {
        for (i, code) in ReasonCode::ALL.into_iter().enumerate() {
            assert_eq!(code.index(), i, "{code}");
        }
        for (i, detail) in ReasonDetail::ALL.into_iter().enumerate() {
            assert_eq!(detail.index(), i, "{detail:?}");
        }
    }
}
