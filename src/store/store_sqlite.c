/*
 * store_sqlite.c - the SQLite driver of the store's driver interface (db.h):
 * connections (WAL, synchronous=FULL), statements prepared once per
 * connection, rows, transactions (a write is `BEGIN IMMEDIATE` under this
 * process's writer token, so our own threads queue here rather than in
 * SQLite's busy handler), error mapping, and the group-commit engine of
 * allocate: each call decides its request with ops_alloc_one in a SAVEPOINT
 * of a batch transaction on the writer connection and answers only after the
 * batch's COMMIT.  Every other operation is written once in ops_*.c.
 *
 * It must never: keep a transaction open across calls (a batch stays open
 * only while one of its members is still waiting), execute a statement
 * without passing db_fault_hit(), or answer before the batch's COMMIT.
 */
#include "store/store.h"
#include "store/db.h"
#include "store/ops.h"
#include "store/schema.h"
#include "store/store_int.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"


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

/* ---- errors ------------------------------------------------------------ */

/* Maps an SQLite failure to our codes and records sqlite3_errmsg. */
static int db_fail(struct sq_conn *c, int src, const char *what)
{
	int ext = sqlite3_extended_errcode(c->db);

	db_err(&c->base, "%s: %s", what, sqlite3_errmsg(c->db));
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

	for (size_t i = 0; cache && i < c->ncache; i++) {
		if (c->cache[i].sql == sql) {
			*out = c->cache[i].st;
			return 0;
		}
	}
	if (cache && c->ncache == c->cache_cap) {
		size_t cap = c->cache_cap ? c->cache_cap * 2 : 64;
		struct sq_cached *grown = realloc(c->cache, cap * sizeof(*grown));

		if (!grown)
			return ERR_NOMEM;
		c->cache = grown;
		c->cache_cap = cap;
	}
	src = sqlite3_prepare_v3(c->db, sql, -1, cache ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL);
	if (src != SQLITE_OK) {
		sqlite3_finalize(st);
		return db_fail(c, src, "prepare");
	}
	if (cache)
		c->cache[c->ncache++] = (struct sq_cached){sql, st};
	*out = st;
	return 0;
}

/* Gives a statement back: cached ones are reset, others finalized. */
static void q_close(sqlite3_stmt *st, bool cached)
{
	if (!cached) {
		(void)sqlite3_finalize(st);
		return;
	}
	/* The step's error was already reported; reset only re-arms. */
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

/*
 * SQL without parameters or rows through sqlite3_exec: scripts (migrations,
 * settings; ops_schema.c passed the fault point) and BEGIN/COMMIT (db_run
 * injects their faults itself).  `what` leads the error text.
 */
static int q_exec(struct sq_conn *c, const char *sql, const char *what)
{
	int src = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	return src == SQLITE_OK ? 0 : db_fail(c, src, what);
}

/* Recovery path (never fault-injected): ends whatever transaction is open. */
static void q_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- transactions ------------------------------------------------------ */

static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_COMMIT[] = "COMMIT";

/* Blocks until this thread holds the writer token (see struct sq_store);
 * on failure the reason is in c's error. */
static int writer_take(struct sq_store *s, struct sq_conn *c)
{
	if (pthread_mutex_lock(&s->wlock) != 0) {
		db_err(&c->base, "cannot take the write lock");
		return ERR_STORE;
	}
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

/* Gives the writer token back if c holds it. */
static void conn_unlock(struct sq_conn *c)
{
	if (c->locked) {
		c->locked = false;
		writer_give(sq_store_of(c));
	}
}

/* ---- schema ------------------------------------------------------------ */

/* src/store/schema/sqlite/vN.sql (schema.h); migration i brings version i + 1. */
static const char *const drv_migrations[] = SCHEMA_FILES(sqlite);

/* ---- connections ------------------------------------------------------- */

static int drv_conn_open(struct store *bs, struct store_conn **out, char *why)
{
	struct sq_store *s = (struct sq_store *)bs;
	struct sq_conn *c = calloc(1, sizeof(*c));
	int src;

	if (!c) { /* why is reported by the caller: never left unset */
		snprintf(why, STORE_DETAIL_LEN, "out of memory");
		return ERR_NOMEM;
	}
	c->base.store = bs;
	/* NOMUTEX: a connection is used by one thread at a time (pool rule). */
	src = sqlite3_open_v2(s->path, &c->db,
			      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_busy_timeout(c->db, 5000);
	/* Connection setup is not a store operation, so it bypasses the fault
	 * countdown (a lazily opened connection must not shift it). */
	if (src == SQLITE_OK)
		src = sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				   " PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
	if (src != SQLITE_OK) {
		snprintf(why, STORE_DETAIL_LEN, "%s: %s", s->path,
			 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(src));
		sqlite3_close(c->db);
		free(c);
		return (src & 0xff) == SQLITE_BUSY ? ERR_UNAVAILABLE : ERR_STORE;
	}
	*out = &c->base;
	return 0;
}

static void drv_conn_close(struct store_conn *bc)
{
	struct sq_conn *c = sq_conn_of(bc);

	for (size_t i = 0; i < c->ncache; i++)
		(void)sqlite3_finalize(c->cache[i].st);
	free(c->cache);
	if (sqlite3_close(c->db) != SQLITE_OK)
		(void)sqlite3_close_v2(c->db); /* closes when the last statement goes */
	free(c);
}

static void drv_destroy(struct store *bs)
{
	struct sq_store *s = (struct sq_store *)bs;

	if (s->wconn)
		drv_conn_close(&s->wconn->base);
	pthread_cond_destroy(&s->wturn);
	pthread_cond_destroy(&s->wdone);
	pthread_mutex_destroy(&s->wlock);
	free(s->path);
	free(s);
}

/* ---- group commit (allocate) ------------------------------------------- */

static const char SQL_SAVEPOINT[] = "SAVEPOINT a";
static const char SQL_RELEASE[] = "RELEASE a";

/* Token held: opens the writer connection unless it is open. */
static int writer_conn(struct sq_store *s)
{
	struct store_conn *w = NULL;
	char why[STORE_DETAIL_LEN];
	int rc = s->wconn ? 0 : drv_conn_open(&s->base, &w, why);

	if (rc != 0)
		store_conn_failed(why);

	if (w)
		s->wconn = sq_conn_of(w);
	return rc;
}

/*
 * Token held: makes sure the writer connection exists and a batch
 * transaction is open on it.  On failure the reason is in caller->base.err.
 */
static int batch_join(struct sq_store *s, struct sq_conn *caller)
{
	int n = writer_conn(s);

	if (n != 0) {
		db_err(&caller->base, "cannot open the writer connection: %s", err_name(n));
		return n;
	}
	if (s->batch_open)
		return 0;
	s->wconn->base.err[0] = '\0';
	n = db_exec(&s->wconn->base, SQL_BEGIN_IMMEDIATE, "");
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
		db_err(&w->base, "a failed statement could not be undone; the batch was rolled back");
		rc = ERR_STORE;
	} else if (kept > 0) {
		int n = db_exec(&w->base, SQL_COMMIT, "");
		if (n < 0)
			rc = n;
	}
	if (rc != 0 || kept == 0)
		q_rollback(w->db);
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
static int drv_allocate(struct store_conn *bc, const struct actor *who, const struct alloc_request *r,
			int64_t start_timeout_s, int64_t now, struct idem *idem,
			struct alloc_outcome *o, char *detail)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct sq_store *s = sq_store_of(c);
	struct sq_waiter me = {0};
	struct alloc_outcome lo = {0};
	struct sq_conn *w;
	char *replay = NULL; /* replayed answer, handed to idem on success */
	int replay_status = 0, rc, n;
	bool in_savepoint, keep = false, wait_batch;

	c->base.err[0] = '\0';
	if (idem) {
		idem->replayed = false;
		idem->legacy_body = NULL;
	}
	rc = writer_take(s, c);
	if (rc != 0)
		goto out;
	rc = batch_join(s, c);
	if (rc != 0) {
		writer_give(s);
		goto out;
	}
	w = s->wconn;
	w->base.err[0] = '\0';
	n = db_exec(&w->base, SQL_SAVEPOINT, "");
	in_savepoint = n >= 0;
	rc = in_savepoint ? ops_alloc_one(&w->base, who, r, start_timeout_s, now, idem, &lo,
					  &replay_status, &replay, &keep)
			  : n;
	if (keep && (n = db_exec(&w->base, SQL_RELEASE, "")) < 0) {
		rc = n;
		keep = false;
	}
	if (!keep)
		batch_undo_part(s, in_savepoint);
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
	o->suggest = lo.suggest; /* (an unknown gpu_type's valid ids) */
	if (me.committed) {
		if (replay) {
			rc = ops_idem_replay(replay_status, replay, idem, o, c->base.err,
					     sizeof(c->base.err));
			replay = NULL;
		} else {
			*o = lo;
		}
	}
out:
	free(replay);
	db_detail(&c->base, rc, detail);
	return rc;
}

/* ---- the driver (db.h) ------------------------------------------------- */

struct sq_rows {
	struct db_rows base; /* must be first */
	sqlite3_stmt *st;
	bool cached;
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
		db_err(&c->base, "internal: %d parameters bound, %d expected", n,
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
	if (rc == 0 && rows) {
		r = malloc(sizeof(*r));
		if (r) {
			*r = (struct sq_rows){{bc}, st, cached};
			*rows = &r->base;
			return 0;
		}
		rc = ERR_NOMEM;
	}
	if (rc == 0) {
		while ((src = sqlite3_step(st)) == SQLITE_ROW)
			; /* rows of a statement run for its effect (PRAGMA echoes) */
		rc = src == SQLITE_DONE ? sqlite3_changes(c->db) : db_fail(c, src, "step");
	}
	q_close(st, cached);
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

	q_close(r->st, r->cached);
	free(r);
}

static int drv_begin(struct store_conn *bc, bool write)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct sq_store *s = sq_store_of(c);
	const char *sql = write ? SQL_BEGIN_IMMEDIATE : SQL_BEGIN;
	int rc;

	if (write) {
		if (writer_take(s, c) != 0)
			return ERR_STORE;
		c->locked = true;
		batch_finish(s);
	}
	rc = q_exec(c, sql, sql);
	if (rc != 0) {
		conn_unlock(c);
		return rc;
	}
	c->base.in_tx = true;
	return 0;
}

static int drv_finish(struct store_conn *bc, bool commit)
{
	struct sq_conn *c = sq_conn_of(bc);
	int rc = 0;

	if (!c->base.in_tx)
		return 0;
	if (commit) {
		rc = q_exec(c, SQL_COMMIT, SQL_COMMIT);
		if (rc == 0 && c->locked)
			store_note_write(c->base.store, false); /* writes work (again) */
	}
	if (!commit || rc != 0)
		q_rollback(c->db);
	c->base.in_tx = false;
	conn_unlock(c);
	return rc;
}

static int drv_script(struct store_conn *bc, const char *sql)
{
	return q_exec(sq_conn_of(bc), sql, "exec");
}

/*
 * WAL + synchronous=NORMAL: a commit survives a crash of the process, not
 * of the machine.  Set on the caller's connection and on the writer
 * connection that allocate's batches commit on (opened for it if needed),
 * with the write token held and no batch open, so no batch straddles the
 * change.
 */
static int drv_set_durable(struct store_conn *bc, bool durable)
{
	struct sq_conn *c = sq_conn_of(bc);
	struct sq_store *s = sq_store_of(c);
	const char *sql = durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
	int rc = q_exec(c, sql, "exec");

	if (rc != 0)
		return rc;
	if (writer_take(s, c) != 0)
		return ERR_STORE;
	if (s->batch_open) {
		db_err(bc, "a batch is open");
		rc = ERR_STORE;
	} else {
		rc = writer_conn(s);
	}
	if (rc == 0)
		rc = q_exec(s->wconn, sql, "exec");
	writer_give(s);
	return rc;
}

static const struct db_driver sq_driver = {
	.name = "sqlite",
	DB_DRIVER_FNS,
	.rollup_fill_version = 7, /* the migration that made the last rollup (monthly usage) */
};

/* ---- the backend ------------------------------------------------------- */

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

int store_sqlite_new(const char *path, struct store **out)
{
	struct sq_store *s = calloc(1, sizeof(*s));
	int rc = !s || !(s->path = strdup(path)) ? ERR_NOMEM : sq_sync_init(s) ? ERR_STORE : 0;

	if (rc != 0) {
		if (s)
			free(s->path);
		free(s);
		return rc;
	}
	s->base.drv = &sq_driver;
	*out = &s->base;
	return 0;
}
