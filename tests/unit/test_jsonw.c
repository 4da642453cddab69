/*
 * test_jsonw.c - the JSON text writer: exact output, escaping, invalid
 * UTF-8, nesting and misuse, and a property check: whatever bytes a string
 * holds, the output parses (with jansson) and keeps every valid character.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "util/jsonw.h"

static char *one_object(void (*fill)(struct jsonw *))
{
	struct jsonw w;
	jw_init(&w);
	jw_open(&w, NULL);
	fill(&w);
	jw_close(&w);
	return jw_finish(&w, NULL);
}

static void fill_all(struct jsonw *w)
{
	jw_str(w, "s", "plain");
	jw_int(w, "i", -42);
	jw_int(w, "big", INT64_MAX);
	jw_null(w, "n");
	jw_str(w, "ns", NULL);
	jw_raw(w, "labels", "{\"a\":\"b\"}");
	jw_raw(w, "rn", NULL);
	jw_fixed(w, "h1", 1500000, 6);
	jw_fixed(w, "h2", 2000000, 6);
	jw_fixed(w, "h3", 1, 6);
	jw_fixed(w, "ms", 12345, 3);
	jw_open(w, "nested");
	jw_int(w, "x", 1);
	jw_close(w);
	jw_open(w, "empty");
	jw_close(w);
}

static void test_exact_output(void **state)
{
	(void)state;
	char *s = one_object(fill_all);
	assert_non_null(s);
	assert_string_equal(s, "{\"s\":\"plain\",\"i\":-42,\"big\":9223372036854775807,\"n\":null,"
			       "\"ns\":null,\"labels\":{\"a\":\"b\"},\"rn\":null,\"h1\":1.5,\"h2\":2,"
			       "\"h3\":0.000001,\"ms\":12.345,\"nested\":{\"x\":1},\"empty\":{}}");
	free(s);
}

static void fill_escapes(struct jsonw *w)
{
	jw_str(w, "q\"k", "a\"b\\c\n\r\t\b\f\x01\x1f/\x7f");
	jw_str(w, "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* Invalid: a lone continuation byte, an overlong '/', a surrogate, a cut sequence. */
	jw_str(w, "bad", "a\x80" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x82");
}

static void test_escapes_and_utf8(void **state)
{
	(void)state;
	char *s = one_object(fill_escapes);
	assert_non_null(s);
	assert_string_equal(s, "{\"q\\\"k\":\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001F/\x7f\","
			       "\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
			       "\"bad\":\"a?b??c???d??\"}");
	json_error_t err;
	json_t *v = json_loads(s, 0, &err);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "q\"k")),
			    "a\"b\\c\n\r\t\b\f\x01\x1f/\x7f");
	json_decref(v);
	free(s);
}

static void test_misuse_fails(void **state)
{
	(void)state;
	struct jsonw w;

	jw_init(&w); /* left open */
	jw_open(&w, NULL);
	jw_int(&w, "a", 1);
	assert_null(jw_finish(&w, NULL));

	jw_init(&w); /* a member without a name */
	jw_open(&w, NULL);
	jw_int(&w, NULL, 1);
	jw_close(&w);
	assert_null(jw_finish(&w, NULL));

	jw_init(&w); /* two top-level values */
	jw_open(&w, NULL);
	jw_close(&w);
	jw_open(&w, NULL);
	jw_close(&w);
	assert_null(jw_finish(&w, NULL));

	jw_init(&w); /* one close too many */
	jw_close(&w);
	assert_null(jw_finish(&w, NULL));

	jw_init(&w); /* negative fixed-point */
	jw_open(&w, NULL);
	jw_fixed(&w, "x", -1, 3);
	jw_close(&w);
	assert_null(jw_finish(&w, NULL));

	jw_init(&w); /* too deep */
	jw_open(&w, NULL);
	for (int i = 0; i < JW_MAX_DEPTH; i++)
		jw_open(&w, "d");
	for (int i = 0; i < JW_MAX_DEPTH; i++)
		jw_close(&w);
	jw_close(&w);
	assert_null(jw_finish(&w, NULL));

	jw_init(&w); /* nothing written */
	assert_null(jw_finish(&w, NULL));
}

static void test_length_and_growth(void **state)
{
	(void)state;
	struct jsonw w;
	size_t len = 0;
	char big[5000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	jw_init(&w);
	jw_open(&w, NULL);
	for (int i = 0; i < 10; i++)
		jw_str(&w, "k", big);
	jw_close(&w);
	char *s = jw_finish(&w, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	assert_int_equal(len, 2 + 10 * (4 + 2 + 4999) + 9);
	free(s);
}

/* Any bytes in: valid JSON out, and valid UTF-8 input survives unchanged. */
static void test_random_bytes_always_parse(void **state)
{
	(void)state;
	unsigned seed = 12345;
	for (int round = 0; round < 2000; round++) {
		char in[64];
		size_t n = (size_t)(rand_r(&seed) % 63);
		for (size_t i = 0; i < n; i++) {
			in[i] = (char)(rand_r(&seed) % 255 + 1);
		}
		in[n] = '\0';
		struct jsonw w;
		jw_init(&w);
		jw_open(&w, NULL);
		jw_str(&w, "v", in);
		jw_close(&w);
		char *s = jw_finish(&w, NULL);
		assert_non_null(s);
		json_t *v = json_loads(s, 0, NULL);
		assert_non_null(v);
		const char *out = json_string_value(json_object_get(v, "v"));
		assert_non_null(out);
		/* Valid UTF-8 in: the same string out.  Else '?' replaced bytes only. */
		json_t *direct = json_string(in);
		if (direct != NULL)
			assert_string_equal(out, in);
		else
			assert_non_null(strchr(out, '?'));
		json_decref(direct);
		json_decref(v);
		free(s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_output),
		cmocka_unit_test(test_escapes_and_utf8),
		cmocka_unit_test(test_misuse_fails),
		cmocka_unit_test(test_length_and_growth),
		cmocka_unit_test(test_random_bytes_always_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
