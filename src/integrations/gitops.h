/*
 * gitops.h - commits a job's manifests to the GitOps repository and pushes;
 * removes them again when the job's allocation ended (jobclean.c).
 *
 * The only module that knows libgit2: its error model stops here.  A
 * repository handle serialises its operations with a mutex (one local
 * object store per daemon); across daemons a rejected non-fast-forward push
 * is an error, never a force push.
 */
#ifndef PLINTH_INTEGRATIONS_GITOPS_H
#define PLINTH_INTEGRATIONS_GITOPS_H

#include <stddef.h>

#define GITOPS_DETAIL_LEN 256
#define GITOPS_OID_LEN 41
#define GITOPS_BRANCH "main"

struct gitops;

struct gitops_file {
	const char *name; /* file name inside the directory, e.g. "job.yaml" */
	const char *data;
	size_t len;
};

/*
 * Opens (creating on first use) the local repository DIR/gitops-work.
 * remote: the URL to push to; NULL = the bare repository DIR/gitops.git,
 * created on first use.  Returns 0 and *out (free with gitops_close) or an
 * error with detail.
 */
int gitops_open(const char *dir, const char *remote, struct gitops **out, char *detail);
void gitops_close(struct gitops *g);
/* The remote's URL as manifests should name it (owned by g). */
const char *gitops_remote_url(const struct gitops *g);

/*
 * Fetches the branch, writes files under dir_path (e.g. "apps/nlp/train")
 * on top of it in one commit with message, and pushes.  If the directory
 * already holds exactly these files, nothing is committed (a retry) and the
 * current commit is returned.  If it holds other files: ERR_CONFLICT.
 * A rejected push (hook, non-fast-forward, transport) is ERR_UNAVAILABLE and
 * the local branch is reset to the remote's state: no stray commit.
 * Returns 0 and the commit id (hex) in commit_out (GITOPS_OID_LEN bytes).
 */
int gitops_commit_push(struct gitops *g, const char *dir_path, const struct gitops_file *files,
		       size_t nfiles, const char *message, char *commit_out, char *detail);

/*
 * Fetches the branch and, if dir_path holds a file containing owner_mark
 * (the allocation id a job's manifests carry), removes the whole directory
 * in one commit with message and pushes.  A directory that is gone, or that
 * now holds another job's manifests, is left alone: 0 with commit_out "".
 * Failures as gitops_commit_push (the local branch is never left ahead).
 * Returns 0 and the new commit id in commit_out (GITOPS_OID_LEN bytes).
 */
int gitops_remove_push(struct gitops *g, const char *dir_path, const char *owner_mark,
		       const char *message, char *commit_out, char *detail);

#endif
