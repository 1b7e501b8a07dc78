//! Cohorts: dynamic (property groups, nested AND/OR with negation, cohort-in-cohort), static
//! (membership supplied by the caller) and behavioural ("performed X in the last N minutes",
//! counted by a [`crate::BehavioralData`] source at evaluation time; see [`crate::behavior`]).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::behavior::{self, Behaviors, CountRule, LeafError};
use crate::compile::{parse_operator, DefinitionError};
use crate::graph;
use crate::keys::{KeyTable, PropertyKey, Source};
use crate::limits::{Exceeded, MAX_COHORT_CRITERIA, MAX_COHORT_DEPTH};
use crate::model::{PropertyFilter, PropertyGroup};
use crate::property::{MatchOptions, OperatorError, Test};

/// All dynamic cohorts of a project, compiled.
#[derive(Debug, Default)]
pub(crate) struct CohortSet {
    pub(crate) cohorts: Vec<Cohort>,
    pub(crate) by_id: HashMap<i64, usize>,
    /// What the behavioural leaves count.
    pub(crate) behaviors: Behaviors,
    /// The property keys the cohorts read (a project's flags add theirs to a copy).
    pub(crate) keys: KeyTable,
}

#[derive(Debug)]
pub(crate) struct Cohort {
    pub(crate) root: Result<Node, CohortDefect>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CohortDefect {
    /// The definition could not be parsed: the cohort never matches.
    Unparseable,
    /// Part of (or depends on) a reference cycle: flags using it fail.
    Cycle,
    /// Over one of the [`crate::limits`] (or references a cohort that is): flags using it do
    /// not compile.
    OverLimit(Exceeded),
}

#[derive(Debug)]
pub(crate) enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Leaf { leaf: Leaf, negate: bool },
}

#[derive(Debug)]
pub(crate) enum Leaf {
    Property { key: PropertyKey, test: Test },
    Cohort(Target),
    Behavioral(Behavior),
}

/// What a cohort reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A dynamic cohort in this project (index).
    Dynamic(usize),
    /// Anything else: membership comes from the caller's static-cohort input.
    Static(i64),
}

/// A cohort filter in a flag condition (`in` / `not_in`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CohortRef {
    pub(crate) target: Target,
    pub(crate) negate: bool,
}

/// A behavioural leaf: a count the caller supplies ([`crate::BehavioralData`]) and its rule.
#[derive(Debug)]
pub(crate) struct Behavior {
    /// Index into [`CohortSet::behaviors`]' queries.
    pub(crate) query: usize,
    pub(crate) rule: CountRule,
}

impl CohortSet {
    pub(crate) fn compile(raw: &BTreeMap<String, Value>, opts: MatchOptions) -> CohortSet {
        let ids: Vec<(i64, &Value)> = raw
            .iter()
            .filter_map(|(id, def)| Some((id.trim().parse().ok()?, def)))
            .collect();
        let by_id: HashMap<i64, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        let mut set = CohortSet {
            cohorts: Vec::with_capacity(ids.len()),
            by_id,
            behaviors: Behaviors::default(),
            keys: KeyTable::default(),
        };
        for (_, def) in &ids {
            let root = match PropertyGroup::parse(def) {
                Ok(group) => set.node(&group, opts),
                Err(_) => Err(CohortDefect::Unparseable),
            };
            set.cohorts.push(Cohort { root });
        }
        set.mark_defects();
        set
    }

    /// A flag condition's cohort filter.
    pub(crate) fn reference(&self, f: &PropertyFilter) -> Result<CohortRef, DefinitionError> {
        let id = f
            .cohort_id()
            .ok_or_else(|| DefinitionError::new("value", "cohort filter needs a cohort id"))?;
        let negate = match f.operator.as_deref() {
            None | Some("in") => false,
            Some("not_in") => true,
            Some(other) => {
                return Err(DefinitionError::new(
                    "operator",
                    format!("cohort filters take \"in\" or \"not_in\", not {other:?}"),
                ))
            }
        };
        let target = self.target(id);
        if let Target::Dynamic(i) = target {
            if let Err(CohortDefect::OverLimit(e)) = &self.cohorts[i].root {
                return Err(DefinitionError::new(
                    "value",
                    format!("cohort {id} is over a definition limit: {e}"),
                ));
            }
        }
        // `negation` is honoured only inside cohort definitions, never on a flag's filter.
        Ok(CohortRef { target, negate })
    }

    fn target(&self, id: i64) -> Target {
        match self.by_id.get(&id) {
            Some(&i) => Target::Dynamic(i),
            None => Target::Static(id),
        }
    }

    fn node(&mut self, group: &PropertyGroup, opts: MatchOptions) -> Result<Node, CohortDefect> {
        use CohortDefect::Unparseable;
        let f = match group {
            PropertyGroup::Wrapped(inner) => return self.node(inner, opts),
            PropertyGroup::Group { values, .. } => {
                let children = values
                    .iter()
                    .map(|v| self.node(v, opts))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if group.is_or() {
                    Node::Any(children)
                } else {
                    Node::All(children)
                });
            }
            PropertyGroup::Filter(f) => f,
        };
        let negate = f.negation.unwrap_or(false);
        let leaf = match f.kind() {
            "cohort" => Leaf::Cohort(self.target(f.cohort_id().ok_or(Unparseable)?)),
            "behavioral" => {
                let parsed = behavior::parse(f, opts).map_err(|e| match e {
                    LeafError::Limit { exceeded, .. } => CohortDefect::OverLimit(exceeded),
                    LeafError::Unsupported { .. } => Unparseable,
                })?;
                let rule = parsed.rule;
                Leaf::Behavioral(Behavior {
                    query: self.behaviors.add(parsed),
                    rule,
                })
            }
            "person" | "person_metadata" => {
                let op = parse_operator(f, "").map_err(|_| Unparseable)?;
                let test = Test::compile(op, f.value.as_ref(), opts).map_err(|e| match e {
                    OperatorError::Limit(e) => CohortDefect::OverLimit(e),
                    OperatorError::WrongFilterType(_) => Unparseable,
                })?;
                Leaf::Property {
                    key: self.keys.key(&f.key, Source::Person),
                    test,
                }
            }
            _ => return Err(Unparseable),
        };
        Ok(Node::Leaf { leaf, negate })
    }

    /// Marks every cohort that is in, or reaches, a reference cycle ([`graph::sort`]), and every
    /// cohort nested deeper than [`MAX_COHORT_DEPTH`] or reaching more than
    /// [`MAX_COHORT_CRITERIA`] criteria. Once marked, a cohort evaluates without recursing, so
    /// evaluation recurses at most [`MAX_COHORT_DEPTH`] cohorts deep, whatever the input.
    fn mark_defects(&mut self) {
        // Cohort references and criteria of each cohort (a walk bounded by MAX_GROUP_DEPTH).
        fn walk(node: &Node, refs: &mut Vec<usize>) -> usize {
            match node {
                Node::All(c) | Node::Any(c) => c.iter().map(|n| walk(n, refs)).sum(),
                Node::Leaf { leaf, .. } => {
                    if let Leaf::Cohort(Target::Dynamic(i)) = leaf {
                        refs.push(*i);
                    }
                    1
                }
            }
        }
        let (deps, criteria): (Vec<Vec<usize>>, Vec<usize>) = self
            .cohorts
            .iter()
            .map(|c| {
                let mut refs = Vec::new();
                let criteria = c.root.as_ref().map_or(0, |root| walk(root, &mut refs));
                (refs, criteria)
            })
            .unzip();
        let extents = Extents::of(&deps, &criteria, |_| true);
        // Dependencies first, so a cohort referencing an over-limit one (a regex too large,
        // say) is over the limit too.
        for &i in &extents.sorted.order {
            let defect = if extents.sorted.stuck[i] {
                Some(CohortDefect::Cycle)
            } else if let Some(e) = extents.exceeded(i) {
                Some(CohortDefect::OverLimit(e))
            } else {
                deps[i].iter().find_map(|&d| match &self.cohorts[d].root {
                    Err(defect @ CohortDefect::OverLimit(_)) => Some(defect.clone()),
                    _ => None,
                })
            };
            if let Some(defect) = defect {
                self.cohorts[i].root = Err(defect);
            }
        }
    }

    /// Whether a cohort (transitively) is part of a cycle.
    pub(crate) fn is_cyclic(&self, target: Target) -> bool {
        matches!(target, Target::Dynamic(i) if matches!(self.cohorts[i].root, Err(CohortDefect::Cycle)))
    }
}

/// How deep and how wide each cohort of a reference graph is, for the [`crate::limits`]: the
/// one computation behind both the write rules and compilation.
pub(crate) struct Extents {
    pub(crate) sorted: graph::Sorted,
    depth: Vec<usize>,
    criteria: Vec<usize>,
}

impl Extents {
    /// `deps[i]`: the cohorts cohort `i` references; `criteria[i]`: its own criteria. Only the
    /// cohorts `wanted` are measured against [`MAX_COHORT_CRITERIA`].
    pub(crate) fn of(
        deps: &[Vec<usize>],
        criteria: &[usize],
        wanted: impl Fn(usize) -> bool,
    ) -> Extents {
        let sorted = graph::sort(deps);
        let depth = graph::depths(deps, &sorted);
        // A cohort too deep is over a limit already: not measuring it keeps a long chain linear.
        let measured: Vec<bool> = (0..deps.len())
            .map(|i| wanted(i) && !sorted.stuck[i] && depth[i] <= MAX_COHORT_DEPTH)
            .collect();
        let criteria = graph::reach(deps, criteria, MAX_COHORT_CRITERIA, &measured);
        Extents {
            sorted,
            depth,
            criteria,
        }
    }

    /// The limit cohort `i` breaks, if any (never for a cohort in a cycle).
    pub(crate) fn exceeded(&self, i: usize) -> Option<Exceeded> {
        if self.sorted.stuck[i] {
            None
        } else if self.depth[i] > MAX_COHORT_DEPTH {
            Some(Exceeded::CohortDepth(self.depth[i]))
        } else if self.criteria[i] > MAX_COHORT_CRITERIA {
            Some(Exceeded::CohortCriteria)
        } else {
            None
        }
    }
}
