-- Text keys use the "C" collation so ordering matches SQLite's (bytewise).
CREATE TABLE tokens(
id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
teams_json TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
created_at BIGINT NOT NULL, revoked_at BIGINT NOT NULL DEFAULT 0);
CREATE TABLE gpu_types(
id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, price_micros BIGINT NOT NULL,
price_date TEXT NOT NULL, price_source TEXT NOT NULL, capacity BIGINT NOT NULL,
allocated BIGINT NOT NULL DEFAULT 0 CHECK (allocated >= 0),
updated_at BIGINT NOT NULL);
CREATE TABLE teams(
id TEXT COLLATE "C" PRIMARY KEY, display_name TEXT NOT NULL,
budget_micros BIGINT NOT NULL, period TEXT NOT NULL, thresholds_json TEXT NOT NULL,
created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE team_periods(
team_id TEXT COLLATE "C" NOT NULL, period_start BIGINT NOT NULL,
period_end BIGINT NOT NULL,
spent BIGINT NOT NULL DEFAULT 0 CHECK (spent >= 0),
reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
PRIMARY KEY (team_id, period_start));
CREATE TABLE allocations(
id TEXT COLLATE "C" PRIMARY KEY, team_id TEXT COLLATE "C" NOT NULL,
project TEXT COLLATE "C" NOT NULL, gpu_type TEXT COLLATE "C" NOT NULL,
gpu_count BIGINT NOT NULL, max_runtime_us BIGINT NOT NULL,
price_micros BIGINT NOT NULL, estimated_micros BIGINT NOT NULL, status TEXT NOT NULL,
purpose TEXT NOT NULL, labels_json TEXT NOT NULL, created_by TEXT NOT NULL,
period_start BIGINT NOT NULL, approved_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
started_at BIGINT NOT NULL DEFAULT 0, ended_at BIGINT NOT NULL DEFAULT 0,
actual_micros BIGINT NOT NULL DEFAULT -1);
CREATE INDEX allocations_team_approved ON allocations(team_id, approved_at);
CREATE INDEX allocations_status_expires ON allocations(status, expires_at);
CREATE INDEX allocations_approved ON allocations(approved_at);
CREATE TABLE idempotency(
token_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
status INTEGER NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,
PRIMARY KEY (token_id, key));
CREATE TABLE audit(
seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at BIGINT NOT NULL,
actor_id TEXT NOT NULL, actor_name TEXT NOT NULL, action TEXT NOT NULL,
object_type TEXT NOT NULL, object_id TEXT NOT NULL,
team TEXT COLLATE "C" NOT NULL DEFAULT '', before_json TEXT, after_json TEXT);
CREATE INDEX audit_team ON audit(team, seq);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$f$ BEGIN RAISE EXCEPTION 'audit log is append-only';
 END $f$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
