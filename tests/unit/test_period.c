/* test_period.c - calendar-aligned budget periods in UTC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/period.h"
#include "core/timeutil.h"

static int64_t at(const char *s)
{
	int64_t t = 0;
	if (time_parse_rfc3339(s, &t) != 0)
		fail_msg("bad test instant %s", s);
	return t;
}

static void expect_bounds(enum period_kind k, const char *t, const char *start, const char *end)
{
	int64_t s = 0, e = 0;
	period_bounds(k, at(t), &s, &e);
	char sb[TIME_FMT_LEN], eb[TIME_FMT_LEN];
	time_format_rfc3339(s, sb);
	time_format_rfc3339(e, eb);
	if (s != at(start) || e != at(end))
		fail_msg("%s %s: got [%s, %s), want [%s, %s)", period_kind_name(k), t, sb, eb, start,
			 end);
}

static void test_monthly(void **state)
{
	(void)state;
	expect_bounds(PERIOD_MONTHLY, "2026-11-29T20:40:00Z", "2026-11-01T00:00:00Z",
		      "2026-12-01T00:00:00Z");
	expect_bounds(PERIOD_MONTHLY, "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z",
		      "2027-01-01T00:00:00Z");
	expect_bounds(PERIOD_MONTHLY, "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z",
		      "2027-02-01T00:00:00Z");
	/* Leap February is 29 days, a common one 28. */
	expect_bounds(PERIOD_MONTHLY, "2024-02-29T12:00:00Z", "2024-02-01T00:00:00Z",
		      "2024-03-01T00:00:00Z");
	expect_bounds(PERIOD_MONTHLY, "2026-02-28T23:59:59Z", "2026-02-01T00:00:00Z",
		      "2026-03-01T00:00:00Z");
	int64_t s, e;
	period_bounds(PERIOD_MONTHLY, at("2024-02-10T00:00:00Z"), &s, &e);
	assert_int_equal(e - s, 29 * 86400);
	period_bounds(PERIOD_MONTHLY, at("2026-02-10T00:00:00Z"), &s, &e);
	assert_int_equal(e - s, 28 * 86400);
}

static void test_quarterly(void **state)
{
	(void)state;
	expect_bounds(PERIOD_QUARTERLY, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
		      "2026-04-01T00:00:00Z");
	expect_bounds(PERIOD_QUARTERLY, "2026-03-31T23:59:59Z", "2026-01-01T00:00:00Z",
		      "2026-04-01T00:00:00Z");
	expect_bounds(PERIOD_QUARTERLY, "2026-04-01T00:00:00Z", "2026-04-01T00:00:00Z",
		      "2026-07-01T00:00:00Z");
	expect_bounds(PERIOD_QUARTERLY, "2026-08-15T10:00:00Z", "2026-07-01T00:00:00Z",
		      "2026-10-01T00:00:00Z");
	expect_bounds(PERIOD_QUARTERLY, "2026-12-31T23:59:59Z", "2026-10-01T00:00:00Z",
		      "2027-01-01T00:00:00Z");
}

static void test_yearly(void **state)
{
	(void)state;
	expect_bounds(PERIOD_YEARLY, "2026-07-20T00:00:00Z", "2026-01-01T00:00:00Z",
		      "2027-01-01T00:00:00Z");
	expect_bounds(PERIOD_YEARLY, "2024-12-31T23:59:59Z", "2024-01-01T00:00:00Z",
		      "2025-01-01T00:00:00Z");
	int64_t s, e;
	period_bounds(PERIOD_YEARLY, at("2024-06-01T00:00:00Z"), &s, &e);
	assert_int_equal(e - s, 366 * 86400);
}

static void test_weekly(void **state)
{
	(void)state;
	/* 2026-11-30 is a Monday. */
	expect_bounds(PERIOD_WEEKLY, "2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z",
		      "2026-12-07T00:00:00Z");
	expect_bounds(PERIOD_WEEKLY, "2026-11-29T23:59:59Z", "2026-11-23T00:00:00Z",
		      "2026-11-30T00:00:00Z");
	/* A week across the new year: Mon 2026-12-28 .. Mon 2027-01-04. */
	expect_bounds(PERIOD_WEEKLY, "2027-01-01T12:00:00Z", "2026-12-28T00:00:00Z",
		      "2027-01-04T00:00:00Z");
	/* The epoch was a Thursday. */
	int64_t s, e;
	period_bounds(PERIOD_WEEKLY, 0, &s, &e);
	assert_int_equal(s, -3 * 86400); /* Monday 1969-12-29 */
	assert_int_equal(e, 4 * 86400);
	period_bounds(PERIOD_WEEKLY, -1, &s, &e);
	assert_int_equal(s, -3 * 86400);
	/* Across leap February: Mon 2024-02-26 .. Mon 2024-03-04. */
	expect_bounds(PERIOD_WEEKLY, "2024-02-29T08:00:00Z", "2024-02-26T00:00:00Z",
		      "2024-03-04T00:00:00Z");
}

static void test_contains_everywhere(void **state)
{
	(void)state;
	const enum period_kind kinds[] = {PERIOD_WEEKLY, PERIOD_MONTHLY, PERIOD_QUARTERLY,
					  PERIOD_YEARLY};
	for (size_t k = 0; k < 4; k++) {
		for (int64_t t = 0; t < INT64_C(4102444800); t += INT64_C(987654)) {
			int64_t s, e, s2, e2;
			period_bounds(kinds[k], t, &s, &e);
			assert_true(s <= t && t < e);
			assert_int_equal(time_day_start(s), s);
			/* The next period starts where this one ends. */
			period_bounds(kinds[k], e, &s2, &e2);
			assert_int_equal(s2, e);
		}
	}
}

static void test_names(void **state)
{
	(void)state;
	enum period_kind k = PERIOD_YEARLY;
	assert_int_equal(period_kind_parse("weekly", &k), 0);
	assert_int_equal(k, PERIOD_WEEKLY);
	assert_int_equal(period_kind_parse("monthly", &k), 0);
	assert_int_equal(k, PERIOD_MONTHLY);
	assert_int_equal(period_kind_parse("quarterly", &k), 0);
	assert_int_equal(k, PERIOD_QUARTERLY);
	assert_int_equal(period_kind_parse("yearly", &k), 0);
	assert_int_equal(k, PERIOD_YEARLY);
	assert_int_equal(period_kind_parse("Monthly", &k), ERR_INVALID);
	assert_int_equal(period_kind_parse("", &k), ERR_INVALID);
	assert_int_equal(period_kind_parse("daily", &k), ERR_INVALID);
	assert_int_equal(period_kind_parse(NULL, &k), ERR_INVALID);
	assert_int_equal(k, PERIOD_YEARLY);
	assert_string_equal(period_kind_name(PERIOD_WEEKLY), "weekly");
	assert_string_equal(period_kind_name(PERIOD_MONTHLY), "monthly");
	assert_string_equal(period_kind_name(PERIOD_QUARTERLY), "quarterly");
	assert_string_equal(period_kind_name(PERIOD_YEARLY), "yearly");
}

static void test_floor_ceil(void **state)
{
	(void)state;
	assert_int_equal(period_floor(PERIOD_MONTHLY, at("2026-02-10T05:00:00Z")),
			 at("2026-02-01T00:00:00Z"));
	assert_int_equal(period_ceil(PERIOD_MONTHLY, at("2026-02-10T05:00:00Z")),
			 at("2026-03-01T00:00:00Z"));
	/* A period start is its own floor and ceiling. */
	assert_int_equal(period_ceil(PERIOD_MONTHLY, at("2026-03-01T00:00:00Z")),
			 at("2026-03-01T00:00:00Z"));
	assert_int_equal(period_floor(PERIOD_MONTHLY, at("2026-03-01T00:00:00Z")),
			 at("2026-03-01T00:00:00Z"));
}

/* Live reservations of three weekly periods move into the monthly period
 * that contains one of them: that row's own departure and the arrival merge
 * into one step, and the steps stay in ascending (lock) order. */
static void test_plan_merge(void **state)
{
	struct period_plan p = {NULL, 0, 0, 0};
	int64_t w1 = at("2026-01-26T00:00:00Z"), w2 = at("2026-02-02T00:00:00Z");
	int64_t w3 = at("2026-02-09T00:00:00Z"), m = at("2026-02-01T00:00:00Z");

	(void)state;
	period_plan_arrive(&p, m); /* nothing left: nothing arrives */
	assert_int_equal(p.n, 0);
	assert_int_equal(period_plan_leave(&p, w3, 300), 0);
	assert_int_equal(period_plan_leave(&p, w1, 100), 0);
	assert_int_equal(period_plan_leave(&p, m, 50), 0);
	assert_int_equal(period_plan_leave(&p, w2, 20), 0);
	period_plan_arrive(&p, m);
	assert_int_equal(p.total, 470);
	assert_int_equal(p.n, 4);
	assert_int_equal(p.d[0].ps, w1);
	assert_int_equal(p.d[0].delta, -100);
	assert_int_equal(p.d[1].ps, m);
	assert_int_equal(p.d[1].delta, 420); /* -50 + 470 */
	assert_int_equal(p.d[2].ps, w2);
	assert_int_equal(p.d[2].delta, -20);
	assert_int_equal(p.d[3].ps, w3);
	assert_int_equal(p.d[3].delta, -300);
	free(p.d);
}

/* Many periods (the plan grows) and a total that would overflow. */
static void test_plan_grow_overflow(void **state)
{
	struct period_plan p = {NULL, 0, 0, 0};

	(void)state;
	for (int64_t i = 40; i > 0; i--)
		assert_int_equal(period_plan_leave(&p, i * 86400, i), 0);
	period_plan_arrive(&p, 1000 * 86400);
	assert_int_equal(p.n, 41);
	assert_true(p.cap >= p.n);
	for (size_t i = 0; i + 1 < p.n; i++)
		assert_true(p.d[i].ps < p.d[i + 1].ps);
	assert_int_equal(p.d[40].delta, 40 * 41 / 2);
	assert_int_equal(period_plan_leave(&p, 2000 * 86400, INT64_MAX), ERR_OVERFLOW);
	free(p.d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_monthly),
		cmocka_unit_test(test_quarterly),
		cmocka_unit_test(test_yearly),
		cmocka_unit_test(test_weekly),
		cmocka_unit_test(test_contains_everywhere),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_floor_ceil),
		cmocka_unit_test(test_plan_merge),
		cmocka_unit_test(test_plan_grow_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
