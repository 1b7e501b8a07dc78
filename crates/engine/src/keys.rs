//! Property keys, interned per project: every compiled property filter and cohort property leaf
//! names its key by an id in the project's [`KeyTable`], and an evaluation resolves each id once
//! ([`Values`]), however many filters read that key.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::context::{lookup_layers, Context};

/// Which property map a filter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    Person,
    /// A group type's properties: the filter's own group type index, else its condition's
    /// aggregation; `None` when neither names one (the filter then reads nothing).
    Group(Option<i64>),
}

/// A property key read from one source, with the value it falls back to when absent.
#[derive(Debug, Clone)]
pub(crate) struct PropertyKey {
    pub(crate) source: Source,
    pub(crate) name: Box<str>,
    pub(crate) fallback: Fallback,
    /// This `(source, name)`'s id in the project's [`KeyTable`]: its slot in [`Values`].
    id: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fallback {
    None,
    /// `$initial_<x>` back-filled from `<x>`.
    Initial(Box<str>),
    /// `distinct_id` is always present on persons.
    DistinctId,
    /// `$group_key` is always present on groups.
    GroupKey,
}

/// Keys whose `$initial_*` counterparts are back-filled when absent.
const INITIAL_BACKFILL: &[&str] = &[
    "$browser",
    "$browser_version",
    "$os",
    "$os_version",
    "$device_type",
    "$current_url",
    "$pathname",
    "$referrer",
    "$referring_domain",
    "$screen_height",
    "$screen_width",
    "$viewport_height",
    "$viewport_width",
    "$raw_user_agent",
    "$app_build",
    "$app_name",
    "$app_namespace",
    "$app_version",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "gclid",
    "gad_source",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "twclid",
    "li_fat_id",
    "mc_cid",
    "igshid",
    "ttclid",
    "rdt_cid",
    "epik",
    "qclid",
    "sccid",
    "irclid",
    "_kx",
];

impl Fallback {
    fn of(name: &str, source: Source) -> Fallback {
        match source {
            Source::Group(_) if name == "$group_key" => Fallback::GroupKey,
            Source::Group(_) => Fallback::None,
            Source::Person if name == "distinct_id" => Fallback::DistinctId,
            Source::Person => name
                .strip_prefix("$initial_")
                .and_then(|rest| {
                    INITIAL_BACKFILL.iter().find(|base| {
                        base.strip_prefix('$').unwrap_or(base) == rest
                            && (base.starts_with('$') || !rest.is_empty())
                    })
                })
                .map_or(Fallback::None, |base| Fallback::Initial((*base).into())),
        }
    }
}

/// The distinct `(source, name)` property keys of a project's flags and cohorts, each with a
/// dense id.
///
/// Ids are never reassigned within a table's lineage: an incremental compile starts from the
/// previous revision's table and only adds the keys a recompiled flag brings, so the flags it
/// shares with that revision keep valid ids (a key no flag reads any more keeps its id and is
/// simply never resolved). A full compile starts from the cohorts' keys. Cheap to clone: the map
/// is shared until a clone adds a key.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyTable {
    ids: Arc<HashMap<Source, HashMap<Box<str>, usize>>>,
    len: usize,
}

impl KeyTable {
    /// How many ids have been given out.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The key `name` read from `source`, with its id (a new one if the table lacks the key).
    pub(crate) fn key(&mut self, name: &str, source: Source) -> PropertyKey {
        let id = match self.ids.get(&source).and_then(|names| names.get(name)) {
            Some(&id) => id,
            None => {
                let id = self.len;
                Arc::make_mut(&mut self.ids)
                    .entry(source)
                    .or_default()
                    .insert(name.into(), id);
                self.len += 1;
                id
            }
        };
        PropertyKey {
            source,
            name: name.into(),
            fallback: Fallback::of(name, source),
            id,
        }
    }
}

/// A key's value for one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved<'v> {
    /// The value, fallbacks applied (`None`: absent).
    pub(crate) value: Option<&'v Value>,
    /// Whether the key itself is absent from the request and the stored data: with stored data
    /// unavailable ([`Context::stored_unavailable`]), a flag reading it cannot be decided.
    pub(crate) missing: bool,
}

/// A looked-up key, as [`Values`] holds it (plain data: nothing to drop per slot).
#[derive(Debug, Clone, Copy)]
enum Slot<'c> {
    /// A value of the request's maps (or none).
    Found(Resolved<'c>),
    /// A fallback built for this request (the distinct id, a group's key): `Values::built[i]`.
    Built(usize),
}

/// Slots held inline by [`Values`]: enough for the keys of most projects, so that resolving
/// them allocates nothing.
const INLINE: usize = 16;

/// One evaluation's property values by key id, each looked up on first use.
#[derive(Debug)]
pub(crate) struct Values<'c> {
    /// Ids below [`INLINE`].
    inline: [Option<Slot<'c>>; INLINE],
    /// Ids from [`INLINE`] on, allocated on the first lookup of one.
    more: Vec<Option<Slot<'c>>>,
    /// Fallback values built for this request.
    built: Vec<Value>,
    /// The project's [`KeyTable::len`].
    len: usize,
}

impl<'c> Values<'c> {
    /// No value looked up yet, for a project with `len` key ids (allocates nothing).
    pub(crate) fn new(len: usize) -> Self {
        Values {
            inline: [None; INLINE],
            more: Vec::new(),
            built: Vec::new(),
            len,
        }
    }

    /// `key`'s value for this request, looked up on the first call for its id.
    pub(crate) fn get(
        &mut self,
        key: &PropertyKey,
        ctx: &Context<'c>,
        group_types: &BTreeMap<i64, Box<str>>,
    ) -> Resolved<'_> {
        let slot = match key.id.checked_sub(INLINE) {
            None => &mut self.inline[key.id],
            Some(i) => {
                if i >= self.more.len() {
                    // Ids are below the table's length; `max` keeps one that is not from
                    // indexing out of bounds rather than trusting that.
                    let len = self.len.saturating_sub(INLINE).max(i + 1);
                    self.more.resize(len, None);
                }
                &mut self.more[i]
            }
        };
        match *slot.get_or_insert_with(|| resolve(key, ctx, group_types, &mut self.built)) {
            Slot::Found(found) => found,
            Slot::Built(i) => Resolved {
                value: self.built.get(i),
                missing: false,
            },
        }
    }
}

/// Looks `key` up: the request's values over the stored ones, then the key's fallback (a built
/// one is added to `built`).
fn resolve<'c>(
    key: &PropertyKey,
    ctx: &Context<'c>,
    group_types: &BTreeMap<i64, Box<str>>,
    built: &mut Vec<Value>,
) -> Slot<'c> {
    let mut build = |value: String| {
        built.push(Value::String(value));
        Slot::Built(built.len() - 1)
    };
    let person =
        |name: &str| lookup_layers(ctx.person_properties, ctx.stored_person_properties, name);
    match key.source {
        Source::Person => {
            let own = person(&key.name);
            let value = match (own, &key.fallback) {
                (Some(v), _) => Some(v),
                (None, Fallback::Initial(base)) => person(base),
                // `distinct_id` falls back to the request's own (as `Requirements::covered_by`
                // counts it).
                (None, Fallback::DistinctId) => return build(ctx.distinct_id.to_owned()),
                (None, _) => None,
            };
            Slot::Found(Resolved {
                value,
                missing: own.is_none(),
            })
        }
        Source::Group(index) => {
            let Some(name) = index.and_then(|i| group_types.get(&i)) else {
                return Slot::Found(Resolved {
                    value: None,
                    missing: false,
                });
            };
            fn layer<'m>(
                m: Option<&'m Map<String, Value>>,
                name: &str,
            ) -> Option<&'m Map<String, Value>> {
                m.and_then(|m| m.get(name)).and_then(Value::as_object)
            }
            let own = lookup_layers(
                layer(ctx.group_properties, name),
                layer(ctx.stored_group_properties, name),
                &key.name,
            );
            let value = match (own, &key.fallback) {
                (Some(v), _) => Some(v),
                (None, Fallback::GroupKey) => match ctx.group_key(name) {
                    Some(k) => return build(k.with_str(str::to_owned)),
                    None => None,
                },
                (None, _) => None,
            };
            Slot::Found(Resolved {
                value,
                // `$group_key` is the group's key even when this request names no such group.
                missing: own.is_none() && key.fallback != Fallback::GroupKey,
            })
        }
    }
}
