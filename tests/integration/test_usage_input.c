/*
 * test_usage_input.c - issue 11, findings 6, 10 (export) and 12 against the
 * real daemon (SQLite, and PostgreSQL with ITEST_PG=1).
 *
 * Finding 6: only a service or admin token may report started_at/ended_at,
 * within the allocation's life and never in the future; a member's start
 * and complete happen at the server's clock.
 * Finding 10: the FOCUS export neutralises spreadsheet formulas in text cells.
 * Finding 12: non-canonical money, thresholds finer than 1 ppm, a charset
 * other than UTF-8 and a token team list too long to store are refused with
 * a 4xx naming the problem, never accepted or answered 500.
 */
#include "itest.h"

#include <stdlib.h>
#include <time.h>

#define D(state) ((struct itest_daemon *)*(state))

static const char *time_str(struct itest_daemon *d, int64_t t)
{
	char *buf = itest_keep(d, malloc(32));

	assert_non_null(buf);
	itest_time_format(t, buf);
	return buf;
}

static struct itest_resp *transition(struct itest_daemon *d, const char *token, const char *id,
				     const char *what, const char *body)
{
	return itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/%s", id, what), token, body);
}

/* A fresh approved allocation of team ta (2 x g1 at 3.60/h for 1 h). */
static const char *approved(struct itest_daemon *d, int64_t *approved_at)
{
	struct itest_resp *r = itest_allocate(d, d->admin, "ta", "p", "g1", 2, "1");

	ITEST_STATUS(r, 201);
	*approved_at = itest_time_parse(itest_jstr(r->json, "approved_at"));
	assert_true(*approved_at > 0);
	return itest_jstr(r->json, "id");
}

static const char *status_of(struct itest_daemon *d, const char *id)
{
	struct itest_resp *r = itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", id), d->admin,
					 NULL);

	ITEST_STATUS(r, 200);
	return itest_jstr(r->json, "status");
}

/* Sends a request that must be a 422 naming `field`. */
static void expect_invalid(struct itest_daemon *d, const char *method, const char *path,
			   const char *body, const char *field)
{
	struct itest_resp *r = itest_req(d, method, path, d->admin, body);

	ITEST_PROBLEM(r, 422, "validation-error");
	if (!itest_problem_names_field(r, field))
		fail_msg("the 422 does not name %s: %s", field, r->body);
}

/* GPU type g1 (3.60/h, 8 GPUs), team ta (1000); returns a member token of ta. */
static const char *fixture(struct itest_daemon *d)
{
	itest_put_gpu(d, "g1", "3.60", 8);
	itest_put_team(d, "ta", "1000");
	return itest_make_token(d, "member", "[\"ta\"]", NULL);
}

/* Finding 6: a member may not say when its job ran. */
static void test_member_may_not_report_times(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	int64_t at;

	const char *member = fixture(d);
	const char *id = approved(d, &at);

	/* started_at 299 s ahead was accepted (300 s of "skew"). */
	r = transition(d, member, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, at + 299)));
	ITEST_PROBLEM(r, 403, "forbidden");
	if (strstr(itest_jstr(r->json, "detail") ? itest_jstr(r->json, "detail") : "",
		   "service or admin") == NULL)
		fail_msg("the 403 does not say who may give started_at: %s", r->body);
	ITEST_STREQ(status_of(d, id), "approved");
	/* started_at equal to the approval: still the member's own report. */
	r = transition(d, member, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, at)));
	ITEST_PROBLEM(r, 403, "forbidden");

	/* Without a time the member starts at the server's clock. */
	time_t before = time(NULL);
	r = transition(d, member, id, "start", "{}");
	time_t after = time(NULL);
	ITEST_STATUS(r, 200);
	int64_t started = itest_time_parse(itest_jstr(r->json, "started_at"));
	assert_true(started >= (int64_t)before - 1 && started <= (int64_t)after + 1);

	/* ended_at == started_at would have charged 0.00 for a job that ran. */
	r = transition(d, member, id, "complete",
		       itest_strf(d, "{\"ended_at\":\"%s\"}", time_str(d, started)));
	ITEST_PROBLEM(r, 403, "forbidden");
	ITEST_STREQ(status_of(d, id), "running");
	r = transition(d, member, id, "complete", NULL);
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "completed");
	int64_t ended = itest_time_parse(itest_jstr(r->json, "ended_at"));
	assert_true(ended >= started && ended <= (int64_t)time(NULL) + 1);
}

/* Finding 6: a start after expires_at (here 60 s after approval). */
static int setup_short_expiry(void **state)
{
	static const char *const args[] = {"--start-timeout", "60", NULL};
	struct itest_daemon *d = itest_daemon_new(args);

	if (d == NULL)
		return -1;
	*state = d;
	return 0;
}

static void test_start_after_expiry(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	int64_t at;

	const char *member = fixture(d);
	const char *service = itest_make_token(d, "service", NULL, NULL);
	const char *id = approved(d, &at);

	r = transition(d, member, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, at + 120)));
	ITEST_PROBLEM(r, 403, "forbidden");
	r = transition(d, service, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, at + 120)));
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "started_at"));
	ITEST_STREQ(status_of(d, id), "approved");
}

/* Finding 6: a service (or admin) reports times, within the allocation's life. */
static void test_service_reports_within_life(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	int64_t at;

	fixture(d);
	const char *service = itest_make_token(d, "service", NULL, NULL);
	const char *id = approved(d, &at);

	/* More than a few seconds ahead is the future: 60 s was accepted. */
	r = transition(d, service, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, time(NULL) + 60)));
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "started_at"));
	/* Before the approval: the message quotes the approval, not the caller. */
	const char *early = time_str(d, at - 3600);
	r = transition(d, service, id, "start", itest_strf(d, "{\"started_at\":\"%s\"}", early));
	ITEST_PROBLEM(r, 422, "validation-error");
	if (strstr(r->body, time_str(d, at)) == NULL || strstr(r->body, early) != NULL)
		fail_msg("the message should quote the approval %s, not %s: %s", time_str(d, at),
			 early, r->body);
	ITEST_STREQ(status_of(d, id), "approved");

	r = transition(d, service, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, at)));
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "started_at"), time_str(d, at));
	/* An end in the future (30 s) was accepted and charged for time not yet used. */
	r = transition(d, service, id, "complete",
		       itest_strf(d, "{\"ended_at\":\"%s\"}", time_str(d, time(NULL) + 30)));
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "ended_at"));
	ITEST_STREQ(status_of(d, id), "running");
	r = transition(d, service, id, "complete",
		       itest_strf(d, "{\"ended_at\":\"%s\"}", time_str(d, at)));
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "actual_cost", "0.00");

	/* An admin may report too. */
	id = approved(d, &at);
	r = transition(d, d->admin, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, at)));
	ITEST_STATUS(r, 200);
}

/* Finding 12: money is canonical. */
static void test_canonical_money(void **state)
{
	struct itest_daemon *d = D(state);
	static const char *const bad_amounts[] = {"01.00", "00", "007", "00.5"};

	for (size_t i = 0; i < sizeof(bad_amounts) / sizeof(bad_amounts[0]); i++) {
		expect_invalid(d, "PUT", "/v1/teams/tz",
			       itest_strf(d, "{\"display_name\":\"Z\",\"budget\":{\"amount\":\"%s\","
					     "\"period\":\"monthly\"}}", bad_amounts[i]),
			       "budget.amount");
	}
	expect_invalid(d, "PUT", "/v1/gpu-types/gz",
		       "{\"name\":\"Z\",\"price_per_gpu_hour\":\"01.5\",\"capacity\":1}",
		       "price_per_gpu_hour");
	/* Nothing was created by the refusals. */
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/teams/tz", d->admin, NULL), 404, "not-found");
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/gpu-types/gz", d->admin, NULL), 404, "not-found");
}

/* Finding 12: a threshold is a whole number of ppm (1e-320 became 0 ppm). */
static void test_whole_ppm_thresholds(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	static const char *const bad_thresholds[] = {"[1e-320]", "[0.0000001]", "[0.5, 0.5000001]",
						     "[1.0000005]", "[0]"};

	for (size_t i = 0; i < sizeof(bad_thresholds) / sizeof(bad_thresholds[0]); i++) {
		expect_invalid(d, "PUT", "/v1/teams/tz",
			       itest_strf(d, "{\"display_name\":\"Z\",\"budget\":{\"amount\":\"10\","
					     "\"period\":\"monthly\"},\"alert_thresholds\":%s}",
					  bad_thresholds[i]),
			       "alert_thresholds[");
	}
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/teams/tz", d->admin, NULL), 404, "not-found");

	r = itest_req(d, "PUT", "/v1/teams/tz", d->admin,
		      "{\"display_name\":\"Z\",\"budget\":{\"amount\":\"0.50\",\"period\":\"monthly\"},"
		      "\"alert_thresholds\":[0.000001,0.5,1.25,10]}");
	ITEST_STATUS(r, 201);
	ITEST_MONEY(r->json, "budget.amount", "0.50");
}

/* Finding 12: the body is UTF-8; any other declared charset is 415. */
static void test_charset(void **state)
{
	struct itest_daemon *d = D(state);
	static const char *const body =
		"{\"team\":\"ta\",\"gpu_type\":\"g1\",\"gpu_count\":1,\"max_runtime_hours\":1}";
	static const char *const bad[] = {"application/json; charset=latin1",
					  "application/json;charset=iso-8859-1",
					  "application/json; charset=\"utf-16\"",
					  "application/json; charset=utf-8x",
					  "application/json; charset="};
	static const char *const good[] = {"application/json", "application/json; charset=utf-8",
					   "application/json;charset=UTF-8",
					   "application/json; charset=\"utf-8\""};

	fixture(d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *h[] = {itest_strf(d, "Content-Type: %s", bad[i]), NULL};
		struct itest_resp *r = itest_req_h(d, "POST", "/v1/quotes", d->admin, body, h);
		if (!itest_is_problem(r, 415, "unsupported-media-type"))
			fail_msg("%s: HTTP %ld %s", bad[i], r->status, r->body);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *h[] = {itest_strf(d, "Content-Type: %s", good[i]), NULL};
		struct itest_resp *r = itest_req_h(d, "POST", "/v1/quotes", d->admin, body, h);
		if (r->status != 200)
			fail_msg("%s: HTTP %ld %s", good[i], r->status, r->body);
	}
}

/* Finding 12: a team list too long to store is the caller's error (422), not a 500. */
static void test_token_team_list_too_long(void **state)
{
	struct itest_daemon *d = D(state);
	char list[2048] = "[";
	size_t len = 1;

	for (int i = 0; i < 16; i++) {
		/* 63-byte ids: "t" + 60 x "a" + 2 digits. */
		const char *id = itest_strf(d, "t%s%02d",
					    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", i);
		itest_put_team(d, id, "10");
		int n = snprintf(list + len, sizeof(list) - len, "%s\"%s\"", i ? "," : "", id);
		assert_true(n > 0 && (size_t)n < sizeof(list) - len);
		len += (size_t)n;
	}
	assert_true(len + 1 < sizeof(list));
	list[len++] = ']';
	list[len] = '\0';
	expect_invalid(d, "POST", "/v1/tokens",
		       itest_strf(d, "{\"name\":\"many\",\"role\":\"member\",\"teams\":%s}", list),
		       "teams");
	/* More than 16 is refused as such, and a non-array is a field error too. */
	expect_invalid(d, "POST", "/v1/tokens",
		       "{\"name\":\"x\",\"role\":\"service\",\"teams\":[\"a\",\"b\",\"c\",\"d\",\"e\","
		       "\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}",
		       "teams");
	expect_invalid(d, "POST", "/v1/tokens",
		       "{\"name\":\"x\",\"role\":\"service\",\"teams\":\"ta\"}", "teams");
	/* Nothing was stored: only the bootstrap admin token exists. */
	struct itest_resp *r = itest_req(d, "GET", "/v1/tokens", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
}

/* Finding 10: text cells of the FOCUS export cannot start a formula. */
static void test_export_formula_cells(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;

	itest_put_gpu(d, "g1", "3.60", 8);
	r = itest_req(d, "PUT", "/v1/teams/ta", d->admin,
		      "{\"display_name\":\"=HYPERLINK(\\\"http://x\\\",\\\"y\\\")\","
		      "\"budget\":{\"amount\":\"1000\",\"period\":\"monthly\"}}");
	ITEST_STATUS(r, 201);
	r = itest_req(d, "POST", "/v1/allocations", d->admin,
		      "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
		      "\"max_runtime_hours\":1,\"purpose\":\"@SUM(1+1)\"}");
	ITEST_STATUS(r, 201);
	const char *id = itest_jstr(r->json, "id");
	int64_t at = itest_time_parse(itest_jstr(r->json, "approved_at"));
	ITEST_STATUS(transition(d, d->admin, id, "start",
				itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, at))),
		     200);
	/* At least one whole second of use, so the row has a cost. */
	for (int i = 0; i < 30 && time(NULL) < at + 2; i++)
		itest_sleep_ms(100);
	ITEST_STATUS(transition(d, d->admin, id, "complete",
				itest_strf(d, "{\"ended_at\":\"%s\"}", time_str(d, at + 2))),
		     200);

	char from[11], to[11];
	time_t day = (time_t)(at - at % 86400);
	strftime(from, sizeof(from), "%Y-%m-%d", gmtime(&(time_t){day}));
	strftime(to, sizeof(to), "%Y-%m-%d", gmtime(&(time_t){day + 2 * 86400}));
	r = itest_req(d, "GET", itest_strf(d, "/v1/costs/export?format=focus&from=%s&to=%s", from, to),
		      d->admin, NULL);
	ITEST_STATUS(r, 200);
	if (strstr(r->body, ",\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",") == NULL ||
	    strstr(r->body, ",\"'@SUM(1+1)\",") == NULL)
		fail_msg("formula cells are not neutralised:\n%s", r->body);
	if (strstr(r->body, ",=") != NULL || strstr(r->body, ",\"=") != NULL ||
	    strstr(r->body, ",@") != NULL)
		fail_msg("a cell starts with a formula character:\n%s", r->body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_member_may_not_report_times, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_start_after_expiry, setup_short_expiry,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_service_reports_within_life, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_canonical_money, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_whole_ppm_thresholds, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_charset, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_token_team_list_too_long, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_export_formula_cells, itest_setup_daemon,
						itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-usage-input", tests, NULL, NULL);
}
