/* test_suggest.c - which free GPU types a capacity refusal lists
 * (src/core/suggest.c): most free first, then by id, at most 16. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/suggest.h"

static void offer(struct alloc_free_type *kept, int *n, const char *id, int64_t free_gpus)
{
	struct alloc_free_type t = {.free_gpus = free_gpus, .price_micros = free_gpus * 10};

	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.name, sizeof(t.name), "GPU %s", id);
	suggest_keep_free(kept, n, &t);
}

static void test_free_gpus(void **state)
{
	(void)state;
	assert_int_equal(suggest_free_gpus(8, 3), 5);
	assert_int_equal(suggest_free_gpus(8, 8), 0);
	assert_int_equal(suggest_free_gpus(4, 6), 0); /* capacity lowered below allocated */
}

/* Most free first; equal free GPUs by id; the whole record is kept. */
static void test_order(void **state)
{
	struct alloc_free_type kept[SUGGEST_TYPES];
	int n = 0;

	(void)state;
	offer(kept, &n, "b", 4);
	offer(kept, &n, "a", 4);
	offer(kept, &n, "c", 9);
	offer(kept, &n, "d", 1);
	assert_int_equal(n, 4);
	assert_string_equal(kept[0].id, "c");
	assert_string_equal(kept[1].id, "a");
	assert_string_equal(kept[2].id, "b");
	assert_string_equal(kept[3].id, "d");
	assert_string_equal(kept[1].name, "GPU a");
	assert_int_equal(kept[1].price_micros, 40);
}

/* 40 types offered least free first: the 16 most free are kept, in order. */
static void test_cap(void **state)
{
	struct alloc_free_type kept[SUGGEST_TYPES + 1];
	char id[8];
	int n = 0;

	(void)state;
	memset(&kept[SUGGEST_TYPES], 0x5a, sizeof(kept[0])); /* a guard past the list */
	for (int i = 1; i <= 40; i++) {
		snprintf(id, sizeof(id), "t%02d", i);
		offer(kept, &n, id, i);
	}
	assert_int_equal(n, SUGGEST_TYPES);
	assert_int_equal(SUGGEST_TYPES, 16);
	for (int i = 0; i < SUGGEST_TYPES; i++)
		assert_int_equal(kept[i].free_gpus, 40 - i);
	assert_int_equal((unsigned char)kept[SUGGEST_TYPES].id[0], 0x5a);
	/* A tie with the least free kept loses to it when its id sorts after... */
	offer(kept, &n, "zz", 25);
	assert_string_equal(kept[15].id, "t25");
	/* ...and takes its place when it sorts before. */
	offer(kept, &n, "a", 25);
	assert_string_equal(kept[15].id, "a");
	/* A less free one is not kept; a freer one goes to the front. */
	offer(kept, &n, "b", 1);
	assert_string_equal(kept[15].id, "a");
	offer(kept, &n, "top", 100);
	assert_string_equal(kept[0].id, "top");
	assert_string_equal(kept[1].id, "t40");
	assert_string_equal(kept[15].id, "t26");
	assert_int_equal(n, SUGGEST_TYPES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_gpus),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
