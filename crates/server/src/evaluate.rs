//! One evaluation path for every endpoint that evaluates flags (`/flags`, `/decide`,
//! `evaluation_reasons`): [`ProjectSnapshot::evaluate`] runs the engine on the snapshot for a
//! request, with stored person/group data layered under the request's own, and [`stored_inputs`]
//! reads that data — only when the request does not already carry every property the flags
//! read, and under a deadline.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use vexil_engine::{evaluate, CompiledFlag, Evaluation, GroupCoverage, GroupKey};
use vexil_store::EvalInputs;
use vexil_wire::request::{FlagFilter, FlagsRequest};
use vexil_wire::response::FullConfig;

use crate::snapshot::ProjectSnapshot;
use crate::state::AppState;

/// Stored data for one evaluation, as far as it could be read.
#[derive(Debug)]
pub enum Stored {
    /// The request carries every property the flags read: nothing was read.
    NotNeeded,
    /// Read from the store.
    Loaded(EvalInputs),
    /// The read failed or timed out: evaluate on the request's own data and report
    /// `errorsWhileComputingFlags`.
    Failed,
}

impl Stored {
    /// The inputs read, if any.
    pub fn inputs(&self) -> Option<&EvalInputs> {
        match self {
            Stored::Loaded(inputs) => Some(inputs),
            Stored::NotNeeded | Stored::Failed => None,
        }
    }
}

impl ProjectSnapshot {
    /// Evaluates the project's flags for `request` at `now`: the request's properties over
    /// `stored` ones, only the flags `filter` keeps (every flag without one).
    pub fn evaluate(
        &self,
        request: &FlagsRequest,
        filter: Option<&FlagFilter<'_>>,
        stored: Option<&EvalInputs>,
        now: DateTime<Utc>,
    ) -> Evaluation<'_> {
        let keep = |flag: &CompiledFlag| filter.is_none_or(|f| f.keeps(flag));
        let stored_groups = stored.map(|inputs| self.stored_groups(inputs));
        let mut ctx = request.context(now);
        if filter.is_some() {
            ctx.include = Some(&keep);
        }
        if let Some(inputs) = stored {
            ctx.stored_person_properties = inputs.person_properties.as_ref();
            ctx.static_cohorts = Some(&inputs.static_cohorts);
            if !inputs.hash_key_overrides.is_empty() {
                ctx.hash_key_overrides = Some(&inputs.hash_key_overrides);
            }
        }
        ctx.stored_group_properties = stored_groups.as_ref();
        evaluate(&self.compiled, &ctx)
    }

    /// Whether `request` carries every property the active flags read, so that stored data
    /// would change nothing (PostHog skips its database then too).
    pub fn covers(&self, request: &FlagsRequest) -> bool {
        self.compiled
            .requirements()
            .covered_by(request.person_properties.as_ref(), |index| {
                let Some(name) = self.compiled.group_type(index) else {
                    return GroupCoverage::NotInRequest;
                };
                let supplied = request
                    .groups
                    .as_ref()
                    .and_then(|g| g.get(name))
                    .and_then(GroupKey::from_value)
                    .is_some();
                if !supplied {
                    return GroupCoverage::NotInRequest;
                }
                GroupCoverage::Properties(
                    request
                        .group_properties
                        .as_ref()
                        .and_then(|g| g.get(name))
                        .and_then(Value::as_object),
                )
            })
    }

    /// `(group type index, group key)` for each group of `groups` whose type the project knows,
    /// with keys as the engine reads them.
    pub fn group_keys(&self, groups: Option<&Map<String, Value>>) -> Vec<(i64, String)> {
        let Some(groups) = groups else {
            return Vec::new();
        };
        self.compiled
            .group_types()
            .filter_map(|(index, name)| {
                let key = GroupKey::from_value(groups.get(name)?)?;
                Some((index, key.to_string()))
            })
            .collect()
    }

    /// Stored group rows keyed like a request's `group_properties` (`{name: {props}}`), for
    /// the engine's `Context::stored_group_properties`.
    fn stored_groups(&self, inputs: &EvalInputs) -> Map<String, Value> {
        self.compiled
            .group_types()
            .filter_map(|(index, name)| {
                let props = inputs.group_properties.get(&index)?;
                Some((name.to_owned(), Value::Object(props.clone())))
            })
            .collect()
    }

    /// The project settings the full remote config (`config=true`) reports.
    pub fn remote_config(&self) -> FullConfig {
        FullConfig {
            has_feature_flags: self.compiled.flags().iter().any(|f| f.active()),
            ..FullConfig::default()
        }
    }
}

/// Reads the stored person/group data `request` needs, within the configured deadline, unless
/// it needs none ([`ProjectSnapshot::covers`]). For experience-continuity flags the hash-key
/// overrides are written first (PostHog's order).
pub async fn stored_inputs(
    state: &AppState,
    snapshot: &ProjectSnapshot,
    request: &FlagsRequest,
    distinct_id: &str,
) -> Stored {
    if snapshot.covers(request) {
        return Stored::NotNeeded;
    }
    let group_keys = snapshot.group_keys(request.groups.as_ref());
    let groups: Vec<(i64, &str)> = group_keys.iter().map(|(i, k)| (*i, k.as_str())).collect();
    let project = snapshot.project.id;
    let anon = request.effective_anon_distinct_id();
    let store = &state.store;
    let lookup = async {
        if snapshot.uses_continuity() {
            if let Some(anon) = anon.filter(|a| *a != distinct_id) {
                let keys: Vec<&str> = snapshot
                    .compiled
                    .flags()
                    .iter()
                    .filter(|f| f.active() && f.ensure_experience_continuity())
                    .map(|f| f.key())
                    .collect();
                store
                    .insert_hash_key_overrides(project, &[distinct_id, anon], &keys, anon)
                    .await?;
            }
        }
        store
            .evaluation_inputs(
                project,
                distinct_id,
                &groups,
                snapshot.uses_continuity(),
                anon,
            )
            .await
    };
    match tokio::time::timeout(state.settings.eval_lookup_timeout, lookup).await {
        Ok(Ok(inputs)) => Stored::Loaded(inputs),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, project = %project, "person lookup failed; evaluating on request data");
            Stored::Failed
        }
        Err(_) => {
            tracing::warn!(project = %project, "person lookup timed out; evaluating on request data");
            Stored::Failed
        }
    }
}
