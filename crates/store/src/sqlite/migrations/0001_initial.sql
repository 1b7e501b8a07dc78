-- Vexil SQLite schema, version 1.
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC) so that they compare and index
-- as numbers; JSON is TEXT; booleans are INTEGER 0/1.

CREATE TABLE projects (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT    NOT NULL,
    api_token         TEXT    NOT NULL UNIQUE,
    secret_key_hash   TEXT    NOT NULL,
    personal_key_hash TEXT    NOT NULL UNIQUE,
    created_at        INTEGER NOT NULL
);

CREATE TABLE group_types (
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    group_type_index INTEGER NOT NULL CHECK (group_type_index BETWEEN 0 AND 4),
    name             TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (project_id, group_type_index),
    UNIQUE (project_id, name)
);

CREATE TABLE feature_flags (
    id                           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id                   INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    key                          TEXT    NOT NULL,
    name                         TEXT    NOT NULL DEFAULT '',
    filters                      TEXT    NOT NULL,
    active                       INTEGER NOT NULL DEFAULT 1,
    deleted                      INTEGER NOT NULL DEFAULT 0,
    ensure_experience_continuity INTEGER NOT NULL DEFAULT 0,
    version                      INTEGER NOT NULL DEFAULT 1,
    evaluation_runtime           TEXT    NOT NULL DEFAULT 'all',
    evaluation_tags              TEXT    NOT NULL DEFAULT '[]',
    tags                         TEXT    NOT NULL DEFAULT '[]',
    bucketing_identifier         TEXT,
    is_remote_configuration      INTEGER NOT NULL DEFAULT 0,
    has_encrypted_payloads       INTEGER NOT NULL DEFAULT 0,
    has_experiment               INTEGER NOT NULL DEFAULT 0,
    created_by                   TEXT,
    last_modified_by             TEXT,
    created_at                   INTEGER NOT NULL,
    updated_at                   INTEGER NOT NULL
);
-- A key is unique among a project's live flags; soft-deleted rows keep theirs.
CREATE UNIQUE INDEX feature_flags_live_key ON feature_flags (project_id, key) WHERE deleted = 0;
CREATE INDEX feature_flags_project_created ON feature_flags (project_id, created_at);

CREATE TABLE flag_activity (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flag_id    INTEGER NOT NULL REFERENCES feature_flags (id) ON DELETE CASCADE,
    flag_key   TEXT    NOT NULL,
    action     TEXT    NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    actor      TEXT,
    at         INTEGER NOT NULL,
    before     TEXT,
    after      TEXT
);
CREATE INDEX flag_activity_flag ON flag_activity (project_id, flag_id, id);

CREATE TABLE cohorts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    filters     TEXT    NOT NULL DEFAULT '{}',
    is_static   INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 1,
    created_by  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX cohorts_project ON cohorts (project_id, created_at);

-- Static cohort members are distinct ids, so a listed id matches before its person is seen.
CREATE TABLE cohort_static_members (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    cohort_id   INTEGER NOT NULL REFERENCES cohorts (id) ON DELETE CASCADE,
    distinct_id TEXT    NOT NULL,
    added_at    INTEGER NOT NULL,
    UNIQUE (cohort_id, distinct_id)
);
CREATE INDEX cohort_static_members_distinct ON cohort_static_members (project_id, distinct_id);

CREATE TABLE persons (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    uuid          TEXT    NOT NULL UNIQUE,
    properties    TEXT    NOT NULL DEFAULT '{}',
    is_identified INTEGER NOT NULL DEFAULT 0,
    version       INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE person_distinct_ids (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    distinct_id TEXT    NOT NULL,
    person_id   INTEGER NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    UNIQUE (project_id, distinct_id)
);
CREATE INDEX person_distinct_ids_person ON person_distinct_ids (person_id);

CREATE TABLE project_groups (
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    group_type_index INTEGER NOT NULL CHECK (group_type_index BETWEEN 0 AND 4),
    group_key        TEXT    NOT NULL,
    properties       TEXT    NOT NULL DEFAULT '{}',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (project_id, group_type_index, group_key)
);

-- Experience continuity (posthog_featureflaghashkeyoverride).
CREATE TABLE hash_key_overrides (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    person_id  INTEGER NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    flag_key   TEXT    NOT NULL,
    hash_key   TEXT    NOT NULL,
    PRIMARY KEY (person_id, flag_key)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    uuid        TEXT    NOT NULL,
    event       TEXT    NOT NULL,
    distinct_id TEXT    NOT NULL,
    properties  TEXT    NOT NULL DEFAULT '{}',
    timestamp   INTEGER NOT NULL,
    inserted_at INTEGER NOT NULL,
    UNIQUE (project_id, uuid)
);
CREATE INDEX events_actor ON events (project_id, distinct_id, event, timestamp);

-- One row per stored $feature_flag_called event. person_id is informational (no foreign key:
-- persons merge and get deleted, the call history stays).
CREATE TABLE flag_calls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event_uuid  TEXT    NOT NULL,
    flag_key    TEXT    NOT NULL,
    response    TEXT    NOT NULL,
    distinct_id TEXT    NOT NULL,
    person_id   INTEGER,
    at          INTEGER NOT NULL,
    UNIQUE (project_id, event_uuid)
);
CREATE INDEX flag_calls_key_at ON flag_calls (project_id, flag_key, at);
