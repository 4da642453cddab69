/*
 * test_jscan.c - util/jscan.c, the admission webhook's JSON parser: values
 * read back exactly, refusals as jansson refuses, and jansson as the oracle
 * (tests/fuzz/jscan_oracle.h) over the seed corpus and a deterministic
 * mutation loop of it (flips, cuts, inserted JSON punctuation), so a
 * disagreement found by libFuzzer once stays found.
 *
 * Usage: test_jscan CORPUS_DIR (tests/fuzz/corpus-jscan).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../fuzz/jscan_oracle.h"

#define MUTATIONS_PER_SEED 10000

static const char *corpus_dir;

/* Parses a copy of text; the doc and the copy are the caller's. */
static int parse(struct jdoc *d, const char *text, char **copy)
{
	*copy = strdup(text);
	assert_non_null(*copy);
	return jscan_parse(d, *copy, strlen(*copy));
}

static void test_values(void **state)
{
	(void)state;
	struct jdoc d;
	char *buf;
	assert_int_equal(parse(&d, " {\"s\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud834\\udd1e\", \"i\":-9223372036854775808,"
				   "\"j\":9223372036854775807, \"r\":1.5e3, \"a\":[1,[],{}], \"t\":true,"
				   "\"f\":false, \"n\":null, \"u\":\"caf\xc3\xa9\"} ",
			       &buf),
			 0);
	const struct jnode *root = &d.nodes[0];
	assert_int_equal(root->type, JS_OBJECT);
	assert_int_equal(root->len, 9);
	assert_string_equal(jscan_str(jscan_get(&d, root, "s")),
			    "a\"b\\c/d\n\xc3\xa9\xf0\x9d\x84\x9e");
	assert_int_equal(jscan_get(&d, root, "s")->len, 14);
	assert_true(jscan_get(&d, root, "i")->v.i == INT64_MIN);
	assert_true(jscan_get(&d, root, "j")->v.i == INT64_MAX);
	assert_int_equal(jscan_get(&d, root, "r")->type, JS_REAL);
	const struct jnode *a = jscan_get(&d, root, "a");
	assert_int_equal(a->type, JS_ARRAY);
	assert_int_equal(a->len, 3);
	const struct jnode *e = jscan_first(a);
	assert_int_equal(e->v.i, 1);
	e = jscan_next(&d, a, e);
	assert_true(jscan_is(e, JS_ARRAY) && e->len == 0 && jscan_first(e) == NULL);
	e = jscan_next(&d, a, e);
	assert_true(jscan_is(e, JS_OBJECT) && e->len == 0);
	assert_null(jscan_next(&d, a, e));
	assert_int_equal(jscan_get(&d, root, "t")->type, JS_TRUE);
	assert_int_equal(jscan_get(&d, root, "f")->type, JS_FALSE);
	assert_int_equal(jscan_get(&d, root, "n")->type, JS_NULL);
	assert_string_equal(jscan_str(jscan_get(&d, root, "u")), "caf\xc3\xa9");
	assert_null(jscan_get(&d, root, "missing"));
	assert_null(jscan_get(&d, a, "s")); /* not an object */
	assert_null(jscan_str(a));
	assert_false(d.duplicate);
	jscan_free(&d);
	free(buf);
}

static void test_duplicates_are_reported(void **state)
{
	(void)state;
	struct jdoc d;
	char *buf;
	assert_int_equal(parse(&d, "{\"a\":1,\"b\":2,\"a\":3}", &buf), 0);
	assert_int_equal(jscan_get(&d, &d.nodes[0], "b")->v.i, 2);
	assert_false(d.duplicate); /* only the member looked up is checked */
	assert_int_equal(jscan_get(&d, &d.nodes[0], "a")->v.i, 3); /* the last, as jansson */
	assert_true(d.duplicate);
	jscan_free(&d);
	free(buf);
}

static void test_refusals(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "  ", "1", "\"s\"", "null", "[", "{", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}",
		"{\"a\":1,}", "{1:2}", "[01]", "[1.]", "[.5]", "[1e]", "[-]", "[+1]", "[tru]",
		"[nul]", "[True]", "[\"\\x\"]", "[\"\\u12\"]", "[\"\\ud800\"]", "[\"\\udc00\"]",
		"[\"\\ud800\\u0041\"]", "[\"\\u0000\"]", "[\"a\x01\"]", "[\"\xc3\x28\"]",
		"[\"\xed\xa0\x80\"]", "[\"\xf4\x90\x80\x80\"]", "[\"\xe0\x80\xaf\"]", "[\"\xc0\xaf\"]",
		"[\"unterminated]", "[1] [2]", "[9223372036854775808]", "[-9223372036854775809]",
		"[1e999]", "[\xef\xbb\xbf]", "[1]\x00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct jdoc d;
		size_t len = i == sizeof(bad) / sizeof(bad[0]) - 1 ? 4 : strlen(bad[i]);
		char *buf = malloc(len + 1);
		assert_non_null(buf);
		memcpy(buf, bad[i], len);
		buf[len] = '\0';
		if (jscan_parse(&d, buf, len) == 0) {
			fprintf(stderr, "accepted: %s\n", bad[i]);
			fail();
		}
		assert_true(strncmp(d.err, "byte ", 5) == 0);
		const char *why = NULL;
		assert_int_equal(jscan_oracle((const unsigned char *)bad[i], len, &why), 0);
		jscan_free(&d);
		free(buf);
	}
}

static void test_depth_bound(void **state)
{
	(void)state;
	char buf[2 * (JSCAN_MAX_DEPTH + 1) + 1];
	struct jdoc d;
	for (int depth = JSCAN_MAX_DEPTH; depth <= JSCAN_MAX_DEPTH + 1; depth++) {
		memset(buf, '[', (size_t)depth);
		memset(buf + depth, ']', (size_t)depth);
		buf[2 * depth] = '\0';
		int rc = jscan_parse(&d, buf, (size_t)(2 * depth));
		assert_int_equal(rc, depth <= JSCAN_MAX_DEPTH ? 0 : -1);
		jscan_free(&d);
	}
}

/* A small deterministic generator (xorshift64*). */
static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_rand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1DULL;
}

static void mutate(unsigned char *b, size_t *len, size_t cap)
{
	static const char punct[] = "{}[]\",:\\u0123456789.eE+-tfnrl \t\n\x80\xc3\xed\xf0\x00";
	size_t at = *len ? next_rand() % *len : 0;
	switch (next_rand() % 5) {
	case 0: /* flip a byte */
		if (*len)
			b[at] ^= (unsigned char)(1u << (next_rand() % 8));
		break;
	case 1: /* replace with JSON punctuation */
		if (*len)
			b[at] = (unsigned char)punct[next_rand() % (sizeof(punct) - 1)];
		break;
	case 2: /* insert */
		if (*len < cap) {
			memmove(b + at + 1, b + at, *len - at);
			b[at] = (unsigned char)punct[next_rand() % (sizeof(punct) - 1)];
			(*len)++;
		}
		break;
	case 3: /* delete */
		if (*len) {
			memmove(b + at, b + at + 1, *len - at - 1);
			(*len)--;
		}
		break;
	default: /* cut */
		*len = at;
		break;
	}
}

static void test_oracle_over_corpus(void **state)
{
	(void)state;
	DIR *dir = opendir(corpus_dir);
	struct dirent *e;
	size_t seeds = 0, runs = 0;
	assert_non_null(dir);
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", corpus_dir, e->d_name);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		unsigned char seed[65536], b[65536 + 64];
		size_t n = fread(seed, 1, sizeof(seed), f);
		assert_false(ferror(f));
		fclose(f);
		const char *why = NULL;
		if (jscan_oracle(seed, n, &why) != 0) {
			fprintf(stderr, "%s: %s\n", e->d_name, why);
			fail();
		}
		seeds++;
		for (int m = 0; m < MUTATIONS_PER_SEED; m++) {
			size_t len = n;
			memcpy(b, seed, n);
			for (uint64_t k = 1 + next_rand() % 3; k > 0; k--)
				mutate(b, &len, sizeof(b));
			if (jscan_oracle(b, len, &why) != 0) {
				fprintf(stderr, "%s, mutation %d: %s:", e->d_name, m, why);
				for (size_t k = 0; k < len && k < 300; k++)
					fprintf(stderr, " %02x", b[k]);
				fprintf(stderr, "\n");
				fail();
			}
			runs++;
		}
	}
	closedir(dir);
	assert_true(seeds >= 10);
	printf("# %zu seeds, %zu mutations agree with jansson\n", seeds, runs);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	corpus_dir = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_duplicates_are_reported),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_oracle_over_corpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
