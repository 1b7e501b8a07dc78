-- Early access features (PostHog's `early_access_feature`), each linked to one flag of its
-- project. The flag's enrollment gate lives in its filters; this row is what the public list
-- (`/api/early_access_features/`) and the management API show.
CREATE TABLE early_access_features (
    id                TEXT    PRIMARY KEY,
    project_id        INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    flag_id           INTEGER NOT NULL REFERENCES feature_flags (id) ON DELETE CASCADE,
    name              TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    stage             TEXT    NOT NULL,
    documentation_url TEXT    NOT NULL DEFAULT '',
    payload           TEXT    NOT NULL DEFAULT '{}',
    created_at        INTEGER NOT NULL,
    UNIQUE (flag_id)
);
CREATE INDEX early_access_features_by_project ON early_access_features (project_id, created_at);
