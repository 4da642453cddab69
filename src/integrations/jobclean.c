/*
 * jobclean.c - removes ended jobs' manifests from the GitOps repository
 * (see jobclean.h).  Idempotent end to end: gitops_remove_push is a no-op
 * for a directory that is gone or now holds another job (it removes only a
 * directory whose manifests name this allocation), and recording the removal
 * twice changes nothing.
 */
#include "integrations/jobclean.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>

#include "core/err.h"
#include "core/lifecycle.h"
#include "util/log.h"
#include "util/util.h"

#define JOBCLEAN_BATCH 16
/* A busy pool delays the removal to the next sweep rather than blocking a
 * request thread (or the sweeper) without limit. */
#define JOBCLEAN_CONN_WAIT_MS 5000

static atomic_long jobclean_failures;

long jobclean_failures_total(void)
{
	return atomic_load(&jobclean_failures);
}

/* Reads the jobs due; the connection is released before returning. */
static int due_read(struct store *s, const char *alloc_id, struct job_cleanup *out, int *n)
{
	struct store_conn *c = NULL;
	int rc = store_conn_acquire_within(s, JOBCLEAN_CONN_WAIT_MS, &c);
	if (rc != 0)
		return rc;
	rc = store_conn_ops(c)->job_cleanup_due(c, alloc_id, out, JOBCLEAN_BATCH, n);
	store_conn_release(s, c);
	return rc;
}

static int done_write(struct store *s, const char *job_id)
{
	struct store_conn *c = NULL;
	int rc = store_conn_acquire_within(s, JOBCLEAN_CONN_WAIT_MS, &c);
	if (rc != 0)
		return rc;
	rc = store_conn_ops(c)->job_cleanup_done(c, job_id, util_now());
	store_conn_release(s, c);
	return rc;
}

/* One job: commit the removal, then record it. */
static int clean_one(struct store *s, struct gitops *g, const struct job_cleanup *jc,
		     bool *committed)
{
	char dir[2 * STORE_ID_LEN + 8], msg[4 * STORE_ID_LEN + 64];
	char commit[GITOPS_OID_LEN] = "", detail[GITOPS_DETAIL_LEN] = "";
	int rc = 0;

	*committed = false;
	if (util_fmt(dir, sizeof(dir), "apps/%s/%s", jc->team, jc->name) != 0 ||
	    util_fmt(msg, sizeof(msg), "plinth: remove %s/%s: allocation %s %s\n\njob: %s\n",
		     jc->team, jc->name, jc->allocation_id, alloc_status_name(jc->status),
		     jc->id) != 0) {
		snprintf(detail, sizeof(detail), "the job's path does not fit");
		rc = ERR_INVALID;
	}
	if (rc == 0)
		rc = gitops_remove_push(g, dir, jc->allocation_id, msg, commit, detail);
	if (rc != 0) {
		atomic_fetch_add(&jobclean_failures, 1);
		log_event("error", "cannot remove a job's manifests from the GitOps repository; "
				   "the sweeper retries",
			  json_pack("{s:s, s:s, s:s, s:s}", "job", jc->id, "allocation",
				    jc->allocation_id, "error", err_name(rc), "detail", detail));
		return rc;
	}
	*committed = commit[0] != '\0';
	if (*committed)
		log_event("info", "removed a job's manifests from the GitOps repository",
			  json_pack("{s:s, s:s, s:s, s:s}", "job", jc->id, "allocation",
				    jc->allocation_id, "path", dir, "commit", commit));
	rc = done_write(s, jc->id);
	if (rc != 0) /* the next sweep finds the directory gone and records it */
		log_event("error", "cannot record a job's manifest removal",
			  json_pack("{s:s, s:s}", "job", jc->id, "error", err_name(rc)));
	return rc;
}

int jobclean_run(struct store *s, struct gitops *g, const char *alloc_id, int *removed)
{
	struct job_cleanup due[JOBCLEAN_BATCH];
	int n = 0, done = 0, first = 0;
	int rc = due_read(s, alloc_id, due, &n);

	for (int i = 0; rc == 0 && i < n; i++) {
		bool committed = false;
		int one = clean_one(s, g, &due[i], &committed);
		if (committed)
			done++;
		/* An unreachable remote fails every job alike: leave the rest to
		 * the next sweep instead of waiting out its timeout n times. */
		if (one == ERR_UNAVAILABLE)
			rc = one;
		else if (one != 0 && first == 0)
			first = one;
	}
	if (rc == 0)
		rc = first;
	if (removed != NULL)
		*removed = done;
	return rc;
}
