-- Version 7 (issue 16, one month, one number): monthly totals by month of
-- use beside the daily ones (cost_daily_usage), so a year of spend by use
-- (GET /v1/costs' default view) reads ~12 x groups rows instead of ~365 x
-- groups, as cost_monthly_approved does for the budget view.  A month's row
-- is the sum of that month's cost_daily_usage rows.  Filled by the rollup
-- backfill with the others.
CREATE TABLE cost_monthly_usage(
month BIGINT NOT NULL, team_id TEXT COLLATE "C" NOT NULL,
project TEXT COLLATE "C" NOT NULL, gpu_type TEXT COLLATE "C" NOT NULL,
spent BIGINT NOT NULL, gpu_microhours BIGINT NOT NULL,
PRIMARY KEY (month, team_id, project, gpu_type));
