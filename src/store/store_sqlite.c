/*
 * store_sqlite.c - the SQLite backend of struct store_ops.
 *
 * Every write is one `BEGIN IMMEDIATE` ... `COMMIT` transaction that holds
 * the domain rows, the audit row and (for allocate) the idempotency row, so
 * a crash or an error at any statement leaves nothing half done.  The ledger
 * rule is evaluated inside that transaction with ledger_decide().  allocate
 * is group-committed: each call is one SAVEPOINT of a batch transaction on
 * the writer connection and answers only after that batch's COMMIT.
 *
 * It must never: keep a transaction open across calls (a batch stays open
 * only while one of its members is still waiting), execute a statement
 * without going through q_step() (the fault-injection point), store a token
 * secret or put a token hash in the audit log, or use floating point money.
 */
#include "store/store.h"
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cost.h"
#include "core/err.h"
#include "core/ledger.h"
#include "core/lifecycle.h"
#include "core/money.h"
#include "core/period.h"
#include "core/timeutil.h"
#include "util/util.h"

#define SQ_CACHE_MAX 64

struct sq_store {
	struct store base; /* must be first */
	char *path;        /* owned */
	/*
	 * The writer token serialises this process's writers around BEGIN
	 * IMMEDIATE..COMMIT so our own threads queue here instead of in
	 * SQLite's sleeping busy handler; other processes still meet
	 * busy_timeout.  wlock guards the fields below; the token is `wbusy`.
	 *
	 * Group commit (allocate): the token holder runs its allocation in a
	 * SAVEPOINT of the open batch transaction on `wconn`, queues a waiter
	 * and, if other threads want the token and the batch is below
	 * SQ_BATCH_MAX, hands the token on and sleeps until the batch's COMMIT;
	 * otherwise it COMMITs and wakes every member with the outcome.  Any
	 * other writer commits an open batch first (batch_flush).
	 */
	pthread_mutex_t wlock;
	pthread_cond_t wturn; /* the token became free */
	pthread_cond_t wdone; /* a batch finished */
	bool wbusy;           /* the writer token is held */
	int wwant;            /* threads waiting for the token */
	/* Owned by the token holder (read/written only while holding it): */
	struct sq_conn *wconn; /* the dedicated writer connection, opened lazily */
	bool batch_open;       /* BEGIN IMMEDIATE done on wconn, not yet committed */
	bool batch_bad;        /* a member could not undo its part: roll back all */
	/* Guarded by wlock: */
	struct sq_waiter *batch; /* members of the open batch */
	int batch_n;
	long commits;   /* batch COMMITs that succeeded (store_sqlite_stats) */
	long decisions; /* allocate calls those COMMITs made durable */
};

#define SQ_BATCH_MAX 64

/* A member of a batch, on its thread's stack until the batch finished. */
struct sq_waiter {
	struct sq_waiter *next;
	int rc;    /* the member's own result; ERR_STORE etc. if the COMMIT failed */
	bool keep; /* its part is in the batch (to be committed) */
	bool done; /* the batch finished; rc is final */
	bool committed; /* keep, and the batch's COMMIT succeeded */
	char err[STORE_DETAIL_LEN];
};

struct sq_cached {
	const char *sql; /* identity: the address of a static SQL string */
	sqlite3_stmt *st;
};

struct sq_conn {
	struct store_conn base; /* must be first */
	sqlite3 *db;
	struct sq_cached cache[SQ_CACHE_MAX];
	size_t ncache;
	bool locked; /* holds the store's writer token */
};

static const char SYSTEM_ACTOR[] = "system";

/* ---- errors ------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void conn_err(struct sq_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->base.err, sizeof(c->base.err), fmt, ap);
	va_end(ap);
}

/* Maps an SQLite failure to our codes and records sqlite3_errmsg. */
static int db_fail(struct sq_conn *c, int src, const char *what)
{
	int ext = sqlite3_extended_errcode(c->db);

	conn_err(c, "%s: %s", what, sqlite3_errmsg(c->db));
	switch (src & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return ERR_UNAVAILABLE;
	case SQLITE_FULL: /* the disk (or max_page_count): retry later, not a bug */
		store_note_write(c->base.store, true);
		return ERR_UNAVAILABLE;
	default:
		break;
	}
	if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE)
		return ERR_CONFLICT;
	return ERR_STORE;
}

static void detail_out(struct sq_conn *c, int rc, char *detail)
{
	if (!detail || rc == 0)
		return;
	if (c->base.err[0])
		snprintf(detail, STORE_DETAIL_LEN, "%s", c->base.err);
	else
		snprintf(detail, STORE_DETAIL_LEN, "%s", err_name(rc));
}

static struct sq_conn *sq_conn_of(struct store_conn *bc)
{
	return (struct sq_conn *)bc;
}

static struct sq_store *sq_store_of(struct sq_conn *c)
{
	return (struct sq_store *)c->base.store;
}

/* ---- statements -------------------------------------------------------- */

/*
 * Prepares sql.  With cache, the statement is kept for the connection's life
 * (keyed by the address of the static string) and handed out reset.  The
 * caller gives it back with q_close() either way.
 */
static int q_prepare(struct sq_conn *c, const char *sql, bool cache, sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;
	int src;

	if (cache) {
		for (size_t i = 0; i < c->ncache; i++) {
			if (c->cache[i].sql == sql) {
				*out = c->cache[i].st;
				return 0;
			}
		}
	}
	src = sqlite3_prepare_v3(c->db, sql, -1, cache ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL);
	if (src != SQLITE_OK) {
		sqlite3_finalize(st);
		return db_fail(c, src, "prepare");
	}
	if (cache && c->ncache < SQ_CACHE_MAX) {
		c->cache[c->ncache].sql = sql;
		c->cache[c->ncache].st = st;
		c->ncache++;
	}
	*out = st;
	return 0;
}

/* Gives a statement back: cached ones are reset, others finalized. */
static void q_close(struct sq_conn *c, sqlite3_stmt *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < c->ncache; i++) {
		if (c->cache[i].st == st) {
			/* The step's error was already reported; reset only re-arms. */
			(void)sqlite3_reset(st);
			(void)sqlite3_clear_bindings(st);
			return;
		}
	}
	(void)sqlite3_finalize(st);
}

/*
 * Binds parameters from *idx on: 't' const char * (NULL binds NULL),
 * 'i' int64_t.  Advances *idx.
 */
static int q_bindv(struct sq_conn *c, sqlite3_stmt *st, int *idx, const char *fmt, va_list ap)
{
	for (const char *f = fmt; *f; f++) {
		int src;

		if (*f == 't') {
			const char *v = va_arg(ap, const char *);
			src = v ? sqlite3_bind_text(st, *idx, v, -1, SQLITE_TRANSIENT)
				: sqlite3_bind_null(st, *idx);
		} else if (*f == 'i') {
			src = sqlite3_bind_int64(st, *idx, va_arg(ap, int64_t));
		} else {
			conn_err(c, "internal: bad bind format '%c'", *f);
			return ERR_STORE;
		}
		if (src != SQLITE_OK)
			return db_fail(c, src, "bind");
		(*idx)++;
	}
	return 0;
}

static int q_bind(struct sq_conn *c, sqlite3_stmt *st, int *idx, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = q_bindv(c, st, idx, fmt, ap);
	va_end(ap);
	return rc;
}

/* Prepares (cached) and binds from parameter 1. */
static int q_open(struct sq_conn *c, const char *sql, sqlite3_stmt **out, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int idx = 1;
	int rc;

	rc = q_prepare(c, sql, true, &st);
	if (rc != 0)
		return rc;
	va_start(ap, fmt);
	rc = q_bindv(c, st, &idx, fmt, ap);
	va_end(ap);
	if (rc == 0 && idx - 1 != sqlite3_bind_parameter_count(st)) {
		conn_err(c, "internal: %d parameters bound, %d expected", idx - 1,
			 sqlite3_bind_parameter_count(st));
		rc = ERR_STORE;
	}
	if (rc != 0) {
		q_close(c, st);
		return rc;
	}
	*out = st;
	return 0;
}

/*
 * THE one place a statement is executed: 1 = a row, 0 = done, < 0 error.
 * store_fault_hit() makes it fail on demand so tests can prove rollback.
 */
static int q_step(struct sq_conn *c, sqlite3_stmt *st)
{
	int src;

	if (store_fault_hit(c->base.store)) {
		conn_err(c, "injected fault");
		return ERR_STORE;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_ROW)
		return 1;
	if (src == SQLITE_DONE)
		return 0;
	return db_fail(c, src, "step");
}

/* Runs a cached statement to completion; returns rows changed or < 0. */
static int q_exec(struct sq_conn *c, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int idx = 1;
	int rc;

	rc = q_prepare(c, sql, true, &st);
	if (rc != 0)
		return rc;
	va_start(ap, fmt);
	rc = q_bindv(c, st, &idx, fmt, ap);
	va_end(ap);
	if (rc == 0 && idx - 1 != sqlite3_bind_parameter_count(st)) {
		conn_err(c, "internal: %d parameters bound, %d expected", idx - 1,
			 sqlite3_bind_parameter_count(st));
		rc = ERR_STORE;
	}
	while (rc == 0) {
		rc = q_step(c, st);
		if (rc == 1)
			rc = 0; /* ignore rows (PRAGMA echoes) */
		else if (rc == 0)
			break;
	}
	q_close(c, st);
	if (rc < 0)
		return rc;
	return sqlite3_changes(c->db);
}

/* Runs a multi-statement script (migrations); also a fault point. */
static int q_script(struct sq_conn *c, const char *sql)
{
	char *msg = NULL;
	int src;

	if (store_fault_hit(c->base.store)) {
		conn_err(c, "injected fault");
		return ERR_STORE;
	}
	src = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
	if (src != SQLITE_OK) {
		int rc = db_fail(c, src, "exec");
		if (msg)
			conn_err(c, "exec: %s", msg);
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

/* ---- transactions ------------------------------------------------------ */

static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_COMMIT[] = "COMMIT";

/* Blocks until this thread holds the writer token (see struct sq_store). */
static int writer_take(struct sq_store *s)
{
	if (pthread_mutex_lock(&s->wlock) != 0)
		return ERR_STORE;
	s->wwant++;
	while (s->wbusy)
		pthread_cond_wait(&s->wturn, &s->wlock);
	s->wwant--;
	s->wbusy = true;
	pthread_mutex_unlock(&s->wlock);
	return 0;
}

static void writer_give(struct sq_store *s)
{
	pthread_mutex_lock(&s->wlock);
	s->wbusy = false;
	pthread_cond_signal(&s->wturn);
	pthread_mutex_unlock(&s->wlock);
}

static void batch_finish(struct sq_store *s);

/* write: takes the writer token (committing an open allocate batch first) and
 * BEGIN IMMEDIATE; else a read snapshot. */
static int tx_begin(struct sq_conn *c, bool write)
{
	struct sq_store *s = sq_store_of(c);
	int n;

	if (write) {
		if (writer_take(s) != 0) {
			conn_err(c, "cannot take the write lock");
			return ERR_STORE;
		}
		c->locked = true;
		batch_finish(s);
	}
	n = q_exec(c, write ? SQL_BEGIN_IMMEDIATE : SQL_BEGIN, "");
	if (n < 0) {
		if (c->locked) {
			c->locked = false;
			writer_give(s);
		}
		return n;
	}
	c->base.in_tx = true;
	return 0;
}

/* Commits (or rolls back); returns 0 or the commit's failure (then rolled back). */
static int tx_finish(struct sq_conn *c, bool commit)
{
	struct sq_store *s = sq_store_of(c);
	int rc = 0;

	if (!c->base.in_tx)
		return 0;
	if (commit) {
		int n = q_exec(c, SQL_COMMIT, "");
		if (n < 0)
			rc = n;
		else if (c->locked)
			store_note_write(c->base.store, false); /* writes work (again) */
	}
	if ((!commit || rc != 0) && !sqlite3_get_autocommit(c->db)) {
		/* ROLLBACK is the recovery path: it is never fault-injected, and
		 * if even it fails SQLite rolls back when the connection closes. */
		(void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	c->base.in_tx = false;
	if (c->locked) {
		c->locked = false;
		writer_give(s);
	}
	return rc;
}

/* ---- schema ------------------------------------------------------------ */

static const char SQL_V1[] =
	"CREATE TABLE tokens("
	" id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,"
	" teams_json TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,"
	" created_at INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0);"
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
	"CREATE TABLE idempotency("
	" token_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,"
	" status INTEGER NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,"
	" PRIMARY KEY (token_id, key));"
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

/*
 * Version 2 (cost visibility): daily cost rollups kept on write in the same
 * transaction as each completion (by approval day for team/project/GPU-type
 * totals, by usage day for day totals), and budget alerts, one row per
 * (team, period, threshold, webhook URL).  The rollups are backfilled from
 * the allocations by migrate_after() in the same transaction.
 */
static const char SQL_V2[] =
	"CREATE TABLE cost_daily_approved("
	" day INTEGER NOT NULL, team_id TEXT NOT NULL, project TEXT NOT NULL,"
	" gpu_type TEXT NOT NULL, spent INTEGER NOT NULL, gpu_microhours INTEGER NOT NULL,"
	" PRIMARY KEY (day, team_id, project, gpu_type)) WITHOUT ROWID;"
	"CREATE TABLE cost_daily_usage("
	" day INTEGER NOT NULL, team_id TEXT NOT NULL, project TEXT NOT NULL,"
	" gpu_type TEXT NOT NULL, spent INTEGER NOT NULL, gpu_microhours INTEGER NOT NULL,"
	" PRIMARY KEY (day, team_id, project, gpu_type)) WITHOUT ROWID;"
	"CREATE INDEX allocations_status_approved ON allocations(status, approved_at);"
	"CREATE INDEX allocations_status_ended ON allocations(status, ended_at);"
	"CREATE TABLE alerts("
	" team_id TEXT NOT NULL, period_start INTEGER NOT NULL, threshold_ppm INTEGER NOT NULL,"
	" url TEXT NOT NULL, budget INTEGER NOT NULL, committed INTEGER NOT NULL,"
	" crossed_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt_at INTEGER NOT NULL, delivered_at INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT NOT NULL DEFAULT '',"
	" PRIMARY KEY (team_id, period_start, threshold_ppm, url));"
	"CREATE INDEX alerts_due ON alerts(delivered_at, next_attempt_at);";

/* Migration i brings the schema to version i + 1.  Append only. */
/* Version 3 (self-service jobs, api_jobs.c): one row per POST /v1/jobs. */
static const char SQL_V3[] =
	"CREATE TABLE jobs("
	" id TEXT PRIMARY KEY, token_id TEXT NOT NULL, idem_key TEXT NOT NULL DEFAULT '',"
	" request_hash TEXT NOT NULL, team_id TEXT NOT NULL, name TEXT NOT NULL,"
	" allocation_id TEXT NOT NULL DEFAULT '', status INTEGER NOT NULL DEFAULT 0,"
	" body TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX jobs_idem ON jobs(token_id, idem_key) WHERE idem_key <> '';";

/*
 * Version 4 (cost visibility): monthly totals by approval month beside the
 * daily ones, so a year of spend per team reads ~12 x groups rows instead
 * of ~365 x groups.  Backfilled by migrate_after() like version 2.
 */
static const char SQL_V4[] =
	"CREATE TABLE cost_monthly_approved("
	" month INTEGER NOT NULL, team_id TEXT NOT NULL, project TEXT NOT NULL,"
	" gpu_type TEXT NOT NULL, spent INTEGER NOT NULL, gpu_microhours INTEGER NOT NULL,"
	" PRIMARY KEY (month, team_id, project, gpu_type)) WITHOUT ROWID;";

/*
 * Version 5 (issue 13): when a job's manifests left the GitOps repository
 * (0 = not yet).  A job that answered 201 with an ended allocation and 0
 * here is due for removal: the sweeper retries it until it is done.
 */
static const char SQL_V5[] =
	"ALTER TABLE jobs ADD COLUMN manifests_removed_at INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX jobs_manifests_live ON jobs(allocation_id)"
	" WHERE status = 201 AND manifests_removed_at = 0;";

static const char *const migrations[] = {SQL_V1, SQL_V2, SQL_V3, SQL_V4, SQL_V5};
static int migrate_after(struct sq_conn *c, int64_t version);
#define SQ_NMIGRATIONS ((int64_t)(sizeof(migrations) / sizeof(migrations[0])))

static const char SQL_MIG_TABLE[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations("
	" version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)";
static const char SQL_MIG_VERSION[] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
static const char SQL_MIG_INSERT[] = "INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)";

/* Applies each missing migration in its own transaction; refuses a newer db. */
static int sq_migrate(struct store_conn *bc, char *detail)
{
	struct sq_conn *c = sq_conn_of(bc);
	sqlite3_stmt *st = NULL;
	int rc = 0;

	c->base.err[0] = '\0';
	for (;;) {
		int64_t version = 0;
		bool done = false;
		int n;

		rc = tx_begin(c, true);
		if (rc != 0)
			goto out;
		n = q_exec(c, SQL_MIG_TABLE, "");
		if (n < 0) {
			rc = n;
			goto step_out;
		}
		rc = q_open(c, SQL_MIG_VERSION, &st, "");
		if (rc != 0)
			goto step_out;
		rc = q_step(c, st);
		if (rc == 1) {
			version = sqlite3_column_int64(st, 0);
			rc = 0;
		} else if (rc == 0) {
			rc = ERR_STORE;
		}
		q_close(c, st);
		st = NULL;
		if (rc != 0)
			goto step_out;
		if (version > SQ_NMIGRATIONS) {
			conn_err(c, "database schema version %lld is newer than this plinth (%lld)",
				 (long long)version, (long long)SQ_NMIGRATIONS);
			rc = ERR_STORE;
			goto step_out;
		}
		if (version == SQ_NMIGRATIONS) {
			done = true;
			goto step_out;
		}
		rc = q_script(c, migrations[version]);
		if (rc == 0)
			rc = migrate_after(c, version + 1);
		if (rc != 0)
			goto step_out;
		n = q_exec(c, SQL_MIG_INSERT, "ii", (int64_t)(version + 1), util_now());
		if (n < 0)
			rc = n;
step_out:
		{
			int fin = tx_finish(c, rc == 0);
			if (rc == 0)
				rc = fin;
		}
		if (rc != 0 || done)
			break;
	}
out:
	detail_out(c, rc, detail);
	return rc;
}

/* ---- rows -------------------------------------------------------------- */

#define TOKEN_COLS "id, name, role, teams_json, created_at, revoked_at"
#define GPU_COLS "id, name, price_micros, price_date, price_source, capacity, allocated, updated_at"
#define TEAM_COLS "id, display_name, budget_micros, period, thresholds_json, created_at, updated_at"
#define ALLOC_COLS                                                                              \
	"id, team_id, project, gpu_type, gpu_count, max_runtime_us, price_micros,"              \
	" estimated_micros, status, purpose, labels_json, created_by, period_start, approved_at," \
	" expires_at, started_at, ended_at, actual_micros"

/* Copies a text column into buf (len bytes): 0, or -1 when it does not fit. */
static int col_copy(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	size_t n = t ? strlen((const char *)t) : 0;

	int rc = 0;

	if (n >= len) { /* never a cut value: the row is reported as bad */
		n = len - 1;
		rc = -1;
	}
	if (n)
		memcpy(buf, t, n);
	buf[n] = '\0';
	return rc;
}

static int row_gpu(sqlite3_stmt *st, void *out)
{
	int bad = 0;
	struct gpu_type *g = out;

	memset(g, 0, sizeof(*g));
	bad |= col_copy(st, 0, g->id, sizeof(g->id));
	bad |= col_copy(st, 1, g->name, sizeof(g->name));
	g->price_micros = sqlite3_column_int64(st, 2);
	bad |= col_copy(st, 3, g->price_date, sizeof(g->price_date));
	bad |= col_copy(st, 4, g->price_source, sizeof(g->price_source));
	g->capacity = sqlite3_column_int64(st, 5);
	g->allocated = sqlite3_column_int64(st, 6);
	g->updated_at = sqlite3_column_int64(st, 7);
	return bad ? ERR_STORE : 0;
}

static int row_team(sqlite3_stmt *st, void *out)
{
	int bad = 0;
	struct team *t = out;
	char period[32];

	memset(t, 0, sizeof(*t));
	bad |= col_copy(st, 0, t->id, sizeof(t->id));
	bad |= col_copy(st, 1, t->display_name, sizeof(t->display_name));
	t->budget_micros = sqlite3_column_int64(st, 2);
	bad |= col_copy(st, 3, period, sizeof(period));
	bad |= col_copy(st, 4, t->thresholds_json, sizeof(t->thresholds_json));
	t->created_at = sqlite3_column_int64(st, 5);
	t->updated_at = sqlite3_column_int64(st, 6);
	return !bad && period_kind_parse(period, &t->period) == 0 ? 0 : ERR_STORE;
}

static int row_alloc(sqlite3_stmt *st, void *out)
{
	int bad = 0, cut = 0;
	struct allocation *a = out;
	char status[32];

	memset(a, 0, sizeof(*a));
	bad |= col_copy(st, 0, a->id, sizeof(a->id));
	bad |= col_copy(st, 1, a->team, sizeof(a->team));
	bad |= col_copy(st, 2, a->project, sizeof(a->project));
	bad |= col_copy(st, 3, a->gpu_type, sizeof(a->gpu_type));
	a->gpu_count = sqlite3_column_int64(st, 4);
	a->max_runtime_us = sqlite3_column_int64(st, 5);
	a->price_micros = sqlite3_column_int64(st, 6);
	a->estimated_micros = sqlite3_column_int64(st, 7);
	bad |= col_copy(st, 8, status, sizeof(status));
	cut |= col_copy(st, 9, a->purpose, sizeof(a->purpose));
	cut |= col_copy(st, 10, a->labels_json, sizeof(a->labels_json));
	bad |= col_copy(st, 11, a->created_by, sizeof(a->created_by));
	a->period_start = sqlite3_column_int64(st, 12);
	a->approved_at = sqlite3_column_int64(st, 13);
	a->expires_at = sqlite3_column_int64(st, 14);
	a->started_at = sqlite3_column_int64(st, 15);
	a->ended_at = sqlite3_column_int64(st, 16);
	a->actual_micros = sqlite3_column_int64(st, 17);
	/* A cut text leaves the money readable (costs, expiry); the row cannot
	 * be rendered (store_alloc_unreadable), which "" labels say. */
	if (cut)
		a->labels_json[0] = '\0';
	return !bad && alloc_status_parse(status, &a->status) == 0 ? 0 : ERR_STORE;
}

/* Loads the one row `sql` selects for key: 0, ERR_NOT_FOUND or an error. */
static int load_one(struct sq_conn *c, const char *sql, const char *key,
		    int (*row)(sqlite3_stmt *, void *), void *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = q_open(c, sql, &st, "t", key);
	if (rc != 0)
		return rc;
	rc = q_step(c, st);
	if (rc == 1) {
		rc = row(st, out);
		if (rc != 0)
			conn_err(c, "corrupt row for '%s'", key);
	} else if (rc == 0) {
		rc = ERR_NOT_FOUND;
	}
	q_close(c, st);
	return rc;
}

static const char SQL_GPU_BY_ID[] = "SELECT " GPU_COLS " FROM gpu_types WHERE id = ?";
static const char SQL_TEAM_BY_ID[] = "SELECT " TEAM_COLS " FROM teams WHERE id = ?";
static const char SQL_ALLOC_BY_ID[] = "SELECT " ALLOC_COLS " FROM allocations WHERE id = ?";

/* ---- audit ------------------------------------------------------------- */

static const char SQL_AUDIT_INSERT[] =
	"INSERT INTO audit(at, actor_id, actor_name, action, object_type, object_id, team,"
	" before_json, after_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

/* Appends one audit row; before/after are records rendered by fn (NULL = none). */
static int audit_rec(struct sq_conn *c, const struct actor *who, int64_t at, const char *action,
		     const char *type, const char *id, const char *team, json_t *(*fn)(const void *),
		     const void *before, const void *after)
{
	char *b = NULL, *a = NULL;
	int rc, n;

	rc = store_audit_render(fn, before, after, &b, &a);
	if (rc != 0)
		goto out;
	n = q_exec(c, SQL_AUDIT_INSERT, "itttttttt", at, who ? who->token_id : SYSTEM_ACTOR,
		   who ? who->name : SYSTEM_ACTOR, action, type, id, team ? team : "", b, a);
	rc = n < 0 ? n : 0;
out:
	if (rc == ERR_NOMEM)
		conn_err(c, "out of memory rendering the audit row");
	free(b);
	free(a);
	return rc;
}

/* ---- connections ------------------------------------------------------- */

static int sq_conn_open(struct store *bs, struct store_conn **out)
{
	struct sq_store *s = (struct sq_store *)bs;
	struct sq_conn *c = NULL;
	int src, rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return ERR_NOMEM;
	c->base.store = bs;
	/* NOMUTEX: a connection is used by one thread at a time (pool rule). */
	src = sqlite3_open_v2(s->path, &c->db,
			      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src != SQLITE_OK) {
		rc = (src & 0xff) == SQLITE_BUSY ? ERR_UNAVAILABLE : ERR_STORE;
		goto fail;
	}
	src = sqlite3_busy_timeout(c->db, 5000);
	if (src != SQLITE_OK) {
		rc = ERR_STORE;
		goto fail;
	}
	/* Connection setup is not a store operation, so it bypasses the fault
	 * countdown (a lazily opened connection must not shift it). */
	src = sqlite3_exec(c->db,
			   "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
			   NULL, NULL, NULL);
	if (src != SQLITE_OK) {
		rc = (src & 0xff) == SQLITE_BUSY ? ERR_UNAVAILABLE : ERR_STORE;
		goto fail;
	}
	*out = &c->base;
	return 0;
fail:
	sqlite3_close(c->db);
	free(c);
	return rc;
}

static void sq_conn_close(struct store_conn *bc)
{
	struct sq_conn *c = sq_conn_of(bc);

	if (!c)
		return;
	for (size_t i = 0; i < c->ncache; i++)
		(void)sqlite3_finalize(c->cache[i].st);
	if (sqlite3_close(c->db) != SQLITE_OK)
		(void)sqlite3_close_v2(c->db); /* closes when the last statement goes */
	free(c);
}

static void sq_destroy(struct store *bs)
{
	struct sq_store *s = (struct sq_store *)bs;

	if (!s)
		return;
	if (s->wconn)
		sq_conn_close(&s->wconn->base);
	pthread_cond_destroy(&s->wturn);
	pthread_cond_destroy(&s->wdone);
	pthread_mutex_destroy(&s->wlock);
	free(s->path);
	free(s);
}

/* ---- tokens ------------------------------------------------------------ */

/* ---- GPU types --------------------------------------------------------- */

static const char SQL_GPU_MOVE[] = "UPDATE gpu_types SET allocated = allocated + ? WHERE id = ?";

/* ---- teams ------------------------------------------------------------- */

static const char SQL_PERIOD_GET[] =
	"SELECT spent, reserved FROM team_periods WHERE team_id = ? AND period_start = ?";
static const char SQL_PERIOD_ENSURE[] =
	"INSERT OR IGNORE INTO team_periods(team_id, period_start, period_end, spent, reserved)"
	" VALUES (?, ?, ?, 0, 0)";
static const char SQL_PERIOD_MOVE[] =
	"UPDATE team_periods SET reserved = reserved + ?, spent = spent + ?"
	" WHERE team_id = ? AND period_start = ?";

/*
 * Appends " AND col IN (?,...)" for a scope list to sql (malloc'd, grown);
 * n == 0 appends " AND 0" (an empty scope sees nothing).
 */
static int sql_scope(char **sql, const char *col, size_t n)
{
	size_t len = strlen(*sql), extra = strlen(col) + 16 + 2 * n;
	char *s = realloc(*sql, len + extra);

	if (!s)
		return ERR_NOMEM;
	*sql = s;
	if (n == 0) {
		snprintf(s + len, extra, " AND 0");
		return 0;
	}
	len += (size_t)snprintf(s + len, extra, " AND %s IN (", col);
	for (size_t i = 0; i < n; i++) {
		s[len++] = i ? ',' : '?';
		if (i)
			s[len++] = '?';
	}
	s[len++] = ')';
	s[len] = '\0';
	return 0;
}

static int sql_append(char **sql, const char *more)
{
	size_t len = strlen(*sql), m = strlen(more);
	char *s = realloc(*sql, len + m + 1);

	if (!s)
		return ERR_NOMEM;
	memcpy(s + len, more, m + 1);
	*sql = s;
	return 0;
}

static int bind_scope(struct sq_conn *c, sqlite3_stmt *st, int *idx, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = q_bind(c, st, idx, "t", v[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int period_load(struct sq_conn *c, const char *team, int64_t start, int64_t *spent,
		       int64_t *reserved)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = q_open(c, SQL_PERIOD_GET, &st, "ti", team, start);
	if (rc != 0)
		return rc;
	rc = q_step(c, st);
	if (rc == 1) {
		*spent = sqlite3_column_int64(st, 0);
		*reserved = sqlite3_column_int64(st, 1);
		rc = 0;
	} else if (rc == 0) {
		*spent = 0;
		*reserved = 0;
	}
	q_close(c, st);
	return rc;
}

/* ---- allocations ------------------------------------------------------- */

static const char SQL_ALLOC_INSERT[] =
	"INSERT INTO allocations(" ALLOC_COLS ") VALUES"
	" (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_ALLOC_DUE[] =
	"SELECT " ALLOC_COLS " FROM allocations WHERE status = 'approved' AND expires_at <= ?"
	" ORDER BY expires_at, id";
static const char SQL_ALLOC_END[] =
	"UPDATE allocations SET status = ?, ended_at = ?, actual_micros = ? WHERE id = ?";
static const char SQL_ALLOC_START[] =
	"UPDATE allocations SET status = ?, started_at = ? WHERE id = ?";
static const char SQL_IDEM_GET[] =
	"SELECT request_hash, status, body FROM idempotency WHERE token_id = ? AND key = ?";
static const char SQL_IDEM_INSERT[] =
	"INSERT INTO idempotency(token_id, key, request_hash, status, body, created_at)"
	" VALUES (?, ?, ?, ?, ?, ?)";

/* Moves money in the allocation's own period row; exactly one row must change. */
static int ledger_move(struct sq_conn *c, const struct allocation *a, int64_t d_reserved,
		       int64_t d_spent)
{
	int n = q_exec(c, SQL_PERIOD_MOVE, "iiti", d_reserved, d_spent, a->team, a->period_start);

	if (n < 0)
		return n;
	if (n != 1) {
		conn_err(c, "ledger row of team '%s' is missing", a->team);
		return ERR_STORE;
	}
	return 0;
}

static int gpu_move(struct sq_conn *c, const char *gpu_type, int64_t d)
{
	int n = q_exec(c, SQL_GPU_MOVE, "it", d, gpu_type);

	if (n < 0)
		return n;
	if (n != 1) {
		conn_err(c, "gpu type '%s' is missing", gpu_type);
		return ERR_STORE;
	}
	return 0;
}

/*
 * Cancels or expires a (held) allocation: releases its reservation and GPUs,
 * records the end instant `at`, audits.  *after gets the new record.
 */
static int alloc_release(struct sq_conn *c, const struct actor *who, const struct allocation *a,
			 enum alloc_status to, int64_t at, int64_t now, struct allocation *after)
{
	struct allocation b = *a;
	char action[64];
	int rc, n;

	b.status = to;
	b.ended_at = at;
	b.actual_micros = 0;
	n = q_exec(c, SQL_ALLOC_END, "tiit", alloc_status_name(to), at, (int64_t)0, a->id);
	if (n < 0)
		return n;
	rc = ledger_move(c, a, -a->estimated_micros, 0);
	if (rc != 0)
		return rc;
	rc = gpu_move(c, a->gpu_type, -a->gpu_count);
	if (rc != 0)
		return rc;
	snprintf(action, sizeof(action), "allocation.%s",
		 to == ALLOC_EXPIRED ? "expire" : "cancel");
	rc = audit_rec(c, who, now, action, "allocation", a->id, a->team, store_json_alloc, a, &b);
	if (rc != 0)
		return rc;
	if (after)
		*after = b;
	return 0;
}

/* Expires every approved allocation due at now, inside the caller's transaction. */
static int expire_due_tx(struct sq_conn *c, int64_t now, int *count)
{
	struct allocation *list = NULL; /* owned here */
	size_t n = 0, cap = 0;
	sqlite3_stmt *st = NULL;
	int rc;

	/* Collect first: updating rows under a live SELECT is asking for trouble. */
	rc = q_open(c, SQL_ALLOC_DUE, &st, "i", now);
	if (rc != 0)
		return rc;
	while ((rc = q_step(c, st)) == 1) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct allocation *nl = realloc(list, ncap * sizeof(*list));
			if (!nl) {
				rc = ERR_NOMEM;
				break;
			}
			list = nl;
			cap = ncap;
		}
		rc = row_alloc(st, &list[n]);
		if (rc == ERR_STORE) { /* unreadable: reported and left alone */
			store_bad_row("allocations", (const char *)sqlite3_column_text(st, 0),
				      STORE_BAD_ROW_TEXT);
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		n++;
	}
	q_close(c, st);
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *why = store_alloc_unreadable(&list[i]);
		if (why) { /* its money is still released; the audit row has blanks */
			store_bad_row("allocations", list[i].id, why);
			store_alloc_blank_unreadable(&list[i]);
		}
		rc = alloc_release(c, NULL, &list[i], ALLOC_EXPIRED, list[i].expires_at, now, NULL);
		if (rc != 0)
			goto out;
	}
	if (count)
		*count = (int)n;
out:
	free(list);
	return rc;
}

/* 1 = stored answer with the same hash (replay filled), 0 = none, < 0 error. */
static int idem_lookup(struct sq_conn *c, const char *token_id, const struct idem *idem,
		       int *status, char **body)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = q_open(c, SQL_IDEM_GET, &st, "tt", token_id, idem->key);
	if (rc != 0)
		return rc;
	rc = q_step(c, st);
	if (rc == 1) {
		const char *h = (const char *)sqlite3_column_text(st, 0);
		const char *b = (const char *)sqlite3_column_text(st, 2);

		if (!h || !idem->hash || strcmp(h, idem->hash) != 0) {
			conn_err(c, "Idempotency-Key '%s' was used with a different request",
				 idem->key);
			rc = ERR_IDEMPOTENCY;
		} else {
			*status = sqlite3_column_int(st, 1);
			*body = strdup(b ? b : "");
			rc = *body ? 1 : ERR_NOMEM;
		}
	}
	q_close(c, st);
	return rc;
}

/* Defensive re-read after an approval: the rule can only break by a bug. */
static int ledger_verify(struct sq_conn *c, const struct team *t, int64_t period_start,
			 const char *gpu_type)
{
	struct gpu_type g;
	int64_t spent = 0, reserved = 0;
	int rc;

	rc = period_load(c, t->id, period_start, &spent, &reserved);
	if (rc != 0)
		return rc;
	if (spent > t->budget_micros - reserved) {
		conn_err(c, "ledger invariant violated for team '%s'", t->id);
		return ERR_STORE;
	}
	rc = load_one(c, SQL_GPU_BY_ID, gpu_type, row_gpu, &g);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? ERR_STORE : rc;
	if (g.allocated > g.capacity) {
		conn_err(c, "capacity invariant violated for gpu type '%s'", gpu_type);
		return ERR_STORE;
	}
	return 0;
}

/* ---- group commit (allocate) ------------------------------------------- */

static const char SQL_SAVEPOINT[] = "SAVEPOINT a";
static const char SQL_RELEASE[] = "RELEASE a";

/*
 * Token held: makes sure the writer connection exists and a batch
 * transaction is open on it.  On failure the reason is in caller->base.err.
 */
static int batch_join(struct sq_store *s, struct sq_conn *caller)
{
	int n;

	if (!s->wconn) {
		struct store_conn *bc = NULL;
		int rc = sq_conn_open(&s->base, &bc);

		if (rc != 0) {
			conn_err(caller, "cannot open the writer connection: %s", err_name(rc));
			return rc;
		}
		s->wconn = sq_conn_of(bc);
	}
	if (s->batch_open)
		return 0;
	s->wconn->base.err[0] = '\0';
	n = q_exec(s->wconn, SQL_BEGIN_IMMEDIATE, "");
	if (n < 0) {
		snprintf(caller->base.err, sizeof(caller->base.err), "%s", s->wconn->base.err);
		return n;
	}
	s->batch_open = true;
	return 0;
}

/*
 * Token held: undoes the current member's savepoint.  This is the recovery
 * path (never fault-injected); if it cannot be done, or SQLite already rolled
 * the whole transaction back, the batch is marked bad and nothing of it will
 * be committed.
 */
static void batch_undo_part(struct sq_store *s, bool have_savepoint)
{
	sqlite3 *db = s->wconn->db;

	if (sqlite3_get_autocommit(db)) {
		s->batch_bad = true; /* the batch transaction is gone */
		return;
	}
	if (have_savepoint &&
	    sqlite3_exec(db, "ROLLBACK TO a; RELEASE a", NULL, NULL, NULL) != SQLITE_OK)
		s->batch_bad = true;
}

/*
 * Token held: ends the open batch.  COMMIT when some member kept a part and
 * none broke the batch, else ROLLBACK; then every member gets its final
 * result (a failed COMMIT becomes the result of every member that kept a
 * part) and is woken.
 */
static void batch_finish(struct sq_store *s)
{
	struct sq_conn *w = s->wconn;
	struct sq_waiter *m, *next;
	int rc = 0, kept = 0;

	if (!s->batch_open)
		return;
	pthread_mutex_lock(&s->wlock);
	for (m = s->batch; m; m = m->next)
		kept += m->keep ? 1 : 0;
	pthread_mutex_unlock(&s->wlock);
	w->base.err[0] = '\0';
	if (s->batch_bad) {
		conn_err(w, "a failed statement could not be undone; the batch was rolled back");
		rc = ERR_STORE;
	} else if (kept > 0) {
		int n = q_exec(w, SQL_COMMIT, "");
		if (n < 0)
			rc = n;
	}
	if ((rc != 0 || kept == 0) && !sqlite3_get_autocommit(w->db))
		(void)sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL); /* recovery path */
	s->batch_open = false;
	s->batch_bad = false;
	pthread_mutex_lock(&s->wlock);
	if (rc == 0 && kept > 0) {
		s->commits++;
		s->decisions += kept;
		store_note_write(&s->base, false); /* writes work (again) */
	}
	for (m = s->batch; m; m = next) {
		next = m->next; /* m may be gone once done is seen */
		if (rc != 0 && m->keep) {
			m->rc = rc;
			snprintf(m->err, sizeof(m->err), "%s", w->base.err);
		}
		m->committed = rc == 0 && m->keep;
		m->done = true;
	}
	s->batch = NULL;
	s->batch_n = 0;
	pthread_cond_broadcast(&s->wdone);
	pthread_mutex_unlock(&s->wlock);
}

void store_sqlite_stats(struct store *bs, long *commits, long *decisions)
{
	struct sq_store *s = (struct sq_store *)bs;

	pthread_mutex_lock(&s->wlock);
	*commits = s->commits;
	*decisions = s->decisions;
	pthread_mutex_unlock(&s->wlock);
}

/*
 * One allocation decision inside the caller's savepoint on c: (replay
 * idempotent answer | expire due allocations | read ledger and capacity |
 * ledger_decide | insert, reserve, audit) and remember the idempotent answer.
 * *keep says whether the part is to be committed (approved, refused, or
 * replayed); otherwise rc is the error and the caller undoes the part.
 */
static int alloc_part(struct sq_conn *c, const struct actor *who, const struct alloc_request *r,
		      int64_t start_timeout_s, int64_t now, struct idem *idem,
		      struct alloc_outcome *lo, bool *replayed, int *replay_status, char **replay,
		      bool *keep)
{
	struct team team;
	struct gpu_type gpu;
	struct ledger_decision dec;
	int64_t ps = 0, pe = 0, spent = 0, reserved = 0, est = 0;
	char *body = NULL; /* rendered answer, owned here */
	int status = 0, rc, n;
	bool use_idem = idem && idem->key;

	*keep = false;
	if (use_idem) {
		rc = idem_lookup(c, who->token_id, idem, replay_status, replay);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			*replayed = true;
			rc = 0;
			*keep = true;
			goto out;
		}
	}
	rc = load_one(c, SQL_TEAM_BY_ID, r->team, row_team, &team);
	if (rc != 0) {
		if (rc == ERR_NOT_FOUND)
			conn_err(c, "unknown team '%s'", r->team);
		goto out;
	}
	/* Due allocations give their money and GPUs back before we decide. */
	rc = expire_due_tx(c, now, NULL);
	if (rc != 0)
		goto out;
	rc = load_one(c, SQL_GPU_BY_ID, r->gpu_type, row_gpu, &gpu);
	if (rc != 0) {
		if (rc == ERR_NOT_FOUND)
			conn_err(c, "unknown gpu_type '%s'", r->gpu_type);
		goto out;
	}
	if (r->gpu_count > gpu.capacity) {
		rc = store_capacity_invalid(&gpu, c->base.err, sizeof(c->base.err));
		goto out;
	}
	period_bounds(team.period, now, &ps, &pe);
	n = q_exec(c, SQL_PERIOD_ENSURE, "tii", team.id, ps, pe);
	if (n < 0) {
		rc = n;
		goto out;
	}
	rc = period_load(c, team.id, ps, &spent, &reserved);
	if (rc != 0)
		goto out;
	rc = cost_compute(gpu.price_micros, r->gpu_count, r->max_runtime_us, &est);
	if (rc != 0) {
		conn_err(c, "the estimated cost does not fit");
		goto out;
	}
	store_alloc_decide(&team, &gpu, spent, reserved, est, r->gpu_count, &dec, lo);

	if (dec.approved) {
		struct allocation *a = &lo->alloc;

		rc = store_alloc_approved(a, r, team.id, &gpu, est, who->token_id, ps, now,
					  start_timeout_s);
		if (rc != 0) {
			conn_err(c, "cannot generate an allocation id");
			goto out;
		}
		n = q_exec(c, SQL_ALLOC_INSERT, "ttttiiiittttiiiiii", a->id, a->team, a->project,
			   a->gpu_type, a->gpu_count, a->max_runtime_us, a->price_micros,
			   a->estimated_micros, alloc_status_name(a->status), a->purpose,
			   a->labels_json, a->created_by, a->period_start, a->approved_at,
			   a->expires_at, a->started_at, a->ended_at, a->actual_micros);
		if (n < 0) {
			rc = n;
			goto out;
		}
		rc = ledger_move(c, a, est, 0);
		if (rc != 0)
			goto out;
		rc = gpu_move(c, gpu.id, a->gpu_count);
		if (rc != 0)
			goto out;
		rc = ledger_verify(c, &team, ps, gpu.id);
		if (rc != 0)
			goto out;
		rc = audit_rec(c, who, now, "allocation.approve", "allocation", a->id, a->team,
			       store_json_alloc, NULL, a);
		if (rc != 0)
			goto out;
	} else {
		char av[MONEY_FMT_LEN], es[MONEY_FMT_LEN];

		if (!dec.budget_ok) {
			rc = ERR_BUDGET;
			conn_err(c, "team '%s' has %s available, the request needs %s", team.id,
				 store_fmt_money(dec.available, av), store_fmt_money(est, es));
		} else {
			rc = ERR_CAPACITY;
			conn_err(c, "%lld GPUs of type '%s' available, the request needs %lld",
				 (long long)dec.gpus_available, gpu.id, (long long)r->gpu_count);
		}
	}
	if (use_idem) {
		body = idem->render(idem->ctx, rc, lo, &status);
		if (!body) {
			rc = ERR_NOMEM;
			conn_err(c, "out of memory rendering the idempotent answer");
			goto out;
		}
		n = q_exec(c, SQL_IDEM_INSERT, "tttiti", who->token_id, idem->key, idem->hash,
			   (int64_t)status, body, now);
		if (n < 0) {
			rc = n;
			goto out;
		}
	}
	*keep = true; /* approved, or a refusal worth remembering */
out:
	free(body);
	return rc;
}

/*
 * Group commit: the decision runs in `SAVEPOINT a` of the batch transaction
 * on the writer connection; the answer is returned only after that batch's
 * COMMIT succeeded (see struct sq_store).  The caller's connection only
 * carries the error text.
 */
static int sq_allocate(struct store_conn *bc, const struct actor *who, const struct alloc_request *r,
		       int64_t start_timeout_s, int64_t now, struct idem *idem,
		       struct alloc_outcome *o, char *detail)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct sq_store *s = sq_store_of(c);
	struct sq_waiter me;
	struct alloc_outcome lo;
	struct sq_conn *w;
	char *replay = NULL; /* replayed answer, handed to idem on success */
	int replay_status = 0, rc, n;
	bool replayed = false, keep = false, wait_batch;

	c->base.err[0] = '\0';
	memset(&me, 0, sizeof(me));
	memset(&lo, 0, sizeof(lo));
	if (idem) {
		idem->replayed = false;
		idem->replay_body = NULL;
	}
	if (writer_take(s) != 0) {
		conn_err(c, "cannot take the write lock");
		rc = ERR_STORE;
		goto out;
	}
	rc = batch_join(s, c);
	if (rc != 0) {
		writer_give(s);
		goto out;
	}
	w = s->wconn;
	w->base.err[0] = '\0';
	n = q_exec(w, SQL_SAVEPOINT, "");
	if (n < 0) {
		rc = n;
		batch_undo_part(s, false);
	} else {
		rc = alloc_part(w, who, r, start_timeout_s, now, idem, &lo, &replayed,
				&replay_status, &replay, &keep);
		if (keep) {
			n = q_exec(w, SQL_RELEASE, "");
			if (n < 0) {
				rc = n;
				keep = false;
			}
		}
		if (!keep)
			batch_undo_part(s, true);
	}
	me.rc = rc;
	me.keep = keep;
	snprintf(me.err, sizeof(me.err), "%s", w->base.err);

	pthread_mutex_lock(&s->wlock);
	me.next = s->batch;
	s->batch = &me;
	s->batch_n++;
	wait_batch = s->wwant > 0 && s->batch_n < SQ_BATCH_MAX && !s->batch_bad;
	if (wait_batch) {
		/* Hand the token on; whoever ends the batch wakes us. */
		s->wbusy = false;
		pthread_cond_signal(&s->wturn);
		while (!me.done)
			pthread_cond_wait(&s->wdone, &s->wlock);
		pthread_mutex_unlock(&s->wlock);
	} else {
		pthread_mutex_unlock(&s->wlock);
		batch_finish(s);
		writer_give(s);
	}
	rc = me.rc;
	snprintf(c->base.err, sizeof(c->base.err), "%s", me.err);
	if (me.committed) {
		if (replayed) {
			idem->replayed = true;
			idem->replay_status = replay_status;
			idem->replay_body = replay;
			replay = NULL;
		} else {
			*o = lo;
		}
	}
out:
	free(replay);
	detail_out(c, rc, detail);
	return rc;
}

static int sq_alloc_get(struct store_conn *bc, const char *id, struct allocation *out)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct allocation *a = NULL;
	int rc;

	c->base.err[0] = '\0';
	a = malloc(sizeof(*a));
	if (!a)
		return ERR_NOMEM;
	rc = load_one(c, SQL_ALLOC_BY_ID, id, row_alloc, a);
	if (rc == 0 && store_alloc_unreadable(a)) { /* never rendered with a cut text */
		conn_err(c, "allocation %s cannot be read: %s", id, store_alloc_unreadable(a));
		rc = ERR_STORE;
	}
	if (rc == 0)
		*out = *a;
	free(a);
	return rc;
}

static int sq_alloc_list(struct store_conn *bc, const struct alloc_filter *f, store_alloc_cb cb,
			 void *ctx, char *next_cursor)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct allocation *a = NULL, *last = NULL; /* owned here */
	sqlite3_stmt *st = NULL;
	char *sql = NULL;
	char cur_id[STORE_ID_LEN];
	int64_t cur_at = 0;
	int limit = f->limit, idx = 1, rows = 0, rc;
	bool more = false;

	c->base.err[0] = '\0';
	if (limit < 1)
		limit = 1;
	if (limit > STORE_MAX_PAGE)
		limit = STORE_MAX_PAGE;
	if (f->cursor && f->cursor[0]) {
		rc = store_cursor_parse(f->cursor, &cur_at, cur_id);
		if (rc != 0) {
			conn_err(c, "invalid cursor");
			return rc;
		}
	}
	a = malloc(sizeof(*a));
	last = malloc(sizeof(*last));
	sql = strdup("SELECT " ALLOC_COLS " FROM allocations WHERE 1");
	if (!a || !last || !sql) {
		rc = ERR_NOMEM;
		goto out;
	}
	rc = 0;
	if (f->team)
		rc = sql_append(&sql, " AND team_id = ?");
	if (rc == 0 && f->teams)
		rc = sql_scope(&sql, "team_id", f->nteams);
	if (rc == 0 && f->status >= 0)
		rc = sql_append(&sql, " AND status = ?");
	if (rc == 0 && f->cursor && f->cursor[0])
		rc = sql_append(&sql, " AND (approved_at < ? OR (approved_at = ? AND id < ?))");
	if (rc == 0)
		rc = sql_append(&sql, " ORDER BY approved_at DESC, id DESC LIMIT ?");
	if (rc != 0)
		goto out;
	rc = q_prepare(c, sql, false, &st);
	if (rc != 0)
		goto out;
	if (f->team)
		rc = q_bind(c, st, &idx, "t", f->team);
	if (rc == 0 && f->teams)
		rc = bind_scope(c, st, &idx, f->teams, f->nteams);
	if (rc == 0 && f->status >= 0)
		rc = q_bind(c, st, &idx, "t", alloc_status_name((enum alloc_status)f->status));
	if (rc == 0 && f->cursor && f->cursor[0])
		rc = q_bind(c, st, &idx, "iit", cur_at, cur_at, cur_id);
	if (rc == 0)
		rc = q_bind(c, st, &idx, "i", (int64_t)limit + 1);
	if (rc != 0)
		goto out;
	while ((rc = q_step(c, st)) == 1) {
		if (rows == limit) {
			more = true;
			rc = 0;
			break;
		}
		rc = row_alloc(st, a);
		const char *why = rc == ERR_STORE ? STORE_BAD_ROW_TEXT
				  : rc == 0 ? store_alloc_unreadable(a) : NULL;
		if (why) { /* reported and skipped: the page goes on past it */
			store_bad_row("allocations", (const char *)sqlite3_column_text(st, 0), why);
			rc = 0;
			rows++;
			*last = *a;
			continue;
		}
		if (rc != 0)
			goto out;
		rows++;
		*last = *a;
		if (cb(ctx, a) != 0) {
			rc = 0;
			break;
		}
	}
	if (rc != 0)
		goto out;
	if (more)
		snprintf(next_cursor, STORE_ID_LEN * 2, "%lld:%s", (long long)last->approved_at,
			 last->id);
	else
		next_cursor[0] = '\0';
out:
	q_close(c, st);
	free(sql);
	free(a);
	free(last);
	return rc;
}

static int rollup_add(struct sq_conn *c, const struct allocation *a);

static const char SQL_ALLOC_COMPLETE[] =
	"UPDATE allocations SET status = ?, ended_at = ?, actual_micros = ? WHERE id = ?";

static int sq_alloc_transition(struct store_conn *bc, const struct actor *who, const char *id,
			       enum alloc_event ev, int64_t at, int64_t now, struct allocation *out,
			       bool *repeat, char *detail)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct allocation *a = NULL, *res = NULL; /* owned here (large records) */
	enum alloc_status next;
	bool rep = false, expired_instead = false;
	int rc, n, fin;

	c->base.err[0] = '\0';
	a = malloc(sizeof(*a));
	res = malloc(sizeof(*res));
	if (!a || !res) {
		free(a);
		free(res);
		return ERR_NOMEM;
	}
	rc = tx_begin(c, true);
	if (rc != 0)
		goto done;
	rc = load_one(c, SQL_ALLOC_BY_ID, id, row_alloc, a);
	if (rc != 0) {
		if (rc == ERR_NOT_FOUND)
			conn_err(c, "unknown allocation '%s'", id);
		goto out;
	}
	rc = lifecycle_next(a->status, ev, &next, &rep);
	if (rc != 0) {
		conn_err(c, "cannot %s an allocation that is %s", alloc_event_name(ev),
			 alloc_status_name(a->status));
		goto out;
	}
	*res = *a;
	if (rep)
		goto out; /* nothing changes; the commit below is of an empty transaction */
	switch (ev) {
	case ALLOC_EV_START:
		if (now >= a->expires_at) {
			rc = alloc_release(c, who, a, ALLOC_EXPIRED, a->expires_at, now, res);
			if (rc == 0)
				expired_instead = true;
			break;
		}
		res->status = ALLOC_RUNNING;
		res->started_at = at;
		n = q_exec(c, SQL_ALLOC_START, "tit", alloc_status_name(ALLOC_RUNNING), at, id);
		if (n < 0) {
			rc = n;
			break;
		}
		rc = audit_rec(c, who, now, "allocation.start", "allocation", id, a->team, store_json_alloc,
			       a, res);
		break;
	case ALLOC_EV_COMPLETE: {
		int64_t actual = 0;

		if (at < a->started_at) {
			conn_err(c, "ended_at is before started_at");
			rc = ERR_INVALID;
			break;
		}
		rc = ledger_actual(a->price_micros, a->gpu_count, a->max_runtime_us, a->started_at,
				   at, &actual);
		if (rc != 0) {
			conn_err(c, "cannot compute the actual cost");
			break;
		}
		res->status = ALLOC_COMPLETED;
		res->ended_at = at;
		res->actual_micros = actual;
		n = q_exec(c, SQL_ALLOC_COMPLETE, "tiit", alloc_status_name(ALLOC_COMPLETED), at,
			   actual, id);
		if (n < 0) {
			rc = n;
			break;
		}
		rc = ledger_move(c, a, -a->estimated_micros, actual);
		if (rc == 0)
			rc = gpu_move(c, a->gpu_type, -a->gpu_count);
		if (rc == 0)
			rc = rollup_add(c, res);
		if (rc == 0)
			rc = audit_rec(c, who, now, "allocation.complete", "allocation", id, a->team,
				       store_json_alloc, a, res);
		break;
	}
	case ALLOC_EV_CANCEL:
		rc = alloc_release(c, who, a, ALLOC_CANCELLED, at, now, res);
		break;
	case ALLOC_EV_EXPIRE:
		rc = alloc_release(c, who, a, ALLOC_EXPIRED, at, now, res);
		break;
	default:
		conn_err(c, "unknown event");
		rc = ERR_INVALID;
		break;
	}
out:
	fin = tx_finish(c, rc == 0);
	if (rc == 0)
		rc = fin;
	if (rc == 0) {
		*out = *res;
		*repeat = rep;
		if (expired_instead) {
			conn_err(c, "allocation expired before it started");
			rc = ERR_CONFLICT;
		}
	}
done:
	free(a);
	free(res);
	detail_out(c, rc, detail);
	return rc;
}

static int sq_alloc_expire_due(struct store_conn *bc, int64_t now, int *n)
{
	struct sq_conn *c = sq_conn_of(bc);
	int count = 0, rc, fin;

	c->base.err[0] = '\0';
	rc = tx_begin(c, true);
	if (rc != 0)
		return rc;
	rc = expire_due_tx(c, now, &count);
	fin = tx_finish(c, rc == 0);
	if (rc == 0)
		rc = fin;
	if (rc == 0)
		*n = count;
	return rc;
}

/* ---- costs ------------------------------------------------------------- */

static int costs_rolled(struct sq_conn *c, const struct cost_query *q, struct store_cost_acc *acc,
			struct allocation *a);

static int sq_costs(struct store_conn *bc, const struct cost_query *q, store_cost_cb cb, void *ctx)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct store_cost_acc acc = {NULL, 0, 0};
	struct allocation *a = NULL;
	sqlite3_stmt *st = NULL;
	char *sql = NULL;
	bool by_day = q->group == COST_BY_DAY;
	int idx = 1, rc;

	c->base.err[0] = '\0';
	a = malloc(sizeof(*a));
	if (a && !q->scan) {
		rc = costs_rolled(c, q, &acc, a);
		if (rc != 0)
			goto out;
		goto emit;
	}
	sql = strdup(by_day ? "SELECT " ALLOC_COLS " FROM allocations WHERE"
			      " ((status IN ('approved', 'running') AND approved_at < ?)"
			      " OR (status = 'completed' AND ended_at >= ? AND started_at < ?))"
			    : "SELECT " ALLOC_COLS " FROM allocations WHERE"
			      " approved_at >= ? AND approved_at < ?");
	if (!a || !sql) {
		rc = ERR_NOMEM;
		goto out;
	}
	rc = q->teams ? sql_scope(&sql, "team_id", q->nteams) : 0;
	if (rc != 0)
		goto out;
	rc = q_prepare(c, sql, false, &st);
	if (rc != 0)
		goto out;
	if (by_day) /* completed: every allocation used on a day overlapping [from, to) */
		rc = q_bind(c, st, &idx, "iii", q->to, time_day_start(q->from), store_day_ceil(q->to));
	else
		rc = q_bind(c, st, &idx, "ii", q->from, q->to);
	if (rc == 0 && q->teams)
		rc = bind_scope(c, st, &idx, q->teams, q->nteams);
	if (rc != 0)
		goto out;
	while ((rc = q_step(c, st)) == 1) {
		rc = row_alloc(st, a);
		if (rc == 0)
			rc = by_day ? store_cost_by_day(&acc, q, a) : store_cost_by_key(&acc, q, a);
		if (rc != 0)
			goto out;
	}
	if (rc != 0)
		goto out;
	q_close(c, st);
	st = NULL;
emit:
	for (size_t i = 0; i < acc.n; i++) {
		if (cb(ctx, &acc.rows[i]) != 0)
			break;
	}
out:
	if (rc == ERR_OVERFLOW)
		conn_err(c, "cost totals overflow");
	q_close(c, st);
	free(sql);
	free(a);
	free(acc.rows);
	return rc;
}

#include "store/store_sqlite_costs.inc"

/* ---- the driver (db.h) ------------------------------------------------- */

struct sq_rows {
	struct db_rows base; /* must be first */
	sqlite3_stmt *st;
};

static int drv_bind(struct sq_conn *c, sqlite3_stmt *st, const struct db_param *p, int n)
{
	for (int i = 0; i < n; i++) {
		int src;

		if (p[i].type == 't')
			src = p[i].text ? sqlite3_bind_text(st, i + 1, p[i].text, -1, SQLITE_TRANSIENT)
					: sqlite3_bind_null(st, i + 1);
		else
			src = sqlite3_bind_int64(st, i + 1, p[i].i64);
		if (src != SQLITE_OK)
			return db_fail(c, src, "bind");
	}
	if (n != sqlite3_bind_parameter_count(st)) {
		conn_err(c, "internal: %d parameters bound, %d expected", n,
			 sqlite3_bind_parameter_count(st));
		return ERR_STORE;
	}
	return 0;
}

static int drv_run(struct store_conn *bc, const char *sql, bool cached, const struct db_param *p,
		   int n, struct db_rows **rows)
{
	struct sq_conn *c = sq_conn_of(bc);
	sqlite3_stmt *st = NULL;
	struct sq_rows *r;
	int rc, src;

	rc = q_prepare(c, sql, cached, &st);
	if (rc != 0)
		return rc;
	rc = drv_bind(c, st, p, n);
	if (rc != 0) {
		q_close(c, st);
		return rc;
	}
	if (rows) {
		r = malloc(sizeof(*r));
		if (!r) {
			q_close(c, st);
			return ERR_NOMEM;
		}
		r->base.conn = bc;
		r->st = st;
		*rows = &r->base;
		return 0;
	}
	while ((src = sqlite3_step(st)) == SQLITE_ROW)
		; /* rows of a statement run for its effect (PRAGMA echoes) */
	rc = src == SQLITE_DONE ? sqlite3_changes(c->db) : db_fail(c, src, "step");
	q_close(c, st);
	return rc;
}

static int drv_next(struct db_rows *br)
{
	struct sq_rows *r = (struct sq_rows *)br;
	int src = sqlite3_step(r->st);

	if (src == SQLITE_ROW)
		return 1;
	if (src == SQLITE_DONE)
		return 0;
	return db_fail(sq_conn_of(br->conn), src, "step");
}

static bool drv_is_null(const struct db_rows *br, int col)
{
	return sqlite3_column_type(((const struct sq_rows *)br)->st, col) == SQLITE_NULL;
}

static int64_t drv_i64(const struct db_rows *br, int col)
{
	return sqlite3_column_int64(((const struct sq_rows *)br)->st, col);
}

static const char *drv_text(const struct db_rows *br, int col)
{
	const unsigned char *t = sqlite3_column_text(((const struct sq_rows *)br)->st, col);

	return t ? (const char *)t : "";
}

static void drv_rows_close(struct db_rows *br)
{
	struct sq_rows *r = (struct sq_rows *)br;

	q_close(sq_conn_of(br->conn), r->st);
	free(r);
}

/* BEGIN/COMMIT through sqlite3_exec: db_run injects their faults itself. */
static int drv_exec_raw(struct sq_conn *c, const char *sql)
{
	int src = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	return src == SQLITE_OK ? 0 : db_fail(c, src, sql);
}

static int drv_begin(struct store_conn *bc, bool write)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct sq_store *s = sq_store_of(c);
	int rc;

	if (write) {
		if (writer_take(s) != 0) {
			conn_err(c, "cannot take the write lock");
			return ERR_STORE;
		}
		c->locked = true;
		batch_finish(s);
	}
	rc = drv_exec_raw(c, write ? SQL_BEGIN_IMMEDIATE : SQL_BEGIN);
	if (rc != 0) {
		if (c->locked) {
			c->locked = false;
			writer_give(s);
		}
		return rc;
	}
	c->base.in_tx = true;
	return 0;
}

static int drv_finish(struct store_conn *bc, bool commit)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct sq_store *s = sq_store_of(c);
	int rc = 0;

	if (!c->base.in_tx)
		return 0;
	if (commit) {
		rc = drv_exec_raw(c, SQL_COMMIT);
		if (rc == 0 && c->locked)
			store_note_write(c->base.store, false); /* writes work (again) */
	}
	if ((!commit || rc != 0) && !sqlite3_get_autocommit(c->db))
		(void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL); /* recovery path */
	c->base.in_tx = false;
	if (c->locked) {
		c->locked = false;
		writer_give(s);
	}
	return rc;
}

static int drv_script(struct store_conn *bc, const char *sql)
{
	return q_script(sq_conn_of(bc), sql);
}

static const struct db_driver sq_driver = {
	.name = "sqlite",
	.conn_open = sq_conn_open,
	.conn_close = sq_conn_close,
	.destroy = sq_destroy,
	.begin = drv_begin,
	.finish = drv_finish,
	.run = drv_run,
	.next = drv_next,
	.is_null = drv_is_null,
	.i64 = drv_i64,
	.text = drv_text,
	.rows_close = drv_rows_close,
	.script = drv_script,
	.allocate = sq_allocate,
};

/* ---- the backend ------------------------------------------------------- */

static const struct store_ops sq_ops = {
	.name = "sqlite",
	.conn_open = sq_conn_open,
	.conn_close = sq_conn_close,
	.destroy = sq_destroy,
	.migrate = sq_migrate,
	.ping = ops_ping,
	.token_create = ops_token_create,
	.token_by_hash = ops_token_by_hash,
	.token_list = ops_token_list,
	.token_revoke = ops_token_revoke,
	.admin_exists = ops_admin_exists,
	.gpu_type_put = ops_gpu_type_put,
	.gpu_type_get = ops_gpu_type_get,
	.gpu_type_list = ops_gpu_type_list,
	.gpu_type_seed = ops_gpu_type_seed,
	.team_put = ops_team_put,
	.team_get = ops_team_get,
	.team_list = ops_team_list,
	.team_ledger = ops_team_ledger,
	.allocate = sq_allocate,
	.alloc_get = sq_alloc_get,
	.alloc_list = sq_alloc_list,
	.alloc_transition = sq_alloc_transition,
	.alloc_expire_due = sq_alloc_expire_due,
	.costs = sq_costs,
	.audit_list = ops_audit_list,
	.cost_usage = sq_cost_usage,
	.cost_rollup_rebuild = sq_cost_rollup_rebuild,
	.alert_record = ops_alert_record,
	.alert_claim = ops_alert_claim,
	.alert_done = ops_alert_done,
	.job_begin = ops_job_begin,
	.job_update = ops_job_update,
	.job_get = ops_job_get,
	.job_cleanup_due = ops_job_cleanup_due,
	.job_cleanup_done = ops_job_cleanup_done,
};

/* The writer token's mutex and condition variables: 0, or -1 with none left. */
static int sq_sync_init(struct sq_store *s)
{
	if (pthread_mutex_init(&s->wlock, NULL) != 0)
		return -1;
	if (pthread_cond_init(&s->wturn, NULL) != 0)
		goto fail_mutex;
	if (pthread_cond_init(&s->wdone, NULL) != 0)
		goto fail_turn;
	return 0;
fail_turn:
	pthread_cond_destroy(&s->wturn);
fail_mutex:
	pthread_mutex_destroy(&s->wlock);
	return -1;
}

int store_sqlite_new(const char *path, struct store **out, char *detail)
{
	struct sq_store *s = NULL;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	s->path = strdup(path);
	if (!s->path)
		goto nomem;
	if (sq_sync_init(s) != 0) {
		free(s->path);
		free(s);
		if (detail)
			snprintf(detail, STORE_DETAIL_LEN, "pthread mutex/condvar init failed");
		return ERR_STORE;
	}
	s->base.ops = &sq_ops;
	s->base.drv = &sq_driver;
	s->base.pool = NULL;
	s->base.fault_after = -1;
	*out = &s->base;
	return 0;
nomem:
	if (s)
		free(s->path);
	free(s);
	if (detail)
		snprintf(detail, STORE_DETAIL_LEN, "out of memory");
	return ERR_NOMEM;
}
