/* test_ledger.c - the approval rule, accrual, actual cost and forecast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/cost.h"
#include "core/err.h"
#include "core/ledger.h"
#include "core/money.h"

#define U(x) ((int64_t)(x) * MONEY_MICROS_PER_UNIT)
#define DAY INT64_C(86400)
#define HOUR INT64_C(3600)

static struct ledger_decision decide(int64_t budget, int64_t spent, int64_t reserved, int64_t est,
				     int64_t capacity, int64_t allocated, int64_t gpus)
{
	struct ledger_check c = {
		.budget = budget, .spent = spent, .reserved = reserved, .estimated = est,
		.capacity = capacity, .allocated = allocated, .gpu_count = gpus,
	};
	struct ledger_decision d;
	ledger_decide(&c, &d);
	return d;
}

static void test_budget_exact_fit(void **state)
{
	(void)state;
	/* spent + reserved + estimated == budget: approved. */
	struct ledger_decision d = decide(U(50000), U(30000), U(15000), U(5000), 16, 0, 8);
	assert_true(d.approved);
	assert_true(d.budget_ok);
	assert_true(d.capacity_ok);
	assert_int_equal(d.available, U(5000));
	assert_int_equal(d.gpus_available, 16);

	/* One micro more: refused on budget only. */
	d = decide(U(50000), U(30000), U(15000), U(5000) + 1, 16, 0, 8);
	assert_false(d.approved);
	assert_false(d.budget_ok);
	assert_true(d.capacity_ok);
	assert_int_equal(d.available, U(5000));

	/* Zero-cost requests fit a full budget exactly. */
	d = decide(U(100), U(60), U(40), 0, 1, 0, 1);
	assert_true(d.approved);
	assert_int_equal(d.available, 0);
}

static void test_capacity_exact_fit(void **state)
{
	(void)state;
	struct ledger_decision d = decide(U(1000), 0, 0, U(1), 16, 8, 8);
	assert_true(d.approved);
	assert_true(d.capacity_ok);
	assert_int_equal(d.gpus_available, 8);

	d = decide(U(1000), 0, 0, U(1), 16, 9, 8);
	assert_false(d.approved);
	assert_true(d.budget_ok);
	assert_false(d.capacity_ok);
	assert_int_equal(d.gpus_available, 7);

	/* No capacity configured: nothing fits. */
	d = decide(U(1000), 0, 0, U(1), 0, 0, 1);
	assert_false(d.capacity_ok);
	assert_int_equal(d.gpus_available, 0);

	/* Both refused at once. */
	d = decide(U(10), U(10), 0, 1, 4, 4, 1);
	assert_false(d.approved);
	assert_false(d.budget_ok);
	assert_false(d.capacity_ok);
}

static void test_over_committed(void **state)
{
	(void)state;
	/* An admin lowered the budget below what is committed: nothing new, available 0. */
	struct ledger_decision d = decide(U(100), U(80), U(50), 0, 16, 20, 0);
	assert_false(d.budget_ok);
	assert_int_equal(d.available, 0);
	assert_int_equal(d.gpus_available, 0);
	assert_false(d.capacity_ok);
}

static void test_extremes(void **state)
{
	(void)state;
	/* Every amount at MONEY_MAX_MICROS: sums exceed nothing in 128 bits. */
	struct ledger_decision d = decide(MONEY_MAX_MICROS, MONEY_MAX_MICROS, MONEY_MAX_MICROS,
					  MONEY_MAX_MICROS, INT32_MAX, INT32_MAX, INT32_MAX);
	assert_false(d.budget_ok);
	assert_false(d.capacity_ok);
	assert_int_equal(d.available, 0);
	d = decide(MONEY_MAX_MICROS, 0, 0, MONEY_MAX_MICROS, INT32_MAX, 0, INT32_MAX);
	assert_true(d.approved);
	assert_int_equal(d.available, MONEY_MAX_MICROS);
}

static void test_accrued(void **state)
{
	(void)state;
	int64_t out = -42;
	/* 8 x H100 at 6.88 for one hour = 55.04. */
	assert_int_equal(ledger_accrued(6880000, 8, 24 * USEC_PER_HOUR, 1000, 1000 + HOUR, &out), 0);
	assert_int_equal(out, U(55) + 40000);
	/* Capped at the max runtime. */
	assert_int_equal(ledger_accrued(6880000, 8, 24 * USEC_PER_HOUR, 1000, 1000 + 48 * HOUR, &out), 0);
	assert_int_equal(out, INT64_C(1320960000));
	/* Before the start: nothing. */
	assert_int_equal(ledger_accrued(6880000, 8, 24 * USEC_PER_HOUR, 1000, 999, &out), 0);
	assert_int_equal(out, 0);
	assert_int_equal(ledger_accrued(6880000, 8, 24 * USEC_PER_HOUR, 1000, 1000, &out), 0);
	assert_int_equal(out, 0);
	/* Per second: 1 s of one GPU at 3.6/h = 0.001. */
	assert_int_equal(ledger_accrued(3600000, 1, HOUR * USEC_PER_SEC, 0, 1, &out), 0);
	assert_int_equal(out, 1000);
	/* Huge elapsed times do not overflow the microsecond conversion. */
	assert_int_equal(ledger_accrued(3600000, 1, HOUR * USEC_PER_SEC, INT64_MIN / 2, INT64_MAX / 2, &out), 0);
	assert_int_equal(out, U(3) + 600000);
	out = -42;
	assert_int_equal(ledger_accrued(MONEY_MAX_MICROS, 1000, 24 * USEC_PER_HOUR, 0, 24 * HOUR, &out),
			 ERR_OVERFLOW);
	assert_int_equal(out, -42);
}

static void test_actual(void **state)
{
	(void)state;
	int64_t out = -42;
	assert_int_equal(ledger_actual(6880000, 8, 24 * USEC_PER_HOUR, 1000, 1000 + 2 * HOUR, &out), 0);
	assert_int_equal(out, U(110) + 80000);
	assert_int_equal(ledger_actual(6880000, 8, 2 * USEC_PER_HOUR, 1000, 1000 + 30 * HOUR, &out), 0);
	assert_int_equal(out, U(110) + 80000); /* capped */
	assert_int_equal(ledger_actual(6880000, 8, 2 * USEC_PER_HOUR, 1000, 1000, &out), 0);
	assert_int_equal(out, 0);
	out = -42;
	assert_int_equal(ledger_actual(6880000, 8, 2 * USEC_PER_HOUR, 1000, 999, &out), ERR_INVALID);
	assert_int_equal(out, -42);

	/* The actual cost never exceeds the estimate. */
	int64_t est = 0;
	assert_int_equal(cost_compute(3430888, 5, 7 * USEC_PER_HOUR, &est), 0);
	for (int64_t s = 0; s <= 9 * HOUR; s += 61) {
		assert_int_equal(ledger_actual(3430888, 5, 7 * USEC_PER_HOUR, 0, s, &out), 0);
		assert_true(out <= est);
	}
}

static void test_forecast(void **state)
{
	(void)state;
	int64_t burn = -1, fc = -1, ex = -1;
	const int64_t start = 1000 * DAY, end = start + 30 * DAY;

	/* 100 spent in 10 days: 10/day, 300 by the end, runs out of 1000 well after. */
	ledger_forecast(start, end, start + 10 * DAY, U(1000), U(100), 0, 0, &burn, &fc, &ex);
	assert_int_equal(burn, U(10));
	assert_int_equal(fc, U(300));
	assert_int_equal(ex, 0);

	/* Accrued counts as used (a running allocation's, within its reservation);
	 * a budget of 200 runs out 10 days from now. */
	ledger_forecast(start, end, start + 10 * DAY, U(200), U(60), U(40), U(40), &burn, &fc, &ex);
	assert_int_equal(burn, U(10));
	assert_int_equal(fc, U(300));
	assert_int_equal(ex, start + 20 * DAY);

	/* Accrued is part of reserved, not added to it: with 10 still available
	 * (260 - 100 spent - 150 reserved) the budget is not exhausted now. */
	ledger_forecast(start, end, start + 10 * DAY, U(260), U(100), U(50), U(150), &burn, &fc, &ex);
	assert_true(ex > start + 10 * DAY);
	assert_int_equal(ex, start + 10 * DAY + DAY * 10 / 15);

	/* Reserved money is committed: it raises the floor and brings exhaustion closer. */
	ledger_forecast(start, end, start + 10 * DAY, U(400), U(100), 0, U(250), &burn, &fc, &ex);
	assert_int_equal(fc, U(350));
	assert_int_equal(ex, start + 15 * DAY);

	/* Already at the budget: exhausted now. */
	ledger_forecast(start, end, start + 10 * DAY, U(300), U(100), 0, U(200), &burn, &fc, &ex);
	assert_int_equal(ex, start + 10 * DAY);
	ledger_forecast(start, end, start + 10 * DAY, U(300), U(400), 0, 0, &burn, &fc, &ex);
	assert_int_equal(ex, start + 10 * DAY);

	/* Nothing used: no burn, forecast = reserved, never runs out. */
	ledger_forecast(start, end, start + 10 * DAY, U(300), 0, 0, U(50), &burn, &fc, &ex);
	assert_int_equal(burn, 0);
	assert_int_equal(fc, U(50));
	assert_int_equal(ex, 0);

	/* The first minutes count as one hour: 24 in the first minute is 576/day. */
	ledger_forecast(start, end, start + 60, U(100000), U(24), 0, 0, &burn, &fc, &ex);
	assert_int_equal(burn, U(576));
	assert_int_equal(fc, U(24) + U(576) * (30 * DAY - 60) / DAY);

	/* Exhaustion is rounded up to the first second the budget is reached. */
	ledger_forecast(start, end, start + DAY, U(100) + 1, U(100), 0, 0, &burn, &fc, &ex);
	assert_int_equal(burn, U(100));
	assert_int_equal(ex, start + DAY + 1);

	/* After the period: the forecast is what was used. */
	ledger_forecast(start, end, end + 5 * DAY, U(1000), U(300), 0, 0, &burn, &fc, &ex);
	assert_int_equal(burn, U(10));
	assert_int_equal(fc, U(300));
	assert_int_equal(ex, 0);

	/* Extreme inputs do not wrap. */
	ledger_forecast(start, end, start + 60, MONEY_MAX_MICROS, MONEY_MAX_MICROS, MONEY_MAX_MICROS,
			MONEY_MAX_MICROS, &burn, &fc, &ex);
	assert_true(burn > 0 && fc > 0);
	assert_int_equal(ex, start + 60);
}

static void test_forecast_recent(void **state)
{
	(void)state;
	int64_t burn = -1, fc = -1, ex = -1;
	const int64_t start = 1000 * DAY, end = start + 30 * DAY, now = start + 20 * DAY;

	/* 100 used over the period, but 70 of it in the last 7 days: 10/day now,
	 * so the 10 remaining days add 100 (the period average would add 50). */
	ledger_forecast_recent(start, end, now, U(1000), U(100), 0, 0, U(70), 7 * DAY, &burn, &fc,
			       &ex);
	assert_int_equal(burn, U(10));
	assert_int_equal(fc, U(200));
	assert_int_equal(ex, 0);

	/* A team that stopped last week projects no further burn. */
	ledger_forecast_recent(start, end, now, U(1000), U(100), 0, U(20), 0, 7 * DAY, &burn, &fc,
			       &ex);
	assert_int_equal(burn, 0);
	assert_int_equal(fc, U(120));
	assert_int_equal(ex, 0);

	/* At the recent pace plus what is reserved, 250 runs out in 10 days. */
	ledger_forecast_recent(start, end, now, U(250), U(100), U(20), U(30), U(35), 7 * DAY, &burn,
			       &fc, &ex);
	assert_int_equal(burn, U(5));
	assert_int_equal(ex, now + 20 * DAY > end ? 0 : now + 20 * DAY);
	assert_int_equal(fc, U(170));

	/* A window shorter than an hour counts as one hour. */
	ledger_forecast_recent(start, end, now, U(100000), 0, 0, 0, U(1), 60, &burn, &fc, &ex);
	assert_int_equal(burn, U(24));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_exact_fit),
		cmocka_unit_test(test_capacity_exact_fit),
		cmocka_unit_test(test_over_committed),
		cmocka_unit_test(test_extremes),
		cmocka_unit_test(test_accrued),
		cmocka_unit_test(test_actual),
		cmocka_unit_test(test_forecast),
		cmocka_unit_test(test_forecast_recent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
