/*
 * test_month.c - issue 16, "one month, one number": the FOCUS export of a
 * month sums to GET /v1/costs of that month to the micro-unit, against the
 * real daemon, on SQLite ('integration') and PostgreSQL ('integration-pg').
 *
 * The ledger is written through the store's own ops while the daemon is
 * stopped (approvals in the past cannot be made through the API): a
 * quarterly team with an allocation approved on 31 October that runs into
 * November, one inside November, one that runs from November into
 * December, one still running (past its max runtime, so its accrued cost
 * no longer moves) that started on 30 November, and one in October only.
 * Then, through HTTP and the CLI: export = costs with running allocations
 * included and excluded; the budget view differs by the boundary
 * allocation; the months of use add up to the whole; BillingPeriod* is the
 * calendar month, ChargeClass null; the file name; `plinth export -o`.
 * Budget versus actual (GET /v1/costs/periods): each past quarter's budget
 * is the one in force at its end, its actual the budget view's.
 */
#include "itest.h"
#include "itest_pg.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "core/timeutil.h"
#include "store/store.h"

#define HOUR INT64_C(3600)
#define DAY (24 * HOUR)

static const struct actor WHO = {"tok_test", "test", ROLE_ADMIN};

/* The --database-url the harness gave d, or "sqlite:<data>/plinth.db". */
static const char *daemon_url(struct itest_daemon *d)
{
	for (int i = 0; i + 1 < ITEST_MAX_ARGS && d->args[i] != NULL; i++)
		if (strcmp(d->args[i], "--database-url") == 0)
			return d->args[i + 1];
	return itest_strf(d, "sqlite:%s/plinth.db", d->data);
}

/* A decimal amount ("-12.345678") to micros; INT64_MIN when malformed. */
static int64_t micros(const char *s)
{
	int64_t v = 0, frac = 0, sign = 1;
	int nfrac = -1;

	if (*s == '-') {
		sign = -1;
		s++;
	}
	if (*s < '0' || *s > '9')
		return INT64_MIN;
	for (; *s != '\0'; s++) {
		if (*s == '.' && nfrac < 0) {
			nfrac = 0;
		} else if (*s >= '0' && *s <= '9' && nfrac < 0) {
			v = v * 10 + (*s - '0');
		} else if (*s >= '0' && *s <= '9' && nfrac < 6) {
			frac = frac * 10 + (*s - '0');
			nfrac++;
		} else {
			return INT64_MIN;
		}
	}
	for (; nfrac < 6; nfrac = nfrac < 0 ? 1 : nfrac + 1)
		frac *= 10;
	return sign * (v * 1000000 + frac);
}

/* The CSV of an export: the sum of BilledCost, the row count, and whether
 * every row's billing period is [ps, pe), its ChargeClass empty.  The
 * export quotes no amount and no column before x_Status holds a comma in
 * this ledger, so a split on ',' finds the columns asked for. */
struct csv_sum {
	int64_t billed;
	int rows, running_rows, period_ok, class_ok, boundary_rows;
};

static int col_of(const char *header, const char *name)
{
	char buf[2048];
	int i = 0;

	snprintf(buf, sizeof(buf), "%s", header);
	for (char *save = NULL, *f = strtok_r(buf, ",\r\n", &save); f != NULL;
	     f = strtok_r(NULL, ",\r\n", &save), i++)
		if (strcmp(f, name) == 0)
			return i;
	return -1;
}

static void field(const char *line, int col, char *out, size_t len)
{
	const char *p = line;

	for (int i = 0; i < col && p != NULL; i++) {
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	if (p == NULL) {
		out[0] = '\0';
		return;
	}
	size_t n = strcspn(p, ",\r\n");
	snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), p);
}

static struct csv_sum sum_csv(const char *body, const char *boundary_id)
{
	struct csv_sum s = {0};
	const char *nl = strchr(body, '\n');
	char header[2048], v[128];

	assert_non_null(nl);
	snprintf(header, sizeof(header), "%.*s", (int)(nl - body), body);
	int cb = col_of(header, "BilledCost"), cps = col_of(header, "BillingPeriodStart");
	int cpe = col_of(header, "BillingPeriodEnd"), ccl = col_of(header, "ChargeClass");
	int cst = col_of(header, "x_Status"), cid = col_of(header, "ResourceId");
	assert_true(cb >= 0 && cps >= 0 && cpe >= 0 && ccl >= 0 && cst >= 0 && cid >= 0);
	s.period_ok = s.class_ok = 1;
	for (const char *line = nl + 1; *line != '\0'; line = strchr(line, '\n') + 1) {
		field(line, cb, v, sizeof(v));
		int64_t m = micros(v);
		assert_true(m != INT64_MIN);
		s.billed += m;
		s.rows++;
		field(line, cps, v, sizeof(v));
		s.period_ok &= strcmp(v, "2026-11-01T00:00:00Z") == 0;
		field(line, cpe, v, sizeof(v));
		s.period_ok &= strcmp(v, "2026-12-01T00:00:00Z") == 0;
		field(line, ccl, v, sizeof(v));
		s.class_ok &= v[0] == '\0';
		field(line, cst, v, sizeof(v));
		s.running_rows += strcmp(v, "running") == 0;
		field(line, cid, v, sizeof(v));
		s.boundary_rows += strcmp(v, boundary_id) == 0;
		if (strchr(line, '\n') == NULL)
			break;
	}
	return s;
}

/* Approves (at `at`), starts and, unless end is 0, completes one allocation. */
/* A whole file, NUL-terminated, kept by d; *len its size. */
static char *slurp(struct itest_daemon *d, const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	assert_true(size >= 0);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	char *buf = itest_keep(d, calloc(1, (size_t)size + 1));
	assert_non_null(buf);
	*len = fread(buf, 1, (size_t)size, f);
	assert_int_equal(*len, (size_t)size);
	fclose(f);
	return buf;
}

static void alloc_at(const struct store_ops *ops, struct store_conn *c, int64_t at, int64_t start,
		     int64_t end, int64_t max_h, char id[STORE_ID_LEN])
{
	struct alloc_request r;
	struct alloc_outcome o;
	struct idem idem = {0};
	struct allocation a;
	char detail[STORE_DETAIL_LEN] = "";
	bool rep;

	memset(&r, 0, sizeof(r));
	snprintf(r.team, sizeof(r.team), "fin");
	snprintf(r.project, sizeof(r.project), "close");
	snprintf(r.gpu_type, sizeof(r.gpu_type), "h100-month");
	snprintf(r.labels_json, sizeof(r.labels_json), "{}");
	r.gpu_count = 4;
	r.max_runtime_us = max_h * HOUR * 1000000;
	assert_int_equal(ops->allocate(c, &WHO, &r, 30 * DAY, at, &idem, &o, detail), 0);
	snprintf(id, STORE_ID_LEN, "%s", o.alloc.id);
	assert_int_equal(ops->alloc_transition(c, &WHO, id, ALLOC_EV_START, start, start, &a, &rep,
					       detail), 0);
	if (end != 0)
		assert_int_equal(ops->alloc_transition(c, &WHO, id, ALLOC_EV_COMPLETE, end, end, &a,
						       &rep, detail), 0);
}

/* Writes the ledger of the test into d's database (d stopped). */
static void plant(struct itest_daemon *d, char boundary[STORE_ID_LEN])
{
	char detail[STORE_DETAIL_LEN] = "", id[STORE_ID_LEN];
	struct store *s = NULL;
	struct store_conn *c = NULL;
	struct gpu_type g;
	struct team t;
	bool created;
	int64_t oct31 = time_from_civil(2026, 10, 31), nov1 = time_from_civil(2026, 11, 1);
	int64_t nov30 = time_from_civil(2026, 11, 30);

	assert_int_equal(store_open(daemon_url(d), 1, &s, detail), 0);
	assert_int_equal(store_conn_acquire(s, &c), 0);
	const struct store_ops *ops = store_conn_ops(c);
	memset(&g, 0, sizeof(g));
	snprintf(g.id, sizeof(g.id), "h100-month");
	snprintf(g.name, sizeof(g.name), "H100");
	snprintf(g.price_date, sizeof(g.price_date), "2026-10-01");
	snprintf(g.price_source, sizeof(g.price_source), "test");
	g.price_micros = 3333337; /* an odd price: the day split has remainders */
	g.capacity = 64;
	assert_int_equal(ops->gpu_type_put(c, &WHO, &g, oct31 - 40 * DAY, &created), 0);
	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "fin");
	snprintf(t.display_name, sizeof(t.display_name), "Finance close");
	snprintf(t.thresholds_json, sizeof(t.thresholds_json), "[]");
	t.budget_micros = INT64_C(500000) * 1000000;
	t.period = PERIOD_QUARTERLY; /* the budget quarter is not the invoice month */
	/* Created in the second quarter, its budget doubled in the third. */
	assert_int_equal(ops->team_put(c, &WHO, &t, time_from_civil(2026, 6, 20), &created), 0);
	t.budget_micros = INT64_C(1000000) * 1000000;
	assert_int_equal(ops->team_put(c, &WHO, &t, time_from_civil(2026, 8, 10), &created), 0);

	/* Approved on 31 October, used from 22:00 that day to 2 November. */
	alloc_at(ops, c, oct31 + 20 * HOUR, oct31 + 22 * HOUR, nov1 + DAY + 5 * HOUR + 1053, 72,
		 boundary);
	/* Inside November. */
	alloc_at(ops, c, nov1 + 9 * DAY + 7, nov1 + 9 * DAY + 600, nov1 + 10 * DAY + 3 * HOUR + 17,
		 48, id);
	/* From 30 November into December. */
	alloc_at(ops, c, nov30 + 10 * HOUR, nov30 + 18 * HOUR + 11, nov30 + 31 * HOUR + 29, 24, id);
	/* Still running since 30 November 20:00, its 10 h max runtime long over. */
	alloc_at(ops, c, nov30 + 19 * HOUR, nov30 + 20 * HOUR, 0, 10, id);
	/* October only. */
	alloc_at(ops, c, oct31 - 5 * DAY, oct31 - 5 * DAY + 60, oct31 - 4 * DAY, 48, id);
	store_conn_release(s, c);
	store_close(s);
}

static void test_month_one_number(void **state)
{
	struct itest_daemon *d = *state;
	char boundary[STORE_ID_LEN], disp[128], cmd[5 * ITEST_PATH_LEN + 512];

	assert_int_equal(itest_daemon_stop(d), 0);
	plant(d, boundary);
	assert_int_equal(itest_daemon_restart(d), 0);

	/* Running allocations included (the default of both). */
	struct itest_resp *costs = itest_req(d, "GET", "/v1/costs?month=2026-11", d->admin, NULL);
	assert_int_equal(costs->status, 200);
	assert_string_equal(itest_jstr(costs->json, "view"), "use");
	int64_t spent = itest_jmoney(costs->json, "total.spent");
	int64_t accrued = itest_jmoney(costs->json, "total.accrued");
	assert_true(spent > 0 && accrued > 0);
	struct itest_resp *ex = itest_req(d, "GET", "/v1/costs/export?format=focus&month=2026-11",
					  d->admin, NULL);
	assert_int_equal(ex->status, 200);
	struct csv_sum all = sum_csv(ex->body, boundary);
	fprintf(stderr, "# November: export %lld micros in %d rows; costs spent %lld + accrued %lld\n",
		(long long)all.billed, all.rows, (long long)spent, (long long)accrued);
	assert_int_equal(all.billed, spent + accrued);
	assert_true(all.running_rows == 1);  /* 30 November 20:00-24:00 */
	assert_true(all.boundary_rows == 2); /* 1 and 2 November */
	assert_true(all.period_ok);          /* the invoice month, not the quarter */
	assert_true(all.class_ok);           /* null: no corrections */
	assert_int_equal(itest_resp_header(ex, "Content-Disposition", disp, sizeof(disp)), 0);
	assert_string_equal(disp, "attachment; filename=\"plinth-focus-2026-11.csv\"");

	/* Running allocations excluded, the same way in both. */
	costs = itest_req(d, "GET", "/v1/costs?month=2026-11&include_running=false", d->admin, NULL);
	assert_int_equal(costs->status, 200);
	assert_int_equal(itest_jmoney(costs->json, "total.spent"), spent);
	assert_int_equal(itest_jmoney(costs->json, "total.accrued"), 0);
	ex = itest_req(d, "GET", "/v1/costs/export?month=2026-11&include_running=false", d->admin,
		       NULL);
	assert_int_equal(ex->status, 200);
	struct csv_sum done = sum_csv(ex->body, boundary);
	assert_int_equal(done.billed, spent);
	assert_int_equal(done.running_rows, 0);
	assert_int_equal(done.rows, all.rows - 1);

	/* group_by=month names the same number; the months of use add up to
	 * what the budget view counts at approval over the same quarter. */
	costs = itest_req(d, "GET", "/v1/costs?group_by=month&from=2026-10-01&to=2027-01-01",
			  d->admin, NULL);
	assert_int_equal(costs->status, 200);
	json_t *items = itest_jget(costs->json, "items");
	assert_int_equal(json_array_size(items), 3);
	assert_string_equal(itest_jstr(json_array_get(items, 1), "key"), "2026-11");
	assert_int_equal(itest_jmoney(json_array_get(items, 1), "spent"), spent);
	assert_int_equal(itest_jmoney(json_array_get(items, 1), "accrued"), accrued);
	struct itest_resp *budget = itest_req(
		d, "GET", "/v1/costs?group_by=month&view=budget&from=2026-10-01&to=2027-01-01",
		d->admin, NULL);
	assert_int_equal(budget->status, 200);
	assert_string_equal(itest_jstr(budget->json, "view"), "budget");
	assert_int_equal(itest_jmoney(budget->json, "total.spent"),
			 itest_jmoney(costs->json, "total.spent"));
	assert_int_equal(itest_jmoney(budget->json, "total.accrued"),
			 itest_jmoney(costs->json, "total.accrued"));
	/* ...but not month by month: the boundary allocation is October's there. */
	json_t *bitems = itest_jget(budget->json, "items");
	assert_string_equal(itest_jstr(json_array_get(bitems, 1), "key"), "2026-11");
	assert_true(itest_jmoney(json_array_get(bitems, 1), "spent") != spent);

	/* The CLI writes the very bytes of the export to a file, says so on
	 * stderr with the row count, and prints nothing on stdout. */
	ex = itest_req(d, "GET", "/v1/costs/export?format=focus&month=2026-11", d->admin, NULL);
	snprintf(cmd, sizeof(cmd),
		 "PLINTH_URL='%s' PLINTH_TOKEN='%s' '%s' export --format focus --month 2026-11"
		 " -o '%s/nov.csv' >'%s/nov.out' 2>'%s/nov.err'", d->base_url, d->admin,
		 getenv("PLINTH_BIN"), d->root, d->root, d->root);
	int st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	size_t n;
	char *file = slurp(d, itest_strf(d, "%s/nov.csv", d->root), &n);
	assert_int_equal(n, ex->body_len);
	assert_memory_equal(file, ex->body, n);
	slurp(d, itest_strf(d, "%s/nov.out", d->root), &n);
	assert_int_equal(n, 0);
	const char *said = slurp(d, itest_strf(d, "%s/nov.err", d->root), &n);
	assert_true(all.rows > 1);
	assert_string_equal(said, itest_strf(d, "wrote %d rows to %s/nov.csv\n", all.rows, d->root));
	/* Without -o the CSV is stdout, byte for byte, and stderr stays quiet. */
	snprintf(cmd, sizeof(cmd),
		 "PLINTH_URL='%s' PLINTH_TOKEN='%s' '%s' export --format focus --month 2026-11"
		 " >'%s/nov.out' 2>'%s/nov.err'", d->base_url, d->admin, getenv("PLINTH_BIN"),
		 d->root, d->root);
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	file = slurp(d, itest_strf(d, "%s/nov.out", d->root), &n);
	assert_int_equal(n, ex->body_len);
	assert_memory_equal(file, ex->body, n);
	slurp(d, itest_strf(d, "%s/nov.err", d->root), &n);
	assert_int_equal(n, 0);
	snprintf(cmd, sizeof(cmd),
		 "PLINTH_URL='%s' PLINTH_TOKEN='%s' '%s' costs --group-by month --month 2026-11"
		 " >/dev/null", d->base_url, d->admin, getenv("PLINTH_BIN"));
	st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The period starting at `start` in a /v1/costs/periods answer, or NULL. */
static json_t *period_of(json_t *res, const char *start)
{
	size_t i;
	json_t *row;

	json_array_foreach(json_object_get(res, "items"), i, row)
		if (strcmp(itest_jstr(row, "period_start"), start) == 0)
			return row;
	return NULL;
}

static void test_month_budget_history(void **state)
{
	struct itest_daemon *d = *state;
	char boundary[STORE_ID_LEN], cmd[2 * ITEST_PATH_LEN + 512];

	assert_int_equal(itest_daemon_stop(d), 0);
	plant(d, boundary);
	assert_int_equal(itest_daemon_restart(d), 0);
	struct itest_resp *r = itest_req(d, "GET", "/v1/costs/periods?team=fin&limit=36", d->admin,
					 NULL);
	assert_int_equal(r->status, 200);
	assert_string_equal(itest_jstr(r->json, "period"), "quarterly");
	assert_true(json_is_true(itest_jget(r->json, "budget_history_complete")));
	json_t *q4 = period_of(r->json, "2026-10-01T00:00:00Z");
	json_t *q3 = period_of(r->json, "2026-07-01T00:00:00Z");
	json_t *q2 = period_of(r->json, "2026-04-01T00:00:00Z");
	json_t *q1 = period_of(r->json, "2026-01-01T00:00:00Z");
	assert_true(q4 && q3 && q2 && q1);
	/* Q4's actual is what the budget view charges to it (approvals in Q4). */
	struct itest_resp *b = itest_req(d, "GET",
		"/v1/costs?view=budget&team=fin&from=2026-10-01&to=2027-01-01", d->admin, NULL);
	assert_int_equal(b->status, 200);
	int64_t actual = itest_jmoney(b->json, "total.spent") + itest_jmoney(b->json, "total.accrued");
	assert_true(actual > 0);
	assert_int_equal(itest_jmoney(q4, "actual"), actual);
	assert_int_equal(itest_jmoney(q4, "budget"), INT64_C(1000000) * 1000000);
	assert_int_equal(itest_jmoney(q4, "difference"), INT64_C(1000000) * 1000000 - actual);
	assert_int_equal(itest_jmoney(q3, "budget"), INT64_C(1000000) * 1000000);
	assert_int_equal(itest_jmoney(q2, "budget"), INT64_C(500000) * 1000000);
	assert_true(json_is_null(itest_jget(q1, "budget"))); /* before the team existed */
	assert_true(json_is_null(itest_jget(q1, "difference")));
	assert_int_equal(itest_jmoney(q3, "actual"), 0);
	r = itest_req(d, "GET", "/v1/costs/periods?team=nobody", d->admin, NULL);
	assert_int_equal(r->status, 404);
	r = itest_req(d, "GET", "/v1/costs/periods?team=fin&limit=0", d->admin, NULL);
	assert_int_equal(r->status, 422);
	r = itest_req(d, "GET", "/v1/costs/periods", d->admin, NULL);
	assert_int_equal(r->status, 422);
	snprintf(cmd, sizeof(cmd),
		 "PLINTH_URL='%s' PLINTH_TOKEN='%s' '%s' costs --budget-history --team fin"
		 " | grep -q '^2026-04-01 .*500000.00 USD'", d->base_url, d->admin,
		 getenv("PLINTH_BIN"));
	int st = system(cmd);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Bad input is a 422 problem and both endpoints read it alike. */
static void test_month_bad_input(void **state)
{
	struct itest_daemon *d = *state;
	static const char *const bad[] = {
		"month=2026-13", "month=2026-1", "month=26-11", "month=2026-11&from=2026-11-01",
		"include_running=yes", "view=approval", "group_by=week",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct itest_resp *r = itest_req(d, "GET", itest_strf(d, "/v1/costs?%s", bad[i]),
						 d->admin, NULL);
		assert_int_equal(r->status, 422);
		if (i < 5) {
			r = itest_req(d, "GET", itest_strf(d, "/v1/costs/export?%s", bad[i]),
				      d->admin, NULL);
			assert_int_equal(r->status, 422);
		}
	}
	/* A range that is not one month is named by its dates. */
	char disp[128];
	struct itest_resp *r = itest_req(d, "GET", "/v1/costs/export?from=2026-11-03&to=2026-11-10",
					 d->admin, NULL);
	assert_int_equal(r->status, 200);
	assert_int_equal(itest_resp_header(r, "Content-Disposition", disp, sizeof(disp)), 0);
	assert_string_equal(disp, "attachment; filename=\"plinth-focus-2026-11-03_2026-11-10.csv\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_month_one_number, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_month_budget_history, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_month_bad_input, itest_setup_daemon,
						itest_teardown_daemon),
	};
	itest_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
