/*
 * test_crash.c - durability of acknowledged changes.
 *
 * kill -9 under load: every allocation the daemon acknowledged (201) and
 * every cancel it acknowledged (200) must survive a restart on the same data
 * directory, and the ledger must still balance (reserved == sum of the
 * estimates of approved allocations, spent + reserved <= budget,
 * allocated <= capacity).
 *
 * SIGTERM under load: requests already being served are answered (2xx/4xx,
 * not reset), the daemon exits 0, and what it acknowledged is on disk.
 *
 * Threads never call cmocka assertions; they record and the main thread judges.
 */
#include "itest.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>

#define LOAD_THREADS 16
#define MAX_RECORDS 20000 /* per thread; a bound, not a target */
#define BUDGET "1000000"
/* Connections younger than this at SIGTERM may be reset (see below). */
#define RESET_GRACE_MS 100

enum rec_kind {
	REC_APPROVED,       /* 201 acknowledged, never cancelled by us */
	REC_CANCELLED,      /* 201 then cancel acknowledged with 200 */
	REC_CANCEL_UNKNOWN, /* 201 then cancel sent but no answer (crash) */
};

struct record {
	char id[80];
	enum rec_kind kind;
};

/* One request's outcome in the SIGTERM test. */
struct outcome {
	long status;
	int curl_rc;
	int64_t started_ms;
	int64_t connected_ms;
	int64_t ended_ms;
};

struct load {
	const char *base_url;
	const char *token;
	unsigned flags;
	atomic_int stop;
	atomic_int acked;      /* 201s so far, all threads */
	atomic_int bad_status; /* 5xx or unexpected statuses */
};

struct load_thread {
	struct load *load;
	int index;
	struct record *recs; /* owned by the main thread */
	int nrecs;
	struct outcome *outs; /* owned by the main thread */
	int nouts;
	char last_bad[256];
};

static void outcome_add(struct load_thread *t, const struct itest_resp *r, int64_t started)
{
	struct outcome *o;

	if (t->outs == NULL || t->nouts >= MAX_RECORDS)
		return;
	o = &t->outs[t->nouts++];
	o->status = r->status;
	o->curl_rc = (int)r->curl_rc;
	o->started_ms = started;
	o->connected_ms = r->connected_ms;
	o->ended_ms = itest_now_ms();
}

/* Allocates in a loop; odd threads cancel every allocation they got. */
static void *load_main(void *arg)
{
	struct load_thread *t = arg;
	struct load *load = t->load;
	CURL *h = curl_easy_init(); /* owned by this thread */
	const char *body = "{\"team\":\"crash\",\"project\":\"load\",\"gpu_type\":\"k1\","
			   "\"gpu_count\":1,\"max_runtime_hours\":0.5}";
	int iter;

	if (h == NULL)
		return NULL;
	for (iter = 0; iter < 1000000 && !atomic_load(&load->stop) && t->nrecs < MAX_RECORDS; iter++) {
		struct itest_resp r = {0};
		int64_t started = itest_now_ms();
		int cancel = t->index % 2 == 1;

		itest_http_ex(h, load->base_url, "POST", "/v1/allocations", load->token, body,
			      strlen(body), NULL, load->flags, &r);
		outcome_add(t, &r, started);
		if (r.curl_rc != CURLE_OK) {
			itest_resp_clear(&r);
			itest_sleep_ms(5);
			continue;
		}
		if (r.status == 201 && itest_jstr(r.json, "id") != NULL) {
			struct record *rec = &t->recs[t->nrecs++];

			snprintf(rec->id, sizeof(rec->id), "%s", itest_jstr(r.json, "id"));
			rec->kind = REC_APPROVED;
			atomic_fetch_add(&load->acked, 1);
		} else if (r.status >= 500 || r.status < 200 || (r.status >= 300 && r.status < 400)) {
			atomic_fetch_add(&load->bad_status, 1);
			snprintf(t->last_bad, sizeof(t->last_bad), "POST -> %ld %.200s", r.status, r.body);
		}
		itest_resp_clear(&r);

		if (cancel && t->nrecs > 0 && t->recs[t->nrecs - 1].kind == REC_APPROVED) {
			struct record *rec = &t->recs[t->nrecs - 1];
			char path[160];

			snprintf(path, sizeof(path), "/v1/allocations/%s/cancel", rec->id);
			rec->kind = REC_CANCEL_UNKNOWN;
			started = itest_now_ms();
			itest_http_ex(h, load->base_url, "POST", path, load->token, NULL, 0, NULL,
				      load->flags, &r);
			outcome_add(t, &r, started);
			if (r.curl_rc == CURLE_OK && r.status == 200)
				rec->kind = REC_CANCELLED;
			else if (r.curl_rc == CURLE_OK &&
				 (r.status >= 500 || r.status < 200 || r.status >= 300)) {
				atomic_fetch_add(&load->bad_status, 1);
				snprintf(t->last_bad, sizeof(t->last_bad), "cancel -> %ld %.200s",
					 r.status, r.body);
			}
			itest_resp_clear(&r);
		}
	}
	curl_easy_cleanup(h);
	return NULL;
}

struct load_run {
	struct load load;
	struct load_thread threads[LOAD_THREADS];
	pthread_t tids[LOAD_THREADS];
};

static struct load_run *load_start(struct itest_daemon *d, unsigned flags, int with_outcomes)
{
	struct load_run *run = itest_keep(d, calloc(1, sizeof(struct load_run)));
	int i;

	assert_non_null(run);
	run->load.base_url = d->base_url;
	run->load.token = d->admin;
	run->load.flags = flags;
	for (i = 0; i < LOAD_THREADS; i++) {
		struct load_thread *t = &run->threads[i];

		t->load = &run->load;
		t->index = i;
		t->recs = itest_keep(d, calloc(MAX_RECORDS, sizeof(struct record)));
		assert_non_null(t->recs);
		if (with_outcomes) {
			t->outs = itest_keep(d, calloc(MAX_RECORDS, sizeof(struct outcome)));
			assert_non_null(t->outs);
		}
	}
	for (i = 0; i < LOAD_THREADS; i++)
		assert_int_equal(pthread_create(&run->tids[i], NULL, load_main, &run->threads[i]), 0);
	return run;
}

static void load_join(struct load_run *run)
{
	int i;

	atomic_store(&run->load.stop, 1);
	for (i = 0; i < LOAD_THREADS; i++)
		assert_int_equal(pthread_join(run->tids[i], NULL), 0);
}

/* Waits until at least `acked` 201s or max_ms passed (bounded). */
static void load_wait(struct load_run *run, int acked, int max_ms)
{
	int64_t deadline = itest_now_ms() + max_ms;

	while (itest_now_ms() < deadline && atomic_load(&run->load.acked) < acked)
		itest_sleep_ms(20);
}

static json_t *get_json(struct itest_daemon *d, const char *path)
{
	struct itest_resp *r = itest_req(d, "GET", path, d->admin, NULL);

	ITEST_STATUS(r, 200);
	return r->json;
}

/* Checks every record against the restarted daemon and the ledger balance. */
static void verify_after_restart(struct itest_daemon *d, struct load_run *run)
{
	int i, j, approved = 0, cancelled = 0, unknown = 0;
	int64_t sum_est = 0, sum_gpus = 0;
	int listed = 0, pages = 0;
	const char *cursor = NULL;
	json_t *t, *g;

	for (i = 0; i < LOAD_THREADS; i++) {
		for (j = 0; j < run->threads[i].nrecs; j++) {
			const struct record *rec = &run->threads[i].recs[j];
			struct itest_resp r = {0};
			const char *st;

			assert_int_equal(itest_http(d->curl, d->base_url, "GET",
						    itest_strf(d, "/v1/allocations/%s", rec->id),
						    d->admin, NULL, 0, NULL, &r),
					 0);
			if (r.status != 200) {
				fprintf(stderr, "acknowledged allocation %s lost: HTTP %ld %s\n", rec->id,
					r.status, r.body);
				itest_resp_clear(&r);
				fail();
			}
			st = itest_jstr(r.json, "status");
			assert_non_null(st);
			if ((rec->kind == REC_APPROVED && strcmp(st, "approved") != 0) ||
			    (rec->kind == REC_CANCELLED && strcmp(st, "cancelled") != 0) ||
			    (rec->kind == REC_CANCEL_UNKNOWN && strcmp(st, "approved") != 0 &&
			     strcmp(st, "cancelled") != 0)) {
				fprintf(stderr, "allocation %s: status %s, recorded kind %d\n", rec->id, st,
					(int)rec->kind);
				itest_resp_clear(&r);
				fail();
			}
			approved += rec->kind == REC_APPROVED;
			cancelled += rec->kind == REC_CANCELLED;
			unknown += rec->kind == REC_CANCEL_UNKNOWN;
			itest_resp_clear(&r);
		}
	}
	fprintf(stderr, "verified %d approved, %d cancelled, %d cancel-in-flight allocations\n",
		approved, cancelled, unknown);

	/* reserved == sum of estimates of all approved allocations. */
	do {
		json_t *page, *it;
		size_t k;

		page = get_json(d, cursor ? itest_strf(d, "/v1/allocations?team=crash&status=approved"
							  "&limit=500&cursor=%s", cursor)
					  : "/v1/allocations?team=crash&status=approved&limit=500");
		json_array_foreach(itest_jget(page, "items"), k, it) {
			int64_t est = itest_jmoney(it, "estimated_cost");

			assert_true(est != INT64_MIN);
			ITEST_STREQ(itest_jstr(it, "status"), "approved");
			sum_est += est;
			sum_gpus += itest_jint(it, "gpu_count");
			listed++;
		}
		cursor = itest_jstr(page, "next_cursor");
	} while (cursor != NULL && ++pages < 1000);
	assert_true(listed >= approved);

	t = get_json(d, "/v1/teams/crash");
	if (itest_jmoney(t, "reserved") != sum_est) {
		fprintf(stderr, "team reserved %s != sum of %d approved estimates %lld micros\n",
			itest_jstr(t, "reserved"), listed, (long long)sum_est);
		fail();
	}
	assert_true(itest_jmoney(t, "spent") + itest_jmoney(t, "reserved") <=
		    itest_jmoney(t, "budget.amount"));
	g = get_json(d, "/v1/gpu-types/k1");
	assert_true(itest_jint(g, "allocated") <= itest_jint(g, "capacity"));
	assert_int_equal(itest_jint(g, "allocated"), sum_gpus);
}

static void check_bad_statuses(struct load_run *run)
{
	int i;

	if (atomic_load(&run->load.bad_status) == 0)
		return;
	for (i = 0; i < LOAD_THREADS; i++)
		if (run->threads[i].last_bad[0] != '\0')
			fprintf(stderr, "thread %d: %s\n", i, run->threads[i].last_bad);
	fail();
}

static void test_kill9_under_load(void **state)
{
	struct itest_daemon *d = *state;
	struct load_run *run;
	int round;

	itest_put_gpu(d, "k1", "1.00", 1000000);
	itest_put_team(d, "crash", BUDGET);

	/* Two crash rounds on the same data directory. */
	for (round = 0; round < 2; round++) {
		run = load_start(d, 0, 0);
		load_wait(run, 150, 8000);
		assert_int_equal(itest_daemon_kill(d), 0);
		load_join(run);
		fprintf(stderr, "round %d: %d acknowledged before SIGKILL\n", round,
			atomic_load(&run->load.acked));
		assert_true(atomic_load(&run->load.acked) > 0);
		check_bad_statuses(run);

		assert_int_equal(itest_daemon_restart(d), 0);
		verify_after_restart(d, run);
	}
}

static void test_sigterm_under_load(void **state)
{
	struct itest_daemon *d = *state;
	struct load_run *run;
	int64_t t_term;
	int i, j, answered = 0, in_flight = 0, refused = 0, late_resets = 0, status;

	itest_put_gpu(d, "k1", "1.00", 1000000);
	itest_put_team(d, "crash", BUDGET);

	run = load_start(d, ITEST_FRESH, 1);
	load_wait(run, 200, 8000);
	t_term = itest_now_ms();
	assert_int_equal(kill(d->pid, SIGTERM), 0);
	/* Keep the load going while the daemon drains, then reap it. */
	{
		int64_t deadline = itest_now_ms() + ITEST_STOP_TIMEOUT_MS;
		int st = 0;
		pid_t w = 0;

		while (itest_now_ms() < deadline && (w = waitpid(d->pid, &st, WNOHANG)) == 0)
			itest_sleep_ms(10);
		load_join(run);
		if (w != d->pid) {
			itest_daemon_kill(d);
			fprintf(stderr, "daemon did not stop within %d ms of SIGTERM\n",
				ITEST_STOP_TIMEOUT_MS);
			fail();
		}
		d->pid = 0;
		status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	if (status != 0) {
		itest_daemon_dump_log(d, 4096);
		fprintf(stderr, "exit status after SIGTERM: %d\n", status);
		fail();
	}
	check_bad_statuses(run);

	for (i = 0; i < LOAD_THREADS; i++) {
		for (j = 0; j < run->threads[i].nouts; j++) {
			const struct outcome *o = &run->threads[i].outs[j];

			if (o->curl_rc == CURLE_OK) {
				answered++;
				if (o->status < 200 || o->status >= 500 ||
				    (o->status >= 300 && o->status < 400)) {
					fprintf(stderr, "answer %ld during shutdown\n", o->status);
					fail();
				}
				if (o->connected_ms != 0 && o->connected_ms <= t_term && o->ended_ms > t_term)
					in_flight++;
				continue;
			}
			if (o->curl_rc == CURLE_COULDNT_CONNECT) {
				refused++;
				continue;
			}
			/*
			 * A transport error on a connection that was up well before
			 * SIGTERM is a request the daemon dropped instead of answering.
			 * Connections made shortly before the signal may still sit in
			 * the kernel's accept queue (or be accepted but not dispatched)
			 * when the listener closes; under this load that window was
			 * seen to reach ~6 ms, so only older connections count.
			 */
			if (o->connected_ms != 0 && o->connected_ms >= t_term - RESET_GRACE_MS) {
				late_resets++;
				continue;
			}
			if (o->connected_ms != 0) {
				fprintf(stderr,
					"request connected %lld ms before SIGTERM got curl error %d\n",
					(long long)(t_term - o->connected_ms), o->curl_rc);
				fail();
			}
		}
	}
	fprintf(stderr,
		"SIGTERM: %d answered (%d in flight at the signal), %d refused, %d reset within %d ms "
		"of the signal\n",
		answered, in_flight, refused, late_resets, RESET_GRACE_MS);
	assert_true(answered > 0);

	assert_int_equal(itest_daemon_restart(d), 0);
	verify_after_restart(d, run);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kill9_under_load, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_sigterm_under_load, itest_setup_daemon, itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-crash", tests, NULL, NULL);
}
