-- Version 2 (cost visibility): daily cost rollups kept on write in the same
-- transaction as each completion (by approval day for team/project/GPU-type
-- totals, by usage day for day totals), and budget alerts, one row per
-- (team, period, threshold, webhook URL).  The rollups are backfilled from
-- the allocations by migrate_after() in the same transaction.
CREATE TABLE cost_daily_approved(
day INTEGER NOT NULL, team_id TEXT NOT NULL, project TEXT NOT NULL,
gpu_type TEXT NOT NULL, spent INTEGER NOT NULL, gpu_microhours INTEGER NOT NULL,
PRIMARY KEY (day, team_id, project, gpu_type)) WITHOUT ROWID;
CREATE TABLE cost_daily_usage(
day INTEGER NOT NULL, team_id TEXT NOT NULL, project TEXT NOT NULL,
gpu_type TEXT NOT NULL, spent INTEGER NOT NULL, gpu_microhours INTEGER NOT NULL,
PRIMARY KEY (day, team_id, project, gpu_type)) WITHOUT ROWID;
CREATE INDEX allocations_status_approved ON allocations(status, approved_at);
CREATE INDEX allocations_status_ended ON allocations(status, ended_at);
CREATE TABLE alerts(
team_id TEXT NOT NULL, period_start INTEGER NOT NULL, threshold_ppm INTEGER NOT NULL,
url TEXT NOT NULL, budget INTEGER NOT NULL, committed INTEGER NOT NULL,
crossed_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
next_attempt_at INTEGER NOT NULL, delivered_at INTEGER NOT NULL DEFAULT 0,
last_error TEXT NOT NULL DEFAULT '',
PRIMARY KEY (team_id, period_start, threshold_ppm, url));
CREATE INDEX alerts_due ON alerts(delivered_at, next_attempt_at);
