/* test_jarena.c - jansson parsing into a per-request arena: the tree reads
 * like any other, a big document spills into more chunks, a parse error
 * leaves nothing behind, and jansson outside an arena still uses the heap
 * (valgrind, which runs the unit suite, checks that nothing leaks and that
 * no arena pointer reaches free()). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/jarena.h"

static void test_tree_reads(void **state)
{
	(void)state;
	const char *doc = "{\"request\":{\"uid\":\"u-1\",\"object\":{\"metadata\":{\"labels\":"
			  "{\"plinth.io/allocation-id\":\"alloc_1\"}},\"n\":[1,2,3]}}}";
	struct jarena a;
	jarena_init(&a, strlen(doc) * 10);
	json_error_t e;
	json_t *v = jarena_loadb(&a, doc, strlen(doc), JSON_REJECT_DUPLICATES, &e);
	assert_non_null(v);
	assert_true(a.n >= 1);
	json_t *req = json_object_get(v, "request");
	assert_string_equal(json_string_value(json_object_get(req, "uid")), "u-1");
	json_t *labels = json_object_get(json_object_get(json_object_get(req, "object"), "metadata"),
					 "labels");
	assert_string_equal(json_string_value(json_object_get(labels, "plinth.io/allocation-id")),
			    "alloc_1");
	assert_int_equal(json_array_size(json_object_get(json_object_get(req, "object"), "n")), 3);
	/* Outside jarena_loadb jansson allocates from the heap, as always. */
	json_t *heap = json_pack("{s:s}", "uid", json_string_value(json_object_get(req, "uid")));
	char *text = json_dumps(heap, 0);
	assert_string_equal(text, "{\"uid\": \"u-1\"}");
	free(text); /* heap memory: free() is right */
	json_decref(heap);
	jarena_release(&a);
	assert_int_equal(a.n, 0);
}

/* A document far larger than the first chunk: more, doubling chunks. */
static void test_big_document_spills(void **state)
{
	(void)state;
	size_t n = 20000, len = 0;
	char *doc = malloc(n * 16 + 16);
	assert_non_null(doc);
	doc[len++] = '[';
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(doc + len, "%s{\"k\":\"v%zu\"}", i ? "," : "", i);
	doc[len++] = ']';
	struct jarena a;
	jarena_init(&a, 0);
	json_error_t e;
	json_t *v = jarena_loadb(&a, doc, len, 0, &e);
	assert_non_null(v);
	assert_int_equal(json_array_size(v), n);
	assert_string_equal(json_string_value(json_object_get(json_array_get(v, n - 1), "k")),
			    "v19999");
	assert_true(a.n > 1 && a.n < JARENA_CHUNKS);
	jarena_release(&a);
	free(doc);
}

static void test_parse_error(void **state)
{
	(void)state;
	const char *bad = "{\"a\":[1,2,{\"b\":\"unterminated";
	struct jarena a;
	jarena_init(&a, 64);
	json_error_t e;
	assert_null(jarena_loadb(&a, bad, strlen(bad), 0, &e));
	assert_true(e.line >= 1 && e.text[0] != '\0');
	jarena_release(&a);
	const char *dup = "{\"a\":1,\"a\":2}";
	jarena_init(&a, 64);
	assert_null(jarena_loadb(&a, dup, strlen(dup), JSON_REJECT_DUPLICATES, &e));
	jarena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_reads),
		cmocka_unit_test(test_big_document_spills),
		cmocka_unit_test(test_parse_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
