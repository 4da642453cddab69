/*
 * test_replicas.c - several plinth daemons on ONE PostgreSQL database (the
 * production shape: stateless replicas behind a load balancer).  Proves:
 *   - 96 clients spread over 3 replicas racing for a budget that fits
 *     exactly K requests: exactly K approved, every replica reports the
 *     same reserved amount;
 *   - a batch that read the ledger before another transaction committed a
 *     reservation reruns under the row locks and refuses (no overspend);
 *   - kill -9 of one replica under load: every acknowledged allocation is
 *     in the database, the other replicas keep serving;
 *   - PostgreSQL crashed (immediate stop: no shutdown checkpoint, WAL
 *     buffers not written) and started again under load: only 503 while it
 *     is down (never 500, never a wrong approval), /readyz fails while down,
 *     service resumes without restarting the daemons, nothing acknowledged
 *     is lost;
 *   - a token revoked on one replica is refused there at once and on the
 *     others within a second (their token caches hear the revocation's
 *     NOTIFY), and from then on for good.
 *
 * Threads never call cmocka assertions: they record, the main thread judges.
 * Runs only in the 'integration-pg' suite (ITEST_PG=1, PLINTH_TEST_PG_URL).
 */
#include "itest.h"
#include "itest_pg.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>

#define NREPLICAS 3
#define RACE_CLIENTS 96
#define K 20
#define LOAD_CLIENTS 24
#define MAX_ACKED 20000

struct cluster {
	struct itest_daemon *d[NREPLICAS];
	char url[1024];
};

static int setup_cluster(void **state)
{
	struct cluster *cl = calloc(1, sizeof(*cl));
	int i;

	if (cl == NULL || itest_pg_fresh_url(cl->url, sizeof(cl->url)) != 0) {
		free(cl);
		return -1;
	}
	for (i = 0; i < NREPLICAS; i++) {
		const char *args[] = {"--database-url", cl->url, "--threads", "8", NULL};

		cl->d[i] = itest_daemon_new(args);
		if (cl->d[i] == NULL)
			return -1;
	}
	*state = cl;
	return 0;
}

static int teardown_cluster(void **state)
{
	struct cluster *cl = *state;
	int i;

	if (cl == NULL)
		return 0;
	for (i = 0; i < NREPLICAS; i++)
		itest_daemon_free(cl->d[i]);
	free(cl);
	return 0;
}

static json_t *get_json(struct itest_daemon *d, const char *path)
{
	struct itest_resp *r = itest_req(d, "GET", path, d->admin, NULL);

	ITEST_STATUS(r, 200);
	return r->json;
}

static const char ALLOC_BODY[] =
	"{\"team\":\"%s\",\"project\":\"p\",\"gpu_type\":\"r1\",\"gpu_count\":1,"
	"\"max_runtime_hours\":1}";

/* ---- a stale read: the optimistic batch must rerun locked -------------------- */

struct stale_post {
	struct itest_daemon *d;
	long status;
	int done;
	pthread_mutex_t mu;
};

static void *stale_post_main(void *p)
{
	struct stale_post *sp = p;
	CURL *h = curl_easy_init();
	struct itest_resp r = {0};
	char body[256];

	snprintf(body, sizeof(body), ALLOC_BODY, "stale");
	if (h != NULL)
		itest_http(h, sp->d->base_url, "POST", "/v1/allocations", sp->d->admin, body,
			   strlen(body), NULL, &r);
	pthread_mutex_lock(&sp->mu);
	sp->status = r.status;
	sp->done = 1;
	pthread_mutex_unlock(&sp->mu);
	itest_resp_clear(&r);
	if (h != NULL)
		curl_easy_cleanup(h);
	return NULL;
}

static int stale_exec(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if (!ok)
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

/*
 * The batch reads the ledger (1.00 of the team's 10.00 reserved) and
 * approves a 1.00 request; before its writes reach the period row, another
 * transaction (standing in for another replica) commits a reservation of
 * 8.50.  The test holds the audit table in SHARE mode meanwhile, so the
 * batch's audit INSERT - before its period UPDATE - waits at the right
 * moment.  Then only 0.50 is left: the batch's check must fail, and the rerun
 * under the row locks must refuse.  An approval here would be an overspend.
 */
static void test_replica_stale_read(void **state)
{
	struct cluster *cl = *state;
	struct stale_post sp = {.d = cl->d[1]};
	PGconn *hold = PQconnectdb(cl->url), *other = PQconnectdb(cl->url);
	pthread_t tid;
	json_t *t;
	int done;

	assert_int_equal(PQstatus(hold), CONNECTION_OK);
	assert_int_equal(PQstatus(other), CONNECTION_OK);
	pthread_mutex_init(&sp.mu, NULL);
	itest_put_gpu(cl->d[0], "r1", "1.00", 1000);
	itest_put_team(cl->d[0], "stale", "10");
	ITEST_STATUS(itest_req(cl->d[0], "POST", "/v1/allocations", cl->d[0]->admin,
			       itest_strf(cl->d[0], ALLOC_BODY, "stale")),
		     201); /* the period row exists, 1.00 reserved */
	assert_int_equal(stale_exec(hold, "BEGIN; LOCK TABLE audit IN SHARE MODE"), 0);
	assert_int_equal(pthread_create(&tid, NULL, stale_post_main, &sp), 0);
	itest_sleep_ms(1000); /* read, decided, and now waiting to write its audit row */
	pthread_mutex_lock(&sp.mu);
	done = sp.done;
	pthread_mutex_unlock(&sp.mu);
	if (done)
		fprintf(stderr, "the request did not wait for the audit lock (HTTP %ld)\n", sp.status);
	assert_int_equal(done, 0);
	assert_int_equal(stale_exec(other, "UPDATE team_periods SET reserved = reserved + 8500000"
					   " WHERE team_id = 'stale'"),
			 0);
	assert_int_equal(stale_exec(hold, "ROLLBACK"), 0);
	pthread_join(tid, NULL);
	PQfinish(hold);
	PQfinish(other);
	pthread_mutex_destroy(&sp.mu);
	if (sp.status != 409)
		fprintf(stderr, "stale read: HTTP %ld, expected 409\n", sp.status);
	assert_int_equal(sp.status, 409);
	t = get_json(cl->d[2], "/v1/teams/stale");
	assert_int_equal(itest_jmoney(t, "reserved"), 9500000);
	assert_true(itest_jmoney(t, "spent") + itest_jmoney(t, "reserved") <=
		    itest_jmoney(t, "budget.amount"));
}

/* ---- the budget race over three replicas ---------------------------------- */

struct race_result {
	long status;
	int curl_rc;
	char type[64];
};

struct race {
	struct cluster *cl;
	char body[256];
	pthread_barrier_t barrier;
	struct race_result res[RACE_CLIENTS];
};

struct race_arg {
	struct race *race;
	int index;
};

static void *race_main(void *p)
{
	struct race_arg *a = p;
	struct itest_daemon *d = a->race->cl->d[a->index % NREPLICAS];
	struct race_result *res = &a->race->res[a->index];
	CURL *h = curl_easy_init();
	struct itest_resp r = {0};

	pthread_barrier_wait(&a->race->barrier);
	if (h == NULL) {
		res->curl_rc = CURLE_FAILED_INIT;
		return NULL;
	}
	itest_http(h, d->base_url, "POST", "/v1/allocations", d->admin, a->race->body,
		   strlen(a->race->body), NULL, &r);
	res->status = r.status;
	res->curl_rc = (int)r.curl_rc;
	if (r.json != NULL && itest_jstr(r.json, "type") != NULL &&
	    strrchr(itest_jstr(r.json, "type"), '/') != NULL)
		snprintf(res->type, sizeof(res->type), "%s",
			 strrchr(itest_jstr(r.json, "type"), '/') + 1);
	itest_resp_clear(&r);
	curl_easy_cleanup(h);
	return NULL;
}

static void test_replica_budget_race(void **state)
{
	struct cluster *cl = *state;
	struct race *race = calloc(1, sizeof(*race));
	pthread_t tids[RACE_CLIENTS];
	struct race_arg args[RACE_CLIENTS];
	int i, ok = 0, refused = 0;

	assert_non_null(race);
	itest_put_gpu(cl->d[0], "r1", "1.00", 100000);
	itest_put_team(cl->d[1], "race", "20"); /* exactly K = 20 one-hour one-GPU requests */
	race->cl = cl;
	snprintf(race->body, sizeof(race->body), ALLOC_BODY, "race");
	assert_int_equal(pthread_barrier_init(&race->barrier, NULL, RACE_CLIENTS), 0);
	for (i = 0; i < RACE_CLIENTS; i++) {
		args[i].race = race;
		args[i].index = i;
		assert_int_equal(pthread_create(&tids[i], NULL, race_main, &args[i]), 0);
	}
	for (i = 0; i < RACE_CLIENTS; i++)
		assert_int_equal(pthread_join(tids[i], NULL), 0);
	pthread_barrier_destroy(&race->barrier);
	for (i = 0; i < RACE_CLIENTS; i++) {
		const struct race_result *res = &race->res[i];

		if (res->curl_rc != CURLE_OK || res->status >= 500)
			fprintf(stderr, "client %d: HTTP %ld curl %d %s\n", i, res->status,
				res->curl_rc, res->type);
		if (res->status == 201)
			ok++;
		else if (res->status == 409 && strcmp(res->type, "budget-exceeded") == 0)
			refused++;
	}
	free(race);
	if (ok != K || refused != RACE_CLIENTS - K) {
		fprintf(stderr, "replica race: %d approved (want %d), %d budget-exceeded (want %d)\n",
			ok, K, refused, RACE_CLIENTS - K);
		fail();
	}
	for (i = 0; i < NREPLICAS; i++) {
		json_t *t = get_json(cl->d[i], "/v1/teams/race");

		ITEST_MONEY(t, "reserved", "20.00");
		ITEST_MONEY(t, "available", "0.00");
		assert_int_equal(itest_jint(get_json(cl->d[i], "/v1/gpu-types/r1"), "allocated"), K);
	}
}

/* ---- load: clients allocating in a loop while something breaks ----------- */

struct load {
	struct cluster *cl;
	char body[256];
	volatile int stop;      /* set by the main thread */
	volatile int down;      /* 1 while the database is stopped */
	int skip_replica;       /* clients avoid this replica once set (>= 0) */
	pthread_mutex_t mu;
	char (*acked)[80];      /* ids of acknowledged (201) allocations */
	int nacked;
	int n201_after;         /* 201s counted once `after` was set */
	volatile int after;
	int n500, n503, n409, nother, ntransport;
	int n503_up;            /* 503 while the database was not down (allowed: restart edges) */
	long other_status;
};

struct load_arg {
	struct load *load;
	int index;
};

static void *load_main(void *p)
{
	struct load_arg *a = p;
	struct load *ld = a->load;
	CURL *h = curl_easy_init();
	int n = 0;

	if (h == NULL)
		return NULL;
	while (!ld->stop) {
		int which = (a->index + n++) % NREPLICAS;
		struct itest_daemon *d;
		struct itest_resp r = {0};
		int was_down = ld->down;

		if (which == ld->skip_replica)
			which = (which + 1) % NREPLICAS;
		d = ld->cl->d[which];
		itest_http(h, d->base_url, "POST", "/v1/allocations", d->admin, ld->body,
			   strlen(ld->body), NULL, &r);
		pthread_mutex_lock(&ld->mu);
		if (r.curl_rc != CURLE_OK) {
			ld->ntransport++; /* the killed replica: nothing was acknowledged */
		} else if (r.status == 201) {
			const char *id = itest_jstr(r.json, "id");

			if (id != NULL && ld->nacked < MAX_ACKED)
				snprintf(ld->acked[ld->nacked++], sizeof(ld->acked[0]), "%s", id);
			if (ld->after)
				ld->n201_after++;
		} else if (r.status == 503) {
			ld->n503++;
			if (!was_down && !ld->down)
				ld->n503_up++;
		} else if (r.status == 500) {
			ld->n500++;
		} else if (r.status == 409) {
			ld->n409++;
		} else {
			ld->nother++;
			ld->other_status = r.status;
		}
		pthread_mutex_unlock(&ld->mu);
		itest_resp_clear(&r);
	}
	curl_easy_cleanup(h);
	return NULL;
}

static void load_start(struct load *ld, struct cluster *cl, const char *team, pthread_t *tids,
		       struct load_arg *args)
{
	int i;

	memset(ld, 0, sizeof(*ld));
	ld->cl = cl;
	ld->skip_replica = -1;
	ld->acked = calloc(MAX_ACKED, sizeof(*ld->acked));
	assert_non_null(ld->acked);
	snprintf(ld->body, sizeof(ld->body), ALLOC_BODY, team);
	assert_int_equal(pthread_mutex_init(&ld->mu, NULL), 0);
	for (i = 0; i < LOAD_CLIENTS; i++) {
		args[i].load = ld;
		args[i].index = i;
		assert_int_equal(pthread_create(&tids[i], NULL, load_main, &args[i]), 0);
	}
}

static void load_stop(struct load *ld, pthread_t *tids)
{
	int i;

	ld->stop = 1;
	for (i = 0; i < LOAD_CLIENTS; i++)
		assert_int_equal(pthread_join(tids[i], NULL), 0);
	pthread_mutex_destroy(&ld->mu);
}

/* Every acknowledged allocation exists; the ledger equals what exists. */
static void load_verify(struct load *ld, struct itest_daemon *d, const char *team)
{
	json_t *t, *items;
	int64_t reserved;
	size_t listed = 0;
	const char *cursor = NULL;
	int i;

	for (i = 0; i < ld->nacked; i++) {
		struct itest_resp *r =
			itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", ld->acked[i]),
				  d->admin, NULL);
		if (r->status != 200)
			fprintf(stderr, "acknowledged allocation %s is lost: HTTP %ld\n",
				ld->acked[i], r->status);
		ITEST_STATUS(r, 200);
	}
	/* Count what is really there, page by page. */
	do {
		json_t *page = get_json(d, cursor ? itest_strf(d, "/v1/allocations?team=%s&limit=500"
								 "&cursor=%s", team, cursor)
						  : itest_strf(d, "/v1/allocations?team=%s&limit=500",
							       team));
		const char *next = itest_jstr(page, "next_cursor");

		items = itest_jget(page, "items");
		assert_non_null(items);
		listed += json_array_size(items);
		cursor = next && next[0] ? itest_strf(d, "%s", next) : NULL;
	} while (cursor != NULL);
	assert_true(listed >= (size_t)ld->nacked);
	t = get_json(d, itest_strf(d, "/v1/teams/%s", team));
	reserved = itest_jmoney(t, "reserved");
	/* Each allocation reserves exactly 1.00: the ledger matches the rows. */
	if (reserved != (int64_t)listed * 1000000) {
		fprintf(stderr, "reserved %lld micros but %zu allocations of 1.00 exist\n",
			(long long)reserved, listed);
		fail();
	}
	assert_true(itest_jmoney(t, "spent") + reserved <= itest_jmoney(t, "budget.amount"));
	free(ld->acked);
	ld->acked = NULL;
}

static void test_replica_kill9(void **state)
{
	struct cluster *cl = *state;
	struct load *ld = calloc(1, sizeof(*ld));
	pthread_t tids[LOAD_CLIENTS];
	struct load_arg args[LOAD_CLIENTS];
	int i;

	assert_non_null(ld);
	itest_put_gpu(cl->d[0], "r1", "1.00", 1000000);
	itest_put_team(cl->d[0], "kill", "1000000");
	load_start(ld, cl, "kill", tids, args);
	itest_sleep_ms(1500);
	assert_int_equal(itest_daemon_kill(cl->d[0]), 0);
	ld->skip_replica = 0;
	itest_sleep_ms(300); /* requests in flight to the dead replica fail */
	pthread_mutex_lock(&ld->mu);
	ld->after = 1;
	pthread_mutex_unlock(&ld->mu);
	itest_sleep_ms(1500);
	load_stop(ld, tids);
	fprintf(stderr, "kill -9: %d acknowledged, %d after the kill, %d transport errors, "
			"%d x 503, %d x 500, %d other\n",
		ld->nacked, ld->n201_after, ld->ntransport, ld->n503, ld->n500, ld->nother);
	assert_int_equal(ld->n500, 0);
	assert_int_equal(ld->n503, 0);
	assert_int_equal(ld->nother, 0);
	assert_int_equal(ld->n409, 0);
	assert_true(ld->n201_after > 0); /* the other replicas kept serving */
	load_verify(ld, cl->d[1], "kill");
	/* The killed replica comes back on the same database and agrees. */
	assert_int_equal(itest_daemon_restart(cl->d[0]), 0);
	for (i = 0; i < NREPLICAS; i++)
		ITEST_MONEY(get_json(cl->d[i], "/v1/teams/kill"), "reserved",
			    itest_jstr(get_json(cl->d[1], "/v1/teams/kill"), "reserved"));
	free(ld);
}

static long readyz(struct itest_daemon *d)
{
	return itest_req(d, "GET", "/readyz", NULL, NULL)->status;
}

static void test_replica_db_restart(void **state)
{
	struct cluster *cl = *state;
	struct load *ld = calloc(1, sizeof(*ld));
	pthread_t tids[LOAD_CLIENTS];
	struct load_arg args[LOAD_CLIENTS];
	int64_t deadline;
	int i;

	assert_non_null(ld);
	itest_put_gpu(cl->d[0], "r1", "1.00", 1000000);
	itest_put_team(cl->d[0], "restart", "1000000");
	load_start(ld, cl, "restart", tids, args);
	itest_sleep_ms(1000);
	ld->down = 1;
	assert_int_equal(itest_pg_ctl("stop -m immediate"), 0);
	itest_sleep_ms(700);
	for (i = 0; i < NREPLICAS; i++) {
		long st = readyz(cl->d[i]);

		if (st != 503)
			fprintf(stderr, "replica %d: /readyz %ld while the database is down\n", i, st);
		assert_int_equal(st, 503);
	}
	assert_int_equal(itest_pg_ctl("start"), 0);
	/* Recovery without restarting anything (bounded). */
	deadline = itest_now_ms() + 20000;
	for (i = 0; i < NREPLICAS; i++) {
		while (readyz(cl->d[i]) != 200 && itest_now_ms() < deadline)
			itest_sleep_ms(50);
		assert_int_equal(readyz(cl->d[i]), 200);
	}
	ld->down = 0;
	pthread_mutex_lock(&ld->mu);
	ld->after = 1;
	pthread_mutex_unlock(&ld->mu);
	itest_sleep_ms(1500);
	load_stop(ld, tids);
	fprintf(stderr, "database restart: %d acknowledged, %d after recovery, %d x 503 "
			"(%d outside the outage), %d x 500, %d transport, %d other (%ld)\n",
		ld->nacked, ld->n201_after, ld->n503, ld->n503_up, ld->n500, ld->ntransport,
		ld->nother, ld->other_status);
	assert_int_equal(ld->n500, 0);
	assert_int_equal(ld->ntransport, 0);
	assert_int_equal(ld->nother, 0);
	assert_int_equal(ld->n409, 0);
	assert_true(ld->n503 > 0);       /* the outage was seen, as 503 */
	assert_true(ld->n201_after > 0); /* service resumed */
	load_verify(ld, cl->d[2], "restart");
	free(ld);
}

/* ---- token revocation reaches every replica ------------------------------ */

static long team_get_as(struct itest_daemon *d, const char *token)
{
	return itest_req(d, "GET", "/v1/teams/rev", token, NULL)->status;
}

static void test_replica_token_revoke(void **state)
{
	struct cluster *cl = *state;
	struct itest_resp *r;
	char tok[256], id[128];
	int64_t t0;
	int i, round;

	itest_put_team(cl->d[0], "rev", "100");
	r = itest_req(cl->d[0], "POST", "/v1/tokens", cl->d[0]->admin,
		      "{\"name\":\"rev\",\"role\":\"member\",\"teams\":[\"rev\"]}");
	ITEST_STATUS(r, 201);
	snprintf(tok, sizeof(tok), "%s", itest_jstr(r->json, "token"));
	snprintf(id, sizeof(id), "%s", itest_jstr(r->json, "id"));
	/* Every replica has used it (and may keep it in its token cache). */
	for (round = 0; round < 3; round++)
		for (i = 0; i < NREPLICAS; i++)
			assert_int_equal(team_get_as(cl->d[i], tok), 200);
	r = itest_req(cl->d[0], "DELETE", itest_strf(cl->d[0], "/v1/tokens/%s", id),
		      cl->d[0]->admin, NULL);
	ITEST_STATUS(r, 204);
	/* The replica that revoked refuses at once... */
	assert_int_equal(team_get_as(cl->d[0], tok), 401);
	/* ...the others within a second (the revocation's NOTIFY)... */
	t0 = itest_now_ms();
	for (i = 1; i < NREPLICAS; i++) {
		long st;

		while ((st = team_get_as(cl->d[i], tok)) == 200 && itest_now_ms() - t0 < 1000)
			itest_sleep_ms(5);
		if (st != 401)
			fprintf(stderr, "replica %d still answers %ld for a revoked token\n", i, st);
		assert_int_equal(st, 401);
	}
	fprintf(stderr, "revocation reached every replica within %lld ms\n",
		(long long)(itest_now_ms() - t0));
	/* ...and for good. */
	for (round = 0; round < 5; round++)
		for (i = 0; i < NREPLICAS; i++)
			assert_int_equal(team_get_as(cl->d[i], tok), 401);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replica_budget_race, setup_cluster,
						teardown_cluster),
		cmocka_unit_test_setup_teardown(test_replica_stale_read, setup_cluster,
						teardown_cluster),
		cmocka_unit_test_setup_teardown(test_replica_kill9, setup_cluster, teardown_cluster),
		cmocka_unit_test_setup_teardown(test_replica_token_revoke, setup_cluster,
						teardown_cluster),
		cmocka_unit_test_setup_teardown(test_replica_db_restart, setup_cluster,
						teardown_cluster),
	};

	itest_global_init();
	if (!itest_pg_enabled()) {
		fprintf(stderr, "test_replicas needs ITEST_PG=1 and PLINTH_TEST_PG_URL\n");
		return 1;
	}
	return cmocka_run_group_tests_name("integration-replicas", tests, NULL, NULL);
}
