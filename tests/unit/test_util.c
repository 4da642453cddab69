/* test_util.c - random ids and secrets, SHA-256, the clocks, the growable buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "util/buf.h"
#include "util/util.h"

static void test_random_id(void **state)
{
	(void)state;
	char a[64], b[64];
	assert_int_equal(util_random_id("alloc_", 26, a, sizeof(a)), 0);
	assert_int_equal(util_random_id("alloc_", 26, b, sizeof(b)), 0);
	assert_int_equal(strlen(a), 32);
	assert_memory_equal(a, "alloc_", 6);
	for (size_t i = 6; i < 32; i++)
		assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", a[i]));
	assert_string_not_equal(a, b);
	/* Exactly fits, one short refused and untouched. */
	char small[10];
	memcpy(small, "untouched", 10);
	assert_int_equal(util_random_id("ab", 8, small, 10), ERR_INVALID);
	assert_string_equal(small, "untouched");
	assert_int_equal(util_random_id("ab", 7, small, 10), 0);
	assert_int_equal(strlen(small), 9);
	assert_int_equal(util_random_id(NULL, 5, small, 10), 0);
	assert_int_equal(strlen(small), 5);
}

static void test_random_secret(void **state)
{
	(void)state;
	char s[UTIL_SECRET_LEN], t[UTIL_SECRET_LEN];
	assert_int_equal(util_random_secret(s, sizeof(s)), 0);
	assert_int_equal(util_random_secret(t, sizeof(t)), 0);
	assert_int_equal(strlen(s), UTIL_SECRET_LEN - 1);
	assert_memory_equal(s, "plt_", 4);
	for (size_t i = 4; i < strlen(s); i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", s[i]));
	assert_string_not_equal(s, t);
	assert_int_equal(util_random_secret(s, UTIL_SECRET_LEN - 1), ERR_INVALID);
}

static void test_sha256(void **state)
{
	(void)state;
	char hex[65];
	assert_int_equal(util_sha256_hex("", 0, hex), 0);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(util_sha256_hex("abc", 3, hex), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(util_sha256_hex(NULL, 0, hex), 0);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_clocks(void **state)
{
	(void)state;
	int64_t now = util_now();
	assert_true(now > INT64_C(1700000000)); /* after 2023 */
	int64_t a = util_mono_us();
	int64_t b = util_mono_us();
	assert_true(a > 0 && b >= a);
}

/* buf: appends keep a NUL after the bytes, growth keeps earlier content. */
static void test_buf(void **state)
{
	(void)state;
	struct buf b = {0};
	char big[1000];

	assert_true(buf_add(&b, "", 0));
	assert_non_null(b.p);
	assert_string_equal(b.p, "");
	assert_true(buf_add(&b, "ab", 2));
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 5; i++)
		assert_true(buf_add(&b, big, sizeof(big)));
	assert_int_equal(b.len, 2 + 5 * sizeof(big));
	assert_true(b.cap > b.len);
	assert_memory_equal(b.p, "abx", 3);
	assert_int_equal(b.p[b.len], '\0');
	assert_int_equal(b.p[b.len - 1], 'x');
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_id),
		cmocka_unit_test(test_random_secret),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_buf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
