-- Version 5 (issue 13): when a job's manifests left the GitOps repository
-- (0 = not yet).  A job that answered 201 with an ended allocation and 0
-- here is due for removal: the sweeper retries it until it is done.
ALTER TABLE jobs ADD COLUMN manifests_removed_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_manifests_live ON jobs(allocation_id)
WHERE status = 201 AND manifests_removed_at = 0;
