/* test_admission_cache.c - the webhook's allocation cache: an entry answers
 * for less than ADMISSION_CACHE_TTL_US after its store read began and never
 * at or after it (the documented staleness bound), a transition (forget)
 * drops it at once, and a read that raced a transition is not stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/admission_cache.h"

#define T0 5000000 /* monotonic microseconds of a store read's start */

static struct admission_alloc approved(const char *id)
{
	struct admission_alloc a = {
		.id = id,
		.team = "nlp",
		.team_namespaces = "nlp,nlp-dev",
		.gpu_type = "h100-80gb",
		.gpu_count = 4,
		.status = ALLOC_APPROVED,
		.expires_at = 1700000000,
	};
	return a;
}

static int reset(void **state)
{
	(void)state;
	admission_cache_clear();
	return 0;
}

static void test_hit_copies_the_facts(void **state)
{
	(void)state;
	char id[] = "alloc_01HXAMPLE";
	struct admission_alloc a = approved(id);
	admission_cache_put(&a, T0, admission_cache_generation());
	id[0] = 'X'; /* the cache holds its own copy */
	struct admission_cached c;
	assert_true(admission_cache_get("alloc_01HXAMPLE", T0, &c));
	assert_string_equal(c.facts.id, "alloc_01HXAMPLE");
	assert_string_equal(c.facts.team, "nlp");
	assert_string_equal(c.facts.team_namespaces, "nlp,nlp-dev");
	assert_ptr_equal(c.facts.team_namespaces, c.team_namespaces);
	assert_string_equal(c.facts.gpu_type, "h100-80gb");
	assert_int_equal(c.facts.gpu_count, 4);
	assert_int_equal(c.facts.status, ALLOC_APPROVED);
	assert_int_equal(c.facts.expires_at, 1700000000);
	assert_ptr_equal(c.facts.team, c.team); /* points into the copy, not the slot */
	assert_false(admission_cache_get("alloc_other", T0, &c));
}

/* The bound: TTL - 1 us after the read began is a hit; TTL is a miss. */
static void test_ttl_is_the_bound(void **state)
{
	(void)state;
	struct admission_alloc a = approved("alloc_ttl");
	admission_cache_put(&a, T0, admission_cache_generation());
	struct admission_cached c;
	assert_true(admission_cache_get("alloc_ttl", T0 + ADMISSION_CACHE_TTL_US - 1, &c));
	assert_false(admission_cache_get("alloc_ttl", T0 + ADMISSION_CACHE_TTL_US, &c));
	assert_false(admission_cache_get("alloc_ttl", T0 + 10 * ADMISSION_CACHE_TTL_US, &c));
	/* A clock before the read (another thread's earlier stamp): no answer. */
	assert_false(admission_cache_get("alloc_ttl", T0 - 1, &c));
}

static void test_forget_drops_at_once(void **state)
{
	(void)state;
	struct admission_alloc a = approved("alloc_cancel");
	admission_cache_put(&a, T0, admission_cache_generation());
	admission_cache_forget("alloc_cancel");
	struct admission_cached c;
	assert_false(admission_cache_get("alloc_cancel", T0, &c));
}

/* A read that began before a transition must not be stored after it. */
static void test_read_racing_a_transition_is_dropped(void **state)
{
	(void)state;
	uint64_t gen = admission_cache_generation();
	struct admission_alloc a = approved("alloc_race");
	admission_cache_forget("alloc_race"); /* the cancel lands during the read */
	admission_cache_put(&a, T0, gen);
	struct admission_cached c;
	assert_false(admission_cache_get("alloc_race", T0, &c));
	admission_cache_put(&a, T0, admission_cache_generation()); /* a fresh read is kept */
	assert_true(admission_cache_get("alloc_race", T0, &c));
}

static void test_bounded_and_never_truncated(void **state)
{
	(void)state;
	char id[ADMISSION_CACHE_ID_LEN + 8];
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	struct admission_alloc a = approved(id);
	admission_cache_put(&a, T0, admission_cache_generation());
	struct admission_cached c;
	assert_false(admission_cache_get(id, T0, &c)); /* too long: not cached */
	/* More ids than slots: each get answers only for its own id. */
	char name[32];
	for (int i = 0; i < 2 * ADMISSION_CACHE_SLOTS; i++) {
		snprintf(name, sizeof(name), "alloc_%d", i);
		struct admission_alloc b = approved(name);
		b.gpu_count = i;
		admission_cache_put(&b, T0, admission_cache_generation());
	}
	int hits = 0;
	for (int i = 0; i < 2 * ADMISSION_CACHE_SLOTS; i++) {
		snprintf(name, sizeof(name), "alloc_%d", i);
		if (admission_cache_get(name, T0, &c)) {
			assert_string_equal(c.facts.id, name);
			assert_int_equal(c.facts.gpu_count, i);
			hits++;
		}
	}
	assert_true(hits > 0 && hits <= ADMISSION_CACHE_SLOTS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_hit_copies_the_facts, reset),
		cmocka_unit_test_setup(test_ttl_is_the_bound, reset),
		cmocka_unit_test_setup(test_forget_drops_at_once, reset),
		cmocka_unit_test_setup(test_read_racing_a_transition_is_dropped, reset),
		cmocka_unit_test_setup(test_bounded_and_never_truncated, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
