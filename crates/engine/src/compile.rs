//! Compilation: [`Definitions`] → [`CompiledProject`], once per definition change.
//!
//! Everything that does not depend on the request is done here: operators resolved to tests,
//! regexes built, variant boundaries accumulated, payloads indexed, flag and cohort references
//! resolved to indices, dependency order sorted, cycles found. A flag that cannot be compiled
//! becomes a per-flag defect (it evaluates as `failed`); it never fails the project.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::cohort::{self, CohortSet};
use crate::graph;
use crate::keys::{KeyTable, PropertyKey, Source};
use crate::limits::{Exceeded, MAX_CONDITIONS, MAX_VARIANTS};
use crate::model::{Condition, Definitions, Filters, FlagDefinition, PropertyFilter};
use crate::property::{MatchOptions, Operator, OperatorError, Test};
use crate::reason::ErrorCode;
use crate::runtime::EvaluationRuntime;

/// A problem with one flag's definition, with the JSON path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DefinitionError {
    /// JSON path relative to the flag, e.g. `filters.groups[0].properties[1].operator`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl DefinitionError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        DefinitionError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A project's flags and cohorts compiled for evaluation. Cheap to share behind an `Arc`, and
/// cheap to clone: flags are shared, so a new revision built with
/// [`CompiledProject::with_flag`] recompiles only what a change touches.
#[derive(Debug, Clone)]
pub struct CompiledProject {
    pub(crate) flags: Vec<Arc<CompiledFlag>>,
    /// Flag indices in dependency order (dependencies first).
    pub(crate) order: Vec<usize>,
    pub(crate) by_key: Arc<HashMap<Box<str>, usize>>,
    pub(crate) cohorts: Arc<CohortSet>,
    pub(crate) group_types: BTreeMap<i64, Box<str>>,
    /// Whether any flag reads another (otherwise evaluation order is definition order).
    pub(crate) has_dependencies: bool,
    /// Whether any flag is limited to one evaluation runtime.
    limits_runtime: bool,
    /// The property keys the flags and cohorts read, by id.
    pub(crate) keys: KeyTable,
    requirements: Arc<Requirements>,
    /// What the project was compiled from, for incremental updates.
    pub(crate) sources: Sources,
}

/// The inputs of a compiled project, kept so that a change recompiles only what it touches.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// Every non-deleted definition, in definition order (repeated keys included).
    pub(crate) defs: Vec<Arc<FlagDefinition>>,
    /// Each compiled flag before dependency checks marked it, aligned with `flags`.
    pub(crate) compiled: Vec<Arc<CompiledFlag>>,
    /// Flag index by id (first definition wins).
    pub(crate) by_id: Arc<HashMap<i64, usize>>,
    /// Whether `defs` repeat no key and no id, so that flag `i` is `defs[i]`.
    pub(crate) distinct: bool,
    /// How many of `compiled` read other flags.
    pub(crate) readers: usize,
    pub(crate) opts: MatchOptions,
    /// The dynamic cohorts as given.
    pub(crate) cohort_defs: Arc<BTreeMap<String, Value>>,
}

/// Which stored data an evaluation of this project can read: lets a server skip the per-request
/// database lookup when the request itself carries every property the flags read (as PostHog
/// does), without changing any result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Person property keys read by active flags (enrollment keys included).
    pub person_keys: std::collections::BTreeSet<Box<str>>,
    /// Group property keys read by active flags, by group type index.
    pub group_keys: BTreeMap<i64, std::collections::BTreeSet<Box<str>>>,
    /// Whether any active flag uses a cohort (membership and cohort properties are stored data).
    pub cohorts: bool,
    /// Whether any active flag uses experience continuity (stored hash keys).
    pub continuity: bool,
}

impl Requirements {
    fn add_condition(&mut self, c: &CompiledCondition) {
        // Most keys repeat across flags: look before cloning.
        fn add(set: &mut std::collections::BTreeSet<Box<str>>, key: &str) {
            if !set.contains(key) {
                set.insert(key.into());
            }
        }
        self.cohorts |= !c.cohorts.is_empty();
        for f in &c.filters {
            if let ConditionFilter::Property { key, .. } = f {
                match key.source {
                    Source::Person => add(&mut self.person_keys, &key.name),
                    Source::Group(index) => {
                        if let Some(index) = index.or(c.aggregation) {
                            add(self.group_keys.entry(index).or_default(), &key.name);
                        }
                    }
                }
            }
        }
    }

    /// What these flags read.
    fn all(flags: &[Arc<CompiledFlag>]) -> Requirements {
        let mut r = Requirements::default();
        flags.iter().for_each(|f| r.add_flag(f));
        r
    }

    /// What one flag reads.
    fn of(flag: &CompiledFlag) -> Requirements {
        let mut r = Requirements::default();
        r.add_flag(flag);
        r
    }

    /// Whether everything `self` reads, `other` reads too.
    fn within(&self, other: &Requirements) -> bool {
        (!self.cohorts || other.cohorts)
            && (!self.continuity || other.continuity)
            && self.person_keys.is_subset(&other.person_keys)
            && self.group_keys.iter().all(|(index, keys)| {
                other
                    .group_keys
                    .get(index)
                    .is_some_and(|o| keys.is_subset(o))
            })
    }

    fn add_flag(&mut self, flag: &CompiledFlag) {
        let FlagBody::Rules(rules) = &flag.body else {
            return;
        };
        if !flag.active {
            return;
        }
        self.continuity |= rules.continuity;
        rules.conditions.iter().for_each(|c| self.add_condition(c));
        match &rules.enrollment {
            Enrollment::None => {}
            Enrollment::Feature(key) => {
                self.person_keys.insert(key.clone());
            }
            Enrollment::SuperGroup(cond, keys) => {
                self.add_condition(cond);
                self.person_keys.extend(keys.iter().cloned());
            }
        }
    }

    /// Whether a request carrying these person properties and these groups' properties can be
    /// evaluated without stored data (stored values would all be overridden or unused).
    pub fn covered_by<'a>(
        &self,
        person: Option<&'a crate::Properties>,
        group_properties: impl Fn(i64) -> GroupCoverage<'a>,
    ) -> bool {
        if self.cohorts || self.continuity {
            return false;
        }
        let has = |m: Option<&crate::Properties>, k: &str| m.is_some_and(|m| m.contains_key(k));
        self.person_keys
            .iter()
            .all(|k| &**k == "distinct_id" || has(person, k))
            && self
                .group_keys
                .iter()
                .all(|(index, keys)| match group_properties(*index) {
                    GroupCoverage::NotInRequest => true,
                    GroupCoverage::Properties(props) => {
                        keys.iter().all(|k| &**k == "$group_key" || has(props, k))
                    }
                })
    }
}

/// How a request covers one group type, for [`Requirements::covered_by`].
#[derive(Debug, Clone, Copy)]
pub enum GroupCoverage<'a> {
    /// The request names no group of this type: its conditions are skipped, nothing to read.
    NotInRequest,
    /// The request names a group of this type, with these properties (if any).
    Properties(Option<&'a crate::Properties>),
}

/// One compiled flag.
#[derive(Debug)]
pub struct CompiledFlag {
    id: i64,
    key: Box<str>,
    version: i64,
    active: bool,
    has_experiment: bool,
    ensure_experience_continuity: bool,
    runtime: EvaluationRuntime,
    evaluation_tags: Vec<Box<str>>,
    pub(crate) body: FlagBody,
    /// See [`CompiledFlag::memo`].
    memo: Memo,
}

/// A caller's value derived from one compiled flag, made on first use.
#[derive(Default)]
struct Memo(OnceLock<Box<dyn Any + Send + Sync>>);

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Memo(set)"
        } else {
            "Memo(unset)"
        })
    }
}

#[derive(Debug)]
pub(crate) enum FlagBody {
    Rules(Box<FlagRules>),
    /// Cannot be evaluated: reported as `failed` with this code.
    Defect(ErrorCode, DefinitionError),
    /// A dependency is missing, cyclic or itself broken.
    MissingDependency,
}

#[derive(Debug)]
pub(crate) struct FlagRules {
    /// `"<key>."`, the hashing prefix.
    pub(crate) hash_prefix: Box<str>,
    pub(crate) aggregation: Option<i64>,
    pub(crate) conditions: Vec<CompiledCondition>,
    /// Variant keys with their cumulative upper boundaries.
    pub(crate) variants: Vec<(Box<str>, f64)>,
    pub(crate) payloads: HashMap<Box<str>, Value>,
    pub(crate) enrollment: Enrollment,
    pub(crate) holdout: Option<Holdout>,
    pub(crate) early_exit: bool,
    pub(crate) device_bucketing: bool,
    pub(crate) continuity: bool,
    /// Direct flag dependencies (indices).
    pub(crate) deps: Vec<usize>,
}

#[derive(Debug)]
pub(crate) enum Enrollment {
    None,
    /// `$feature_enrollment/<key>`.
    Feature(Box<str>),
    /// Legacy `super_groups[0]` with its filter keys.
    SuperGroup(Box<CompiledCondition>, Vec<Box<str>>),
}

#[derive(Debug)]
pub(crate) enum Holdout {
    Modern {
        percentage: f64,
        variant: Box<str>,
    },
    Legacy {
        has_properties: bool,
        rollout: Option<f64>,
        variant: Option<Box<str>>,
    },
}

#[derive(Debug)]
pub(crate) struct CompiledCondition {
    pub(crate) aggregation: Option<i64>,
    pub(crate) filters: Vec<ConditionFilter>,
    pub(crate) cohorts: Vec<cohort::CohortRef>,
    pub(crate) rollout: f64,
    /// Index into the flag's variants of a valid override.
    pub(crate) variant_override: Option<usize>,
}

#[derive(Debug)]
pub(crate) enum ConditionFilter {
    Property {
        key: PropertyKey,
        test: Test,
    },
    Flag {
        dep: usize,
        expect: FlagExpect,
    },
    /// A malformed flag-dependency filter: never matches.
    Never,
}

#[derive(Debug)]
pub(crate) enum FlagExpect {
    Enabled,
    Disabled,
    Variant(Box<str>),
}

impl CompiledFlag {
    /// Numeric id (`metadata.id`).
    pub fn id(&self) -> i64 {
        self.id
    }
    /// Flag key.
    pub fn key(&self) -> &str {
        &self.key
    }
    /// Row version (`metadata.version`).
    pub fn version(&self) -> i64 {
        self.version
    }
    /// Whether the flag is active.
    pub fn active(&self) -> bool {
        self.active
    }
    /// Whether the flag is linked to an experiment.
    pub fn has_experiment(&self) -> bool {
        self.has_experiment
    }
    /// Whether the flag keeps users in their bucket across identify (experience continuity).
    pub fn ensure_experience_continuity(&self) -> bool {
        self.ensure_experience_continuity
    }
    /// Where the flag may be evaluated, parsed once at compile time (null and unrecognised
    /// values read as [`EvaluationRuntime::All`], as PostHog reads them).
    pub fn runtime(&self) -> EvaluationRuntime {
        self.runtime
    }
    /// The name of [`CompiledFlag::runtime`] (`"server"`, `"client"` or `"all"`).
    pub fn evaluation_runtime(&self) -> Option<&'static str> {
        Some(self.runtime.as_str())
    }
    /// Evaluation tags.
    pub fn evaluation_tags(&self) -> impl Iterator<Item = &str> {
        self.evaluation_tags.iter().map(|t| &**t)
    }
    /// The definition problem that makes this flag fail, if any.
    pub fn defect(&self) -> Option<&DefinitionError> {
        match &self.body {
            FlagBody::Defect(_, e) => Some(e),
            _ => None,
        }
    }
    /// Whether the flag's value depends on a missing or cyclic flag.
    pub fn has_missing_dependency(&self) -> bool {
        matches!(self.body, FlagBody::MissingDependency)
    }

    /// The stored payloads, by `"true"` or variant key (none for a flag that cannot be
    /// evaluated). A result's [`crate::FlagResult::payload`] is one of these values.
    pub fn payloads(&self) -> impl Iterator<Item = (&str, &Value)> {
        let payloads = match &self.body {
            FlagBody::Rules(rules) => Some(&rules.payloads),
            _ => None,
        };
        payloads
            .into_iter()
            .flatten()
            .map(|(key, value)| (&**key, value))
    }

    /// A value derived from this flag alone (e.g. its serialised response parts), made by
    /// `make` on the first call and kept for as long as the flag is: an incremental recompile
    /// shares unchanged flags, so their memos survive it, and a recompiled flag starts empty.
    /// One type per process: `None` when another type's value already occupies the memo.
    pub fn memo<T: Any + Send + Sync>(&self, make: impl FnOnce(&CompiledFlag) -> T) -> Option<&T> {
        self.memo
            .0
            .get_or_init(|| Box::new(make(self)))
            .downcast_ref()
    }
}

impl CompiledProject {
    /// Compiles a definition set. Never fails as a whole: broken flags become per-flag defects
    /// (see [`CompiledFlag::defect`]) and broken cohorts fail only the flags that use them.
    pub fn compile(defs: &Definitions) -> CompiledProject {
        let opts = MatchOptions {
            property_matching_version: defs.property_matching_version.unwrap_or(1),
        };
        let flags = defs
            .flags
            .iter()
            .filter(|f| !f.deleted)
            .map(|f| Arc::new(f.clone()))
            .collect();
        let cohort_defs = Arc::new(defs.cohorts.clone());
        let cohorts = Arc::new(CohortSet::compile(&cohort_defs, opts));
        CompiledProject::build(
            flags,
            opts,
            group_types(&defs.group_type_mapping),
            cohort_defs,
            cohorts,
        )
    }

    /// Compiles every flag of `defs` (non-deleted definitions) against compiled cohorts.
    pub(crate) fn build(
        defs: Vec<Arc<FlagDefinition>>,
        opts: MatchOptions,
        group_types: BTreeMap<i64, Box<str>>,
        cohort_defs: Arc<BTreeMap<String, Value>>,
        cohorts: Arc<CohortSet>,
    ) -> CompiledProject {
        // Keys are unique per project; if a payload repeats one, the first definition wins so
        // that every response map has one entry per key.
        let mut seen = std::collections::HashSet::new();
        let live: Vec<&Arc<FlagDefinition>> = defs
            .iter()
            .filter(|f| seen.insert(f.key.as_str()))
            .collect();
        let (by_key, by_id) = index(live.iter().map(|f| &***f));
        let distinct = live.len() == defs.len() && by_id.len() == defs.len();
        let resolver = Resolver {
            by_key: &by_key,
            by_id: &by_id,
        };
        let mut keys = cohorts.keys.clone();
        let compiled = live
            .iter()
            .map(|def| Arc::new(compile_flag(def, opts, &resolver, &cohorts, &mut keys)))
            .collect();
        let sources = Sources {
            defs,
            compiled: Vec::new(),
            by_id: Arc::new(by_id),
            distinct,
            readers: 0,
            opts,
            cohort_defs,
        };
        CompiledProject::assemble(
            compiled,
            Arc::new(by_key),
            cohorts,
            group_types,
            keys,
            sources,
            None,
        )
    }

    /// The project-wide passes over compiled flags: dependency order (marking flags whose
    /// dependencies are missing, cyclic or broken) and the stored-data requirements.
    /// `previous` is a project these flags differ from only at one index, when known: its
    /// results are reused where that one change cannot affect them. `keys` holds every key
    /// `compiled` reads.
    pub(crate) fn assemble(
        compiled: Vec<Arc<CompiledFlag>>,
        by_key: Arc<HashMap<Box<str>, usize>>,
        cohorts: Arc<CohortSet>,
        group_types: BTreeMap<i64, Box<str>>,
        keys: KeyTable,
        mut sources: Sources,
        previous: Option<(&CompiledProject, usize)>,
    ) -> CompiledProject {
        let readers = match previous {
            Some((p, i)) => {
                p.sources.readers - usize::from(p.sources.compiled[i].reads_flags())
                    + usize::from(compiled[i].reads_flags())
            }
            None => compiled.iter().filter(|f| f.reads_flags()).count(),
        };
        let (order, flags) = if readers == 0 {
            // No flag reads another: definition order, nothing to mark.
            let order = match previous {
                Some((p, _)) if p.sources.readers == 0 => p.order.clone(),
                _ => (0..compiled.len()).collect(),
            };
            (order, compiled.clone())
        } else {
            let (order, broken) = dependency_order(&compiled);
            let flags = compiled
                .iter()
                .zip(broken)
                .map(|(f, broken)| {
                    if broken && matches!(f.body, FlagBody::Rules(_)) {
                        Arc::new(f.with_body(FlagBody::MissingDependency))
                    } else {
                        Arc::clone(f)
                    }
                })
                .collect();
            (order, flags)
        };
        let requirements = match previous {
            // One flag changed and no other flag's marking did (nothing reads flags): when what
            // it read is still read and what it reads now was already read, nothing changes.
            Some((p, i)) if readers == 0 && p.sources.readers == 0 => {
                let (old, new) = (Requirements::of(&p.flags[i]), Requirements::of(&flags[i]));
                if old.within(&new) && new.within(&p.requirements) {
                    Arc::clone(&p.requirements)
                } else {
                    Arc::new(Requirements::all(&flags))
                }
            }
            _ => Arc::new(Requirements::all(&flags)),
        };
        let has_dependencies = readers > 0
            && flags
                .iter()
                .any(|f| matches!(&f.body, FlagBody::Rules(r) if !r.deps.is_empty()));
        // A scan, not a count kept across changes: it stops at the first limited flag, and
        // the passes above are linear too.
        let limits_runtime = compiled
            .iter()
            .any(|f| f.runtime() != EvaluationRuntime::All);
        sources.compiled = compiled;
        sources.readers = readers;
        CompiledProject {
            flags,
            order,
            by_key,
            cohorts,
            group_types,
            has_dependencies,
            limits_runtime,
            keys,
            requirements,
            sources,
        }
    }

    /// All flags in definition order (deleted flags excluded).
    pub fn flags(&self) -> &[Arc<CompiledFlag>] {
        &self.flags
    }

    /// The flag with this key.
    pub fn flag(&self, key: &str) -> Option<&CompiledFlag> {
        self.by_key.get(key).map(|&i| &*self.flags[i])
    }

    /// What the project's behavioural cohorts count (empty when none is behavioural).
    pub fn behaviors(&self) -> &crate::behavior::Behaviors {
        &self.cohorts.behaviors
    }

    /// Whether any flag is limited to one evaluation runtime ([`CompiledFlag::runtime`] is not
    /// [`EvaluationRuntime::All`]). When none is, which runtime a request evaluates for changes
    /// nothing, and a caller can skip detecting it.
    pub fn limits_runtime(&self) -> bool {
        self.limits_runtime
    }

    /// The stored data evaluations of this project can read.
    pub fn requirements(&self) -> &Requirements {
        &self.requirements
    }

    /// The group type mapping: `(index, name)` in index order.
    pub fn group_types(&self) -> impl Iterator<Item = (i64, &str)> {
        self.group_types.iter().map(|(i, n)| (*i, &**n))
    }

    /// Group type name for an index.
    pub fn group_type(&self, index: i64) -> Option<&str> {
        self.group_types.get(&index).map(|s| &**s)
    }
}

/// The group type mapping with parsed indices (entries whose index is not a number dropped).
pub(crate) fn group_types(mapping: &BTreeMap<String, String>) -> BTreeMap<i64, Box<str>> {
    mapping
        .iter()
        .filter_map(|(idx, name)| Some((idx.trim().parse().ok()?, name.as_str().into())))
        .collect()
}

/// Flag index by key and by id (first definition wins).
pub(crate) fn index<'a>(
    live: impl ExactSizeIterator<Item = &'a FlagDefinition>,
) -> (HashMap<Box<str>, usize>, HashMap<i64, usize>) {
    let mut by_key = HashMap::with_capacity(live.len());
    let mut by_id = HashMap::with_capacity(live.len());
    for (i, f) in live.enumerate() {
        by_key.entry(f.key.as_str().into()).or_insert(i);
        by_id.entry(f.id).or_insert(i);
    }
    (by_key, by_id)
}

/// Compiles one flag; an uncompilable one becomes a defect.
/// The property keys it reads are added to `keys`.
pub(crate) fn compile_flag(
    def: &FlagDefinition,
    opts: MatchOptions,
    resolver: &Resolver<'_>,
    cohorts: &CohortSet,
    keys: &mut KeyTable,
) -> CompiledFlag {
    let body = match compile_rules(def, opts, resolver, cohorts, keys) {
        Ok(rules) => FlagBody::Rules(Box::new(rules)),
        Err((code, e)) => FlagBody::Defect(code, e),
    };
    CompiledFlag {
        id: def.id,
        key: def.key.as_str().into(),
        version: def.version,
        active: def.active,
        has_experiment: def.has_experiment,
        ensure_experience_continuity: def.ensure_experience_continuity,
        runtime: def
            .evaluation_runtime
            .as_deref()
            .map_or(EvaluationRuntime::All, EvaluationRuntime::lenient),
        evaluation_tags: def
            .evaluation_tags
            .iter()
            .flatten()
            .map(|t| t.as_str().into())
            .collect(),
        body,
        memo: Memo::default(),
    }
}

impl CompiledFlag {
    /// The same flag with another body.
    fn with_body(&self, body: FlagBody) -> CompiledFlag {
        CompiledFlag {
            id: self.id,
            key: self.key.clone(),
            version: self.version,
            active: self.active,
            has_experiment: self.has_experiment,
            ensure_experience_continuity: self.ensure_experience_continuity,
            runtime: self.runtime,
            evaluation_tags: self.evaluation_tags.clone(),
            body,
            memo: Memo::default(),
        }
    }

    /// Whether the flag reads other flags (so that its compiled form holds flag indices).
    pub(crate) fn reads_flags(&self) -> bool {
        matches!(&self.body, FlagBody::Rules(r) if !r.deps.is_empty())
    }
}

pub(crate) struct Resolver<'a> {
    pub(crate) by_key: &'a HashMap<Box<str>, usize>,
    pub(crate) by_id: &'a HashMap<i64, usize>,
}

impl Resolver<'_> {
    /// Stored flag filters name the target by id; the definitions feed by key (with a
    /// `dependency_chain`).
    fn flag(&self, filter: &PropertyFilter) -> Option<usize> {
        let by_key = || self.by_key.get(filter.key.as_str()).copied();
        if filter.dependency_chain.is_some() {
            return by_key();
        }
        filter
            .key
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|id| self.by_id.get(&id).copied())
            .or_else(by_key)
    }
}

type Defect = (ErrorCode, DefinitionError);

fn parsing(path: impl Into<String>, message: impl Into<String>) -> Defect {
    (
        ErrorCode::FlagDataParsingError,
        DefinitionError::new(path, message),
    )
}

/// Compiles `filters` (parsed from `def`) in isolation, as the write rules' last check: no other
/// flags or cohorts are needed to tell whether the definition itself can be evaluated.
pub(crate) fn check_compiles(
    def: &FlagDefinition,
    filters: &Filters,
) -> Result<(), DefinitionError> {
    let resolver = Resolver {
        by_key: &HashMap::new(),
        by_id: &HashMap::new(),
    };
    compile_filters(
        def,
        filters,
        MatchOptions::default(),
        &resolver,
        &CohortSet::default(),
        &mut KeyTable::default(),
    )
    .map(|_| ())
    .map_err(|(_, e)| e)
}

fn compile_rules(
    def: &FlagDefinition,
    opts: MatchOptions,
    resolver: &Resolver<'_>,
    cohorts: &CohortSet,
    keys: &mut KeyTable,
) -> Result<FlagRules, Defect> {
    let filters = Filters::parse(&def.filters).map_err(|e| (ErrorCode::FlagDataParsingError, e))?;
    compile_filters(def, &filters, opts, resolver, cohorts, keys)
}

fn compile_filters(
    def: &FlagDefinition,
    filters: &Filters,
    opts: MatchOptions,
    resolver: &Resolver<'_>,
    cohorts: &CohortSet,
    keys: &mut KeyTable,
) -> Result<FlagRules, Defect> {
    if let Some(v) = filters.version {
        if v != 1 {
            return Err(parsing(
                "filters.version",
                format!("unsupported filters format version {v}"),
            ));
        }
    }

    // Over-limit definitions can only arrive from outside the write rules; they fail alone.
    let too_many = |path: &str, e: Exceeded| Err(parsing(path, e.to_string()));
    if filters.groups.len() > MAX_CONDITIONS {
        return too_many("filters.groups", Exceeded::Conditions(filters.groups.len()));
    }
    if filters.variants().len() > MAX_VARIANTS {
        let n = filters.variants().len();
        return too_many("filters.multivariate.variants", Exceeded::Variants(n));
    }

    let mut variants = Vec::new();
    let mut boundary = 0.0;
    for (i, v) in filters
        .multivariate
        .iter()
        .flat_map(|m| &m.variants)
        .enumerate()
    {
        let rollout = v.rollout_percentage.unwrap_or(0.0);
        if !rollout.is_finite() {
            return Err(parsing(
                format!("filters.multivariate.variants[{i}].rollout_percentage"),
                "must be a finite number",
            ));
        }
        boundary += rollout / 100.0;
        variants.push((v.key.as_str().into(), boundary));
    }

    let mut deps = Vec::new();
    let mut ctx = ConditionCompiler {
        opts,
        resolver,
        cohorts,
        keys,
        variants: &variants,
        flag_aggregation: filters.aggregation_group_type_index,
        deps: &mut deps,
    };
    let conditions = filters
        .groups
        .iter()
        .enumerate()
        .map(|(i, c)| ctx.compile(c, &format!("filters.groups[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;

    let enrollment = if filters.feature_enrollment == Some(true) {
        Enrollment::Feature(format!("$feature_enrollment/{}", def.key).into())
    } else {
        match filters.super_groups.as_ref().and_then(|g| g.first()) {
            Some(group) if group.properties.as_ref().is_some_and(|p| !p.is_empty()) => {
                let keys = group
                    .properties
                    .iter()
                    .flatten()
                    .map(|p| p.key.as_str().into())
                    .collect();
                let mut super_group = group.clone();
                super_group.aggregation_group_type_index = Some(None);
                let compiled = ctx.compile(&super_group, "filters.super_groups[0]")?;
                Enrollment::SuperGroup(Box::new(compiled), keys)
            }
            _ => Enrollment::None,
        }
    };

    let holdout = if let Some(h) = &filters.holdout {
        let id = match &h.id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some(Holdout::Modern {
            percentage: h.exclusion_percentage.clamp(0.0, 100.0),
            variant: format!("holdout-{id}").into(),
        })
    } else {
        filters
            .holdout_groups
            .as_ref()
            .and_then(|g| g.first())
            .map(|g| Holdout::Legacy {
                has_properties: g.properties.as_ref().is_some_and(|p| !p.is_empty()),
                rollout: g.rollout_percentage,
                variant: g.variant.as_deref().map(Into::into),
            })
    };

    let bucketing = def
        .bucketing_identifier
        .as_deref()
        .or(filters.bucketing_identifier.as_deref());

    deps.sort_unstable();
    deps.dedup();
    Ok(FlagRules {
        hash_prefix: format!("{}.", def.key).into(),
        aggregation: filters.aggregation_group_type_index,
        conditions,
        variants,
        payloads: filters
            .payloads
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.clone()))
            .collect(),
        enrollment,
        holdout,
        early_exit: filters.early_exit == Some(true),
        device_bucketing: bucketing == Some("device_id"),
        continuity: def.ensure_experience_continuity,
        deps,
    })
}

struct ConditionCompiler<'a> {
    opts: MatchOptions,
    resolver: &'a Resolver<'a>,
    cohorts: &'a CohortSet,
    keys: &'a mut KeyTable,
    variants: &'a [(Box<str>, f64)],
    flag_aggregation: Option<i64>,
    deps: &'a mut Vec<usize>,
}

impl ConditionCompiler<'_> {
    fn compile(&mut self, c: &Condition, path: &str) -> Result<CompiledCondition, Defect> {
        let aggregation = match c.aggregation_group_type_index {
            Some(explicit) => explicit,
            None => self.flag_aggregation,
        };
        let rollout = c.rollout_percentage.unwrap_or(100.0);
        if !rollout.is_finite() {
            return Err(parsing(
                format!("{path}.rollout_percentage"),
                "must be a finite number",
            ));
        }
        let mut filters = Vec::new();
        let mut cohorts = Vec::new();
        for (j, f) in c.properties.iter().flatten().enumerate() {
            let fpath = format!("{path}.properties[{j}]");
            match f.kind.as_deref().unwrap_or("person") {
                "cohort" => cohorts.push(
                    self.cohorts
                        .reference(f)
                        .map_err(|e| parsing(format!("{fpath}.{}", e.path), e.message))?,
                ),
                "flag" => filters.push(self.flag_filter(f)),
                kind @ ("person" | "group" | "person_metadata") => {
                    let source = if kind == "group" {
                        Source::Group(f.group_type_index.or(aggregation))
                    } else {
                        Source::Person
                    };
                    let op = parse_operator(f, &fpath)?;
                    let test = Test::compile(op, f.value.as_ref(), self.opts).map_err(|e| {
                        let field = match e {
                            OperatorError::WrongFilterType(_) => "operator",
                            OperatorError::Limit(_) => "value",
                        };
                        parsing(format!("{fpath}.{field}"), e.to_string())
                    })?;
                    filters.push(ConditionFilter::Property {
                        key: self.keys.key(&f.key, source),
                        test,
                    });
                }
                other => {
                    return Err(parsing(
                        format!("{fpath}.type"),
                        format!("unknown property type {other:?}"),
                    ))
                }
            }
        }
        let variant_override = c
            .variant
            .as_deref()
            .and_then(|v| self.variants.iter().position(|(k, _)| &**k == v));
        Ok(CompiledCondition {
            aggregation,
            filters,
            cohorts,
            rollout,
            variant_override,
        })
    }

    fn flag_filter(&mut self, f: &PropertyFilter) -> ConditionFilter {
        let Some(dep) = self.resolver.flag(f) else {
            // An unresolvable target makes the whole flag `missing_dependency`; record a
            // sentinel that the dependency sort recognises.
            self.deps.push(usize::MAX);
            return ConditionFilter::Never;
        };
        self.deps.push(dep);
        if f.operator.as_deref() != Some("flag_evaluates_to") {
            return ConditionFilter::Never;
        }
        let expect = match &f.value {
            Some(Value::Bool(true)) => FlagExpect::Enabled,
            Some(Value::Bool(false)) => FlagExpect::Disabled,
            Some(Value::String(s)) => FlagExpect::Variant(s.as_str().into()),
            _ => return ConditionFilter::Never,
        };
        ConditionFilter::Flag { dep, expect }
    }
}

pub(crate) fn parse_operator(f: &PropertyFilter, path: &str) -> Result<Operator, Defect> {
    match f.operator.as_deref() {
        None => Ok(Operator::Exact),
        Some(op) => op.parse().map_err(|e: crate::property::UnknownOperator| {
            parsing(format!("{path}.operator"), e.to_string())
        }),
    }
}

/// Orders flags after their dependencies ([`graph::sort`]). Returns the order and which flags
/// have a missing target, are in a cycle or depend on such a flag (to be reported as
/// `missing_dependency`).
fn dependency_order(flags: &[Arc<CompiledFlag>]) -> (Vec<usize>, Vec<bool>) {
    let deps: Vec<Vec<usize>> = flags
        .iter()
        .map(|f| match &f.body {
            FlagBody::Rules(r) => r.deps.clone(),
            _ => Vec::new(),
        })
        .collect();
    let sorted = graph::sort(&deps);
    let mut broken = sorted.stuck;
    for &i in &sorted.order {
        // `usize::MAX` marks an unresolvable target; dependencies come first in the order.
        let dep_broken = deps[i]
            .iter()
            .any(|&d| broken.get(d).copied().unwrap_or(true));
        broken[i] |= dep_broken;
    }
    (sorted.order, broken)
}
