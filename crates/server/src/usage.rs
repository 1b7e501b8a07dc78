//! Flag usage: the evaluations this node answered, added to the store by UTC day every
//! [`crate::Settings::usage_flush_interval`] and once more at shutdown, so the web UI shows
//! evaluations per day and staleness counts server evaluations.
//!
//! The evaluation path pays nothing for it beyond the per-flag counters it already keeps for
//! `/metrics` ([`crate::Metrics::count_evaluations`]): this task reads their totals and adds
//! what grew since its last successful write, as an upsert-add, so the nodes of a cluster sum
//! up. What grew between two writes is dated by the second (evaluations in the last interval
//! before midnight UTC land on the next day), and its time is the flag's last evaluation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use vexil_store::{Day, EvaluationCount, ProjectId};

use crate::state::AppState;

/// What this node has already added to the store, per flag.
#[derive(Debug, Default)]
pub(crate) struct Flusher {
    /// Each flag's evaluation total at its last successful write, by project and flag id.
    flushed: HashMap<(ProjectId, i64), u64>,
}

impl Flusher {
    /// Adds every flag's evaluations since the last write, one store call per project with
    /// any. A project whose write fails keeps its counts for the next attempt.
    pub(crate) async fn flush(&mut self, state: &AppState) {
        let now = state.settings.clock.now();
        let day = Day::of(now);
        let keys: HashMap<(ProjectId, i64), String> = state
            .catalog
            .published()
            .iter()
            .flat_map(|p| {
                let project = p.snapshot.project.id;
                p.snapshot
                    .compiled
                    .flags()
                    .iter()
                    .map(move |f| ((project, f.id()), f.key().to_owned()))
            })
            .collect();
        let mut grown: HashMap<ProjectId, Vec<(i64, u64, EvaluationCount)>> = HashMap::new();
        for (id, total) in state.metrics.evaluation_totals() {
            let before = self.flushed.get(&id).copied().unwrap_or(0);
            if total <= before {
                continue;
            }
            let Some(key) = keys.get(&id) else {
                // Deleted since: nothing left to name it by.
                self.flushed.insert(id, total);
                continue;
            };
            grown.entry(id.0).or_default().push((
                id.1,
                total,
                EvaluationCount {
                    flag_key: key.clone(),
                    day,
                    count: total - before,
                },
            ));
        }
        for (project, flags) in grown {
            let counts: Vec<EvaluationCount> = flags.iter().map(|(_, _, c)| c.clone()).collect();
            match state
                .store
                .add_flag_evaluations(project, &counts, now)
                .await
            {
                Ok(()) => {
                    for (flag, total, _) in flags {
                        self.flushed.insert((project, flag), total);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, %project, "flag usage: adding evaluation counts failed; retried at the next interval");
                }
            }
        }
    }
}

/// Adds the node's evaluation counts to the store every `interval` until `stop` is notified,
/// then once more.
pub(crate) async fn run(state: AppState, interval: Duration, stop: Arc<Notify>) {
    let mut flusher = Flusher::default();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: nothing counted yet
    loop {
        tokio::select! {
            _ = tick.tick() => flusher.flush(&state).await,
            () = stop.notified() => {
                flusher.flush(&state).await;
                return;
            }
        }
    }
}
