-- ---- schema ------------------------------------------------------------
CREATE TABLE tokens(
id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
teams_json TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
created_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE gpu_types(
id TEXT PRIMARY KEY, name TEXT NOT NULL, price_micros INTEGER NOT NULL,
price_date TEXT NOT NULL, price_source TEXT NOT NULL, capacity INTEGER NOT NULL,
allocated INTEGER NOT NULL DEFAULT 0 CHECK (allocated >= 0),
updated_at INTEGER NOT NULL);
CREATE TABLE teams(
id TEXT PRIMARY KEY, display_name TEXT NOT NULL, budget_micros INTEGER NOT NULL,
period TEXT NOT NULL, thresholds_json TEXT NOT NULL,
created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE team_periods(
team_id TEXT NOT NULL, period_start INTEGER NOT NULL, period_end INTEGER NOT NULL,
spent INTEGER NOT NULL DEFAULT 0 CHECK (spent >= 0),
reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
PRIMARY KEY (team_id, period_start));
CREATE TABLE allocations(
id TEXT PRIMARY KEY, team_id TEXT NOT NULL, project TEXT NOT NULL,
gpu_type TEXT NOT NULL, gpu_count INTEGER NOT NULL, max_runtime_us INTEGER NOT NULL,
price_micros INTEGER NOT NULL, estimated_micros INTEGER NOT NULL, status TEXT NOT NULL,
purpose TEXT NOT NULL, labels_json TEXT NOT NULL, created_by TEXT NOT NULL,
period_start INTEGER NOT NULL, approved_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
started_at INTEGER NOT NULL DEFAULT 0, ended_at INTEGER NOT NULL DEFAULT 0,
actual_micros INTEGER NOT NULL DEFAULT -1);
CREATE INDEX allocations_team_approved ON allocations(team_id, approved_at);
CREATE INDEX allocations_status_expires ON allocations(status, expires_at);
CREATE INDEX allocations_approved ON allocations(approved_at);
CREATE TABLE idempotency(
token_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
status INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,
PRIMARY KEY (token_id, key));
CREATE TABLE audit(
seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor_id TEXT NOT NULL,
actor_name TEXT NOT NULL, action TEXT NOT NULL, object_type TEXT NOT NULL,
object_id TEXT NOT NULL, team TEXT NOT NULL DEFAULT '',
before_json TEXT, after_json TEXT);
CREATE INDEX audit_team ON audit(team, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only');
 END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only');
 END;
