/* test_lifecycle.c - every (status, event) pair of the state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/lifecycle.h"

#define C (-1) /* conflict */

static const struct {
	enum alloc_status cur;
	enum alloc_event ev;
	int next; /* C = ERR_CONFLICT */
	bool repeat;
} cases[] = {
	{ALLOC_APPROVED, ALLOC_EV_START, ALLOC_RUNNING, false},
	{ALLOC_APPROVED, ALLOC_EV_COMPLETE, C, false},
	{ALLOC_APPROVED, ALLOC_EV_CANCEL, ALLOC_CANCELLED, false},
	{ALLOC_APPROVED, ALLOC_EV_EXPIRE, ALLOC_EXPIRED, false},

	{ALLOC_RUNNING, ALLOC_EV_START, ALLOC_RUNNING, true},
	{ALLOC_RUNNING, ALLOC_EV_COMPLETE, ALLOC_COMPLETED, false},
	{ALLOC_RUNNING, ALLOC_EV_CANCEL, C, false},
	{ALLOC_RUNNING, ALLOC_EV_EXPIRE, C, false},

	{ALLOC_COMPLETED, ALLOC_EV_START, C, false},
	{ALLOC_COMPLETED, ALLOC_EV_COMPLETE, ALLOC_COMPLETED, true},
	{ALLOC_COMPLETED, ALLOC_EV_CANCEL, C, false},
	{ALLOC_COMPLETED, ALLOC_EV_EXPIRE, C, false},

	{ALLOC_CANCELLED, ALLOC_EV_START, C, false},
	{ALLOC_CANCELLED, ALLOC_EV_COMPLETE, C, false},
	{ALLOC_CANCELLED, ALLOC_EV_CANCEL, ALLOC_CANCELLED, true},
	{ALLOC_CANCELLED, ALLOC_EV_EXPIRE, C, false},

	{ALLOC_EXPIRED, ALLOC_EV_START, C, false},
	{ALLOC_EXPIRED, ALLOC_EV_COMPLETE, C, false},
	{ALLOC_EXPIRED, ALLOC_EV_CANCEL, C, false},
	{ALLOC_EXPIRED, ALLOC_EV_EXPIRE, ALLOC_EXPIRED, true},
};

static void test_table(void **state)
{
	(void)state;
	int seen[5][4] = {{0}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum alloc_status next = (enum alloc_status)99;
		bool repeat = true;
		int rc = lifecycle_next(cases[i].cur, cases[i].ev, &next, &repeat);
		seen[cases[i].cur][cases[i].ev]++;
		if (cases[i].next == C) {
			if (rc != ERR_CONFLICT)
				fail_msg("%s on %s: rc %d, want conflict", alloc_event_name(cases[i].ev),
					 alloc_status_name(cases[i].cur), rc);
			/* Outputs untouched on failure. */
			assert_int_equal(next, 99);
			assert_true(repeat);
		} else {
			if (rc != 0)
				fail_msg("%s on %s: rc %d, want ok", alloc_event_name(cases[i].ev),
					 alloc_status_name(cases[i].cur), rc);
			assert_int_equal(next, cases[i].next);
			assert_int_equal(repeat, cases[i].repeat);
		}
	}
	/* The table above covers every pair exactly once. */
	for (int s = 0; s < 5; s++)
		for (int e = 0; e < 4; e++)
			assert_int_equal(seen[s][e], 1);
}

static void test_out_of_range(void **state)
{
	(void)state;
	enum alloc_status next;
	bool repeat;
	assert_int_equal(lifecycle_next((enum alloc_status)5, ALLOC_EV_START, &next, &repeat),
			 ERR_INVALID);
	assert_int_equal(lifecycle_next(ALLOC_APPROVED, (enum alloc_event)4, &next, &repeat),
			 ERR_INVALID);
}

static void test_holds_resources(void **state)
{
	(void)state;
	assert_true(lifecycle_holds_resources(ALLOC_APPROVED));
	assert_true(lifecycle_holds_resources(ALLOC_RUNNING));
	assert_false(lifecycle_holds_resources(ALLOC_COMPLETED));
	assert_false(lifecycle_holds_resources(ALLOC_CANCELLED));
	assert_false(lifecycle_holds_resources(ALLOC_EXPIRED));
}

static void test_names(void **state)
{
	(void)state;
	const char *names[] = {"approved", "running", "completed", "cancelled", "expired"};
	for (int i = 0; i < 5; i++) {
		enum alloc_status s = (enum alloc_status)42;
		assert_string_equal(alloc_status_name((enum alloc_status)i), names[i]);
		assert_int_equal(alloc_status_parse(names[i], &s), 0);
		assert_int_equal(s, i);
	}
	enum alloc_status s = ALLOC_EXPIRED;
	assert_int_equal(alloc_status_parse("Approved", &s), ERR_INVALID);
	assert_int_equal(alloc_status_parse("", &s), ERR_INVALID);
	assert_int_equal(alloc_status_parse("done", &s), ERR_INVALID);
	assert_int_equal(alloc_status_parse(NULL, &s), ERR_INVALID);
	assert_int_equal(s, ALLOC_EXPIRED);
	assert_string_equal(alloc_event_name(ALLOC_EV_START), "start");
	assert_string_equal(alloc_event_name(ALLOC_EV_COMPLETE), "complete");
	assert_string_equal(alloc_event_name(ALLOC_EV_CANCEL), "cancel");
	assert_string_equal(alloc_event_name(ALLOC_EV_EXPIRE), "expire");
	assert_string_equal(alloc_status_name((enum alloc_status)17), "unknown");
}

static void test_err_names(void **state)
{
	(void)state;
	/* err.c has no test of its own; its names are a published contract. */
	const char *want[] = {"ok", "out-of-memory", "invalid", "not-found", "conflict",
			      "budget-exceeded", "capacity-exceeded", "forbidden", "unauthorized",
			      "idempotency-mismatch", "store-failure", "unavailable", "overflow",
			      "too-large", "malformed"};
	for (int i = 0; i < 15; i++)
		assert_string_equal(err_name(-i), want[i]);
	assert_string_equal(err_name(-15), "unknown");
	assert_string_equal(err_name(1), "unknown");
}

/* Retiring and reactivating a record (team, GPU type). */
static void test_retire_rule(void **state)
{
	int64_t m = -1;

	(void)state;
	/* Active: any write goes; retired_at is what the write names, if it names it. */
	assert_int_equal(retire_rule(0, false, false, 0, &m), 0);
	assert_int_equal(m, 0);
	assert_int_equal(retire_rule(0, true, true, 500, &m), 0);
	assert_int_equal(m, 500);
	/* Retired: retiring again is a no-op that keeps the first instant... */
	assert_int_equal(retire_rule(300, true, true, 500, &m), 1);
	assert_int_equal(m, 300);
	/* ...a reactivation goes, alone or with other fields... */
	assert_int_equal(retire_rule(300, true, true, 0, &m), 0);
	assert_int_equal(m, 0);
	assert_int_equal(retire_rule(300, true, false, 0, &m), 0);
	assert_int_equal(m, 0);
	/* ...and any other change is a conflict. */
	assert_int_equal(retire_rule(300, false, false, 0, &m), ERR_CONFLICT);
	assert_int_equal(retire_rule(300, true, false, 500, &m), ERR_CONFLICT);
	assert_int_equal(m, 300);
}

static void test_retire_action(void **state)
{
	char buf[48];

	(void)state;
	assert_string_equal(retire_action("team", false, 0, 0, buf, sizeof(buf)), "team.create");
	assert_string_equal(retire_action("team", true, 0, 9, buf, sizeof(buf)), "team.retire");
	assert_string_equal(retire_action("gpu_type", true, 9, 0, buf, sizeof(buf)),
			    "gpu_type.reactivate");
	assert_string_equal(retire_action("gpu_type", true, 0, 0, buf, sizeof(buf)),
			    "gpu_type.update");
	assert_string_equal(retire_action("team", true, 9, 9, buf, sizeof(buf)), "team.update");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_holds_resources),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_retire_rule),
		cmocka_unit_test(test_retire_action),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
