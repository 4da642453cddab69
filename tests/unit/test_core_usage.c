/* test_core_usage.c - an allocation's billed use and THE per-UTC-day split
 * (src/core/usage.c): the remainder on the last day, the cap at the max
 * runtime, an empty span, a stop from the callback; the rollups' sums of
 * completed allocations (usage_rollup_add). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/cost.h"
#include "core/err.h"
#include "core/ledger.h"
#include "core/timeutil.h"
#include "core/usage.h"

#define DAY TIME_DAY
#define T0 INT64_C(1767225600) /* 2026-01-01T00:00:00Z */

struct parts {
	int n;
	int64_t day[16], money[16], gpu[16];
	int stop_at; /* the part whose callback returns 7 (0: never) */
};

static int collect(void *ctx, int64_t day, int64_t money, int64_t gpu_mh)
{
	struct parts *p = ctx;

	if (p->n >= 16)
		fail_msg("more than 16 parts");
	p->day[p->n] = day;
	p->money[p->n] = money;
	p->gpu[p->n] = gpu_mh;
	p->n++;
	return p->n == p->stop_at ? 7 : 0;
}

static void test_day_ceil(void **state)
{
	(void)state;
	assert_int_equal(time_day_ceil(T0), T0);
	assert_int_equal(time_day_ceil(T0 + 1), T0 + DAY);
	assert_int_equal(time_day_ceil(T0 - 1), T0);
	assert_int_equal(time_day_ceil(-1), 0);
}

/* 100 micros over 3 days, a third each: 33, 33 and the remainder 34. */
static void test_split_remainder_on_last_day(void **state)
{
	struct parts p = {0};

	(void)state;
	assert_int_equal(usage_split_days(T0, T0 + 3 * DAY, 100, 10, collect, &p), 0);
	assert_int_equal(p.n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(p.day[i], T0 + i * DAY);
	assert_int_equal(p.money[0], 33);
	assert_int_equal(p.money[1], 33);
	assert_int_equal(p.money[2], 34);
	assert_int_equal(p.gpu[0], 3);
	assert_int_equal(p.gpu[1], 3);
	assert_int_equal(p.gpu[2], 4);
}

/* Split by seconds: 6 h before midnight and 18 h after take 1/4 and 3/4. */
static void test_split_by_seconds(void **state)
{
	struct parts p = {0};
	int64_t us = T0 + DAY - 6 * 3600, ue = us + DAY, sum = 0;

	(void)state;
	assert_int_equal(usage_split_days(us, ue, 1000001, 4000, collect, &p), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.day[0], T0);
	assert_int_equal(p.day[1], T0 + DAY);
	assert_int_equal(p.money[0], 250000); /* 1000001 / 4, truncated */
	assert_int_equal(p.money[1], 750001);
	assert_int_equal(p.gpu[0], 1000);
	assert_int_equal(p.gpu[1], 3000);
	for (int i = 0; i < p.n; i++)
		sum += p.money[i];
	assert_int_equal(sum, 1000001);
}

/* The largest money and a long span: 128-bit products, exact total. */
static void test_split_large(void **state)
{
	struct parts p = {0};
	int64_t money = INT64_MAX / 2, sum = 0;

	(void)state;
	assert_int_equal(usage_split_days(T0 + 5, T0 + 10 * DAY + 5, money, 0, collect, &p), 0);
	assert_int_equal(p.n, 11); /* the first and the last day are partial */
	for (int i = 0; i < p.n; i++)
		sum += p.money[i];
	assert_int_equal(sum, money);
}

static void test_split_empty_span_and_stop(void **state)
{
	struct parts p = {0};

	(void)state;
	assert_int_equal(usage_split_days(T0 + 100, T0 + 100, 42, 5, collect, &p), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.day[0], T0);
	assert_int_equal(p.money[0], 42);
	assert_int_equal(p.gpu[0], 5);
	p = (struct parts){.stop_at = 2};
	assert_int_equal(usage_split_days(T0, T0 + 5 * DAY, 50, 0, collect, &p), 7);
	assert_int_equal(p.n, 2);
}

/* A completed allocation that ran past its max runtime is billed up to it. */
static void test_completed_capped(void **state)
{
	int64_t ue = 0, gpu = 0;

	(void)state;
	/* 2 GPUs, max 1 h, ran 3 h: ends at start + 1 h, 2 GPU-hours. */
	assert_int_equal(usage_completed(2, USEC_PER_HOUR, T0, T0 + 3 * 3600, &ue, &gpu), 0);
	assert_int_equal(ue, T0 + 3600);
	assert_int_equal(gpu, 2000000);
	/* Ran 30 min of it: its own end, 1 GPU-hour. */
	assert_int_equal(usage_completed(2, USEC_PER_HOUR, T0, T0 + 1800, &ue, &gpu), 0);
	assert_int_equal(ue, T0 + 1800);
	assert_int_equal(gpu, 1000000);
	/* A max runtime of 1.5 s bills up to the second after it. */
	assert_int_equal(usage_completed(1, 1500000, T0, T0 + 10, &ue, &gpu), 0);
	assert_int_equal(ue, T0 + 2);
	assert_int_equal(gpu, 417); /* 1.5 s = 416.67 micro-hours, half up */
}

static void test_running(void **state)
{
	int64_t ue = 0, money = 0, gpu = 0, want = 0;

	(void)state;
	/* 4 GPUs at 2.000000 per GPU-hour, max 10 h, 90 min in. */
	assert_int_equal(usage_running(2000000, 4, 10 * USEC_PER_HOUR, T0, T0 + 5400, &ue, &money,
				       &gpu),
			 0);
	assert_int_equal(ue, T0 + 5400);
	assert_int_equal(money, 12000000);
	assert_int_equal(gpu, 6000000);
	assert_int_equal(ledger_accrued(2000000, 4, 10 * USEC_PER_HOUR, T0, T0 + 5400, &want), 0);
	assert_int_equal(money, want);
	/* Past its max runtime: capped like a completion. */
	assert_int_equal(usage_running(2000000, 4, USEC_PER_HOUR, T0, T0 + 7200, &ue, &money, &gpu),
			 0);
	assert_int_equal(ue, T0 + 3600);
	assert_int_equal(money, 8000000);
	assert_int_equal(gpu, 4000000);
	/* now before its start (a clock step back): nothing used yet. */
	assert_int_equal(usage_running(2000000, 4, USEC_PER_HOUR, T0, T0 - 60, &ue, &money, &gpu),
			 0);
	assert_int_equal(ue, T0);
	assert_int_equal(gpu, 0);
}

/* Rollup sums row i of table t: its key is instant `at`, its sums these. */
static void assert_roll(const struct cost_table *t, size_t i, int64_t at, int64_t spent,
			int64_t gpu)
{
	char key[24];

	snprintf(key, sizeof(key), "%020lld", (long long)at);
	assert_true(i < t->n);
	assert_string_equal(t->rows[i].key, key);
	assert_true(t->rows[i].spent == spent);
	assert_true(t->rows[i].gpu_microhours == gpu);
	assert_true(t->rows[i].accrued == 0 && t->rows[i].reserved == 0);
}

/* Two completed allocations approved on 31 January: all of their cost on
 * the approval day and month; their use split across 31 January and
 * 1 February, and so across the two months. */
static void test_rollup_sums(void **state)
{
	struct cost_table s[USAGE_ROLL_N] = {{0}};
	int64_t jan31 = T0 + 30 * DAY, feb1 = T0 + 31 * DAY;

	(void)state;
	/* 2 GPUs from 18:00 to 06:00 (12 h, 6 h each day), 1200 micros. */
	assert_int_equal(usage_rollup_add(s, jan31 + 36000, 2, 24 * USEC_PER_HOUR, jan31 + 64800,
					  feb1 + 21600, 1200),
			 0);
	/* 1 GPU from 01:00 to 02:00 on 1 February, 100 micros. */
	assert_int_equal(usage_rollup_add(s, jan31 + 72000, 1, USEC_PER_HOUR, feb1 + 3600,
					  feb1 + 7200, 100),
			 0);
	assert_string_equal(s[USAGE_ROLL_DAY_APPROVED].rows[0].key, "00000000001769817600");
	assert_int_equal(s[USAGE_ROLL_DAY_APPROVED].n, 1);
	assert_roll(&s[USAGE_ROLL_DAY_APPROVED], 0, jan31, 1300, 25000000);
	assert_int_equal(s[USAGE_ROLL_MONTH_APPROVED].n, 1);
	assert_roll(&s[USAGE_ROLL_MONTH_APPROVED], 0, T0, 1300, 25000000);
	assert_int_equal(s[USAGE_ROLL_DAY].n, 2);
	assert_roll(&s[USAGE_ROLL_DAY], 0, jan31, 600, 12000000);
	assert_roll(&s[USAGE_ROLL_DAY], 1, feb1, 700, 13000000);
	assert_int_equal(s[USAGE_ROLL_MONTH].n, 2);
	assert_roll(&s[USAGE_ROLL_MONTH], 0, T0, 600, 12000000);
	assert_roll(&s[USAGE_ROLL_MONTH], 1, feb1, 700, 13000000);
	for (int t = 0; t < USAGE_ROLL_N; t++)
		free(s[t].rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_day_ceil),
		cmocka_unit_test(test_split_remainder_on_last_day),
		cmocka_unit_test(test_split_by_seconds),
		cmocka_unit_test(test_split_large),
		cmocka_unit_test(test_split_empty_span_and_stop),
		cmocka_unit_test(test_completed_capped),
		cmocka_unit_test(test_running),
		cmocka_unit_test(test_rollup_sums),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
