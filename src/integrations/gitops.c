/*
 * gitops.c - the GitOps repository over libgit2 (the only file that
 * includes <git2.h>).
 *
 * The daemon keeps a bare local repository DIR/gitops-work as its object
 * store and talks to the remote as an anonymous remote (no config).  A commit is built in an in-memory index
 * on top of the fetched remote branch (no working tree, so no file system
 * paths are ever derived from user input), the local branch is moved to it
 * and pushed.  It must never force-push, never leave the local branch ahead
 * of the remote after a failed push, and never let a libgit2 error escape
 * as anything but enum err plus a one-line detail.
 */
#include "integrations/gitops.h"

#include <errno.h>
#include <git2.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "util/util.h"

#define GITOPS_LOCAL "refs/heads/" GITOPS_BRANCH
#define GITOPS_TRACKING "refs/remotes/origin/" GITOPS_BRANCH
#define GITOPS_PATH_MAX 4096

struct gitops {
	git_repository *repo;
	char url[GITOPS_PATH_MAX];
	pthread_mutex_t mu;
};

static pthread_once_t gitops_once = PTHREAD_ONCE_INIT;
static int gitops_init_rc;

static void gitops_init(void)
{
	gitops_init_rc = git_libgit2_init() < 0 ? -1 : 0;
}

/* Writes "what: libgit2's last message" into detail; returns rc. */
static int git_fail(int rc, const char *what, char *detail)
{
	const git_error *e = git_error_last();
	if (detail)
		snprintf(detail, GITOPS_DETAIL_LEN, "%s: %s", what,
			 e && e->message ? e->message : "unknown libgit2 error");
	return rc;
}

static int repo_init_bare(const char *path, git_repository **out, char *detail)
{
	git_repository_init_options o;
	if (git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION) < 0)
		return git_fail(ERR_STORE, "cannot initialise options", detail);
	o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
	o.initial_head = GITOPS_BRANCH;
	if (git_repository_init_ext(out, path, &o) < 0)
		return git_fail(ERR_STORE, "cannot create the git repository", detail);
	return 0;
}

static int repo_open_or_init(const char *path, git_repository **out, char *detail)
{
	struct stat sb;
	if (stat(path, &sb) == 0) {
		if (git_repository_open_bare(out, path) < 0)
			return git_fail(ERR_STORE, "cannot open the git repository", detail);
		return 0;
	}
	return repo_init_bare(path, out, detail);
}

int gitops_open(const char *dir, const char *remote, struct gitops **out, char *detail)
{
	struct gitops *g = NULL;
	git_repository *bare = NULL;
	char path[GITOPS_PATH_MAX];
	int rc = 0;

	pthread_once(&gitops_once, gitops_init);
	if (gitops_init_rc != 0)
		return git_fail(ERR_STORE, "cannot initialise libgit2", detail);
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		snprintf(detail, GITOPS_DETAIL_LEN, "out of memory");
		return ERR_NOMEM;
	}
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g);
		snprintf(detail, GITOPS_DETAIL_LEN, "pthread_mutex_init failed");
		return ERR_STORE;
	}
	if (remote == NULL || remote[0] == '\0') {
		char *abs = realpath(dir, NULL);
		if (abs == NULL) {
			snprintf(detail, GITOPS_DETAIL_LEN, "cannot resolve %s: %s", dir,
				 strerror(errno));
			rc = ERR_STORE;
			goto out;
		}
		snprintf(g->url, sizeof(g->url), "%s/gitops.git", abs);
		free(abs);
		rc = repo_open_or_init(g->url, &bare, detail);
		if (rc != 0)
			goto out;
	} else {
		if (strlen(remote) >= sizeof(g->url)) {
			snprintf(detail, GITOPS_DETAIL_LEN, "the GitOps remote URL is too long");
			rc = ERR_INVALID;
			goto out;
		}
		snprintf(g->url, sizeof(g->url), "%s", remote);
	}
	snprintf(path, sizeof(path), "%s/gitops-work", dir);
	rc = repo_open_or_init(path, &g->repo, detail);
	if (rc != 0)
		goto out;
out:
	git_repository_free(bare);
	if (rc != 0) {
		gitops_close(g);
		return rc;
	}
	*out = g;
	return 0;
}

void gitops_close(struct gitops *g)
{
	if (g == NULL)
		return;
	git_repository_free(g->repo);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

const char *gitops_remote_url(const struct gitops *g)
{
	return g->url;
}

struct push_status {
	char msg[GITOPS_DETAIL_LEN];
	bool rejected;
};

static int on_push_update(const char *refname, const char *status, void *data)
{
	struct push_status *ps = data;
	if (status != NULL) {
		ps->rejected = true;
		snprintf(ps->msg, sizeof(ps->msg), "%s: %s", refname, status);
	}
	return 0;
}

/* Puts the local branch back where the remote is (or removes it). */
static void branch_reset(git_repository *repo, const git_oid *base)
{
	git_reference *ref = NULL;
	if (base != NULL) {
		if (git_reference_create(&ref, repo, GITOPS_LOCAL, base, 1, "plinth: push failed") == 0)
			git_reference_free(ref);
	} else {
		(void)git_reference_remove(repo, GITOPS_LOCAL);
	}
}

/*
 * 1 = dir_path already holds exactly files, 0 = it holds nothing,
 * ERR_CONFLICT = it holds something else.
 */
static int dir_state(git_index *idx, const char *dir_path, const git_oid *blobs,
		     const struct gitops_file *files, size_t nfiles)
{
	size_t plen = strlen(dir_path), found = 0, same = 0;
	size_t n = git_index_entrycount(idx);
	for (size_t i = 0; i < n; i++) {
		const git_index_entry *e = git_index_get_byindex(idx, i);
		if (e == NULL || strncmp(e->path, dir_path, plen) != 0 || e->path[plen] != '/')
			continue;
		found++;
		for (size_t k = 0; k < nfiles; k++)
			if (strcmp(e->path + plen + 1, files[k].name) == 0 &&
			    git_oid_equal(&e->id, &blobs[k]))
				same++;
	}
	if (found == 0)
		return 0;
	return found == nfiles && same == nfiles ? 1 : ERR_CONFLICT;
}

/* One operation's libgit2 objects; released by op_done. */
struct gitops_op {
	git_remote *origin;
	git_commit *parent;
	git_tree *tree;
	git_index *idx;
	git_oid base;
	bool have_base;
};

static void op_done(struct gitops_op *op)
{
	git_tree_free(op->tree);
	git_commit_free(op->parent);
	git_index_free(op->idx);
	git_remote_free(op->origin);
}

/*
 * Fetches the remote branch and reads its tree into an in-memory index
 * (empty when the remote has no branch yet).  Called with g->mu held.
 */
static int op_fetch(struct gitops *g, struct gitops_op *op, char *detail)
{
	/* An anonymous remote: no config reads (libgit2 1.5 leaks pcre2 match
	 * data on every config regex, e.g. in git_remote_lookup and insteadOf). */
	git_remote_create_options ro;
	if (git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION) < 0)
		return git_fail(ERR_STORE, "cannot initialise options", detail);
	ro.repository = g->repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	if (git_remote_create_with_opts(&op->origin, g->url, &ro) < 0)
		return git_fail(ERR_INVALID, "bad GitOps remote", detail);
	char fetch_spec[] = "+" GITOPS_LOCAL ":" GITOPS_TRACKING;
	char *fetch_specs[] = {fetch_spec};
	git_strarray fetch_refs = {fetch_specs, 1};
	git_fetch_options fo;
	if (git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION) < 0 ||
	    git_remote_fetch(op->origin, &fetch_refs, &fo, "plinth: fetch") < 0)
		return git_fail(ERR_UNAVAILABLE, "cannot fetch from the GitOps remote", detail);
	/* The remote's branch as the fetch saw it (empty repository: none). */
	const git_remote_head **heads = NULL;
	size_t nheads = 0;
	if (git_remote_ls(&heads, &nheads, op->origin) < 0)
		return git_fail(ERR_UNAVAILABLE, "cannot list the GitOps remote", detail);
	for (size_t i = 0; i < nheads; i++) {
		if (strcmp(heads[i]->name, GITOPS_LOCAL) == 0) {
			git_oid_cpy(&op->base, &heads[i]->oid);
			op->have_base = true;
		}
	}
	if (git_index_new(&op->idx) < 0)
		return git_fail(ERR_NOMEM, "cannot make an index", detail);
	if (op->have_base &&
	    (git_commit_lookup(&op->parent, g->repo, &op->base) < 0 ||
	     git_commit_tree(&op->tree, op->parent) < 0 || git_index_read_tree(op->idx, op->tree) < 0))
		return git_fail(ERR_STORE, "cannot read the remote branch", detail);
	return 0;
}

/*
 * Commits the index on top of the fetched branch and pushes; on any failure
 * the local branch goes back to the remote's state.  Called with g->mu held.
 */
static int op_commit_push(struct gitops *g, struct gitops_op *op, const char *message,
			  char *commit_out, char *detail)
{
	git_tree *new_tree = NULL;
	git_signature *sig = NULL;
	git_reference *ref = NULL;
	git_oid tree_oid, commit_oid;
	bool moved = false;
	int rc = 0;

	if (git_index_write_tree_to(&tree_oid, op->idx, g->repo) < 0 ||
	    git_tree_lookup(&new_tree, g->repo, &tree_oid) < 0) {
		rc = git_fail(ERR_STORE, "cannot write the tree", detail);
		goto out;
	}
	if (git_signature_now(&sig, "Plinth", "plinth@localhost") < 0) {
		rc = git_fail(ERR_STORE, "cannot make a signature", detail);
		goto out;
	}
	const git_commit *parents[1] = {op->parent};
	if (git_commit_create(&commit_oid, g->repo, NULL, sig, sig, NULL, message, new_tree,
			      op->have_base ? 1 : 0, parents) < 0) {
		rc = git_fail(ERR_STORE, "cannot commit", detail);
		goto out;
	}
	if (git_reference_create(&ref, g->repo, GITOPS_LOCAL, &commit_oid, 1, "plinth: job") < 0) {
		rc = git_fail(ERR_STORE, "cannot move the branch", detail);
		goto out;
	}
	moved = true;
	char push_spec[] = GITOPS_LOCAL ":" GITOPS_LOCAL;
	char *push_specs[] = {push_spec};
	git_strarray push_refs = {push_specs, 1};
	struct push_status ps;
	memset(&ps, 0, sizeof(ps));
	git_push_options po;
	if (git_push_options_init(&po, GIT_PUSH_OPTIONS_VERSION) < 0) {
		rc = git_fail(ERR_STORE, "cannot initialise options", detail);
		goto out;
	}
	po.callbacks.push_update_reference = on_push_update;
	po.callbacks.payload = &ps;
	if (git_remote_push(op->origin, &push_refs, &po) < 0) {
		rc = git_fail(ERR_UNAVAILABLE, "push failed", detail);
		goto out;
	}
	if (ps.rejected) {
		snprintf(detail, GITOPS_DETAIL_LEN, "push rejected: %.200s", ps.msg); /* a diagnostic */
		rc = ERR_UNAVAILABLE;
		goto out;
	}
	git_reference_free(ref);
	ref = NULL;
	if (git_reference_create(&ref, g->repo, GITOPS_TRACKING, &commit_oid, 1, "plinth: pushed") < 0) {
		rc = git_fail(ERR_STORE, "cannot update the tracking branch", detail);
		moved = false; /* the push landed: the local branch is right */
		goto out;
	}
	git_oid_tostr(commit_out, GITOPS_OID_LEN, &commit_oid);
	moved = false;
out:
	if (rc != 0 && moved)
		branch_reset(g->repo, op->have_base ? &op->base : NULL);
	git_reference_free(ref);
	git_signature_free(sig);
	git_tree_free(new_tree);
	return rc;
}

int gitops_commit_push(struct gitops *g, const char *dir_path, const struct gitops_file *files,
		       size_t nfiles, const char *message, char *commit_out, char *detail)
{
	struct gitops_op op;
	git_oid blobs[8];
	char path[GITOPS_PATH_MAX];
	int rc = 0;

	if (nfiles == 0 || nfiles > sizeof(blobs) / sizeof(blobs[0])) {
		snprintf(detail, GITOPS_DETAIL_LEN, "bad number of files");
		return ERR_INVALID;
	}
	memset(&op, 0, sizeof(op));
	pthread_mutex_lock(&g->mu);
	rc = op_fetch(g, &op, detail);
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < nfiles; i++) {
		if (git_blob_create_from_buffer(&blobs[i], g->repo, files[i].data, files[i].len) < 0) {
			rc = git_fail(ERR_STORE, "cannot write a blob", detail);
			goto out;
		}
	}
	rc = dir_state(op.idx, dir_path, blobs, files, nfiles);
	if (rc == 1) {
		/* A retry: the remote already has exactly this. */
		git_oid_tostr(commit_out, GITOPS_OID_LEN, &op.base);
		rc = 0;
		goto out;
	}
	if (rc != 0) {
		snprintf(detail, GITOPS_DETAIL_LEN, "%s already exists in the GitOps repository",
			 dir_path);
		goto out;
	}
	for (size_t i = 0; i < nfiles; i++) {
		git_index_entry e;
		memset(&e, 0, sizeof(e));
		if (util_fmt(path, sizeof(path), "%s/%s", dir_path, files[i].name) != 0) {
			snprintf(detail, GITOPS_DETAIL_LEN, "a manifest path is too long");
			rc = ERR_INVALID;
			goto out;
		}
		e.path = path;
		e.mode = GIT_FILEMODE_BLOB;
		e.id = blobs[i];
		e.file_size = (uint32_t)files[i].len;
		if (git_index_add(op.idx, &e) < 0) {
			rc = git_fail(ERR_STORE, "cannot stage a manifest", detail);
			goto out;
		}
	}
	rc = op_commit_push(g, &op, message, commit_out, detail);
out:
	op_done(&op);
	pthread_mutex_unlock(&g->mu);
	return rc;
}

/* True when the blob of an index entry contains mark. */
static bool blob_has(git_repository *repo, const git_index_entry *e, const char *mark)
{
	git_blob *b = NULL;
	bool has = false;
	if (git_blob_lookup(&b, repo, &e->id) < 0)
		return false;
	const char *data = git_blob_rawcontent(b);
	size_t n = (size_t)git_blob_rawsize(b), m = strlen(mark);
	for (size_t i = 0; data != NULL && m > 0 && i + m <= n && !has; i++)
		has = memcmp(data + i, mark, m) == 0;
	git_blob_free(b);
	return has;
}

int gitops_remove_push(struct gitops *g, const char *dir_path, const char *owner_mark,
		       const char *message, char *commit_out, char *detail)
{
	struct gitops_op op;
	size_t plen = strlen(dir_path);
	bool owned = false;
	int rc;

	commit_out[0] = '\0';
	memset(&op, 0, sizeof(op));
	pthread_mutex_lock(&g->mu);
	rc = op_fetch(g, &op, detail);
	if (rc != 0)
		goto out;
	size_t n = git_index_entrycount(op.idx), found = 0;
	for (size_t i = 0; i < n; i++) {
		const git_index_entry *e = git_index_get_byindex(op.idx, i);
		if (e == NULL || strncmp(e->path, dir_path, plen) != 0 || e->path[plen] != '/')
			continue;
		found++;
		if (!owned && blob_has(g->repo, e, owner_mark))
			owned = true;
	}
	/* Gone already, or the directory now belongs to another job: nothing to do. */
	if (found == 0 || !owned)
		goto out;
	if (git_index_remove_directory(op.idx, dir_path, 0) < 0) {
		rc = git_fail(ERR_STORE, "cannot unstage the manifests", detail);
		goto out;
	}
	rc = op_commit_push(g, &op, message, commit_out, detail);
out:
	op_done(&op);
	pthread_mutex_unlock(&g->mu);
	return rc;
}
