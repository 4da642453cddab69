-- Version 5 (issue 12): monthly totals by approval month beside the daily
-- ones (SQLite's version 4), so a year of spend per team reads ~12 x groups
-- rows instead of ~365 x groups.  Filled by the rollup backfill with the others.
CREATE TABLE cost_monthly_approved(
month BIGINT NOT NULL, team_id TEXT COLLATE "C" NOT NULL,
project TEXT COLLATE "C" NOT NULL, gpu_type TEXT COLLATE "C" NOT NULL,
spent BIGINT NOT NULL, gpu_microhours BIGINT NOT NULL,
PRIMARY KEY (month, team_id, project, gpu_type));
