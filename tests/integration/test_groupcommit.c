/*
 * test_groupcommit.c - concurrent allocations that the PostgreSQL store
 * decides in shared transactions (group commit: one SAVEPOINT per request)
 * must answer exactly as if each had its own transaction: one request's
 * failure (here an Idempotency-Key reused with another body, which rolls
 * back only that request's part) never costs or changes another's outcome,
 * and the ledger matches what was acknowledged.  It runs against SQLite
 * too (suite integration), where the same answers are required.
 *
 * Threads never call cmocka assertions (they are not thread-safe): each
 * records its results and the main thread judges them.  It must never
 * accept a 5xx or a lost response.
 */
#include "itest.h"

#include <pthread.h>
#include <stdlib.h>

#define NTHREADS 64
#define PER_THREAD 2
#define NREQ (NTHREADS * PER_THREAD)
#define K 20 /* one-GPU, one-hour requests the plain team's budget fits */

struct result {
	long status;
	int curl_rc;
	char type[96]; /* problem name (after the last '/'), or "" */
	char id[96];   /* allocation id on success */
};

struct mix {
	const char *base_url;
	const char *token;
	pthread_barrier_t barrier;
	struct result results[NREQ];
};

struct worker {
	struct mix *mix;
	int index;
};

/* Even threads: plain requests on team "gc".  Odd threads: one
 * Idempotency-Key on team "gck" with two different bodies (1 or 2 GPUs). */
static const char *body_of(int thread)
{
	if (thread % 2 == 0)
		return "{\"team\":\"gc\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
		       "\"max_runtime_hours\":1}";
	if ((thread / 2) % 2 == 0)
		return "{\"team\":\"gck\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
		       "\"max_runtime_hours\":1}";
	return "{\"team\":\"gck\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":2,"
	       "\"max_runtime_hours\":1}";
}

static void *worker_main(void *arg)
{
	static const char *const keyed[] = {"Idempotency-Key: gc-key-1", NULL};
	struct worker *w = arg;
	struct mix *mix = w->mix;
	CURL *h = curl_easy_init(); /* owned by this thread */
	const char *body = body_of(w->index);

	pthread_barrier_wait(&mix->barrier);
	for (int i = 0; i < PER_THREAD; i++) {
		struct result *res = &mix->results[w->index * PER_THREAD + i];
		struct itest_resp r = {0};

		if (h == NULL) {
			res->curl_rc = CURLE_FAILED_INIT;
			continue;
		}
		itest_http(h, mix->base_url, "POST", "/v1/allocations", mix->token, body,
			   strlen(body), w->index % 2 ? keyed : NULL, &r);
		res->status = r.status;
		res->curl_rc = (int)r.curl_rc;
		if (r.json != NULL) {
			const char *type = itest_jstr(r.json, "type");
			const char *id = itest_jstr(r.json, "id");

			if (type != NULL && strrchr(type, '/') != NULL)
				snprintf(res->type, sizeof(res->type), "%s", strrchr(type, '/') + 1);
			if (id != NULL)
				snprintf(res->id, sizeof(res->id), "%s", id);
		}
		itest_resp_clear(&r);
	}
	if (h != NULL)
		curl_easy_cleanup(h);
	return NULL;
}

static json_t *get_json(struct itest_daemon *d, const char *path)
{
	struct itest_resp *r = itest_req(d, "GET", path, d->admin, NULL);

	ITEST_STATUS(r, 200);
	return r->json;
}

static void test_mixed_batches(void **state)
{
	struct itest_daemon *d = *state;
	struct mix *mix = itest_keep(d, calloc(1, sizeof(struct mix)));
	pthread_t tids[NTHREADS];
	struct worker workers[NTHREADS];
	int plain_ok = 0, plain_refused = 0, keyed_ok = 0, mismatch = 0, winner = -1;
	const char *keyed_id = NULL;
	json_t *t;

	assert_non_null(mix);
	itest_put_gpu(d, "g1", "1.00", 1000);
	itest_put_team(d, "gc", "20");       /* exactly K plain requests fit */
	itest_put_team(d, "gck", "1000000"); /* the keyed team never runs short */
	mix->base_url = d->base_url;
	mix->token = d->admin;
	assert_int_equal(pthread_barrier_init(&mix->barrier, NULL, NTHREADS), 0);
	for (int i = 0; i < NTHREADS; i++) {
		workers[i].mix = mix;
		workers[i].index = i;
		assert_int_equal(pthread_create(&tids[i], NULL, worker_main, &workers[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(tids[i], NULL), 0);
	pthread_barrier_destroy(&mix->barrier);

	for (int i = 0; i < NREQ; i++) {
		const struct result *res = &mix->results[i];
		int thread = i / PER_THREAD;

		if (res->curl_rc != CURLE_OK || res->status >= 500) {
			fprintf(stderr, "request %d: HTTP %ld %s (curl %d)\n", i, res->status,
				res->type, res->curl_rc);
			fail();
		}
		if (thread % 2 == 0) {
			if (res->status == 201)
				plain_ok++;
			else if (res->status == 409 && strcmp(res->type, "budget-exceeded") == 0)
				plain_refused++;
			continue;
		}
		if (res->status == 201) {
			int variant = (thread / 2) % 2;

			/* Every keyed approval is the same allocation, of one body. */
			if (keyed_id == NULL)
				keyed_id = res->id;
			ITEST_STREQ(res->id, keyed_id);
			if (winner < 0)
				winner = variant;
			assert_int_equal(variant, winner);
			keyed_ok++;
		} else if (res->status == 422 && strcmp(res->type, "idempotency-mismatch") == 0) {
			mismatch++;
		}
	}
	if (plain_ok != K || plain_refused != NREQ / 2 - K || keyed_ok != NREQ / 4 ||
	    mismatch != NREQ / 4) {
		fprintf(stderr,
			"plain: %d approved (want %d), %d refused (want %d); keyed: %d replayed "
			"(want %d), %d mismatches (want %d)\n",
			plain_ok, K, plain_refused, NREQ / 2 - K, keyed_ok, NREQ / 4, mismatch,
			NREQ / 4);
		fail();
	}
	t = get_json(d, "/v1/teams/gc");
	ITEST_MONEY(t, "reserved", "20.00");
	ITEST_MONEY(t, "available", "0.00");
	ITEST_MONEY(get_json(d, "/v1/teams/gck"), "reserved", winner == 0 ? "1.00" : "2.00");
	assert_int_equal(itest_jint(get_json(d, "/v1/gpu-types/g1"), "allocated"),
			 K + (winner == 0 ? 1 : 2));
	assert_int_equal(json_array_size(itest_jget(
				 get_json(d, "/v1/allocations?team=gc&limit=500"), "items")),
			 K);
	assert_int_equal(json_array_size(itest_jget(
				 get_json(d, "/v1/allocations?team=gck&limit=500"), "items")),
			 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mixed_batches, itest_setup_daemon, itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-groupcommit", tests, NULL, NULL);
}
