//! The local-evaluation definitions payload (spec §2.3) and its ETag (§2.4).
//!
//! The body is built once per definition change and served with a strong ETag (quoted hex
//! SHA-256 of the exact bytes), so that polling SDKs get `304 Not Modified` until it changes.
//!
//! Flag-dependency filters are rewritten into the feed form SDKs evaluate locally: `key` is the
//! target flag's key (stored filters may name it by id) and `dependency_chain` lists the flags to
//! evaluate first, in order, ending with the target; `[]` marks a cycle or a missing flag, which
//! makes SDKs fall back to `/flags`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use vexil_engine::{Definitions, FlagDefinition};

/// Optional top-level fields of the payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedOptions {
    /// `property_matching_version`; overrides the one in the definitions when set.
    pub property_matching_version: Option<u8>,
    /// `minimal_flag_called_events`.
    pub minimal_flag_called_events: Option<bool>,
}

/// The payload could not be serialized.
#[derive(Debug, thiserror::Error)]
#[error("definitions could not be serialized: {0}")]
pub struct DefinitionsError(#[from] serde_json::Error);

#[derive(Serialize)]
struct Feed<'a> {
    flags: Vec<FeedFlag<'a>>,
    group_type_mapping: &'a BTreeMap<String, String>,
    cohorts: &'a BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    property_matching_version: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimal_flag_called_events: Option<bool>,
}

/// A flag of the feed: its definition, and its evaluation tags again under their current name
/// `evaluation_contexts` (posthog-node reads `evaluation_contexts ?? evaluation_tags`; older SDKs
/// only `evaluation_tags`).
#[derive(Serialize)]
struct FeedFlag<'a> {
    #[serde(flatten)]
    definition: Cow<'a, FlagDefinition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluation_contexts: Option<&'a [String]>,
}

/// Serializes `{"flags", "group_type_mapping", "cohorts", ...}` for `/flags/definitions` and
/// `/api/feature_flag/local_evaluation`; serve it with [`etag`] of the result.
///
/// Deleted flags are left out; inactive ones stay (with `active: false`). Which cohorts and
/// flags belong to the project (no static cohorts, no remote-configuration flags) is the
/// caller's choice.
pub fn body(defs: &Definitions, options: FeedOptions) -> Result<Vec<u8>, DefinitionsError> {
    let options = FeedOptions {
        property_matching_version: options
            .property_matching_version
            .or(defs.property_matching_version),
        ..options
    };
    feed_body(
        defs.flags.iter(),
        &defs.group_type_mapping,
        &defs.cohorts,
        options,
    )
}

/// [`body`] from the parts of a definition set, for callers that keep flags elsewhere (a
/// compiled project's [`vexil_engine::CompiledProject::definitions`]).
pub fn feed_body<'a>(
    flags: impl Iterator<Item = &'a FlagDefinition>,
    group_type_mapping: &BTreeMap<String, String>,
    cohorts: &BTreeMap<String, Value>,
    options: FeedOptions,
) -> Result<Vec<u8>, DefinitionsError> {
    let live: Vec<&FlagDefinition> = flags.filter(|f| !f.deleted).collect();
    let feed = Feed {
        flags: feed_flags(&live),
        group_type_mapping,
        cohorts,
        property_matching_version: options.property_matching_version,
        minimal_flag_called_events: options.minimal_flag_called_events,
    };
    Ok(serde_json::to_vec(&feed)?)
}

/// Strong ETag of a body: the quoted lowercase hex SHA-256 of its bytes.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(2 + 2 * digest.len());
    tag.push('"');
    for byte in digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        tag.push(char::from(HEX[usize::from(byte >> 4)]));
        tag.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    tag.push('"');
    tag
}

/// Whether an `If-None-Match` header value matches `etag` (so the answer is 304).
///
/// Accepts `*`, comma-separated lists, weak (`W/`) forms and unquoted tags, since clients treat
/// the ETag as opaque and may echo it in any of these forms.
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let bare = |t: &str| {
        let t = t.trim();
        let t = t.strip_prefix("W/").unwrap_or(t);
        t.trim_matches('"').to_owned()
    };
    let wanted = bare(etag);
    header.split(',').any(|candidate| {
        let c = candidate.trim();
        c == "*" || (!c.is_empty() && bare(c) == wanted)
    })
}

/// Non-deleted flags, with flag-dependency filters in feed form.
fn feed_flags<'a>(live: &[&'a FlagDefinition]) -> Vec<FeedFlag<'a>> {
    let graph = DependencyGraph::new(live);
    live.iter()
        .enumerate()
        .map(|(i, flag)| FeedFlag {
            definition: feed_definition(&graph, live, i),
            evaluation_contexts: flag.evaluation_tags.as_deref(),
        })
        .collect()
}

/// Flag `i` of `live` in feed form.
fn feed_definition<'a>(
    graph: &DependencyGraph<'_>,
    live: &[&'a FlagDefinition],
    i: usize,
) -> Cow<'a, FlagDefinition> {
    let flag = live[i];
    if graph.deps[i].is_empty() && !graph.has_unresolved[i] {
        return Cow::Borrowed(flag);
    }
    let mut owned = flag.clone();
    for filter in flag_filters_mut(&mut owned.filters) {
        let target = resolve(graph, filter);
        let chain = match target {
            Some(t) => graph.chain(t),
            None => Vec::new(),
        };
        if let Some(t) = target {
            filter.insert("key".to_owned(), Value::String(live[t].key.clone()));
        }
        filter.insert(
            "dependency_chain".to_owned(),
            Value::Array(
                chain
                    .into_iter()
                    .map(|k| Value::String(k.to_owned()))
                    .collect(),
            ),
        );
    }
    Cow::Owned(owned)
}

/// Flag-to-flag references among the live flags.
struct DependencyGraph<'a> {
    keys: Vec<&'a str>,
    by_key: HashMap<&'a str, usize>,
    by_id: HashMap<i64, usize>,
    /// Direct dependencies per flag (resolved targets).
    deps: Vec<Vec<usize>>,
    /// Whether a flag has a dependency filter whose target does not exist.
    has_unresolved: Vec<bool>,
}

impl<'a> DependencyGraph<'a> {
    fn new(live: &[&'a FlagDefinition]) -> Self {
        let mut graph = DependencyGraph {
            keys: live.iter().map(|f| f.key.as_str()).collect(),
            by_key: HashMap::with_capacity(live.len()),
            by_id: HashMap::with_capacity(live.len()),
            deps: vec![Vec::new(); live.len()],
            has_unresolved: vec![false; live.len()],
        };
        for (i, f) in live.iter().enumerate() {
            graph.by_key.entry(f.key.as_str()).or_insert(i);
            graph.by_id.entry(f.id).or_insert(i);
        }
        for (i, f) in live.iter().enumerate() {
            let mut deps = Vec::new();
            let mut unresolved = false;
            for filter in flag_filters(&f.filters) {
                match resolve(&graph, filter) {
                    Some(t) => deps.push(t),
                    None => unresolved = true,
                }
            }
            graph.deps[i] = deps;
            graph.has_unresolved[i] = unresolved;
        }
        graph
    }

    /// Keys to evaluate for `target`, dependencies first, ending with `target`; empty when the
    /// dependencies contain a cycle or a missing flag.
    fn chain(&self, target: usize) -> Vec<&'a str> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut marks = vec![Mark::New; self.keys.len()];
        let mut order = Vec::new();
        // Iterative post-order DFS: (node, next dependency to visit).
        let mut stack: Vec<(usize, usize)> = vec![(target, 0)];
        marks[target] = Mark::Open;
        while let Some(top) = stack.last_mut() {
            let (node, next) = *top;
            if self.has_unresolved[node] {
                return Vec::new();
            }
            match self.deps[node].get(next).copied() {
                Some(dep) => {
                    top.1 += 1;
                    match marks[dep] {
                        Mark::Open => return Vec::new(),
                        Mark::Done => {}
                        Mark::New => {
                            marks[dep] = Mark::Open;
                            stack.push((dep, 0));
                        }
                    }
                }
                None => {
                    marks[node] = Mark::Done;
                    order.push(self.keys[node]);
                    stack.pop();
                }
            }
        }
        order
    }
}

/// The flag a dependency filter names: by key when it is already in feed form (has a
/// `dependency_chain`), else by id, falling back to key (the engine's rule).
fn resolve(graph: &DependencyGraph<'_>, filter: &Map<String, Value>) -> Option<usize> {
    let key = vexil_engine::id_text(filter.get("key")?)?;
    let by_key = || graph.by_key.get(key.as_ref()).copied();
    if filter.contains_key("dependency_chain") {
        return by_key();
    }
    key.trim()
        .parse::<i64>()
        .ok()
        .and_then(|id| graph.by_id.get(&id).copied())
        .or_else(by_key)
}

/// The `type: "flag"` filters of a flag's release conditions.
fn flag_filters(filters: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    filters
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|group| group.get("properties").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
        .filter(|f| is_flag_filter(f))
}

/// [`flag_filters`], mutably.
fn flag_filters_mut(filters: &mut Value) -> impl Iterator<Item = &mut Map<String, Value>> {
    filters
        .get_mut("groups")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|group| group.get_mut("properties").and_then(Value::as_array_mut))
        .flatten()
        .filter_map(Value::as_object_mut)
        .filter(|f| is_flag_filter(f))
}

fn is_flag_filter(filter: &Map<String, Value>) -> bool {
    filter.get("type").and_then(Value::as_str) == Some("flag")
}
