//! One evaluation path for every endpoint that evaluates flags (`/flags`, `/decide`,
//! `evaluation_reasons`): [`ProjectSnapshot::evaluate`] runs the engine on the snapshot for a
//! request, with stored person/group data layered under the request's own, and [`stored_inputs`]
//! reads that data — only when the request does not already carry every property the flags
//! read, and under a deadline. When it cannot be read in time, only the flags that needed it
//! fail (the engine's `Context::stored_unavailable`); experience-continuity overrides are read
//! here and written in the background ([`crate::continuity`]). Behavioural counts are read in
//! the same lookup, under the same deadline, for every distinct id of the person.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use vexil_engine::{evaluate, CompiledFlag, ErrorCode, Evaluation, GroupCoverage, GroupKey};
use vexil_store::EvalInputs;
use vexil_wire::request::{FlagFilter, FlagsRequest};
use vexil_wire::response::FullConfig;

use crate::behavior::{read_counts, Counts};
use crate::continuity::OverrideWrite;
use crate::metrics::StoreOp;
use crate::snapshot::ProjectSnapshot;
use crate::state::AppState;

/// Stored data for one evaluation, as far as it could be read.
#[derive(Debug)]
pub enum Stored {
    /// The request carries every property the flags read: nothing was read.
    NotNeeded,
    /// Read from the store, with the behavioural counts of the project's queries.
    Loaded(EvalInputs, Counts),
    /// The read failed (`database_error`) or timed out (`timeout`): flags that need stored
    /// data fail with this code, the others evaluate on the request's own data, and the
    /// response reports `errorsWhileComputingFlags`.
    Failed(ErrorCode),
}

impl Stored {
    /// The inputs read, if any.
    pub fn inputs(&self) -> Option<&EvalInputs> {
        match self {
            Stored::Loaded(inputs, _) => Some(inputs),
            Stored::NotNeeded | Stored::Failed(_) => None,
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
        stored: &Stored,
        now: DateTime<Utc>,
    ) -> Evaluation<'_> {
        let unavailable = match stored {
            Stored::Failed(code) => Some(*code),
            Stored::NotNeeded | Stored::Loaded(..) => None,
        };
        let counts = match stored {
            Stored::Loaded(_, counts) if !counts.0.is_empty() => Some(counts),
            _ => None,
        };
        let stored = stored.inputs();
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
        if let Some(counts) = counts {
            ctx.behavior = Some(counts);
        }
        ctx.stored_unavailable = unavailable;
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
/// it needs none ([`ProjectSnapshot::covers`]). Experience-continuity overrides are only read:
/// when a continuity flag has none for this person and the request carries `$anon_distinct_id`,
/// the engine hashes on that id and the override is queued for the background writer (PostHog
/// writes before reading; the outcome is the same without a write on the request path).
pub async fn stored_inputs(
    state: &AppState,
    snapshot: &ProjectSnapshot,
    request: &FlagsRequest,
    distinct_id: &str,
    now: DateTime<Utc>,
) -> Stored {
    if snapshot.covers(request) {
        return Stored::NotNeeded;
    }
    let group_keys = snapshot.group_keys(request.groups.as_ref());
    let groups: Vec<(i64, &str)> = group_keys.iter().map(|(i, k)| (*i, k.as_str())).collect();
    let project = snapshot.project.id;
    let anon = request.effective_anon_distinct_id();
    let lookup = state.metrics.store_call(
        StoreOp::EvaluationInputs,
        state.store.evaluation_inputs(
            project,
            distinct_id,
            &groups,
            snapshot.uses_continuity(),
            anon,
        ),
    );
    let lookup = async {
        let counts = behavior_counts(state, snapshot, distinct_id, now);
        let (inputs, counts) = tokio::join!(lookup, counts);
        Ok::<_, LookupError>((inputs?, counts?))
    };
    match tokio::time::timeout(state.settings.eval_lookup_timeout, lookup).await {
        Ok(Ok((inputs, counts))) => {
            if let Some(anon) = anon.filter(|a| *a != distinct_id) {
                queue_overrides(state, snapshot, &inputs, distinct_id, anon);
            }
            Stored::Loaded(inputs, counts)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, project = %project, "person lookup failed; flags that need stored data fail");
            Stored::Failed(ErrorCode::DatabaseError)
        }
        Err(_) => {
            state.metrics.store_failed(StoreOp::EvaluationInputs);
            tracing::warn!(project = %project, "person lookup timed out; flags that need stored data fail");
            Stored::Failed(ErrorCode::Timeout)
        }
    }
}

/// Why the stored-data lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] vexil_store::StoreError),
    /// The behavioural counters failed.
    #[error(transparent)]
    Counters(#[from] crate::behavior::CounterError),
    /// The capture writer could not bring the counters up to date.
    #[error(transparent)]
    Writer(#[from] crate::ingest::IngestError),
}

/// The behavioural counts of every query of the project for the person behind `distinct_id`
/// (all their distinct ids); empty when the project has no behavioural cohort. When a track is
/// not counted yet (a cohort just created), the capture writer replays its past first.
pub async fn behavior_counts(
    state: &AppState,
    snapshot: &ProjectSnapshot,
    distinct_id: &str,
    now: DateTime<Utc>,
) -> Result<Counts, LookupError> {
    let behaviors = snapshot.compiled.behaviors();
    if behaviors.is_empty() {
        return Ok(Counts::default());
    }
    let project = snapshot.project.id;
    let person = state.store.get_person(project, distinct_id).await?;
    let ids: Vec<&str> = match &person {
        Some(p) => p.distinct_ids.iter().map(String::as_str).collect(),
        None => vec![distinct_id],
    };
    let counts = read_counts(state.counters.as_ref(), project, behaviors, &ids, now).await?;
    if state.counters.claim_sync(project) {
        // Shared counts to rebuild (Redis lost or missed events): the writer does it, this
        // request does not wait.
        let ingest = state.ingest.clone();
        tokio::spawn(async move {
            if let Err(e) = ingest.sync(project).await {
                tracing::warn!(error = %e, project = %project, "behavioural counters not rebuilt");
            }
        });
    }
    if counts.0.iter().all(Option::is_some) {
        return Ok(counts);
    }
    state.ingest.sync(project).await?;
    Ok(read_counts(state.counters.as_ref(), project, behaviors, &ids, now).await?)
}

/// Queues the continuity overrides `(person, flag) → anon` when some active continuity flag
/// has none stored yet (spec §8.2: the insert is `ON CONFLICT DO NOTHING`, so existing ones
/// stay).
fn queue_overrides(
    state: &AppState,
    snapshot: &ProjectSnapshot,
    inputs: &EvalInputs,
    distinct_id: &str,
    anon: &str,
) {
    let continuity = || {
        snapshot
            .compiled
            .flags()
            .iter()
            .filter(|f| f.active() && f.ensure_experience_continuity())
    };
    if continuity().all(|f| inputs.hash_key_overrides.contains_key(f.key())) {
        return;
    }
    state.overrides.queue(OverrideWrite {
        project: snapshot.project.id,
        distinct_id: distinct_id.to_owned(),
        anon: anon.to_owned(),
        flags: continuity().map(|f| f.key().to_owned()).collect(),
    });
}
