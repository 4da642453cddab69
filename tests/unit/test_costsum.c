/* test_costsum.c - cost totals by group key (src/core/costsum.c): rows in
 * key order, exact 128-bit sums, overflow refused, the group keys; and the
 * array growth they use (src/core/grow.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/costsum.h"
#include "core/err.h"
#include "core/grow.h"

#define T INT64_C(1770000000) /* 2026-02-02T02:40:00Z */

static void test_sorted_and_summed(void **state)
{
	struct cost_table acc = {NULL, 0, 0};
	const char *keys[] = {"m", "c", "x", "a", "c", "m", "b"};
	char key[16];

	(void)state;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_int_equal(cost_table_add(&acc, keys[i], 1, 2, 3, (int64_t)i), 0);
	assert_int_equal(acc.n, 5);
	assert_string_equal(acc.rows[0].key, "a");
	assert_string_equal(acc.rows[1].key, "b");
	assert_string_equal(acc.rows[2].key, "c");
	assert_string_equal(acc.rows[3].key, "m");
	assert_string_equal(acc.rows[4].key, "x");
	assert_true(acc.rows[2].spent == 2 && acc.rows[2].accrued == 4 && acc.rows[2].reserved == 6);
	assert_true(acc.rows[2].gpu_microhours == 1 + 4);
	assert_true(acc.rows[3].gpu_microhours == 0 + 5);
	/* Many keys (the rows grow), inserted out of order, still sorted. */
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%03d", (i * 7) % 300);
		assert_int_equal(cost_table_add(&acc, key, i, 0, 0, 0), 0);
	}
	assert_int_equal(acc.n, 305);
	for (size_t i = 0; i + 1 < acc.n; i++)
		assert_true(strcmp(acc.rows[i].key, acc.rows[i + 1].key) < 0);
	free(acc.rows);
}

/* Past int64: exact in 128 bits; past 128 bits: ERR_OVERFLOW. */
static void test_wide_sums(void **state)
{
	struct cost_table acc = {NULL, 0, 0};
	cost_sum_t want = (cost_sum_t)INT64_MAX * 3;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(cost_table_add(&acc, "t", INT64_MAX, 0, 0, 0), 0);
	assert_true(acc.rows[0].spent == want);
	acc.rows[0].reserved = (cost_sum_t)(~(unsigned __int128)0 >> 1) - 5; /* the largest __int128, less 5 */
	assert_int_equal(cost_table_add(&acc, "t", 0, 0, 5, 0), 0);
	assert_int_equal(cost_table_add(&acc, "t", 0, 0, 1, 0), ERR_OVERFLOW);
	free(acc.rows);
}

static void test_group_keys(void **state)
{
	char key[COST_KEY_LEN];

	(void)state;
	cost_group_key(COST_BY_TEAM, T, "nlp", "bert", "h100", key);
	assert_string_equal(key, "nlp");
	cost_group_key(COST_BY_PROJECT, T, "nlp", "bert", "h100", key);
	assert_string_equal(key, "nlp/bert");
	cost_group_key(COST_BY_GPU_TYPE, T, "nlp", "bert", "h100", key);
	assert_string_equal(key, "h100");
	cost_group_key(COST_BY_DAY, T, "nlp", "bert", "h100", key);
	assert_string_equal(key, "2026-02-02");
	cost_group_key(COST_BY_MONTH, T, "nlp", "bert", "h100", key);
	assert_string_equal(key, "2026-02");
}

/* grow (core/grow.c): room kept while there is some, doubling from `first`, the
 * elements kept, an impossible size refused with the array left intact. */
static void test_grow(void **state)
{
	int64_t *v = NULL, *nv;
	size_t cap = 0;

	(void)state;
	for (size_t n = 0; n < 20; n++) {
		nv = grow(v, n, &cap, sizeof(*v), 4);
		assert_non_null(nv);
		v = nv;
		v[n] = (int64_t)n * 7;
		assert_true(cap > n);
	}
	assert_int_equal(cap, 32); /* 4, 8, 16, 32 */
	for (size_t n = 0; n < 20; n++)
		assert_int_equal(v[n], (int64_t)n * 7);
	assert_ptr_equal(grow(v, 20, &cap, sizeof(*v), 4), v); /* room left: v itself */
	assert_null(grow(v, 32, &cap, SIZE_MAX / 16, 4)); /* 64 x SIZE_MAX/16 overflows */
	assert_int_equal(cap, 32);
	assert_int_equal(v[19], 133);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sorted_and_summed),
		cmocka_unit_test(test_wide_sums),
		cmocka_unit_test(test_group_keys),
		cmocka_unit_test(test_grow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
