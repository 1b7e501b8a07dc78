-- How much each flag is used, by UTC day (days since 1970-01-01): server evaluations, which
-- every node counts in memory and adds here periodically, and `$feature_flag_called` calls,
-- counted as their events are stored. Each source has its own rows, so a node's addition and
-- a capture transaction never wait on the same row.
CREATE TABLE flag_usage_days (
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flag_key   TEXT   NOT NULL,
    day        BIGINT NOT NULL,
    source     TEXT   NOT NULL CHECK (source IN ('evaluations', 'calls')),
    count      BIGINT NOT NULL,
    PRIMARY KEY (project_id, flag_key, day, source)
);

-- When each flag was last evaluated by a server, as of the last addition.
CREATE TABLE flag_last_evaluated (
    project_id BIGINT      NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flag_key   TEXT        NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (project_id, flag_key)
);

-- The calls stored before this migration.
INSERT INTO flag_usage_days (project_id, flag_key, day, source, count)
SELECT project_id, flag_key, floor(extract(epoch FROM at) / 86400)::bigint, 'calls', COUNT(*)
FROM flag_calls
GROUP BY 1, 2, 3;
