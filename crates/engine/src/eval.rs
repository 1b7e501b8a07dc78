//! Evaluation: a pure function of a [`CompiledProject`] and a [`Context`].
//!
//! Order per flag (PostHog server semantics): early-access enrollment → holdout → release
//! conditions in stored order, first match wins. Within a condition, property and flag filters
//! short-circuit in stored order, cohort filters are checked after them, then the rollout.

use std::cell::Cell;

use serde_json::Value;

use crate::cohort::{CohortDefect, Leaf, Node, Target};
use crate::compile::{
    CompiledCondition, CompiledProject, ConditionFilter, Enrollment, FlagBody, FlagExpect,
    FlagRules, Holdout,
};
use crate::context::{lookup_layers, Context, GroupKey};
use crate::hash::{hash01, in_rollout};
use crate::keys::{PropertyKey, Values};
use crate::outcome::{Evaluation, FlagResult, FlagValue};
use crate::reason::{ErrorCode, Reason, ReasonCode, ReasonDetail};

/// Evaluates every active flag (or only `ctx.flag_keys`) for one request.
///
/// Allocates the result vector and, for projects with flag dependencies or a `flag_keys`
/// selection, one scratch vector; never anything per flag. Each distinct property key is looked
/// up once per call, into slots held inline (a project reading more than 16 keys allocates one
/// vector of slots for the rest; a `distinct_id` or `$group_key` fallback builds its value once).
pub fn evaluate<'p>(project: &'p CompiledProject, ctx: &Context<'_>) -> Evaluation<'p> {
    let mut cohort_memo = Vec::new();
    let mut values = Values::new(project.keys.len());
    let mut errors = false;
    let included = |i: usize| {
        let flag = &project.flags[i];
        flag.active() && ctx.include.is_none_or(|keep| keep(flag))
    };

    if !project.has_dependencies && ctx.flag_keys.is_none() {
        // No flag reads another: evaluate straight into the result, in definition order
        // (which is then also the evaluation order).
        let mut flags = Vec::with_capacity(project.flags.len());
        for (i, flag) in project.flags.iter().enumerate() {
            if !included(i) {
                continue;
            }
            let mut eval = FlagEval {
                project,
                ctx,
                deps: &[],
                cohort_memo: &mut cohort_memo,
                values: &mut values,
                needs_stored: Cell::new(false),
            };
            let (value, reason, payload) = eval.outcome(&flag.body);
            errors |= matches!(reason.code, ReasonCode::Error(_));
            flags.push(FlagResult {
                flag,
                value,
                reason,
                payload,
            });
        }
        return Evaluation {
            flags,
            errors_while_computing_flags: errors,
        };
    }

    let selected = selection(project, ctx);
    // Outcomes by flag index; flags that are not evaluated count as `false` for dependents.
    let mut slots: Vec<Option<Outcome<'p>>> = vec![None; project.flags.len()];
    for &i in &project.order {
        if selected.as_ref().is_some_and(|sel| !sel[i]) || !included(i) {
            continue;
        }
        let mut eval = FlagEval {
            project,
            ctx,
            deps: &slots,
            cohort_memo: &mut cohort_memo,
            values: &mut values,
            needs_stored: Cell::new(false),
        };
        let outcome = eval.outcome(&project.flags[i].body);
        errors |= matches!(outcome.1.code, ReasonCode::Error(_));
        slots[i] = Some(outcome);
    }
    let wanted = |i: usize| match ctx.flag_keys {
        Some(keys) => keys.iter().any(|k| k == project.flags[i].key()),
        None => true,
    };
    let count = (0..slots.len())
        .filter(|&i| slots[i].is_some() && wanted(i))
        .count();
    let mut flags = Vec::with_capacity(count);
    for (i, slot) in slots.into_iter().enumerate() {
        if let Some((value, reason, payload)) = slot {
            if wanted(i) {
                flags.push(FlagResult {
                    flag: &project.flags[i],
                    value,
                    reason,
                    payload,
                });
            }
        }
    }
    Evaluation {
        flags,
        errors_while_computing_flags: errors,
    }
}

/// With `flag_keys`, the requested flags plus their transitive dependencies.
fn selection(project: &CompiledProject, ctx: &Context<'_>) -> Option<Vec<bool>> {
    let keys = ctx.flag_keys?;
    let mut sel = vec![false; project.flags.len()];
    let mut stack: Vec<usize> = keys
        .iter()
        .filter_map(|k| project.by_key.get(k.as_str()).copied())
        .collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut sel[i], true) {
            continue;
        }
        if let FlagBody::Rules(r) = &project.flags[i].body {
            stack.extend(r.deps.iter().copied().filter(|&d| d != usize::MAX));
        }
    }
    Some(sel)
}

type Outcome<'p> = (FlagValue<'p>, Reason, Option<&'p Value>);

/// Cohort membership memo entries.
const UNKNOWN: u8 = 0;
const NO: u8 = 1;
const YES: u8 = 2;
const NOT_EVALUATED: u8 = 3;

struct FlagEval<'e, 'p, 'c> {
    project: &'p CompiledProject,
    ctx: &'e Context<'c>,
    /// Outcomes of flags evaluated so far (empty when the project has no dependencies).
    deps: &'e [Option<Outcome<'p>>],
    cohort_memo: &'e mut Vec<u8>,
    /// Property values of this request, shared by every flag.
    values: &'e mut Values<'c>,
    /// Set when, with stored data unavailable, the flag being evaluated read something only
    /// stored data could supply (see [`Context::stored_unavailable`]).
    needs_stored: Cell<bool>,
}

/// Result of checking one condition.
enum CondOutcome {
    Match,
    OutOfRollout,
    NoMatch,
    /// Cohort filters could not be decided (a behavioural cohort without data).
    NoMatchCohortUnknown,
    /// A cohort in a cycle: the flag fails.
    CohortCycle,
}

impl<'p> FlagEval<'_, 'p, '_> {
    fn outcome(&mut self, body: &'p FlagBody) -> Outcome<'p> {
        match body {
            FlagBody::Rules(rules) => match self.ctx.stored_unavailable {
                None => self.flag(rules),
                Some(_) if rules.continuity => failure(ErrorCode::HashKeyOverrideError),
                Some(code) => {
                    self.needs_stored.set(false);
                    let outcome = self.flag(rules);
                    if self.needs_stored.get() {
                        failure(code)
                    } else {
                        outcome
                    }
                }
            },
            FlagBody::Defect(code, _) => (
                FlagValue::False,
                Reason::new(ReasonCode::Error(*code), None),
                None,
            ),
            FlagBody::MissingDependency => (
                FlagValue::False,
                Reason::new(ReasonCode::MissingDependency, None),
                None,
            ),
        }
    }

    fn dependency_value(&self, dep: usize) -> FlagValue<'p> {
        let outcome = self.deps.get(dep).copied().flatten();
        if let (Some(unavailable), Some((_, reason, _))) = (self.ctx.stored_unavailable, outcome) {
            // A dependency that failed for want of stored data decides nothing either.
            if reason.code == ReasonCode::Error(unavailable)
                || reason.code == ReasonCode::Error(ErrorCode::HashKeyOverrideError)
            {
                self.needs_stored.set(true);
            }
        }
        outcome.map_or(FlagValue::False, |(value, ..)| value)
    }

    /// Notes that the flag read a value the request lacks: with stored data unavailable, its
    /// outcome is then unknown.
    fn missing_from_request(&self) {
        if self.ctx.stored_unavailable.is_some() {
            self.needs_stored.set(true);
        }
    }

    fn flag(&mut self, rules: &'p FlagRules) -> Outcome<'p> {
        let payload = |variant: Option<&str>| rules.payloads.get(variant.unwrap_or("true"));

        match &rules.enrollment {
            Enrollment::None => {}
            Enrollment::Feature(prop) => {
                if let Some(v) = self.person_value(prop) {
                    let on = matches!(v, Value::Bool(true)) || v.as_str() == Some("true");
                    let reason = Reason::new(ReasonCode::SuperConditionValue, Some(0));
                    return if on {
                        (FlagValue::True, reason, payload(None))
                    } else {
                        (FlagValue::False, reason, None)
                    };
                }
            }
            Enrollment::SuperGroup(cond, keys) => {
                if keys.iter().any(|k| self.person_value(k).is_some()) {
                    let reason = Reason::new(ReasonCode::SuperConditionValue, Some(0));
                    return match self.condition(rules, cond) {
                        CondOutcome::Match => (FlagValue::True, reason, payload(None)),
                        CondOutcome::CohortCycle => cycle_failure(),
                        _ => (FlagValue::False, reason, None),
                    };
                }
            }
        }

        if let Some(holdout) = &rules.holdout {
            if let Some(variant) = self.holdout(rules, holdout) {
                let reason = Reason::new(ReasonCode::HoldoutConditionValue, None);
                return (FlagValue::Variant(variant), reason, payload(Some(variant)));
            }
        }

        let mut best = Reason::new(ReasonCode::NoGroupType, None);
        let mut skipped_groups = false;
        let mut cohort_unknown = false;
        let raise = |best: &mut Reason, code: ReasonCode, index: usize| {
            if code.score() >= best.code.score() {
                *best = Reason::new(code, Some(index));
            }
        };
        for (index, cond) in rules.conditions.iter().enumerate() {
            match cond.aggregation {
                None if rules.device_bucketing && self.ctx.device_id().is_none() => {
                    raise(&mut best, ReasonCode::OutOfRolloutBound, index);
                    continue;
                }
                Some(g) if self.group_key(g).is_none() => {
                    skipped_groups = true;
                    raise(&mut best, ReasonCode::NoGroupType, index);
                    continue;
                }
                _ => {}
            }
            match self.condition(rules, cond) {
                CondOutcome::Match => {
                    let variant = match cond.variant_override {
                        Some(v) => Some(&*rules.variants[v].0),
                        None => self.variant(rules, cond.aggregation),
                    };
                    let value = variant.map_or(FlagValue::True, FlagValue::Variant);
                    let reason = Reason::new(ReasonCode::ConditionMatch, Some(index));
                    return (value, reason, payload(variant));
                }
                CondOutcome::OutOfRollout => {
                    raise(&mut best, ReasonCode::OutOfRolloutBound, index);
                    if rules.early_exit {
                        return (FlagValue::False, best, None);
                    }
                }
                CondOutcome::NoMatch => raise(&mut best, ReasonCode::NoConditionMatch, index),
                CondOutcome::NoMatchCohortUnknown => {
                    cohort_unknown = true;
                    raise(&mut best, ReasonCode::NoConditionMatch, index);
                }
                CondOutcome::CohortCycle => return cycle_failure(),
            }
        }
        if best.code == ReasonCode::NoConditionMatch {
            best.detail = if cohort_unknown {
                ReasonDetail::CohortNotEvaluated
            } else if skipped_groups {
                ReasonDetail::GroupsNotEvaluated
            } else {
                ReasonDetail::None
            };
        }
        (FlagValue::False, best, None)
    }

    fn condition(&mut self, rules: &'p FlagRules, cond: &'p CompiledCondition) -> CondOutcome {
        for filter in &cond.filters {
            let ok = match filter {
                ConditionFilter::Property { key, test } => {
                    let now = self.ctx.now;
                    test.matches(self.property(key), now)
                }
                ConditionFilter::Flag { dep, expect } => {
                    match (expect, self.dependency_value(*dep)) {
                        (FlagExpect::Enabled, v) => v.is_enabled(),
                        (FlagExpect::Disabled, v) => !v.is_enabled(),
                        (FlagExpect::Variant(want), FlagValue::Variant(got)) => **want == *got,
                        (FlagExpect::Variant(_), _) => false,
                    }
                }
                ConditionFilter::Never => false,
            };
            if !ok {
                return CondOutcome::NoMatch;
            }
        }
        for r in &cond.cohorts {
            if self.project.cohorts.is_cyclic(r.target) {
                return CondOutcome::CohortCycle;
            }
            if self.ctx.stored_unavailable.is_some() {
                // Membership and cohort properties are stored data.
                self.needs_stored.set(true);
                return CondOutcome::NoMatch;
            }
            match self.cohort(r.target) {
                NOT_EVALUATED => return CondOutcome::NoMatchCohortUnknown,
                m => {
                    if (m == YES) == r.negate {
                        return CondOutcome::NoMatch;
                    }
                }
            }
        }
        if cond.rollout >= 100.0 {
            return CondOutcome::Match;
        }
        let hash = self.hash(rules, cond.aggregation, "");
        if in_rollout(hash, cond.rollout) {
            CondOutcome::Match
        } else {
            CondOutcome::OutOfRollout
        }
    }

    /// Membership of a cohort: `YES`, `NO` or `NOT_EVALUATED` (behavioural data unavailable).
    fn cohort(&mut self, target: Target) -> u8 {
        let i = match target {
            Target::Static(id) => {
                let member = self.ctx.static_cohorts.is_some_and(|s| s.contains(&id));
                return if member { YES } else { NO };
            }
            Target::Dynamic(i) => i,
        };
        if self.cohort_memo.is_empty() {
            self.cohort_memo
                .resize(self.project.cohorts.cohorts.len(), UNKNOWN);
        }
        if self.cohort_memo[i] != UNKNOWN {
            return self.cohort_memo[i];
        }
        let project = self.project;
        let result = match &project.cohorts.cohorts[i].root {
            Ok(root) => match self.node(root) {
                Some(true) => YES,
                Some(false) => NO,
                None => NOT_EVALUATED,
            },
            // Flags using an over-limit cohort do not compile; cycles fail the flag first.
            Err(CohortDefect::Unparseable | CohortDefect::Cycle | CohortDefect::OverLimit(_)) => NO,
        };
        self.cohort_memo[i] = result;
        result
    }

    /// `None` = cannot be decided (behavioural leaf without data).
    fn node(&mut self, node: &'p Node) -> Option<bool> {
        match node {
            Node::All(children) => {
                for c in children {
                    if !self.node(c)? {
                        return Some(false);
                    }
                }
                Some(true)
            }
            Node::Any(children) => {
                if children.is_empty() {
                    return Some(true);
                }
                for c in children {
                    if self.node(c)? {
                        return Some(true);
                    }
                }
                Some(false)
            }
            Node::Leaf { leaf, negate } => {
                let hit = match leaf {
                    Leaf::Property { key, test } => {
                        let now = self.ctx.now;
                        test.matches(self.property(key), now)
                    }
                    Leaf::Cohort(target) => match self.cohort(*target) {
                        NOT_EVALUATED => return None,
                        m => m == YES,
                    },
                    Leaf::Behavioral(b) => b.rule.holds(self.ctx.behavior?.count(b.query)?),
                };
                Some(hit != *negate)
            }
        }
    }

    fn holdout(&self, rules: &'p FlagRules, holdout: &'p Holdout) -> Option<&'p str> {
        let hash = || {
            self.identifier(rules, rules.aggregation, false)
                .with(|id| hash01("holdout-", id, ""))
        };
        match holdout {
            Holdout::Modern {
                percentage,
                variant,
            } => (*percentage >= 100.0 || hash() <= percentage / 100.0).then_some(&**variant),
            Holdout::Legacy {
                has_properties,
                rollout,
                variant,
            } => {
                if *has_properties {
                    return None;
                }
                let member = rollout.is_none_or(|r| r >= 100.0 || hash() <= r / 100.0);
                member.then(|| {
                    variant
                        .as_deref()
                        .or_else(|| self.variant(rules, rules.aggregation))
                        .unwrap_or("holdout")
                })
            }
        }
    }

    fn variant(&self, rules: &'p FlagRules, aggregation: Option<i64>) -> Option<&'p str> {
        if rules.variants.is_empty() {
            return None;
        }
        let hash = self.hash(rules, aggregation, "variant");
        rules
            .variants
            .iter()
            .find(|(_, boundary)| hash < *boundary)
            .map(|(key, _)| &**key)
    }

    /// Rollout/variant hash; an empty identifier hashes to 0.0 without SHA-1.
    fn hash(&self, rules: &FlagRules, aggregation: Option<i64>, salt: &str) -> f64 {
        self.identifier(rules, aggregation, true).with(|id| {
            if id.is_empty() {
                0.0
            } else {
                hash01(&rules.hash_prefix, id, salt)
            }
        })
    }

    fn identifier(
        &self,
        rules: &FlagRules,
        aggregation: Option<i64>,
        use_overrides: bool,
    ) -> Identifier<'_> {
        if let Some(g) = aggregation {
            return match self.group_key(g) {
                Some(key) => Identifier::Group(key),
                None => Identifier::Str(""),
            };
        }
        if rules.device_bucketing {
            if let Some(device) = self.ctx.device_id() {
                return Identifier::Str(device);
            }
        }
        let key = &rules.hash_prefix[..rules.hash_prefix.len() - 1];
        if use_overrides {
            if let Some(o) = self.ctx.hash_key_overrides.and_then(|m| m.get(key)) {
                return Identifier::Str(o);
            }
        }
        if rules.continuity {
            if let Some(anon) = self.ctx.anon_distinct_id {
                return Identifier::Str(anon);
            }
        }
        Identifier::Str(self.ctx.distinct_id)
    }

    fn group_key(&self, index: i64) -> Option<GroupKey<'_>> {
        let name = self.project.group_types.get(&index)?;
        self.ctx.group_key(name)
    }

    fn person_value(&self, key: &str) -> Option<&Value> {
        let value = lookup_layers(
            self.ctx.person_properties,
            self.ctx.stored_person_properties,
            key,
        );
        // `distinct_id` falls back to the request's own (as `Requirements::covered_by` counts it).
        if value.is_none() && key != "distinct_id" {
            self.missing_from_request();
        }
        value
    }

    /// A filter's property value (looked up once per request, see [`Values`]).
    fn property(&mut self, key: &PropertyKey) -> Option<&Value> {
        let resolved = self.values.get(key, self.ctx, &self.project.group_types);
        if resolved.missing && self.ctx.stored_unavailable.is_some() {
            self.needs_stored.set(true);
        }
        resolved.value
    }
}

fn cycle_failure<'p>() -> Outcome<'p> {
    failure(ErrorCode::CohortCycle)
}

fn failure<'p>(code: ErrorCode) -> Outcome<'p> {
    (
        FlagValue::False,
        Reason::new(ReasonCode::Error(code), None),
        None,
    )
}

enum Identifier<'a> {
    Str(&'a str),
    Group(GroupKey<'a>),
}

impl Identifier<'_> {
    fn with<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Identifier::Str(s) => f(s),
            Identifier::Group(k) => k.with_str(f),
        }
    }
}
