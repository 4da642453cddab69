/*
 * jobclean.h - takes a job's manifests out of the GitOps repository once
 * its allocation ended (cancelled, expired, completed), so Argo CD prunes
 * the Job.  What is due is derived from the store (jobs that answered 201,
 * an ended allocation, manifests_removed_at = 0), so a removal that failed
 * (remote down, push rejected) is retried by the next sweep, also after a
 * restart; the ledger transition never waits for it nor depends on it.
 */
#ifndef PLINTH_INTEGRATIONS_JOBCLEAN_H
#define PLINTH_INTEGRATIONS_JOBCLEAN_H

#include "integrations/gitops.h"
#include "store/store.h"

/*
 * Removes the manifests of the jobs due (alloc_id non-NULL: only that
 * allocation's job; NULL: a batch of all due jobs, oldest first) and records
 * each removal.  A pool connection is held only around the store reads and
 * writes, never across git.  A git failure is logged and counted; an
 * unreachable remote (ERR_UNAVAILABLE) stops the batch (the next sweep
 * retries).  Returns 0
 * when every due job was handled, else the first error; *removed = commits
 * made (may be NULL).
 */
int jobclean_run(struct store *s, struct gitops *g, const char *alloc_id, int *removed);

/* Removals that failed since the start (GET /metrics). */
long jobclean_failures_total(void);

#endif
