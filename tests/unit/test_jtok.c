/* test_jtok.c - the allocation-free JSON tokenizer: what it accepts and
 * refuses (RFC 8259), lookups, escapes, integers, bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/jtok.h"

static struct jtok toks[256];

static long parse(const char *s)
{
	char why[200];
	size_t n = strlen(s);
	assert_true(jtok_max_tokens(n) <= sizeof(toks) / sizeof(toks[0]));
	return jtok_parse(s, n, toks, jtok_max_tokens(n), why, sizeof(why));
}

static void test_valid(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"{}", "[]", "0", "-0", "1.5e+10", "-12.25E-3", "\"\"", "true", "false", "null",
		" { \"a\" : [ 1 , { \"b\" : null } , \"x\\\"y\\u00e9\\n\" ] } ",
		"[[[[[]]]]]", "{\"a\":{},\"b\":[],\"c\":\"\"}", "\"\\ud83d\\ude00\"",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (parse(ok[i]) <= 0)
			fail_msg("refused valid JSON: %s", ok[i]);
}

static void test_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", " ", "{", "}", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",
		"[1 2]", "{\"a\":1 \"b\":2}", "[}", "{]", "01", "1.", ".5", "1e", "-", "+1",
		"tru", "nul", "\"abc", "\"a\\x\"", "\"\\u12g4\"", "\"a\nb\"", "{} {}", "[1]]",
		"\"\\u12\"", "{\"a\":1]", "[\"a\":1]", "nan", "'a'",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i]) >= 0)
			fail_msg("accepted invalid JSON: [%s]", bad[i]);
}

static void test_depth_and_tokens(void **state)
{
	(void)state;
	char deep[2 * JTOK_MAX_DEPTH + 3];
	memset(deep, '[', JTOK_MAX_DEPTH);
	memset(deep + JTOK_MAX_DEPTH, ']', JTOK_MAX_DEPTH);
	deep[2 * JTOK_MAX_DEPTH] = '\0';
	assert_true(parse(deep) == JTOK_MAX_DEPTH);
	char deeper[2 * JTOK_MAX_DEPTH + 3];
	memset(deeper, '[', JTOK_MAX_DEPTH + 1);
	memset(deeper + JTOK_MAX_DEPTH + 1, ']', JTOK_MAX_DEPTH + 1);
	deeper[2 * JTOK_MAX_DEPTH + 2] = '\0';
	assert_true(parse(deeper) < 0);
	/* The bound holds for the densest texts. */
	const char *dense = "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]";
	assert_int_equal(parse(dense), 31);
	char why[100];
	assert_true(jtok_parse("[1,1,1]", 7, toks, 3, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "too many"));
	/* Never reads past n. */
	assert_true(jtok_parse("[1,2]xxxx", 5, toks, 10, why, sizeof(why)) == 3);
	assert_true(jtok_parse("\"abc\"", 3, toks, 10, why, sizeof(why)) < 0);
}

static void test_lookup(void **state)
{
	(void)state;
	const char *s = "{\"a\":{\"x\":[1,2,{\"y\":3}],\"z\":\"q\"},\"b\\/c\":\"v\",\"a2\":7,\"d\":1,\"d\":2}";
	assert_true(parse(s) > 0);
	long a = jtok_get(s, toks, 0, "a");
	assert_true(jtok_is(toks, a, JTOK_OBJECT));
	long x = jtok_get(s, toks, a, "x");
	assert_true(jtok_is(toks, x, JTOK_ARRAY));
	long e = jtok_first(toks, x);
	int64_t v = 0;
	assert_int_equal(jtok_int(s, toks, e, &v), 0);
	assert_int_equal(v, 1);
	e = jtok_after(toks, x, e);
	e = jtok_after(toks, x, e);
	assert_true(jtok_is(toks, e, JTOK_OBJECT));
	assert_int_equal(jtok_int(s, toks, jtok_get(s, toks, e, "y"), &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(jtok_after(toks, x, e), -1);
	assert_true(jtok_str_eq(s, toks, jtok_get(s, toks, a, "z"), "q"));
	/* The escaped key "b\/c" is "b/c". */
	assert_true(jtok_str_eq(s, toks, jtok_get(s, toks, 0, "b/c"), "v"));
	assert_int_equal(jtok_get(s, toks, 0, "b\\/c"), -1);
	assert_int_equal(jtok_get(s, toks, 0, "nope"), -1);
	assert_int_equal(jtok_get(s, toks, x, "a"), -1); /* not an object */
	/* A repeated key: the last wins. */
	assert_int_equal(jtok_int(s, toks, jtok_get(s, toks, 0, "d"), &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(jtok_first(toks, jtok_get(s, toks, 0, "a2")), -1);
	const char *empty = "{\"o\":{},\"l\":[]}";
	assert_true(parse(empty) > 0);
	assert_int_equal(jtok_first(toks, jtok_get(empty, toks, 0, "o")), -1);
	assert_int_equal(jtok_first(toks, jtok_get(empty, toks, 0, "l")), -1);
}

static void test_strings_and_ints(void **state)
{
	(void)state;
	const char *s = "[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\",\"\\u00e9\\u20ac\\ud83d\\ude00\\udc00\","
			"\"plain\",9223372036854775807,9223372036854775808,-3,1.0,1e2,\"12\"]";
	assert_true(parse(s) > 0);
	char buf[64];
	long i = jtok_first(toks, 0);
	assert_int_equal(jtok_str(s, toks, i, buf, sizeof(buf)), 12);
	assert_string_equal(buf, "a\"b\\c/d\b\f\n\r\t");
	i = jtok_after(toks, 0, i);
	assert_true(jtok_str(s, toks, i, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbf\xbd");
	i = jtok_after(toks, 0, i);
	assert_int_equal(jtok_str(s, toks, i, buf, 6), 5);
	assert_int_equal(jtok_str(s, toks, i, buf, 5), -1); /* no room for the NUL */
	int64_t v;
	i = jtok_after(toks, 0, i);
	assert_int_equal(jtok_int(s, toks, i, &v), 0);
	assert_true(v == INT64_MAX);
	i = jtok_after(toks, 0, i);
	assert_int_equal(jtok_int(s, toks, i, &v), -1); /* overflow */
	i = jtok_after(toks, 0, i);
	assert_int_equal(jtok_int(s, toks, i, &v), 0);
	assert_int_equal(v, -3);
	i = jtok_after(toks, 0, i);
	assert_int_equal(jtok_int(s, toks, i, &v), -1); /* 1.0 */
	i = jtok_after(toks, 0, i);
	assert_int_equal(jtok_int(s, toks, i, &v), -1); /* 1e2 */
	i = jtok_after(toks, 0, i);
	assert_int_equal(jtok_int(s, toks, i, &v), -1); /* a string */
	assert_int_equal(jtok_str(s, toks, 0, buf, sizeof(buf)), -1); /* not a string */
	assert_false(jtok_str_eq(s, toks, 0, "x"));
	assert_false(jtok_is(toks, -1, JTOK_ARRAY));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_depth_and_tokens),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_strings_and_ints),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
