/*
 * test_log.c - the daemon's event log (src/util/log.c): one whole JSON line
 * per event on stderr, with ts, level, msg and the extra members, extra's
 * reference taken (valgrind and LeakSanitizer see a leak otherwise).
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
#include <jansson.h>

#include "util/log.h"

/* Runs log_event with stderr sent to a temporary file; returns what it wrote
 * (malloc'd, NUL-terminated). */
static char *captured(const char *level, const char *msg, json_t *extra)
{
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	assert_int_equal(fflush(stderr), 0);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	log_event(level, msg, extra);
	int flushed = fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	assert_int_equal(close(saved), 0);
	assert_int_equal(flushed, 0);

	assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
	long len = ftell(tmp);
	assert_true(len >= 0 && len < 65536);
	rewind(tmp);
	char *text = malloc((size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, tmp), (size_t)len);
	text[len] = '\0';
	assert_int_equal(fclose(tmp), 0);
	return text;
}

/* The text must be exactly one line holding one JSON object; returns it. */
static json_t *one_line(const char *text)
{
	size_t len = strlen(text);
	assert_true(len > 1);
	assert_int_equal(text[len - 1], '\n');
	assert_null(memchr(text, '\n', len - 1));
	json_error_t e;
	json_t *o = json_loadb(text, len - 1, 0, &e);
	assert_non_null(o);
	assert_true(json_is_object(o));
	return o;
}

static void test_event_with_extra(void **state)
{
	(void)state;
	char *text = captured("warn", "alert delivery failed",
			      json_pack("{s:s, s:i, s:f}", "team", "nlp", "attempt", 3, "ratio", 0.8));
	json_t *o = one_line(text);
	assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "alert delivery failed");
	assert_string_equal(json_string_value(json_object_get(o, "team")), "nlp");
	assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 3);
	/* 15 significant digits: 0.8 is written as 0.8, not 0.80000000000000004. */
	assert_non_null(strstr(text, "\"ratio\":0.8"));
	assert_null(strstr(text, "0.80000"));
	/* Compact: no space after a separator. */
	assert_null(strstr(text, "\": "));
	assert_null(strstr(text, ", \""));
	/* RFC 3339 UTC, to the second: 2026-12-06T09:30:00Z. */
	const char *ts = json_string_value(json_object_get(o, "ts"));
	assert_non_null(ts);
	assert_int_equal(strlen(ts), 20);
	assert_int_equal(ts[4], '-');
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[19], 'Z');
	assert_int_equal(json_object_size(o), 6);
	json_decref(o);
	free(text);
}

static void test_event_without_extra(void **state)
{
	(void)state;
	/* NULL extra, as a failed json_pack() at the call gives. */
	char *text = captured("info", "stopped", NULL);
	json_t *o = one_line(text);
	assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "stopped");
	assert_int_equal(json_object_size(o), 3);
	json_decref(o);
	free(text);
}

static void test_message_is_escaped(void **state)
{
	(void)state;
	/* A message with a newline and a quote stays one line of valid JSON. */
	char *text = captured("error", "two\nlines \"quoted\"", json_pack("{s:s}", "path", "/a\nb"));
	json_t *o = one_line(text);
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "two\nlines \"quoted\"");
	assert_string_equal(json_string_value(json_object_get(o, "path")), "/a\nb");
	json_decref(o);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_with_extra),
		cmocka_unit_test(test_event_without_extra),
		cmocka_unit_test(test_message_is_escaped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
