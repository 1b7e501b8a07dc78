-- Personal API keys that belong to a user (not to a project): they reach the projects their
-- user belongs to (every project for an administrator). Stored as `sha256$<hex>` like the
-- project keys; `mask` is PostHog's `mask_value` (`phx_...abcd`), shown in lists and the log.
CREATE TABLE user_api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        TEXT    NOT NULL,
    mask         TEXT    NOT NULL,
    key_hash     TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX user_api_keys_by_user ON user_api_keys (user_id);

-- Who made each change, typed: the user (a UI session, or the owner of the key used) and the
-- user key, by id, label and mask. `actor` keeps the display label (older rows have only it).
-- No foreign keys: the log outlives users and keys.
ALTER TABLE flag_activity ADD COLUMN actor_user_id INTEGER;
ALTER TABLE flag_activity ADD COLUMN actor_key_id INTEGER;
ALTER TABLE flag_activity ADD COLUMN actor_key_label TEXT;
ALTER TABLE flag_activity ADD COLUMN actor_key_mask TEXT;
