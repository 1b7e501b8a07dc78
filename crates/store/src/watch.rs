//! Announcements of committed changes, for processes that hold definitions in memory.
//!
//! A backend that can push changes (PostgreSQL's `LISTEN/NOTIFY`) hands out a [`Changes`]
//! receiver ([`crate::Store::changes`]); one that cannot (SQLite) hands out none, and its
//! readers compare [`crate::Store::revisions`] instead. Announcements are a shortcut, never the
//! only way: any may be lost (a dropped connection), so readers also compare revisions now and
//! then, and at once after a [`Change::Resubscribed`].

use crate::{FeatureFlag, ProjectId, StoreError};

/// One event of a change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A change of the project's definitions or keys committed as `revision`.
    Committed {
        /// The project changed.
        project: ProjectId,
        /// Its revision after the change.
        revision: i64,
    },
    /// The feed is listening (first subscription or after a lost connection): changes committed
    /// before this may not have been announced, so compare revisions now.
    Resubscribed,
    /// The feed lost its connection; announcements are missed until the next
    /// [`Change::Resubscribed`].
    Lost,
}

/// The receiving end of a change feed. The feed stops when this is dropped or the store closed.
pub type Changes = tokio::sync::mpsc::Receiver<Change>;

/// Parses an announcement's payload, `"<project id>:<revision>"`.
pub(crate) fn parse(payload: &str) -> Option<Change> {
    let (project, revision) = payload.split_once(':')?;
    Some(Change::Committed {
        project: ProjectId(project.parse().ok()?),
        revision: revision.parse().ok()?,
    })
}

/// What one revision of a project changed, as the store logs it next to the revision bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revised {
    /// A flag (created, updated or deleted), by id.
    Flag(i64),
    /// A cohort (definition or static members), by id.
    Cohort(i64),
    /// The project itself: a key or a group type.
    Project,
}

impl Revised {
    /// Its `definition_changes.kind` and `entity_id`.
    pub(crate) fn columns(self) -> (&'static str, Option<i64>) {
        match self {
            Revised::Flag(id) => ("flag", Some(id)),
            Revised::Cohort(id) => ("cohort", Some(id)),
            Revised::Project => ("project", None),
        }
    }
}

/// Revisions of a project's change log kept: a reader further behind reloads.
pub(crate) const LOG_KEPT: i64 = 1024;

/// At most this many revisions are replayed row by row; more, and the reader reloads.
pub const MAX_REPLAYED: usize = 64;

/// What changed in a project after a revision ([`crate::Store::changes_since`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesSince {
    /// The project's revision the changes bring a reader to.
    pub revision: i64,
    /// The changes, or why they cannot be replayed.
    pub replay: Replay,
}

/// How a reader holding an older revision catches up.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// Only flags changed: each changed flag's row as of [`ChangesSince::revision`] (a deleted
    /// flag with `deleted: true`), in id order; empty when nothing changed.
    Flags(Vec<FeatureFlag>),
    /// The change set cannot be replayed row by row: reload the project.
    Reload(ReloadReason),
}

/// Why a change set must be reloaded whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadReason {
    /// The log does not reach back to the reader's revision (trimmed, or written before the
    /// log existed), or the reader claims a revision the store never had.
    Gap,
    /// More than [`MAX_REPLAYED`] revisions.
    TooMany,
    /// A cohort changed (every flag is recompiled against the cohorts anyway).
    Cohort,
    /// A key or a group type changed.
    Project,
}

/// The flags to read for the log rows `(revision, kind, entity_id)` a backend found after
/// `since` (at most [`MAX_REPLAYED`] + 1 of them, in revision order) up to the project's
/// `revision`, or why the change set must be reloaded.
pub(crate) fn plan(
    since: i64,
    revision: i64,
    log: &[(i64, String, Option<i64>)],
) -> Result<Result<Vec<i64>, ReloadReason>, StoreError> {
    if since > revision {
        return Ok(Err(ReloadReason::Gap));
    }
    if log.len() > MAX_REPLAYED {
        return Ok(Err(ReloadReason::TooMany));
    }
    // Every revision in (since, revision] must be there, once: anything else is a gap.
    let contiguous = i64::try_from(log.len()).ok() == revision.checked_sub(since)
        && log
            .iter()
            .zip(since.saturating_add(1)..)
            .all(|((r, _, _), expected)| *r == expected);
    if !contiguous {
        return Ok(Err(ReloadReason::Gap));
    }
    let mut flags = Vec::with_capacity(log.len());
    let mut reason = None;
    for (_, kind, entity) in log {
        match (kind.as_str(), entity) {
            ("flag", Some(id)) => flags.push(*id),
            ("cohort", _) => reason = reason.or(Some(ReloadReason::Cohort)),
            ("project", _) => reason = Some(ReloadReason::Project),
            (other, _) => {
                return Err(StoreError::corrupt(format!(
                    "definition_changes kind {other:?} entity {entity:?}"
                )))
            }
        }
    }
    if let Some(reason) = reason {
        return Ok(Err(reason));
    }
    flags.sort_unstable();
    flags.dedup();
    Ok(Ok(flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(revision: i64, id: i64) -> (i64, String, Option<i64>) {
        (revision, "flag".to_owned(), Some(id))
    }

    #[test]
    fn plans_replay_only_a_contiguous_flag_log() {
        assert_eq!(plan(3, 3, &[]).ok(), Some(Ok(vec![])));
        assert_eq!(
            plan(3, 6, &[flag(4, 9), flag(5, 2), flag(6, 9)]).ok(),
            Some(Ok(vec![2, 9]))
        );
        // Missing first, middle or last revision, or a reader ahead of the store.
        for (since, revision, log) in [
            (2, 6, vec![flag(4, 9), flag(5, 2), flag(6, 9)]),
            (3, 6, vec![flag(4, 9), flag(6, 9)]),
            (3, 7, vec![flag(4, 9), flag(5, 2), flag(6, 9)]),
            (8, 6, vec![]),
        ] {
            assert_eq!(
                plan(since, revision, &log).ok(),
                Some(Err(ReloadReason::Gap)),
                "{since} {revision} {log:?}"
            );
        }
        let cohort = (5, "cohort".to_owned(), Some(1));
        assert_eq!(
            plan(3, 6, &[flag(4, 9), cohort.clone(), flag(6, 9)]).ok(),
            Some(Err(ReloadReason::Cohort))
        );
        let project = (6, "project".to_owned(), None);
        assert_eq!(
            plan(3, 6, &[flag(4, 9), cohort, project]).ok(),
            Some(Err(ReloadReason::Project))
        );
        let many: Vec<_> = (1..=65).map(|r| flag(r, 1)).collect();
        assert_eq!(plan(0, 65, &many).ok(), Some(Err(ReloadReason::TooMany)));
        assert!(plan(0, 1, &[(1, "bogus".to_owned(), None)]).is_err());
    }

    #[test]
    fn payloads_parse_or_are_ignored() {
        assert_eq!(
            parse("12:345"),
            Some(Change::Committed {
                project: ProjectId(12),
                revision: 345
            })
        );
        for bad in ["", "12", "12:", ":3", "a:1", "1:b", "1:2:3"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
