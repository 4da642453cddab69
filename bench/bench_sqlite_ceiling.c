/*
 * bench_sqlite_ceiling.c - the reference for bench_alloc: how many allocation
 * transactions per second SQLite itself commits on this machine, with no HTTP,
 * no JSON parsing and no daemon around it.
 *
 * usage: bench_sqlite_ceiling [SECONDS_PER_LEVEL]
 *
 * It mirrors src/store/store_sqlite.c: the same schema (tables, indexes and
 * triggers that an allocation touches), the same connection settings
 * (journal_mode=WAL, synchronous=FULL, foreign_keys=ON, busy_timeout 5000),
 * statements prepared once per connection (the store caches them too), one
 * connection per thread and a process mutex around each write transaction
 * (the store's wlock).  The transaction is the one sq_allocate() runs:
 *
 *   BEGIN IMMEDIATE
 *   read the team row; select due allocations (expiry, none are due);
 *   read the GPU type; ensure + read the team's period row;
 *   insert the allocation; add to the period's reserved; add to allocated;
 *   re-read period and GPU type (the store's defensive ledger_verify);
 *   insert the audit row (allocation JSON as after_json)
 *   COMMIT
 *
 * For 1, 8 and 64 threads it prints transactions/s and p50/p99 latency, and a
 * machine line for bench/run.sh:
 *   RESULT clients=N tx=T errors=E seconds=S rate=R p50_us=P p99_us=Q
 *
 * A benchmark, not a test: it fails only when SQLite itself does.  It works in
 * a temporary directory under $TMPDIR (or /tmp) that it removes at the end.
 * If store_sqlite.c's schema or allocate transaction changes, change this too.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const int levels[] = {1, 8, 64};

/* The tables, indexes and triggers of store_sqlite.c's SQL_V1 that an
 * allocation touches (tokens and idempotency are not written by it). */
static const char SCHEMA[] =
	"CREATE TABLE gpu_types("
	" id TEXT PRIMARY KEY, name TEXT NOT NULL, price_micros INTEGER NOT NULL,"
	" price_date TEXT NOT NULL, price_source TEXT NOT NULL, capacity INTEGER NOT NULL,"
	" allocated INTEGER NOT NULL DEFAULT 0 CHECK (allocated >= 0),"
	" updated_at INTEGER NOT NULL);"
	"CREATE TABLE teams("
	" id TEXT PRIMARY KEY, display_name TEXT NOT NULL, budget_micros INTEGER NOT NULL,"
	" period TEXT NOT NULL, thresholds_json TEXT NOT NULL,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
	"CREATE TABLE team_periods("
	" team_id TEXT NOT NULL, period_start INTEGER NOT NULL, period_end INTEGER NOT NULL,"
	" spent INTEGER NOT NULL DEFAULT 0 CHECK (spent >= 0),"
	" reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),"
	" PRIMARY KEY (team_id, period_start));"
	"CREATE TABLE allocations("
	" id TEXT PRIMARY KEY, team_id TEXT NOT NULL, project TEXT NOT NULL,"
	" gpu_type TEXT NOT NULL, gpu_count INTEGER NOT NULL, max_runtime_us INTEGER NOT NULL,"
	" price_micros INTEGER NOT NULL, estimated_micros INTEGER NOT NULL, status TEXT NOT NULL,"
	" purpose TEXT NOT NULL, labels_json TEXT NOT NULL, created_by TEXT NOT NULL,"
	" period_start INTEGER NOT NULL, approved_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
	" started_at INTEGER NOT NULL DEFAULT 0, ended_at INTEGER NOT NULL DEFAULT 0,"
	" actual_micros INTEGER NOT NULL DEFAULT -1);"
	"CREATE INDEX allocations_team_approved ON allocations(team_id, approved_at);"
	"CREATE INDEX allocations_status_expires ON allocations(status, expires_at);"
	"CREATE INDEX allocations_approved ON allocations(approved_at);"
	"CREATE TABLE audit("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor_id TEXT NOT NULL,"
	" actor_name TEXT NOT NULL, action TEXT NOT NULL, object_type TEXT NOT NULL,"
	" object_id TEXT NOT NULL, team TEXT NOT NULL DEFAULT '',"
	" before_json TEXT, after_json TEXT);"
	"CREATE INDEX audit_team ON audit(team, seq);"
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
	" BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;";

#define TEAM_COLS "id, display_name, budget_micros, period, thresholds_json, created_at, updated_at"
#define GPU_COLS "id, name, price_micros, price_date, price_source, capacity, allocated, updated_at"
#define ALLOC_COLS                                                                              \
	"id, team_id, project, gpu_type, gpu_count, max_runtime_us, price_micros,"              \
	" estimated_micros, status, purpose, labels_json, created_by, period_start, approved_at," \
	" expires_at, started_at, ended_at, actual_micros"

enum {
	Q_BEGIN,
	Q_TEAM,
	Q_DUE,
	Q_GPU,
	Q_PERIOD_ENSURE,
	Q_PERIOD_GET,
	Q_ALLOC_INSERT,
	Q_PERIOD_MOVE,
	Q_GPU_MOVE,
	Q_AUDIT,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_COUNT
};

static const char *const SQL[Q_COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_TEAM] = "SELECT " TEAM_COLS " FROM teams WHERE id = ?",
	[Q_DUE] = "SELECT " ALLOC_COLS " FROM allocations WHERE status = 'approved' AND expires_at <= ?"
		  " ORDER BY expires_at, id",
	[Q_GPU] = "SELECT " GPU_COLS " FROM gpu_types WHERE id = ?",
	[Q_PERIOD_ENSURE] = "INSERT OR IGNORE INTO team_periods(team_id, period_start, period_end,"
			    " spent, reserved) VALUES (?, ?, ?, 0, 0)",
	[Q_PERIOD_GET] = "SELECT spent, reserved FROM team_periods WHERE team_id = ? AND period_start = ?",
	[Q_ALLOC_INSERT] = "INSERT INTO allocations(" ALLOC_COLS ") VALUES"
			   " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[Q_PERIOD_MOVE] = "UPDATE team_periods SET reserved = reserved + ?, spent = spent + ?"
			  " WHERE team_id = ? AND period_start = ?",
	[Q_GPU_MOVE] = "UPDATE gpu_types SET allocated = allocated + ? WHERE id = ?",
	[Q_AUDIT] = "INSERT INTO audit(at, actor_id, actor_name, action, object_type, object_id, team,"
		    " before_json, after_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
};

static char dir[256];
static char db_path[300];
static pthread_mutex_t wlock = PTHREAD_MUTEX_INITIALIZER;

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One connection with the store's settings and every statement prepared. */
struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[Q_COUNT];
};

static void conn_close(struct conn *c)
{
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	memset(c, 0, sizeof(*c));
}

static int conn_open(struct conn *c, bool prepare)
{
	memset(c, 0, sizeof(*c));
	if (sqlite3_open_v2(db_path, &c->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(c->db, 5000) != SQLITE_OK ||
	    sqlite3_exec(c->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
			 NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench_sqlite_ceiling: open %s: %s\n", db_path,
			c->db ? sqlite3_errmsg(c->db) : "out of memory");
		conn_close(c);
		return -1;
	}
	for (int i = 0; prepare && i < Q_COUNT; i++) {
		if (sqlite3_prepare_v3(c->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i],
				       NULL) != SQLITE_OK) {
			fprintf(stderr, "bench_sqlite_ceiling: prepare '%s': %s\n", SQL[i],
				sqlite3_errmsg(c->db));
			conn_close(c);
			return -1;
		}
	}
	return 0;
}

/* Steps a statement to the end, counting rows; resets it.  Rows or -1. */
static int run(struct conn *c, int q)
{
	sqlite3_stmt *st = c->st[q];
	int rc, rows = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* Read the columns like the store's row decoders do. */
		for (int i = 0; i < sqlite3_column_count(st); i++)
			(void)sqlite3_column_text(st, i);
		rows++;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "bench_sqlite_ceiling: '%s': %s\n", SQL[q], sqlite3_errmsg(c->db));
		return -1;
	}
	return rows;
}

#define BT(st, i, s) sqlite3_bind_text((st), (i), (s), -1, SQLITE_STATIC)
#define BI(st, i, v) sqlite3_bind_int64((st), (i), (v))

static const int64_t PRICE = 1000000;           /* 1.00 per GPU-hour */
static const int64_t RUNTIME_US = 3600000000LL; /* 1 hour */
static const int64_t PERIOD_START = 1767225600; /* 2026-01-01 */
static const int64_t PERIOD_END = 1798761600;   /* 2027-01-01 */

/* One allocation transaction; 0 or -1 (rolled back). */
static int allocate_once(struct conn *c, int thread, uint64_t n)
{
	sqlite3_stmt **st = c->st;
	char id[64], after[1024];
	int64_t now = (int64_t)time(NULL);
	int ok = 0;

	snprintf(id, sizeof(id), "alloc_t%02d_%020" PRIu64, thread, n);
	if (pthread_mutex_lock(&wlock) != 0)
		return -1;
	if (run(c, Q_BEGIN) < 0)
		goto fail;
	BT(st[Q_TEAM], 1, "bench");
	if (run(c, Q_TEAM) != 1)
		goto fail;
	BI(st[Q_DUE], 1, now);
	if (run(c, Q_DUE) < 0)
		goto fail;
	BT(st[Q_GPU], 1, "bench-gpu");
	if (run(c, Q_GPU) != 1)
		goto fail;
	BT(st[Q_PERIOD_ENSURE], 1, "bench");
	BI(st[Q_PERIOD_ENSURE], 2, PERIOD_START);
	BI(st[Q_PERIOD_ENSURE], 3, PERIOD_END);
	if (run(c, Q_PERIOD_ENSURE) < 0)
		goto fail;
	BT(st[Q_PERIOD_GET], 1, "bench");
	BI(st[Q_PERIOD_GET], 2, PERIOD_START);
	if (run(c, Q_PERIOD_GET) != 1)
		goto fail;
	sqlite3_stmt *a = st[Q_ALLOC_INSERT];
	BT(a, 1, id);
	BT(a, 2, "bench");
	BT(a, 3, "bench");
	BT(a, 4, "bench-gpu");
	BI(a, 5, 1);
	BI(a, 6, RUNTIME_US);
	BI(a, 7, PRICE);
	BI(a, 8, PRICE);
	BT(a, 9, "approved");
	BT(a, 10, "benchmark");
	BT(a, 11, "{}");
	BT(a, 12, "tok_benchadmin00000");
	BI(a, 13, PERIOD_START);
	BI(a, 14, now);
	BI(a, 15, now + 86400);
	BI(a, 16, 0);
	BI(a, 17, 0);
	BI(a, 18, -1);
	if (run(c, Q_ALLOC_INSERT) < 0)
		goto fail;
	BI(st[Q_PERIOD_MOVE], 1, PRICE);
	BI(st[Q_PERIOD_MOVE], 2, 0);
	BT(st[Q_PERIOD_MOVE], 3, "bench");
	BI(st[Q_PERIOD_MOVE], 4, PERIOD_START);
	if (run(c, Q_PERIOD_MOVE) < 0 || sqlite3_changes(c->db) != 1)
		goto fail;
	BI(st[Q_GPU_MOVE], 1, 1);
	BT(st[Q_GPU_MOVE], 2, "bench-gpu");
	if (run(c, Q_GPU_MOVE) < 0 || sqlite3_changes(c->db) != 1)
		goto fail;
	/* ledger_verify: the defensive re-read. */
	BT(st[Q_PERIOD_GET], 1, "bench");
	BI(st[Q_PERIOD_GET], 2, PERIOD_START);
	if (run(c, Q_PERIOD_GET) != 1)
		goto fail;
	BT(st[Q_GPU], 1, "bench-gpu");
	if (run(c, Q_GPU) != 1)
		goto fail;
	/* The audit row carries the allocation as JSON, like alloc_json(). */
	snprintf(after, sizeof(after),
		 "{\"id\":\"%s\",\"team\":\"bench\",\"project\":\"bench\",\"gpu_type\":\"bench-gpu\","
		 "\"gpu_count\":1,\"max_runtime_us\":%" PRId64 ",\"price_per_gpu_hour\":\"1.00\","
		 "\"estimated_cost\":\"1.00\",\"status\":\"approved\",\"purpose\":\"benchmark\","
		 "\"labels\":{},\"created_by\":\"tok_benchadmin00000\",\"period_start\":%" PRId64
		 ",\"approved_at\":%" PRId64 ",\"expires_at\":%" PRId64
		 ",\"started_at\":0,\"ended_at\":0,\"actual_cost\":null}",
		 id, RUNTIME_US, PERIOD_START, now, now + 86400);
	sqlite3_stmt *au = st[Q_AUDIT];
	BI(au, 1, now);
	BT(au, 2, "tok_benchadmin00000");
	BT(au, 3, "bootstrap admin");
	BT(au, 4, "allocation.approve");
	BT(au, 5, "allocation");
	BT(au, 6, id);
	BT(au, 7, "bench");
	sqlite3_bind_null(au, 8);
	BT(au, 9, after);
	if (run(c, Q_AUDIT) < 0)
		goto fail;
	if (run(c, Q_COMMIT) < 0)
		goto fail;
	ok = 1;
fail:
	if (!ok && !sqlite3_get_autocommit(c->db))
		(void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&wlock);
	return ok ? 0 : -1;
}

static int setup(void)
{
	struct conn c;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/plinth-ceiling-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "bench_sqlite_ceiling: mkdtemp: %s\n", strerror(errno));
		dir[0] = '\0';
		return -1;
	}
	snprintf(db_path, sizeof(db_path), "%s/ceiling.db", dir);
	if (conn_open(&c, false) != 0)
		return -1;
	char *err = NULL;
	int rc = sqlite3_exec(c.db, SCHEMA, NULL, NULL, &err);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c.db,
				  "INSERT INTO teams VALUES ('bench', 'Bench', 1000000000000000,"
				  " 'yearly', '[0.5,0.8,1.0]', 0, 0);"
				  "INSERT INTO gpu_types VALUES ('bench-gpu', 'Bench GPU', 1000000,"
				  " '2026-07-20', 'admin', 1000000000, 0, 0);",
				  NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fprintf(stderr, "bench_sqlite_ceiling: schema: %s\n", err ? err : "?");
	sqlite3_free(err);
	conn_close(&c);
	return rc == SQLITE_OK ? 0 : -1;
}

static void cleanup(void)
{
	char p[400];
	if (dir[0] == '\0')
		return;
	const char *sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", db_path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
}

struct worker {
	pthread_t th;
	int id;
	int64_t deadline_us;
	int64_t *lat; /* microseconds per transaction, owned by the worker */
	size_t nlat, cap;
	long errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct conn c;
	uint64_t n = 0;
	static _Atomic uint64_t serial; /* ids unique across levels */
	if (conn_open(&c, true) != 0) {
		w->errors++;
		return NULL;
	}
	while (mono_us() < w->deadline_us) {
		int64_t t0 = mono_us();
		n = serial++;
		if (allocate_once(&c, w->id, n) != 0) {
			w->errors++;
			continue;
		}
		int64_t dt = mono_us() - t0;
		if (w->nlat == w->cap) {
			size_t ncap = w->cap ? w->cap * 2 : 4096;
			int64_t *nl = realloc(w->lat, ncap * sizeof(*nl));
			if (nl == NULL) {
				w->errors++;
				break;
			}
			w->lat = nl;
			w->cap = ncap;
		}
		w->lat[w->nlat++] = dt;
	}
	conn_close(&c);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int run_level(int threads, double seconds)
{
	struct worker *w = calloc((size_t)threads, sizeof(*w));
	int64_t *all = NULL; /* owned here */
	int ret = -1, started = 0;
	if (w == NULL)
		return -1;
	int64_t t0 = mono_us();
	for (int i = 0; i < threads; i++) {
		w[i].id = i;
		w[i].deadline_us = t0 + (int64_t)(seconds * 1e6);
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	double elapsed = (double)(mono_us() - t0) / 1e6;
	if (started != threads) {
		fprintf(stderr, "bench_sqlite_ceiling: pthread_create failed\n");
		goto out;
	}
	size_t total = 0, k = 0;
	long errors = 0;
	for (int i = 0; i < threads; i++) {
		total += w[i].nlat;
		errors += w[i].errors;
	}
	all = malloc((total ? total : 1) * sizeof(*all));
	if (all == NULL)
		goto out;
	for (int i = 0; i < threads; i++) {
		memcpy(all + k, w[i].lat, w[i].nlat * sizeof(*all));
		k += w[i].nlat;
	}
	qsort(all, total, sizeof(*all), cmp_i64);
	int64_t p50 = total ? all[(total - 1) * 50 / 100] : 0;
	int64_t p99 = total ? all[(total - 1) * 99 / 100] : 0;
	double rate = elapsed > 0 ? (double)total / elapsed : 0;
	printf("sqlite  %2d threads: %8.0f tx/s  p50 %6.2f ms  p99 %6.2f ms  (%zu tx, %ld errors)\n",
	       threads, rate, (double)p50 / 1000, (double)p99 / 1000, total, errors);
	printf("RESULT clients=%d tx=%zu errors=%ld seconds=%.3f rate=%.1f p50_us=%lld p99_us=%lld\n",
	       threads, total, errors, elapsed, rate, (long long)p50, (long long)p99);
	fflush(stdout);
	ret = 0;
out:
	for (int i = 0; i < threads; i++)
		free(w[i].lat);
	free(w);
	free(all);
	return ret;
}

int main(int argc, char **argv)
{
	int ret = 1;
	if (argc > 2) {
		fprintf(stderr, "usage: bench_sqlite_ceiling [SECONDS_PER_LEVEL]\n");
		return 2;
	}
	double seconds = argc == 2 ? strtod(argv[1], NULL) : 5.0;
	if (!(seconds > 0 && seconds <= 3600)) {
		fprintf(stderr, "bench_sqlite_ceiling: SECONDS_PER_LEVEL must be in (0, 3600]\n");
		return 2;
	}
	if (setup() != 0)
		goto out;
	printf("sqlite %s at %s, %.1f s per level\n", sqlite3_libversion(), db_path, seconds);
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (run_level(levels[i], seconds) != 0)
			goto out;
	ret = 0;
out:
	cleanup();
	return ret;
}
