/*
 * test_store_pool.c - the connection pool's deadline (issue 11, finding 3):
 * store_conn_acquire_within() gives up with ERR_UNAVAILABLE when no
 * connection frees in time, and hands over one released while it waits;
 * a connection it cannot open is reported (store_set_conn_fail_log), an
 * out-of-memory one too (calloc wrapped: -Wl,--wrap=calloc in meson.build).
 * A real SQLite file in a mkdtemp directory; nothing else is touched.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "store/store.h"

/* calloc of this binary and the store library linked into it: when armed
 * with k, the k-th call from then on fails (an out-of-memory), once. */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static int calloc_fail_in;

void *__wrap_calloc(size_t n, size_t size)
{
	if (calloc_fail_in > 0 && --calloc_fail_in == 0)
		return NULL;
	return __real_calloc(n, size);
}

struct fx {
	char dir[64];
	char path[128];
	struct store *s;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char url[160], detail[STORE_DETAIL_LEN] = "";
	if (f == NULL)
		return -1;
	strcpy(f->dir, "/tmp/plinth-pool-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/plinth.db", f->dir);
	snprintf(url, sizeof(url), "sqlite:%s", f->path);
	if (store_open(url, 1, &f->s, detail) != 0) { /* a pool of one connection */
		fprintf(stderr, "store_open: %s\n", detail);
		rmdir(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	const char *sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[160];
	store_close(f->s);
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* With the only connection out, a bounded acquire gives up after (not
 * before) its deadline; once released, it is handed out again at once. */
static void test_acquire_deadline(void **state)
{
	struct fx *f = *state;
	struct store_conn *a = NULL, *b = NULL;
	assert_int_equal(store_conn_acquire_within(f->s, 0, &a), 0);
	int64_t t0 = mono_ms();
	assert_int_equal(store_conn_acquire_within(f->s, 200, &b), ERR_UNAVAILABLE);
	int64_t waited = mono_ms() - t0;
	printf("# pool: bounded acquire (200 ms) gave up after %lld ms\n", (long long)waited);
	assert_true(waited >= 190);
	assert_null(b);
	assert_int_equal(store_conn_acquire_within(f->s, 0, &b), ERR_UNAVAILABLE);
	store_conn_release(f->s, a);
	assert_int_equal(store_conn_acquire_within(f->s, 0, &b), 0);
	assert_ptr_equal(a, b);
	store_conn_release(f->s, b);
}

struct holder {
	struct store *s;
	struct store_conn *c;
	int hold_ms;
};

static void *release_later(void *arg)
{
	struct holder *h = arg;
	struct timespec ts = {h->hold_ms / 1000, (long)(h->hold_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	store_conn_release(h->s, h->c);
	return NULL;
}

/* A connection released while a bounded acquire waits is handed to it. */
static void test_acquire_gets_a_released_connection(void **state)
{
	struct fx *f = *state;
	struct holder h = {f->s, NULL, 100};
	struct store_conn *c = NULL;
	pthread_t tid;
	assert_int_equal(store_conn_acquire_within(f->s, 0, &h.c), 0);
	assert_int_equal(pthread_create(&tid, NULL, release_later, &h), 0);
	int rc = store_conn_acquire_within(f->s, 30000, &c);
	pthread_join(tid, NULL);
	assert_int_equal(rc, 0);
	assert_ptr_equal(c, h.c);
	store_conn_release(f->s, c);
}

static char conn_fail_seen[STORE_DETAIL_LEN];

static void conn_fail_record(const char *why)
{
	snprintf(conn_fail_seen, sizeof(conn_fail_seen), "%s", why);
}

/* A connection the pool cannot open is reported with the database's words
 * (the caller only gets an error code), and its slot is not lost. */
static void test_open_failure_reported(void **state)
{
	struct fx *f = *state;
	struct store *s = NULL;
	struct store_conn *a = NULL, *b = NULL;
	char url[160], moved[80], detail[STORE_DETAIL_LEN] = "";

	snprintf(url, sizeof(url), "sqlite:%s", f->path);
	snprintf(moved, sizeof(moved), "%s.gone", f->dir);
	assert_int_equal(store_open(url, 2, &s, detail), 0);
	store_set_conn_fail_log(conn_fail_record);
	assert_int_equal(store_conn_acquire_within(s, 0, &a), 0); /* the one store_open made */
	assert_int_equal(rename(f->dir, moved), 0);
	assert_int_equal(store_conn_acquire_within(s, 0, &b), ERR_STORE);
	assert_int_equal(rename(moved, f->dir), 0);
	store_set_conn_fail_log(NULL);
	assert_null(b);
	printf("# pool: reported \"%s\"\n", conn_fail_seen);
	assert_non_null(strstr(conn_fail_seen, f->path));
	assert_non_null(strstr(conn_fail_seen, "unable to open"));
	assert_int_equal(store_conn_acquire_within(s, 0, &b), 0); /* the slot came back */
	store_conn_release(s, a);
	store_conn_release(s, b);
	store_close(s);
}

/* A connection the pool cannot open for lack of memory is reported with
 * words (the driver's calloc fails before it set any), and its slot is not
 * lost.  The report was uninitialized stack memory before. */
static void test_open_out_of_memory_reported(void **state)
{
	struct fx *f = *state;
	struct store *s = NULL;
	struct store_conn *a = NULL, *b = NULL;
	char url[160], detail[STORE_DETAIL_LEN] = "";

	snprintf(url, sizeof(url), "sqlite:%s", f->path);
	assert_int_equal(store_open(url, 2, &s, detail), 0);
	assert_int_equal(store_conn_acquire_within(s, 0, &a), 0); /* the one store_open made */
	memset(conn_fail_seen, 'x', sizeof(conn_fail_seen) - 1); /* what a stale buffer holds */
	conn_fail_seen[sizeof(conn_fail_seen) - 1] = '\0';
	store_set_conn_fail_log(conn_fail_record);
	calloc_fail_in = 1; /* the driver's connection record */
	assert_int_equal(store_conn_acquire_within(s, 0, &b), ERR_NOMEM);
	calloc_fail_in = 0;
	store_set_conn_fail_log(NULL);
	assert_null(b);
	printf("# pool: reported \"%s\"\n", conn_fail_seen);
	assert_string_equal(conn_fail_seen, "out of memory");
	assert_int_equal(store_conn_acquire_within(s, 0, &b), 0); /* the slot came back */
	store_conn_release(s, a);
	store_conn_release(s, b);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest t[] = {
		cmocka_unit_test_setup_teardown(test_acquire_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_gets_a_released_connection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_failure_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_out_of_memory_reported, setup, teardown),
	};
	return cmocka_run_group_tests_name("store-pool", t, NULL, NULL);
}
