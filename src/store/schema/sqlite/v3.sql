-- Version 3 (self-service jobs, api_jobs.c): one row per POST /v1/jobs.
CREATE TABLE jobs(
id TEXT PRIMARY KEY, token_id TEXT NOT NULL, idem_key TEXT NOT NULL DEFAULT '',
request_hash TEXT NOT NULL, team_id TEXT NOT NULL, name TEXT NOT NULL,
allocation_id TEXT NOT NULL DEFAULT '', status INTEGER NOT NULL DEFAULT 0,
body TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,
updated_at INTEGER NOT NULL);
CREATE UNIQUE INDEX jobs_idem ON jobs(token_id, idem_key) WHERE idem_key <> '';
