//! The flag list's query (spec §7): `search`, `active` (`true`/`false`/`STALE`), `type`,
//! `created_by_id`, `tags`, `evaluation_runtime`, `excluded_properties` and `order`.
//!
//! `search`, `active=true|false` and every order run in the store, page included; any other
//! filter is applied here over the project's list as the store orders it. For `STALE` the
//! store reads whole only the flags that already pass the half of the test that needs no
//! filters ([`FlagStatus::unused`], over [`vexil_store::Store::flag_ages`]).

use chrono::{DateTime, Utc};
use vexil_store::{EvaluationRuntime, FeatureFlag, FlagOrder, FlagOrderField};

use super::flag_view::{stored_filters, FlagStatus};
use super::keys::user_id;
use crate::error::ApiError;
use crate::extract::Params;

/// `?active=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveFilter {
    /// `true` / `false`.
    Is(bool),
    /// `STALE`: see [`FlagStatus`].
    Stale,
}

/// `?type=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// No variants.
    Boolean,
    /// With variants.
    Multivariant,
    /// Linked to an experiment (never, in Vexil).
    Experiment,
}

/// The parsed list query.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Case-insensitive substring of key or name.
    pub search: Option<String>,
    /// Active / inactive / stale.
    pub active: Option<ActiveFilter>,
    /// Boolean / multivariate / experiment.
    pub kind: Option<FlagKind>,
    /// Creator's user id.
    pub created_by_id: Option<i64>,
    /// Flags carrying any of these tags.
    pub tags: Option<Vec<String>>,
    /// Flags with this runtime.
    pub evaluation_runtime: Option<EvaluationRuntime>,
    /// Flag keys to leave out.
    pub excluded: Option<Vec<String>>,
    /// `?order=` (default newest first), applied by the store.
    pub order: FlagOrder,
}

fn json_list(params: &Params, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    let Some(raw) = params.non_empty(name) else {
        return Ok(None);
    };
    serde_json::from_str::<Vec<String>>(raw)
        .map(Some)
        .map_err(|_| {
            ApiError::invalid(format!("{name} must be a JSON list of strings.")).attr(name)
        })
}

impl ListQuery {
    /// Reads the query. Unknown values of `active`, `type` and `order` are ignored (as DRF
    /// filters do); malformed JSON lists are a 400.
    pub fn parse(params: &Params) -> Result<ListQuery, ApiError> {
        let active = match params.non_empty("active") {
            Some(v) if v.eq_ignore_ascii_case("true") => Some(ActiveFilter::Is(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Some(ActiveFilter::Is(false)),
            Some(v) if v.eq_ignore_ascii_case("stale") => Some(ActiveFilter::Stale),
            _ => None,
        };
        let kind = match params.non_empty("type") {
            Some("boolean") => Some(FlagKind::Boolean),
            Some("multivariant") => Some(FlagKind::Multivariant),
            Some("experiment") => Some(FlagKind::Experiment),
            _ => None,
        };
        let order = params
            .non_empty("order")
            .and_then(|o| {
                let (desc, name) = match o.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, o),
                };
                let field = match name {
                    "key" => FlagOrderField::Key,
                    "name" => FlagOrderField::Name,
                    "created_at" => FlagOrderField::CreatedAt,
                    "updated_at" => FlagOrderField::UpdatedAt,
                    "active" => FlagOrderField::Active,
                    "id" => FlagOrderField::Id,
                    _ => return None,
                };
                Some(FlagOrder::new(field, desc))
            })
            .unwrap_or_default();
        let created_by_id = match params.non_empty("created_by_id") {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| {
                ApiError::invalid("created_by_id must be an integer.").attr("created_by_id")
            })?),
        };
        Ok(ListQuery {
            search: params.non_empty("search").map(str::to_owned),
            active,
            kind,
            created_by_id,
            tags: json_list(params, "tags")?,
            evaluation_runtime: params
                .non_empty("evaluation_runtime")
                .and_then(EvaluationRuntime::parse),
            excluded: json_list(params, "excluded_properties")?,
            order,
        })
    }

    /// The `active` filter the store can apply.
    pub fn store_active(&self) -> Option<bool> {
        match self.active {
            Some(ActiveFilter::Is(b)) => Some(b),
            _ => None,
        }
    }

    /// Whether the store's filter and page are the whole answer.
    pub fn store_only(&self) -> bool {
        matches!(self.active, None | Some(ActiveFilter::Is(_)))
            && self.kind.is_none()
            && self.created_by_id.is_none()
            && self.tags.is_none()
            && self.evaluation_runtime.is_none()
            && self.excluded.is_none()
    }

    /// Whether the list keeps only stale flags.
    pub fn stale(&self) -> bool {
        self.active == Some(ActiveFilter::Stale)
    }

    /// Whether `flag` passes the filters the store did not apply. Its filters are parsed
    /// only when a filter needs them (the type, or the stale test past its cheap half).
    pub fn keeps(
        &self,
        flag: &FeatureFlag,
        last_called: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> bool {
        let creator_ok = self
            .created_by_id
            .is_none_or(|id| flag.created_by.is_some() && user_id(flag.project_id) == id);
        let tags_ok = self
            .tags
            .as_ref()
            .is_none_or(|tags| tags.iter().any(|t| flag.tags.contains(t)));
        let runtime_ok = self
            .evaluation_runtime
            .is_none_or(|r| flag.evaluation_runtime == r);
        let not_excluded = self
            .excluded
            .as_ref()
            .is_none_or(|keys| !keys.contains(&flag.key));
        if !(creator_ok && tags_ok && runtime_ok && not_excluded) {
            return false;
        }
        if self.active == Some(ActiveFilter::Stale)
            && (flag.deleted || !FlagStatus::unused(flag.created_at, last_called, now))
        {
            return false;
        }
        let parsed = std::cell::OnceCell::new();
        let filters = || parsed.get_or_init(|| stored_filters(flag));
        if self.active == Some(ActiveFilter::Stale)
            && FlagStatus::of(flag, filters(), last_called, now) != FlagStatus::Stale
        {
            return false;
        }
        match self.kind {
            None => true,
            Some(FlagKind::Boolean) => filters().variants().is_empty(),
            Some(FlagKind::Multivariant) => !filters().variants().is_empty(),
            Some(FlagKind::Experiment) => flag.has_experiment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn flag(id: i64, key: &str, filters: Value) -> FeatureFlag {
        let mut new = vexil_store::NewFlag::new(key, filters);
        new.created_by = Some(vexil_store::Actor::Named { label: "k".into() });
        let mut f = super::super::flag_input::candidate(&new, vexil_store::ProjectId(1));
        f.id = id;
        f
    }

    #[test]
    fn filters_and_order() {
        let params = |q: &str| {
            Params(
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            )
        };
        let boolean = serde_json::json!({"groups": [{"rollout_percentage": 10}]});
        let mv = serde_json::json!({"groups": [{}], "multivariate": {"variants": [{"key": "a", "rollout_percentage": 100}]}});
        let flags = [
            flag(1, "b", boolean.clone()),
            flag(2, "a", mv),
            flag(3, "c", boolean),
        ];
        let q = ListQuery::parse(&params("type=multivariant")).unwrap();
        let now = Utc::now();
        assert!(!q.store_only());
        let kept: Vec<_> = flags.iter().filter(|f| q.keeps(f, None, now)).collect();
        assert_eq!(kept.len(), 1);
        let q = ListQuery::parse(&params("order=-key&excluded_properties=[\"c\"]")).unwrap();
        assert_eq!(q.order, FlagOrder::new(FlagOrderField::Key, true));
        assert!(!q.keeps(&flags[2], None, now));
        assert!(q.keeps(&flags[0], None, now));
        let q = ListQuery::parse(&params("order=nope")).unwrap();
        assert_eq!(q.order, FlagOrder::default(), "unknown orders are ignored");
        assert!(q.store_only());
        assert!(ListQuery::parse(&params("tags=nope")).is_err());
        assert!(ListQuery::parse(&params("search=x&active=true"))
            .unwrap()
            .store_only());
    }

    #[test]
    fn stale_keeps_old_unused_fully_rolled_out_flags() {
        let params = |q: &str| {
            Params(
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            )
        };
        let now = Utc::now();
        let old = now - chrono::Duration::days(40);
        let everyone = serde_json::json!({"groups": [{"rollout_percentage": 100}]});
        let half = serde_json::json!({"groups": [{"rollout_percentage": 50}]});
        let mut stale = flag(1, "stale", everyone.clone());
        stale.created_at = old;
        let fresh = flag(2, "fresh", everyone.clone());
        let mut partial = flag(3, "partial", half);
        partial.created_at = old;
        let q = ListQuery::parse(&params("active=STALE")).unwrap();
        assert!(q.keeps(&stale, None, now));
        assert!(!q.keeps(&stale, Some(now), now), "evaluated today");
        assert!(q.keeps(&stale, Some(old), now));
        assert!(!q.keeps(&fresh, None, now));
        assert!(!q.keeps(&partial, None, now));
        let mut deleted = stale.clone();
        deleted.deleted = true;
        assert!(!q.keeps(&deleted, None, now));
    }
}
