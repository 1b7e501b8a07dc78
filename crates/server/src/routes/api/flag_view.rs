//! The flag object of the management API (spec §4) and its `status` (spec §9).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use vexil_engine::model::{Condition, Filters};
use vexil_store::FeatureFlag;

use super::keys::user_json;

/// How long a fully rolled-out flag may go unevaluated before it is `STALE`.
const STALE_AFTER_DAYS: i64 = 30;

/// A flag's staleness class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagStatus {
    /// In use or still being rolled out.
    Active,
    /// Fully rolled out and not evaluated for 30 days (or never, and older than 30 days).
    Stale,
    /// Soft-deleted.
    Deleted,
}

impl FlagStatus {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagStatus::Active => "ACTIVE",
            FlagStatus::Stale => "STALE",
            FlagStatus::Deleted => "DELETED",
        }
    }

    /// The status of `flag` (with `filters`, its parsed filters) given when it was last
    /// reported called.
    pub fn of(
        flag: &FeatureFlag,
        filters: &Filters,
        last_called: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        if flag.deleted {
            return FlagStatus::Deleted;
        }
        if Self::unused(flag.created_at, last_called, now) && is_fully_rolled_out(filters) {
            FlagStatus::Stale
        } else {
            FlagStatus::Active
        }
    }

    /// Whether a flag created at `created_at` went unevaluated for the stale period: the half
    /// of [`FlagStatus::of`]'s test that needs neither the flag's row nor its filters, so a
    /// list can leave out flags that fail it before reading them.
    pub fn unused(
        created_at: DateTime<Utc>,
        last_called: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> bool {
        let cutoff = now - Duration::days(STALE_AFTER_DAYS);
        match last_called {
            Some(at) => at < cutoff,
            None => created_at < cutoff,
        }
    }
}

/// A stored flag's filters, typed (stored filters were checked when written; any that do not
/// parse read as empty: no condition, so neither simple nor rolled out).
pub fn stored_filters(flag: &FeatureFlag) -> Filters {
    Filters::parse(&flag.filters).unwrap_or_default()
}

/// A condition without properties; `None` when it has some, else its rollout (absent = 100).
fn open_rollout(c: &Condition) -> Option<f64> {
    let no_properties = c.properties.as_ref().is_none_or(Vec::is_empty);
    no_properties.then(|| c.rollout_percentage.unwrap_or(100.0))
}

/// Whether every user gets the same enabled value: a condition without properties at 100 %
/// and, for a multivariate flag, one variant at 100 % or a variant override on that condition.
pub fn is_fully_rolled_out(filters: &Filters) -> bool {
    let mut open_groups = filters
        .groups
        .iter()
        .filter(|g| open_rollout(g) == Some(100.0));
    let variants = filters.variants();
    if variants.is_empty() {
        return open_groups.next().is_some();
    }
    let one_variant_everywhere = variants
        .iter()
        .any(|v| v.rollout_percentage.unwrap_or(100.0) == 100.0);
    open_groups.any(|g| one_variant_everywhere || g.variant.is_some())
}

/// ISO-8601 UTC with microseconds, as PostHog renders timestamps.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The user object for a stored actor label.
fn actor(flag: &FeatureFlag, label: Option<&str>) -> Value {
    label.map_or(Value::Null, |l| user_json(flag.project_id, l))
}

/// The flag object of spec §4.
pub fn flag_json(
    flag: &FeatureFlag,
    last_called: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Value {
    let filters = stored_filters(flag);
    let is_simple = filters.variants().is_empty()
        && matches!(filters.groups.as_slice(), [only] if open_rollout(only).is_some());
    // Echoed as sent (`10` stays `10`, not `10.0`).
    let rollout = match flag.filters.pointer("/groups/0/rollout_percentage") {
        Some(sent) if is_simple => sent.clone(),
        _ => Value::Null,
    };
    json!({
        "id": flag.id,
        "team_id": flag.project_id.0,
        "key": flag.key,
        "name": flag.name,
        "filters": flag.filters,
        "active": flag.active,
        "deleted": flag.deleted,
        "version": flag.version,
        "ensure_experience_continuity": flag.ensure_experience_continuity,
        "created_at": timestamp(flag.created_at),
        "updated_at": timestamp(flag.updated_at),
        "created_by": actor(flag, flag.created_by.as_deref()),
        "last_modified_by": actor(flag, flag.last_modified_by.as_deref()),
        "tags": flag.tags,
        "evaluation_tags": flag.evaluation_tags,
        "evaluation_contexts": flag.evaluation_tags,
        "evaluation_runtime": flag.evaluation_runtime.as_str(),
        "bucketing_identifier": flag.bucketing_identifier,
        "status": FlagStatus::of(flag, &filters, last_called, now).as_str(),
        "is_remote_configuration": flag.is_remote_configuration,
        "has_encrypted_payloads": flag.has_encrypted_payloads,
        "last_called_at": last_called.map(timestamp),
        "is_simple_flag": is_simple,
        "rollout_percentage": rollout,
        "experiment_set": [],
        "surveys": [],
        "features": [],
        "usage_dashboard": null,
        "analytics_dashboards": [],
        "has_enriched_analytics": false,
        "can_edit": true,
        "user_access_level": "editor",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_fully_rolled_out(filters: &Value) -> bool {
        super::is_fully_rolled_out(&Filters::parse(filters).unwrap())
    }

    #[test]
    fn fully_rolled_out_rules() {
        assert!(is_fully_rolled_out(
            &json!({"groups": [{"rollout_percentage": 100}]})
        ));
        assert!(is_fully_rolled_out(
            &json!({"groups": [{"properties": []}]})
        ));
        assert!(!is_fully_rolled_out(
            &json!({"groups": [{"rollout_percentage": 50}]})
        ));
        assert!(!is_fully_rolled_out(
            &json!({"groups": [{"properties": [{"key": "a", "value": 1}], "rollout_percentage": 100}]})
        ));
        let mv = |pcts: [i64; 2], variant: Option<&str>| {
            json!({"groups": [{"rollout_percentage": 100, "variant": variant}],
                   "multivariate": {"variants": [
                       {"key": "a", "rollout_percentage": pcts[0]},
                       {"key": "b", "rollout_percentage": pcts[1]}]}})
        };
        assert!(!is_fully_rolled_out(&mv([50, 50], None)));
        assert!(is_fully_rolled_out(&mv([100, 0], None)));
        assert!(is_fully_rolled_out(&mv([50, 50], Some("a"))));
    }
}
