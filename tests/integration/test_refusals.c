/*
 * test_refusals.c - issue 16: refusals that say what to do, against the real
 * daemon (SQLite, and PostgreSQL with ITEST_PG=1).
 *
 * A budget refusal (allocate, quote, job) names the most GPUs and the most
 * hours that fit now, when the budget renews and the team's admins; quoting
 * either answer is approved and one GPU or one micro-hour more is not.  A
 * capacity refusal lists the GPU types with free GPUs; an unknown GPU type
 * lists the valid ids.  An Idempotency-Key replay gives the same body.  A
 * job whose name is taken is refused before anything is allocated.  The
 * refusal's words give money to the cent; its members stay exact.
 */
#include "itest.h"

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define D(state) ((struct itest_daemon *)*(state))

static struct itest_resp *quote(struct itest_daemon *d, const char *team, const char *gpu,
				long count, const char *hours)
{
	return itest_req(d, "POST", "/v1/quotes", d->admin,
			 itest_strf(d,
				    "{\"team\":\"%s\",\"gpu_type\":\"%s\",\"gpu_count\":%ld,"
				    "\"max_runtime_hours\":%s}",
				    team, gpu, count, hours));
}

static bool approved(const struct itest_resp *r)
{
	return r->status == 200 && json_is_true(json_object_get(r->json, "approved"));
}

/* The quote fits the budget: no budget suggestion (capacity may still refuse). */
static bool budget_ok(const struct itest_resp *r)
{
	if (r->status != 200)
		fail_msg("quote: %ld %s", r->status, r->body);
	return json_object_get(r->json, "max_gpus_that_fit") == NULL;
}

/* "18.168604" as whole micro-hours. */
static int64_t microhours(const char *s)
{
	int64_t v = 0;

	assert_true(itest_money_parse(s, &v) == 0); /* the same 6-decimal grammar */
	return v;
}

static const char *hours_text(struct itest_daemon *d, int64_t uh)
{
	return itest_strf(d, "%lld.%06lld", (long long)(uh / 1000000), (long long)(uh % 1000000));
}

/* The first day of next month, 00:00 UTC, as RFC 3339. */
static const char *next_month(struct itest_daemon *d)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	return itest_strf(d, "%04d-%02d-01T00:00:00Z", tm.tm_mon == 11 ? tm.tm_year + 1901
								: tm.tm_year + 1900,
			  tm.tm_mon == 11 ? 1 : tm.tm_mon + 2);
}

/*
 * The answers of a budget refusal fit, and one more does not: for team
 * `team` (fresh budget) asking count x gpu for hours.
 */
static void check_fit(struct itest_daemon *d, const char *team, const char *gpu, long count,
		      const char *hours)
{
	struct itest_resp *r = itest_allocate(d, d->admin, team, "p", gpu, count, hours);

	ITEST_PROBLEM(r, 409, "budget-exceeded");
	json_t *mg = json_object_get(r->json, "max_gpus_that_fit");
	const char *mh = itest_jstr(r->json, "max_hours_that_fit");
	if (!json_is_integer(mg) || mh == NULL)
		fail_msg("the budget refusal does not say what fits: %s", r->body);
	long g = (long)json_integer_value(mg);
	int64_t uh = microhours(mh);
	ITEST_STREQ(itest_jstr(r->json, "budget_renews_at"), next_month(d));
	if (!json_is_array(json_object_get(r->json, "team_admins")))
		fail_msg("team_admins is not an array: %s", r->body);

	/* The quote of the same request carries the same answers. */
	struct itest_resp *q = quote(d, team, gpu, count, hours);
	ITEST_STATUS(q, 200);
	assert_false(approved(q));
	assert_int_equal(itest_jint(q->json, "max_gpus_that_fit"), g);
	ITEST_STREQ(itest_jstr(q->json, "max_hours_that_fit"), mh);

	/* The most GPUs (also free now): approved; one more: refused. */
	if (g > 0 && !approved(quote(d, team, gpu, g, hours)))
		fail_msg("%ld GPUs for %s h should be approved (%s)", g, hours, r->body);
	if (approved(quote(d, team, gpu, g + 1, hours)))
		fail_msg("%ld GPUs for %s h should be refused (%s)", g + 1, hours, r->body);
	/* The most hours (rounded down) fit the budget; one micro-hour more does not. */
	if (uh > 0 && !budget_ok(quote(d, team, gpu, count, hours_text(d, uh))))
		fail_msg("%ld GPUs for %s h should fit the budget (%s)", count, mh, r->body);
	if (budget_ok(quote(d, team, gpu, count, hours_text(d, uh + 1))))
		fail_msg("%ld GPUs for %s h should not fit the budget (%s)", count,
			 hours_text(d, uh + 1), r->body);
	/* And the allocation itself is approved at the answer (GPUs free). */
	if (uh > 0 && approved(quote(d, team, gpu, count, hours_text(d, uh))))
		ITEST_STATUS(itest_allocate(d, d->admin, team, "p", gpu, count, hours_text(d, uh)), 201);
}

static void test_budget_refusal_says_what_fits(void **state)
{
	struct itest_daemon *d = D(state);

	itest_put_gpu(d, "g1", "6.88", 16);
	itest_put_gpu(d, "g3", "3.333333", 64);
	itest_put_team(d, "ta", "1000");
	struct itest_resp *r = itest_allocate(d, d->admin, "ta", "p", "g1", 8, "24");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	/* 1000 / (6.88 x 24) = 6.06 GPUs; 1000 / (8 x 6.88) = 18.1686046 h, rounded down. */
	assert_int_equal(itest_jint(r->json, "max_gpus_that_fit"), 6);
	ITEST_STREQ(itest_jstr(r->json, "max_hours_that_fit"), "18.168604");
	ITEST_STREQ(itest_jstr(r->json, "currency"), "USD");

	/* The property on awkward numbers: prices with 6 decimals, rounding half up. */
	const struct {
		const char *gpu, *budget, *hours;
		long count;
	} cases[] = {
		{"g3", "100", "10", 7},        {"g3", "0.01", "1", 1},  {"g1", "13.76", "2", 2},
		{"g3", "1234.567891", "168", 64}, {"g1", "0.000001", "0.5", 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *team = itest_strf(d, "fit%zu", i);
		itest_put_team(d, team, cases[i].budget);
		check_fit(d, team, cases[i].gpu, cases[i].count, cases[i].hours);
	}
}

/* The GPU answer is bounded by the free GPUs as well as by the budget. */
static void test_max_gpus_bounded_by_free(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;

	itest_put_gpu(d, "g1", "1.00", 4);
	itest_put_team(d, "ta", "100000");
	ITEST_STATUS(itest_allocate(d, d->admin, "ta", "p", "g1", 3, "1"), 201); /* 1 free */
	/* 3 x 2 h = 6 > 5: the budget would take 2 GPUs, 1 is free. */
	itest_put_team(d, "tb", "5");
	r = itest_allocate(d, d->admin, "tb", "p", "g1", 3, "2");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	assert_int_equal(itest_jint(r->json, "max_gpus_that_fit"), 1);
	ITEST_STREQ(itest_jstr(r->json, "max_hours_that_fit"), "1.666666");
	ITEST_STATUS(itest_allocate(d, d->admin, "ta", "p", "g1", 1, "1"), 201); /* 0 free */
	r = itest_allocate(d, d->admin, "tb", "p", "g1", 3, "2");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	assert_int_equal(itest_jint(r->json, "max_gpus_that_fit"), 0);
}

/* A replay of a refusal is the same body (less the fresh request's instance). */
static void test_replay_same_body(void **state)
{
	struct itest_daemon *d = D(state);
	const char *hdr[] = {"Idempotency-Key: refused-1", NULL};
	const char *body = "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":8,"
			   "\"max_runtime_hours\":24}";

	itest_put_gpu(d, "g1", "6.88", 16);
	itest_put_gpu(d, "g2", "2.00", 2);
	itest_put_team(d, "ta", "1000");
	struct itest_resp *a = itest_req_h(d, "POST", "/v1/allocations", d->admin, body, hdr);
	ITEST_PROBLEM(a, 409, "budget-exceeded");
	/* What fits changes (the budget grows), the replay does not. */
	itest_put_team(d, "ta", "1200");
	struct itest_resp *b = itest_req_h(d, "POST", "/v1/allocations", d->admin, body, hdr);
	ITEST_PROBLEM(b, 409, "budget-exceeded");
	json_object_del(a->json, "instance");
	if (!json_equal(a->json, b->json))
		fail_msg("the replay differs:\n%s\n%s", a->body, b->body);
	assert_int_equal(itest_jint(b->json, "max_gpus_that_fit"), 6);

	/* A capacity refusal replays its free types too. */
	const char *hdr2[] = {"Idempotency-Key: refused-2", NULL};
	const char *body2 = "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g2\",\"gpu_count\":2,"
			    "\"max_runtime_hours\":1}";
	ITEST_STATUS(itest_allocate(d, d->admin, "ta", "p", "g2", 1, "1"), 201);
	a = itest_req_h(d, "POST", "/v1/allocations", d->admin, body2, hdr2);
	ITEST_PROBLEM(a, 409, "capacity-exceeded");
	ITEST_STATUS(itest_allocate(d, d->admin, "ta", "p", "g1", 4, "1"), 201);
	b = itest_req_h(d, "POST", "/v1/allocations", d->admin, body2, hdr2);
	json_object_del(a->json, "instance");
	if (!json_equal(a->json, b->json))
		fail_msg("the capacity replay differs:\n%s\n%s", a->body, b->body);
}

static void test_capacity_lists_free_types(void **state)
{
	struct itest_daemon *d = D(state);

	itest_put_gpu(d, "g1", "6.88", 16);
	itest_put_gpu(d, "g2", "2.00", 4);
	itest_put_gpu(d, "g0", "1.00", 0); /* no GPUs at all: never suggested */
	itest_put_team(d, "ta", "100000");
	ITEST_STATUS(itest_allocate(d, d->admin, "ta", "p", "g2", 3, "1"), 201);
	ITEST_STATUS(itest_allocate(d, d->admin, "ta", "p", "g1", 5, "1"), 201);
	struct itest_resp *r = itest_allocate(d, d->admin, "ta", "p", "g2", 2, "1");
	ITEST_PROBLEM(r, 409, "capacity-exceeded");
	json_t *ft = json_object_get(r->json, "free_gpu_types");
	if (json_array_size(ft) != 2)
		fail_msg("expected g1 and g2 with free GPUs: %s", r->body);
	/* Most free first, with name and price. */
	ITEST_STREQ(itest_jstr(json_array_get(ft, 0), "id"), "g1");
	assert_int_equal(itest_jint(json_array_get(ft, 0), "free_gpus"), 11);
	ITEST_STREQ(itest_jstr(json_array_get(ft, 0), "name"), "GPU g1");
	ITEST_STREQ(itest_jstr(json_array_get(ft, 0), "price_per_gpu_hour"), "6.88");
	ITEST_STREQ(itest_jstr(json_array_get(ft, 1), "id"), "g2");
	assert_int_equal(itest_jint(json_array_get(ft, 1), "free_gpus"), 1);
	assert_null(json_object_get(r->json, "max_gpus_that_fit"));

	/* The quote lists them too. */
	r = quote(d, "ta", "g2", 2, "1");
	ITEST_STATUS(r, 200);
	assert_false(approved(r));
	assert_int_equal(json_array_size(json_object_get(r->json, "free_gpu_types")), 2);
}

static void test_unknown_type_lists_valid(void **state)
{
	struct itest_daemon *d = D(state);

	itest_put_gpu(d, "g1", "6.88", 16);
	itest_put_gpu(d, "g2", "2.00", 4);
	itest_put_team(d, "ta", "1000");
	struct itest_resp *rs[] = {
		itest_allocate(d, d->admin, "ta", "p", "h100", 1, "1"),
		quote(d, "ta", "h100", 1, "1"),
		itest_req(d, "POST", "/v1/jobs", d->admin,
			  "{\"team\":\"ta\",\"project\":\"p\",\"name\":\"j\",\"framework\":\"pytorch\","
			  "\"gpu_type\":\"h100\",\"gpu_count\":1,\"max_runtime_hours\":1}"),
	};
	for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++) {
		struct itest_resp *r = rs[i];
		ITEST_PROBLEM(r, 422, "validation-error");
		assert_true(itest_problem_names_field(r, "gpu_type"));
		json_t *v = json_object_get(r->json, "valid_gpu_types");
		bool g1 = false, g2 = false;
		size_t k;
		json_t *e;
		json_array_foreach(v, k, e) {
			g1 |= strcmp(json_string_value(e), "g1") == 0;
			g2 |= strcmp(json_string_value(e), "g2") == 0;
		}
		const char *detail = itest_jstr(r->json, "detail");
		if (!g1 || !g2 || detail == NULL || strstr(detail, "g1") == NULL ||
		    strstr(detail, "g2") == NULL)
			fail_msg("request %zu: the valid ids are not listed: %s", i, r->body);
	}
}

static const char *team_reserved(struct itest_daemon *d, const char *team)
{
	struct itest_resp *r = itest_req(d, "GET", itest_strf(d, "/v1/teams/%s", team), d->admin, NULL);

	ITEST_STATUS(r, 200);
	return itest_jstr(r->json, "reserved");
}

static size_t alloc_count(struct itest_daemon *d, const char *team)
{
	struct itest_resp *r = itest_req(d, "GET", itest_strf(d, "/v1/allocations?team=%s", team),
					 d->admin, NULL);

	ITEST_STATUS(r, 200);
	return json_array_size(json_object_get(r->json, "items"));
}

/* A job name in use is refused before anything is allocated; the job has a currency. */
static void test_job_resubmit_allocates_nothing(void **state)
{
	struct itest_daemon *d = D(state);
	const char *job = "{\"team\":\"ta\",\"project\":\"p\",\"name\":\"train\",\"framework\":"
			  "\"pytorch\",\"gpu_type\":\"g1\",\"gpu_count\":1,\"max_runtime_hours\":1}";

	itest_put_gpu(d, "g1", "6.88", 16);
	itest_put_team(d, "ta", "100");
	struct itest_resp *r = itest_req(d, "POST", "/v1/jobs", d->admin, job);
	ITEST_STATUS(r, 201);
	ITEST_STREQ(itest_jstr(r->json, "estimated_cost"), "6.88");
	ITEST_STREQ(itest_jstr(r->json, "currency"), "USD");
	const char *alloc = itest_jstr(r->json, "allocation.id");
	assert_non_null(alloc);
	const char *reserved = team_reserved(d, "ta");
	size_t n = alloc_count(d, "ta");

	r = itest_req(d, "POST", "/v1/jobs", d->admin, job);
	ITEST_PROBLEM(r, 409, "job-exists");
	ITEST_STREQ(itest_jstr(r->json, "name"), "train");
	ITEST_STREQ(itest_jstr(r->json, "allocation_id"), alloc);
	ITEST_STREQ(itest_jstr(r->json, "allocation_status"), "approved");
	if (strstr(itest_jstr(r->json, "detail"), alloc) == NULL)
		fail_msg("the detail does not name the allocation: %s", r->body);
	ITEST_STREQ(team_reserved(d, "ta"), reserved);
	assert_int_equal(alloc_count(d, "ta"), n);

	/* A budget refusal of a job says what fits, as an allocation's does. */
	r = itest_req(d, "POST", "/v1/jobs", d->admin,
		      "{\"team\":\"ta\",\"project\":\"p\",\"name\":\"big\",\"framework\":\"pytorch\","
		      "\"gpu_type\":\"g1\",\"gpu_count\":8,\"max_runtime_hours\":24}");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	/* 93.12 left: 0 GPUs for 24 h (165.12 each), 93.12 / 55.04 = 1.691860 h */
	assert_int_equal(itest_jint(r->json, "max_gpus_that_fit"), 0);
	ITEST_STREQ(itest_jstr(r->json, "max_hours_that_fit"), "1.69186");
	ITEST_STREQ(itest_jstr(r->json, "budget_renews_at"), next_month(d));
}

/*
 * A refusal's words round money to the cent, half-up from the exact decimal,
 * for a person; the members beside them keep the exact amounts (allocation,
 * quote, job alike).
 */
static void test_refusal_text_in_cents(void **state)
{
	struct itest_daemon *d = D(state);
	const char *want = "estimated cost 640.82 USD exceeds the 393.44 USD available";

	itest_put_gpu(d, "l4", "1.6688", 96);
	itest_put_team(d, "tf", "393.439804");
	/* 8 x 1.6688 x 48 = 640.8192 */
	struct itest_resp *r = itest_allocate(d, d->admin, "tf", "p", "l4", 8, "48");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	ITEST_STREQ(itest_jstr(r->json, "detail"), want);
	ITEST_STREQ(itest_jstr(r->json, "estimated_cost"), "640.8192");
	ITEST_STREQ(itest_jstr(r->json, "available"), "393.439804");

	struct itest_resp *q = quote(d, "tf", "l4", 8, "48");
	ITEST_STATUS(q, 200);
	ITEST_STREQ(json_string_value(json_array_get(json_object_get(q->json, "reasons"), 0)),
		    "budget: needs 640.82 USD, 393.44 USD available");
	ITEST_STREQ(itest_jstr(q->json, "estimated_cost"), "640.8192");
	ITEST_STREQ(itest_jstr(q->json, "available"), "393.439804");

	r = itest_req(d, "POST", "/v1/jobs", d->admin,
		      "{\"team\":\"tf\",\"project\":\"p\",\"name\":\"big\",\"framework\":\"pytorch\","
		      "\"gpu_type\":\"l4\",\"gpu_count\":8,\"max_runtime_hours\":48}");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	ITEST_STREQ(itest_jstr(r->json, "detail"), want);
	ITEST_STREQ(itest_jstr(r->json, "estimated_cost"), "640.8192");

	/* Half a cent rounds up, a micro less rounds down: 1 x 1.6688 x 7 = 11.6816. */
	itest_put_team(d, "th", "10.005");
	r = itest_allocate(d, d->admin, "th", "p", "l4", 1, "7");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	ITEST_STREQ(itest_jstr(r->json, "detail"),
		    "estimated cost 11.68 USD exceeds the 10.01 USD available");
	itest_put_team(d, "th", "10.004999");
	r = itest_allocate(d, d->admin, "th", "p", "l4", 1, "7");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	ITEST_STREQ(itest_jstr(r->json, "detail"),
		    "estimated cost 11.68 USD exceeds the 10.00 USD available");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refusal_text_in_cents, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_budget_refusal_says_what_fits,
						itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_max_gpus_bounded_by_free, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_replay_same_body, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_capacity_lists_free_types, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_unknown_type_lists_valid, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_job_resubmit_allocates_nothing,
						itest_setup_daemon, itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-refusals", tests, NULL, NULL);
}
