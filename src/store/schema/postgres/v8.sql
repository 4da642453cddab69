-- Version 8 (issue 16): a team's admins (the people to ask about its
-- budget: e-mail addresses or Backstage entity refs, a JSON array of
-- strings) and retirement instead of deletion: retired_at is when a team or
-- GPU type was retired (0 = active).  A retired one takes no new allocation;
-- its history (allocations, costs, audit) stays.
ALTER TABLE teams ADD COLUMN admins_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE teams ADD COLUMN retired_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gpu_types ADD COLUMN retired_at BIGINT NOT NULL DEFAULT 0;
