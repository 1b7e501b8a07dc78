//! The flag object of the management API (spec §4) and its `status` (spec §9).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
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

    /// The status of `flag` given when it was last reported called.
    pub fn of(flag: &FeatureFlag, last_called: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        if flag.deleted {
            return FlagStatus::Deleted;
        }
        let cutoff = now - Duration::days(STALE_AFTER_DAYS);
        let unused = match last_called {
            Some(at) => at < cutoff,
            None => flag.created_at < cutoff,
        };
        if unused && is_fully_rolled_out(&flag.filters) {
            FlagStatus::Stale
        } else {
            FlagStatus::Active
        }
    }
}

fn percentage(v: Option<&Value>) -> Option<f64> {
    match v {
        None | Some(Value::Null) => Some(100.0),
        Some(v) => v.as_f64(),
    }
}

/// Whether every user gets the same enabled value: a condition without properties at 100 %
/// and, for a multivariate flag, one variant at 100 % or a variant override on that condition.
pub fn is_fully_rolled_out(filters: &Value) -> bool {
    let groups = filters.get("groups").and_then(Value::as_array);
    let open_groups = || {
        groups.into_iter().flatten().filter(|g| {
            let no_properties = g
                .get("properties")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            no_properties && percentage(g.get("rollout_percentage")) == Some(100.0)
        })
    };
    let variants = variants(filters);
    if variants.is_empty() {
        return open_groups().next().is_some();
    }
    let one_variant_everywhere = variants
        .iter()
        .any(|v| percentage(v.get("rollout_percentage")) == Some(100.0));
    open_groups()
        .any(|g| one_variant_everywhere || g.get("variant").and_then(Value::as_str).is_some())
}

/// The multivariate variants of `filters` (empty for boolean flags).
pub fn variants(filters: &Value) -> &[Value] {
    filters
        .get("multivariate")
        .and_then(|m| m.get("variants"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
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
    let groups = flag.filters.get("groups").and_then(Value::as_array);
    let is_simple = variants(&flag.filters).is_empty()
        && groups.is_some_and(|g| {
            g.len() == 1
                && g[0]
                    .get("properties")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
        });
    let rollout = if is_simple {
        groups
            .and_then(|g| g.first())
            .and_then(|g| g.get("rollout_percentage"))
            .cloned()
            .unwrap_or(Value::Null)
    } else {
        Value::Null
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
        "evaluation_runtime": flag.evaluation_runtime.as_str(),
        "bucketing_identifier": flag.bucketing_identifier,
        "status": FlagStatus::of(flag, last_called, now).as_str(),
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
