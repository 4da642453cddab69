/*
 * test_api.c - every endpoint of the HTTP API against the real daemon:
 * roles and isolation, the allocation lifecycle with exact per-second costs,
 * idempotency, price changes, expiry, costs, audit, OpenAPI and health.
 *
 * Each test gets a fresh daemon and data directory, so no test may depend on
 * another's state, and none may weaken an expectation to fit the daemon.
 */
#include "itest.h"

#include <stdlib.h>
#include <time.h>

#define D(state) ((struct itest_daemon *)*(state))

static int setup_daemon_with(void **state, const char *const *args)
{
	struct itest_daemon *d = itest_daemon_new(args);

	if (d == NULL)
		return -1;
	*state = d;
	return 0;
}

static int setup_expiry_daemon(void **state)
{
	static const char *const args[] = {"--start-timeout", "1", "--sweep-interval", "1", NULL};

	return setup_daemon_with(state, args);
}

/* Allocations expire after 1 s, but only a decision expires them: no sweep. */
static int setup_unswept_daemon(void **state)
{
	static const char *const args[] = {"--start-timeout", "1", "--sweep-interval", "3600", NULL};

	return setup_daemon_with(state, args);
}

static void assert_time_field(json_t *o, const char *path)
{
	const char *s = itest_jstr(o, path);

	if (s == NULL || itest_time_parse(s) < 0) {
		fprintf(stderr, "field %s: not an RFC 3339 UTC time: %s\n", path, s ? s : "(null)");
		fail();
	}
}

static void assert_null_field(json_t *o, const char *path)
{
	json_t *v = itest_jget(o, path);

	if (!json_is_null(v)) {
		fprintf(stderr, "field %s: expected null\n", path);
		fail();
	}
}

/* GET a team (admin) and return its JSON. */
static json_t *get_team(struct itest_daemon *d, const char *team)
{
	struct itest_resp *r = itest_req(d, "GET", itest_strf(d, "/v1/teams/%s", team), d->admin, NULL);

	ITEST_STATUS(r, 200);
	return r->json;
}

static json_t *get_gpu(struct itest_daemon *d, const char *id)
{
	struct itest_resp *r = itest_req(d, "GET", itest_strf(d, "/v1/gpu-types/%s", id), d->admin, NULL);

	ITEST_STATUS(r, 200);
	return r->json;
}

static json_t *get_alloc(struct itest_daemon *d, const char *id)
{
	struct itest_resp *r = itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", id), d->admin, NULL);

	ITEST_STATUS(r, 200);
	return r->json;
}

/* POST a transition with an optional body; returns the response. */
static struct itest_resp *transition(struct itest_daemon *d, const char *token, const char *id,
				     const char *verb, const char *body)
{
	return itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/%s", id, verb), token, body);
}

static const char *time_str(struct itest_daemon *d, int64_t t)
{
	char *buf = itest_keep(d, malloc(32));

	assert_non_null(buf);
	itest_time_format(t, buf);
	return buf;
}

/* Allocates and asserts 201; returns the allocation JSON. */
static json_t *allocate_ok(struct itest_daemon *d, const char *token, const char *team,
			   const char *project, const char *gpu, long count, const char *hours)
{
	struct itest_resp *r = itest_allocate(d, token, team, project, gpu, count, hours);

	ITEST_STATUS(r, 201);
	ITEST_STREQ(itest_jstr(r->json, "status"), "approved");
	return r->json;
}

/* An admin may report an end at most this far ahead of the server's clock. */
#define REPORT_SKEW_S 5

/* Waits (bounded) until an end at `end` is no longer in the future. */
static void wait_until_reportable(int64_t end)
{
	for (int i = 0; i < 300 && (int64_t)time(NULL) + REPORT_SKEW_S - 1 < end; i++)
		itest_sleep_ms(100);
}

/* Starts at approved_at + start_off and completes after used seconds (an
 * admin reports both; the end may not be in the future, so this waits). */
static json_t *run_for(struct itest_daemon *d, json_t *alloc, int64_t start_off, int64_t used)
{
	const char *id = itest_jstr(alloc, "id");
	int64_t approved = itest_time_parse(itest_jstr(alloc, "approved_at"));
	struct itest_resp *r;

	assert_true(approved > 0);
	wait_until_reportable(approved + start_off + used);
	r = transition(d, d->admin, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, approved + start_off)));
	ITEST_STATUS(r, 200);
	r = transition(d, d->admin, id, "complete",
		       itest_strf(d, "{\"ended_at\":\"%s\"}",
				  time_str(d, approved + start_off + used)));
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "completed");
	return r->json;
}

/* ---- health, OpenAPI, routing ---- */

static void test_health_openapi_routing(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	char allow[256];

	r = itest_req(d, "GET", "/healthz", NULL, NULL);
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "ok");
	r = itest_req(d, "GET", "/readyz", NULL, NULL);
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "ready");

	r = itest_req(d, "GET", "/v1/openapi.json", NULL, NULL);
	ITEST_PROBLEM(r, 401, "unauthorized");
	r = itest_req(d, "GET", "/v1/openapi.json", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_non_null(r->json);
	ITEST_STREQ(itest_jstr(r->json, "openapi"), "3.1.0");
	assert_true(json_is_object(itest_jget(r->json, "paths")));
	assert_non_null(json_object_get(itest_jget(r->json, "paths"), "/v1/allocations"));
	assert_non_null(json_object_get(itest_jget(r->json, "paths"), "/v1/teams/{team}"));

	r = itest_req(d, "GET", "/v1/no-such-thing", d->admin, NULL);
	ITEST_PROBLEM(r, 404, "not-found");
	r = itest_req(d, "DELETE", "/v1/gpu-types", d->admin, NULL);
	ITEST_PROBLEM(r, 405, "method-not-allowed");
	assert_int_equal(itest_resp_header(r, "Allow", allow, sizeof(allow)), 0);
	assert_non_null(strstr(allow, "GET"));
}

/* ---- authentication ---- */

static void test_auth_tokens(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	const char *tok, *tok_id;
	char www[256];
	size_t i;
	json_t *it;
	int found = 0;

	r = itest_req(d, "GET", "/v1/teams", NULL, NULL);
	ITEST_PROBLEM(r, 401, "unauthorized");
	assert_int_equal(itest_resp_header(r, "WWW-Authenticate", www, sizeof(www)), 0);
	assert_int_equal(strncmp(www, "Bearer", 6), 0);

	r = itest_req(d, "GET", "/v1/teams", "plt_not-a-real-token", NULL);
	ITEST_PROBLEM(r, 401, "unauthorized");
	assert_int_equal(itest_resp_header(r, "WWW-Authenticate", www, sizeof(www)), 0);

	r = itest_req_h(d, "GET", "/v1/teams", NULL, NULL,
			(const char *const[]){"Authorization: Basic YWRtaW46YWRtaW4=", NULL});
	ITEST_PROBLEM(r, 401, "unauthorized");

	itest_put_team(d, "alpha", "100");
	r = itest_req(d, "POST", "/v1/tokens", d->admin,
		      "{\"name\":\"ci\",\"role\":\"member\",\"teams\":[\"alpha\"]}");
	ITEST_STATUS(r, 201);
	ITEST_STREQ(itest_jstr(r->json, "name"), "ci");
	ITEST_STREQ(itest_jstr(r->json, "role"), "member");
	ITEST_STREQ(json_string_value(json_array_get(itest_jget(r->json, "teams"), 0)), "alpha");
	assert_time_field(r->json, "created_at");
	tok = itest_jstr(r->json, "token");
	tok_id = itest_jstr(r->json, "id");
	assert_non_null(tok);
	assert_non_null(tok_id);

	r = itest_req(d, "GET", "/v1/teams/alpha", tok, NULL);
	ITEST_STATUS(r, 200);

	/* The list never shows secrets. */
	r = itest_req(d, "GET", "/v1/tokens", d->admin, NULL);
	ITEST_STATUS(r, 200);
	json_array_foreach(itest_jget(r->json, "items"), i, it) {
		assert_null(json_object_get(it, "token"));
		if (strcmp(itest_jstr(it, "id"), tok_id) == 0)
			found = 1;
	}
	assert_true(found);
	assert_null(strstr(r->body, tok));

	r = itest_req(d, "DELETE", itest_strf(d, "/v1/tokens/%s", tok_id), d->admin, NULL);
	ITEST_STATUS(r, 204);
	r = itest_req(d, "GET", "/v1/teams/alpha", tok, NULL);
	ITEST_PROBLEM(r, 401, "unauthorized");
	r = itest_req(d, "DELETE", "/v1/tokens/tok-does-not-exist", d->admin, NULL);
	ITEST_PROBLEM(r, 404, "not-found");

	/* A member needs at least one existing team. */
	r = itest_req(d, "POST", "/v1/tokens", d->admin,
		      "{\"name\":\"x\",\"role\":\"member\",\"teams\":[]}");
	ITEST_PROBLEM(r, 422, "validation-error");
	r = itest_req(d, "POST", "/v1/tokens", d->admin,
		      "{\"name\":\"x\",\"role\":\"member\",\"teams\":[\"nope\"]}");
	ITEST_PROBLEM(r, 422, "validation-error");
}

/* ---- catalog ---- */

static void test_gpu_types(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	json_t *items, *it, *h100 = NULL;
	const char *prev = "";
	size_t i;

	r = itest_req(d, "GET", "/v1/gpu-types", d->admin, NULL);
	ITEST_STATUS(r, 200);
	items = itest_jget(r->json, "items");
	assert_true(json_array_size(items) >= 3);
	json_array_foreach(items, i, it) {
		const char *id = itest_jstr(it, "id");

		assert_non_null(id);
		assert_true(strcmp(prev, id) < 0); /* sorted by id */
		prev = id;
		if (strcmp(id, "h100-80gb") == 0)
			h100 = it;
	}
	assert_non_null(h100);
	ITEST_MONEY(h100, "price_per_gpu_hour", "6.88");
	ITEST_STREQ(itest_jstr(h100, "currency"), "USD");
	assert_int_equal(itest_jint(h100, "capacity"), 0);
	assert_int_equal(itest_jint(h100, "allocated"), 0);
	assert_int_equal(itest_jint(h100, "available"), 0);
	assert_non_null(itest_jstr(h100, "name"));
	assert_non_null(itest_jstr(h100, "price_date"));
	assert_non_null(itest_jstr(h100, "price_source"));
	assert_time_field(h100, "updated_at");
	r = itest_req(d, "GET", "/v1/gpu-types/a100-80gb", d->admin, NULL);
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "price_per_gpu_hour", "3.430888");
	r = itest_req(d, "GET", "/v1/gpu-types/l4-24gb", d->admin, NULL);
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "price_per_gpu_hour", "1.6688");

	r = itest_req(d, "PUT", "/v1/gpu-types/test-gpu", d->admin,
		      "{\"name\":\"Test GPU\",\"price_per_gpu_hour\":\"2.5\",\"capacity\":4,"
		      "\"price_date\":\"2026-01-02\"}");
	ITEST_STATUS(r, 201);
	ITEST_STREQ(itest_jstr(r->json, "id"), "test-gpu");
	ITEST_STREQ(itest_jstr(r->json, "name"), "Test GPU");
	ITEST_MONEY(r->json, "price_per_gpu_hour", "2.50");
	ITEST_STREQ(itest_jstr(r->json, "price_date"), "2026-01-02");
	assert_int_equal(itest_jint(r->json, "capacity"), 4);
	assert_int_equal(itest_jint(r->json, "available"), 4);

	r = itest_req(d, "PUT", "/v1/gpu-types/test-gpu", d->admin,
		      "{\"name\":\"Test GPU 2\",\"price_per_gpu_hour\":\"0.000001\",\"capacity\":9}");
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "price_per_gpu_hour", "0.000001");
	r = itest_req(d, "GET", "/v1/gpu-types/test-gpu", d->admin, NULL);
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "name"), "Test GPU 2");
	assert_int_equal(itest_jint(r->json, "capacity"), 9);

	r = itest_req(d, "GET", "/v1/gpu-types/nope", d->admin, NULL);
	ITEST_PROBLEM(r, 404, "not-found");
}

/* ---- teams ---- */

static void test_teams(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	json_t *t;

	r = itest_req(d, "PUT", "/v1/teams/nlp", d->admin,
		      "{\"display_name\":\"NLP\",\"budget\":{\"amount\":\"50000\",\"period\":\"monthly\"}}");
	ITEST_STATUS(r, 201);
	t = r->json;
	ITEST_STREQ(itest_jstr(t, "id"), "nlp");
	ITEST_STREQ(itest_jstr(t, "display_name"), "NLP");
	ITEST_MONEY(t, "budget.amount", "50000.00");
	ITEST_STREQ(itest_jstr(t, "budget.period"), "monthly");
	ITEST_STREQ(itest_jstr(t, "currency"), "USD");
	ITEST_MONEY(t, "spent", "0.00");
	ITEST_MONEY(t, "reserved", "0.00");
	ITEST_MONEY(t, "accrued", "0.00");
	ITEST_MONEY(t, "available", "50000.00");
	assert_non_null(itest_jstr(t, "burn_rate_per_day"));
	assert_non_null(itest_jstr(t, "forecast_period_end"));
	assert_true(json_is_null(itest_jget(t, "budget_exhausted_at")));
	assert_int_equal(itest_jint(t, "running_allocations"), 0);
	assert_time_field(t, "period_start");
	assert_time_field(t, "period_end");
	assert_true(itest_time_parse(itest_jstr(t, "period_start")) <
		    itest_time_parse(itest_jstr(t, "period_end")));
	assert_int_equal(json_array_size(itest_jget(t, "alert_thresholds")), 3);
	assert_true(json_number_value(json_array_get(itest_jget(t, "alert_thresholds"), 0)) == 0.5);
	assert_true(json_number_value(json_array_get(itest_jget(t, "alert_thresholds"), 2)) == 1.0);

	r = itest_req(d, "PUT", "/v1/teams/nlp", d->admin,
		      "{\"display_name\":\"NLP 2\",\"budget\":{\"amount\":\"12.5\",\"period\":\"yearly\"},"
		      "\"alert_thresholds\":[0.9]}");
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "budget.amount", "12.50");
	t = get_team(d, "nlp");
	ITEST_STREQ(itest_jstr(t, "display_name"), "NLP 2");
	ITEST_STREQ(itest_jstr(t, "budget.period"), "yearly");
	ITEST_MONEY(t, "available", "12.50");
	assert_int_equal(json_array_size(itest_jget(t, "alert_thresholds")), 1);

	itest_put_team(d, "vision", "10");
	r = itest_req(d, "GET", "/v1/teams", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 2);
	r = itest_req(d, "GET", "/v1/teams/nope", d->admin, NULL);
	ITEST_PROBLEM(r, 404, "not-found");
}

/* ---- roles ---- */

static void test_roles(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	const char *fin, *svc, *mem, *adm2;
	json_t *a;
	const char *team_body =
		"{\"display_name\":\"X\",\"budget\":{\"amount\":\"1\",\"period\":\"monthly\"}}";
	const char *gpu_body = "{\"name\":\"X\",\"price_per_gpu_hour\":\"1\",\"capacity\":1}";
	const char *tok_body = "{\"name\":\"x\",\"role\":\"admin\",\"teams\":[]}";

	itest_put_gpu(d, "g1", "1.00", 10);
	itest_put_team(d, "ta", "100");
	itest_put_team(d, "tb", "100");
	fin = itest_make_token(d, "finance", NULL, NULL);
	svc = itest_make_token(d, "service", NULL, NULL);
	mem = itest_make_token(d, "member", "[\"ta\"]", NULL);
	adm2 = itest_make_token(d, "admin", NULL, NULL);

	/* A second admin can do admin things. */
	r = itest_req(d, "PUT", "/v1/teams/tc", adm2, team_body);
	ITEST_STATUS(r, 201);

	/* finance: reads everything, writes nothing. */
	ITEST_STATUS(itest_req(d, "GET", "/v1/teams", fin, NULL), 200);
	ITEST_STATUS(itest_req(d, "GET", "/v1/teams/tb", fin, NULL), 200);
	ITEST_STATUS(itest_req(d, "GET", "/v1/gpu-types", fin, NULL), 200);
	ITEST_STATUS(itest_req(d, "GET", "/v1/allocations", fin, NULL), 200);
	ITEST_STATUS(itest_req(d, "GET", "/v1/audit", fin, NULL), 200);
	ITEST_STATUS(itest_req(d, "GET", "/v1/costs", fin, NULL), 200);
	ITEST_PROBLEM(itest_req(d, "PUT", "/v1/teams/ta", fin, team_body), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "PUT", "/v1/gpu-types/g1", fin, gpu_body), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "POST", "/v1/tokens", fin, tok_body), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/tokens", fin, NULL), 403, "forbidden");
	ITEST_PROBLEM(itest_allocate(d, fin, "ta", "p", "g1", 1, "1"), 403, "forbidden");

	/* service: acts for any team, never changes budgets, prices or tokens. */
	a = allocate_ok(d, svc, "tb", "p", "g1", 1, "1");
	ITEST_STATUS(transition(d, svc, itest_jstr(a, "id"), "start", NULL), 200);
	ITEST_STATUS(transition(d, svc, itest_jstr(a, "id"), "complete", "{}"), 200);
	ITEST_STATUS(itest_req(d, "POST", "/v1/quotes", svc,
			       "{\"team\":\"ta\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
			       "\"max_runtime_hours\":1}"),
		     200);
	ITEST_STATUS(itest_req(d, "GET", "/v1/teams/ta", svc, NULL), 200);
	ITEST_PROBLEM(itest_req(d, "PUT", "/v1/teams/ta", svc, team_body), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "PUT", "/v1/gpu-types/g1", svc, gpu_body), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "POST", "/v1/tokens", svc, tok_body), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/tokens", svc, NULL), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "DELETE", "/v1/tokens/whatever", svc, NULL), 403, "forbidden");

	/* member: its teams only, no admin actions. */
	ITEST_PROBLEM(itest_req(d, "PUT", "/v1/teams/ta", mem, team_body), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "PUT", "/v1/gpu-types/g1", mem, gpu_body), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "POST", "/v1/tokens", mem, tok_body), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/audit", mem, NULL), 403, "forbidden");
	ITEST_STATUS(itest_req(d, "GET", "/v1/gpu-types", mem, NULL), 200);

	/* Nothing the refused requests tried happened. */
	ITEST_MONEY(get_team(d, "ta"), "budget.amount", "100.00");
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "capacity"), 10);
}

static void test_member_isolation(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	const char *mem;
	json_t *mine, *theirs, *it;
	size_t i;

	itest_put_gpu(d, "g1", "1.00", 10);
	itest_put_team(d, "ta", "100");
	itest_put_team(d, "tb", "100");
	mem = itest_make_token(d, "member", "[\"ta\"]", NULL);

	mine = allocate_ok(d, mem, "ta", "p", "g1", 1, "1");
	assert_non_null(itest_jstr(mine, "created_by"));
	theirs = allocate_ok(d, d->admin, "tb", "p", "g1", 1, "2");

	/* Another team's allocation does not exist for the member. */
	r = itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", itest_jstr(theirs, "id")), mem, NULL);
	ITEST_PROBLEM(r, 404, "not-found");
	r = transition(d, mem, itest_jstr(theirs, "id"), "cancel", NULL);
	ITEST_PROBLEM(r, 404, "not-found");
	ITEST_STREQ(itest_jstr(get_alloc(d, itest_jstr(theirs, "id")), "status"), "approved");
	r = itest_req(d, "GET", itest_strf(d, "/v1/allocations/%s", itest_jstr(mine, "id")), mem, NULL);
	ITEST_STATUS(r, 200);

	/* Another team is forbidden. */
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/teams/tb", mem, NULL), 403, "forbidden");
	ITEST_PROBLEM(itest_allocate(d, mem, "tb", "p", "g1", 1, "1"), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "POST", "/v1/quotes", mem,
				"{\"team\":\"tb\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
				"\"max_runtime_hours\":1}"),
		      403, "forbidden");
	ITEST_MONEY(get_team(d, "tb"), "reserved", "2.00");

	/* Lists show only its own teams. */
	r = itest_req(d, "GET", "/v1/teams", mem, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	ITEST_STREQ(itest_jstr(json_array_get(itest_jget(r->json, "items"), 0), "id"), "ta");
	r = itest_req(d, "GET", "/v1/allocations", mem, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	json_array_foreach(itest_jget(r->json, "items"), i, it)
		ITEST_STREQ(itest_jstr(it, "team"), "ta");
	r = itest_req(d, "GET", "/v1/allocations?team=tb", mem, NULL);
	assert_true(r->status == 403 ||
		    (r->status == 200 && json_array_size(itest_jget(r->json, "items")) == 0));
	r = itest_req(d, "GET", "/v1/costs", mem, NULL);
	ITEST_STATUS(r, 200);
	json_array_foreach(itest_jget(r->json, "items"), i, it)
		ITEST_STREQ(itest_jstr(it, "key"), "ta");
	ITEST_MONEY(r->json, "total.reserved", "1.00");
}

/* ---- quotes ---- */

static void test_quotes(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	json_t *reasons;

	itest_put_gpu(d, "g1", "3.25", 4);
	itest_put_team(d, "ta", "10");

	r = itest_req(d, "POST", "/v1/quotes", d->admin,
		      "{\"team\":\"ta\",\"gpu_type\":\"g1\",\"gpu_count\":2,\"max_runtime_hours\":1.5}");
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "team"), "ta");
	ITEST_STREQ(itest_jstr(r->json, "gpu_type"), "g1");
	assert_int_equal(itest_jint(r->json, "gpu_count"), 2);
	assert_true(json_number_value(itest_jget(r->json, "max_runtime_hours")) == 1.5);
	ITEST_MONEY(r->json, "price_per_gpu_hour", "3.25");
	ITEST_MONEY(r->json, "estimated_cost", "9.75");
	ITEST_MONEY(r->json, "available", "10.00");
	assert_int_equal(itest_jint(r->json, "gpus_available"), 4);
	assert_true(json_is_true(itest_jget(r->json, "approved")));
	assert_int_equal(json_array_size(itest_jget(r->json, "reasons")), 0);

	/* Over budget and over capacity: refused, with reasons. */
	r = itest_req(d, "POST", "/v1/quotes", d->admin,
		      "{\"team\":\"ta\",\"gpu_type\":\"g1\",\"gpu_count\":4,\"max_runtime_hours\":1}");
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "estimated_cost", "13.00");
	assert_true(json_is_false(itest_jget(r->json, "approved")));
	reasons = itest_jget(r->json, "reasons");
	assert_true(json_array_size(reasons) >= 1);
	assert_true(json_is_string(json_array_get(reasons, 0)));

	/* A quote changes nothing. */
	ITEST_MONEY(get_team(d, "ta"), "reserved", "0.00");
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "allocated"), 0);
	r = itest_req(d, "GET", "/v1/allocations", d->admin, NULL);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 0);
}

/* ---- lifecycle ---- */

static void test_lifecycle_exact_costs(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	json_t *a, *t, *g;
	const char *id;
	int64_t approved, started, ended;

	itest_put_gpu(d, "g1", "3.25", 8);
	itest_put_team(d, "ta", "100");

	r = itest_req(d, "POST", "/v1/allocations", d->admin,
		      "{\"team\":\"ta\",\"project\":\"llm-train\",\"gpu_type\":\"g1\",\"gpu_count\":2,"
		      "\"max_runtime_hours\":2,\"purpose\":\"fine-tune\",\"labels\":{\"k\":\"v\"}}");
	ITEST_STATUS(r, 201);
	a = r->json;
	id = itest_jstr(a, "id");
	assert_non_null(id);
	ITEST_STREQ(itest_jstr(a, "team"), "ta");
	ITEST_STREQ(itest_jstr(a, "project"), "llm-train");
	ITEST_STREQ(itest_jstr(a, "gpu_type"), "g1");
	assert_int_equal(itest_jint(a, "gpu_count"), 2);
	assert_true(json_number_value(itest_jget(a, "max_runtime_hours")) == 2.0);
	ITEST_STREQ(itest_jstr(a, "purpose"), "fine-tune");
	ITEST_STREQ(itest_jstr(a, "labels.k"), "v");
	ITEST_STREQ(itest_jstr(a, "status"), "approved");
	ITEST_MONEY(a, "price_per_gpu_hour", "3.25");
	ITEST_MONEY(a, "estimated_cost", "13.00");
	assert_null_field(a, "actual_cost");
	ITEST_MONEY(a, "accrued_cost", "0.00");
	assert_time_field(a, "approved_at");
	assert_time_field(a, "expires_at");
	assert_time_field(a, "period_start");
	assert_null_field(a, "started_at");
	assert_null_field(a, "ended_at");
	approved = itest_time_parse(itest_jstr(a, "approved_at"));
	assert_true(itest_time_parse(itest_jstr(a, "expires_at")) > approved);

	/* The GET equals the creation answer. */
	assert_true(json_equal(get_alloc(d, id), a));

	t = get_team(d, "ta");
	ITEST_MONEY(t, "reserved", "13.00");
	ITEST_MONEY(t, "spent", "0.00");
	ITEST_MONEY(t, "available", "87.00");
	g = get_gpu(d, "g1");
	assert_int_equal(itest_jint(g, "allocated"), 2);
	assert_int_equal(itest_jint(g, "available"), 6);

	/* Complete before start is impossible. */
	ITEST_PROBLEM(transition(d, d->admin, id, "complete", "{}"), 409, "conflict");
	/* started_at before approval, or far in the future: refused. */
	r = transition(d, d->admin, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, approved - 60)));
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "started_at"));
	r = transition(d, d->admin, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, approved + 7200)));
	ITEST_PROBLEM(r, 422, "validation-error");
	ITEST_STREQ(itest_jstr(get_alloc(d, id), "status"), "approved");

	started = approved;
	ended = started + 9; /* 9 s: an exact amount of micros at 2 x 3.25/h */
	r = transition(d, d->admin, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, started)));
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "running");
	ITEST_STREQ(itest_jstr(r->json, "started_at"), time_str(d, started));
	assert_true(itest_jmoney(r->json, "accrued_cost") <= 13000000);
	assert_int_equal(itest_jint(get_team(d, "ta"), "running_allocations"), 1);
	/* Repeating start changes nothing. */
	r = transition(d, d->admin, id, "start",
		       itest_strf(d, "{\"started_at\":\"%s\"}", time_str(d, started)));
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "started_at"), time_str(d, started));

	r = transition(d, d->admin, id, "complete",
		       itest_strf(d, "{\"ended_at\":\"%s\"}", time_str(d, started - 1)));
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "ended_at"));

	/* 2 GPUs x 3.25/h x 9 s = 0.01625 exactly. */
	wait_until_reportable(ended);
	r = transition(d, d->admin, id, "complete",
		       itest_strf(d, "{\"ended_at\":\"%s\"}", time_str(d, ended)));
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "completed");
	ITEST_MONEY(r->json, "actual_cost", "0.01625");
	ITEST_MONEY(r->json, "released", "12.98375");
	ITEST_STREQ(itest_jstr(r->json, "ended_at"), time_str(d, ended));

	t = get_team(d, "ta");
	ITEST_MONEY(t, "spent", "0.01625");
	ITEST_MONEY(t, "reserved", "0.00");
	ITEST_MONEY(t, "available", "99.98375");
	assert_int_equal(itest_jint(t, "running_allocations"), 0);
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "allocated"), 0);

	/* Repeating complete returns the same and charges nothing twice. */
	r = transition(d, d->admin, id, "complete",
		       itest_strf(d, "{\"ended_at\":\"%s\"}", time_str(d, ended)));
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "actual_cost", "0.01625");
	r = transition(d, d->admin, id, "complete", "{}");
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "actual_cost", "0.01625");
	ITEST_MONEY(get_team(d, "ta"), "spent", "0.01625");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "0.00");

	/* No way back. */
	ITEST_PROBLEM(transition(d, d->admin, id, "cancel", NULL), 409, "conflict");
	ITEST_PROBLEM(transition(d, d->admin, id, "start", "{}"), 409, "conflict");
	ITEST_MONEY(get_team(d, "ta"), "spent", "0.01625");
}

static void test_lifecycle_capped_at_estimate(void **state)
{
	struct itest_daemon *d = D(state);
	json_t *a, *done, *t;

	itest_put_gpu(d, "g1", "3.25", 8);
	itest_put_team(d, "ta", "100");
	/* 0.001 h = 3.6 s max; used 5 s -> billed 3.6 s = the estimate. */
	a = allocate_ok(d, d->admin, "ta", "p", "g1", 2, "0.001");
	ITEST_MONEY(a, "estimated_cost", "0.0065");
	done = run_for(d, a, 0, 5);
	ITEST_MONEY(done, "actual_cost", "0.0065");
	ITEST_MONEY(done, "released", "0.00");
	t = get_team(d, "ta");
	ITEST_MONEY(t, "spent", "0.0065");
	ITEST_MONEY(t, "reserved", "0.00");
	ITEST_MONEY(t, "available", "99.9935");

	/* 1 GPU at 3.25 for 0.5 h, used 1 s -> 3.25/3600 = 0.000902777.. -> 0.000903. */
	a = allocate_ok(d, d->admin, "ta", "p", "g1", 1, "0.5");
	ITEST_MONEY(a, "estimated_cost", "1.625");
	done = run_for(d, a, 0, 1);
	ITEST_MONEY(done, "actual_cost", "0.000903");
	ITEST_MONEY(done, "released", "1.624097");
	ITEST_MONEY(get_team(d, "ta"), "spent", "0.007403");
}

static void test_cancel_and_conflicts(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	json_t *a;
	const char *id;

	itest_put_gpu(d, "g1", "1.50", 8);
	itest_put_team(d, "ta", "100");
	a = allocate_ok(d, d->admin, "ta", "p", "g1", 3, "2");
	id = itest_jstr(a, "id");
	ITEST_MONEY(a, "estimated_cost", "9.00");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "9.00");

	r = transition(d, d->admin, id, "cancel", NULL); /* empty body is fine */
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "cancelled");
	ITEST_MONEY(r->json, "released", "9.00");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "0.00");
	ITEST_MONEY(get_team(d, "ta"), "spent", "0.00");
	ITEST_MONEY(get_team(d, "ta"), "available", "100.00");
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "allocated"), 0);

	r = transition(d, d->admin, id, "cancel", "{}");
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "status"), "cancelled");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "0.00");

	ITEST_PROBLEM(transition(d, d->admin, id, "start", "{}"), 409, "conflict");
	ITEST_PROBLEM(transition(d, d->admin, id, "complete", "{}"), 409, "conflict");
	ITEST_STREQ(itest_jstr(get_alloc(d, id), "status"), "cancelled");

	/* A running allocation cannot be cancelled... */
	a = allocate_ok(d, d->admin, "ta", "p", "g1", 1, "1");
	ITEST_STATUS(transition(d, d->admin, itest_jstr(a, "id"), "start", NULL), 200);
	ITEST_PROBLEM(transition(d, d->admin, itest_jstr(a, "id"), "cancel", NULL), 409, "conflict");
	ITEST_STREQ(itest_jstr(get_alloc(d, itest_jstr(a, "id")), "status"), "running");

	ITEST_PROBLEM(transition(d, d->admin, "alc-does-not-exist", "start", NULL), 404, "not-found");
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/allocations/alc-does-not-exist", d->admin, NULL), 404,
		      "not-found");
}

static void test_refusals(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;

	itest_put_gpu(d, "g1", "1.00", 4);
	itest_put_team(d, "ta", "10");
	allocate_ok(d, d->admin, "ta", "p", "g1", 1, "7");

	r = itest_allocate(d, d->admin, "ta", "p", "g1", 1, "4");
	ITEST_PROBLEM(r, 409, "budget-exceeded");
	ITEST_MONEY(r->json, "estimated_cost", "4.00");
	ITEST_MONEY(r->json, "available", "3.00");
	assert_int_equal(itest_jint(r->json, "gpus_available"), 3);

	/* Exactly the rest of the budget fits. */
	allocate_ok(d, d->admin, "ta", "p", "g1", 1, "3");
	ITEST_MONEY(get_team(d, "ta"), "available", "0.00");

	itest_put_team(d, "tb", "1000");
	r = itest_allocate(d, d->admin, "tb", "p", "g1", 3, "1");
	ITEST_PROBLEM(r, 409, "capacity-exceeded");
	assert_int_equal(itest_jint(r->json, "gpus_available"), 2);
	ITEST_MONEY(r->json, "available", "1000.00");
	ITEST_MONEY(r->json, "estimated_cost", "3.00");
	allocate_ok(d, d->admin, "tb", "p", "g1", 2, "1");
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "available"), 0);
	ITEST_MONEY(get_team(d, "tb"), "reserved", "2.00");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "10.00");
}

/* ---- idempotency ---- */

static void test_idempotency_key(void **state)
{
	struct itest_daemon *d = D(state);
	const char *body = "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
			   "\"max_runtime_hours\":2}";
	const char *const k1[] = {"Idempotency-Key: job-42/attempt-1", NULL};
	const char *const k2[] = {"Idempotency-Key: job-43", NULL};
	struct itest_resp *r1, *r2, *r3, *r4;

	itest_put_gpu(d, "g1", "1.00", 8);
	itest_put_team(d, "ta", "100");

	r1 = itest_req_h(d, "POST", "/v1/allocations", d->admin, body, k1);
	ITEST_STATUS(r1, 201);
	r2 = itest_req_h(d, "POST", "/v1/allocations", d->admin, body, k1);
	ITEST_STATUS(r2, 201);
	ITEST_STREQ(itest_jstr(r2->json, "id"), itest_jstr(r1->json, "id"));
	if (!json_equal(r1->json, r2->json)) {
		fprintf(stderr, "replay differs:\n%s\n%s\n", r1->body, r2->body);
		fail();
	}
	ITEST_MONEY(get_team(d, "ta"), "reserved", "2.00");
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "allocated"), 1);

	r3 = itest_req_h(d, "POST", "/v1/allocations", d->admin,
			 "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":2,"
			 "\"max_runtime_hours\":2}",
			 k1);
	ITEST_PROBLEM(r3, 422, "idempotency-mismatch");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "2.00");

	r4 = itest_req_h(d, "POST", "/v1/allocations", d->admin, body, k2);
	ITEST_STATUS(r4, 201);
	assert_string_not_equal(itest_jstr(r4->json, "id"), itest_jstr(r1->json, "id"));
	ITEST_MONEY(get_team(d, "ta"), "reserved", "4.00");

	/* Without a key, each POST is a new allocation. */
	ITEST_STATUS(itest_req(d, "POST", "/v1/allocations", d->admin, body), 201);
	ITEST_STATUS(itest_req(d, "POST", "/v1/allocations", d->admin, body), 201);
	ITEST_MONEY(get_team(d, "ta"), "reserved", "8.00");
}

/* ---- prices ---- */

static void test_price_change_new_allocations_only(void **state)
{
	struct itest_daemon *d = D(state);
	json_t *a1, *a2, *done;

	itest_put_gpu(d, "g1", "2.00", 8);
	itest_put_team(d, "ta", "100");
	a1 = allocate_ok(d, d->admin, "ta", "p", "g1", 1, "1");
	ITEST_MONEY(a1, "price_per_gpu_hour", "2.00");

	itest_put_gpu(d, "g1", "5.00", 8);
	ITEST_MONEY(get_gpu(d, "g1"), "price_per_gpu_hour", "5.00");
	ITEST_MONEY(get_alloc(d, itest_jstr(a1, "id")), "price_per_gpu_hour", "2.00");
	ITEST_MONEY(get_alloc(d, itest_jstr(a1, "id")), "estimated_cost", "2.00");

	a2 = allocate_ok(d, d->admin, "ta", "p", "g1", 1, "1");
	ITEST_MONEY(a2, "price_per_gpu_hour", "5.00");
	ITEST_MONEY(a2, "estimated_cost", "5.00");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "7.00");

	/* The old allocation is billed at its own price: 2.00/h x 9 s = 0.005. */
	done = run_for(d, a1, 0, 9);
	ITEST_MONEY(done, "actual_cost", "0.005");
	ITEST_MONEY(get_team(d, "ta"), "spent", "0.005");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "5.00");
}


/* ---- partial updates and retirement (issue 16) ---- */

/* How many audit rows the filter (a query string) finds. */
static size_t audit_count(struct itest_daemon *d, const char *filter)
{
	struct itest_resp *r = itest_req(d, "GET", itest_strf(d, "/v1/audit?%s", filter), d->admin,
					 NULL);

	ITEST_STATUS(r, 200);
	return json_array_size(itest_jget(r->json, "items"));
}

static void test_patch_and_retire(void **state)
{
	struct itest_daemon *d = D(state);
	const char *const mp[] = {"Content-Type: application/merge-patch+json", NULL};
	const char *member;
	struct itest_resp *r;
	json_t *t, *live;

	r = itest_req(d, "PUT", "/v1/teams/speech", d->admin,
		      "{\"display_name\":\"Speech\",\"budget\":{\"amount\":\"100\",\"period\":"
		      "\"quarterly\"},\"alert_thresholds\":[0.9],\"admins\":[\"jane@example.com\"]}");
	ITEST_STATUS(r, 201);
	itest_put_gpu(d, "g1", "2.00", 8);
	member = itest_make_token(d, "member", "[\"speech\"]", NULL);

	/* Only the amount: period, name, thresholds and admins are kept. */
	r = itest_req_h(d, "PATCH", "/v1/teams/speech", d->admin,
			"{\"budget\":{\"amount\":\"250\"}}", mp);
	ITEST_STATUS(r, 200);
	t = get_team(d, "speech");
	ITEST_MONEY(t, "budget.amount", "250.00");
	ITEST_STREQ(itest_jstr(t, "budget.period"), "quarterly");
	ITEST_STREQ(itest_jstr(t, "display_name"), "Speech");
	assert_int_equal(json_array_size(itest_jget(t, "alert_thresholds")), 1);
	ITEST_STREQ(json_string_value(json_array_get(itest_jget(t, "admins"), 0)),
		    "jane@example.com");
	/* The same patch again changes nothing: 200 with the record, no audit row. */
	assert_int_equal(audit_count(d, "team=speech&action=team.update"), 1);
	r = itest_req_h(d, "PATCH", "/v1/teams/speech", d->admin,
			"{\"budget\":{\"amount\":\"250\"},\"display_name\":\"Speech\"}", mp);
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "budget.amount", "250.00");
	ITEST_STREQ(itest_jstr(r->json, "display_name"), "Speech");
	assert_int_equal(audit_count(d, "team=speech&action=team.update"), 1);

	/* A bad patch: every field named, nothing changed. */
	r = itest_req_h(d, "PATCH", "/v1/teams/speech", d->admin,
			"{\"display_name\":null,\"budget\":{\"amount\":\"1\"},\"admins\":[\"x y\"]}",
			mp);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "display_name"));
	assert_true(itest_problem_names_field(r, "admins[0]"));
	r = itest_req_h(d, "PATCH", "/v1/teams/speech", d->admin, "{\"budget\":", mp);
	ITEST_PROBLEM(r, 400, "malformed-json");
	ITEST_MONEY(get_team(d, "speech"), "budget.amount", "250.00");
	r = itest_req_h(d, "PATCH", "/v1/teams/speech", member, "{\"budget\":{\"amount\":\"9\"}}",
			mp);
	ITEST_PROBLEM(r, 403, "forbidden");
	r = itest_req_h(d, "PATCH", "/v1/teams/nope", d->admin, "{\"display_name\":\"N\"}", mp);
	ITEST_PROBLEM(r, 404, "not-found");

	/* Provenance: the same price keeps price_source, a new one replaces it. */
	r = itest_req(d, "PATCH", "/v1/gpu-types/g1", d->admin,
		      "{\"capacity\":16,\"price_per_gpu_hour\":\"2.00\"}");
	ITEST_STATUS(r, 200);
	const char *src = itest_keep(d, strdup(itest_jstr(r->json, "price_source")));
	itest_put_gpu(d, "g1", "2.00", 16);
	ITEST_STREQ(itest_jstr(get_gpu(d, "g1"), "price_source"), src);
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "capacity"), 16);
	assert_int_equal(audit_count(d, "action=gpu_type.update"), 2);
	r = itest_req(d, "PATCH", "/v1/gpu-types/g1", d->admin, "{\"capacity\":16}");
	ITEST_STATUS(r, 200);
	assert_int_equal(itest_jint(r->json, "capacity"), 16);
	assert_int_equal(audit_count(d, "action=gpu_type.update"), 2);

	/* Retired: a live allocation completes, a new one is 409 on field team. */
	live = allocate_ok(d, d->admin, "speech", "p", "g1", 1, "1");
	r = itest_req(d, "POST", "/v1/teams/speech/retire", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_non_null(itest_jstr(r->json, "retired_at"));
	r = itest_allocate(d, d->admin, "speech", "p", "g1", 1, "1");
	ITEST_PROBLEM(r, 409, "retired");
	ITEST_STREQ(itest_jstr(r->json, "field"), "team");
	r = itest_req(d, "POST", "/v1/quotes", member,
		      "{\"team\":\"speech\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
		      "\"max_runtime_hours\":1}");
	ITEST_PROBLEM(r, 409, "retired");
	r = itest_req_h(d, "PATCH", "/v1/teams/speech", d->admin, "{\"budget\":{\"amount\":\"9\"}}",
			mp);
	ITEST_PROBLEM(r, 409, "retired");
	ITEST_STREQ(itest_jstr(run_for(d, live, 0, 0), "status"), "completed");
	r = itest_req(d, "GET", "/v1/teams", d->admin, NULL);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 0);
	r = itest_req(d, "GET", "/v1/teams?include_retired=true", d->admin, NULL);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	r = itest_req_h(d, "PATCH", "/v1/teams/speech", d->admin, "{\"retired_at\":null}", mp);
	ITEST_STATUS(r, 200);
	assert_true(json_is_null(itest_jget(r->json, "retired_at")));
	allocate_ok(d, d->admin, "speech", "p", "g1", 1, "1");

	/* A retired GPU type: none available, no allocation of it. */
	r = itest_req(d, "POST", "/v1/gpu-types/g1/retire", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(itest_jint(r->json, "available"), 0);
	r = itest_allocate(d, d->admin, "speech", "p", "g1", 1, "1");
	ITEST_PROBLEM(r, 409, "retired");
	ITEST_STREQ(itest_jstr(r->json, "field"), "gpu_type");
}

/* ---- listing ---- */

static void test_list_allocations(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	char ids[5][128];
	int seen_ids[5] = {0};
	const char *cursor = NULL;
	int64_t last_approved = INT64_MAX;
	int seen = 0, pages = 0, i;
	json_t *it;
	size_t k;

	itest_put_gpu(d, "g1", "1.00", 100);
	itest_put_team(d, "ta", "1000");
	itest_put_team(d, "tb", "1000");
	for (i = 0; i < 5; i++) {
		json_t *a = allocate_ok(d, d->admin, "ta", "p", "g1", 1, "1");

		snprintf(ids[i], sizeof(ids[i]), "%s", itest_jstr(a, "id"));
	}
	allocate_ok(d, d->admin, "tb", "p", "g1", 1, "1");
	ITEST_STATUS(transition(d, d->admin, ids[0], "cancel", NULL), 200);

	/* Pages of 2, newest first (approved_at never increases; ties within a
	 * second may come in any order), each id exactly once. */
	do {
		const char *path = cursor ? itest_strf(d, "/v1/allocations?team=ta&limit=2&cursor=%s", cursor)
					  : "/v1/allocations?team=ta&limit=2";

		r = itest_req(d, "GET", path, d->admin, NULL);
		ITEST_STATUS(r, 200);
		assert_true(json_array_size(itest_jget(r->json, "items")) <= 2);
		json_array_foreach(itest_jget(r->json, "items"), k, it) {
			int64_t at = itest_time_parse(itest_jstr(it, "approved_at"));
			int m;

			assert_true(seen < 5);
			assert_true(at > 0 && at <= last_approved);
			last_approved = at;
			for (m = 0; m < 5; m++)
				if (strcmp(itest_jstr(it, "id"), ids[m]) == 0)
					seen_ids[m]++;
			seen++;
		}
		cursor = itest_jstr(r->json, "next_cursor");
		if (cursor == NULL)
			assert_true(json_is_null(itest_jget(r->json, "next_cursor")));
	} while (cursor != NULL && ++pages < 10);
	assert_int_equal(seen, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(seen_ids[i], 1);

	r = itest_req(d, "GET", "/v1/allocations?team=ta&status=cancelled", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	ITEST_STREQ(itest_jstr(json_array_get(itest_jget(r->json, "items"), 0), "id"), ids[0]);
	r = itest_req(d, "GET", "/v1/allocations?status=approved", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 5);
	r = itest_req(d, "GET", "/v1/allocations", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 6);
}

/* ---- costs ---- */

/* Sums a money column over items; asserts every value parses. */
static int64_t sum_items(json_t *items, const char *col)
{
	int64_t sum = 0;
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it) {
		int64_t v = itest_jmoney(it, col);

		assert_true(v != INT64_MIN);
		sum += v;
	}
	return sum;
}

static json_t *find_key(json_t *items, const char *key)
{
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it) {
		if (itest_jstr(it, "key") != NULL && strcmp(itest_jstr(it, "key"), key) == 0)
			return it;
	}
	return NULL;
}

static void test_costs(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	const char *groups[] = {"team", "project", "gpu_type", "day"};
	json_t *a, *items, *it;
	char today[16], tomorrow[16];
	size_t g;

	itest_put_gpu(d, "ga", "3.60", 100);
	itest_put_gpu(d, "gb", "7.20", 100);
	itest_put_team(d, "ca", "1000");
	itest_put_team(d, "cb", "1000");
	itest_put_team(d, "cc", "1000"); /* no activity at all */

	/* ca: 1 x 3.60 x 9 s = 0.009; 2 x 7.20 x 9 s = 0.036 -> 0.045, 0.0075 GPU-h */
	run_for(d, allocate_ok(d, d->admin, "ca", "p1", "ga", 1, "1"), 0, 9);
	run_for(d, allocate_ok(d, d->admin, "ca", "p2", "gb", 2, "1"), 0, 9);
	a = allocate_ok(d, d->admin, "ca", "p1", "ga", 1, "1");
	ITEST_STATUS(transition(d, d->admin, itest_jstr(a, "id"), "cancel", NULL), 200);
	/* cb: 3 x 3.60 x 9 s = 0.027 (0.0075 GPU-h); 1 x 7.20 x 2 h reserved = 14.40 */
	run_for(d, allocate_ok(d, d->admin, "cb", "p1", "ga", 3, "1"), 0, 9);
	allocate_ok(d, d->admin, "cb", "p1", "gb", 1, "2");

	ITEST_MONEY(get_team(d, "ca"), "spent", "0.045");
	ITEST_MONEY(get_team(d, "cb"), "spent", "0.027");
	ITEST_MONEY(get_team(d, "cb"), "reserved", "14.40");

	for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		r = itest_req(d, "GET", itest_strf(d, "/v1/costs?group_by=%s", groups[g]), d->admin, NULL);
		ITEST_STATUS(r, 200);
		ITEST_STREQ(itest_jstr(r->json, "group_by"), groups[g]);
		ITEST_STREQ(itest_jstr(r->json, "currency"), "USD");
		assert_non_null(itest_jstr(r->json, "from"));
		assert_non_null(itest_jstr(r->json, "to"));
		items = itest_jget(r->json, "items");
		assert_true(json_is_array(items));
		ITEST_MONEY(r->json, "total.spent", "0.072");
		ITEST_MONEY(r->json, "total.reserved", "14.40");
		ITEST_MONEY(r->json, "total.accrued", "0.00");
		ITEST_MONEY(r->json, "total.gpu_hours", "0.015");
		assert_int_equal(sum_items(items, "spent"), 72000);
		assert_int_equal(sum_items(items, "reserved"), 14400000);
		assert_int_equal(sum_items(items, "accrued"), 0);
		assert_int_equal(sum_items(items, "gpu_hours"), 15000);
	}

	r = itest_req(d, "GET", "/v1/costs", d->admin, NULL); /* default: team */
	ITEST_STATUS(r, 200);
	ITEST_STREQ(itest_jstr(r->json, "group_by"), "team");
	items = itest_jget(r->json, "items");
	it = find_key(items, "ca");
	assert_non_null(it);
	ITEST_MONEY(it, "spent", itest_jstr(get_team(d, "ca"), "spent"));
	ITEST_MONEY(it, "reserved", "0.00");
	ITEST_MONEY(it, "gpu_hours", "0.0075");
	it = find_key(items, "cb");
	assert_non_null(it);
	ITEST_MONEY(it, "spent", itest_jstr(get_team(d, "cb"), "spent"));
	ITEST_MONEY(it, "reserved", itest_jstr(get_team(d, "cb"), "reserved"));
	ITEST_MONEY(it, "gpu_hours", "0.0075");

	r = itest_req(d, "GET", "/v1/costs?group_by=gpu_type", d->admin, NULL);
	items = itest_jget(r->json, "items");
	assert_non_null(find_key(items, "ga"));
	ITEST_MONEY(find_key(items, "ga"), "spent", "0.036");
	assert_non_null(find_key(items, "gb"));
	ITEST_MONEY(find_key(items, "gb"), "spent", "0.036");
	ITEST_MONEY(find_key(items, "gb"), "reserved", "14.40");

	/* An explicit window around today gives the same totals. */
	{
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(today, sizeof(today), "%Y-%m-%d", &tm);
		now += 86400;
		gmtime_r(&now, &tm);
		strftime(tomorrow, sizeof(tomorrow), "%Y-%m-%d", &tm);
	}
	r = itest_req(d, "GET", itest_strf(d, "/v1/costs?from=%s&to=%s&group_by=day", today, tomorrow),
		      d->admin, NULL);
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "total.spent", "0.072");
	assert_int_equal(sum_items(itest_jget(r->json, "items"), "spent"), 72000);
	/* A window in the past holds nothing. */
	r = itest_req(d, "GET", "/v1/costs?from=2020-01-01&to=2020-02-01", d->admin, NULL);
	ITEST_STATUS(r, 200);
	ITEST_MONEY(r->json, "total.spent", "0.00");
}

/* ---- audit ---- */

static const char *audit_budget(json_t *entry, const char *side)
{
	json_t *snap = itest_jget(entry, side);
	const char *v = itest_jstr(snap, "budget.amount");

	return v != NULL ? v : itest_jstr(snap, "budget");
}

static void test_audit(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	json_t *items, *it, *created = NULL, *changed = NULL;
	int64_t last_seq = -1;
	size_t i;
	const char *fin;

	itest_put_team(d, "au", "100");
	itest_put_team(d, "other", "5");
	itest_put_team(d, "au", "250");

	r = itest_req(d, "GET", "/v1/audit?team=au", d->admin, NULL);
	ITEST_STATUS(r, 200);
	items = itest_jget(r->json, "items");
	assert_true(json_array_size(items) >= 2);
	json_array_foreach(items, i, it) {
		int64_t seq = itest_jint(it, "seq");

		assert_true(seq > last_seq); /* oldest first */
		last_seq = seq;
		assert_time_field(it, "at");
		assert_non_null(itest_jstr(it, "actor.id"));
		assert_non_null(itest_jstr(it, "actor.name"));
		assert_non_null(itest_jstr(it, "action"));
		assert_non_null(itest_jstr(it, "object_type"));
		assert_string_not_equal(itest_jstr(it, "object_id"), "other");
		if (itest_jstr(it, "object_id") != NULL && strcmp(itest_jstr(it, "object_id"), "au") == 0) {
			if (json_is_null(itest_jget(it, "before")) && created == NULL)
				created = it;
			else if (json_is_object(itest_jget(it, "before")))
				changed = it;
		}
	}
	assert_non_null(created);
	assert_non_null(changed);
	ITEST_STREQ(itest_jstr(created, "team"), "au");
	/* The snapshot may nest the budget like the Team resource or flatten it. */
	ITEST_STREQ(audit_budget(created, "after"), "100.00");
	ITEST_STREQ(audit_budget(changed, "before"), "100.00");
	ITEST_STREQ(audit_budget(changed, "after"), "250.00");

	/* Paging and finance access. */
	r = itest_req(d, "GET", "/v1/audit?limit=1", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	assert_non_null(itest_jstr(r->json, "next_cursor"));
	r = itest_req(d, "GET",
		      itest_strf(d, "/v1/audit?limit=1&cursor=%s", itest_jstr(r->json, "next_cursor")),
		      d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	fin = itest_make_token(d, "finance", NULL, NULL);
	ITEST_STATUS(itest_req(d, "GET", "/v1/audit?team=au", fin, NULL), 200);
}

/* The one entry of action on object in the audit page r (NULL if none). */
static json_t *audit_entry(json_t *page, const char *action, const char *object)
{
	size_t i;
	json_t *it, *found = NULL;

	json_array_foreach(itest_jget(page, "items"), i, it)
		if (strcmp(itest_jstr(it, "action"), action) == 0 &&
		    strcmp(itest_jstr(it, "object_id"), object) == 0)
			found = it;
	return found;
}

/* Fails unless o[key] and want[key] are equal JSON. */
static void assert_same(json_t *o, json_t *want, const char *key)
{
	json_t *a = json_object_get(o, key), *b = json_object_get(want, key);

	if (a == NULL || b == NULL || !json_equal(a, b)) {
		char *x = a ? json_dumps(a, JSON_ENCODE_ANY) : NULL;
		char *y = b ? json_dumps(b, JSON_ENCODE_ANY) : NULL;
		fprintf(stderr, "%s: audit %s != resource %s\n", key, x ? x : "(none)",
			y ? y : "(none)");
		free(x);
		free(y);
		fail();
	}
}

/* Audit entries show records in the resources' own shapes (RFC 3339 times,
 * money as GET shows it), and the log filters by team, actor, action and
 * time, in SQL, across pages. */
static void test_audit_shapes_and_filters(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	json_t *e, *team, *gpu, *alloc;
	const char *fin, *mem, *mem_id, *alloc_id;
	int64_t t0 = (int64_t)time(NULL) - 1;
	char since[32], until[32];

	itest_put_gpu(d, "sh-gpu", "2.5", 8);
	itest_put_team(d, "sh", "100");
	itest_put_team(d, "sh", "250.5");
	r = itest_allocate(d, d->admin, "sh", "p", "sh-gpu", 2, "3");
	ITEST_STATUS(r, 201);
	alloc = json_incref(r->json);
	alloc_id = itest_jstr(alloc, "id");

	/* A team PUT: before and after shaped like GET /v1/teams/{id}. */
	r = itest_req(d, "GET", "/v1/teams/sh", d->admin, NULL);
	ITEST_STATUS(r, 200);
	team = json_incref(r->json);
	r = itest_req(d, "GET", "/v1/audit?team=sh&action=team.update", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	e = audit_entry(r->json, "team.update", "sh");
	assert_non_null(e);
	ITEST_STREQ(itest_jstr(e, "before.budget.amount"), "100.00");
	ITEST_STREQ(itest_jstr(e, "before.budget.period"), "monthly");
	assert_same(itest_jget(e, "after"), team, "budget");
	assert_same(itest_jget(e, "after"), team, "display_name");
	assert_same(itest_jget(e, "after"), team, "alert_thresholds");
	assert_same(itest_jget(e, "after"), team, "currency");
	assert_time_field(e, "after.created_at");
	assert_time_field(e, "after.updated_at");
	assert_time_field(e, "before.updated_at");

	/* A GPU type PUT: after is GET /v1/gpu-types/{id} as it was then. */
	r = itest_req(d, "GET", "/v1/gpu-types/sh-gpu", d->admin, NULL);
	ITEST_STATUS(r, 200);
	gpu = json_incref(r->json);
	r = itest_req(d, "GET", "/v1/audit?action=gpu_type.create", d->admin, NULL);
	ITEST_STATUS(r, 200);
	e = audit_entry(r->json, "gpu_type.create", "sh-gpu");
	assert_non_null(e);
	assert_null_field(e, "before");
	static const char *const gkeys[] = {"id", "name", "price_per_gpu_hour", "currency",
					    "price_date", "price_source", "capacity", "updated_at"};
	for (size_t k = 0; k < sizeof(gkeys) / sizeof(gkeys[0]); k++)
		assert_same(itest_jget(e, "after"), gpu, gkeys[k]);
	ITEST_STREQ(itest_jstr(e, "after.price_per_gpu_hour"), "2.50");

	/* An allocation: after is the allocation as its POST answered. */
	r = itest_req(d, "GET", "/v1/audit?action=allocation.approve&team=sh", d->admin, NULL);
	ITEST_STATUS(r, 200);
	e = audit_entry(r->json, "allocation.approve", alloc_id);
	assert_non_null(e);
	static const char *const akeys[] = {"id", "team", "gpu_count", "max_runtime_hours",
					    "price_per_gpu_hour", "estimated_cost", "actual_cost",
					    "status", "approved_at", "expires_at", "started_at",
					    "period_start", "labels", "created_by"};
	for (size_t k = 0; k < sizeof(akeys) / sizeof(akeys[0]); k++)
		assert_same(itest_jget(e, "after"), alloc, akeys[k]);
	ITEST_STREQ(itest_jstr(e, "after.estimated_cost"), "15.00");
	assert_true(json_is_string(itest_jget(e, "after.approved_at")));

	/* The actor by name and by token id; an actor with no rows. */
	fin = itest_make_token(d, "finance", NULL, NULL);
	mem = itest_make_token(d, "member", "[\"sh\"]", &mem_id);
	r = itest_req(d, "POST", "/v1/allocations", mem,
		      "{\"team\":\"sh\",\"project\":\"p\",\"gpu_type\":\"sh-gpu\",\"gpu_count\":1,"
		      "\"max_runtime_hours\":1}");
	ITEST_STATUS(r, 201);
	r = itest_req(d, "GET", itest_strf(d, "/v1/audit?actor=%s", mem_id), fin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	ITEST_STREQ(itest_jstr(json_array_get(itest_jget(r->json, "items"), 0), "actor.id"), mem_id);
	r = itest_req(d, "GET", "/v1/audit?actor=nobody-at-all", fin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 0);

	/* Time: since t0 has this test's rows; until t0 has none of them. */
	itest_time_format(t0, since);
	itest_time_format(t0, until);
	r = itest_req(d, "GET", itest_strf(d, "/v1/audit?team=sh&since=%s", since), fin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 4);
	r = itest_req(d, "GET", itest_strf(d, "/v1/audit?team=sh&until=%s", until), fin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 0);

	/* The cursor walk keeps the filters: the 4 rows of team sh (create,
	 * update, two approvals) in pages of 2. */
	const char *cur = NULL;
	int total = 0, pages = 0;
	do {
		r = itest_req(d, "GET",
			      cur ? itest_strf(d, "/v1/audit?team=sh&limit=2&cursor=%s", cur)
				  : "/v1/audit?team=sh&limit=2",
			      fin, NULL);
		ITEST_STATUS(r, 200);
		size_t i;
		json_array_foreach(itest_jget(r->json, "items"), i, e)
			ITEST_STREQ(itest_jstr(e, "team"), "sh");
		total += (int)json_array_size(itest_jget(r->json, "items"));
		cur = itest_jstr(r->json, "next_cursor");
		cur = cur ? itest_keep(d, strdup(cur)) : NULL;
	} while (cur != NULL && ++pages < 10);
	assert_int_equal(total, 4);

	/* Bad filters name the parameter; a member may not read the log. */
	r = itest_req(d, "GET", "/v1/audit?since=yesterday", d->admin, NULL);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "since"));
	r = itest_req(d, "GET", "/v1/audit?until=2026-13-01", d->admin, NULL);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "until"));
	/* Bytes that are not UTF-8 never reach the SQL (PostgreSQL: a 500). */
	r = itest_req(d, "GET", "/v1/audit?actor=%ff%fe", d->admin, NULL);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "actor"));
	r = itest_req(d, "GET", "/v1/audit?action=team.put", d->admin, NULL);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "action"));
	assert_non_null(strstr(r->body, "team.update"));
	r = itest_req(d, "GET", "/v1/audit?since=2026-02-01&until=2026-01-01", d->admin, NULL);
	ITEST_PROBLEM(r, 422, "validation-error");
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/audit", mem, NULL), 403, "forbidden");
	json_decref(alloc);
	json_decref(team);
	json_decref(gpu);
	/* A refused request: its runtime in hours, as the request gave it. */
	r = itest_allocate(d, d->admin, "sh", "p", "sh-gpu", 8, "100");
	ITEST_STATUS(r, 409);
	r = itest_req(d, "GET", "/v1/audit?team=sh&action=allocation.refuse", d->admin, NULL);
	ITEST_STATUS(r, 200);
	e = json_array_get(itest_jget(r->json, "items"), 0);
	assert_non_null(e);
	ITEST_STREQ(itest_jstr(e, "action"), "allocation.refuse");
	assert_true(json_number_value(itest_jget(e, "after.max_runtime_hours")) == 100.0);
	assert_null(itest_jget(e, "after.max_runtime_us"));
	ITEST_STREQ(itest_jstr(e, "after.status"), "refused");
}

/* Tokens show whether they are revoked; ?status= picks one kind. */
static void test_token_status(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	const char *gone_id, *kept_id;
	size_t i;
	json_t *it;
	int seen = 0;

	itest_make_token(d, "finance", NULL, &gone_id);
	itest_make_token(d, "finance", NULL, &kept_id);
	ITEST_STATUS(itest_req(d, "DELETE", itest_strf(d, "/v1/tokens/%s", gone_id), d->admin, NULL),
		     204);
	r = itest_req(d, "GET", "/v1/tokens", d->admin, NULL);
	ITEST_STATUS(r, 200);
	json_array_foreach(itest_jget(r->json, "items"), i, it) {
		int gone = strcmp(itest_jstr(it, "id"), gone_id) == 0;
		if (gone || strcmp(itest_jstr(it, "id"), kept_id) == 0) {
			seen++;
			ITEST_STREQ(itest_jstr(it, "status"), gone ? "revoked" : "active");
			if (gone)
				assert_time_field(it, "revoked_at");
			else
				assert_null_field(it, "revoked_at");
		}
	}
	assert_int_equal(seen, 2);
	r = itest_req(d, "GET", "/v1/tokens?status=active", d->admin, NULL);
	ITEST_STATUS(r, 200);
	json_array_foreach(itest_jget(r->json, "items"), i, it)
		ITEST_STREQ(itest_jstr(it, "status"), "active");
	assert_null(strstr(r->body, gone_id));
	r = itest_req(d, "GET", "/v1/tokens?status=revoked", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	ITEST_STREQ(itest_jstr(json_array_get(itest_jget(r->json, "items"), 0), "id"), gone_id);
	r = itest_req(d, "GET", "/v1/tokens?status=gone", d->admin, NULL);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "status"));
}

/* GET /v1/jobs: newest first, scoped like allocations. */
static void test_jobs_list(void **state)
{
	struct itest_daemon *d = D(state);
	struct itest_resp *r;
	const char *mem, *job_a, *job_b;
	static const char body[] =
		"{\"team\":\"%s\",\"project\":\"p\",\"name\":\"%s\",\"framework\":\"pytorch\","
		"\"gpu_type\":\"jl-gpu\",\"gpu_count\":1,\"max_runtime_hours\":1}";

	itest_put_gpu(d, "jl-gpu", "1", 8);
	itest_put_team(d, "ja", "100");
	itest_put_team(d, "jb", "100");
	r = itest_req(d, "POST", "/v1/jobs", d->admin, itest_strf(d, body, "ja", "train-a"));
	ITEST_STATUS(r, 201);
	job_a = itest_keep(d, strdup(itest_jstr(r->json, "id")));
	r = itest_req(d, "POST", "/v1/jobs", d->admin, itest_strf(d, body, "jb", "train-b"));
	ITEST_STATUS(r, 201);
	job_b = itest_keep(d, strdup(itest_jstr(r->json, "id")));

	r = itest_req(d, "GET", "/v1/jobs", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 2);
	json_t *first = json_array_get(itest_jget(r->json, "items"), 0);
	json_t *second = json_array_get(itest_jget(r->json, "items"), 1);
	/* Newest first (the same second: the larger id first). */
	assert_true(itest_time_parse(itest_jstr(first, "created_at")) >=
		    itest_time_parse(itest_jstr(second, "created_at")));
	ITEST_STREQ(itest_jstr(first, "state"), "created");
	assert_non_null(itest_jstr(first, "outcome.allocation.id"));

	/* The same record as GET /v1/jobs/{id}. */
	struct itest_resp *one = itest_req(d, "GET", itest_strf(d, "/v1/jobs/%s", job_a), d->admin, NULL);
	ITEST_STATUS(one, 200);
	assert_true(json_equal(one->json, strcmp(itest_jstr(first, "id"), job_a) == 0 ? first : second));

	r = itest_req(d, "GET", "/v1/jobs?team=jb&limit=1", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	ITEST_STREQ(itest_jstr(json_array_get(itest_jget(r->json, "items"), 0), "id"), job_b);
	assert_null_field(r->json, "next_cursor");
	r = itest_req(d, "GET", "/v1/jobs?limit=1", d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_non_null(itest_jstr(r->json, "next_cursor"));

	/* A member sees its teams' jobs only, and may not ask for another team. */
	mem = itest_make_token(d, "member", "[\"ja\"]", NULL);
	r = itest_req(d, "GET", "/v1/jobs", mem, NULL);
	ITEST_STATUS(r, 200);
	assert_int_equal(json_array_size(itest_jget(r->json, "items")), 1);
	ITEST_STREQ(itest_jstr(json_array_get(itest_jget(r->json, "items"), 0), "id"), job_a);
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/jobs?team=jb", mem, NULL), 403, "forbidden");
	ITEST_PROBLEM(itest_req(d, "GET", itest_strf(d, "/v1/jobs/%s", job_b), mem, NULL), 404,
		      "not-found");
	r = itest_req(d, "GET", "/v1/jobs?cursor=bogus", d->admin, NULL);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_true(itest_problem_names_field(r, "cursor"));
}

/* ---- expiry ---- */

static void test_expiry(void **state)
{
	struct itest_daemon *d = D(state);
	json_t *a, *cur = NULL;
	const char *id;
	int64_t deadline;
	int expired = 0;

	itest_put_gpu(d, "g1", "1.00", 4);
	itest_put_team(d, "ta", "10");
	a = allocate_ok(d, d->admin, "ta", "p", "g1", 4, "2");
	id = itest_jstr(a, "id");
	ITEST_MONEY(a, "estimated_cost", "8.00");
	/* Not checking reserved here: with a 1 s timeout it may already be gone. */

	deadline = itest_now_ms() + 15000;
	while (itest_now_ms() < deadline) {
		struct itest_resp r = {0};

		assert_int_equal(itest_http(d->curl, d->base_url, "GET",
					    itest_strf(d, "/v1/allocations/%s", id), d->admin, NULL, 0,
					    NULL, &r),
				 0);
		if (r.status == 200 && strcmp(itest_jstr(r.json, "status"), "expired") == 0)
			expired = 1;
		itest_resp_clear(&r);
		if (expired)
			break;
		itest_sleep_ms(200);
	}
	assert_true(expired);
	cur = get_alloc(d, id);
	ITEST_STREQ(itest_jstr(cur, "status"), "expired");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "0.00");
	ITEST_MONEY(get_team(d, "ta"), "spent", "0.00");
	ITEST_MONEY(get_team(d, "ta"), "available", "10.00");
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "allocated"), 0);
	ITEST_PROBLEM(transition(d, d->admin, id, "start", NULL), 409, "conflict");
	/* The released GPUs and money can be allocated again. */
	allocate_ok(d, d->admin, "ta", "p", "g1", 4, "2");
}

/*
 * A due allocation gives its money and GPUs back inside the decision that
 * finds it due, before that decision reads the ledger: nothing else has
 * expired it here (no sweep, no GET of it), and the new request fits only
 * once it is released.
 */
static void test_due_released_for_the_next_decision(void **state)
{
	struct itest_daemon *d = D(state);
	json_t *first;
	char id[128];

	itest_put_gpu(d, "g1", "1.00", 4);
	itest_put_team(d, "ta", "10");
	first = allocate_ok(d, d->admin, "ta", "p", "g1", 4, "2");
	snprintf(id, sizeof(id), "%s", itest_jstr(first, "id"));
	itest_sleep_ms(1500);
	allocate_ok(d, d->admin, "ta", "p", "g1", 4, "2");
	ITEST_STREQ(itest_jstr(get_alloc(d, id), "status"), "expired");
	ITEST_MONEY(get_team(d, "ta"), "reserved", "8.00");
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "allocated"), 4);
}

/* ---- restart ---- */

static void test_restart_keeps_state(void **state)
{
	struct itest_daemon *d = D(state);
	json_t *a, *before_team, *after_alloc;
	char id[128];

	itest_put_gpu(d, "g1", "1.25", 4);
	itest_put_team(d, "ta", "10");
	a = allocate_ok(d, d->admin, "ta", "p", "g1", 2, "1");
	snprintf(id, sizeof(id), "%s", itest_jstr(a, "id"));
	before_team = json_deep_copy(get_team(d, "ta"));
	assert_non_null(before_team);

	assert_int_equal(itest_daemon_stop(d), 0);
	assert_int_equal(itest_daemon_restart(d), 0);

	after_alloc = get_alloc(d, id);
	assert_true(json_equal(after_alloc, a));
	ITEST_MONEY(get_team(d, "ta"), "reserved", "2.50");
	ITEST_MONEY(get_team(d, "ta"), "budget.amount", itest_jstr(before_team, "budget.amount"));
	assert_int_equal(itest_jint(get_gpu(d, "g1"), "allocated"), 2);
	json_decref(before_team);
	/* The admin token from the environment still works after a restart. */
	ITEST_STATUS(itest_req(d, "GET", "/v1/teams", d->admin, NULL), 200);
}

/* A portal acting for a person: X-Plinth-On-Behalf-Of (service tokens only)
 * puts the person in the audit log beside the portal's token. */
static void test_on_behalf_of(void **state)
{
	struct itest_daemon *d = D(state);
	const char *body = "{\"team\":\"ob\",\"project\":\"p\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
			   "\"max_runtime_hours\":1}";
	const char *const jane[] = {"X-Plinth-On-Behalf-Of: user:default/jane", NULL};
	const char *const bad[] = {"X-Plinth-On-Behalf-Of: jane doe", NULL};
	const char *svc_id = NULL, *svc, *mem;
	struct itest_resp *r;
	json_t *items, *it;
	size_t i;
	int found = 0;
	char long_ref[160], long_hdr[200];
	const char *const too_long[] = {long_hdr, NULL};

	itest_put_gpu(d, "g1", "1.00", 8);
	itest_put_team(d, "ob", "100");
	svc = itest_make_token(d, "service", NULL, &svc_id);
	mem = itest_make_token(d, "member", "[\"ob\"]", NULL);

	r = itest_req_h(d, "POST", "/v1/allocations", svc, body, jane);
	ITEST_STATUS(r, 201);
	r = itest_req(d, "GET", "/v1/audit?team=ob", d->admin, NULL);
	ITEST_STATUS(r, 200);
	items = itest_jget(r->json, "items");
	json_array_foreach(items, i, it) {
		const char *name = itest_jstr(it, "actor.name");

		if (strcmp(itest_jstr(it, "action"), "allocation.approve") != 0)
			continue;
		found++;
		ITEST_STREQ(itest_jstr(it, "actor.id"), svc_id); /* the token stays accountable */
		assert_non_null(name);
		assert_int_equal(strncmp(name, "user:default/jane via ", 22), 0);
	}
	assert_int_equal(found, 1);

	/* Only a service token may; a bad or over-long reference is refused; nothing changes. */
	r = itest_req_h(d, "POST", "/v1/allocations", mem, body, jane);
	ITEST_PROBLEM(r, 403, "forbidden");
	r = itest_req_h(d, "POST", "/v1/allocations", svc, body, bad);
	ITEST_PROBLEM(r, 400, "bad-request");
	memset(long_ref, 'a', 101);
	long_ref[101] = '\0';
	snprintf(long_hdr, sizeof(long_hdr), "X-Plinth-On-Behalf-Of: user:default/%s", long_ref);
	r = itest_req_h(d, "POST", "/v1/allocations", svc, body, too_long);
	ITEST_PROBLEM(r, 400, "bad-request");
	ITEST_MONEY(get_team(d, "ob"), "reserved", "1.00");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_health_openapi_routing, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_auth_tokens, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_on_behalf_of, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_gpu_types, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_teams, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_roles, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_member_isolation, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_quotes, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_lifecycle_exact_costs, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_lifecycle_capped_at_estimate, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_cancel_and_conflicts, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_refusals, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_idempotency_key, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_price_change_new_allocations_only, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_patch_and_retire, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_list_allocations, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_costs, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_audit, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_audit_shapes_and_filters, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_token_status, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_jobs_list, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_expiry, setup_expiry_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_due_released_for_the_next_decision,
						setup_unswept_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_restart_keeps_state, itest_setup_daemon, itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-api", tests, NULL, NULL);
}
