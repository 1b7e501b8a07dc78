//! What an evaluation returns: one [`FlagResult`] per evaluated flag, borrowing from the compiled
//! project so that producing it allocates nothing per flag.

use serde_json::Value;

use crate::compile::CompiledFlag;
use crate::reason::{Reason, ReasonCode};

/// A flag's value: `false`, `true`, or a variant key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagValue<'p> {
    /// Disabled (or failed).
    False,
    /// Enabled without a variant.
    True,
    /// Enabled with this variant.
    Variant(&'p str),
}

impl<'p> FlagValue<'p> {
    /// `true` unless the value is `False`.
    pub fn is_enabled(self) -> bool {
        !matches!(self, FlagValue::False)
    }

    /// The variant key, if any.
    pub fn variant(self) -> Option<&'p str> {
        match self {
            FlagValue::Variant(v) => Some(v),
            _ => None,
        }
    }

    /// The value as JSON (`false`, `true` or `"variant"`), as `featureFlags` maps carry it.
    pub fn to_json(self) -> Value {
        match self {
            FlagValue::False => Value::Bool(false),
            FlagValue::True => Value::Bool(true),
            FlagValue::Variant(v) => Value::String(v.to_owned()),
        }
    }
}

/// The result of evaluating one flag.
#[derive(Debug, Clone, Copy)]
pub struct FlagResult<'p> {
    /// The flag definition (key, id, version, metadata).
    pub flag: &'p CompiledFlag,
    /// The value.
    pub value: FlagValue<'p>,
    /// Why.
    pub reason: Reason,
    /// Payload for the matched variant (or `"true"`), exactly as stored; `None` when disabled.
    pub payload: Option<&'p Value>,
}

impl<'p> FlagResult<'p> {
    /// The flag key.
    pub fn key(&self) -> &'p str {
        self.flag.key()
    }

    /// Whether the flag is enabled.
    pub fn enabled(&self) -> bool {
        self.value.is_enabled()
    }

    /// The variant key, if any.
    pub fn variant(&self) -> Option<&'p str> {
        self.value.variant()
    }

    /// Whether evaluation failed (the wire record then carries `failed: true`).
    pub fn failed(&self) -> bool {
        matches!(self.reason.code, ReasonCode::Error(_))
    }
}

/// All flag results of one request.
#[derive(Debug, Clone)]
pub struct Evaluation<'p> {
    /// Results in definition order (inactive, deleted and unselected flags are omitted).
    pub flags: Vec<FlagResult<'p>>,
    /// Whether any flag failed (`errorsWhileComputingFlags`).
    pub errors_while_computing_flags: bool,
}

impl<'p> Evaluation<'p> {
    /// The result for `key`, if it was evaluated.
    pub fn get(&self, key: &str) -> Option<&FlagResult<'p>> {
        self.flags.iter().find(|r| r.key() == key)
    }
}
