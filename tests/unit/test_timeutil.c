/* test_timeutil.c - civil dates and RFC 3339 without libc time zones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/timeutil.h"

static int64_t parse_ok(const char *s)
{
	int64_t t = -42;
	int rc = time_parse_rfc3339(s, &t);
	if (rc != 0)
		fail_msg("time_parse_rfc3339(\"%s\") = %d, want ok", s, rc);
	return t;
}

static void test_civil(void **state)
{
	(void)state;
	assert_int_equal(time_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(time_days_from_civil(1970, 1, 2), 1);
	assert_int_equal(time_days_from_civil(1969, 12, 31), -1);
	assert_int_equal(time_days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(time_from_civil(2026, 1, 1), INT64_C(1767225600));
	/* Leap years: 2024 and 2000 are, 2100 and 1900 are not. */
	assert_int_equal(time_days_from_civil(2024, 3, 1) - time_days_from_civil(2024, 2, 28), 2);
	assert_int_equal(time_days_from_civil(2000, 3, 1) - time_days_from_civil(2000, 2, 28), 2);
	assert_int_equal(time_days_from_civil(2100, 3, 1) - time_days_from_civil(2100, 2, 28), 1);
	assert_int_equal(time_days_from_civil(2026, 3, 1) - time_days_from_civil(2026, 2, 28), 1);

	/* The inverse over a wide range, day by day. */
	for (int64_t day = -800000; day <= 3000000; day += 37) {
		int64_t y;
		unsigned m, d;
		time_civil_from_days(day, &y, &m, &d);
		assert_true(m >= 1 && m <= 12 && d >= 1 && d <= 31);
		assert_int_equal(time_days_from_civil(y, m, d), day);
	}
	int64_t y;
	unsigned m, d;
	time_civil_from_days(time_days_from_civil(2024, 2, 29), &y, &m, &d);
	assert_int_equal(y, 2024);
	assert_int_equal(m, 2);
	assert_int_equal(d, 29);
}

static void test_parse(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(parse_ok("2026-01-01T00:00:00Z"), INT64_C(1767225600));
	assert_int_equal(parse_ok("2026-11-29T20:40:00Z"), INT64_C(1795984800));
	assert_int_equal(parse_ok("2026-11-29t20:40:00z"), INT64_C(1795984800));
	assert_int_equal(parse_ok("2026-11-29 20:40:00Z"), INT64_C(1795984800));
	/* Fractions are truncated. */
	assert_int_equal(parse_ok("2026-11-29T20:40:00.999999Z"), INT64_C(1795984800));
	/* Offsets: local time minus the offset. */
	assert_int_equal(parse_ok("2026-11-29T22:40:00+02:00"), INT64_C(1795984800));
	assert_int_equal(parse_ok("2026-11-29T15:10:00-05:30"), INT64_C(1795984800));
	assert_int_equal(parse_ok("2026-11-29T20:40:00+00:00"), INT64_C(1795984800));
	assert_int_equal(parse_ok("2026-11-29T20:40:00-00:00"), INT64_C(1795984800));
	/* Across a day boundary. */
	assert_int_equal(parse_ok("2026-01-01T01:00:00+02:00"), INT64_C(1767225600) - 3600);
	/* Leap days. */
	assert_int_equal(parse_ok("2024-02-29T00:00:00Z"), INT64_C(1709164800));
	assert_int_equal(parse_ok("2000-02-29T12:00:00Z"), INT64_C(951825600));
	assert_int_equal(parse_ok("9999-12-31T23:59:59Z"), INT64_C(253402300799));
}

static void test_parse_refused(void **state)
{
	(void)state;
	const char *bad[] = {
		"", "2026-02-30T00:00:00Z", "2026-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
		"2026-01-00T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z",
		"2026-01-01T23:59:60Z", "2026-01-01T00:00:00", "2026-01-01", "2026-01-01X00:00:00Z",
		"1969-12-31T23:59:59Z", "26-01-01T00:00:00Z", "2026-1-01T00:00:00Z",
		"2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+2:00", "2026-01-01T00:00:00+02",
		"2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+02:60", "2026-01-01T00:00:00Zjunk",
		" 2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z ", "+2026-01-01T00:00:00Z",
		"2026-01-01T0a:00:00Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t t = -42;
		int rc = time_parse_rfc3339(bad[i], &t);
		if (rc != ERR_INVALID)
			fail_msg("time_parse_rfc3339(\"%s\") = %d, want ERR_INVALID", bad[i], rc);
		assert_int_equal(t, -42);
	}
	int64_t t;
	assert_int_equal(time_parse_rfc3339(NULL, &t), ERR_INVALID);
}

static void test_format_round_trip(void **state)
{
	(void)state;
	char buf[TIME_FMT_LEN];
	time_format_rfc3339(INT64_C(1795984800), buf);
	assert_string_equal(buf, "2026-11-29T20:40:00Z");
	time_format_rfc3339(0, buf);
	assert_string_equal(buf, "1970-01-01T00:00:00Z");
	time_format_rfc3339(INT64_C(1709164800) + 86399, buf);
	assert_string_equal(buf, "2024-02-29T23:59:59Z");
	time_format_rfc3339(INT64_C(253402300799), buf);
	assert_string_equal(buf, "9999-12-31T23:59:59Z");

	char date[11];
	time_format_date(INT64_C(1795984800), date);
	assert_string_equal(date, "2026-11-29");

	for (int64_t t = 0; t < INT64_C(253402300799); t += INT64_C(7777777)) {
		int64_t back = -1;
		time_format_rfc3339(t, buf);
		assert_int_equal(time_parse_rfc3339(buf, &back), 0);
		assert_int_equal(back, t);
	}
}

static void test_day_start(void **state)
{
	(void)state;
	assert_int_equal(time_day_start(INT64_C(1795984800)), INT64_C(1795910400));
	assert_int_equal(time_day_start(INT64_C(1795910400)), INT64_C(1795910400));
	assert_int_equal(time_day_start(0), 0);
	assert_int_equal(time_day_start(-1), -86400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_civil),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_day_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
