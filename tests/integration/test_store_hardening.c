/*
 * test_store_hardening.c - issue 11, the store and the ledger (findings 1,
 * 5, 7, 8, 9) against the real daemon, on SQLite ('integration') and on
 * PostgreSQL ('integration-pg').
 *
 * Some tests write into the daemon's database directly (bypassing the API)
 * to plant a row no API request can make: SQLite through its file in the
 * data directory, PostgreSQL through the schema URL the harness gave the
 * daemon.  Nothing else is touched.
 */
#include "itest.h"
#include "itest_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- direct database access ---------------------------------------- */

/* The --database-url the harness gave d, or NULL (SQLite). */
static const char *daemon_pg_url(const struct itest_daemon *d)
{
	for (int i = 0; i + 1 < ITEST_MAX_ARGS && d->args[i] != NULL; i++)
		if (strcmp(d->args[i], "--database-url") == 0)
			return d->args[i + 1];
	return NULL;
}

/* Runs one SQL statement on d's database (SQLite syntax that PostgreSQL
 * also accepts).  Fails the test if it fails. */
static void db_exec(struct itest_daemon *d, const char *sql)
{
	const char *url = daemon_pg_url(d);

	if (url != NULL) {
		PGconn *pg = PQconnectdb(url);
		PGresult *r = PQstatus(pg) == CONNECTION_OK ? PQexec(pg, sql) : NULL;
		int ok = r != NULL && (PQresultStatus(r) == PGRES_COMMAND_OK ||
				       PQresultStatus(r) == PGRES_TUPLES_OK);
		if (!ok)
			fprintf(stderr, "db_exec(pg) %s: %s\n", sql, PQerrorMessage(pg));
		PQclear(r);
		PQfinish(pg);
		assert_true(ok);
		return;
	}
	sqlite3 *db = NULL;
	char *err = NULL;
	char *path = itest_strf(d, "%s/plinth.db", d->data);
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, 10000);
		rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	}
	if (rc != SQLITE_OK)
		fprintf(stderr, "db_exec(sqlite) %s: %s\n", sql, err ? err : sqlite3_errmsg(db));
	sqlite3_free(err);
	sqlite3_close(db);
	assert_int_equal(rc, SQLITE_OK);
}

/* ---- helpers --------------------------------------------------------- */

static int setup_with(void **state, const char *const *args)
{
	struct itest_daemon *d = itest_daemon_new(args);

	*state = d;
	return d ? 0 : -1;
}

/* Allocations expire after 1 s; only a decision expires them (no sweep). */
static int setup_unswept(void **state)
{
	static const char *const args[] = {"--start-timeout", "1", "--sweep-interval", "3600", NULL};

	return setup_with(state, args);
}

/* No sweep: only a decision expires what is due. */
static int setup_no_sweep(void **state)
{
	static const char *const args[] = {"--sweep-interval", "3600", NULL};

	return setup_with(state, args);
}

/* The sweeper runs every second (nothing expires by itself within a test). */
static int setup_swept(void **state)
{
	static const char *const args[] = {"--sweep-interval", "1", NULL};

	return setup_with(state, args);
}

static const char *alloc_body(struct itest_daemon *d, const char *team, const char *labels)
{
	return itest_strf(d,
			  "{\"team\":\"%s\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
			  "\"max_runtime_hours\":1%s%s}",
			  team, labels ? ",\"labels\":" : "", labels ? labels : "");
}

/* POSTs an allocation with labels; returns the response. */
static struct itest_resp *allocate_labels(struct itest_daemon *d, const char *team,
					  const char *labels)
{
	return itest_req(d, "POST", "/v1/allocations", d->admin, alloc_body(d, team, labels));
}

/* A member of the list page `r` with this id? */
static int page_has(const struct itest_resp *r, const char *id)
{
	json_t *items = itest_jget(r->json, "items");
	for (size_t i = 0; i < json_array_size(items); i++)
		if (strcmp(itest_jstr(json_array_get(items, i), "id") ?: "", id) == 0)
			return 1;
	return 0;
}

/* The value of an unlabelled sample in the /metrics text, or -1. */
static long metric_value(struct itest_daemon *d, const char *name)
{
	struct itest_resp *r = itest_req(d, "GET", "/metrics", d->admin, NULL);
	char *pat = itest_strf(d, "\n%s ", name);
	const char *p = r->body ? strstr(r->body, pat) : NULL;

	return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

/* ---- finding 1: labels ------------------------------------------------ */

/* The attack of the issue: 11 labels of 63 x U+0001 (6 bytes each once
 * escaped) overflowed the 4096-byte field.  Control characters are not
 * Kubernetes label syntax: 422 naming the labels, nothing stored. */
static void test_labels_control_chars_refused(void **state)
{
	struct itest_daemon *d = *state;
	char val[63 * 6 + 1] = "";
	char *labels = itest_strf(d, "{");

	itest_put_gpu(d, "g1", "2.00", 64);
	itest_put_team(d, "ta", "1000000");
	for (int i = 0; i < 63; i++)
		strcat(val, "\\u0001");
	for (int i = 0; i < 11; i++)
		labels = itest_strf(d, "%s%s\"k%02d%s\":\"%s\"", labels, i ? "," : "", i,
				    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", val);
	labels = itest_strf(d, "%s}", labels);
	struct itest_resp *r = allocate_labels(d, "ta", labels);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "labels"));
	r = itest_req(d, "GET", "/v1/allocations?team=ta", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 0);
	/* Other non-label syntax: a space, a quote, a key ending in '-'. */
	ITEST_PROBLEM(allocate_labels(d, "ta", "{\"a\":\"b c\"}"), 422, "validation-error");
	ITEST_PROBLEM(allocate_labels(d, "ta", "{\"a\":\"b\\\"\"}"), 422, "validation-error");
	ITEST_PROBLEM(allocate_labels(d, "ta", "{\"a-\":\"b\"}"), 422, "validation-error");
	/* Kubernetes syntax passes: prefix/name keys, '.', '_', '-', empty values. */
	ITEST_STATUS(allocate_labels(d, "ta", "{\"example.com/run-id\":\"r_1.2-x\",\"e\":\"\"}"), 201);
}

/* The largest label set validation accepts: stored and read back exactly by
 * GET, the list, cancel, the export (completed) and expiry. */
static void test_labels_largest_round_trip(void **state)
{
	struct itest_daemon *d = *state;
	char *labels = itest_strf(d, "{");

	itest_put_gpu(d, "g1", "2.00", 64);
	itest_put_team(d, "ta", "1000000");
	for (int i = 0; i < 32; i++)
		labels = itest_strf(d, "%s%s\"example.com/k%02d%s\":\"v%02d%s\"", labels,
				    i ? "," : "", i,
				    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", i,
				    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	labels = itest_strf(d, "%s}", labels);
	json_t *want = json_loads(labels, 0, NULL);
	assert_non_null(want);
	assert_int_equal(json_object_size(want), 32);

	/* One cancelled, one completed (exported), one left to expire. */
	const char *ids[3];
	for (int i = 0; i < 3; i++) {
		struct itest_resp *r = allocate_labels(d, "ta", labels);
		ITEST_STATUS(r, 201);
		assert_true(json_equal(itest_jget(r->json, "labels"), want));
		ids[i] = itest_jstr(r->json, "id");
		r = itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", ids[i]), d->admin, NULL);
		ITEST_STATUS(r, 200);
		assert_true(json_equal(itest_jget(r->json, "labels"), want));
	}
	struct itest_resp *r = itest_req(d, "GET", "/v1/allocations?team=ta&limit=2", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 2);
	assert_non_null(itest_jstr(r->json, "next_cursor"));
	assert_true(json_equal(itest_jget(json_array_get(itest_jget(r->json, "items"), 0), "labels"),
			       want));
	r = itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/cancel", ids[0]), d->admin, "{}");
	ITEST_STATUS(r, 200);
	assert_true(json_equal(itest_jget(r->json, "labels"), want));
	ITEST_STATUS(itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/start", ids[1]),
			       d->admin, "{}"), 200);
	r = itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/complete", ids[1]), d->admin, "{}");
	ITEST_STATUS(r, 200);
	assert_true(json_equal(itest_jget(r->json, "labels"), want));
	r = itest_req(d, "GET", "/v1/costs/export?team=ta", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_non_null(strstr(r->body, "example.com/k31"));
	/* ids[2] is due after 1 s: the next decision expires it and succeeds. */
	itest_sleep_ms(2100);
	ITEST_STATUS(allocate_labels(d, "ta", NULL), 201);
	r = itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", ids[2]), d->admin, NULL);
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "expired");
	assert_true(json_equal(itest_jget(r->json, "labels"), want));
	json_decref(want);
}

/*
 * Rows planted directly in the database that the program would never write:
 * labels that are not JSON (due to expire), labels longer than the record's
 * field.  The list skips them (and still lists the good one after them, with
 * a cursor), the allocate path expires the due one and decides, the sweeper
 * keeps going, /metrics counts them, and GET of the broken one is a 500
 * problem, not a crash or an empty body.
 */
static void poisoned_rows(struct itest_daemon *d, bool sweep)
{
	itest_put_gpu(d, "g1", "2.00", 64);
	itest_put_team(d, "ta", "1000");
	struct itest_resp *r = allocate_labels(d, "ta", NULL);
	ITEST_STATUS(r, 201);
	const char *good = itest_jstr(r->json, "id");
	r = allocate_labels(d, "ta", "{\"a\":\"b\"}");
	ITEST_STATUS(r, 201);
	const char *bad_json = itest_jstr(r->json, "id");
	r = allocate_labels(d, "ta", "{\"a\":\"b\"}");
	ITEST_STATUS(r, 201);
	const char *too_long = itest_jstr(r->json, "id");
	ITEST_MONEY(itest_req(d, "GET", "/v1/teams/ta", d->admin, NULL)->json, "reserved", "6.00");

	/* bad_json: labels cut mid-string (what the 4096-byte field made) and
	 * due now; too_long: labels longer than the record's field, not due. */
	long bad0 = metric_value(d, "plinth_store_bad_rows_total");
	db_exec(d, itest_strf(d, "UPDATE allocations SET labels_json = '{\"a\":\"', expires_at = 1"
				 " WHERE id = '%s'", bad_json));
	char *big = itest_strf(d, "{\"k\":\"%0*d\"}", 5000, 7);
	db_exec(d, itest_strf(d, "UPDATE allocations SET labels_json = '%s' WHERE id = '%s'", big,
			      too_long));

	/* Expiry must not stop anything: the sweeper releases bad_json's money
	 * (or the next decision does), and decisions go on. */
	if (sweep) {
		int64_t end = itest_now_ms() + 15000;
		const char *reserved = NULL;
		while (itest_now_ms() < end) {
			reserved = itest_jstr(itest_req(d, "GET", "/v1/teams/ta", d->admin, NULL)->json,
					      "reserved");
			if (reserved && strcmp(reserved, "4.00") == 0)
				break;
			itest_sleep_ms(200);
		}
		ITEST_STREQ(reserved, "4.00"); /* bad_json expired by the sweeper */
	}
	ITEST_STATUS(allocate_labels(d, "ta", NULL), 201);
	ITEST_MONEY(itest_req(d, "GET", "/v1/teams/ta", d->admin, NULL)->json, "reserved", "6.00");
	assert_true(metric_value(d, "plinth_store_bad_rows_total") > bad0);

	/* The list goes on past them (newest first: good is listed last). */
	r = itest_req(d, "GET", "/v1/allocations?team=ta", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_true(page_has(r, good));
	assert_false(page_has(r, bad_json));
	assert_false(page_has(r, too_long));
	/* Page by page (limit 1): the cursor walks past the bad rows to the end,
	 * the two good rows are seen, never a silent end before them. */
	const char *cursor = NULL;
	int seen = 0, pages = 0;
	do {
		r = itest_req(d, "GET", cursor ? itest_strf(d, "/v1/allocations?team=ta&limit=1&cursor=%s",
							   cursor)
					       : "/v1/allocations?team=ta&limit=1", d->admin, NULL);
		ITEST_STATUS(r, 200);
		seen += (int)json_array_size(itest_jget(r->json, "items"));
		cursor = itest_jstr(r->json, "next_cursor");
	} while (cursor != NULL && ++pages < 10);
	assert_int_equal(seen, 2);
	/* Reading one alone is an error, never a cut or broken answer. */
	r = itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", bad_json), d->admin, NULL);
	ITEST_PROBLEM(r, 500, "internal");
	r = itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", too_long), d->admin, NULL);
	ITEST_PROBLEM(r, 500, "internal");
	/* The good one still moves. */
	ITEST_STATUS(itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/cancel", good), d->admin,
			       "{}"), 200);
	ITEST_STATUS(itest_req(d, "GET", "/v1/costs/export?team=ta", d->admin, NULL), 200);
}

static void test_poisoned_rows_allocate(void **state)
{
	poisoned_rows(*state, false);
}

static void test_poisoned_rows_sweep(void **state)
{
	poisoned_rows(*state, true);
}

/* ---- finding 7: a revoked bootstrap token ------------------------------ */

static void test_bootstrap_token_revoked(void **state)
{
	struct itest_daemon *d = *state;
	const char *other = itest_make_token(d, "admin", "[]", NULL);
	struct itest_resp *r = itest_req(d, "GET", "/v1/tokens", other, NULL);
	const char *boot = NULL;

	ITEST_STATUS(r, 200);
	json_t *items = json_is_array(r->json) ? r->json : itest_jget(r->json, "items");
	for (size_t i = 0; i < json_array_size(items); i++)
		if (strcmp(itest_jstr(json_array_get(items, i), "name") ?: "", "bootstrap admin") == 0)
			boot = itest_jstr(json_array_get(items, i), "id");
	assert_non_null(boot);
	r = itest_req(d, "DELETE", itest_strf(d, "/v1/tokens/%s", boot), other, NULL);
	assert_true(r->status == 200 || r->status == 204);
	ITEST_STATUS(itest_req(d, "GET", "/v1/teams", d->admin, NULL), 401);

	assert_int_equal(itest_daemon_stop(d), 0);
	if (itest_daemon_restart(d) != 0) { /* was: "cannot start: conflict" */
		itest_daemon_dump_log(d, 4000);
		fail();
	}
	ITEST_STATUS(itest_req(d, "GET", "/v1/teams", d->admin, NULL), 401);
	ITEST_STATUS(itest_req(d, "GET", "/v1/teams", other, NULL), 200);
	FILE *f = fopen(d->log, "r");
	char buf[65536];
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "bootstrap admin token was revoked"));
}

/* ---- finding 5: changing the budget period ---------------------------- */

static void put_team_period(struct itest_daemon *d, const char *id, const char *amount,
			    const char *period)
{
	struct itest_resp *r = itest_req(
		d, "PUT", itest_strf(d, "/v1/teams/%s", id), d->admin,
		itest_strf(d, "{\"display_name\":\"Team %s\",\"budget\":{\"amount\":\"%s\","
			      "\"period\":\"%s\"}}", id, amount, period));
	assert_true(r->status == 200 || r->status == 201);
}

static struct itest_resp *allocate_hours(struct itest_daemon *d, const char *team,
					 const char *hours)
{
	return itest_req(d, "POST", "/v1/allocations", d->admin,
			 itest_strf(d, "{\"team\":\"%s\",\"project\":\"p\",\"gpu_type\":\"g1\","
				       "\"gpu_count\":1,\"max_runtime_hours\":%s}", team, hours));
}

/*
 * The whole budget reserved under a monthly period, then the period switched
 * to weekly, quarterly, yearly (and back), each time asking for the whole
 * budget again: the live reservation moves into each new period, so every
 * request is refused (it was approved: 400 held against 100).
 */
static void test_period_change_keeps_reservations(void **state)
{
	struct itest_daemon *d = *state;
	static const char *const kinds[] = {"weekly", "quarterly", "yearly", "monthly"};

	itest_put_gpu(d, "g1", "2.00", 64);
	put_team_period(d, "tp", "100", "monthly");
	struct itest_resp *r = allocate_hours(d, "tp", "50"); /* 1 x 2.00 x 50 h = 100 */
	ITEST_STATUS(r, 201);
	const char *held = itest_jstr(r->json, "id");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		put_team_period(d, "tp", "100", kinds[i]);
		r = itest_req(d, "GET", "/v1/teams/tp", d->admin, NULL);
		ITEST_STATUS(r, 200);
		ITEST_STREQ(itest_jstr(r->json, "budget.period"), kinds[i]);
		ITEST_PROBLEM(allocate_hours(d, "tp", "50"), 409, "budget-exceeded");
		ITEST_PROBLEM(allocate_hours(d, "tp", "0.5"), 409, "budget-exceeded");
		r = itest_req(d, "GET", "/v1/teams/tp", d->admin, NULL);
		ITEST_MONEY(r->json, "reserved", "100.00");
		ITEST_MONEY(r->json, "available", "0.00");
	}
	/* The moved reservation still moves: its spend lands in the current period. */
	put_team_period(d, "tp", "100", "weekly");
	ITEST_STATUS(itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/start", held), d->admin,
			       "{}"), 200);
	ITEST_STATUS(itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/complete", held),
			       d->admin, "{}"), 200);
	r = itest_req(d, "GET", "/v1/teams/tp", d->admin, NULL);
	ITEST_MONEY(r->json, "reserved", "0.00");
	int64_t spent = itest_jmoney(r->json, "spent");
	assert_true(spent >= 0 && spent <= 100000000);
	/* Whatever was charged, a whole budget is never exceeded. */
	r = allocate_hours(d, "tp", "50");
	if (spent > 0)
		ITEST_PROBLEM(r, 409, "budget-exceeded");
	else
		ITEST_STATUS(r, 201);
}

/* ---- finding 8: a full disk ----------------------------------------- */

/*
 * SQLite on a real full filesystem: a small tmpfs mounted for the test (as
 * root; skipped where mounting is not allowed, and on PostgreSQL, whose disk
 * is the server's).  The daemon's data directory is on it; a filler file
 * takes the rest.  SQLite reports SQLITE_FULL ("database or disk is full").
 */
#define FULL_FS_SIZE "8m"
static char full_mnt[ITEST_PATH_LEN];

static int setup_full_disk(void **state)
{
	*state = NULL;
	if (itest_pg_enabled())
		return 0;
	snprintf(full_mnt, sizeof(full_mnt), "/tmp/plinth-fullfs-XXXXXX");
	if (mkdtemp(full_mnt) == NULL)
		return -1;
	if (mount("tmpfs", full_mnt, "tmpfs", 0, "size=" FULL_FS_SIZE ",mode=0755") != 0) {
		fprintf(stderr, "cannot mount a tmpfs (%s): the full-disk test is skipped\n",
			strerror(errno));
		rmdir(full_mnt);
		full_mnt[0] = '\0';
		return 0;
	}
	const char *old = getenv("TMPDIR");
	char *saved = old ? strdup(old) : NULL;
	setenv("TMPDIR", full_mnt, 1);
	*state = itest_daemon_new(NULL);
	if (saved) {
		setenv("TMPDIR", saved, 1);
		free(saved);
	} else {
		unsetenv("TMPDIR");
	}
	return *state ? 0 : -1;
}

static int teardown_full_disk(void **state)
{
	int rc = *state ? itest_teardown_daemon(state) : 0;

	if (full_mnt[0]) {
		if (umount(full_mnt) != 0)
			rc = -1;
		rmdir(full_mnt);
		full_mnt[0] = '\0';
	}
	return rc;
}

/* Fills the filesystem of dir with a file; returns its path (owned by d). */
static const char *fill_disk(struct itest_daemon *d)
{
	const char *path = itest_strf(d, "%s/filler", d->root);
	static char chunk[64 * 1024];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (int i = 0; i < 100000; i++) { /* bounded: the tmpfs is 8 MiB */
		ssize_t n = write(fd, chunk, sizeof(chunk));
		if (n < (ssize_t)sizeof(chunk))
			break;
	}
	close(fd);
	return path;
}

static void test_full_disk_is_unavailable(void **state)
{
	struct itest_daemon *d = *state;
	const char *acked[512];
	int nacked = 0, got503 = 0;

	if (d == NULL)
		skip();
	itest_put_gpu(d, "g1", "2.00", 10000);
	itest_put_team(d, "ta", "1000000");
	for (int i = 0; i < 3; i++) {
		struct itest_resp *r = allocate_labels(d, "ta", NULL);
		ITEST_STATUS(r, 201);
		acked[nacked++] = itest_jstr(r->json, "id");
	}
	const char *filler = fill_disk(d);
	/* SQLite may still have room in pages it holds: write until it fails. */
	for (int i = 0; i < 400 && !got503; i++) {
		struct itest_resp *r = allocate_labels(d, "ta", "{\"fill\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
		if (r->status == 201 && nacked < 512)
			acked[nacked++] = itest_jstr(r->json, "id");
		else if (r->status == 503) {
			char ra[16];
			assert_int_equal(itest_resp_header(r, "Retry-After", ra, sizeof(ra)), 0);
			assert_string_equal(ra, "1");
			got503 = 1;
		} else if (r->status != 201)
			ITEST_PROBLEM(r, 503, "unavailable"); /* was: 500 "database or disk is full" */
	}
	assert_true(got503);
	printf("full disk (tmpfs " FULL_FS_SIZE "): %d allocations acknowledged before the first 503\n",
	       nacked);
	struct itest_resp *r = allocate_labels(d, "ta", NULL);
	ITEST_PROBLEM(r, 503, "unavailable");
	ITEST_PROBLEM(itest_req(d, "GET", "/readyz", NULL, NULL), 503, "unavailable");
	ITEST_STATUS(itest_req(d, "GET", "/healthz", NULL, NULL), 200);

	/* Space again: writes work and the daemon is ready at once. */
	assert_int_equal(unlink(filler), 0);
	r = allocate_labels(d, "ta", NULL);
	ITEST_STATUS(r, 201);
	acked[nacked++] = itest_jstr(r->json, "id");
	ITEST_STATUS(itest_req(d, "GET", "/readyz", NULL, NULL), 200);

	/* Nothing acknowledged is lost, across a restart too. */
	assert_int_equal(itest_daemon_stop(d), 0);
	assert_int_equal(itest_daemon_restart(d), 0);
	for (int i = 0; i < nacked; i++)
		ITEST_STATUS(itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", acked[i]),
				       d->admin, NULL), 200);
}

/* ---- finding 9: cost totals ------------------------------------------ */

/*
 * 11 teams each holding the largest budget (1e12, i.e. 1e18 micros): every
 * sum over them exceeds int64 micros.  Each grouping answers 200 with the
 * exact totals (was: total.reserved -7446744073001.551095, and 422 for
 * group_by=gpu_type and group_by=day).
 */
static void test_cost_totals_exact(void **state)
{
	struct itest_daemon *d = *state;
	static const char *const groups[] = {"team", "project", "gpu_type", "day"};

	itest_put_gpu(d, "g1", "1000000", 1000000);
	for (int i = 0; i < 11; i++) {
		const char *team = itest_strf(d, "t%02d", i);
		itest_put_team(d, team, "1000000000000");
		struct itest_resp *r = itest_req(
			d, "POST", "/v1/allocations", d->admin,
			itest_strf(d, "{\"team\":\"%s\",\"project\":\"p\",\"gpu_type\":\"g1\","
				      "\"gpu_count\":10000,\"max_runtime_hours\":100}", team));
		ITEST_STATUS(r, 201);
		ITEST_MONEY(r->json, "estimated_cost", "1000000000000.00");
	}
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		struct itest_resp *r = itest_req(d, "GET", itest_strf(d, "/v1/costs?group_by=%s",
								     groups[g]), d->admin, NULL);
		ITEST_STATUS(r, 200);
		ITEST_MONEY(r->json, "total.reserved", "11000000000000.00");
		ITEST_MONEY(r->json, "total.spent", "0.00");
		json_t *items = itest_jget(r->json, "items");
		if (strcmp(groups[g], "gpu_type") == 0 || strcmp(groups[g], "day") == 0) {
			assert_int_equal(json_array_size(items), 1);
			ITEST_MONEY(json_array_get(items, 0), "reserved", "11000000000000.00");
		} else {
			assert_int_equal(json_array_size(items), 11);
		}
	}
}

/*
 * Issue 12 review: a job whose allocation was decided by a plinth before the
 * decision was kept as data (its Idempotency record holds the HTTP answer,
 * status > 0), retried after the upgrade (the job row still unfinished, as
 * after a crash between the decision and the job's update).  The record is
 * read the way that plinth read it: 201 gives the allocation's id (here
 * cancelled since: the job ends "allocation-ended", nothing is deployed),
 * 409 the refusal's figures (here a capacity refusal, which a new decision
 * would not give: the record is what answers).  Was: a 409 telling the
 * client to resubmit, the job left unfinished for every retry.
 */
static void job_reset(struct itest_daemon *d, const char *key, int status, const char *record)
{
	db_exec(d, itest_strf(d,
			      "UPDATE idempotency SET status = %d, body = '%s' WHERE key ="
			      " (SELECT 'job:' || id FROM jobs WHERE idem_key = '%s')",
			      status, record, key));
	db_exec(d, itest_strf(d,
			      "UPDATE jobs SET status = 0, allocation_id = '', body = '',"
			      " updated_at = 0 WHERE idem_key = '%s'",
			      key));
}

/* POST /v1/jobs with an Idempotency-Key. */
static struct itest_resp *job_post(struct itest_daemon *d, const char *tok, const char *body,
				   const char *key)
{
	const char *h[] = {itest_strf(d, "Idempotency-Key: %s", key), NULL};

	return itest_req_h(d, "POST", "/v1/jobs", tok, body, h);
}

static void test_job_legacy_records(void **state)
{
	struct itest_daemon *d = *state;
	const char *tok, *ok_body, *big_body, *alloc_id;
	struct itest_resp *r;

	itest_put_gpu(d, "g1", "3.60", 8);
	itest_put_team(d, "ta", "10");
	tok = itest_make_token(d, "member", "[\"ta\"]", NULL);
	ok_body = "{\"team\":\"ta\",\"project\":\"p\",\"name\":\"ok\",\"framework\":\"pytorch\","
		  "\"gpu_type\":\"g1\",\"gpu_count\":1,\"max_runtime_hours\":1}";
	big_body = "{\"team\":\"ta\",\"project\":\"p\",\"name\":\"big\",\"framework\":\"pytorch\","
		   "\"gpu_type\":\"g1\",\"gpu_count\":8,\"max_runtime_hours\":100}";

	/* approved by "the old plinth", cancelled since */
	r = job_post(d, tok, ok_body, "legacy-ok");
	ITEST_STATUS(r, 201);
	alloc_id = itest_jstr(r->json, "allocation.id");
	assert_non_null(alloc_id);
	ITEST_STATUS(itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/cancel", alloc_id),
			       tok, "{}"),
		     200);
	job_reset(d, "legacy-ok", 201,
		  itest_strf(d, "{\"id\":\"%s\",\"status\":\"approved\"}", alloc_id));
	r = job_post(d, tok, ok_body, "legacy-ok");
	ITEST_PROBLEM(r, 409, "allocation-ended");
	/* the job is finished: a further retry replays it */
	ITEST_PROBLEM(job_post(d, tok, ok_body, "legacy-ok"),
		      409, "allocation-ended");

	/* refused by "the old plinth" */
	r = job_post(d, tok, big_body, "legacy-big");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	job_reset(d, "legacy-big", 409,
		  "{\"refused\":\"capacity-exceeded\",\"estimated_cost\":\"2880.00\","
		  "\"available\":\"10.00\",\"gpus_available\":7}");
	r = job_post(d, tok, big_body, "legacy-big");
	ITEST_PROBLEM(r, 409, "capacity-exceeded");
	ITEST_STREQ(itest_jstr(r->json, "detail"), "the allocation was refused");
	assert_int_equal(itest_jint(r->json, "gpus_available"), 7);
	ITEST_PROBLEM(job_post(d, tok, big_body, "legacy-big"),
		      409, "capacity-exceeded");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_labels_control_chars_refused, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_labels_largest_round_trip, setup_unswept,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_poisoned_rows_allocate, setup_no_sweep,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_poisoned_rows_sweep, setup_swept,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_bootstrap_token_revoked, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_job_legacy_records, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_period_change_keeps_reservations,
						itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_full_disk_is_unavailable, setup_full_disk,
						teardown_full_disk),
		cmocka_unit_test_setup_teardown(test_cost_totals_exact, itest_setup_daemon,
						itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-store-hardening", tests, NULL, NULL);
}
