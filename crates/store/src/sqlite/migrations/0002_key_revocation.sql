-- Key rotation and revocation. Rotating a key replaces its hash (and clears the mark below);
-- revoking records when, and a key whose mark is set never authenticates until rotated.
ALTER TABLE projects ADD COLUMN secret_key_revoked_at INTEGER;
ALTER TABLE projects ADD COLUMN personal_key_revoked_at INTEGER;
