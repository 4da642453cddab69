/*
 * test_router.c - the HTTP layer on its own: the real server (libmicrohttpd,
 * src/http/) on a loopback port, dispatching to a route table of this test's
 * handlers.  It links the HTTP archive and not the API's (tests/integration/
 * meson.build): that it links at all shows src/http/ needs nothing from
 * src/api/; the requests show that the table the daemon hands the server in
 * app->routes is the one it routes by - patterns, "{}" captures, 404, 405 with
 * Allow, HEAD as GET, a role route refused (401) before its handler - and that
 * a handler gets what it needs through http.h (the path parameters, a header,
 * a query argument, reply_json).
 *
 * No store: the routes here are public, and the role route is refused for its
 * missing Authorization header before the token would be looked up.
 */
#include "itest.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "core/err.h"
#include "http/server.h"

static atomic_int secret_runs; /* how often the role route's handler ran */

static void h_thing(struct req *r)
{
	const char *x = req_header(r, "X-Test");
	const char *q = req_query(r, "q");
	reply_json(r, 200, json_pack("{s:s, s:s, s:i, s:s?, s:s?}", "route", "thing", "id",
				     r->params[0], "nparams", r->nparams, "x_test", x, "q", q));
}

static void h_thing_put(struct req *r)
{
	reply_json(r, 200, json_pack("{s:s, s:s}", "route", "thing_put", "id", r->params[0]));
}

static void h_part(struct req *r)
{
	reply_json(r, 200, json_pack("{s:s, s:s, s:s}", "route", "part", "thing", r->params[0],
				     "part", r->params[1]));
}

static void h_secret(struct req *r)
{
	atomic_fetch_add(&secret_runs, 1);
	reply_json(r, 200, json_pack("{s:s}", "route", "secret"));
}

static const struct http_route test_routes[] = {
	{"GET", "/things/{}", h_thing, HTTP_ROLES_PUBLIC},
	{"PUT", "/things/{}", h_thing_put, HTTP_ROLES_PUBLIC},
	{"GET", "/things/{}/parts/{}", h_part, HTTP_ROLES_PUBLIC},
	{"GET", "/secret", h_secret, HTTP_ROLE(ROLE_ADMIN)},
};
static const struct http_routes test_table = {test_routes,
					      sizeof(test_routes) / sizeof(test_routes[0])};

struct fixture {
	struct app app;
	struct server *srv;
	char base[64];
	CURL *curl;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	f->app.routes = &test_table;
	f->app.currency = "USD";
	unsigned port = 0;
	char detail[256] = "";
	int rc = server_start(&f->app, "127.0.0.1:0", NULL, &f->srv, &port, detail, sizeof(detail));
	if (rc != 0 || port == 0) {
		fprintf(stderr, "server_start: %s %s\n", err_name(rc), detail);
		free(f);
		return -1;
	}
	snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%u", port);
	f->curl = curl_easy_init();
	if (f->curl == NULL) {
		server_stop(f->srv, 1);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	curl_easy_cleanup(f->curl);
	server_stop(f->srv, 1);
	free(f);
	return 0;
}

/* One request; the caller clears *out. */
static void req(struct fixture *f, const char *method, const char *path,
		const char *const *headers, struct itest_resp *out)
{
	memset(out, 0, sizeof(*out));
	assert_int_equal(itest_http(f->curl, f->base, method, path, NULL, NULL, 0, headers, out), 0);
}

static void test_routes_by_the_given_table(void **state)
{
	struct fixture *f = *state;
	struct itest_resp r;
	const char *const hdrs[] = {"X-Test: hello", NULL};

	req(f, "GET", "/things/abc?q=one", hdrs, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(r.json);
	assert_string_equal(itest_jstr(r.json, "route"), "thing");
	assert_string_equal(itest_jstr(r.json, "id"), "abc");
	assert_int_equal(itest_jint(r.json, "nparams"), 1);
	assert_string_equal(itest_jstr(r.json, "x_test"), "hello");
	assert_string_equal(itest_jstr(r.json, "q"), "one");
	itest_resp_clear(&r);

	req(f, "PUT", "/things/xyz", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(itest_jstr(r.json, "route"), "thing_put");
	assert_string_equal(itest_jstr(r.json, "id"), "xyz");
	itest_resp_clear(&r);

	req(f, "GET", "/things/t1/parts/p2", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(itest_jstr(r.json, "route"), "part");
	assert_string_equal(itest_jstr(r.json, "thing"), "t1");
	assert_string_equal(itest_jstr(r.json, "part"), "p2");
	itest_resp_clear(&r);

	/* HEAD is answered by the GET route, without a body. */
	req(f, "HEAD", "/things/abc", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	itest_resp_clear(&r);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	struct itest_resp r;
	char allow[64];

	/* A known path with another method: 405 and every method it has. */
	req(f, "DELETE", "/things/abc", NULL, &r);
	assert_true(itest_is_problem(&r, 405, "method-not-allowed"));
	assert_int_equal(itest_resp_header(&r, "Allow", allow, sizeof(allow)), 0);
	assert_string_equal(allow, "GET, PUT");
	itest_resp_clear(&r);

	/* Paths of the daemon's own table are unknown to this one. */
	const char *const unknown[] = {"/healthz", "/v1/teams", "/things", "/things/", "/things/a/b",
				       "/things/a/parts/", "/secret/x"};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		req(f, "GET", unknown[i], NULL, &r);
		if (!itest_is_problem(&r, 404, "not-found"))
			fail_msg("GET %s: %ld %s", unknown[i], r.status, r.body);
		itest_resp_clear(&r);
	}

	/* A role route without a token: 401 at the headers, the handler never runs. */
	req(f, "GET", "/secret", NULL, &r);
	assert_true(itest_is_problem(&r, 401, "unauthorized"));
	assert_int_equal(atomic_load(&secret_runs), 0);
	itest_resp_clear(&r);
}

static void test_start_needs_a_table(void **state)
{
	(void)state;
	struct app app = {.currency = "USD"};
	struct server *srv = NULL;
	unsigned port = 0;
	char detail[256] = "";
	assert_int_equal(server_start(&app, "127.0.0.1:0", NULL, &srv, &port, detail, sizeof(detail)),
			 ERR_INVALID);
	assert_null(srv);
	assert_non_null(strstr(detail, "route"));
}

int main(void)
{
	itest_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routes_by_the_given_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test(test_start_needs_a_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
