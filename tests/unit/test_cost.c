/* test_cost.c - the cost formula: exactness, half-up rounding, overflow. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/cost.h"
#include "core/err.h"
#include "core/money.h"

static int64_t cost(int64_t price, int64_t gpus, int64_t us)
{
	int64_t out = -42;
	int rc = cost_compute(price, gpus, us, &out);
	if (rc != 0)
		fail_msg("cost_compute(%lld, %lld, %lld) = %d", (long long)price, (long long)gpus,
			 (long long)us, rc);
	return out;
}

static void test_exact(void **state)
{
	(void)state;
	/* 8 x 6.88 x 24 h = 1320.96 */
	assert_int_equal(cost(6880000, 8, 24 * USEC_PER_HOUR), INT64_C(1320960000));
	/* 8 x 3.430888 x 1 h = 27.447104 */
	assert_int_equal(cost(3430888, 8, USEC_PER_HOUR), 27447104);
	assert_int_equal(cost(6880000, 1, USEC_PER_SEC), 1911); /* 6.88/3600 = 1911.1 */
	assert_int_equal(cost(0, 8, USEC_PER_HOUR), 0);
	assert_int_equal(cost(6880000, 0, USEC_PER_HOUR), 0);
	assert_int_equal(cost(6880000, 8, 0), 0);
}

static void test_round_half_up(void **state)
{
	(void)state;
	/* price 1 micro, 1 GPU: cost = us / 3.6e9. */
	assert_int_equal(cost(1, 1, 1799999999), 0);
	assert_int_equal(cost(1, 1, 1800000000), 1); /* exactly .5 rounds up */
	assert_int_equal(cost(1, 1, 1800000001), 1);
	assert_int_equal(cost(1, 1, 5399999999), 1);
	assert_int_equal(cost(1, 1, 5400000000), 2); /* 1.5 -> 2 */
	/* 1.8 micros/h x 1 h / ... : 3 x 0.5 = 1.5 -> 2 */
	assert_int_equal(cost(3, 1, 1800000000), 2);
}

static void test_monotonic(void **state)
{
	(void)state;
	/* An actual cost (shorter) never exceeds the estimate. */
	int64_t est = cost(3430888, 7, 13 * USEC_PER_HOUR);
	for (int64_t us = 0; us <= 13 * USEC_PER_HOUR; us += 997 * USEC_PER_SEC) {
		int64_t a = cost(3430888, 7, us);
		assert_true(a <= est);
		assert_true(a <= cost(3430888, 7, us + USEC_PER_SEC));
	}
}

static void test_invalid_and_overflow(void **state)
{
	(void)state;
	int64_t out = -42;
	assert_int_equal(cost_compute(-1, 1, 1, &out), ERR_INVALID);
	assert_int_equal(cost_compute(1, -1, 1, &out), ERR_INVALID);
	assert_int_equal(cost_compute(1, 1, -1, &out), ERR_INVALID);
	assert_int_equal(out, -42);
	/* Exactly MONEY_MAX_MICROS is allowed; one micro more is not. */
	assert_int_equal(cost_compute(MONEY_MAX_MICROS, 1, USEC_PER_HOUR, &out), 0);
	assert_int_equal(out, MONEY_MAX_MICROS);
	out = -42;
	assert_int_equal(cost_compute(MONEY_MAX_MICROS, 2, USEC_PER_HOUR, &out), ERR_OVERFLOW);
	assert_int_equal(cost_compute(MONEY_MAX_MICROS, 1, USEC_PER_HOUR + 3600, &out), ERR_OVERFLOW);
	/* Products far beyond 128 bits are refused, not wrapped. */
	assert_int_equal(cost_compute(INT64_MAX, INT64_MAX, INT64_MAX, &out), ERR_OVERFLOW);
	assert_int_equal(cost_compute(MONEY_MAX_MICROS, INT32_MAX, 168 * USEC_PER_HOUR, &out),
			 ERR_OVERFLOW);
	assert_int_equal(out, -42);
}

static void test_runtime_from_hours(void **state)
{
	(void)state;
	int64_t us = -42;
	assert_int_equal(cost_runtime_from_hours(1.0, 168, &us), 0);
	assert_int_equal(us, USEC_PER_HOUR);
	assert_int_equal(cost_runtime_from_hours(0.5, 168, &us), 0);
	assert_int_equal(us, USEC_PER_HOUR / 2);
	assert_int_equal(cost_runtime_from_hours(0.1, 168, &us), 0);
	assert_int_equal(us, 360000000);
	assert_int_equal(cost_runtime_from_hours(0.000001, 168, &us), 0);
	assert_int_equal(us, 3600);
	assert_int_equal(cost_runtime_from_hours(167.999999, 168, &us), 0);
	assert_int_equal(us, INT64_C(167999999) * 3600);
	assert_int_equal(cost_runtime_from_hours(168.0, 168, &us), 0);
	assert_int_equal(us, 168 * USEC_PER_HOUR);

	us = -42;
	assert_int_equal(cost_runtime_from_hours(0.0, 168, &us), ERR_INVALID);
	assert_int_equal(cost_runtime_from_hours(-1.0, 168, &us), ERR_INVALID);
	assert_int_equal(cost_runtime_from_hours(168.000001, 168, &us), ERR_INVALID);
	assert_int_equal(cost_runtime_from_hours(0.0000001, 168, &us), ERR_INVALID);
	assert_int_equal(cost_runtime_from_hours(1.0000005, 168, &us), ERR_INVALID);
	assert_int_equal(cost_runtime_from_hours((double)NAN, 168, &us), ERR_INVALID);
	assert_int_equal(cost_runtime_from_hours((double)INFINITY, 168, &us), ERR_INVALID);
	assert_int_equal(us, -42);
}

static void test_gpu_microhours(void **state)
{
	(void)state;
	int64_t out = -42;
	assert_int_equal(cost_gpu_microhours(8, USEC_PER_HOUR, &out), 0);
	assert_int_equal(out, 8000000);
	assert_int_equal(cost_gpu_microhours(1, 1799, &out), 0);
	assert_int_equal(out, 0);
	assert_int_equal(cost_gpu_microhours(1, 1800, &out), 0);
	assert_int_equal(out, 1); /* half up */
	assert_int_equal(cost_gpu_microhours(INT64_MAX, INT64_MAX, &out), ERR_OVERFLOW);
	assert_int_equal(out, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact),
		cmocka_unit_test(test_round_half_up),
		cmocka_unit_test(test_monotonic),
		cmocka_unit_test(test_invalid_and_overflow),
		cmocka_unit_test(test_runtime_from_hours),
		cmocka_unit_test(test_gpu_microhours),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
