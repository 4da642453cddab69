-- Version 4 (cost visibility): monthly totals by approval month beside the
-- daily ones, so a year of spend per team reads ~12 x groups rows instead
-- of ~365 x groups.  Backfilled by migrate_after() like version 2.
CREATE TABLE cost_monthly_approved(
month INTEGER NOT NULL, team_id TEXT NOT NULL, project TEXT NOT NULL,
gpu_type TEXT NOT NULL, spent INTEGER NOT NULL, gpu_microhours INTEGER NOT NULL,
PRIMARY KEY (month, team_id, project, gpu_type)) WITHOUT ROWID;
