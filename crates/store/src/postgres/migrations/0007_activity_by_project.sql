-- The project's activity log in id order: its keyset pages (`id < ?` / `id > ?`, newest or
-- oldest first) read only the page's rows instead of sorting every entry of the project.
CREATE INDEX flag_activity_project ON flag_activity (project_id, id);
