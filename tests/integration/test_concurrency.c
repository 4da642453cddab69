/*
 * test_concurrency.c - many client threads racing the real daemon.  The
 * ledger rule must hold exactly: with room for K requests, exactly K are
 * approved, the rest refused with the right 409, never a 5xx, and the team
 * and GPU views agree with what was acknowledged.
 *
 * Threads never call cmocka assertions (they are not thread-safe): each
 * records its results and the main thread judges them.
 */
#include "itest.h"

#include <pthread.h>
#include <stdlib.h>

#define NTHREADS 64
#define PER_THREAD 2
#define NREQ (NTHREADS * PER_THREAD)
#define K 20

struct result {
	long status;
	int curl_rc;
	char type[96]; /* problem name (after the last '/'), or "" */
	char id[96];   /* allocation id on success */
	char actual[32];
};

struct race {
	const char *base_url;
	const char *token;
	const char *method;
	const char *path;
	const char *body;
	const char *const *headers;
	pthread_barrier_t barrier;
	struct result results[NREQ];
};

struct worker {
	struct race *race;
	int index;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct race *race = w->race;
	CURL *h = curl_easy_init(); /* owned by this thread */
	int i;

	pthread_barrier_wait(&race->barrier);
	for (i = 0; i < PER_THREAD; i++) {
		struct result *res = &race->results[w->index * PER_THREAD + i];
		struct itest_resp r = {0};

		if (h == NULL) {
			res->curl_rc = CURLE_FAILED_INIT;
			continue;
		}
		itest_http(h, race->base_url, race->method, race->path, race->token, race->body,
			   race->body ? strlen(race->body) : 0, race->headers, &r);
		res->status = r.status;
		res->curl_rc = (int)r.curl_rc;
		if (r.json != NULL) {
			const char *type = itest_jstr(r.json, "type");
			const char *id = itest_jstr(r.json, "id");
			const char *actual = itest_jstr(r.json, "actual_cost");

			if (type != NULL && strrchr(type, '/') != NULL)
				snprintf(res->type, sizeof(res->type), "%s", strrchr(type, '/') + 1);
			if (id != NULL)
				snprintf(res->id, sizeof(res->id), "%s", id);
			if (actual != NULL)
				snprintf(res->actual, sizeof(res->actual), "%s", actual);
		}
		itest_resp_clear(&r);
	}
	if (h != NULL)
		curl_easy_cleanup(h);
	return NULL;
}

/* Runs NREQ identical requests from NTHREADS threads released together. */
static struct race *race_run(struct itest_daemon *d, const char *method, const char *path,
			     const char *body, const char *const *headers)
{
	struct race *race = itest_keep(d, calloc(1, sizeof(struct race)));
	pthread_t tids[NTHREADS];
	struct worker workers[NTHREADS];
	int i;

	assert_non_null(race);
	race->base_url = d->base_url;
	race->token = d->admin;
	race->method = method;
	race->path = path;
	race->body = body;
	race->headers = headers;
	assert_int_equal(pthread_barrier_init(&race->barrier, NULL, NTHREADS), 0);
	for (i = 0; i < NTHREADS; i++) {
		workers[i].race = race;
		workers[i].index = i;
		assert_int_equal(pthread_create(&tids[i], NULL, worker_main, &workers[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(tids[i], NULL), 0);
	pthread_barrier_destroy(&race->barrier);
	return race;
}

/* Counts results; fails on any transport error or 5xx. */
static void race_count(const struct race *race, long status, const char *type, int *count)
{
	int i;

	*count = 0;
	for (i = 0; i < NREQ; i++) {
		const struct result *res = &race->results[i];

		if (res->curl_rc != CURLE_OK) {
			fprintf(stderr, "request %d: no response (curl %d)\n", i, res->curl_rc);
			fail();
		}
		if (res->status >= 500) {
			fprintf(stderr, "request %d: HTTP %ld %s\n", i, res->status, res->type);
			fail();
		}
		if (res->status == status && (type == NULL || strcmp(res->type, type) == 0))
			(*count)++;
	}
}

static json_t *get_json(struct itest_daemon *d, const char *path)
{
	struct itest_resp *r = itest_req(d, "GET", path, d->admin, NULL);

	ITEST_STATUS(r, 200);
	return r->json;
}

static void test_budget_race(void **state)
{
	struct itest_daemon *d = *state;
	struct race *race;
	int ok, refused, i, j;
	json_t *t;

	itest_put_gpu(d, "c1", "1.00", 1000);
	itest_put_team(d, "race", "20"); /* exactly K = 20 one-hour, one-GPU requests */
	race = race_run(d, "POST", "/v1/allocations",
			"{\"team\":\"race\",\"project\":\"p\",\"gpu_type\":\"c1\",\"gpu_count\":1,"
			"\"max_runtime_hours\":1}",
			NULL);
	race_count(race, 201, NULL, &ok);
	race_count(race, 409, "budget-exceeded", &refused);
	if (ok != K || refused != NREQ - K) {
		fprintf(stderr, "budget race: %d approved (want %d), %d budget-exceeded (want %d)\n",
			ok, K, refused, NREQ - K);
		fail();
	}
	/* Every approved id is distinct. */
	for (i = 0; i < NREQ; i++)
		for (j = i + 1; j < NREQ; j++)
			if (race->results[i].status == 201 && race->results[j].status == 201)
				assert_string_not_equal(race->results[i].id, race->results[j].id);

	t = get_json(d, "/v1/teams/race");
	ITEST_MONEY(t, "reserved", "20.00");
	ITEST_MONEY(t, "spent", "0.00");
	ITEST_MONEY(t, "available", "0.00");
	assert_true(itest_jmoney(t, "spent") + itest_jmoney(t, "reserved") <=
		    itest_jmoney(t, "budget.amount"));
	assert_int_equal(itest_jint(get_json(d, "/v1/gpu-types/c1"), "allocated"), K);
	assert_int_equal(json_array_size(itest_jget(
				 get_json(d, "/v1/allocations?team=race&limit=500"), "items")),
			 K);
}

static void test_capacity_race(void **state)
{
	struct itest_daemon *d = *state;
	struct race *race;
	int ok, refused;
	json_t *g;

	itest_put_gpu(d, "c2", "1.00", K);
	itest_put_team(d, "rich", "1000000");
	race = race_run(d, "POST", "/v1/allocations",
			"{\"team\":\"rich\",\"project\":\"p\",\"gpu_type\":\"c2\",\"gpu_count\":1,"
			"\"max_runtime_hours\":1}",
			NULL);
	race_count(race, 201, NULL, &ok);
	race_count(race, 409, "capacity-exceeded", &refused);
	if (ok != K || refused != NREQ - K) {
		fprintf(stderr, "capacity race: %d approved (want %d), %d capacity-exceeded (want %d)\n",
			ok, K, refused, NREQ - K);
		fail();
	}
	g = get_json(d, "/v1/gpu-types/c2");
	assert_int_equal(itest_jint(g, "allocated"), K);
	assert_int_equal(itest_jint(g, "capacity"), K);
	assert_int_equal(itest_jint(g, "available"), 0);
	ITEST_MONEY(get_json(d, "/v1/teams/rich"), "reserved", "20.00");
}

/* The same Idempotency-Key from 128 requests at once: one allocation. */
static void test_idempotency_race(void **state)
{
	struct itest_daemon *d = *state;
	static const char *const hdrs[] = {"Idempotency-Key: race-key-1", NULL};
	struct race *race;
	const char *first = NULL;
	int i, ok;

	itest_put_gpu(d, "c3", "2.00", 100);
	itest_put_team(d, "idem", "1000");
	race = race_run(d, "POST", "/v1/allocations",
			"{\"team\":\"idem\",\"project\":\"p\",\"gpu_type\":\"c3\",\"gpu_count\":3,"
			"\"max_runtime_hours\":1}",
			hdrs);
	race_count(race, 201, NULL, &ok);
	assert_int_equal(ok, NREQ);
	for (i = 0; i < NREQ; i++) {
		if (first == NULL)
			first = race->results[i].id;
		ITEST_STREQ(race->results[i].id, first);
	}
	ITEST_MONEY(get_json(d, "/v1/teams/idem"), "reserved", "6.00");
	assert_int_equal(itest_jint(get_json(d, "/v1/gpu-types/c3"), "allocated"), 3);
}

/* 128 concurrent completes of one running allocation charge it once. */
static void test_complete_race(void **state)
{
	struct itest_daemon *d = *state;
	struct itest_resp *r;
	struct race *race;
	char id[96];
	const char *path;
	int ok, i;
	int64_t approved;
	char started[32], ended[32];

	itest_put_gpu(d, "c4", "3.60", 10);
	itest_put_team(d, "once", "100");
	r = itest_allocate(d, d->admin, "once", "p", "c4", 2, "1");
	ITEST_STATUS(r, 201);
	snprintf(id, sizeof(id), "%s", itest_jstr(r->json, "id"));
	approved = itest_time_parse(itest_jstr(r->json, "approved_at"));
	itest_time_format(approved, started);
	itest_time_format(approved + 5, ended); /* an end may be at most 5 s ahead */
	r = itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/start", id), d->admin,
		      itest_strf(d, "{\"started_at\":\"%s\"}", started));
	ITEST_STATUS(r, 200);

	path = itest_strf(d, "/v1/allocations/%s/complete", id);
	race = race_run(d, "POST", path, itest_strf(d, "{\"ended_at\":\"%s\"}", ended), NULL);
	race_count(race, 200, NULL, &ok);
	assert_int_equal(ok, NREQ);
	/* 2 x 3.60/h x 5 s = 0.01 */
	for (i = 0; i < NREQ; i++)
		ITEST_STREQ(race->results[i].actual, "0.01");
	ITEST_MONEY(get_json(d, "/v1/teams/once"), "spent", "0.01");
	ITEST_MONEY(get_json(d, "/v1/teams/once"), "reserved", "0.00");
	assert_int_equal(itest_jint(get_json(d, "/v1/gpu-types/c4"), "allocated"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_budget_race, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_capacity_race, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_idempotency_race, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_complete_race, itest_setup_daemon, itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-concurrency", tests, NULL, NULL);
}
