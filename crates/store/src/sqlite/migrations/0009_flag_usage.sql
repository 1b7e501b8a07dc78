-- How much each flag is used, by UTC day (days since 1970-01-01): server evaluations, which
-- every node counts in memory and adds here periodically, and `$feature_flag_called` calls,
-- counted as their events are stored. Each source has its own rows, so a node's addition and
-- a capture transaction never wait on the same row.
CREATE TABLE flag_usage_days (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flag_key   TEXT    NOT NULL,
    day        INTEGER NOT NULL,
    source     TEXT    NOT NULL CHECK (source IN ('evaluations', 'calls')),
    count      INTEGER NOT NULL,
    PRIMARY KEY (project_id, flag_key, day, source)
);

-- When each flag was last evaluated by a server (µs since the epoch), as of the last addition.
CREATE TABLE flag_last_evaluated (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flag_key   TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (project_id, flag_key)
);

-- The calls stored before this migration.
INSERT INTO flag_usage_days (project_id, flag_key, day, source, count)
SELECT project_id, flag_key, at / 86400000000, 'calls', COUNT(*)
FROM flag_calls
GROUP BY project_id, flag_key, at / 86400000000;
