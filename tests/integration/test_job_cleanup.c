/*
 * test_job_cleanup.c - issue 13: a job's manifests leave the GitOps
 * repository when its allocation ends, and members cannot report usage for
 * a job's (controller-managed) allocation.  Against the real daemon (SQLite,
 * and PostgreSQL with ITEST_PG=1); the GitOps remote is the daemon's own bare
 * repository DATA/gitops.git, read with the git command line.
 *
 * - cancel, complete (service token) and expiry (the sweeper) each remove
 *   apps/<team>/<name>/ in one commit naming the allocation and why;
 * - a member's start or complete of a job's allocation is a 409 naming
 *   plinth controller; cancel stays allowed; a manual allocation says
 *   managed_by null and keeps member start/complete;
 * - with the remote gone (its directory renamed: the tests run as root, so
 *   a read-only mode would not stop a push) a cancel still succeeds, the
 *   failure is counted in /metrics, and once the remote is back the sweeper
 *   removes the manifests, also across a daemon restart.
 */
#include "itest.h"

#include <stdlib.h>
#include <unistd.h>

#define D(state) ((struct itest_daemon *)*(state))
#define WAIT_MS 60000 /* a loaded 2-core machine; the sweep runs every second */

/* Runs a git command on the daemon's bare remote; its stdout (owned by d) or NULL. */
static const char *git_out(struct itest_daemon *d, const char *args)
{
	char *cmd = itest_strf(d, "git --git-dir='%s/gitops.git' %s 2>/dev/null", d->data, args);
	FILE *p = popen(cmd, "r");
	char *buf = itest_keep(d, calloc(1, 65536));
	size_t n = 0, got;

	assert_non_null(buf);
	if (p == NULL)
		return NULL;
	while (n < 65535 && (got = fread(buf + n, 1, 65535 - n, p)) > 0)
		n += got;
	return pclose(p) == 0 ? buf : NULL;
}

/* Does the remote's main branch hold apps/<team>/<name>/job.yaml? */
static int has_manifests(struct itest_daemon *d, const char *team, const char *name)
{
	const char *ls = git_out(d, "ls-tree -r --name-only main");

	assert_non_null(ls);
	return strstr(ls, itest_strf(d, "apps/%s/%s/job.yaml", team, name)) != NULL;
}

static const char *last_subject(struct itest_daemon *d)
{
	return git_out(d, "log -1 --format=%s main");
}

/* GPU type g1 (3.60/h, 8 GPUs), team ta (1000); returns a member token of ta. */
static const char *fixture(struct itest_daemon *d)
{
	itest_put_gpu(d, "g1", "3.60", 8);
	itest_put_team(d, "ta", "1000");
	return itest_make_token(d, "member", "[\"ta\"]", NULL);
}

/* POST /v1/jobs as token; returns the allocation id (owned by d). */
static const char *submit(struct itest_daemon *d, const char *token, const char *name)
{
	struct itest_resp *r = itest_req(
		d, "POST", "/v1/jobs", token,
		itest_strf(d,
			   "{\"team\":\"ta\",\"project\":\"p\",\"name\":\"%s\",\"framework\":\"pytorch\","
			   "\"gpu_type\":\"g1\",\"gpu_count\":1,\"max_runtime_hours\":1}",
			   name));

	ITEST_STATUS(r, 201);
	ITEST_STREQ(itest_jstr(r->json, "allocation.managed_by"), "controller");
	assert_true(has_manifests(d, "ta", name));
	return itest_jstr(r->json, "allocation.id");
}

static struct itest_resp *transition(struct itest_daemon *d, const char *token, const char *id,
				     const char *what)
{
	return itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/%s", id, what), token, "{}");
}

static void expect_removed_by(struct itest_daemon *d, const char *name, const char *id,
			      const char *why)
{
	assert_false(has_manifests(d, "ta", name));
	ITEST_STREQ(last_subject(d),
		    itest_strf(d, "plinth: remove ta/%s: allocation %s %s\n", name, id, why));
}

/* Polls (bounded) until the manifests are gone. */
static void wait_removed(struct itest_daemon *d, const char *name)
{
	int64_t end = itest_now_ms() + WAIT_MS;
	while (has_manifests(d, "ta", name) && itest_now_ms() < end)
		itest_sleep_ms(200);
}

static int64_t cleanup_failures(struct itest_daemon *d)
{
	struct itest_resp *r = itest_req(d, "GET", "/metrics", d->admin, NULL);
	ITEST_STATUS(r, 200);
	const char *p = strstr(r->body, "\nplinth_gitops_cleanup_failures_total ");
	if (p == NULL)
		fail_msg("no plinth_gitops_cleanup_failures_total in /metrics");
	return strtoll(p + strlen("\nplinth_gitops_cleanup_failures_total "), NULL, 10);
}

/* Cancelling a job's allocation removes its manifests in one commit. */
static void test_cancel_removes(void **state)
{
	struct itest_daemon *d = D(state);
	const char *member = fixture(d);
	const char *id = submit(d, member, "train");
	const char *before = git_out(d, "rev-parse main");
	assert_non_null(before);

	struct itest_resp *r = transition(d, member, id, "cancel");
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "cancelled");
	expect_removed_by(d, "train", id, "cancelled");
	/* one commit on top of the job's */
	ITEST_STREQ(git_out(d, "rev-parse main~1"), before);
	/* a repeated cancel commits nothing more */
	const char *after = git_out(d, "rev-parse main");
	ITEST_STATUS(transition(d, member, id, "cancel"), 200);
	ITEST_STREQ(git_out(d, "rev-parse main"), after);
	/* the name is free again for a new job */
	const char *id2 = submit(d, member, "train");
	assert_true(strcmp(id, id2) != 0);
}

/* Members cannot report a job's usage; the service (controller) can, and
 * its complete removes the manifests. */
static void test_managed_allocation(void **state)
{
	struct itest_daemon *d = D(state);
	const char *member = fixture(d);
	const char *service = itest_make_token(d, "service", "[]", NULL);
	const char *id = submit(d, member, "train");
	struct itest_resp *r;

	r = transition(d, member, id, "start");
	ITEST_PROBLEM(r, 409, "conflict");
	if (strstr(itest_jstr(r->json, "detail"), "plinth controller") == NULL)
		fail_msg("the 409 does not name the controller: %s", r->body);
	ITEST_STREQ(itest_jstr(itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", id), member,
					 NULL)->json, "status"),
		    "approved");
	ITEST_STATUS(transition(d, service, id, "start"), 200);
	ITEST_PROBLEM(transition(d, member, id, "complete"), 409, "conflict");
	assert_true(has_manifests(d, "ta", "train"));
	r = transition(d, service, id, "complete");
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "completed");
	expect_removed_by(d, "train", id, "completed");

	/* A member still cancels a job's allocation. */
	const char *id2 = submit(d, member, "eval");
	ITEST_STATUS(transition(d, member, id2, "cancel"), 200);
	expect_removed_by(d, "eval", id2, "cancelled");

	/* A manual allocation: managed_by null, member start/complete as before. */
	r = itest_allocate(d, member, "ta", "p", "g1", 1, "1");
	ITEST_STATUS(r, 201);
	assert_true(json_is_null(itest_jget(r->json, "managed_by")));
	const char *manual = itest_jstr(r->json, "id");
	ITEST_STATUS(transition(d, member, manual, "start"), 200);
	ITEST_STATUS(transition(d, member, manual, "complete"), 200);
	/* and nobody may claim the job label on a manual allocation */
	r = itest_req(d, "POST", "/v1/allocations", member,
		      "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
		      "\"max_runtime_hours\":1,\"labels\":{\"plinth.io/job\":\"job_x\"}}");
	ITEST_PROBLEM(r, 422, "validation-error");
}

static int setup_args(void **state, const char *const *args)
{
	struct itest_daemon *d = itest_daemon_new(args);

	if (d == NULL)
		return -1;
	*state = d;
	return 0;
}

static int setup_short_expiry(void **state)
{
	static const char *const args[] = {"--start-timeout", "2", "--sweep-interval", "1", NULL};
	return setup_args(state, args);
}

/* The sweeper expires a job's allocation and removes its manifests. */
static void test_expiry_removes(void **state)
{
	struct itest_daemon *d = D(state);
	const char *member = fixture(d);
	const char *id = submit(d, member, "train");

	wait_removed(d, "train");
	ITEST_STREQ(itest_jstr(itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", id), member,
					 NULL)->json, "status"),
		    "expired");
	expect_removed_by(d, "train", id, "expired");
}

static int setup_fast_sweep(void **state)
{
	static const char *const args[] = {"--sweep-interval", "1", NULL};
	return setup_args(state, args);
}

/* The remote is gone: the cancel succeeds, the failure is counted, and the
 * removal happens once the remote is back (here after a restart too). */
static void test_remote_down(void **state)
{
	struct itest_daemon *d = D(state);
	const char *member = fixture(d);
	const char *id = submit(d, member, "train");
	const char *repo = itest_strf(d, "%s/gitops.git", d->data);
	const char *off = itest_strf(d, "%s/gitops.git.off", d->data);
	int64_t failures = cleanup_failures(d);

	assert_int_equal(rename(repo, off), 0);
	struct itest_resp *r = transition(d, member, id, "cancel");
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "cancelled");
	assert_true(cleanup_failures(d) > failures);
	/* the sweeper keeps failing while the remote is away */
	int64_t end = itest_now_ms() + WAIT_MS;
	while (cleanup_failures(d) < failures + 2 && itest_now_ms() < end)
		itest_sleep_ms(200);
	assert_true(cleanup_failures(d) >= failures + 2);

	/* A restart keeps what is due: it is derived from the store. */
	assert_int_equal(itest_daemon_stop(d), 0);
	assert_int_equal(rename(off, repo), 0);
	assert_true(has_manifests(d, "ta", "train"));
	assert_int_equal(itest_daemon_restart(d), 0);
	wait_removed(d, "train");
	expect_removed_by(d, "train", id, "cancelled");
	ITEST_STREQ(itest_jstr(itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", id), member,
					 NULL)->json, "status"),
		    "cancelled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cancel_removes, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_managed_allocation, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_expiry_removes, setup_short_expiry,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_remote_down, setup_fast_sweep,
						itest_teardown_daemon),
	};

	/* The job flow without MLflow, on the daemon's own bare repository. */
	unsetenv("MLFLOW_TRACKING_URI");
	unsetenv("PLINTH_GITOPS_REMOTE");
	itest_global_init();
	return cmocka_run_group_tests_name("integration-job-cleanup", tests, NULL, NULL);
}
