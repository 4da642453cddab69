/*
 * test_rollup.c - the daily cost rollups against the full scan they replace.
 *
 * Builds a ledger through the real store ops (approve, start, complete,
 * cancel at chosen instants over ~100 days, across day, week and month
 * boundaries, with runs past their max runtime and zero-length runs), then
 * for hundreds of random ranges (day-aligned and not), every grouping and
 * with and without a team scope, checks that costs from the rollups equal
 * costs from the scan exactly.  Also: a completion that fails at any
 * statement (fault injection) leaves rollups and ledger in step; a rebuild
 * gives the same rollups; the FOCUS usage rows (running allocations
 * included or not) sum to the day totals (spent + accrued).
 * With ITEST_PG=1 (the 'integration-pg' registration) the same checks run
 * on PostgreSQL, in a fresh schema of PLINTH_TEST_PG_URL (itest_pg.c).
 * Prints TAP.  Touches nothing outside its mkdtemp directory and its schema.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "store/store.h"
#include "itest_pg.h"

#define DAY INT64_C(86400)
#define MAXROWS 512

static int ntests, nfailed;

static bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	ntests++;
	printf("%s %d - ", cond ? "ok" : "not ok", ntests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		nfailed++;
	return cond;
}

struct rows {
	struct cost_row r[MAXROWS];
	int n;
};

static int collect(void *ctx, const struct cost_row *r)
{
	struct rows *rs = ctx;
	if (rs->n >= MAXROWS)
		return 1;
	rs->r[rs->n++] = *r;
	return 0;
}

static uint64_t seed = 0x9e3779b97f4a7c15ull;
static int64_t rnd(int64_t n)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return n > 0 ? (int64_t)(seed % (uint64_t)n) : 0;
}

static const struct actor WHO = {"tok_test", "test", ROLE_ADMIN};
static const char *const TEAMS[] = {"alpha", "beta", "gamma"};

/* 0 = equal; else prints the first difference. */
static int compare(struct store_conn *c, const struct cost_query *base, char *why, size_t len)
{
	static struct rows a, b;
	struct cost_query q = *base;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	q.scan = true;
	int rc = store_conn_ops(c)->costs(c, &q, collect, &a);
	q.scan = false;
	int rc2 = store_conn_ops(c)->costs(c, &q, collect, &b);
	if (rc != 0 || rc2 != 0) {
		snprintf(why, len, "costs failed: %d %d", rc, rc2);
		return -1;
	}
	if (a.n != b.n) {
		snprintf(why, len, "%d rows scanned, %d from rollups (group %d, view %d, first keys %s %s)",
			 a.n, b.n, (int)q.group, (int)q.view, a.n ? a.r[0].key : "", b.n ? b.r[0].key : "");
		return -1;
	}
	for (int i = 0; i < a.n; i++) {
		const struct cost_row *x = &a.r[i], *y = &b.r[i];
		if (strcmp(x->key, y->key) != 0 || x->spent != y->spent || x->accrued != y->accrued ||
		    x->reserved != y->reserved || x->gpu_microhours != y->gpu_microhours) {
			snprintf(why, len, "row %s: scan %lld/%lld/%lld/%lld, rollups %s %lld/%lld/%lld/%lld",
				 x->key, (long long)x->spent, (long long)x->accrued, (long long)x->reserved,
				 (long long)x->gpu_microhours, y->key, (long long)y->spent,
				 (long long)y->accrued, (long long)y->reserved,
				 (long long)y->gpu_microhours);
			return -1;
		}
	}
	return 0;
}

/* Random ranges x groups x scopes; returns how many disagreed. */
static int sweep(struct store_conn *c, int64_t t0, int64_t t1, int64_t now, int n, char *why,
		 size_t len)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		struct cost_query q;
		const char *one[1] = {TEAMS[rnd(3)]};
		memset(&q, 0, sizeof(q));
		q.from = t0 - 2 * DAY + rnd(t1 - t0 + 4 * DAY);
		q.to = q.from + 1 + rnd(60 * DAY);
		if (i % 3 == 0) { /* day-aligned */
			q.from = time_day_start(q.from);
			q.to = time_day_start(q.to) + DAY;
		}
		q.group = (enum cost_group)(i % 5);
		q.view = (enum cost_view)((i / 5) % 2);
		q.exclude_running = i % 7 == 0;
		q.now = now;
		if (i % 5 == 0) {
			q.teams = one;
			q.nteams = 1;
		}
		if (compare(c, &q, why, len) != 0) {
			bad++;
			break;
		}
	}
	return bad;
}

struct usage_sum {
	int64_t cost;
	long rows;
};

static int add_usage(void *ctx, const struct usage_row *u)
{
	struct usage_sum *s = ctx;
	s->cost += u->cost;
	s->rows++;
	return 0;
}

/* Runs statements on the database itself (not through the store): 0 or -1. */
static int raw_sqlite(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	int src = sqlite3_open(path, &db);

	if (src == SQLITE_OK)
		src = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return src == SQLITE_OK ? 0 : -1;
}

static int raw_pg(const char *url, const char *sql)
{
	PGconn *db = PQconnectdb(url);
	PGresult *r = PQstatus(db) == CONNECTION_OK ? PQexec(db, sql) : NULL;
	int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;

	PQclear(r);
	PQfinish(db);
	return rc;
}

/* SQLite: back to schema 3 (before version 4's monthly rollups and 7's
 * monthly usage rollup), rollups empty. */
static int back_to_sqlite_v3(const char *path)
{
	sqlite3 *db = NULL;
	int src = sqlite3_open(path, &db);
	if (src == SQLITE_OK)
		src = sqlite3_exec(db, "DROP TABLE cost_monthly_approved; DROP TABLE cost_monthly_usage;"
				       " DELETE FROM cost_daily_approved;"
				       " DELETE FROM cost_daily_usage;"
				       /* and what later versions added (5: job manifest cleanup,
				        * 6: team namespaces) */
				       " DROP INDEX jobs_manifests_live;"
				       " ALTER TABLE jobs DROP COLUMN manifests_removed_at;"
				       " DROP TABLE team_namespaces;"
				       " ALTER TABLE teams DROP COLUMN namespaces;"
				       /* 8: admins, retirement */
				       " ALTER TABLE teams DROP COLUMN admins_json;"
				       " ALTER TABLE teams DROP COLUMN retired_at;"
				       " ALTER TABLE gpu_types DROP COLUMN retired_at;"
				       " DELETE FROM schema_migrations WHERE version >= 4",
				   NULL, NULL, NULL);
	sqlite3_close(db);
	return src == SQLITE_OK ? 0 : -1;
}

/* PostgreSQL: back to schema 4 (before version 5's monthly rollups and 7's
 * monthly usage rollup; 6's team namespaces and 8's admins and retirement
 * undone too), rollups empty. */
static int back_to_pg_v4(const char *url)
{
	PGconn *db = PQconnectdb(url);
	PGresult *r = NULL;
	int rc = -1;

	if (PQstatus(db) == CONNECTION_OK) {
		r = PQexec(db, "DROP TABLE cost_monthly_approved; DROP TABLE cost_monthly_usage;"
			       " DELETE FROM cost_daily_approved;"
			       " DELETE FROM cost_daily_usage;"
			       " DROP TABLE team_namespaces;"
			       " ALTER TABLE teams DROP COLUMN namespaces;"
			       " ALTER TABLE teams DROP COLUMN admins_json;"
			       " ALTER TABLE teams DROP COLUMN retired_at;"
			       " ALTER TABLE gpu_types DROP COLUMN retired_at;"
			       " DELETE FROM schema_migrations WHERE version >= 5");
		rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
		if (rc != 0)
			fprintf(stderr, "back_to_pg_v4: %s", PQresultErrorMessage(r));
	}
	PQclear(r);
	PQfinish(db);
	return rc;
}

int main(void)
{
	char dir[] = "/tmp/plinth-rollup-XXXXXX", path[128], url[1024], detail[STORE_DETAIL_LEN] = "";
	char why[512] = "";
	bool pg = itest_pg_enabled();
	struct store *s = NULL;
	struct store_conn *c = NULL;
	const struct store_ops *ops;
	static char ids[400][STORE_ID_LEN];
	int nids = 0;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/plinth.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	if (pg && itest_pg_fresh_url(url, sizeof(url)) != 0) {
		ok(false, "a fresh PostgreSQL schema");
		goto out;
	}
	if (!ok(store_open(url, 2, &s, detail) == 0 && store_conn_acquire(s, &c) == 0 &&
		    store_conn_ops(c)->migrate(c, detail) == 0,
		"open and migrate a fresh %s store %s", pg ? "PostgreSQL" : "SQLite", detail))
		goto out;
	ops = store_conn_ops(c);

	int64_t t0 = time_from_civil(2026, 1, 20) + 3600 * 7 + 13; /* not day-aligned */
	struct gpu_type g;
	bool created;
	memset(&g, 0, sizeof(g));
	snprintf(g.id, sizeof(g.id), "h100-test");
	snprintf(g.name, sizeof(g.name), "H100");
	snprintf(g.price_date, sizeof(g.price_date), "2026-01-01");
	snprintf(g.price_source, sizeof(g.price_source), "test");
	g.price_micros = 7777777;
	g.capacity = 100000;
	int rc = ops->gpu_type_put(c, &WHO, &g, t0, &created);
	enum period_kind kinds[3] = {PERIOD_MONTHLY, PERIOD_WEEKLY, PERIOD_QUARTERLY};
	for (int i = 0; rc == 0 && i < 3; i++) {
		struct team t;
		memset(&t, 0, sizeof(t));
		snprintf(t.id, sizeof(t.id), "%s", TEAMS[i]);
		snprintf(t.display_name, sizeof(t.display_name), "Team %s", TEAMS[i]);
		t.budget_micros = INT64_C(1000000000000000);
		t.period = kinds[i];
		snprintf(t.thresholds_json, sizeof(t.thresholds_json), "[]");
		rc = ops->team_put(c, &WHO, &t, t0, &created);
	}
	ok(rc == 0, "a GPU type and three teams (monthly, weekly, quarterly)");

	/* Approve 300 allocations over ~100 days; complete most at varied instants. */
	int64_t now = t0;
	int completed = 0, faults = 0, fault_ok = 1;
	for (int i = 0; i < 300; i++) {
		struct alloc_request r;
		struct alloc_outcome o;
		struct idem idem = {0};
		memset(&r, 0, sizeof(r));
		snprintf(r.team, sizeof(r.team), "%s", TEAMS[i % 3]);
		snprintf(r.project, sizeof(r.project), "p%d", (int)rnd(4));
		snprintf(r.gpu_type, sizeof(r.gpu_type), "h100-test");
		r.gpu_count = 1 + rnd(8);
		r.max_runtime_us = (1 + rnd(72)) * INT64_C(3600000000) + rnd(999) * 1000000;
		snprintf(r.labels_json, sizeof(r.labels_json), "{}");
		now += 60 + rnd(8 * 3600);
		rc = ops->allocate(c, &WHO, &r, 365 * DAY, now, &idem, &o, detail);
		if (rc != 0)
			break;
		snprintf(ids[nids++], STORE_ID_LEN, "%s", o.alloc.id);
	}
	ok(rc == 0 && nids == 300, "300 allocations approved (%s)", detail);
	for (int i = 0; i < nids && rc == 0; i++) {
		struct allocation a;
		bool rep;
		rc = ops->alloc_get(c, ids[i], &a);
		int kind = (int)rnd(10);
		if (rc != 0 || kind == 0)
			continue; /* stays approved */
		if (kind == 1) {
			rc = ops->alloc_transition(c, &WHO, a.id, ALLOC_EV_CANCEL, a.approved_at + 5,
						   a.approved_at + 5, &a, &rep, detail);
			continue;
		}
		int64_t st = a.approved_at + rnd(6 * 3600);
		rc = ops->alloc_transition(c, &WHO, a.id, ALLOC_EV_START, st, st, &a, &rep, detail);
		if (rc != 0 || kind == 2)
			continue; /* stays running */
		int64_t max_s = a.max_runtime_us / 1000000;
		int64_t end = kind == 3 ? st                                /* zero-length */
			      : kind == 4 ? st + max_s + rnd(5 * DAY)        /* past max runtime */
					  : st + rnd(max_s + 1);
		if (i % 25 == 0) {
			/* Fail the completion at statement k, for every k until it succeeds:
			 * each failure must leave rollups and scan equal. */
			for (long k = 0; k < 40; k++) {
				store_fault_after(s, k);
				int frc = ops->alloc_transition(c, &WHO, a.id, ALLOC_EV_COMPLETE, end, end,
								&a, &rep, detail);
				store_fault_after(s, -1);
				if (frc == 0)
					break;
				faults++;
				struct cost_query q;
				memset(&q, 0, sizeof(q));
				q.from = t0 - DAY;
				q.to = now + 30 * DAY;
				q.group = (enum cost_group)(k % 5);
				q.view = (enum cost_view)((k / 5) % 2);
				q.now = now;
				if (compare(c, &q, why, sizeof(why)) != 0)
					fault_ok = 0;
			}
			completed++;
			continue;
		}
		rc = ops->alloc_transition(c, &WHO, a.id, ALLOC_EV_COMPLETE, end, end, &a, &rep, detail);
		if (rc == 0)
			completed++;
	}
	ok(rc == 0 && completed > 150, "%d allocations completed, the rest approved, running or cancelled (%s)",
	   completed, detail);
	detail[0] = '\0';
	ok(faults > 0 && fault_ok, "a completion failing at any of its statements leaves rollups = scan (%d faults) %s",
	   faults, why);

	int64_t end = now + 10 * DAY;
	ok(sweep(c, t0, end, now + 3600, 400, why, sizeof(why)) == 0,
	   "400 random ranges x 5 groupings x 2 views x scopes: rollups = scan %s", why);
	ok(ops->cost_rollup_rebuild(c) == 0, "rollups rebuild from the allocations");
	ok(sweep(c, t0, end, now + 7200, 200, why, sizeof(why)) == 0,
	   "after a rebuild: rollups = scan %s", why);

	/* `plinth migrate --rebuild-rollups` (after a rolling upgrade, replicas of
	 * an older version may have completed allocations the rollups missed):
	 * rollups emptied behind the store's back disagree with the scan, the
	 * command puts them right. */
	{
		const char *bin = getenv("PLINTH_BIN");
		char cmd[1400];
		int wrong;

		ok(pg ? raw_pg(url, "DELETE FROM cost_daily_approved; DELETE FROM cost_monthly_approved;"
				     " DELETE FROM cost_monthly_usage") == 0
		      : raw_sqlite(path, "DELETE FROM cost_daily_approved; DELETE FROM cost_monthly_approved;"
					 " DELETE FROM cost_monthly_usage") == 0,
		   "rollup rows removed behind the store's back");
		wrong = sweep(c, t0, now + 10 * DAY, now + 3600, 50, why, sizeof(why));
		ok(wrong != 0, "rollups without those rows differ from the scan");
		snprintf(cmd, sizeof(cmd), "'%s' migrate --rebuild-rollups --database-url '%s' >/dev/null",
			 bin ? bin : "plinth", url);
		ok(bin != NULL && system(cmd) == 0, "plinth migrate --rebuild-rollups succeeds");
		why[0] = '\0';
		ok(sweep(c, t0, now + 10 * DAY, now + 3600, 200, why, sizeof(why)) == 0,
		   "after plinth migrate --rebuild-rollups: rollups = scan %s", why);
	}

	/* FOCUS usage rows sum to the day totals, for a few ranges. */
	int usage_bad = 0;
	for (int i = 0; i < 30; i++) {
		struct cost_query q;
		struct usage_sum us = {0, 0};
		static struct rows days;
		memset(&q, 0, sizeof(q));
		memset(&days, 0, sizeof(days));
		q.from = t0 + rnd(end - t0);
		q.to = q.from + 1 + rnd(40 * DAY);
		q.group = COST_BY_DAY;
		q.now = now;
		q.scan = true;
		q.exclude_running = i % 2 == 0;
		if (ops->cost_usage(c, &q, add_usage, &us) != 0 || ops->costs(c, &q, collect, &days) != 0) {
			usage_bad++;
			break;
		}
		int64_t spent = 0;
		for (int k = 0; k < days.n; k++) /* running ones: their cost so far */
			spent += days.r[k].spent + days.r[k].accrued;
		if (spent != us.cost) {
			snprintf(why, sizeof(why), "usage %lld vs days %lld", (long long)us.cost, (long long)spent);
			usage_bad++;
		}
	}
	ok(usage_bad == 0, "FOCUS usage rows sum exactly to the day totals %s", why);

	/* A database from before the monthly rollups (SQLite schema 3,
	 * PostgreSQL 4; daily rollups emptied): migrating must backfill every
	 * rollup table. */
	store_conn_release(s, c);
	c = NULL;
	store_close(s);
	s = NULL;
	ok(pg ? back_to_pg_v4(url) == 0 : back_to_sqlite_v3(path) == 0,
	   "the database is taken back to the schema before the monthly rollups, without rollup rows");
	detail[0] = '\0';
	if (!ok(store_open(url, 2, &s, detail) == 0 && store_conn_acquire(s, &c) == 0 &&
		    store_conn_ops(c)->migrate(c, detail) == 0,
		"migrate to the monthly rollups and on %s", detail))
		goto out;
	ok(sweep(c, t0, end, now + 7200, 200, why, sizeof(why)) == 0,
	   "after the migration's backfill: rollups = scan %s", why);
out:
	if (c != NULL)
		store_conn_release(s, c);
	store_close(s);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	printf("1..%d\n", ntests);
	return nfailed == 0 && ntests > 0 ? 0 : 1;
}
