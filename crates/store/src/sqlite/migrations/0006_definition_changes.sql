-- What each project revision changed: one row per bump of `projects.revision`, written in the
-- same transaction, so another process holding revision R can read only what changed after R
-- (the flags to apply) instead of reloading the whole project. Only the latest revisions of a
-- project are kept; a reader that finds a gap reloads.
CREATE TABLE definition_changes (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    revision   INTEGER NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('flag', 'cohort', 'project')),
    entity_id  INTEGER,
    PRIMARY KEY (project_id, revision)
) WITHOUT ROWID;
