/*
 * bench_costs.c - `make bench`: GET /v1/costs over a long history.
 *
 * usage: bench_costs PLINTH_BIN [ALLOCATIONS [PG_URL]]   (default 1000000)
 *
 * Builds a ledger of ALLOCATIONS completed allocations spread over the last
 * 12 months (10 teams x 5 projects x 4 GPU types, 1 minute to 30 hours each)
 * plus a few hundred live ones, bulk-loaded straight into SQLite (or, given
 * PG_URL, into a fresh schema of that PostgreSQL database, dropped at the
 * end) and then summarised by the store's own cost_rollup_rebuild.  In the same run it
 * measures, for "spend per team over the whole 12 months":
 *   - the naive scan (cost_query.scan: read every allocation), store level;
 *   - the rollups, store level (same function, same data), by use (the
 *     default: cost_monthly_usage + cost_daily_usage) and by budget period
 *     (view=budget: cost_monthly_approved + cost_daily_approved);
 *   - the real daemon answering GET /v1/costs over HTTP (rollups).
 * and checks that rollups and scan give identical numbers (exit 1 if not).
 * Prints RESULT lines for bench/run.sh.  It never touches anything outside
 * its mkdtemp directory and its own PostgreSQL schema.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/ledger.h"
#include "core/timeutil.h"
#include "net/httpc.h"
#include "store/store.h"
#include "util/util.h"

#define NTEAMS 10
#define NPROJ 5
#define NGPU 4
#define SECRET "bench-costs-admin-token-0123456789"

static const char *const gpus[NGPU] = {"bench-h100", "bench-a100", "bench-l4", "bench-t4"};
static const int64_t gpu_price[NGPU] = {12290000, 4100000, 980000, 526000};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *v, int n, int p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp64);
	int i = (n * p + 99) / 100 - 1;
	return v[i < 0 ? 0 : i];
}

struct sum {
	char keys[64][STORE_ID_LEN * 2];
	int64_t spent[64], gpu[64];
	int n;
};

static int add_sum(void *ctx, const struct cost_row *r)
{
	struct sum *s = ctx;
	if (s->n >= 64)
		return 1;
	snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", r->key);
	s->spent[s->n] = r->spent + r->accrued + r->reserved;
	s->gpu[s->n] = r->gpu_microhours;
	s->n++;
	return 0;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One generated allocation (completed, or one of the 300 live ones). */
struct gen {
	char id[32], team[16], proj[16];
	const char *gpu, *status;
	int64_t count, max_us, price, est, ps, approved, expires, started, ended, actual;
};

static void generate(long i, long n, int64_t now, struct gen *r)
{
	int64_t span = 365 * 86400;
	bool live = i >= n;
	int t = (int)(next_rand() % NTEAMS), g = (int)(next_rand() % NGPU);
	int64_t count = 1 + (int64_t)(next_rand() % 8);
	int64_t max_us = (int64_t)(1 + next_rand() % 30) * 3600 * 1000000;
	int64_t approved = live ? now - (int64_t)(next_rand() % 3600)
				: now - span + (int64_t)(next_rand() % (uint64_t)(span - 40 * 3600));
	int64_t started = approved + (int64_t)(next_rand() % 3600);
	int64_t ended = started + 60 + (int64_t)(next_rand() % (uint64_t)(max_us / 1000000));
	int64_t est = 0, actual = 0, y;
	unsigned m, d;

	snprintf(r->id, sizeof(r->id), "alloc_bench%09ld", i);
	snprintf(r->team, sizeof(r->team), "team%02d", t);
	snprintf(r->proj, sizeof(r->proj), "proj%d", (int)(next_rand() % NPROJ));
	ledger_actual(gpu_price[g], count, max_us, 0, max_us / 1000000, &est);
	ledger_actual(gpu_price[g], count, max_us, started, ended, &actual);
	time_civil_from_days(approved / 86400, &y, &m, &d);
	r->gpu = gpus[g];
	r->status = live ? (i % 2 ? "running" : "approved") : "completed";
	r->count = count;
	r->max_us = max_us;
	r->price = gpu_price[g];
	r->est = est;
	r->ps = time_from_civil(y, m, 1); /* monthly period start */
	r->approved = approved;
	r->expires = approved + 86400;
	r->started = live && i % 2 == 0 ? 0 : started;
	r->ended = live ? 0 : ended;
	r->actual = live ? -1 : actual;
}

static int load_sqlite(const char *path, long n, int64_t now)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db,
			"INSERT INTO allocations(id, team_id, project, gpu_type, gpu_count, max_runtime_us,"
			" price_micros, estimated_micros, status, purpose, labels_json, created_by, period_start,"
			" approved_at, expires_at, started_at, ended_at, actual_micros)"
			" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'bench', '{}', 'tok_bench', ?, ?, ?, ?, ?, ?)",
			-1, &st, NULL);
	for (long i = 0; rc == SQLITE_OK && i < n + 300; i++) {
		struct gen r;
		generate(i, n, now, &r);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, r.id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, r.team, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, r.proj, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 4, r.gpu, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, r.count);
		sqlite3_bind_int64(st, 6, r.max_us);
		sqlite3_bind_int64(st, 7, r.price);
		sqlite3_bind_int64(st, 8, r.est);
		sqlite3_bind_text(st, 9, r.status, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 10, r.ps);
		sqlite3_bind_int64(st, 11, r.approved);
		sqlite3_bind_int64(st, 12, r.expires);
		sqlite3_bind_int64(st, 13, r.started);
		sqlite3_bind_int64(st, 14, r.ended);
		sqlite3_bind_int64(st, 15, r.actual);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		fprintf(stderr, "bench_costs: load failed: %s\n", sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* PostgreSQL: the same rows through one COPY, then ANALYZE (as after any bulk load). */
static int load_pg(const char *url, long n, int64_t now)
{
	PGconn *db = PQconnectdb(url);
	PGresult *r = NULL;
	char line[512];
	int ok = PQstatus(db) == CONNECTION_OK;

	if (ok) {
		r = PQexec(db, "COPY allocations(id, team_id, project, gpu_type, gpu_count, max_runtime_us,"
			       " price_micros, estimated_micros, status, purpose, labels_json, created_by,"
			       " period_start, approved_at, expires_at, started_at, ended_at, actual_micros)"
			       " FROM STDIN");
		ok = PQresultStatus(r) == PGRES_COPY_IN;
		PQclear(r);
	}
	for (long i = 0; ok && i < n + 300; i++) {
		struct gen g;
		generate(i, n, now, &g);
		int len = snprintf(line, sizeof(line),
				   "%s\t%s\t%s\t%s\t%lld\t%lld\t%lld\t%lld\t%s\tbench\t{}\ttok_bench\t"
				   "%lld\t%lld\t%lld\t%lld\t%lld\t%lld\n",
				   g.id, g.team, g.proj, g.gpu, (long long)g.count, (long long)g.max_us,
				   (long long)g.price, (long long)g.est, g.status, (long long)g.ps,
				   (long long)g.approved, (long long)g.expires, (long long)g.started,
				   (long long)g.ended, (long long)g.actual);
		ok = len > 0 && (size_t)len < sizeof(line) && PQputCopyData(db, line, len) == 1;
	}
	if (PQstatus(db) == CONNECTION_OK && PQputCopyEnd(db, ok ? NULL : "load failed") == 1) {
		r = PQgetResult(db);
		ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		while ((r = PQgetResult(db)) != NULL)
			PQclear(r);
	}
	if (ok) {
		r = PQexec(db, "ANALYZE allocations");
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
	if (!ok)
		fprintf(stderr, "bench_costs: load failed: %s", PQerrorMessage(db));
	PQfinish(db);
	return ok ? 0 : -1;
}

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* the NOTICEs of DROP SCHEMA ... CASCADE */
}

/* Creates (or, drop: drops) this run's schema `tag` in the database of base. */
static int pg_schema(const char *base, bool drop, const char *tag)
{
	char sql[160];
	PGconn *db = PQconnectdb(base);
	PGresult *r = NULL;
	int ok = PQstatus(db) == CONNECTION_OK;

	if (drop)
		snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", tag);
	else
		snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", tag);
	PQsetNoticeProcessor(db, quiet, NULL);
	if (ok) {
		r = PQexec(db, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			fprintf(stderr, "bench_costs: %s: %s", sql, PQresultErrorMessage(r));
		PQclear(r);
	} else {
		fprintf(stderr, "bench_costs: cannot connect to PostgreSQL: %s", PQerrorMessage(db));
	}
	PQfinish(db);
	return ok ? 0 : -1;
}

/* Times n store-level queries; fills lat (us) and the last result. */
static int time_store(struct store_conn *c, struct cost_query *q, int n, int64_t *lat, struct sum *out)
{
	for (int i = 0; i < n; i++) {
		memset(out, 0, sizeof(*out));
		int64_t t0 = mono_us();
		int rc = store_conn_ops(c)->costs(c, q, add_sum, out);
		lat[i] = mono_us() - t0;
		if (rc != 0)
			return rc;
	}
	return 0;
}

static pid_t daemon_start(const char *bin, const char *dir, const char *db_url, char *base,
			  size_t len)
{
	char ready[4200];
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	fflush(stdout); /* the child must not print our buffered lines again */
	pid_t pid = fork();
	if (pid == 0) {
		setenv("PLINTH_ADMIN_TOKEN", SECRET, 1);
		if (freopen("/dev/null", "w", stderr) == NULL || freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		if (db_url)
			execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--data", dir, "--ready-file",
			      ready, "--database-url", db_url, (char *)NULL);
		else
			execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--data", dir, "--ready-file",
			      ready, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 600; i++) {
		FILE *f = fopen(ready, "r");
		if (f != NULL) {
			bool ok = fgets(base, (int)len, f) != NULL;
			fclose(f);
			if (ok) {
				base[strcspn(base, "\r\n")] = '\0';
				return pid;
			}
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return -1;
		usleep(100000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_costs PLINTH_BIN [ALLOCATIONS [PG_URL]]\n");
		return 2;
	}
	long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1000000;
	const char *pg_base = argc > 3 && argv[3][0] ? argv[3] : NULL;
	char dir[] = "/tmp/plinth-bench-costs-XXXXXX", path[128], url[1200], detail[STORE_DETAIL_LEN] = "";
	char tag[48] = "";
	struct store *s = NULL;
	struct store_conn *c = NULL;
	int64_t now = util_now(), t0;
	int status = 1;
	static int64_t lat_scan[20], lat_roll[200], lat_http[200];
	static struct sum scan_sum, roll_sum;
	pid_t pid = -1;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/plinth.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	if (pg_base) {
		snprintf(tag, sizeof(tag), "bench_costs_%ld", (long)getpid());
		if (pg_schema(pg_base, false, tag) != 0) {
			tag[0] = '\0';
			goto out;
		}
		int u = snprintf(url, sizeof(url), "%s%soptions=-csearch_path%%3D%s", pg_base,
				 strchr(pg_base, '?') ? "&" : "?", tag);
		if (u < 0 || (size_t)u >= sizeof(url))
			goto out;
	}
	if (store_open(url, 2, &s, detail) != 0 || store_conn_acquire(s, &c) != 0 ||
	    store_conn_ops(c)->migrate(c, detail) != 0) {
		fprintf(stderr, "bench_costs: cannot open the store: %s\n", detail);
		goto out;
	}
	const struct actor who = {"tok_bench", "bench", ROLE_ADMIN};
	for (int g = 0; g < NGPU; g++) {
		struct gpu_type gt;
		bool created;
		memset(&gt, 0, sizeof(gt));
		snprintf(gt.id, sizeof(gt.id), "%s", gpus[g]);
		snprintf(gt.name, sizeof(gt.name), "%s", gpus[g]);
		snprintf(gt.price_date, sizeof(gt.price_date), "2026-07-20");
		snprintf(gt.price_source, sizeof(gt.price_source), "bench");
		gt.price_micros = gpu_price[g];
		gt.capacity = 1000000;
		if (store_conn_ops(c)->gpu_type_put(c, &who, &gt, now, &created) != 0)
			goto out;
	}
	for (int t = 0; t < NTEAMS; t++) {
		struct team tm;
		bool created;
		memset(&tm, 0, sizeof(tm));
		snprintf(tm.id, sizeof(tm.id), "team%02d", t);
		snprintf(tm.display_name, sizeof(tm.display_name), "Team %d", t);
		tm.budget_micros = INT64_C(1000000000000000);
		tm.period = PERIOD_MONTHLY;
		snprintf(tm.thresholds_json, sizeof(tm.thresholds_json), "[]");
		if (store_conn_ops(c)->team_put(c, &who, &tm, now, &created) != 0)
			goto out;
	}
	t0 = mono_us();
	if ((pg_base ? load_pg(url, n, now) : load_sqlite(path, n, now)) != 0)
		goto out;
	printf("loaded %ld completed + 300 live allocations over 12 months into %s in %.1f s\n", n,
	       pg_base ? "PostgreSQL" : "SQLite", (double)(mono_us() - t0) / 1e6);
	t0 = mono_us();
	if (store_conn_ops(c)->cost_rollup_rebuild(c) != 0) {
		fprintf(stderr, "bench_costs: rollup rebuild failed\n");
		goto out;
	}
	printf("rollups built in %.1f s\n", (double)(mono_us() - t0) / 1e6);

	struct cost_query q;
	memset(&q, 0, sizeof(q));
	q.from = time_day_start(now) - 366 * 86400;
	q.to = now + 1;
	q.now = now;
	q.group = COST_BY_TEAM;
	q.scan = true;
	int nscan = 5, nroll = 200, nhttp = 200;
	if (time_store(c, &q, nscan, lat_scan, &scan_sum) != 0)
		goto out;
	q.scan = false;
	if (time_store(c, &q, nroll, lat_roll, &roll_sum) != 0)
		goto out;
	if (scan_sum.n != roll_sum.n || scan_sum.n == 0 ||
	    memcmp(scan_sum.spent, roll_sum.spent, sizeof(scan_sum.spent)) != 0 ||
	    memcmp(scan_sum.gpu, roll_sum.gpu, sizeof(scan_sum.gpu)) != 0) {
		fprintf(stderr, "bench_costs: rollups and scan DISAGREE\n");
		goto out;
	}
	/* By budget period (view=budget: the approval rollups, monthly rows). */
	static int64_t lat_budget[200];
	static struct sum bscan, broll;
	q.view = COST_VIEW_BUDGET;
	q.scan = true;
	if (time_store(c, &q, 1, lat_scan + 11, &bscan) != 0)
		goto out;
	q.scan = false;
	if (time_store(c, &q, nroll, lat_budget, &broll) != 0)
		goto out;
	if (bscan.n != broll.n || memcmp(bscan.spent, broll.spent, sizeof(bscan.spent)) != 0) {
		fprintf(stderr, "bench_costs: rollups and scan DISAGREE (view=budget)\n");
		goto out;
	}
	q.view = COST_VIEW_USE;
	/* The other groupings must agree too (one run each). */
	for (int g = COST_BY_PROJECT; g <= COST_BY_MONTH; g++) {
		static struct sum a, b;
		q.group = (enum cost_group)g;
		q.scan = true;
		if (time_store(c, &q, 1, lat_scan + 10, &a) != 0)
			goto out;
		q.scan = false;
		if (time_store(c, &q, 1, lat_roll + 199, &b) != 0)
			goto out;
		if (a.n != b.n || memcmp(a.spent, b.spent, sizeof(a.spent)) != 0 ||
		    memcmp(a.gpu, b.gpu, sizeof(a.gpu)) != 0) {
			fprintf(stderr, "bench_costs: rollups and scan DISAGREE for group %d\n", g);
			goto out;
		}
	}
	store_conn_release(s, c);
	c = NULL;
	store_close(s);
	s = NULL;

	char base[400] = "", qurl[800], fromb[TIME_FMT_LEN], tob[TIME_FMT_LEN];
	pid = daemon_start(argv[1], dir, pg_base ? url : NULL, base, sizeof(base));
	if (pid < 0) {
		fprintf(stderr, "bench_costs: the daemon did not start\n");
		goto out;
	}
	time_format_rfc3339(time_day_start(now) - 366 * 86400, fromb);
	time_format_rfc3339(now + 1, tob);
	snprintf(qurl, sizeof(qurl), "%s/v1/costs?group_by=team&from=%s&to=%s", base, fromb, tob);
	const char *hdr[] = {"Authorization: Bearer " SECRET, NULL};
	for (int i = 0; i < nhttp; i++) {
		struct httpc_response r = {0};
		char d[HTTPC_DETAIL_LEN];
		int64_t t1 = mono_us();
		int rc = httpc_request("GET", qurl, hdr, NULL, 0, 30000, 1 << 20, &r, d);
		lat_http[i] = mono_us() - t1;
		long st = r.status;
		httpc_response_done(&r);
		if (rc != 0 || st != 200) {
			fprintf(stderr, "bench_costs: GET /v1/costs failed (%ld %s)\n", st, rc ? d : "");
			goto out;
		}
	}
	int64_t s50 = pct(lat_scan, nscan, 50), s95 = pct(lat_scan, nscan, 95);
	int64_t r50 = pct(lat_roll, nroll - 1, 50), r95 = pct(lat_roll, nroll - 1, 95);
	int64_t h50 = pct(lat_http, nhttp, 50), h95 = pct(lat_http, nhttp, 95);
	printf("spend per team over 12 months, %ld allocations (%s):\n", n, pg_base ? "PostgreSQL" : "SQLite");
	printf("  naive scan (store)     p50 %9.2f ms  p95 %9.2f ms\n", s50 / 1e3, s95 / 1e3);
	printf("  rollups (store)        p50 %9.2f ms  p95 %9.2f ms  (by use, the default)\n", r50 / 1e3, r95 / 1e3);
	printf("  rollups, view=budget   p50 %9.2f ms  p95 %9.2f ms\n",
	       pct(lat_budget, nroll - 1, 50) / 1e3, pct(lat_budget, nroll - 1, 95) / 1e3);
	printf("  GET /v1/costs (HTTP)   p50 %9.2f ms  p95 %9.2f ms\n", h50 / 1e3, h95 / 1e3);
	printf("RESULT store=%s allocations=%ld scan_p50_us=%lld scan_p95_us=%lld roll_p50_us=%lld roll_p95_us=%lld"
	       " http_p50_us=%lld http_p95_us=%lld\n",
	       pg_base ? "postgres" : "sqlite", n, (long long)s50, (long long)s95, (long long)r50, (long long)r95, (long long)h50,
	       (long long)h95);
	status = 0;
out:
	if (pid > 0) {
		int st;
		kill(pid, SIGTERM);
		waitpid(pid, &st, 0);
	}
	if (c != NULL)
		store_conn_release(s, c);
	store_close(s);
	if (tag[0] && pg_schema(pg_base, true, tag) != 0)
		status = 1;
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_costs: cannot remove %s\n", dir);
	return status;
}
