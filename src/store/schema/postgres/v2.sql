-- Version 2 (cost visibility): daily cost rollups kept on write in the same
-- transaction as each completion, and budget alerts (one row per team,
-- period, threshold and webhook URL).  The rollups are backfilled from the
-- allocations by migrate_after() in the same transaction.
CREATE TABLE cost_daily_approved(
day BIGINT NOT NULL, team_id TEXT COLLATE "C" NOT NULL,
project TEXT COLLATE "C" NOT NULL, gpu_type TEXT COLLATE "C" NOT NULL,
spent BIGINT NOT NULL, gpu_microhours BIGINT NOT NULL,
PRIMARY KEY (day, team_id, project, gpu_type));
CREATE TABLE cost_daily_usage(
day BIGINT NOT NULL, team_id TEXT COLLATE "C" NOT NULL,
project TEXT COLLATE "C" NOT NULL, gpu_type TEXT COLLATE "C" NOT NULL,
spent BIGINT NOT NULL, gpu_microhours BIGINT NOT NULL,
PRIMARY KEY (day, team_id, project, gpu_type));
CREATE INDEX allocations_status_approved ON allocations(status, approved_at);
CREATE INDEX allocations_status_ended ON allocations(status, ended_at);
CREATE TABLE alerts(
team_id TEXT COLLATE "C" NOT NULL, period_start BIGINT NOT NULL,
threshold_ppm BIGINT NOT NULL, url TEXT COLLATE "C" NOT NULL, budget BIGINT NOT NULL,
committed BIGINT NOT NULL, crossed_at BIGINT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0,
next_attempt_at BIGINT NOT NULL, delivered_at BIGINT NOT NULL DEFAULT 0,
last_error TEXT NOT NULL DEFAULT '',
PRIMARY KEY (team_id, period_start, threshold_ppm, url));
CREATE INDEX alerts_due ON alerts(delivered_at, next_attempt_at);
