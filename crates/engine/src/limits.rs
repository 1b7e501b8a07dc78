//! Limits on definitions, in one place: how big and how deep a project's flags and cohorts may
//! grow, so that no definition can exhaust a worker's stack, memory or time.
//!
//! The write rules ([`crate::rules`]) refuse a write that would break a limit, naming the field
//! and the limit. Definitions that arrive over a limit anyway (rows stored before a limit
//! existed, a definitions file, a local-evaluation payload) are never refused as a whole:
//! [`crate::CompiledProject::compile`] turns each flag that would need them into a per-flag
//! defect (`failed`), and every walk over them is iterative or bounded by these numbers.
//!
//! PostHog publishes no such limits; the defaults sit far above realistic projects (cohorts nest
//! two or three levels, flags have a handful of condition sets) and close enough to bound the
//! work of one evaluation.

/// Most levels of cohort-in-cohort references: a cohort without cohort criteria is 1 level, a
/// cohort referencing it 2, and so on. Bounds the recursion of cohort evaluation (each level
/// also nests at most [`MAX_GROUP_DEPTH`] property groups).
pub const MAX_COHORT_DEPTH: usize = 20;

/// Most criteria one cohort may reach: its own plus those of every cohort it references,
/// directly or not (each cohort counted once). Bounds the work behind one cohort filter.
pub const MAX_COHORT_CRITERIA: usize = 1_000;

/// Deepest nesting of property groups inside one cohort's definition.
pub const MAX_GROUP_DEPTH: usize = 64;

/// Most values one property filter may list.
pub const MAX_LIST_VALUES: usize = 1_000;

/// Longest `regex` / `not_regex` pattern, in characters.
pub const MAX_REGEX_LENGTH: usize = 1_000;

/// Largest compiled regex (bytes, the `regex` crate's `size_limit`): ten times below the
/// crate's default of 10 MiB, since a project holds many. Unicode classes are what grow: `\w{20}`
/// fits, `\w{50}` does not (`[A-Za-z0-9_]{50}` or `(?-u:\w){50}` do).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Backtracking budget for `regex` / `not_regex` at match time, matching PostHog's ReDoS guard
/// (exceeding it is "no match", not a refusal).
pub const REGEX_BACKTRACK_LIMIT: usize = 10_000;

/// Most non-deleted flags in one project.
pub const MAX_FLAGS: usize = 10_000;

/// Most non-deleted cohorts (dynamic and static) in one project.
pub const MAX_COHORTS: usize = 10_000;

/// Most condition sets (`filters.groups`) in one flag.
pub const MAX_CONDITIONS: usize = 1_000;

/// Most multivariate variants in one flag (A/B/n tests have a handful).
pub const MAX_VARIANTS: usize = 100;

/// Longest behavioural-cohort window ("performed X in the last N days"), in days. Counts are
/// kept in memory in buckets up to this age (and rebuilt at start from stored events, which
/// `--event-retention-days` keeps 30 days by default); a longer window could not be answered.
pub const MAX_BEHAVIORAL_WINDOW_DAYS: u32 = 30;

/// A definition over one of the limits above; its text names the limit and its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    /// Cohort references this many levels deep.
    #[error("cohort references {0} levels deep; cohorts nest at most {MAX_COHORT_DEPTH} levels (MAX_COHORT_DEPTH)")]
    CohortDepth(usize),
    /// More than [`MAX_COHORT_CRITERIA`] criteria reachable from one cohort.
    #[error("more than {MAX_COHORT_CRITERIA} criteria reachable through cohort references; the limit is {MAX_COHORT_CRITERIA} (MAX_COHORT_CRITERIA)")]
    CohortCriteria,
    /// Property groups nested deeper than [`MAX_GROUP_DEPTH`].
    #[error("property groups nest at most {MAX_GROUP_DEPTH} levels (MAX_GROUP_DEPTH)")]
    GroupDepth,
    /// A pattern of this many characters.
    #[error("the regex pattern is {0} characters long; the limit is {MAX_REGEX_LENGTH} (MAX_REGEX_LENGTH)")]
    RegexLength(usize),
    /// A pattern compiling to more than [`REGEX_SIZE_LIMIT`] bytes.
    #[error("the regex pattern compiles to more than {REGEX_SIZE_LIMIT} bytes, the limit for one regex (REGEX_SIZE_LIMIT)")]
    RegexSize,
    /// A filter listing this many values.
    #[error("the filter lists {0} values; the limit is {MAX_LIST_VALUES} (MAX_LIST_VALUES)")]
    ListValues(usize),
    /// A flag with this many condition sets.
    #[error("the flag has {0} condition sets; the limit is {MAX_CONDITIONS} (MAX_CONDITIONS)")]
    Conditions(usize),
    /// A flag with this many variants.
    #[error("the flag has {0} variants; the limit is {MAX_VARIANTS} (MAX_VARIANTS)")]
    Variants(usize),
    /// A behavioural window of this description (`"2 month"`), longer than
    /// [`MAX_BEHAVIORAL_WINDOW_DAYS`].
    #[error("the behavioral window is {0}; windows are at most {MAX_BEHAVIORAL_WINDOW_DAYS} days (MAX_BEHAVIORAL_WINDOW_DAYS)")]
    BehavioralWindow(String),
    /// A project that already has this many flags.
    #[error("the project already has {0} flags; the limit is {MAX_FLAGS} (MAX_FLAGS)")]
    Flags(usize),
    /// A project that already has this many cohorts.
    #[error("the project already has {0} cohorts; the limit is {MAX_COHORTS} (MAX_COHORTS)")]
    Cohorts(usize),
}
