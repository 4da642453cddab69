/*
 * test_store.c - the storage layer against a real database: ledger rules
 * through the ops, rollback of every partial write (fault injection), races
 * between connections, the append-only audit log and migrations.
 *
 * SQLite (a file in a mkdtemp directory) by default; PostgreSQL with
 * ITEST_PG=1 (a fresh schema per test in PLINTH_TEST_PG_URL's database, see
 * tests/integration/itest_pg.h).  Checks that look at the database itself go
 * through raw_*(): a separate connection of the database's own library.
 *
 * Run one group with `test_store GROUP` (ledger, fault, race, audit,
 * migrate, misc); no argument runs all.  Never touches anything outside its
 * mkdtemp directory or its own schema.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "itest_pg.h"

#include "core/err.h"
#include "core/timeutil.h"
#include "store/schema.h"
#include "store/store.h"

/* 1000 micros per GPU-second. */
#define PRICE INT64_C(3600000)
#define HOUR_US INT64_C(3600000000)
#define SEC_US INT64_C(1000000)

struct fx {
	char dir[64];
	char path[128];
	char url[1024]; /* the store's URL: sqlite:PATH or the PostgreSQL schema's */
	bool pg;
	struct store *s;
	struct store_conn *c;
	const struct store_ops *ops;
	int64_t now;
};

static const struct actor ADMIN = {"tok_admin", "admin", ROLE_ADMIN};

static void fx_paths(struct fx *f)
{
	strcpy(f->dir, "/tmp/plinth-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/plinth.db", f->dir);
	f->pg = itest_pg_enabled();
	if (f->pg)
		assert_int_equal(itest_pg_fresh_url(f->url, sizeof(f->url)), 0);
	else
		snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
}

static void fx_open(struct fx *f, int pool)
{
	char detail[STORE_DETAIL_LEN] = "";

	assert_int_equal(store_open(f->url, pool, &f->s, detail), 0);
	assert_int_equal(store_conn_acquire(f->s, &f->c), 0);
	f->ops = store_conn_ops(f->c);
	assert_string_equal(f->ops->name, f->pg ? "postgres" : "sqlite");
}

/*
 * Opens the pool's other connections one after another before a race: the
 * races are about the ledger, and a storm of connection handshakes (slow
 * under valgrind) can outlast libpq's connect_timeout.
 */
static void fx_warm(struct fx *f, int pool)
{
	struct store_conn *c[64];

	assert_true(pool - 1 <= 64);
	for (int i = 0; i < pool - 1; i++)
		assert_int_equal(store_conn_acquire(f->s, &c[i]), 0);
	for (int i = 0; i < pool - 1; i++)
		store_conn_release(f->s, c[i]);
}

/* ---- the database itself, through its own library ---------------------- */

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The rows of sql as text, one "v1|v2|...|" line each (NULL as "NULL"),
 * sorted when asked; caller frees.  On an error, NULL and *err (caller
 * frees) when err is given, else the test fails.
 */
static char *raw_rows(struct fx *f, const char *sql, bool sorted, char **err)
{
	char **lines = NULL, *out = NULL;
	size_t n = 0, len = 0;
	FILE *mem;

	if (f->pg) {
		PGconn *db = PQconnectdb(f->url);
		PGresult *r;

		assert_int_equal(PQstatus(db), CONNECTION_OK);
		r = PQexec(db, sql);
		if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
			if (!err)
				fail_msg("%s: %s", sql, PQresultErrorMessage(r));
			*err = strdup(PQresultErrorMessage(r));
			PQclear(r);
			PQfinish(db);
			return NULL;
		}
		n = (size_t)PQntuples(r);
		lines = calloc(n + 1, sizeof(*lines));
		assert_non_null(lines);
		for (size_t i = 0; i < n; i++) {
			char *l = NULL;
			size_t ll = 0;
			FILE *m = open_memstream(&l, &ll);

			assert_non_null(m);
			for (int c = 0; c < PQnfields(r); c++)
				fprintf(m, "%s|", PQgetisnull(r, (int)i, c) ? "NULL" : PQgetvalue(r, (int)i, c));
			fclose(m);
			lines[i] = l;
		}
		PQclear(r);
		PQfinish(db);
	} else {
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		int src;

		assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
		src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		while (src == SQLITE_OK || src == SQLITE_ROW) {
			if ((src = sqlite3_step(st)) != SQLITE_ROW)
				break;
			char *l = NULL;
			size_t ll = 0;
			FILE *m = open_memstream(&l, &ll);

			assert_non_null(m);
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const unsigned char *t = sqlite3_column_text(st, c);
				fprintf(m, "%s|", t ? (const char *)t : "NULL");
			}
			fclose(m);
			lines = realloc(lines, (n + 2) * sizeof(*lines));
			assert_non_null(lines);
			lines[n++] = l;
		}
		if (src != SQLITE_DONE) {
			if (!err)
				fail_msg("%s: %s", sql, sqlite3_errmsg(db));
			*err = strdup(sqlite3_errmsg(db));
			for (size_t i = 0; i < n; i++)
				free(lines[i]);
			free(lines);
			sqlite3_finalize(st);
			sqlite3_close(db);
			return NULL;
		}
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	if (sorted && n > 1)
		qsort(lines, n, sizeof(*lines), line_cmp);
	mem = open_memstream(&out, &len);
	assert_non_null(mem);
	for (size_t i = 0; i < n; i++) {
		fprintf(mem, "%s\n", lines[i]);
		free(lines[i]);
	}
	fclose(mem);
	free(lines);
	return out;
}

/* One integer from sql (its first row's first column). */
static int64_t raw_i64(struct fx *f, const char *sql)
{
	char *t = raw_rows(f, sql, false, NULL);
	int64_t v = strtoll(t, NULL, 10);

	free(t);
	return v;
}

/* COUNT(*) of a table through a separate connection. */
static int64_t count_rows(struct fx *f, const char *table)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
	return raw_i64(f, sql);
}

/* Runs a statement that must FAIL; returns its error message (caller frees). */
static char *raw_refused(struct fx *f, const char *sql)
{
	char *err = NULL, *rows = raw_rows(f, sql, false, &err);

	assert_null(rows);
	assert_non_null(err);
	return err;
}

static void fx_shut(struct fx *f)
{
	if (f->c)
		store_conn_release(f->s, f->c);
	f->c = NULL;
	store_close(f->s);
	f->s = NULL;
}

static void fx_rm(struct fx *f)
{
	const char *sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[160];

	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fx_paths(f);
	fx_open(f, 4);
	f->now = time_from_civil(2026, 7, 15) + 12 * 3600;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	fx_shut(f);
	fx_rm(f);
	free(f);
	return 0;
}

static void put_team(struct fx *f, const char *id, int64_t budget)
{
	struct team t;
	bool created = false;

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.display_name, sizeof(t.display_name), "Team %s", id);
	t.budget_micros = budget;
	t.period = PERIOD_MONTHLY;
	strcpy(t.thresholds_json, "[0.5,0.8,1.0]");
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
}

static void put_gpu(struct fx *f, const char *id, int64_t price, int64_t capacity)
{
	struct gpu_type g;
	bool created = false;

	memset(&g, 0, sizeof(g));
	snprintf(g.id, sizeof(g.id), "%s", id);
	snprintf(g.name, sizeof(g.name), "GPU %s", id);
	g.price_micros = price;
	strcpy(g.price_date, "2026-07-01");
	strcpy(g.price_source, "admin");
	g.capacity = capacity;
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
}

static struct alloc_request req(const char *team, const char *gpu, int64_t count, int64_t runtime_us)
{
	struct alloc_request r;

	memset(&r, 0, sizeof(r));
	snprintf(r.team, sizeof(r.team), "%s", team);
	strcpy(r.project, "proj");
	snprintf(r.gpu_type, sizeof(r.gpu_type), "%s", gpu);
	r.gpu_count = count;
	r.max_runtime_us = runtime_us;
	strcpy(r.purpose, "test");
	strcpy(r.labels_json, "{\"k\":\"v\"}");
	return r;
}

static int do_alloc(struct fx *f, const char *team, const char *gpu, int64_t count, int64_t runtime_us,
		    int64_t now, struct alloc_outcome *o)
{
	struct alloc_request r = req(team, gpu, count, runtime_us);
	char detail[STORE_DETAIL_LEN] = "";

	memset(o, 0, sizeof(*o));
	return f->ops->allocate(f->c, &ADMIN, &r, 86400, now, NULL, o, detail);
}

static struct team_ledger ledger(struct fx *f, const char *team, int64_t now)
{
	struct team t;
	struct team_ledger l;

	assert_int_equal(f->ops->team_get(f->c, team, &t), 0);
	assert_int_equal(f->ops->team_ledger(f->c, &t, now, &l), 0);
	return l;
}

static int64_t gpu_allocated(struct fx *f, const char *id)
{
	struct gpu_type g;

	assert_int_equal(f->ops->gpu_type_get(f->c, id, &g), 0);
	return g.allocated;
}

static int transition(struct fx *f, const char *id, enum alloc_event ev, int64_t at, int64_t now,
		      struct allocation *out, bool *repeat)
{
	char detail[STORE_DETAIL_LEN] = "";

	*repeat = false;
	return f->ops->alloc_transition(f->c, &ADMIN, id, ev, at, now, out, repeat, detail);
}

static int count_cb(void *ctx, const struct audit_entry *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

/* Keeps a copy of the last entry (its JSON texts owned by ctx's caller). */
static int last_audit_cb(void *ctx, const struct audit_entry *e)
{
	struct audit_entry *last = ctx;
	free(last->before_json);
	free(last->after_json);
	*last = *e;
	last->before_json = e->before_json ? strdup(e->before_json) : NULL;
	last->after_json = e->after_json ? strdup(e->after_json) : NULL;
	return 0;
}

static int audit_count(struct fx *f)
{
	char next[STORE_ID_LEN * 2];
	int n = 0;

	assert_int_equal(f->ops->audit_list(f->c, NULL, NULL, STORE_MAX_PAGE, count_cb, &n, next), 0);
	return n;
}

/* ---- 1. ledger through the ops ----------------------------------------- */

static void test_exact_fit_and_one_micro_over(void **state)
{
	struct fx *f = *state;
	struct alloc_outcome o;
	struct team_ledger l;
	int audits;

	put_gpu(f, "h100", PRICE, 100);
	put_team(f, "nlp", 10000000);      /* exactly 1 GPU x 10000 s */
	put_team(f, "cv", 10000000 - 1);   /* one micro short */

	assert_int_equal(do_alloc(f, "nlp", "h100", 1, 10000 * SEC_US, f->now, &o), 0);
	assert_int_equal(o.estimated, 10000000);
	assert_int_equal(o.available, 10000000);
	assert_true(o.budget_ok && o.capacity_ok);
	assert_int_equal(o.alloc.status, ALLOC_APPROVED);
	assert_int_equal(o.alloc.price_micros, PRICE);
	assert_int_equal(o.alloc.expires_at, f->now + 86400);
	assert_int_equal(o.alloc.actual_micros, -1);
	assert_int_equal(strncmp(o.alloc.id, "alloc_", 6), 0);
	{
		struct allocation g;
		assert_int_equal(f->ops->alloc_get(f->c, o.alloc.id, &g), 0);
		assert_string_equal(g.id, o.alloc.id);
		assert_string_equal(g.team, "nlp");
		assert_string_equal(g.project, "proj");
		assert_string_equal(g.gpu_type, "h100");
		assert_string_equal(g.created_by, "tok_admin");
		assert_string_equal(g.labels_json, "{\"k\":\"v\"}");
		assert_string_equal(g.purpose, "test");
		assert_int_equal(g.gpu_count, 1);
		assert_int_equal(g.max_runtime_us, 10000 * SEC_US);
		assert_int_equal(g.estimated_micros, 10000000);
		assert_int_equal(g.period_start, time_from_civil(2026, 7, 1));
		assert_int_equal(g.approved_at, f->now);
		assert_int_equal(g.expires_at, f->now + 86400);
		assert_int_equal(g.started_at, 0);
		assert_int_equal(g.ended_at, 0);
		assert_int_equal(g.actual_micros, -1);
		assert_int_equal(g.status, ALLOC_APPROVED);
	}
	l = ledger(f, "nlp", f->now);
	assert_int_equal(l.reserved, 10000000);
	assert_int_equal(l.spent, 0);
	assert_int_equal(gpu_allocated(f, "h100"), 1);

	audits = audit_count(f);
	assert_int_equal(do_alloc(f, "cv", "h100", 1, 10000 * SEC_US, f->now, &o), ERR_BUDGET);
	assert_false(o.budget_ok);
	assert_true(o.capacity_ok);
	assert_int_equal(o.available, 10000000 - 1);
	assert_int_equal(o.estimated, 10000000);
	assert_int_equal(ledger(f, "cv", f->now).reserved, 0);
	/* A refusal changes no money but is a decision: audited, with its figures. */
	assert_int_equal(audit_count(f), audits + 1);
	{
		struct audit_entry last;
		char next[STORE_ID_LEN * 2];
		memset(&last, 0, sizeof(last));
		assert_int_equal(f->ops->audit_list(f->c, "cv", NULL, STORE_MAX_PAGE, last_audit_cb,
						    &last, next), 0);
		assert_string_equal(last.action, "allocation.refuse");
		assert_string_equal(last.object_type, "allocation");
		assert_string_equal(last.object_id, "");
		assert_string_equal(last.team, "cv");
		assert_null(last.before_json);
		assert_non_null(last.after_json);
		assert_non_null(strstr(last.after_json, "\"reason\":\"budget\""));
		assert_non_null(strstr(last.after_json, "\"available\":\"9.999999\""));
		assert_non_null(strstr(last.after_json, "\"estimated_cost\":\"10.00\""));
		free(last.before_json);
		free(last.after_json);
	}

	/* nlp is now full: a single GPU-second is refused with 0 available. */
	assert_int_equal(do_alloc(f, "nlp", "h100", 1, SEC_US, f->now, &o), ERR_BUDGET);
	assert_int_equal(o.available, 0);
	assert_int_equal(o.estimated, 1000);
	assert_int_equal(gpu_allocated(f, "h100"), 1);

	/* Unknown team / GPU type name which. */
	{
		struct alloc_request r = req("nope", "h100", 1, SEC_US);
		char detail[STORE_DETAIL_LEN] = "";
		assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, NULL, &o, detail),
				 ERR_NOT_FOUND);
		assert_string_equal(detail, "unknown team 'nope'");
		r = req("nlp", "a100", 1, SEC_US);
		assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, NULL, &o, detail),
				 ERR_NOT_FOUND);
		assert_string_equal(detail, "unknown gpu_type 'a100'");
	}
}

static void test_capacity_exact_fit(void **state)
{
	struct fx *f = *state;
	struct alloc_outcome o;

	put_gpu(f, "h100", PRICE, 8);
	put_team(f, "nlp", INT64_C(1000000000000));
	assert_int_equal(do_alloc(f, "nlp", "h100", 5, HOUR_US, f->now, &o), 0);
	assert_int_equal(do_alloc(f, "nlp", "h100", 3, HOUR_US, f->now, &o), 0);
	assert_int_equal(o.gpus_available, 3);
	assert_int_equal(gpu_allocated(f, "h100"), 8);
	assert_int_equal(do_alloc(f, "nlp", "h100", 1, HOUR_US, f->now, &o), ERR_CAPACITY);
	assert_true(o.budget_ok);
	assert_false(o.capacity_ok);
	assert_int_equal(o.gpus_available, 0);
	assert_int_equal(gpu_allocated(f, "h100"), 8);
	assert_int_equal(ledger(f, "nlp", f->now).reserved, 8 * PRICE);
}

static void test_start_complete_moves_money(void **state)
{
	struct fx *f = *state;
	struct alloc_outcome o;
	struct allocation a;
	struct team_ledger l;
	bool rep;
	char id1[STORE_ID_LEN], id2[STORE_ID_LEN];
	int64_t t0 = f->now;

	put_gpu(f, "h100", PRICE, 8);
	put_team(f, "nlp", INT64_C(100000000));
	assert_int_equal(do_alloc(f, "nlp", "h100", 2, HOUR_US, t0, &o), 0);
	assert_int_equal(o.estimated, 7200000);
	strcpy(id1, o.alloc.id);

	/* complete before start is an impossible transition */
	assert_int_equal(transition(f, id1, ALLOC_EV_COMPLETE, t0 + 5, t0 + 5, &a, &rep),
			 ERR_CONFLICT);

	assert_int_equal(transition(f, id1, ALLOC_EV_START, t0 + 10, t0 + 10, &a, &rep), 0);
	assert_false(rep);
	assert_int_equal(a.status, ALLOC_RUNNING);
	assert_int_equal(a.started_at, t0 + 10);
	l = ledger(f, "nlp", t0 + 10 + 600);
	assert_int_equal(l.running, 1);
	assert_int_equal(l.accrued, 2 * 600 * 1000);
	assert_int_equal(l.reserved, 7200000);

	/* ended before started */
	assert_int_equal(transition(f, id1, ALLOC_EV_COMPLETE, t0 + 5, t0 + 20, &a, &rep), ERR_INVALID);

	assert_int_equal(transition(f, id1, ALLOC_EV_COMPLETE, t0 + 10 + 1800, t0 + 1810, &a, &rep), 0);
	assert_false(rep);
	assert_int_equal(a.status, ALLOC_COMPLETED);
	assert_int_equal(a.actual_micros, 2 * 1800 * 1000);
	l = ledger(f, "nlp", t0 + 2000);
	assert_int_equal(l.spent, 3600000);
	assert_int_equal(l.reserved, 0);
	assert_int_equal(l.running, 0);
	assert_int_equal(gpu_allocated(f, "h100"), 0);

	/* repeats succeed and charge nothing twice */
	{
		int audits = audit_count(f);
		assert_int_equal(transition(f, id1, ALLOC_EV_COMPLETE, t0 + 5000, t0 + 5000, &a, &rep), 0);
		assert_true(rep);
		assert_int_equal(a.actual_micros, 3600000);
		assert_int_equal(a.ended_at, t0 + 1810);
		assert_int_equal(transition(f, id1, ALLOC_EV_START, t0 + 5000, t0 + 5000, &a, &rep),
				 ERR_CONFLICT);
		l = ledger(f, "nlp", t0 + 5000);
		assert_int_equal(l.spent, 3600000);
		assert_int_equal(audit_count(f), audits);
	}

	/* billed time is capped at the max runtime */
	assert_int_equal(do_alloc(f, "nlp", "h100", 2, HOUR_US, t0, &o), 0);
	strcpy(id2, o.alloc.id);
	assert_int_equal(transition(f, id2, ALLOC_EV_START, t0, t0, &a, &rep), 0);
	assert_int_equal(transition(f, id2, ALLOC_EV_START, t0 + 9, t0 + 9, &a, &rep), 0);
	assert_true(rep);
	assert_int_equal(a.started_at, t0);
	assert_int_equal(transition(f, id2, ALLOC_EV_COMPLETE, t0 + 7200, t0 + 7200, &a, &rep), 0);
	assert_int_equal(a.actual_micros, 7200000);
	l = ledger(f, "nlp", t0 + 7200);
	assert_int_equal(l.spent, 3600000 + 7200000);
	assert_int_equal(l.reserved, 0);

	/* What was spent is gone from the budget: one GPU-second past the rest is
	 * refused, the exact rest approved (on PostgreSQL the batch reads spent). */
	assert_int_equal(do_alloc(f, "nlp", "h100", 1, 89201 * SEC_US, t0 + 7200, &o), ERR_BUDGET);
	assert_int_equal(o.available, 100000000 - 3600000 - 7200000);
	assert_int_equal(do_alloc(f, "nlp", "h100", 1, 89200 * SEC_US, t0 + 7200, &o), 0);

	assert_int_equal(transition(f, "alloc_missing", ALLOC_EV_START, t0, t0, &a, &rep), ERR_NOT_FOUND);
}

static void test_cancel_and_expiry_release(void **state)
{
	struct fx *f = *state;
	struct alloc_outcome o;
	struct allocation a;
	bool rep;
	int n = -1;
	char id[STORE_ID_LEN];
	char detail[STORE_DETAIL_LEN] = "";
	int64_t t0 = f->now;

	put_gpu(f, "h100", PRICE, 4);
	put_team(f, "nlp", 4 * PRICE);

	assert_int_equal(do_alloc(f, "nlp", "h100", 4, HOUR_US, t0, &o), 0);
	strcpy(id, o.alloc.id);
	assert_int_equal(transition(f, id, ALLOC_EV_CANCEL, t0 + 1, t0 + 1, &a, &rep), 0);
	assert_int_equal(a.status, ALLOC_CANCELLED);
	assert_int_equal(a.actual_micros, 0);
	assert_int_equal(a.ended_at, t0 + 1);
	assert_int_equal(ledger(f, "nlp", t0 + 1).reserved, 0);
	assert_int_equal(gpu_allocated(f, "h100"), 0);
	assert_int_equal(transition(f, id, ALLOC_EV_CANCEL, t0 + 2, t0 + 2, &a, &rep), 0);
	assert_true(rep);
	assert_int_equal(transition(f, id, ALLOC_EV_START, t0 + 2, t0 + 2, &a, &rep), ERR_CONFLICT);

	/* start after the start timeout expires it instead */
	assert_int_equal(do_alloc(f, "nlp", "h100", 4, HOUR_US, t0, &o), 0);
	strcpy(id, o.alloc.id);
	memset(&a, 0, sizeof(a));
	assert_int_equal(f->ops->alloc_transition(f->c, &ADMIN, id, ALLOC_EV_START, t0 + 86400,
						  t0 + 86400, &a, &rep, detail),
			 ERR_CONFLICT);
	assert_string_equal(detail, "allocation expired before it started");
	assert_int_equal(f->ops->alloc_get(f->c, id, &a), 0);
	assert_int_equal(a.status, ALLOC_EXPIRED);
	assert_int_equal(a.actual_micros, 0);
	assert_int_equal(ledger(f, "nlp", t0 + 86400).reserved, 0);
	assert_int_equal(gpu_allocated(f, "h100"), 0);

	/* the sweeper */
	assert_int_equal(do_alloc(f, "nlp", "h100", 4, HOUR_US, t0 + 100, &o), 0);
	strcpy(id, o.alloc.id);
	assert_int_equal(f->ops->alloc_expire_due(f->c, t0 + 100 + 86399, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(f->ops->alloc_expire_due(f->c, t0 + 100 + 86400, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(f->ops->alloc_get(f->c, id, &a), 0);
	assert_int_equal(a.status, ALLOC_EXPIRED);
	assert_int_equal(a.ended_at, t0 + 100 + 86400);
	assert_int_equal(gpu_allocated(f, "h100"), 0);
	assert_int_equal(f->ops->alloc_expire_due(f->c, t0 + 200000, &n), 0);
	assert_int_equal(n, 0);

	/* allocate expires due ones first, so a full budget frees up */
	assert_int_equal(do_alloc(f, "nlp", "h100", 4, HOUR_US, t0 + 1000, &o), 0);
	strcpy(id, o.alloc.id);
	assert_int_equal(do_alloc(f, "nlp", "h100", 4, HOUR_US, t0 + 1000 + 86400, &o), 0);
	assert_int_equal(f->ops->alloc_get(f->c, id, &a), 0);
	assert_int_equal(a.status, ALLOC_EXPIRED);

	/* ... also those of other teams, GPU types and periods (cv's is June's):
	 * on PostgreSQL the batch locks their rows with its own, in one order,
	 * and decides on what the expiry left */
	put_gpu(f, "a100", PRICE, 2);
	put_team(f, "cv", 2 * PRICE);
	assert_int_equal(do_alloc(f, "cv", "a100", 2, HOUR_US, t0 - 16 * 86400, &o), 0);
	assert_int_equal(do_alloc(f, "cv", "a100", 2, HOUR_US, t0 + 3 * 86400, &o), 0); /* was full */
	assert_int_equal(ledger(f, "cv", t0 - 16 * 86400).reserved, 0);
	assert_int_equal(ledger(f, "cv", t0 + 3 * 86400).reserved, 2 * PRICE);
	assert_int_equal(ledger(f, "nlp", t0 + 3 * 86400).reserved, 0); /* nlp's expired too */
	assert_int_equal(gpu_allocated(f, "h100"), 0);
	assert_int_equal(gpu_allocated(f, "a100"), 2);
}

static void test_price_change_new_only(void **state)
{
	struct fx *f = *state;
	struct alloc_outcome o;
	struct allocation a;
	bool rep;
	char id[STORE_ID_LEN];
	struct gpu_type g;

	put_gpu(f, "h100", PRICE, 8);
	put_team(f, "nlp", INT64_C(1000000000));
	assert_int_equal(do_alloc(f, "nlp", "h100", 1, HOUR_US, f->now, &o), 0);
	strcpy(id, o.alloc.id);
	put_gpu(f, "h100", 2 * PRICE, 8);
	assert_int_equal(f->ops->gpu_type_get(f->c, "h100", &g), 0);
	assert_int_equal(g.price_micros, 2 * PRICE);
	assert_int_equal(g.allocated, 1); /* put keeps allocated */
	assert_int_equal(do_alloc(f, "nlp", "h100", 1, HOUR_US, f->now, &o), 0);
	assert_int_equal(o.alloc.price_micros, 2 * PRICE);
	assert_int_equal(o.estimated, 2 * PRICE);
	assert_int_equal(transition(f, id, ALLOC_EV_START, f->now, f->now, &a, &rep), 0);
	assert_int_equal(transition(f, id, ALLOC_EV_COMPLETE, f->now + 3600, f->now + 3600, &a, &rep), 0);
	assert_int_equal(a.price_micros, PRICE);
	assert_int_equal(a.actual_micros, PRICE);
}

struct cost_sum {
	int n;
	struct cost_row rows[16];
};

static int cost_cb(void *ctx, const struct cost_row *r)
{
	struct cost_sum *s = ctx;

	if (s->n < 16)
		s->rows[s->n] = *r;
	s->n++;
	return 0;
}

static void test_previous_period_spend(void **state)
{
	struct fx *f = *state;
	struct alloc_outcome o;
	struct allocation a;
	struct team_ledger l;
	bool rep;
	char id[STORE_ID_LEN];
	int64_t aug1 = time_from_civil(2026, 8, 1);
	int64_t t0 = aug1 - 3600; /* July 31 23:00 */

	put_gpu(f, "h100", PRICE, 8);
	put_team(f, "nlp", INT64_C(100000000));
	assert_int_equal(do_alloc(f, "nlp", "h100", 1, 4 * HOUR_US, t0, &o), 0);
	strcpy(id, o.alloc.id);
	assert_int_equal(transition(f, id, ALLOC_EV_START, t0, t0, &a, &rep), 0);
	/* while running across the boundary the accrual belongs to July */
	l = ledger(f, "nlp", aug1 + 60);
	assert_int_equal(l.running, 0);
	assert_int_equal(l.reserved, 0);
	assert_int_equal(transition(f, id, ALLOC_EV_COMPLETE, aug1 + 3600, aug1 + 3600, &a, &rep), 0);
	assert_int_equal(a.actual_micros, 2 * 3600 * 1000);
	l = ledger(f, "nlp", aug1 + 7200);
	assert_int_equal(l.period_start, aug1);
	assert_int_equal(l.spent, 0);
	assert_int_equal(l.reserved, 0);
	l = ledger(f, "nlp", aug1 - 1);
	assert_int_equal(l.period_start, time_from_civil(2026, 7, 1));
	assert_int_equal(l.spent, 7200000);
	assert_int_equal(l.reserved, 0);

	/* costs by day split the usage exactly across the two days */
	{
		struct cost_sum s;
		struct cost_query q = {.from = aug1 - 86400, .to = aug1 + 86400, .group = COST_BY_DAY,
				       .now = aug1 + 7200};
		memset(&s, 0, sizeof(s));
		assert_int_equal(f->ops->costs(f->c, &q, cost_cb, &s), 0);
		assert_int_equal(s.n, 2);
		assert_string_equal(s.rows[0].key, "2026-07-31");
		assert_string_equal(s.rows[1].key, "2026-08-01");
		assert_int_equal(s.rows[0].spent, 3600000);
		assert_int_equal(s.rows[1].spent, 3600000);
		assert_int_equal(s.rows[0].gpu_microhours + s.rows[1].gpu_microhours, 2000000);

		memset(&s, 0, sizeof(s));
		q.group = COST_BY_TEAM;
		assert_int_equal(f->ops->costs(f->c, &q, cost_cb, &s), 0);
		assert_int_equal(s.n, 1);
		assert_string_equal(s.rows[0].key, "nlp");
		assert_int_equal(s.rows[0].spent, 7200000);
		assert_int_equal(s.rows[0].gpu_microhours, 2000000);

		memset(&s, 0, sizeof(s));
		q.group = COST_BY_PROJECT;
		assert_int_equal(f->ops->costs(f->c, &q, cost_cb, &s), 0);
		assert_int_equal(s.n, 1);
		assert_string_equal(s.rows[0].key, "nlp/proj");

		/* scoped to another team: nothing */
		{
			const char *const only[] = {"cv"};
			memset(&s, 0, sizeof(s));
			q.group = COST_BY_GPU_TYPE;
			q.teams = only;
			q.nteams = 1;
			assert_int_equal(f->ops->costs(f->c, &q, cost_cb, &s), 0);
			assert_int_equal(s.n, 0);
		}
	}
}

/*
 * Issue 11, finding 9: 11 teams each spending the largest budget (1e18
 * micros) in July.  Every cost total is above int64; from the rollups (the
 * default) and from the scan, each grouping gives the exact sum (was: SQLite's
 * SUM failing with "integer overflow", ERR_OVERFLOW in the accumulator).
 */
static void test_cost_sums_beyond_int64(void **state)
{
	struct fx *f = *state;
	const int64_t big = INT64_C(1000000000000000000); /* 1e12 units */
	const int64_t t0 = time_from_civil(2026, 7, 2);
	const store_sum_t want = (store_sum_t)big * 11;

	put_gpu(f, "g1", INT64_C(1000000000000), 1000000); /* 1e6 units per GPU-hour */
	for (int i = 0; i < 11; i++) {
		char team[16];
		struct alloc_outcome o;
		struct allocation a;
		bool rep;

		snprintf(team, sizeof(team), "t%02d", i);
		put_team(f, team, big);
		assert_int_equal(do_alloc(f, team, "g1", 10000, 100 * HOUR_US, t0, &o), 0);
		assert_int_equal(o.alloc.estimated_micros, big);
		assert_int_equal(transition(f, o.alloc.id, ALLOC_EV_START, t0, t0, &a, &rep), 0);
		assert_int_equal(transition(f, o.alloc.id, ALLOC_EV_COMPLETE, t0 + 100 * 3600,
					    t0 + 100 * 3600, &a, &rep), 0);
		assert_int_equal(a.actual_micros, big);
	}
	for (int scan = 0; scan < 2; scan++) {
		for (int g = COST_BY_TEAM; g <= COST_BY_DAY; g++) {
			struct cost_sum s;
			struct cost_query q = {.from = time_from_civil(2026, 7, 1),
					       .to = time_from_civil(2026, 8, 1),
					       .group = (enum cost_group)g,
					       .now = f->now,
					       .scan = scan};
			store_sum_t total = 0, gpu_mh = 0;

			memset(&s, 0, sizeof(s));
			assert_int_equal(f->ops->costs(f->c, &q, cost_cb, &s), 0);
			assert_true(s.n >= 1 && s.n <= 16);
			for (int i = 0; i < s.n; i++) {
				total += s.rows[i].spent;
				gpu_mh += s.rows[i].gpu_microhours;
			}
			assert_true(total == want);
			assert_true(gpu_mh == (store_sum_t)11 * 10000 * 100 * 1000000);
			if (g == COST_BY_GPU_TYPE)
				assert_true(s.rows[0].spent == want);
		}
	}
}

/* ---- idempotency, tokens, lists ---------------------------------------- */

/*
 * Idempotency: the decision is remembered as data.  A replay returns the
 * original code and outcome (never a second decision), a refusal is
 * remembered too, another body under the same key is ERR_IDEMPOTENCY, and a
 * record of an older plinth (its HTTP answer, status > 0) comes back verbatim.
 */
/*
 * The idempotency records as plinth writes them (copied from a run of the
 * store at 854f5a8; "%s" is the allocation id): an approval, a budget
 * refusal (what fits, the admins) and a capacity refusal (the free types).
 */
#define REC_APPROVED \
	"{\"available\":10800000,\"gpus_available\":2,\"estimated\":7200000,\"budget_ok\":true," \
	"\"capacity_ok\":true,\"allocation\":{\"id\":\"%s\",\"team\":\"nlp\",\"project\":\"proj\"," \
	"\"gpu_type\":\"h100\",\"gpu_count\":2,\"max_runtime_us\":3600000000,\"price_micros\":3600000," \
	"\"estimated_micros\":7200000,\"status\":\"approved\",\"purpose\":\"test\"," \
	"\"labels\":\"{\\\"k\\\":\\\"v\\\"}\",\"created_by\":\"tok_admin\",\"period_start\":1782864000," \
	"\"approved_at\":1784116800,\"expires_at\":1784116860,\"started_at\":0,\"ended_at\":0," \
	"\"actual_micros\":-1}}"
#define REC_BUDGET \
	"{\"available\":3600000,\"gpus_available\":4,\"estimated\":5400000,\"budget_ok\":false," \
	"\"capacity_ok\":true,\"suggest\":{\"budget\":true,\"max_gpus\":2,\"max_runtime_us\":2399997600," \
	"\"renews_at\":1785542400,\"admins\":\"[\\\"ana@example.com\\\"]\",\"ntypes\":0,\"free\":[]}}"
#define REC_CAPACITY \
	"{\"available\":3600000,\"gpus_available\":0,\"estimated\":3600000,\"budget_ok\":true," \
	"\"capacity_ok\":false,\"suggest\":{\"budget\":false,\"max_gpus\":0,\"max_runtime_us\":0," \
	"\"renews_at\":0,\"admins\":\"\",\"ntypes\":1,\"free\":[{\"id\":\"a100\",\"name\":\"GPU a100\"," \
	"\"free_gpus\":4,\"price_micros\":1800000}]}}"

/* Record i (0 approved with allocation id, 1 budget, 2 capacity) into buf. */
static void rec_text(int i, const char *id, char *buf, size_t len)
{
	if (i == 0)
		snprintf(buf, len, REC_APPROVED, id);
	else
		snprintf(buf, len, "%s", i == 1 ? REC_BUDGET : REC_CAPACITY);
}

/* Every part of an outcome that the idempotency record keeps is the same in a and b. */
static void same_outcome(const struct alloc_outcome *a, const struct alloc_outcome *b)
{
	const struct allocation *x = &a->alloc, *y = &b->alloc;
	const struct alloc_suggest *s = &a->suggest, *t = &b->suggest;

	assert_true(a->available == b->available && a->gpus_available == b->gpus_available &&
		    a->estimated == b->estimated && a->budget_ok == b->budget_ok &&
		    a->capacity_ok == b->capacity_ok);
	assert_string_equal(x->id, y->id);
	assert_string_equal(x->team, y->team);
	assert_string_equal(x->project, y->project);
	assert_string_equal(x->gpu_type, y->gpu_type);
	assert_string_equal(x->purpose, y->purpose);
	assert_string_equal(x->labels_json, y->labels_json);
	assert_string_equal(x->created_by, y->created_by);
	assert_true(x->gpu_count == y->gpu_count && x->max_runtime_us == y->max_runtime_us &&
		    x->price_micros == y->price_micros && x->estimated_micros == y->estimated_micros &&
		    x->status == y->status && x->period_start == y->period_start &&
		    x->approved_at == y->approved_at && x->expires_at == y->expires_at &&
		    x->started_at == y->started_at && x->ended_at == y->ended_at &&
		    x->actual_micros == y->actual_micros);
	assert_true(s->budget == t->budget && s->max_gpus == t->max_gpus &&
		    s->max_runtime_us == t->max_runtime_us && s->renews_at == t->renews_at &&
		    s->ntypes == t->ntypes && s->nfree == t->nfree);
	assert_string_equal(s->admins_json, t->admins_json);
	for (int i = 0; i < s->nfree; i++) {
		assert_string_equal(s->free[i].id, t->free[i].id);
		assert_string_equal(s->free[i].name, t->free[i].name);
		assert_true(s->free[i].free_gpus == t->free[i].free_gpus &&
			    s->free[i].price_micros == t->free[i].price_micros);
	}
}

/*
 * The record format: a fresh decision is written byte for byte as before,
 * and records written before (inserted here with plain SQL) replay as the
 * decision they remember.
 */
static void test_idempotency_records(void **state)
{
	struct fx *f = *state;
	static const char *const keys[] = {"a", "b", "c"};
	const int codes[] = {0, ERR_BUDGET, ERR_CAPACITY};
	struct alloc_request rq[3];
	struct alloc_outcome fresh[3], o;
	struct idem idem = {.hash = "h"};
	char detail[STORE_DETAIL_LEN] = "", sql[2048], want[1024], *got;
	struct team t;
	bool created = false;

	put_gpu(f, "h100", PRICE, 2);
	put_gpu(f, "a100", PRICE / 2, 4);
	memset(&t, 0, sizeof(t));
	strcpy(t.id, "nlp");
	strcpy(t.display_name, "NLP");
	t.budget_micros = 3 * PRICE;
	t.period = PERIOD_MONTHLY;
	strcpy(t.thresholds_json, "[0.5,0.8,1.0]");
	strcpy(t.admins_json, "[\"ana@example.com\"]");
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
	rq[0] = req("nlp", "h100", 2, HOUR_US);
	rq[1] = req("nlp", "a100", 3, HOUR_US);
	rq[2] = req("nlp", "h100", 1, HOUR_US);
	for (int i = 0; i < 3; i++) {
		idem.key = keys[i];
		assert_int_equal(f->ops->allocate(f->c, &ADMIN, &rq[i], 60, f->now, &idem, &fresh[i],
						  detail),
				 codes[i]);
		snprintf(sql, sizeof(sql), "SELECT body FROM idempotency WHERE key = '%s'", keys[i]);
		got = raw_rows(f, sql, false, NULL);
		rec_text(i, fresh[i].alloc.id, want, sizeof(want));
		strcat(want, "|\n");
		assert_string_equal(got, want);
		free(got);
	}
	/* the old rows, under other keys: each replays as its fresh twin */
	strcpy(fresh[0].alloc.id, "alloc_mvgl4j6gdxrdjixuns2j");
	for (int i = 0; i < 3; i++) {
		rec_text(i, fresh[0].alloc.id, want, sizeof(want));
		snprintf(sql, sizeof(sql),
			 "INSERT INTO idempotency(token_id, key, request_hash, status, body, created_at)"
			 " VALUES ('tok_admin', 'old-%s', 'h', %d, '%s', 0)",
			 keys[i], codes[i], want);
		free(raw_rows(f, sql, false, NULL));
		snprintf(sql, sizeof(sql), "old-%s", keys[i]);
		idem.key = sql;
		memset(&o, 0xa5, sizeof(o));
		assert_int_equal(f->ops->allocate(f->c, &ADMIN, &rq[i], 60, f->now + 9, &idem, &o,
						  detail),
				 codes[i]);
		assert_true(idem.replayed);
		assert_null(idem.legacy_body);
		same_outcome(&o, &fresh[i]);
	}
	assert_int_equal(count_rows(f, "allocations"), 1);
}

static void test_idempotency(void **state)
{
	struct fx *f = *state;
	struct alloc_outcome o, first;
	struct alloc_request r;
	struct idem idem = {.key = "k1", .hash = "h1"};
	char detail[STORE_DETAIL_LEN] = "", *done, *err = NULL;

	put_gpu(f, "h100", PRICE, 8);
	put_team(f, "nlp", 2 * PRICE);
	r = req("nlp", "h100", 1, HOUR_US);
	assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, &idem, &first, detail), 0);
	assert_false(idem.replayed);

	memset(&o, 0, sizeof(o));
	assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now + 5, &idem, &o, detail), 0);
	assert_true(idem.replayed);
	assert_null(idem.legacy_body);
	assert_string_equal(o.alloc.id, first.alloc.id);
	assert_int_equal(o.alloc.approved_at, f->now); /* the original decision, not a new one */
	assert_int_equal(o.alloc.estimated_micros, PRICE);
	assert_int_equal(o.alloc.status, ALLOC_APPROVED);
	assert_string_equal(o.alloc.labels_json, first.alloc.labels_json);
	assert_int_equal(o.available, first.available);
	assert_int_equal(o.gpus_available, first.gpus_available);
	assert_int_equal(ledger(f, "nlp", f->now).reserved, PRICE); /* charged once */
	assert_int_equal(count_rows(f, "allocations"), 1);

	idem.hash = "h2";
	assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, &idem, &o, detail),
			 ERR_IDEMPOTENCY);
	assert_false(idem.replayed);

	/* a refusal is remembered too: the same answer after the budget grew */
	idem.key = "k2";
	r.gpu_count = 2;
	assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, &idem, &first, detail),
			 ERR_BUDGET);
	put_team(f, "nlp", 100 * PRICE);
	assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, &idem, &o, detail),
			 ERR_BUDGET);
	assert_true(idem.replayed);
	assert_int_equal(o.available, PRICE);
	assert_int_equal(o.estimated, 2 * PRICE);
	assert_false(o.budget_ok);

	/* a record written by an older plinth: its HTTP answer, verbatim */
	done = raw_rows(f, "INSERT INTO idempotency(token_id, key, request_hash, status, body,"
			   " created_at) VALUES ('tok_admin', 'old', 'h2', 201, '{\"id\":\"alloc_old\"}', 0)",
			false, &err);
	assert_null(err);
	free(done);
	idem.key = "old";
	assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, &idem, &o, detail), 0);
	assert_true(idem.replayed);
	assert_int_equal(idem.legacy_status, 201);
	assert_string_equal(idem.legacy_body, "{\"id\":\"alloc_old\"}");
	free(idem.legacy_body);
	idem.legacy_body = NULL;

	/* a record the store cannot read is an error, never a second decision */
	done = raw_rows(f, "INSERT INTO idempotency(token_id, key, request_hash, status, body,"
			   " created_at) VALUES ('tok_admin', 'bad', 'h2', 0, '{\"available\":1}', 0)",
			false, &err);
	assert_null(err);
	free(done);
	idem.key = "bad";
	assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, &idem, &o, detail),
			 ERR_STORE);
	assert_int_equal(count_rows(f, "allocations"), 1);
}

/*
 * Hostile idempotency records (a row written by hand or damaged): each one
 * the store cannot read whole is ERR_STORE on replay, never a crash, a cut
 * text, nor a second decision; the ledger does not move.
 */
static void test_idempotency_hostile_records(void **state)
{
	struct fx *f = *state;
	char sql[8192], body[512], key[16], detail[STORE_DETAIL_LEN] = "", *err = NULL;
	struct idem idem = {.hash = "h"};
	struct alloc_request r;
	struct alloc_outcome o;
	char longid[300];
	size_t n = 0;
	/* An approval record's "allocation" without its id (%s: the id member). */
	static const char ALLOC_FMT[] =
		"{\"available\":1,\"gpus_available\":1,\"estimated\":1,\"budget_ok\":true,"
		"\"capacity_ok\":true,\"allocation\":{%s\"team\":\"nlp\",\"project\":\"p\","
		"\"gpu_type\":\"h100\",\"gpu_count\":1,\"max_runtime_us\":1,\"price_micros\":1,"
		"\"estimated_micros\":1,\"status\":\"%s\",\"purpose\":\"\",\"labels\":\"{}\","
		"\"created_by\":\"x\",\"period_start\":0,\"approved_at\":0,\"expires_at\":0,"
		"\"started_at\":0,\"ended_at\":0,\"actual_micros\":0}}";
	static const char REFUSAL_HEAD[] =
		"{\"available\":1,\"gpus_available\":0,\"estimated\":1,\"budget_ok\":true,"
		"\"capacity_ok\":false,\"suggest\":{\"budget\":false,\"max_gpus\":0,"
		"\"max_runtime_us\":0,\"renews_at\":0,\"admins\":\"[]\",\"ntypes\":1,\"free\":[";
	struct {
		int status;
		char body[3072];
	} rec[9];

	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	put_gpu(f, "h100", PRICE, 8);
	put_team(f, "nlp", 10 * PRICE);
	r = req("nlp", "h100", 1, HOUR_US);
	/* an over-long allocation id */
	snprintf(body, sizeof(body), "\"id\":\"%s\",", longid);
	rec[n].status = 0;
	snprintf(rec[n++].body, sizeof(rec[0].body), ALLOC_FMT, body, "approved");
	/* a status that is no status name */
	rec[n].status = 0;
	snprintf(rec[n++].body, sizeof(rec[0].body), ALLOC_FMT, "\"id\":\"alloc_x\",", "bogus");
	/* the allocation's id missing */
	rec[n].status = 0;
	snprintf(rec[n++].body, sizeof(rec[0].body), ALLOC_FMT, "", "approved");
	/* a boolean given as a number */
	rec[n].status = ERR_BUDGET;
	snprintf(rec[n++].body, sizeof(rec[0].body),
		 "{\"available\":1,\"gpus_available\":1,\"estimated\":1,\"budget_ok\":0,"
		 "\"capacity_ok\":true}");
	/* more free types than a refusal names */
	rec[n].status = ERR_CAPACITY;
	snprintf(rec[n].body, sizeof(rec[0].body), "%s", REFUSAL_HEAD);
	for (int i = 0; i <= STORE_SUGGEST_TYPES; i++)
		snprintf(rec[n].body + strlen(rec[n].body), sizeof(rec[0].body) - strlen(rec[n].body),
			 "%s{\"id\":\"t%d\",\"name\":\"T\",\"free_gpus\":1,\"price_micros\":1}",
			 i ? "," : "", i);
	strcat(rec[n++].body, "]}}");
	/* a free type without its price */
	rec[n].status = ERR_CAPACITY;
	snprintf(rec[n++].body, sizeof(rec[0].body), "%s{\"id\":\"t\",\"name\":\"T\",\"free_gpus\":1}]}}",
		 REFUSAL_HEAD);
	/* a free type's name longer than its field */
	rec[n].status = ERR_CAPACITY;
	snprintf(rec[n++].body, sizeof(rec[0].body),
		 "%s{\"id\":\"t\",\"name\":\"%s\",\"free_gpus\":1,\"price_micros\":1}]}}", REFUSAL_HEAD,
		 longid);
	/* not an object; not JSON */
	rec[n].status = ERR_BUDGET;
	strcpy(rec[n++].body, "[]");
	rec[n].status = 0;
	strcpy(rec[n++].body, "{\"available\":");
	assert_int_equal(n, sizeof(rec) / sizeof(rec[0]));
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "h%zu", i);
		snprintf(sql, sizeof(sql),
			 "INSERT INTO idempotency(token_id, key, request_hash, status, body, created_at)"
			 " VALUES ('tok_admin', '%s', 'h', %d, '%s', 0)",
			 key, rec[i].status, rec[i].body);
		free(raw_rows(f, sql, false, &err));
		assert_null(err);
		idem.key = key;
		memset(&o, 0, sizeof(o));
		detail[0] = '\0';
		assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, &idem, &o, detail),
				 ERR_STORE);
		assert_non_null(strstr(detail, "unreadable idempotency record"));
		assert_null(idem.legacy_body);
	}
	assert_int_equal(count_rows(f, "allocations"), 0);
	assert_int_equal(ledger(f, "nlp", f->now).reserved, 0);
}

static void test_tokens(void **state)
{
	struct fx *f = *state;
	struct token t, got;
	bool admin = true;

	memset(&t, 0, sizeof(t));
	strcpy(t.id, "tok_1");
	strcpy(t.name, "ci");
	t.role = ROLE_ADMIN;
	strcpy(t.teams_json, "[]");
	assert_int_equal(f->ops->admin_exists(f->c, &admin), 0);
	assert_false(admin);
	assert_int_equal(f->ops->token_create(f->c, &ADMIN, &t, "hash1", f->now), 0);
	assert_int_equal(f->ops->token_create(f->c, &ADMIN, &t, "hash2", f->now), ERR_CONFLICT);
	assert_int_equal(f->ops->admin_exists(f->c, &admin), 0);
	assert_true(admin);
	assert_int_equal(f->ops->token_by_hash(f->c, "hash1", &got), 0);
	assert_string_equal(got.id, "tok_1");
	assert_int_equal(got.role, ROLE_ADMIN);
	assert_int_equal(got.created_at, f->now);
	assert_int_equal(f->ops->token_revoke(f->c, &ADMIN, "tok_1", f->now + 1), 0);
	assert_int_equal(f->ops->token_by_hash(f->c, "hash1", &got), ERR_NOT_FOUND);
	assert_int_equal(f->ops->admin_exists(f->c, &admin), 0);
	assert_false(admin);
	assert_int_equal(f->ops->token_revoke(f->c, &ADMIN, "tok_x", f->now + 1), ERR_NOT_FOUND);

	/* the audit rows never hold the hash */
	assert_int_equal(raw_i64(f, "SELECT count(*) FROM audit WHERE object_type = 'token'"
				 " AND (before_json LIKE '%hash1%' OR after_json LIKE '%hash1%')"),
			 0);
	{
		enum role r;
		assert_int_equal(role_parse("finance", &r), 0);
		assert_int_equal(r, ROLE_FINANCE);
		assert_string_equal(role_name(ROLE_SERVICE), "service");
		assert_int_equal(role_parse("root", &r), ERR_INVALID);
	}
}

struct gpu_seen {
	int n;
	char last[STORE_ID_LEN];
};

static int gpu_count_cb(void *ctx, const struct gpu_type *g)
{
	struct gpu_seen *s = ctx;

	assert_true(strcmp(s->last, g->id) < 0); /* sorted by id */
	strcpy(s->last, g->id);
	s->n++;
	return 0;
}

static int team_count_cb(void *ctx, const struct team *t)
{
	(void)t;
	(*(int *)ctx)++;
	return 0;
}

static void test_catalog_and_teams(void **state)
{
	struct fx *f = *state;
	struct gpu_type g[2], got;
	struct team t;
	struct gpu_seen seen = {0, ""};
	int audits, n = 0;
	bool created = false;

	put_gpu(f, "h100", PRICE, 8);
	memset(g, 0, sizeof(g));
	strcpy(g[0].id, "h100");
	strcpy(g[1].id, "a10g-24gb");
	for (int i = 0; i < 2; i++) {
		strcpy(g[i].name, "seeded");
		g[i].price_micros = 1000000;
		strcpy(g[i].price_date, "2026-01-01");
		strcpy(g[i].price_source, "aws");
	}
	audits = audit_count(f);
	assert_int_equal(f->ops->gpu_type_seed(f->c, g, 2, f->now), 0);
	assert_int_equal(audit_count(f), audits + 1);
	assert_int_equal(f->ops->gpu_type_get(f->c, "h100", &got), 0);
	assert_int_equal(got.price_micros, PRICE); /* existing ids are not touched */
	assert_int_equal(got.capacity, 8);
	assert_int_equal(f->ops->gpu_type_get(f->c, "a10g-24gb", &got), 0);
	assert_string_equal(got.price_source, "aws");
	assert_int_equal(f->ops->gpu_type_seed(f->c, g, 2, f->now), 0);
	assert_int_equal(audit_count(f), audits + 1); /* nothing new, no row */
	assert_int_equal(f->ops->gpu_type_list(f->c, gpu_count_cb, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(f->ops->gpu_type_get(f->c, "nope", &got), ERR_NOT_FOUND);

	put_team(f, "nlp", PRICE);
	assert_int_equal(f->ops->team_get(f->c, "nlp", &t), 0);
	assert_int_equal(t.created_at, f->now);
	t.budget_micros = 2 * PRICE;
	t.period = PERIOD_WEEKLY;
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now + 5, &created), 0);
	assert_false(created);
	assert_int_equal(f->ops->team_get(f->c, "nlp", &t), 0);
	assert_int_equal(t.created_at, f->now);
	assert_int_equal(t.updated_at, f->now + 5);
	assert_int_equal(t.period, PERIOD_WEEKLY);
	assert_string_equal(t.thresholds_json, "[0.5,0.8,1.0]");
	put_team(f, "cv", PRICE);
	assert_int_equal(f->ops->team_list(f->c, NULL, 0, team_count_cb, &n), 0);
	assert_int_equal(n, 2);
	{
		const char *const only[] = {"cv", "zzz"};
		n = 0;
		assert_int_equal(f->ops->team_list(f->c, only, 2, team_count_cb, &n), 0);
		assert_int_equal(n, 1);
		n = 0;
		assert_int_equal(f->ops->team_list(f->c, only, 0, team_count_cb, &n), 0);
		assert_int_equal(n, 0);
	}
	assert_int_equal(f->ops->team_get(f->c, "nope", &t), ERR_NOT_FOUND);
}

struct ids {
	int n;
	char id[16][STORE_ID_LEN];
};

static int ids_cb(void *ctx, const struct allocation *a)
{
	struct ids *s = ctx;

	if (s->n < 16)
		strcpy(s->id[s->n], a->id);
	s->n++;
	return 0;
}

static int audit_seq_cb(void *ctx, const struct audit_entry *e)
{
	int64_t *last = ctx;

	assert_true(e->seq > *last);
	*last = e->seq;
	return 0;
}

static void test_lists(void **state)
{
	struct fx *f = *state;
	struct alloc_outcome o;
	struct ids all, page;
	struct alloc_filter flt = {.status = -1, .limit = 2};
	char next[STORE_ID_LEN * 2];
	int got = 0;

	put_gpu(f, "h100", PRICE, 100);
	put_team(f, "nlp", INT64_C(1000000000));
	put_team(f, "cv", INT64_C(1000000000));
	for (int i = 0; i < 5; i++)
		assert_int_equal(do_alloc(f, i % 2 ? "cv" : "nlp", "h100", 1, HOUR_US, f->now + i / 2, &o), 0);

	memset(&all, 0, sizeof(all));
	flt.limit = STORE_MAX_PAGE;
	assert_int_equal(f->ops->alloc_list(f->c, &flt, ids_cb, &all, next), 0);
	assert_int_equal(all.n, 5);
	assert_string_equal(next, "");

	/* pages of 2 walk the same order */
	flt.limit = 2;
	for (int p = 0; p < 3; p++) {
		memset(&page, 0, sizeof(page));
		flt.cursor = p ? next : NULL;
		char cur[STORE_ID_LEN * 2];
		if (p)
			strcpy(cur, next), flt.cursor = cur;
		assert_int_equal(f->ops->alloc_list(f->c, &flt, ids_cb, &page, next), 0);
		for (int i = 0; i < page.n; i++)
			assert_string_equal(page.id[i], all.id[got + i]);
		got += page.n;
		if (p < 2)
			assert_string_not_equal(next, "");
	}
	assert_int_equal(got, 5);
	assert_string_equal(next, "");

	{
		const char *const only[] = {"cv"};
		memset(&page, 0, sizeof(page));
		flt.cursor = NULL;
		flt.limit = 10;
		flt.teams = only;
		flt.nteams = 1;
		assert_int_equal(f->ops->alloc_list(f->c, &flt, ids_cb, &page, next), 0);
		assert_int_equal(page.n, 2);
		flt.nteams = 0; /* an empty scope sees nothing */
		memset(&page, 0, sizeof(page));
		assert_int_equal(f->ops->alloc_list(f->c, &flt, ids_cb, &page, next), 0);
		assert_int_equal(page.n, 0);
		flt.teams = NULL;
		flt.team = "nlp";
		flt.status = ALLOC_APPROVED;
		memset(&page, 0, sizeof(page));
		assert_int_equal(f->ops->alloc_list(f->c, &flt, ids_cb, &page, next), 0);
		assert_int_equal(page.n, 3);
		flt.cursor = "garbage";
		assert_int_equal(f->ops->alloc_list(f->c, &flt, ids_cb, &page, next), ERR_INVALID);
	}

	/* audit pages ascend */
	{
		int64_t last = 0;
		int total = audit_count(f);
		char cur[STORE_ID_LEN * 2] = "";
		int n = 0;
		do {
			int before = 0;
			assert_int_equal(f->ops->audit_list(f->c, NULL, cur[0] ? cur : NULL, 3, audit_seq_cb,
							    &last, next), 0);
			(void)before;
			strcpy(cur, next);
			n++;
		} while (cur[0] && n < 100);
		assert_int_equal(total, 3 + 5);
		n = 0;
		assert_int_equal(f->ops->audit_list(f->c, "cv", NULL, 100, count_cb, &n, next), 0);
		assert_int_equal(n, 1 + 2);
	}
}

/* ---- 2. fault injection ------------------------------------------------ */

/*
 * Every row of every table as text (rows sorted, tables by name), via a
 * separate raw connection. Caller frees.  SQLite's own bookkeeping table
 * sqlite_sequence is included; PostgreSQL's sequences are not transactional
 * (a rolled-back insert still uses a value) and are not rows of a table.
 */
static char *dump_db(struct fx *f)
{
	char *names = raw_rows(f, f->pg ? "SELECT table_name FROM information_schema.tables"
					  " WHERE table_schema = current_schema() ORDER BY 1"
					: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1",
			       false, NULL);
	char *out = NULL, *save = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len);

	assert_non_null(mem);
	if (f->pg) {
		/* One query (one connection) for every table: a fault loop dumps often. */
		char *sql = NULL, *rows;
		size_t sl = 0;
		FILE *q = open_memstream(&sql, &sl);
		int k = 0;

		assert_non_null(q);
		for (char *t = strtok_r(names, "|\n", &save); t; t = strtok_r(NULL, "|\n", &save))
			fprintf(q, "%sSELECT '%s|' || t::text FROM %s t", k++ ? " UNION ALL " : "", t, t);
		fclose(q);
		rows = raw_rows(f, sql, true, NULL);
		fputs(rows, mem);
		free(rows);
		free(sql);
	}
	for (char *t = f->pg ? NULL : strtok_r(names, "|\n", &save); t;
	     t = strtok_r(NULL, "|\n", &save)) {
		char sql[128], *rows;

		snprintf(sql, sizeof(sql), "SELECT * FROM %s", t);
		rows = raw_rows(f, sql, true, NULL);
		fprintf(mem, "[%s]\n%s", t, rows);
		free(rows);
	}
	fclose(mem);
	free(names);
	return out;
}

typedef int (*fault_op)(struct fx *f, void *arg);

/*
 * Runs op with a fault after N = 0, 1, 2, ... statements.  Every failure must
 * leave the database byte-identical; the first run that does not reach the
 * fault must succeed and change something.  Returns the number of fault
 * points exercised.
 */
static int fault_loop(struct fx *f, fault_op op, void *arg)
{
	for (long n = 0; n < 1000; n++) {
		char *before = dump_db(f), *after;
		int rc;

		store_fault_after(f->s, n);
		rc = op(f, arg);
		bool reached = __atomic_load_n(&f->s->fault_after, __ATOMIC_SEQ_CST) < 0;
		store_fault_after(f->s, -1);
		after = dump_db(f);
		if (rc != 0) {
			assert_true(reached);
			assert_int_equal(rc, ERR_STORE);
			assert_string_equal(before, after);
		} else {
			assert_false(reached); /* a hit fault can never end in success */
			assert_string_not_equal(before, after);
			free(before);
			free(after);
			return (int)n;
		}
		free(before);
		free(after);
	}
	fail_msg("operation never succeeded");
	return -1;
}

struct op_arg {
	char id[STORE_ID_LEN];
	const char *key;
	int64_t count;
};

static int op_alloc_idem(struct fx *f, void *arg)
{
	struct op_arg *a = arg;
	struct alloc_request r = req("nlp", "h100", a->count, HOUR_US);
	struct idem idem = {.key = a->key, .hash = "hash"};
	struct alloc_outcome o;
	int rc;

	rc = f->ops->allocate(f->c, &ADMIN, &r, 60, f->now, &idem, &o, NULL);
	assert_false(idem.replayed);
	if (rc == 0)
		strcpy(a->id, o.alloc.id);
	if (rc == ERR_BUDGET || rc == ERR_CAPACITY)
		rc = 0; /* a remembered refusal is a successful write too */
	return rc;
}

static int op_start(struct fx *f, void *arg)
{
	struct allocation a;
	bool rep;

	return f->ops->alloc_transition(f->c, &ADMIN, ((struct op_arg *)arg)->id, ALLOC_EV_START,
					f->now + 1, f->now + 1, &a, &rep, NULL);
}

static int op_complete(struct fx *f, void *arg)
{
	struct allocation a;
	bool rep;

	return f->ops->alloc_transition(f->c, &ADMIN, ((struct op_arg *)arg)->id, ALLOC_EV_COMPLETE,
					f->now + 100, f->now + 100, &a, &rep, NULL);
}

static int op_cancel(struct fx *f, void *arg)
{
	struct allocation a;
	bool rep;

	return f->ops->alloc_transition(f->c, &ADMIN, ((struct op_arg *)arg)->id, ALLOC_EV_CANCEL,
					f->now + 2, f->now + 2, &a, &rep, NULL);
}

static int op_start_expired(struct fx *f, void *arg)
{
	struct allocation a;
	bool rep;
	int rc = f->ops->alloc_transition(f->c, &ADMIN, ((struct op_arg *)arg)->id, ALLOC_EV_START,
					  f->now + 61, f->now + 61, &a, &rep, NULL);

	return rc == ERR_CONFLICT ? 0 : rc; /* the expiry is committed */
}

static int op_expire_due(struct fx *f, void *arg)
{
	int n = 0;
	int rc = f->ops->alloc_expire_due(f->c, f->now + 1000, &n);

	(void)arg;
	if (rc == 0)
		assert_int_equal(n, 2);
	return rc;
}

static int op_team_put(struct fx *f, void *arg)
{
	struct team t;
	bool created;

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", ((struct op_arg *)arg)->key);
	strcpy(t.display_name, "Faulty");
	t.budget_micros = 42000000;
	t.period = PERIOD_QUARTERLY;
	strcpy(t.thresholds_json, "[]");
	return f->ops->team_put(f->c, &ADMIN, &t, f->now, &created);
}

static int op_gpu_put(struct fx *f, void *arg)
{
	struct gpu_type g;
	bool created;

	memset(&g, 0, sizeof(g));
	snprintf(g.id, sizeof(g.id), "%s", ((struct op_arg *)arg)->key);
	strcpy(g.name, "Faulty GPU");
	g.price_micros = 1234567;
	strcpy(g.price_date, "2026-07-02");
	strcpy(g.price_source, "admin");
	g.capacity = 99;
	return f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created);
}

static int op_seed(struct fx *f, void *arg)
{
	struct gpu_type g[2];

	(void)arg;
	memset(g, 0, sizeof(g));
	strcpy(g[0].id, "h100");
	strcpy(g[1].id, "l4-24gb");
	for (int i = 0; i < 2; i++) {
		strcpy(g[i].name, "seeded");
		g[i].price_micros = 1000000;
		strcpy(g[i].price_date, "2026-01-01");
		strcpy(g[i].price_source, "aws");
	}
	return f->ops->gpu_type_seed(f->c, g, 2, f->now);
}

static int op_token_create(struct fx *f, void *arg)
{
	struct token t;

	(void)arg;
	memset(&t, 0, sizeof(t));
	strcpy(t.id, "tok_f");
	strcpy(t.name, "faulty");
	t.role = ROLE_MEMBER;
	strcpy(t.teams_json, "[\"nlp\"]");
	return f->ops->token_create(f->c, &ADMIN, &t, "fhash", f->now);
}

static int op_token_revoke(struct fx *f, void *arg)
{
	(void)arg;
	return f->ops->token_revoke(f->c, &ADMIN, "tok_f", f->now);
}

/* A patch of a team's budget and period (the period change moves its
 * reservations), and retiring it; a GPU type's new price, and retiring it. */
static int op_team_patch(struct fx *f, void *arg)
{
	struct team t, out;

	memset(&t, 0, sizeof(t));
	strcpy(t.id, arg);
	t.budget_micros = 77 * PRICE;
	t.period = PERIOD_QUARTERLY;
	return f->ops->team_patch(f->c, &ADMIN, &t, TEAM_F_BUDGET | TEAM_F_PERIOD, f->now, &out);
}

static int op_team_retire(struct fx *f, void *arg)
{
	struct team t, out;

	memset(&t, 0, sizeof(t));
	strcpy(t.id, arg);
	t.retired_at = f->now;
	return f->ops->team_patch(f->c, &ADMIN, &t, TEAM_F_RETIRED, f->now, &out);
}

static int op_gpu_patch(struct fx *f, void *arg)
{
	struct gpu_type g, out;

	memset(&g, 0, sizeof(g));
	strcpy(g.id, arg);
	g.price_micros = 3 * PRICE;
	strcpy(g.price_source, "set by faulty");
	g.capacity = 5;
	return f->ops->gpu_type_patch(f->c, &ADMIN, &g, GPU_F_PRICE | GPU_F_CAPACITY, f->now, &out);
}

static int op_gpu_retire(struct fx *f, void *arg)
{
	struct gpu_type g, out;

	memset(&g, 0, sizeof(g));
	strcpy(g.id, arg);
	g.retired_at = f->now;
	return f->ops->gpu_type_patch(f->c, &ADMIN, &g, GPU_F_RETIRED, f->now, &out);
}

static void test_fault_rollback(void **state)
{
	struct fx *f = *state;
	struct op_arg a1 = {.key = "k1", .count = 2}, a2 = {.key = "k2", .count = 2};
	struct op_arg a3 = {.key = "k3", .count = 2}, a4 = {.key = "k4", .count = 2};
	/* a6: 7 more GPUs than the 6 left of 16 - refused for capacity (and remembered);
	 * a7: more than the type has at all - invalid input, nothing written. */
	struct op_arg a5 = {.key = "k5", .count = 2}, a6 = {.key = "k6", .count = 7};
	struct op_arg a7 = {.key = "k7", .count = 1000};
	char *before, *after;
	struct op_arg team_new = {.key = "faulty"}, team_old = {.key = "nlp"};
	struct op_arg gpu_new = {.key = "a100"}, gpu_old = {.key = "h100"};
	struct team_ledger l;

	put_gpu(f, "h100", PRICE, 16);
	put_team(f, "nlp", 100 * PRICE);

	assert_true(fault_loop(f, op_alloc_idem, &a1) > 5);
	assert_true(fault_loop(f, op_alloc_idem, &a2) > 5);
	assert_true(fault_loop(f, op_alloc_idem, &a3) > 5);
	assert_true(fault_loop(f, op_alloc_idem, &a4) > 5);
	assert_true(fault_loop(f, op_alloc_idem, &a5) > 5);
	assert_true(fault_loop(f, op_alloc_idem, &a6) > 3); /* refused, remembered */
	before = dump_db(f);
	assert_int_equal(op_alloc_idem(f, &a7), ERR_INVALID);
	after = dump_db(f);
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_true(fault_loop(f, op_start, &a1) > 2);
	assert_true(fault_loop(f, op_complete, &a1) > 3);
	assert_true(fault_loop(f, op_cancel, &a2) > 3);
	assert_true(fault_loop(f, op_start_expired, &a3) > 3);
	assert_true(fault_loop(f, op_expire_due, NULL) > 3); /* a4, a5 */
	assert_true(fault_loop(f, op_team_put, &team_new) > 1);
	assert_true(fault_loop(f, op_team_put, &team_old) > 1);
	assert_true(fault_loop(f, op_gpu_put, &gpu_new) > 1);
	assert_true(fault_loop(f, op_gpu_put, &gpu_old) > 1);
	assert_true(fault_loop(f, op_seed, NULL) > 1);
	assert_true(fault_loop(f, op_token_create, NULL) > 1);
	assert_true(fault_loop(f, op_token_revoke, NULL) > 1);

	/* after all that, the books still balance: only a1 was charged */
	l = ledger(f, "nlp", f->now + 1000);
	assert_int_equal(l.reserved, 0);
	assert_int_equal(l.spent, 2 * 99 * 1000);
	assert_int_equal(gpu_allocated(f, "h100"), 0);

	/* Partial updates and retirement (issue 16) roll back whole too. */
	assert_true(fault_loop(f, op_team_patch, "nlp") > 1);
	assert_true(fault_loop(f, op_team_retire, "nlp") > 1);
	assert_true(fault_loop(f, op_gpu_patch, "h100") > 1);
	assert_true(fault_loop(f, op_gpu_retire, "h100") > 1);
}

/* ---- 3. concurrency ---------------------------------------------------- */

#define RACERS 16

struct race {
	struct store *s;
	pthread_barrier_t *bar;
	const char *team, *gpu;
	int64_t now;
	int rc;
	char detail[STORE_DETAIL_LEN]; /* the answer's detail, printed when unexpected */
};

static void *racer(void *p)
{
	struct race *r = p;
	struct store_conn *c = NULL;
	struct alloc_request rq = req(r->team, r->gpu, 1, HOUR_US);
	struct alloc_outcome o;

	r->rc = store_conn_acquire(r->s, &c);
	pthread_barrier_wait(r->bar);
	if (r->rc == 0) {
		r->rc = store_conn_ops(c)->allocate(c, &ADMIN, &rq, 60, r->now, NULL, &o, r->detail);
		store_conn_release(r->s, c);
	}
	return NULL;
}

static void race(struct fx *f, const char *team, const char *gpu, int expect_rc_refused)
{
	pthread_t th[RACERS];
	struct race r[RACERS];
	pthread_barrier_t bar;
	int approved = 0, refused = 0;

	assert_int_equal(pthread_barrier_init(&bar, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		r[i] = (struct race){.s = f->s, .bar = &bar, .team = team, .gpu = gpu, .now = f->now};
		assert_int_equal(pthread_create(&th[i], NULL, racer, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (r[i].rc == 0)
			approved++;
		else if (r[i].rc == expect_rc_refused)
			refused++;
		else
			fprintf(stderr, "racer %d: %s: %s\n", i, err_name(r[i].rc), r[i].detail);
	}
	pthread_barrier_destroy(&bar);
	assert_int_equal(approved, 10);
	assert_int_equal(refused, RACERS - 10);
}

static int setup_race(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fx_paths(f);
	fx_open(f, RACERS + 1);
	fx_warm(f, RACERS + 1);
	f->now = time_from_civil(2026, 7, 15);
	*state = f;
	return 0;
}

static void test_race_budget(void **state)
{
	struct fx *f = *state;
	struct team_ledger l;

	put_gpu(f, "h100", PRICE, 1000);
	put_team(f, "nlp", 10 * PRICE); /* exactly K = 10 one-GPU-hour requests */
	race(f, "nlp", "h100", ERR_BUDGET);
	l = ledger(f, "nlp", f->now);
	assert_true(l.spent + l.reserved <= 10 * PRICE);
	assert_int_equal(l.reserved, 10 * PRICE);
	assert_int_equal(gpu_allocated(f, "h100"), 10);
}

static void test_race_capacity(void **state)
{
	struct fx *f = *state;

	put_gpu(f, "h100", PRICE, 10);
	put_team(f, "nlp", 1000 * PRICE);
	race(f, "nlp", "h100", ERR_CAPACITY);
	assert_int_equal(gpu_allocated(f, "h100"), 10);
	assert_int_equal(ledger(f, "nlp", f->now).reserved, 10 * PRICE);
}

/*
 * Group commit: 32 threads allocate at once against a budget that fits
 * exactly K of them.  Exactly K are approved and the rest refused, the ledger
 * holds exactly K, every decision is durable (a fresh connection sees it),
 * and fewer COMMITs than decisions ran: batches really formed.
 */
#define GC_THREADS 32
#define GC_FIT 20

static void *gc_racer(void *p)
{
	struct race *r = p;
	struct store_conn *c = NULL;
	struct alloc_request rq = req(r->team, r->gpu, 1, HOUR_US);
	struct alloc_outcome o;

	r->rc = store_conn_acquire(r->s, &c);
	pthread_barrier_wait(r->bar);
	if (r->rc == 0) {
		r->rc = store_conn_ops(c)->allocate(c, &ADMIN, &rq, 60, r->now, NULL, &o, r->detail);
		if (r->rc == 0 && strncmp(o.alloc.id, "alloc_", 6) != 0)
			r->rc = -1; /* approved without an allocation: a bug */
		store_conn_release(r->s, c);
	}
	return NULL;
}

/*
 * PostgreSQL: the rollup rebuild (also the fill of migration 5, while other
 * replicas keep completing allocations) and a completion that commits while
 * it runs.  The rebuild clears the rollups and sums the completed
 * allocations; a completion whose rollup row is new and commits after the
 * clear began, but before the sums read its allocation, was counted twice
 * (its own row plus the rebuild's sum added to it).  A raw transaction holds
 * one rollup row so the clear waits exactly there; the completion runs on a
 * thread of its own because with the rebuild's table lock it waits for the
 * rebuild.  (SQLite: the rebuild holds the database's one write lock, so a
 * completion cannot commit inside it.)
 */
struct bg_op {
	struct store *s;
	const char *id; /* NULL: the rollup rebuild; else complete this allocation */
	int64_t at;
	int rc;
	int done; /* set atomically when the call returned */
};

static void *bg_op_run(void *p)
{
	struct bg_op *b = p;
	struct store_conn *c = NULL;
	struct allocation a;
	char detail[STORE_DETAIL_LEN] = "";
	bool rep = false;

	b->rc = store_conn_acquire(b->s, &c);
	if (b->rc == 0) {
		b->rc = b->id ? store_conn_ops(c)->alloc_transition(c, &ADMIN, b->id, ALLOC_EV_COMPLETE,
								    b->at, b->at, &a, &rep, detail)
			      : store_conn_ops(c)->cost_rollup_rebuild(c);
		store_conn_release(b->s, c);
	}
	__atomic_store_n(&b->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Waits (bounded: 30 s) until a session waits on a lock in a statement
 * starting with `prefix`, or *done is set; true when one waits. */
static bool pg_lock_wait(struct fx *f, const char *prefix, const int *done)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
		 " AND query LIKE '%s%%'", prefix);
	for (int i = 0; i < 1500; i++) {
		if (raw_i64(f, sql) > 0)
			return true;
		if (done && __atomic_load_n(done, __ATOMIC_SEQ_CST))
			return false;
		usleep(20000);
	}
	return false;
}

static void test_rollup_rebuild_vs_completion(void **state)
{
	struct fx *f = *state;
	struct alloc_outcome o;
	struct allocation a;
	bool rep;
	char id2[STORE_ID_LEN];
	int64_t t0 = f->now, day = time_day_start(f->now);
	pthread_t rt, ct;
	PGconn *x;
	PGresult *r;

	put_gpu(f, "h100", PRICE, 8);
	put_team(f, "ta", 100 * PRICE);
	put_team(f, "tb", 100 * PRICE);
	/* ta: completed, so a rollup row exists for the raw transaction to hold */
	assert_int_equal(do_alloc(f, "ta", "h100", 1, 4 * HOUR_US, t0, &o), 0);
	assert_int_equal(transition(f, o.alloc.id, ALLOC_EV_START, t0, t0, &a, &rep), 0);
	assert_int_equal(transition(f, o.alloc.id, ALLOC_EV_COMPLETE, t0 + HOUR_US / SEC_US,
				    t0 + HOUR_US / SEC_US, &a, &rep), 0);
	/* tb: running; completed during the rebuild (its rollup rows are new) */
	assert_int_equal(do_alloc(f, "tb", "h100", 1, 4 * HOUR_US, t0, &o), 0);
	strcpy(id2, o.alloc.id);
	assert_int_equal(transition(f, id2, ALLOC_EV_START, t0, t0, &a, &rep), 0);

	x = PQconnectdb(f->url);
	assert_int_equal(PQstatus(x), CONNECTION_OK);
	r = PQexec(x, "BEGIN; SELECT 1 FROM cost_daily_approved FOR UPDATE");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);

	struct bg_op rb = {.s = f->s}, cb = {.s = f->s, .id = id2, .at = t0 + 2 * HOUR_US / SEC_US};
	assert_int_equal(pthread_create(&rt, NULL, bg_op_run, &rb), 0);
	assert_true(pg_lock_wait(f, "DELETE FROM cost_daily_approved", &rb.done));
	assert_int_equal(pthread_create(&ct, NULL, bg_op_run, &cb), 0);
	/* Either it commits now (the race) or it waits for the rebuild. */
	(void)pg_lock_wait(f, "INSERT INTO cost_", &cb.done);
	r = PQexec(x, "ROLLBACK");
	PQclear(r);
	PQfinish(x);
	assert_int_equal(pthread_join(rt, NULL), 0);
	assert_int_equal(pthread_join(ct, NULL), 0);
	assert_int_equal(rb.rc, 0);
	assert_int_equal(cb.rc, 0);

	/* tb's one completion (2 GPU-hours) once in every rollup, and /v1/costs
	 * from the rollups equals the scan */
	assert_int_equal(raw_i64(f, "SELECT SUM(spent) FROM cost_daily_approved WHERE team_id = 'tb'"),
			 2 * PRICE);
	assert_int_equal(raw_i64(f, "SELECT SUM(spent) FROM cost_monthly_approved WHERE team_id = 'tb'"),
			 2 * PRICE);
	assert_int_equal(raw_i64(f, "SELECT SUM(spent) FROM cost_daily_usage WHERE team_id = 'tb'"),
			 2 * PRICE);
	for (int scan = 0; scan < 2; scan++) {
		struct cost_sum s;
		struct cost_query q = {.from = day, .to = day + 86400, .group = COST_BY_TEAM,
				       .now = t0 + 3 * HOUR_US / SEC_US, .scan = scan};

		memset(&s, 0, sizeof(s));
		assert_int_equal(f->ops->costs(f->c, &q, cost_cb, &s), 0);
		assert_int_equal(s.n, 2);
		assert_string_equal(s.rows[1].key, "tb");
		assert_true(s.rows[1].spent == 2 * PRICE);
	}
}

static int setup_group(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fx_paths(f);
	fx_open(f, GC_THREADS + 1);
	fx_warm(f, GC_THREADS + 1);
	f->now = time_from_civil(2026, 7, 15);
	*state = f;
	return 0;
}

static void test_group_commit(void **state)
{
	struct fx *f = *state;
	pthread_t th[GC_THREADS];
	struct race r[GC_THREADS];
	pthread_barrier_t bar;
	int approved = 0, refused = 0;
	long commits = -1, decisions = -1;

	put_gpu(f, "h100", PRICE, 1000);
	put_team(f, "nlp", GC_FIT * PRICE); /* exactly K one-GPU-hour requests */
	if (!f->pg) {
		store_sqlite_stats(f->s, &commits, &decisions);
		assert_int_equal(commits, 0);
		assert_int_equal(decisions, 0);
	}
	assert_int_equal(pthread_barrier_init(&bar, NULL, GC_THREADS), 0);
	for (int i = 0; i < GC_THREADS; i++) {
		r[i] = (struct race){.s = f->s, .bar = &bar, .team = "nlp", .gpu = "h100", .now = f->now};
		assert_int_equal(pthread_create(&th[i], NULL, gc_racer, &r[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (r[i].rc == 0)
			approved++;
		else if (r[i].rc == ERR_BUDGET)
			refused++;
		else
			fprintf(stderr, "racer %d: %s: %s\n", i, err_name(r[i].rc), r[i].detail);
	}
	pthread_barrier_destroy(&bar);
	assert_int_equal(approved, GC_FIT);
	assert_int_equal(refused, GC_THREADS - GC_FIT);
	assert_int_equal(ledger(f, "nlp", f->now).reserved, GC_FIT * PRICE);
	assert_int_equal(gpu_allocated(f, "h100"), GC_FIT);

	/* The batch counters are the SQLite engine's (PostgreSQL's batches:
	 * tests/integration/test_groupcommit.c). */
	if (!f->pg) {
		store_sqlite_stats(f->s, &commits, &decisions);
		assert_int_equal(decisions, GC_THREADS); /* approvals and refusals are both decisions */
		assert_true(commits >= 1);
		assert_true(commits < decisions); /* batches formed */
	}

	/* Durable and visible to another connection: exactly K rows. */
	assert_int_equal(raw_i64(f, "SELECT COUNT(*) FROM allocations"), GC_FIT);
	assert_int_equal(raw_i64(f, "SELECT SUM(estimated_micros) FROM allocations"), GC_FIT * PRICE);
}

/*
 * Group commit under faults.  A raw connection holds SQLite's write lock
 * while GCF_THREADS allocations start, so they all queue for the writer
 * token and form one batch.  A batch without faults counts its statements;
 * then the same batch with its last statement (the COMMIT) failing answers
 * ERR_STORE to every member and leaves the database byte-identical; and a
 * fault inside one member's savepoint fails only that member.
 */
#define GCF_THREADS 8

struct gcf {
	struct store *s;
	pthread_barrier_t *bar;
	int64_t now;
	int rc;
	char id[STORE_ID_LEN];
};

static void *gcf_racer(void *p)
{
	struct gcf *r = p;
	struct store_conn *c = NULL;
	struct alloc_request rq = req("nlp", "h100", 1, HOUR_US);
	struct alloc_outcome o;
	char detail[STORE_DETAIL_LEN];

	r->rc = store_conn_acquire(r->s, &c);
	pthread_barrier_wait(r->bar);
	if (r->rc == 0) {
		r->rc = store_conn_ops(c)->allocate(c, &ADMIN, &rq, 60, r->now, NULL, &o, detail);
		if (r->rc == 0)
			snprintf(r->id, sizeof(r->id), "%s", o.alloc.id);
		store_conn_release(r->s, c);
	}
	return NULL;
}


/* GCF_THREADS concurrent allocations queued behind a raw write lock. */
static void gcf_batch(struct fx *f, struct gcf *r)
{
	pthread_t th[GCF_THREADS];
	pthread_barrier_t bar;
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(pthread_barrier_init(&bar, NULL, GCF_THREADS + 1), 0);
	for (int i = 0; i < GCF_THREADS; i++) {
		r[i] = (struct gcf){.s = f->s, .bar = &bar, .now = f->now};
		assert_int_equal(pthread_create(&th[i], NULL, gcf_racer, &r[i]), 0);
	}
	pthread_barrier_wait(&bar);
	usleep(500000); /* every thread is queued for the writer token by now */
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	for (int i = 0; i < GCF_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&bar);
}

static void test_group_commit_faults(void **state)
{
	struct fx *f = *state;
	struct gcf r[GCF_THREADS];
	const long big = 1000000;
	long c0, d0, c1, d1, used;
	char *before, *after;
	int failed = 0;

	put_gpu(f, "h100", PRICE, 1000);
	put_team(f, "nlp", 1000 * PRICE);

	/* 1. No fault: one batch, one COMMIT; count its statements. */
	store_sqlite_stats(f->s, &c0, &d0);
	store_fault_after(f->s, big);
	gcf_batch(f, r);
	used = big - __atomic_load_n(&f->s->fault_after, __ATOMIC_SEQ_CST);
	store_fault_after(f->s, -1);
	store_sqlite_stats(f->s, &c1, &d1);
	assert_int_equal(c1, c0 + 1);
	assert_int_equal(d1, d0 + GCF_THREADS);
	for (int i = 0; i < GCF_THREADS; i++)
		assert_int_equal(r[i].rc, 0);
	assert_int_equal(count_rows(f, "allocations"), GCF_THREADS);
	assert_true(used > 2 * GCF_THREADS);

	/* 2. The same batch with its COMMIT failing: all fail, nothing persists. */
	before = dump_db(f);
	store_fault_after(f->s, used - 1);
	gcf_batch(f, r);
	assert_true(__atomic_load_n(&f->s->fault_after, __ATOMIC_SEQ_CST) < 0); /* reached */
	store_fault_after(f->s, -1);
	after = dump_db(f);
	for (int i = 0; i < GCF_THREADS; i++)
		assert_int_equal(r[i].rc, ERR_STORE);
	assert_string_equal(before, after);
	free(before);
	free(after);
	store_sqlite_stats(f->s, &c0, &d0);
	assert_int_equal(c0, c1);
	assert_int_equal(d0, d1);

	/* 3. A fault inside one member's savepoint fails only that member. */
	store_fault_after(f->s, used / 2);
	gcf_batch(f, r);
	assert_true(__atomic_load_n(&f->s->fault_after, __ATOMIC_SEQ_CST) < 0);
	store_fault_after(f->s, -1);
	for (int i = 0; i < GCF_THREADS; i++) {
		struct allocation a;

		if (r[i].rc == 0) {
			assert_int_equal(f->ops->alloc_get(f->c, r[i].id, &a), 0);
		} else {
			assert_int_equal(r[i].rc, ERR_STORE);
			failed++;
		}
	}
	assert_int_equal(failed, 1);
	assert_int_equal(count_rows(f, "allocations"), 2 * GCF_THREADS - 1);
	assert_int_equal(ledger(f, "nlp", f->now).reserved, (2 * GCF_THREADS - 1) * PRICE);
	assert_int_equal(gpu_allocated(f, "h100"), 2 * GCF_THREADS - 1);
	store_sqlite_stats(f->s, &c1, &d1);
	assert_int_equal(c1, c0 + 1);
	assert_int_equal(d1, d0 + GCF_THREADS - 1);
}

/* ---- 4. audit append-only ---------------------------------------------- */

static void test_audit_append_only(void **state)
{
	struct fx *f = *state;
	char *msg = NULL;
	int before;

	put_team(f, "nlp", PRICE);
	before = audit_count(f);
	assert_true(before >= 1);
	msg = raw_refused(f, "UPDATE audit SET action = 'forged'");
	assert_non_null(strstr(msg, "append-only"));
	free(msg);
	msg = raw_refused(f, "DELETE FROM audit");
	assert_non_null(strstr(msg, "append-only"));
	free(msg);
	assert_int_equal(audit_count(f), before);

	/* and the team row's audit has before/after JSON with decimal money */
	{
		char *d = raw_rows(f, "SELECT after_json FROM audit WHERE action = 'team.create'", false,
				   NULL);
		assert_non_null(strstr(d, "\"budget\":\"3.60\""));
		free(d);
	}
}

/* ---- 5. migrations ----------------------------------------------------- */

static void test_migrations(void **state)
{
	struct fx *f = *state;
	char url[160], detail[STORE_DETAIL_LEN] = "";
	struct store *s2 = NULL;
	char *err = NULL, *done;

	put_team(f, "nlp", PRICE);
	fx_shut(f);
	fx_open(f, 2); /* reopening is idempotent and keeps data */
	{
		struct team t;
		assert_int_equal(f->ops->team_get(f->c, "nlp", &t), 0);
	}
	fx_shut(f);

	/* Each known migration applied exactly once: versions 1..N, no repeats. */
	int known = (int)raw_i64(f, "SELECT max(version) FROM schema_migrations");
	assert_true(known >= 5);
	assert_int_equal(raw_i64(f, "SELECT count(*) FROM schema_migrations"), known);
	done = raw_rows(f, "INSERT INTO schema_migrations VALUES (999, 0)", false, &err);
	assert_null(err);
	free(done);

	assert_int_equal(store_open(f->url, 2, &s2, detail), ERR_STORE);
	assert_null(s2);
	char want[STORE_DETAIL_LEN];
	snprintf(want, sizeof(want), "database schema version 999 is newer than this plinth (%d)",
		 known);
	assert_string_equal(detail, want);

	if (f->pg)
		return;
	snprintf(url, sizeof(url), "sqlite://%s", f->path);
	assert_int_equal(store_open(url, 2, &s2, detail), ERR_STORE);
	assert_null(s2);

	/* A PostgreSQL URL selects the postgres backend: unreachable is 503-able. */
	assert_int_equal(store_open("postgres://127.0.0.1:1/plinth?connect_timeout=2", 2, &s2, detail),
			 ERR_UNAVAILABLE);
	assert_null(s2);

	/* ... and refused through a plain path too */
	assert_int_equal(store_open(f->path, 1, &s2, detail), ERR_STORE);
	assert_null(s2);
}

/* Runs a multi-statement script on f's database (created if need be). */
static void raw_script(struct fx *f, const char *sql)
{
	if (f->pg) {
		PGconn *db = PQconnectdb(f->url);
		assert_int_equal(PQstatus(db), CONNECTION_OK);
		PGresult *r = PQexec(db, sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
			fail_msg("%s", PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(db);
		return;
	}
	sqlite3 *db = NULL;
	char *err = NULL;
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 NULL),
			 SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s", err);
	sqlite3_close(db);
}

/*
 * A database made by a plinth of schema version 5 (the scripts themselves,
 * run here) with a team in it, opened by this one: the later migrations run
 * over real data.  Version 6 (issue 13): the team owns the namespace named
 * after it, and the namespace is taken.
 */
static void test_migration_from_v5(void **state)
{
	(void)state;
	struct fx g = {0};
	struct team t;
	static const unsigned char *const scripts[2][5] = {
		{schema_sqlite_v1, schema_sqlite_v2, schema_sqlite_v3, schema_sqlite_v4,
		 schema_sqlite_v5},
		{schema_postgres_v1, schema_postgres_v2, schema_postgres_v3, schema_postgres_v4,
		 schema_postgres_v5},
	};

	fx_paths(&g);
	raw_script(&g, "CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY,"
		       " applied_at BIGINT NOT NULL)");
	for (int v = 1; v <= 5; v++) {
		char mark[96];
		raw_script(&g, (const char *)scripts[g.pg ? 1 : 0][v - 1]);
		snprintf(mark, sizeof(mark), "INSERT INTO schema_migrations VALUES (%d, 0)", v);
		raw_script(&g, mark);
	}
	raw_script(&g, "INSERT INTO teams(id, display_name, budget_micros, period, thresholds_json,"
		       " created_at, updated_at) VALUES ('nlp', 'NLP', 1000000, 'monthly',"
		       " '[0.5,0.8,1.0]', 0, 0)");
	fx_open(&g, 2);
	assert_int_equal(g.ops->team_get(g.c, "nlp", &t), 0);
	assert_string_equal(t.namespaces, "nlp");
	assert_string_equal(t.display_name, "NLP");
	fx_shut(&g);
	assert_int_equal(raw_i64(&g, "SELECT count(*) FROM team_namespaces WHERE namespace = 'nlp'"
				    " AND team_id = 'nlp'"),
			 1);
	fx_rm(&g);
}

static void test_migrations_plain_path(void **state)
{
	struct fx *f = *state;
	char detail[STORE_DETAIL_LEN] = "";
	struct store *s2 = NULL;
	struct store_conn *c = NULL;

	/* a plain path opens the same database */
	assert_int_equal(store_open(f->path, 1, &s2, detail), 0);
	assert_int_equal(store_conn_acquire(s2, &c), 0);
	assert_int_equal(store_conn_ops(c)->ping(c), 0);
	store_conn_release(s2, c);
	store_close(s2);
}

int main(int argc, char **argv)
{
	const char *group = argc > 1 ? argv[1] : "all";
	bool all = strcmp(group, "all") == 0;
	int fails = 0;

	if (all || strcmp(group, "ledger") == 0) {
		const struct CMUnitTest t[] = {
			cmocka_unit_test_setup_teardown(test_exact_fit_and_one_micro_over, setup, teardown),
			cmocka_unit_test_setup_teardown(test_capacity_exact_fit, setup, teardown),
			cmocka_unit_test_setup_teardown(test_start_complete_moves_money, setup, teardown),
			cmocka_unit_test_setup_teardown(test_cancel_and_expiry_release, setup, teardown),
			cmocka_unit_test_setup_teardown(test_price_change_new_only, setup, teardown),
			cmocka_unit_test_setup_teardown(test_previous_period_spend, setup, teardown),
			cmocka_unit_test_setup_teardown(test_cost_sums_beyond_int64, setup, teardown),
		};
		fails += cmocka_run_group_tests_name("store-ledger", t, NULL, NULL);
	}
	if (all || strcmp(group, "misc") == 0) {
		const struct CMUnitTest t[] = {
			cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
			cmocka_unit_test_setup_teardown(test_idempotency_hostile_records, setup, teardown),
			cmocka_unit_test_setup_teardown(test_idempotency_records, setup, teardown),
			cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
			cmocka_unit_test_setup_teardown(test_lists, setup, teardown),
			cmocka_unit_test_setup_teardown(test_catalog_and_teams, setup, teardown),
		};
		fails += cmocka_run_group_tests_name("store-misc", t, NULL, NULL);
	}
	if (all || strcmp(group, "fault") == 0) {
		const struct CMUnitTest t[] = {
			cmocka_unit_test_setup_teardown(test_fault_rollback, setup, teardown),
		};
		fails += cmocka_run_group_tests_name("store-fault", t, NULL, NULL);
	}
	if (all || strcmp(group, "race") == 0) {
		const struct CMUnitTest t[] = {
			cmocka_unit_test_setup_teardown(test_race_budget, setup_race, teardown),
			cmocka_unit_test_setup_teardown(test_race_capacity, setup_race, teardown),
			cmocka_unit_test_setup_teardown(test_group_commit, setup_group, teardown),
		};
		/* SQLite's group-commit engine under faults: it queues writers behind
		 * SQLite's own write lock (PostgreSQL's set-based engine under faults:
		 * test_fault_rollback's allocations and tests/integration/test_crash). */
		const struct CMUnitTest sqlite_only[] = {
			cmocka_unit_test_setup_teardown(test_group_commit_faults, setup_group, teardown),
		};
		/* A rollup rebuild racing a completion (PostgreSQL's READ COMMITTED;
		 * SQLite's write lock leaves no room for it). */
		const struct CMUnitTest pg_only[] = {
			cmocka_unit_test_setup_teardown(test_rollup_rebuild_vs_completion, setup_race,
							teardown),
		};
		fails += cmocka_run_group_tests_name("store-race", t, NULL, NULL);
		if (!itest_pg_enabled())
			fails += cmocka_run_group_tests_name("store-race-sqlite", sqlite_only, NULL, NULL);
		else
			fails += cmocka_run_group_tests_name("store-race-pg", pg_only, NULL, NULL);
	}
	if (all || strcmp(group, "audit") == 0) {
		const struct CMUnitTest t[] = {
			cmocka_unit_test_setup_teardown(test_audit_append_only, setup, teardown),
		};
		fails += cmocka_run_group_tests_name("store-audit", t, NULL, NULL);
	}
	if (all || strcmp(group, "migrate") == 0) {
		const struct CMUnitTest t[] = {
			cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
			cmocka_unit_test_setup_teardown(test_migration_from_v5, setup, teardown),
		};
		/* A plain path is a SQLite URL. */
		const struct CMUnitTest sqlite_only[] = {
			cmocka_unit_test_setup_teardown(test_migrations_plain_path, setup, teardown),
		};
		fails += cmocka_run_group_tests_name("store-migrate", t, NULL, NULL);
		if (!itest_pg_enabled())
			fails += cmocka_run_group_tests_name("store-migrate-sqlite", sqlite_only, NULL,
							     NULL);
	}
	return fails ? 1 : 0;
}
