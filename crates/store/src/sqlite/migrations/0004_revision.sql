-- The project's revision: bumped in the same transaction as every change to its flags, cohorts,
-- group types or keys, so another process can tell cheaply whether what it holds is current.
ALTER TABLE projects ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
