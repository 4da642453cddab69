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
#include "store/schema.h"
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
	struct sq_cached *cache; /* owned; grows to every static statement used */
	size_t ncache, cache_cap;
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
	if (cache && c->ncache == c->cache_cap) {
		size_t cap = c->cache_cap ? c->cache_cap * 2 : 64;
		struct sq_cached *grown = realloc(c->cache, cap * sizeof(*grown));

		if (!grown) {
			sqlite3_finalize(st);
			return ERR_NOMEM;
		}
		c->cache = grown;
		c->cache_cap = cap;
	}
	if (cache) {
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

/* src/store/schema/sqlite/vN.sql (schema.h); migration i brings version i + 1. */
static const char *const sq_migrations[] = {
	(const char *)schema_sqlite_v1, (const char *)schema_sqlite_v2,
	(const char *)schema_sqlite_v3, (const char *)schema_sqlite_v4,
	(const char *)schema_sqlite_v5,
};

/* ---- rows -------------------------------------------------------------- */

#define TOKEN_COLS "id, name, role, teams_json, created_at, revoked_at"
#define GPU_COLS "id, name, price_micros, price_date, price_source, capacity, allocated, updated_at"
#define TEAM_COLS "id, display_name, budget_micros, period, thresholds_json, created_at, updated_at"
#define ALLOC_COLS                                                                              \
	"id, team_id, project, gpu_type, gpu_count, max_runtime_us, price_micros,"              \
	" estimated_micros, status, purpose, labels_json, created_by, period_start, approved_at," \
	" expires_at, started_at, ended_at, actual_micros"
#define AUDIT_COLS \
	"seq, at, actor_id, actor_name, action, object_type, object_id, team, before_json, after_json"

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
	free(c->cache);
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

static const char SQL_PING[] = "SELECT 1";

static int sq_ping(struct store_conn *bc)
{
	struct sq_conn *c = sq_conn_of(bc);
	sqlite3_stmt *st = NULL;
	int rc;

	rc = q_open(c, SQL_PING, &st, "");
	if (rc != 0)
		return rc;
	rc = q_step(c, st);
	q_close(c, st);
	return rc == 1 ? 0 : (rc < 0 ? rc : ERR_STORE);
}

/* ---- tokens ------------------------------------------------------------ */

/* ---- GPU types --------------------------------------------------------- */

static const char SQL_GPU_INSERT[] =
	"INSERT INTO gpu_types(id, name, price_micros, price_date, price_source, capacity,"
	" allocated, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)";
static const char SQL_GPU_SEED[] =
	"INSERT OR IGNORE INTO gpu_types(id, name, price_micros, price_date, price_source,"
	" capacity, allocated, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)";
static const char SQL_GPU_UPDATE[] =
	"UPDATE gpu_types SET name = ?, price_micros = ?, price_date = ?, price_source = ?,"
	" capacity = ?, updated_at = ? WHERE id = ?";
static const char SQL_GPU_LIST[] = "SELECT " GPU_COLS " FROM gpu_types ORDER BY id";

static int sq_gpu_type_put(struct store_conn *bc, const struct actor *who, const struct gpu_type *g,
			   int64_t now, bool *created)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct gpu_type old, rec = *g;
	bool exists = false;
	int rc, n, fin;

	c->base.err[0] = '\0';
	rc = tx_begin(c, true);
	if (rc != 0)
		return rc;
	rc = load_one(c, SQL_GPU_BY_ID, g->id, row_gpu, &old);
	if (rc != 0 && rc != ERR_NOT_FOUND)
		goto out;
	exists = rc == 0;
	rc = 0;
	rec.allocated = exists ? old.allocated : 0; /* held GPUs are the ledger's, not the admin's */
	rec.updated_at = now;
	if (exists)
		n = q_exec(c, SQL_GPU_UPDATE, "tittiit", rec.name, rec.price_micros, rec.price_date,
			   rec.price_source, rec.capacity, now, rec.id);
	else
		n = q_exec(c, SQL_GPU_INSERT, "ttittii", rec.id, rec.name, rec.price_micros,
			   rec.price_date, rec.price_source, rec.capacity, now);
	if (n < 0) {
		rc = n;
		goto out;
	}
	rc = audit_rec(c, who, now, exists ? "gpu_type.update" : "gpu_type.create", "gpu_type",
		       rec.id, "", store_json_gpu, exists ? &old : NULL, &rec);
out:
	fin = tx_finish(c, rc == 0);
	if (rc == 0 && fin == 0)
		*created = !exists;
	return rc ? rc : fin;
}

static int sq_gpu_type_get(struct store_conn *bc, const char *id, struct gpu_type *out)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct gpu_type g;
	int rc;

	c->base.err[0] = '\0';
	rc = load_one(c, SQL_GPU_BY_ID, id, row_gpu, &g);
	if (rc == 0)
		*out = g;
	return rc;
}

static int sq_gpu_type_list(struct store_conn *bc, store_gpu_type_cb cb, void *ctx)
{
	struct sq_conn *c = sq_conn_of(bc);
	sqlite3_stmt *st = NULL;
	struct gpu_type g;
	int rc;

	c->base.err[0] = '\0';
	rc = q_open(c, SQL_GPU_LIST, &st, "");
	if (rc != 0)
		return rc;
	while ((rc = q_step(c, st)) == 1) {
		row_gpu(st, &g);
		if (cb(ctx, &g) != 0) {
			rc = 0;
			break;
		}
	}
	q_close(c, st);
	return rc;
}

static int sq_gpu_type_seed(struct store_conn *bc, const struct gpu_type *g, size_t n, int64_t now)
{
	struct sq_conn *c = sq_conn_of(bc);
	int64_t inserted = 0;
	char *after = NULL;
	int rc, fin;

	c->base.err[0] = '\0';
	rc = tx_begin(c, true);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		int ch = q_exec(c, SQL_GPU_SEED, "ttittii", g[i].id, g[i].name, g[i].price_micros,
				g[i].price_date, g[i].price_source, g[i].capacity, now);
		if (ch < 0) {
			rc = ch;
			goto out;
		}
		inserted += ch;
	}
	if (inserted > 0) {
		int ch;

		rc = store_json_take_text(json_pack("{s:I}", "count", (json_int_t)inserted), true, &after);
		if (rc != 0)
			goto out;
		ch = q_exec(c, SQL_AUDIT_INSERT, "itttttttt", now, SYSTEM_ACTOR, SYSTEM_ACTOR,
			    "gpu_type.seed", "gpu_type", "", "", (const char *)NULL, after);
		if (ch < 0)
			rc = ch;
	}
out:
	free(after);
	fin = tx_finish(c, rc == 0);
	return rc ? rc : fin;
}

/* ---- teams ------------------------------------------------------------- */

static const char SQL_TEAM_INSERT[] =
	"INSERT INTO teams(id, display_name, budget_micros, period, thresholds_json, created_at,"
	" updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
static const char SQL_TEAM_UPDATE[] =
	"UPDATE teams SET display_name = ?, budget_micros = ?, period = ?, thresholds_json = ?,"
	" updated_at = ? WHERE id = ?";
static const char SQL_PERIOD_GET[] =
	"SELECT spent, reserved FROM team_periods WHERE team_id = ? AND period_start = ?";
static const char SQL_PERIOD_ENSURE[] =
	"INSERT OR IGNORE INTO team_periods(team_id, period_start, period_end, spent, reserved)"
	" VALUES (?, ?, ?, 0, 0)";
static const char SQL_PERIOD_MOVE[] =
	"UPDATE team_periods SET reserved = reserved + ?, spent = spent + ?"
	" WHERE team_id = ? AND period_start = ?";
static const char SQL_LIVE_BY_PERIOD[] =
	"SELECT period_start, SUM(estimated_micros) FROM allocations WHERE team_id = ?"
	" AND status IN ('approved', 'running') AND period_start <> ?"
	" GROUP BY period_start ORDER BY period_start";
static const char SQL_LIVE_REKEY[] =
	"UPDATE allocations SET period_start = ? WHERE team_id = ?"
	" AND status IN ('approved', 'running') AND period_start <> ?";
static const char SQL_RUNNING_OF_PERIOD[] =
	"SELECT price_micros, gpu_count, max_runtime_us, started_at FROM allocations"
	" WHERE team_id = ? AND period_start = ? AND status = 'running'";

/*
 * The team's period kind changed (inside the team.put transaction): its live
 * allocations of other periods move to the current period of kind `k`,
 * their reservations with them (see store_period_delta).
 */
static int period_rekey(struct sq_conn *c, const char *team, enum period_kind k, int64_t now)
{
	struct store_period_plan plan = {NULL, 0, 0, 0}; /* plan.d owned here */
	sqlite3_stmt *st = NULL;
	int64_t ps = 0, pe = 0;
	int rc;

	period_bounds(k, now, &ps, &pe);
	rc = q_open(c, SQL_LIVE_BY_PERIOD, &st, "ti", team, ps);
	while (rc == 0 && (rc = q_step(c, st)) == 1)
		rc = store_period_plan_leave(&plan, sqlite3_column_int64(st, 0),
					     sqlite3_column_int64(st, 1));
	q_close(c, st);
	if (rc != 0 || plan.n == 0)
		goto out;
	store_period_plan_arrive(&plan, ps);
	rc = q_exec(c, SQL_PERIOD_ENSURE, "tii", team, ps, pe);
	for (size_t i = 0; rc >= 0 && i < plan.n; i++) {
		rc = q_exec(c, SQL_PERIOD_MOVE, "iiti", plan.d[i].delta, (int64_t)0, team,
			    plan.d[i].ps);
		if (rc == 0) /* each of these rows exists */
			rc = ERR_STORE;
	}
	if (rc >= 0)
		rc = q_exec(c, SQL_LIVE_REKEY, "iti", ps, team, ps);
	rc = rc < 0 ? rc : 0;
out:
	free(plan.d);
	return rc;
}

static int sq_team_put(struct store_conn *bc, const struct actor *who, const struct team *t,
		       int64_t now, bool *created)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct team old, rec = *t;
	bool exists = false;
	int rc, n, fin;

	c->base.err[0] = '\0';
	rc = tx_begin(c, true);
	if (rc != 0)
		return rc;
	rc = load_one(c, SQL_TEAM_BY_ID, t->id, row_team, &old);
	if (rc != 0 && rc != ERR_NOT_FOUND)
		goto out;
	exists = rc == 0;
	rc = 0;
	rec.created_at = exists ? old.created_at : now;
	rec.updated_at = now;
	if (exists)
		n = q_exec(c, SQL_TEAM_UPDATE, "tittit", rec.display_name, rec.budget_micros,
			   period_kind_name(rec.period), rec.thresholds_json, now, rec.id);
	else
		n = q_exec(c, SQL_TEAM_INSERT, "ttittii", rec.id, rec.display_name, rec.budget_micros,
			   period_kind_name(rec.period), rec.thresholds_json, now, now);
	if (n < 0) {
		rc = n;
		goto out;
	}
	if (exists && old.period != rec.period) {
		rc = period_rekey(c, rec.id, rec.period, now);
		if (rc != 0)
			goto out;
	}
	rc = audit_rec(c, who, now, exists ? "team.update" : "team.create", "team", rec.id, rec.id,
		       store_json_team, exists ? &old : NULL, &rec);
out:
	fin = tx_finish(c, rc == 0);
	if (rc == 0 && fin == 0)
		*created = !exists;
	return rc ? rc : fin;
}

static int sq_team_get(struct store_conn *bc, const char *id, struct team *out)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct team t;
	int rc;

	c->base.err[0] = '\0';
	rc = load_one(c, SQL_TEAM_BY_ID, id, row_team, &t);
	if (rc == 0)
		*out = t;
	return rc;
}

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

static int sq_team_list(struct store_conn *bc, const char *const *only, size_t nonly,
			store_team_cb cb, void *ctx)
{
	struct sq_conn *c = sq_conn_of(bc);
	sqlite3_stmt *st = NULL;
	char *sql = NULL;
	struct team t;
	int idx = 1;
	int rc;

	c->base.err[0] = '\0';
	sql = strdup("SELECT " TEAM_COLS " FROM teams WHERE 1");
	if (!sql)
		return ERR_NOMEM;
	if (only) {
		rc = sql_scope(&sql, "id", nonly);
		if (rc != 0)
			goto out;
	}
	rc = sql_append(&sql, " ORDER BY id");
	if (rc != 0)
		goto out;
	rc = q_prepare(c, sql, false, &st);
	if (rc != 0)
		goto out;
	if (only) {
		rc = bind_scope(c, st, &idx, only, nonly);
		if (rc != 0)
			goto out;
	}
	while ((rc = q_step(c, st)) == 1) {
		rc = row_team(st, &t);
		if (rc != 0)
			goto out;
		if (cb(ctx, &t) != 0) {
			rc = 0;
			break;
		}
	}
out:
	q_close(c, st);
	free(sql);
	return rc;
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

static int sq_team_ledger(struct store_conn *bc, const struct team *t, int64_t now,
			  struct team_ledger *out)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct team_ledger l;
	sqlite3_stmt *st = NULL;
	int rc, fin;

	c->base.err[0] = '\0';
	memset(&l, 0, sizeof(l));
	period_bounds(t->period, now, &l.period_start, &l.period_end);
	rc = tx_begin(c, false); /* one snapshot for both reads */
	if (rc != 0)
		return rc;
	rc = period_load(c, t->id, l.period_start, &l.spent, &l.reserved);
	if (rc != 0)
		goto out;
	rc = q_open(c, SQL_RUNNING_OF_PERIOD, &st, "ti", t->id, l.period_start);
	if (rc != 0)
		goto out;
	while ((rc = q_step(c, st)) == 1) {
		int64_t acc = 0;

		rc = ledger_accrued(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
				    sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), now,
				    &acc);
		if (rc == 0 && __builtin_add_overflow(l.accrued, acc, &l.accrued))
			rc = ERR_OVERFLOW;
		if (rc != 0)
			break;
		l.running++;
	}
out:
	q_close(c, st);
	fin = tx_finish(c, true);
	if (rc == 0)
		rc = fin;
	if (rc == 0)
		*out = l;
	return rc;
}

/* ---- allocations ------------------------------------------------------- */

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
		idem->legacy_body = NULL;
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
		rc = ops_alloc_one(&w->base, who, r, start_timeout_s, now, idem, &lo,
				   &replay_status, &replay, &keep);
		replayed = replay != NULL;
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
	memcpy(o->field, lo.field, sizeof(o->field)); /* also for a request that was not decided */
	if (me.committed) {
		if (replayed) {
			rc = ops_idem_replay(replay_status, replay, idem, o, c->base.err,
					     sizeof(c->base.err));
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

/* ---- audit ------------------------------------------------------------- */

static int sq_audit_list(struct store_conn *bc, const char *team, const char *cursor, int limit,
			 store_audit_cb cb, void *ctx, char *next_cursor)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct audit_entry e;
	sqlite3_stmt *st = NULL;
	char *sql = NULL;
	int64_t after = 0, last = 0;
	int idx = 1, rows = 0, rc;
	bool more = false;

	c->base.err[0] = '\0';
	memset(&e, 0, sizeof(e));
	rc = store_audit_page_args(cursor, &limit, &after);
	if (rc != 0)
		return rc;
	sql = strdup(team ? "SELECT " AUDIT_COLS " FROM audit WHERE seq > ? AND team = ?"
			    " ORDER BY seq LIMIT ?"
			  : "SELECT " AUDIT_COLS " FROM audit WHERE seq > ? ORDER BY seq LIMIT ?");
	if (!sql)
		return ERR_NOMEM;
	rc = q_prepare(c, sql, false, &st);
	if (rc != 0)
		goto out;
	rc = q_bind(c, st, &idx, "i", after);
	if (rc == 0 && team)
		rc = q_bind(c, st, &idx, "t", team);
	if (rc == 0)
		rc = q_bind(c, st, &idx, "i", (int64_t)limit + 1);
	if (rc != 0)
		goto out;
	while ((rc = q_step(c, st)) == 1) {
		const char *b, *a;
		int stop;

		if (rows == limit) {
			more = true;
			rc = 0;
			break;
		}
		memset(&e, 0, sizeof(e));
		e.seq = sqlite3_column_int64(st, 0);
		e.at = sqlite3_column_int64(st, 1);
		col_copy(st, 2, e.actor_id, sizeof(e.actor_id));
		col_copy(st, 3, e.actor_name, sizeof(e.actor_name));
		col_copy(st, 4, e.action, sizeof(e.action));
		col_copy(st, 5, e.object_type, sizeof(e.object_type));
		col_copy(st, 6, e.object_id, sizeof(e.object_id));
		col_copy(st, 7, e.team, sizeof(e.team));
		b = (const char *)sqlite3_column_text(st, 8);
		a = (const char *)sqlite3_column_text(st, 9);
		e.before_json = b ? strdup(b) : NULL;
		e.after_json = a ? strdup(a) : NULL;
		if ((b && !e.before_json) || (a && !e.after_json)) {
			rc = ERR_NOMEM;
			goto out;
		}
		rows++;
		last = e.seq;
		stop = cb(ctx, &e);
		store_audit_entry_done(&e);
		if (stop != 0) {
			rc = 0;
			break;
		}
	}
	if (rc != 0)
		goto out;
	if (more)
		snprintf(next_cursor, STORE_ID_LEN, "%lld", (long long)last);
	else
		next_cursor[0] = '\0';
out:
	store_audit_entry_done(&e);
	q_close(c, st);
	free(sql);
	return rc;
}

/* Runs C steps that belong to migration `version` (same transaction):
 * version 4 adds the last rollup table, and fills every rollup table (version
 * 2's backfill is left to it because the fill needs version 4's table). */
/* ---- budget alerts ---------------------------------------------------- */

static const char SQL_ALERT_INSERT[] =
	"INSERT OR IGNORE INTO alerts(team_id, period_start, threshold_ppm, url, budget, committed,"
	" crossed_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_ALERT_DUE[] =
	"SELECT team_id, period_start, threshold_ppm, url, budget, committed, crossed_at, attempts"
	" FROM alerts WHERE delivered_at = 0 AND next_attempt_at <= ?"
	" ORDER BY crossed_at, team_id, threshold_ppm LIMIT ?";
static const char SQL_ALERT_LEASE[] =
	"UPDATE alerts SET next_attempt_at = ? WHERE team_id = ? AND period_start = ?"
	" AND threshold_ppm = ? AND url = ? AND delivered_at = 0 AND next_attempt_at <= ?";
static const char SQL_ALERT_DONE[] =
	"UPDATE alerts SET delivered_at = ?, attempts = attempts + 1, next_attempt_at = ?,"
	" last_error = ? WHERE team_id = ? AND period_start = ? AND threshold_ppm = ? AND url = ?";

static int sq_alert_record(struct store_conn *bc, const struct alert *a, const char *const *urls,
			   size_t nurls, int64_t now, int *created)
{
	struct sq_conn *c = sq_conn_of(bc);
	int rc, fin, total = 0;

	c->base.err[0] = '\0';
	rc = tx_begin(c, true);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < nurls && rc == 0; i++) {
		int n = q_exec(c, SQL_ALERT_INSERT, "tiitiiii", a->team, a->period_start,
			       a->threshold_ppm, urls[i], a->budget, a->committed, now, now);
		if (n < 0)
			rc = n;
		else
			total += n;
	}
	fin = tx_finish(c, rc == 0);
	if (rc == 0)
		rc = fin;
	if (rc == 0 && created)
		*created = total;
	return rc;
}

static int sq_alert_claim(struct store_conn *bc, int64_t now, int64_t lease_s, struct alert *out,
			  int max, int *n)
{
	struct sq_conn *c = sq_conn_of(bc);
	sqlite3_stmt *st = NULL;
	int rc, fin, got = 0, kept = 0;

	c->base.err[0] = '\0';
	rc = tx_begin(c, true);
	if (rc != 0)
		return rc;
	rc = q_open(c, SQL_ALERT_DUE, &st, "ii", now, (int64_t)max);
	while (rc == 0 && got < max && (rc = q_step(c, st)) == 1) {
		struct alert *a = &out[got];

		memset(a, 0, sizeof(*a));
		col_copy(st, 0, a->team, sizeof(a->team));
		a->period_start = sqlite3_column_int64(st, 1);
		a->threshold_ppm = sqlite3_column_int64(st, 2);
		col_copy(st, 3, a->url, sizeof(a->url));
		a->budget = sqlite3_column_int64(st, 4);
		a->committed = sqlite3_column_int64(st, 5);
		a->crossed_at = sqlite3_column_int64(st, 6);
		a->attempts = sqlite3_column_int64(st, 7);
		got++;
		rc = 0;
	}
	q_close(c, st);
	/* Lease each row so another replica does not send it at the same time. */
	for (int i = 0; i < got && rc == 0; i++) {
		int ch = q_exec(c, SQL_ALERT_LEASE, "itiiti", now + lease_s, out[i].team,
				out[i].period_start, out[i].threshold_ppm, out[i].url, now);
		if (ch < 0)
			rc = ch;
		else if (ch == 1)
			out[kept++] = out[i];
	}
	fin = tx_finish(c, rc == 0);
	if (rc == 0)
		rc = fin;
	if (rc == 0)
		*n = kept;
	return rc;
}

static int sq_alert_done(struct store_conn *bc, const struct alert *a, bool delivered,
			 int64_t next_at, const char *error, int64_t now)
{
	struct sq_conn *c = sq_conn_of(bc);
	int rc, fin, n;

	c->base.err[0] = '\0';
	rc = tx_begin(c, true);
	if (rc != 0)
		return rc;
	n = q_exec(c, SQL_ALERT_DONE, "iittiit", delivered ? now : (int64_t)0, next_at,
		   error ? error : "", a->team, a->period_start, a->threshold_ppm, a->url);
	if (n < 0)
		rc = n;
	fin = tx_finish(c, rc == 0);
	return rc != 0 ? rc : fin;
}

/* ---- self-service jobs ------------------------------------------------- */

#define JOB_COLS "id, token_id, idem_key, request_hash, team_id, name, allocation_id," \
	" status, body, created_at, updated_at"
static const char SQL_JOB_BY_ID[] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?";
static const char SQL_JOB_BY_KEY[] =
	"SELECT " JOB_COLS " FROM jobs WHERE token_id = ? AND idem_key = ?";
static const char SQL_JOB_INSERT[] =
	"INSERT INTO jobs(" JOB_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_JOB_UPDATE[] =
	"UPDATE jobs SET allocation_id = ?, status = ?, body = ?, updated_at = ? WHERE id = ?";

static int row_job(sqlite3_stmt *st, void *out)
{
	int bad = 0;
	struct job *j = out;

	bad |= col_copy(st, 0, j->id, sizeof(j->id));
	bad |= col_copy(st, 1, j->token_id, sizeof(j->token_id));
	bad |= col_copy(st, 2, j->idem_key, sizeof(j->idem_key));
	bad |= col_copy(st, 3, j->request_hash, sizeof(j->request_hash));
	bad |= col_copy(st, 4, j->team, sizeof(j->team));
	bad |= col_copy(st, 5, j->name, sizeof(j->name));
	bad |= col_copy(st, 6, j->allocation_id, sizeof(j->allocation_id));
	j->status = sqlite3_column_int(st, 7);
	bad |= col_copy(st, 8, j->body, sizeof(j->body));
	j->created_at = sqlite3_column_int64(st, 9);
	j->updated_at = sqlite3_column_int64(st, 10);
	return bad ? ERR_STORE : 0;
}

static int sq_job_begin(struct store_conn *bc, const struct job *j, struct job *out,
			bool *created, char *detail)
{
	struct sq_conn *c = sq_conn_of(bc);
	sqlite3_stmt *st = NULL;
	bool commit = false;
	int rc, n, fin;

	c->base.err[0] = '\0';
	*created = false;
	rc = tx_begin(c, true);
	if (rc != 0)
		goto out;
	if (j->idem_key[0]) {
		rc = q_open(c, SQL_JOB_BY_KEY, &st, "tt", j->token_id, j->idem_key);
		if (rc != 0)
			goto out;
		rc = q_step(c, st);
		if (rc == 1)
			rc = row_job(st, out);
		else if (rc == 0)
			rc = ERR_NOT_FOUND;
		q_close(c, st);
		if (rc == 0) {
			if (strcmp(out->request_hash, j->request_hash) != 0) {
				conn_err(c, "Idempotency-Key '%s' was used with a different request",
					 j->idem_key);
				rc = ERR_IDEMPOTENCY;
			}
			goto out;
		}
		if (rc != ERR_NOT_FOUND)
			goto out;
		rc = 0;
	}
	n = q_exec(c, SQL_JOB_INSERT, "tttttttitii", j->id, j->token_id, j->idem_key,
		   j->request_hash, j->team, j->name, j->allocation_id, (int64_t)j->status,
		   j->body, j->created_at, j->updated_at);
	if (n < 0) {
		rc = n;
		goto out;
	}
	/* No audit row here: the allocation's approval and cancel are audited. */
	*out = *j;
	*created = true;
	commit = true;
out:
	fin = tx_finish(c, commit || rc == 0);
	if (fin != 0)
		rc = fin;
	detail_out(c, rc, detail);
	return rc;
}

static int sq_job_update(struct store_conn *bc, const struct job *j, char *detail)
{
	struct sq_conn *c = sq_conn_of(bc);
	int rc, n, fin;

	c->base.err[0] = '\0';
	rc = tx_begin(c, true);
	if (rc != 0)
		goto out;
	n = q_exec(c, SQL_JOB_UPDATE, "titit", j->allocation_id, (int64_t)j->status, j->body,
		   j->updated_at, j->id);
	if (n < 0)
		rc = n;
	else if (n == 0)
		rc = ERR_NOT_FOUND;
out:
	fin = tx_finish(c, rc == 0);
	if (fin != 0)
		rc = fin;
	detail_out(c, rc, detail);
	return rc;
}

static int sq_job_get(struct store_conn *bc, const char *id, struct job *out)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct job *j;
	int rc;

	c->base.err[0] = '\0';
	j = malloc(sizeof(*j));
	if (!j)
		return ERR_NOMEM;
	rc = load_one(c, SQL_JOB_BY_ID, id, row_job, j);
	if (rc == 0)
		*out = *j;
	free(j);
	return rc;
}

static const char SQL_JOB_CLEANUP_DUE[] =
	"SELECT j.id, j.team_id, j.name, j.allocation_id, a.status FROM jobs j"
	" JOIN allocations a ON a.id = j.allocation_id"
	" WHERE j.status = 201 AND j.manifests_removed_at = 0"
	" AND a.status IN ('cancelled', 'expired', 'completed')"
	" AND (? = '' OR j.allocation_id = ?) ORDER BY j.created_at, j.id LIMIT ?";
static const char SQL_JOB_CLEANUP_DONE[] =
	"UPDATE jobs SET manifests_removed_at = ? WHERE id = ? AND manifests_removed_at = 0";

static int sq_job_cleanup_due(struct store_conn *bc, const char *alloc_id,
			      struct job_cleanup *out, int max, int *n)
{
	struct sq_conn *c = sq_conn_of(bc);
	sqlite3_stmt *st = NULL;
	const char *only = alloc_id ? alloc_id : "";
	int rc;

	c->base.err[0] = '\0';
	*n = 0;
	rc = q_open(c, SQL_JOB_CLEANUP_DUE, &st, "tti", only, only, (int64_t)max);
	if (rc != 0)
		return rc;
	while (*n < max && (rc = q_step(c, st)) == 1) {
		struct job_cleanup *jc = &out[*n];
		char status[16];
		int bad = col_copy(st, 0, jc->id, sizeof(jc->id));
		bad |= col_copy(st, 1, jc->team, sizeof(jc->team));
		bad |= col_copy(st, 2, jc->name, sizeof(jc->name));
		bad |= col_copy(st, 3, jc->allocation_id, sizeof(jc->allocation_id));
		bad |= col_copy(st, 4, status, sizeof(status));
		if (bad || alloc_status_parse(status, &jc->status) != 0) {
			store_bad_row("jobs", jc->id, "a field does not fit");
			continue;
		}
		(*n)++;
	}
	q_close(c, st);
	return rc < 0 ? rc : 0;
}

static int sq_job_cleanup_done(struct store_conn *bc, const char *job_id, int64_t at)
{
	struct sq_conn *c = sq_conn_of(bc);
	int rc, n, fin;

	c->base.err[0] = '\0';
	rc = tx_begin(c, true);
	if (rc != 0)
		return rc;
	n = q_exec(c, SQL_JOB_CLEANUP_DONE, "it", at, job_id);
	if (n < 0)
		rc = n;
	fin = tx_finish(c, rc == 0);
	return rc != 0 ? rc : fin;
}

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
	.migrations = sq_migrations,
	.nmigrations = (int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])),
	.rollup_fill_version = 4, /* the migration that made the monthly rollup */
	.allocate = sq_allocate,
};

/* ---- the backend ------------------------------------------------------- */

static const struct store_ops sq_ops = {
	.name = "sqlite",
	.conn_open = sq_conn_open,
	.conn_close = sq_conn_close,
	.destroy = sq_destroy,
	.migrate = ops_migrate,
	.ping = sq_ping,
	.token_create = ops_token_create,
	.token_by_hash = ops_token_by_hash,
	.token_list = ops_token_list,
	.token_revoke = ops_token_revoke,
	.admin_exists = ops_admin_exists,
	.gpu_type_put = sq_gpu_type_put,
	.gpu_type_get = sq_gpu_type_get,
	.gpu_type_list = sq_gpu_type_list,
	.gpu_type_seed = sq_gpu_type_seed,
	.team_put = sq_team_put,
	.team_get = sq_team_get,
	.team_list = sq_team_list,
	.team_ledger = sq_team_ledger,
	.allocate = sq_allocate,
	.alloc_get = ops_alloc_get,
	.alloc_list = ops_alloc_list,
	.alloc_transition = ops_alloc_transition,
	.alloc_expire_due = ops_alloc_expire_due,
	.costs = ops_costs,
	.audit_list = sq_audit_list,
	.cost_usage = ops_cost_usage,
	.cost_rollup_rebuild = ops_cost_rollup_rebuild,
	.alert_record = sq_alert_record,
	.alert_claim = sq_alert_claim,
	.alert_done = sq_alert_done,
	.job_begin = sq_job_begin,
	.job_update = sq_job_update,
	.job_get = sq_job_get,
	.job_cleanup_due = sq_job_cleanup_due,
	.job_cleanup_done = sq_job_cleanup_done,
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
