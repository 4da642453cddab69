/* test_money.c - money_parse and money_format: the strict wire format;
 * money_format_round: the same amounts rounded for a person to read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/money.h"

static void expect_parse(const char *s, int64_t want)
{
	int64_t v = -42;
	int rc = money_parse(s, &v);
	if (rc != 0)
		fail_msg("money_parse(\"%s\") = %d, want ok", s, rc);
	assert_int_equal(v, want);
}

static void expect_refused(const char *s, int want_rc)
{
	int64_t v = -42;
	int rc = money_parse(s, &v);
	if (rc != want_rc)
		fail_msg("money_parse(\"%s\") = %d, want %d", s, rc, want_rc);
	assert_int_equal(v, -42); /* *out untouched on failure */
}

static void test_parse_valid(void **state)
{
	(void)state;
	expect_parse("0", 0);
	expect_parse("0.000001", 1);
	expect_parse("0.5", 500000);
	expect_parse("12.5", 12500000);
	expect_parse("50000", INT64_C(50000000000));
	expect_parse("0.003414", 3414);
	expect_parse("7.10", 7100000);
	expect_parse("10.00", 10000000);
	expect_parse("0.50", 500000);
	expect_parse("6.88", 6880000);
	expect_parse("3.430888", 3430888);
	expect_parse("1.123456", 1123456);
}

/* Money strings are canonical decimals: a leading zero only as the whole
 * integer part ("0.5"), never "01.00" (issue 11, finding 12). */
static void test_parse_leading_zeros(void **state)
{
	(void)state;
	const char *bad[] = {"01.00", "00", "007.10", "00.5", "0000000000000000000000001", "01",
			     "000000000000000000000000000000000000000000000001.5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused(bad[i], ERR_INVALID);
	expect_parse("0", 0);
	expect_parse("0.0", 0);
	expect_parse("100", INT64_C(100000000));
}

static void test_parse_syntax(void **state)
{
	(void)state;
	const char *bad[] = {"", ".5", "5.", "-1", "+1", "1e3", " 1", "1 ", "1.1234567",
			     "1..0", "1.2.3", "abc", "1,5", "0x10", "1.-5", "\t1", "1\n", "-0",
			     "1.0000000"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused(bad[i], ERR_INVALID);
	int64_t v = 0;
	assert_int_equal(money_parse(NULL, &v), ERR_INVALID);
	/* Bad syntax wins over size: still invalid, not overflow. */
	expect_refused("99999999999999999999999x", ERR_INVALID);
	expect_refused("99999999999999999999999.1234567", ERR_INVALID);
}

static void test_parse_limits(void **state)
{
	(void)state;
	/* MONEY_MAX_MICROS is exactly one trillion units. */
	expect_parse("1000000000000", MONEY_MAX_MICROS);
	expect_parse("1000000000000.000000", MONEY_MAX_MICROS);
	expect_parse("999999999999.999999", MONEY_MAX_MICROS - 1);
	expect_refused("1000000000000.000001", ERR_OVERFLOW);
	expect_refused("1000000000001", ERR_OVERFLOW);
	/* Around INT64_MAX micros = 9223372036854.775807 units. */
	expect_refused("9223372036854.775807", ERR_OVERFLOW);
	expect_refused("9223372036854.775808", ERR_OVERFLOW);
	expect_refused("9223372036855", ERR_OVERFLOW);
	expect_refused("18446744073709551616", ERR_OVERFLOW);
	expect_refused("99999999999999999999999999999999999999", ERR_OVERFLOW);
}

static void expect_format(int64_t micros, const char *want)
{
	char buf[MONEY_FMT_LEN];
	memset(buf, 'x', sizeof(buf));
	int n = money_format(micros, buf, sizeof(buf));
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void test_format(void **state)
{
	(void)state;
	expect_format(0, "0.00");
	expect_format(1, "0.000001");
	expect_format(3414, "0.003414");
	expect_format(10000, "0.01");
	expect_format(12500000, "12.50");
	expect_format(12510000, "12.51");
	expect_format(12512000, "12.512");
	expect_format(INT64_C(50000000000), "50000.00");
	expect_format(-1500000, "-1.50");
	expect_format(-1, "-0.000001");
	expect_format(-3414, "-0.003414");
	expect_format(MONEY_MAX_MICROS, "1000000000000.00");
	expect_format(INT64_MAX, "9223372036854.775807");
	expect_format(INT64_MIN, "-9223372036854.775808");
}

static void test_format_small_buffer(void **state)
{
	(void)state;
	char buf[8];
	memcpy(buf, "unchang", 8);
	/* "12.50" needs 6 bytes. */
	assert_int_equal(money_format(12500000, buf, 5), ERR_INVALID);
	assert_string_equal(buf, "unchang");
	assert_int_equal(money_format(12500000, buf, 6), 5);
	assert_string_equal(buf, "12.50");
	assert_int_equal(money_format(0, NULL, 10), ERR_INVALID);
}

static void expect_round(int64_t micros, int places, const char *want)
{
	char buf[MONEY_FMT_LEN];
	memset(buf, 'x', sizeof(buf));
	int n = money_format_round(micros, places, buf, sizeof(buf));
	if (n != (int)strlen(want) || strcmp(buf, want) != 0)
		fail_msg("money_format_round(%lld, %d) = %d \"%s\", want \"%s\"",
			 (long long)micros, places, n, n > 0 ? buf : "", want);
}

static void test_format_round(void **state)
{
	(void)state;
	/* Cents, half-up from the exact decimal (the refusal texts). */
	expect_round(640819200, 2, "640.82");
	expect_round(393439804, 2, "393.44");
	expect_round(5000, 2, "0.01");
	expect_round(4999, 2, "0.00");
	expect_round(12345000, 2, "12.35");
	expect_round(999995000, 2, "1000.00"); /* the carry reaches the units */
	expect_round(-5000, 2, "-0.01");
	expect_round(-4999, 2, "0.00"); /* never "-0.00" */
	expect_round(-1504999, 2, "-1.50");
	/* Up to 4 decimals, trailing zeros trimmed to 2 (prices per GPU-hour). */
	expect_round(1668800, 4, "1.6688");
	expect_round(6880000, 4, "6.88");
	expect_round(7912000, 4, "7.912");
	expect_round(1668850, 4, "1.6689");
	expect_round(1668849, 4, "1.6688");
	expect_round(3414, 6, "0.003414"); /* 6 is money_format */
	expect_round(INT64_MAX, 2, "9223372036854.78");
	expect_round(INT64_MIN, 2, "-9223372036854.78");
	expect_round(INT64_MAX, 5, "9223372036854.77581");
	/* Out of range. */
	char buf[MONEY_FMT_LEN];
	assert_int_equal(money_format_round(1, 1, buf, sizeof(buf)), ERR_INVALID);
	assert_int_equal(money_format_round(1, 7, buf, sizeof(buf)), ERR_INVALID);
	assert_int_equal(money_format_round(12500000, 2, buf, 5), ERR_INVALID);
}

static void test_round_trip(void **state)
{
	(void)state;
	const int64_t vals[] = {0, 1, 10, 999999, 1000000, 3430888, INT64_C(123456789012),
				MONEY_MAX_MICROS - 1, MONEY_MAX_MICROS};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char buf[MONEY_FMT_LEN];
		int64_t back = -1;
		assert_true(money_format(vals[i], buf, sizeof(buf)) > 0);
		assert_int_equal(money_parse(buf, &back), 0);
		assert_int_equal(back, vals[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_syntax),
		cmocka_unit_test(test_parse_leading_zeros),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_small_buffer),
		cmocka_unit_test(test_format_round),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
