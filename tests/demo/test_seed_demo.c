/*
 * test_seed_demo.c - the demo organisation (src/seed/demo.c) seeded into a
 * fresh SQLite store at instants chosen to be hard for it: the first
 * seconds of a month and of a quarter (when a period's whole share must be
 * reservations of live jobs), the last minute of a month, a leap day, and
 * a date in the middle.  At each, every team's committed share of its
 * current period is in the range the demo promises, the GPU types hold no
 * more than their capacity, and a second seeding writes nothing.
 * test_demo.py checks the same daemon-wide through the API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "seed/seed.h"

/* The committed share (spent + reserved) of each team's current period, in
 * parts per million, that the demo promises. */
static const struct {
	const char *team;
	int64_t lo_ppm, hi_ppm;
} want[] = {
	{"speech", 550000, 700000},      {"vision", 350000, 480000},
	{"recsys", 300000, 400000},      {"nlp", 800000, 900000}, /* past its 80 % alert */
	{"forecasting", 900000, 950000}, /* close to its limit */
};

static int check_gpu(void *ctx, const struct gpu_type *g)
{
	int64_t *live = ctx;
	assert_true(g->allocated >= 0 && g->allocated <= g->capacity);
	*live += g->allocated;
	return 0;
}

static int count_status(void *ctx, const struct allocation *a)
{
	int *by = ctx;

	by[a->status]++;
	return 0;
}

/* Allocations of each status (all pages). */
static void count_statuses(struct store_conn *c, int *by)
{
	char next[STORE_ID_LEN * 2] = "", cur[STORE_ID_LEN * 2];
	struct alloc_filter f = {.status = -1, .limit = STORE_MAX_PAGE};

	do {
		assert_int_equal(store_conn_ops(c)->alloc_list(c, &f, count_status, by, next), 0);
		snprintf(cur, sizeof(cur), "%s", next);
		f.cursor = cur;
	} while (next[0]);
}

static int count_team(void *ctx, const struct team *t)
{
	(void)t;
	(*(int *)ctx)++;
	return 0;
}

/* Seeds at `now` into a new store and checks the shape. */
static void seed_at(int64_t now)
{
	char dir[] = "/tmp/plinth-demo-XXXXXX", url[128], path[96], detail[STORE_DETAIL_LEN] = "";
	struct store *s = NULL;
	struct store_conn *c = NULL;
	struct seed_people people;
	int64_t live = 0;
	int teams = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/plinth.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	assert_int_equal(store_open(url, 2, &s, detail), 0);
	assert_int_equal(store_conn_acquire(s, &c), 0);
	const struct store_ops *ops = store_conn_ops(c);
	assert_int_equal(seed_catalog(c, now, detail), 0);
	int rc = seed_demo(c, now, &people, detail);
	if (rc != 0)
		fail_msg("seed_demo at %lld: %s: %s", (long long)now, err_name(rc), detail);
	assert_true(people.seeded);
	assert_int_equal(strncmp(people.member.secret, "plt_", 4), 0);
	assert_int_equal(strncmp(people.finance.secret, "plt_", 4), 0);
	assert_int_equal(people.member.role, ROLE_MEMBER);
	assert_int_equal(people.finance.role, ROLE_FINANCE);

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct team t;
		struct team_ledger l;
		assert_int_equal(ops->team_get(c, want[i].team, &t), 0);
		assert_int_equal(ops->team_ledger(c, &t, now, &l), 0);
		int64_t ppm = (int64_t)((__int128)(l.spent + l.reserved) * 1000000 / t.budget_micros);
		if (ppm < want[i].lo_ppm || ppm > want[i].hi_ppm)
			fail_msg("at %lld team %s committed %lld ppm, want %lld..%lld", (long long)now,
				 want[i].team, (long long)ppm, (long long)want[i].lo_ppm,
				 (long long)want[i].hi_ppm);
	}
	assert_int_equal(ops->gpu_type_list(c, check_gpu, &live), 0);
	assert_true(live > 0); /* running and approved allocations hold GPUs now */
	/* Work going on now, as test_demo.py expects of the daemon: jobs
	 * running, and one approved whose pods have not started yet. */
	int by[ALLOC_EXPIRED + 1] = {0};
	count_statuses(c, by);
	if (by[ALLOC_RUNNING] < 3 || by[ALLOC_APPROVED] < 1)
		fail_msg("at %lld: %d running, %d approved", (long long)now, by[ALLOC_RUNNING],
			 by[ALLOC_APPROVED]);

	/* A second start writes nothing. */
	assert_int_equal(seed_demo(c, now + 60, &people, detail), 0);
	assert_false(people.seeded);
	assert_int_equal(ops->team_list(c, NULL, 0, count_team, &teams), 0);
	assert_int_equal(teams, (int)(sizeof(want) / sizeof(want[0])));

	store_conn_release(s, c);
	store_close(s);
	char side[128];
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
	assert_int_equal(rmdir(dir), 0);
}

static void test_mid_month(void **state)
{
	(void)state;
	seed_at(time_from_civil(2026, 12, 6) + 12 * 3600 + 17 * 60);
}

/* The demo's live work depends on the hour (test_demo.py ran at one where
 * no job was waiting for its pods): two days, every 97 minutes. */
static void test_around_the_clock(void **state)
{
	(void)state;
	for (int64_t t = time_from_civil(2026, 12, 6); t < time_from_civil(2026, 12, 8); t += 97 * 60)
		seed_at(t);
}

static void test_first_second_of_quarter(void **state)
{
	(void)state;
	seed_at(time_from_civil(2027, 1, 1));
}

static void test_first_minutes_of_month(void **state)
{
	(void)state;
	seed_at(time_from_civil(2026, 11, 1) + 20 * 60);
}

static void test_last_minute_of_quarter(void **state)
{
	(void)state;
	seed_at(time_from_civil(2026, 10, 1) - 60);
}

static void test_leap_day(void **state)
{
	(void)state;
	seed_at(time_from_civil(2028, 2, 29) + 9 * 3600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mid_month),
		cmocka_unit_test(test_around_the_clock),
		cmocka_unit_test(test_first_second_of_quarter),
		cmocka_unit_test(test_first_minutes_of_month),
		cmocka_unit_test(test_last_minute_of_quarter),
		cmocka_unit_test(test_leap_day),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
