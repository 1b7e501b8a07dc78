//! Announcements of committed changes, for processes that hold definitions in memory.
//!
//! A backend that can push changes (PostgreSQL's `LISTEN/NOTIFY`) hands out a [`Changes`]
//! receiver ([`crate::Store::changes`]); one that cannot (SQLite) hands out none, and its
//! readers compare [`crate::Store::revisions`] instead. Announcements are a shortcut, never the
//! only way: any may be lost (a dropped connection), so readers also compare revisions now and
//! then, and at once after a [`Change::Resubscribed`].

use crate::ProjectId;

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

#[cfg(test)]
mod tests {
    use super::*;

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
