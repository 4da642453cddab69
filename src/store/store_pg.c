/*
 * store_pg.c - the PostgreSQL driver (libpq) of the store's driver interface
 * (db.h): connections (re-opened when broken), statements prepared once per
 * connection (`?` numbered $1..., DB_LOCK as FOR UPDATE), pipelines, rows,
 * transactions at READ COMMITTED, the mapping of SQLSTATEs to the program's
 * errors (deadlock and serialization failure: DB_RETRY), the token cache's
 * hooks, and the group-commit engine of allocate: one leader runs the
 * concurrent allocations of this process in one transaction, read in one
 * pipeline, decided in C by ops_alloc_decide on running totals, written with
 * the COMMIT in another (docs/architecture.md, "PostgreSQL").  Every other
 * operation is written once in ops_*.c.
 *
 * It must never: keep a transaction open across calls, answer an allocation
 * before its batch's COMMIT, execute a statement without passing
 * db_fault_hit() (db.c, or pq_pipeline here), retry a transaction whose
 * COMMIT outcome is unknown, store a token secret, or use floating point money.
 */
#include "store/store_pg.h"
#include "store/db.h"
#include "store/ops.h"
#include "store/schema.h"
#include "store/store_int.h"
#include "store/store_pg_tokens.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
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
#include "util/buf.h"
#include "util/util.h"

#define PG_MAX_PARAMS 24 /* the most any statement of the batch engine takes: 18 arrays */
#define PG_RETRIES 8
#define PG_BATCH_MAX 128  /* allocation requests per group commit */
#define PG_BATCH_LEADERS 3 /* group commits reading and deciding at once per daemon */
#define PG_TEAM_SLOTS 64   /* single-team batches tracked at once (queue_hot) */
/* Internal only: a deadlock or serialization failure; the operation reruns. */
#define PG_RETRY DB_RETRY
/* Internal only: an optimistic batch met a concurrent change; it reruns locked. */
#define PG_CONFLICT (-1001)

struct pg_store {
	struct store base; /* must be first */
	char *url;         /* owned; passed to libpq as is (TLS options included) */
	long statement_timeout_ms;
	struct pg_tokens *tokens; /* owned: token lookups, forgotten on any revocation */
	/* Group commit of allocations (pg_allocate): the queue and its leader. */
	pthread_mutex_t bmu;
	struct pg_alloc_req *bhead, *btail;
	int leading; /* batches reading and deciding */
	/* The one team of each single-team batch running, from its reads to its
	 * COMMIT (NULL: free). */
	const char *team_busy[PG_TEAM_SLOTS];
};

struct pg_conn {
	struct store_conn base; /* must be first */
	PGconn *db;
	/* Prepared statements p0, p1 ...: identity is the address of a static SQL string. */
	const char **prepared; /* owned; grows to every static statement used */
	size_t nprepared, prepared_cap;
	/* Set while this connection leads a group commit that holds a leader slot. */
	bool leading;
};

struct pg_rows {
	struct db_rows base; /* must be first */
	PGresult *res;
	int row; /* the current row; -1 before the first */
};

/* Parameters of one statement, as text. */
struct pg_params {
	const char *v[PG_MAX_PARAMS];
	char ibuf[PG_MAX_PARAMS][24];
	int n;
};

/* ---- errors ------------------------------------------------------------ */

static struct pg_conn *pg_conn_of(struct store_conn *bc)
{
	return (struct pg_conn *)bc;
}

static struct pg_store *pg_store_of(struct pg_conn *c)
{
	return (struct pg_store *)c->base.store;
}

static void msg_trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* Maps a failed result (or a NULL one) to our codes; records the message. */
static int db_fail(struct pg_conn *c, PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->db);

	db_err(&c->base, "%s: %s", what, msg && *msg ? msg : "connection lost");
	msg_trim(c->base.err);
	if (PQstatus(c->db) != CONNECTION_OK)
		return ERR_UNAVAILABLE;
	if (!state)
		return ERR_UNAVAILABLE; /* no server answer at all */
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return PG_RETRY;
	if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	    strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
	    strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0 ||
	    strcmp(state, "53300") == 0)
		return ERR_UNAVAILABLE; /* unreachable, shutting down, timed out, too busy */
	if (strcmp(state, "23505") == 0)
		return ERR_CONFLICT;
	if (strcmp(state, "53100") == 0 || strcmp(state, "53200") == 0) {
		/* disk full / out of memory on the server: retry later, not a bug */
		store_note_write(c->base.store, true);
		return ERR_UNAVAILABLE;
	}
	return ERR_STORE;
}

/* ---- connections ------------------------------------------------------- */

/* Per-connection settings; connection setup is not fault-injected. */
static int conn_setup(struct pg_conn *c)
{
	char sql[256];
	PGresult *r;
	int rc = 0;

	snprintf(sql, sizeof(sql),
		 "SET statement_timeout = %ld; SET lock_timeout = %ld;"
		 " SET default_transaction_isolation = 'read committed'; SET client_min_messages = warning",
		 pg_store_of(c)->statement_timeout_ms, pg_store_of(c)->statement_timeout_ms);
	r = PQexec(c->db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = db_fail(c, r, "setup");
	PQclear(r);
	c->nprepared = 0;
	c->base.in_tx = false;
	return rc == PG_RETRY ? ERR_UNAVAILABLE : rc;
}

/* Re-opens a connection that is known to be broken. */
static int conn_revive(struct pg_conn *c)
{
	c->nprepared = 0; /* server-side statements died with the session */
	c->base.in_tx = false;
	PQreset(c->db);
	if (PQstatus(c->db) != CONNECTION_OK) {
		db_err(&c->base, "database unreachable: %s", PQerrorMessage(c->db));
		msg_trim(c->base.err);
		return ERR_UNAVAILABLE;
	}
	return conn_setup(c);
}

/* Every operation starts here: a broken connection is re-opened first. */
static int conn_ready(struct pg_conn *c)
{
	c->base.err[0] = '\0';
	if (PQstatus(c->db) == CONNECTION_OK)
		return 0;
	return conn_revive(c);
}

static int pg_conn_open(struct store *bs, struct store_conn **out)
{
	struct pg_store *s = (struct pg_store *)bs;
	struct pg_conn *c = NULL;
	/* Our defaults first: settings in the URL override them. */
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {"10", "plinth", s->url, NULL};
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c)
		return ERR_NOMEM;
	c->base.store = bs;
	c->db = PQconnectdbParams(keys, vals, 1);
	if (!c->db) {
		free(c);
		return ERR_NOMEM;
	}
	if (PQstatus(c->db) != CONNECTION_OK) {
		rc = ERR_UNAVAILABLE;
		goto fail;
	}
	rc = conn_setup(c);
	if (rc != 0)
		goto fail;
	*out = &c->base;
	return 0;
fail:
	PQfinish(c->db);
	free(c);
	return rc;
}

static void pg_conn_close(struct store_conn *bc)
{
	struct pg_conn *c = pg_conn_of(bc);

	if (!c)
		return;
	PQfinish(c->db);
	free(c->prepared);
	free(c);
}

static void pg_destroy(struct store *bs)
{
	struct pg_store *s = (struct pg_store *)bs;

	if (!s)
		return;
	pg_tokens_free(s->tokens);
	pthread_mutex_destroy(&s->bmu);
	free(s->url);
	free(s);
}

/* ---- statements -------------------------------------------------------- */

static int params_addv(struct pg_conn *c, struct pg_params *p, const char *fmt, va_list ap)
{
	for (const char *f = fmt; *f; f++) {
		if (p->n >= PG_MAX_PARAMS) {
			db_err(&c->base, "internal: too many parameters");
			return ERR_STORE;
		}
		if (*f == 't') {
			p->v[p->n] = va_arg(ap, const char *);
		} else if (*f == 'i') {
			snprintf(p->ibuf[p->n], sizeof(p->ibuf[p->n]), "%lld",
				 (long long)va_arg(ap, int64_t));
			p->v[p->n] = p->ibuf[p->n];
		} else {
			db_err(&c->base, "internal: bad bind format '%c'", *f);
			return ERR_STORE;
		}
		p->n++;
	}
	return 0;
}

static int params_add(struct pg_conn *c, struct pg_params *p, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = params_addv(c, p, fmt, ap);
	va_end(ap);
	return rc;
}

/*
 * The PostgreSQL text of a statement written for db.h: `?` becomes $1, $2 ...
 * DB_LOCK becomes FOR UPDATE, DB_LOCK_SKIP FOR UPDATE SKIP LOCKED (statements
 * of this file pass unchanged).
 * Owned by the caller; NULL without memory.
 */
static char *pg_sql(const char *sql)
{
	static const char lock[] = DB_LOCK, skip[] = DB_LOCK_SKIP;
	size_t len = strlen(sql), marks = 0, n = 0;
	char *out;
	int param = 0;

	for (const char *q = sql; *q; q++)
		marks += *q == '?';
	out = malloc(2 * len + marks * 4 + 16); /* a marker's clause is under twice its length */
	if (!out)
		return NULL;
	for (const char *q = sql; *q;) {
		if (*q == '?') {
			n += (size_t)sprintf(out + n, "$%d", ++param);
			q++;
		} else if (strncmp(q, skip, sizeof(skip) - 1) == 0) {
			memcpy(out + n, " FOR UPDATE SKIP LOCKED", 23);
			n += 23;
			q += sizeof(skip) - 1;
		} else if (strncmp(q, lock, sizeof(lock) - 1) == 0) {
			memcpy(out + n, " FOR UPDATE", 11);
			n += 11;
			q += sizeof(lock) - 1;
		} else {
			out[n++] = *q++;
		}
	}
	out[n] = '\0';
	return out;
}

/* The statement name of a cached SQL string, preparing it on first use. */
static int stmt_name(struct pg_conn *c, const char *sql, char *name, size_t len)
{
	PGresult *r;
	size_t i;
	int rc;

	for (i = 0; i < c->nprepared; i++) {
		if (c->prepared[i] == sql)
			return util_fmt(name, len, "p%zu", i) == 0 ? 0 : ERR_STORE;
	}
	if (c->nprepared == c->prepared_cap) {
		size_t cap = c->prepared_cap ? c->prepared_cap * 2 : 64;
		const char **grown = realloc(c->prepared, cap * sizeof(*grown));

		if (!grown)
			return ERR_NOMEM;
		c->prepared = grown;
		c->prepared_cap = cap;
	}
	if (util_fmt(name, len, "p%zu", c->nprepared) != 0)
		return ERR_STORE;
	{
		char *text = pg_sql(sql);

		if (!text)
			return ERR_NOMEM;
		r = PQprepare(c->db, name, text, 0, NULL);
		free(text);
	}
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		rc = db_fail(c, r, "prepare");
		PQclear(r);
		return rc;
	}
	PQclear(r);
	c->prepared[c->nprepared++] = sql;
	return 0;
}

/*
 * THE one place a statement is executed.  cached: sql is a static string
 * run as a prepared statement of this connection; else a one-off.  *out gets
 * the result (caller PQclears) when given.  A statement outside a
 * transaction that meets a dead connection is retried once on a fresh one:
 * it changed nothing (a read, or BEGIN).  db_fault_hit() (the store's one fault point) makes it fail on
 * demand so tests can prove rollback.
 */
static int drv_finish(struct store_conn *bc, bool commit);

static int pq_exec_v(struct pg_conn *c, const char *sql, bool cached, int np,
		     const char *const *pv, PGresult **out)
{
	for (int attempt = 0;; attempt++) {
		char name[16] = "";
		PGresult *r = NULL;
		ExecStatusType st;
		int rc;

		rc = cached ? stmt_name(c, sql, name, sizeof(name)) : 0;
		if (rc == 0) {
			if (name[0]) {
				r = PQexecPrepared(c->db, name, np, pv, NULL, NULL, 0);
			} else {
				char *text = pg_sql(sql);

				if (!text)
					return ERR_NOMEM;
				r = PQexecParams(c->db, text, np, NULL, pv, NULL, NULL, 0);
				free(text);
			}
			st = PQresultStatus(r);
			if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
				if (out)
					*out = r;
				else
					PQclear(r);
				return 0;
			}
			rc = db_fail(c, r, "statement");
			PQclear(r);
		}
		if (rc == ERR_UNAVAILABLE && !c->base.in_tx && attempt == 0 &&
		    PQstatus(c->db) != CONNECTION_OK && conn_revive(c) == 0)
			continue;
		return rc;
	}
}

/* A multi-statement script (migrations), simple protocol; also a fault point. */
static int q_script(struct pg_conn *c, const char *sql)
{
	PGresult *r;
	int rc = 0;

	r = PQexec(c->db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = db_fail(c, r, "exec");
	PQclear(r);
	return rc;
}

/* ---- pipelines --------------------------------------------------------- */

#define PG_PIPE_MAX 4
#define PG_PIPE_LONG 1024 /* statements in one pipeline (the set-based batch) */

/* One statement of a pipeline: a cached SQL string, its parameters, its result. */
struct pg_step {
	const char *sql;
	struct pg_params p;
	PGresult *res; /* the result of a statement that succeeded (caller PQclears) */
};

static int step_set(struct pg_conn *c, struct pg_step *st, const char *sql, const char *fmt, ...)
{
	va_list ap;
	int rc;

	st->sql = sql;
	st->p.n = 0;
	st->res = NULL;
	va_start(ap, fmt);
	rc = params_addv(c, &st->p, fmt, ap);
	va_end(ap);
	return rc;
}

static void steps_clear(struct pg_step *st, int n)
{
	for (int i = 0; i < n; i++) {
		PQclear(st[i].res);
		st[i].res = NULL;
	}
}

/*
 * Runs n cached statements in order in ONE round trip (libpq pipeline
 * mode); only inside a transaction, which any failure dooms anyway.
 * Returns the first failure; the statements after it do not run.  A fault
 * injected into any of them (same point as pq_exec) fails the call before
 * anything is sent.  If the pipeline cannot be finished cleanly the session
 * is reset, which rolls the transaction back on the server.
 */
static int pq_pipeline(struct pg_conn *c, struct pg_step *st, int n)
{
	char(*names)[16] = NULL;
	bool broken = false;
	int rc = 0, sent = 0;
	PGresult *r;

	if (n > PG_PIPE_LONG) {
		db_err(&c->base, "internal: pipeline too long");
		return ERR_STORE;
	}
	for (int i = 0; i < n; i++) {
		if (db_fault_hit(&c->base))
			return ERR_STORE;
	}
	names = malloc(sizeof(*names) * (size_t)(n > 0 ? n : 1));
	if (!names)
		return ERR_NOMEM;
	for (int i = 0; i < n; i++) {
		rc = stmt_name(c, st[i].sql, names[i], sizeof(names[i]));
		if (rc != 0) {
			free(names);
			return rc;
		}
	}
	if (PQenterPipelineMode(c->db) != 1) {
		free(names);
		return db_fail(c, NULL, "pipeline");
	}
	for (; sent < n; sent++) {
		int ok = names[sent][0]
				 ? PQsendQueryPrepared(c->db, names[sent], st[sent].p.n, st[sent].p.v,
						       NULL, NULL, 0)
				 : PQsendQueryParams(c->db, st[sent].sql, st[sent].p.n, NULL,
						     st[sent].p.v, NULL, NULL, 0);
		if (!ok) {
			rc = db_fail(c, NULL, "pipeline send");
			broken = true;
			break;
		}
	}
	if (!broken && PQpipelineSync(c->db) != 1) {
		rc = db_fail(c, NULL, "pipeline sync");
		broken = true;
	}
	for (int i = 0; i < sent && !broken; i++) {
		ExecStatusType es;

		r = PQgetResult(c->db);
		if (!r) {
			if (rc == 0)
				rc = db_fail(c, NULL, "pipeline");
			broken = true;
			break;
		}
		es = PQresultStatus(r);
		if ((es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) && rc == 0) {
			st[i].res = r;
		} else {
			if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK &&
			    es != PGRES_PIPELINE_ABORTED && rc == 0)
				rc = db_fail(c, r, "statement");
			PQclear(r);
		}
		r = PQgetResult(c->db); /* the end of this statement's results */
		if (r) {
			PQclear(r);
			broken = true;
		}
	}
	if (!broken) {
		r = PQgetResult(c->db);
		if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
			broken = true;
		PQclear(r);
	}
	if (!broken && PQexitPipelineMode(c->db) != 1)
		broken = true;
	if (broken) {
		if (rc == 0) {
			db_err(&c->base, "pipeline: %s", PQerrorMessage(c->db));
			msg_trim(c->base.err);
			rc = ERR_UNAVAILABLE;
		}
		/* The session is unusable for this transaction: a live one is
		 * reset (the server rolls the transaction back), a dead one is
		 * re-opened on its next use. */
		if (PQstatus(c->db) == CONNECTION_OK)
			(void)conn_revive(c);
		c->base.in_tx = false;
	}
	if (rc != 0)
		steps_clear(st, n);
	free(names);
	return rc;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
	const char *v = PQgetvalue(r, row, col);

	return v && *v ? (int64_t)strtoll(v, NULL, 10) : 0;
}

/* Copies a text column into buf (len bytes): 0, or -1 when it does not fit. */
static int col_copy(const PGresult *r, int row, int col, char *buf, size_t len)
{
	const char *t = PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
	size_t n = t ? strlen(t) : 0;
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

/* ---- transactions ------------------------------------------------------ */

static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_BEGIN_RO[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
static const char SQL_COMMIT[] = "COMMIT";
/* For the batch's fixed-shape statements (key lookups, array inserts) a
 * custom plan buys nothing, and PostgreSQL plans the first five runs of each
 * on every connection that way. */
static const char SQL_GENERIC_PLANS[] = "SET LOCAL plan_cache_mode = force_generic_plan";

/* ---- schema ------------------------------------------------------------ */

/* src/store/schema/postgres/vN.sql (schema.h); migration i brings version i + 1. */
static const char *const pg_migrations[] = {
	(const char *)schema_postgres_v1, (const char *)schema_postgres_v2,
	(const char *)schema_postgres_v3, (const char *)schema_postgres_v4,
	(const char *)schema_postgres_v5, (const char *)schema_postgres_v6,
	(const char *)schema_postgres_v7, (const char *)schema_postgres_v8,
};

/* Replicas starting together migrate one at a time. */
static const char SQL_MIG_LOCK[] = "SELECT pg_advisory_xact_lock(7164757410)";
/* The rollup fill against completions (db.h): their upserts take ROW
 * EXCLUSIVE, which this waits for and then holds off until the COMMIT. */
static const char SQL_ROLLUP_LOCK[] =
	"LOCK TABLE cost_daily_approved, cost_monthly_approved, cost_daily_usage, cost_monthly_usage"
	" IN SHARE ROW EXCLUSIVE MODE";

/* ---- retries ----------------------------------------------------------- */

/*
 * A write that met a deadlock or serialization failure was rolled back in
 * full, so it is simply run again (a bounded number of times).
 */
#define PG_RETRYING(c, call)                                           \
	({                                                             \
		int rc_ = conn_ready(c);                               \
		for (int try_ = 0; rc_ == 0 && try_ < PG_RETRIES; try_++) { \
			rc_ = (call);                                  \
			if (rc_ != PG_RETRY)                           \
				break;                                 \
			c->base.err[0] = '\0';                              \
		}                                                      \
		if (rc_ == PG_RETRY) {                                 \
			db_err(&c->base, "too much contention, retry later"); \
			rc_ = ERR_UNAVAILABLE;                         \
		}                                                      \
		rc_;                                                   \
	})

/* ---- rows -------------------------------------------------------------- */


static int row_gpu(const PGresult *r, int i, void *out)
{
	int bad = 0;
	struct gpu_type *g = out;

	memset(g, 0, sizeof(*g));
	bad |= col_copy(r, i, 0, g->id, sizeof(g->id));
	bad |= col_copy(r, i, 1, g->name, sizeof(g->name));
	g->price_micros = col_i64(r, i, 2);
	bad |= col_copy(r, i, 3, g->price_date, sizeof(g->price_date));
	bad |= col_copy(r, i, 4, g->price_source, sizeof(g->price_source));
	g->capacity = col_i64(r, i, 5);
	g->allocated = col_i64(r, i, 6);
	g->updated_at = col_i64(r, i, 7);
	g->retired_at = col_i64(r, i, 8);
	return bad ? ERR_STORE : 0;
}

static int row_team(const PGresult *r, int i, void *out)
{
	int bad = 0;
	struct team *t = out;
	char period[32];

	memset(t, 0, sizeof(*t));
	bad |= col_copy(r, i, 0, t->id, sizeof(t->id));
	bad |= col_copy(r, i, 1, t->display_name, sizeof(t->display_name));
	t->budget_micros = col_i64(r, i, 2);
	bad |= col_copy(r, i, 3, period, sizeof(period));
	bad |= col_copy(r, i, 4, t->thresholds_json, sizeof(t->thresholds_json));
	t->created_at = col_i64(r, i, 5);
	t->updated_at = col_i64(r, i, 6);
	bad |= col_copy(r, i, 7, t->admins_json, sizeof(t->admins_json));
	t->retired_at = col_i64(r, i, 8);
	return !bad && period_kind_parse(period, &t->period) == 0 ? 0 : ERR_STORE;
}

static const char SQL_GPU_BY_ID[] = "SELECT " GPU_COLS " FROM gpu_types WHERE id = $1";
static const char SQL_GPU_LOCK[] = "SELECT " GPU_COLS " FROM gpu_types WHERE id = $1 FOR UPDATE";

/* ---- audit ------------------------------------------------------------- */

/* ---- tokens ------------------------------------------------------------ */

static const char SQL_TOKEN_NOTIFY[] = "SELECT pg_notify('" PG_TOKENS_CHANNEL "', '')";

/* Cached while a listener hears every revocation (store_pg_tokens.c). */
static int pg_token_by_hash(struct store_conn *bc, const char *hash, struct token *out)
{
	struct pg_conn *c = pg_conn_of(bc);
	struct pg_store *s = pg_store_of(c);
	struct token t;
	uint64_t gen = 0;
	int rc;

	if (pg_tokens_get(s->tokens, hash, out, &gen))
		return 0;
	rc = ops_token_read(bc, hash, &t);
	if (rc == 0) {
		pg_tokens_put(s->tokens, gen, hash, &t);
		*out = t;
	}
	return rc;
}

/* ---- GPU types --------------------------------------------------------- */


/* ---- teams ------------------------------------------------------------- */

/* A decision holds its team row (KEY SHARE) to its COMMIT: a team.put (FOR
 * UPDATE) waits for decisions in flight and they for it, so no decision ever
 * uses a budget or period that a committed change replaced. */
static const char SQL_TEAM_SHARE[] =
	"SELECT " TEAM_COLS " FROM teams WHERE id = $1 FOR KEY SHARE";
static const char SQL_PERIOD_GET[] =
	"SELECT spent, reserved FROM team_periods WHERE team_id = $1 AND period_start = $2";
static const char SQL_PERIOD_LOCK[] =
	"SELECT spent, reserved FROM team_periods WHERE team_id = $1 AND period_start = $2"
	" FOR UPDATE";
/* The team's latest period row at a time (its current one, unless a new
 * period has begun and has no row yet). */
static const char SQL_PERIOD_AT[] =
	"SELECT period_start, period_end, spent, reserved FROM team_periods"
	" WHERE team_id = $1 AND period_start <= $2 ORDER BY period_start DESC LIMIT 1";
/* SQL_PERIOD_ENSURE that does not wait: ON CONFLICT alone waits for a
 * transaction that is updating the existing row, which would hold an
 * optimistic batch behind the batch before it.  Inserts only when the row is
 * not in the snapshot; ON CONFLICT still settles a race to create it. */
static const char SQL_PERIOD_ENSURE_QUIET[] =
	"INSERT INTO team_periods(team_id, period_start, period_end, spent, reserved)"
	" SELECT $1::text, $2::bigint, $3::bigint, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM"
	" team_periods WHERE team_id = $1::text AND period_start = $2::bigint)"
	" ON CONFLICT (team_id, period_start) DO NOTHING";


/* ---- allocations ------------------------------------------------------- */

/* Concurrent requests with one Idempotency-Key queue here, so the second
 * sees the first's stored answer instead of deciding again. */
static const char SQL_ALLOC_DUE[] =
	"SELECT " ALLOC_COLS " FROM allocations WHERE status = 'approved' AND expires_at <= $1"
	" ORDER BY expires_at, id FOR UPDATE";
static const char SQL_IDEM_LOCK[] =
	"SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))";
static const char SQL_IDEM_GET[] =
	"SELECT request_hash, status, body FROM idempotency WHERE token_id = $1 AND key = $2";


/* Expires the due allocations r (rows of SQL_ALLOC_DUE, locked) at now. */
static int expire_rows(struct pg_conn *c, PGresult *r, int64_t now, int *count)
{
	struct pg_rows rows = {.base = {.conn = &c->base}, .res = r, .row = -1};

	return ops_expire_rows(&c->base, &rows.base, now, count);
}

/*
 * The set-based batch sends its COMMIT in the same pipeline as its writes,
 * so the defensive re-check of the moves must abort the transaction inside
 * SQL: a failed check (or a missing row) casts its message to int, which
 * raises an error, and the pipeline skips the COMMIT.  The message names
 * count(*) so that the planner cannot fold (and raise) it while planning
 * with known parameters.  $4: the team's budget.
 */
#define PG_CHECK_FAILED "invariant violated" /* in both messages; batch_set_once looks for it */
static const char SQL_PERIOD_MOVE_CHECKED[] =
	"WITH u AS (UPDATE team_periods SET reserved = reserved + $1"
	" WHERE team_id = $2 AND period_start = $3 RETURNING spent, reserved)"
	" SELECT CASE WHEN count(*) = 1 AND max(spent + reserved) <= $4 THEN 0"
	" ELSE ('ledger " PG_CHECK_FAILED " for team ' || $2 || ', rows: ' || count(*))::int END"
	" FROM u";
static const char SQL_GPU_MOVE_CHECKED[] =
	"WITH u AS (UPDATE gpu_types SET allocated = allocated + $1 WHERE id = $2"
	" RETURNING allocated, capacity)"
	" SELECT CASE WHEN count(*) = 1 AND max(allocated - capacity) <= 0 THEN 0"
	" ELSE ('capacity " PG_CHECK_FAILED " for gpu type ' || $2 || ', rows: ' || count(*))::int"
	" END FROM u";

/*
 * One allocation request in a group-commit batch (see pg_allocate).  The
 * member that asked owns it; the leader fills the staged and out fields, and
 * the member hands the outcome to its caller only after the batch commits.
 */
struct pg_alloc_req {
	const struct actor *who;
	const struct alloc_request *r;
	int64_t start_timeout_s;
	int64_t now;
	struct idem *idem;
	/* staged by the leader, valid only when the batch commits */
	struct alloc_outcome *lo; /* owned by the member (large record) */
	char *replay;             /* replayed answer, owned here until handed over */
	int replay_status;
	bool replayed;
	bool keep; /* this request's part is released into the batch, not rolled back */
	/* out */
	int rc;
	bool done;         /* guarded by the store's batch mutex */
	pthread_cond_t cv; /* signalled when done, or when this head of the queue may lead */
	char err[STORE_DETAIL_LEN];
	struct pg_alloc_req *next; /* queue link, guarded by the batch mutex */
};

/* ---- group commit of allocations --------------------------------------- */

/* ---- set-based batch --------------------------------------------------- */

/*
 * The set-based batch (batch_set_once): the leader reads every involved
 * period row and GPU type row once, decides every request in C in queue
 * order on running totals (exactly what consecutive transactions would
 * decide), then sends all writes and the COMMIT in ONE pipeline: the
 * allocations, the audit rows and the idempotency rows as one multi-row
 * INSERT each (unnest of arrays), then one relative UPDATE per period row
 * and per GPU type with the batch's sums, each re-checking the rule inside
 * SQL (SQL_*_MOVE_CHECKED).
 *
 * It is optimistic first: the rows are read without locks, and the UPDATEs
 * (last, so the locks are held only until the COMMIT) re-check the rule on
 * the latest committed rows.  A failed re-check means a concurrent change
 * made the reads stale: the whole batch rolls back and reruns locked (FOR
 * UPDATE, same global order as batch_lock), where a failed re-check is a bug.
 * Either way no COMMIT can break the rule, and a batch that committed was
 * decided on numbers that fit (see docs/architecture.md).
 */
static const char SQL_ALLOC_INSERT_SET[] =
	"INSERT INTO allocations(" ALLOC_COLS ") SELECT * FROM unnest($1::text[], $2::text[],"
	" $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],"
	" $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::bigint[],"
	" $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[])";
static const char SQL_AUDIT_INSERT_SET[] =
	"INSERT INTO audit(at, actor_id, actor_name, action, object_type, object_id, team,"
	" before_json, after_json) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[],"
	" $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])";
static const char SQL_IDEM_INSERT_SET[] =
	"INSERT INTO idempotency(token_id, key, request_hash, status, body, created_at)"
	" SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[],"
	" $6::bigint[])";

#define SET_ALLOC_COLS 18
#define SET_AUDIT_COLS 9
#define SET_IDEM_COLS 6

/* A PostgreSQL array literal being built (text form). */
struct set_arr {
	struct buf b;
	int count;
};

static int arr_put(struct set_arr *a, const char *s, size_t n)
{
	return buf_add(&a->b, s, n) ? 0 : ERR_NOMEM;
}

static int arr_sep(struct set_arr *a)
{
	return arr_put(a, a->count++ ? "," : "{", 1);
}

/* One text element (NULL = SQL NULL), quoted and escaped. */
static int arr_text(struct set_arr *a, const char *s)
{
	int rc = arr_sep(a);

	if (rc != 0)
		return rc;
	if (!s)
		return arr_put(a, "NULL", 4);
	rc = arr_put(a, "\"", 1);
	while (rc == 0 && *s) {
		size_t run = strcspn(s, "\"\\"); /* copied in one go */

		rc = arr_put(a, s, run);
		s += run;
		if (rc == 0 && *s) {
			char esc[2] = {'\\', *s++};

			rc = arr_put(a, esc, 2);
		}
	}
	return rc ? rc : arr_put(a, "\"", 1);
}

static int arr_i64(struct set_arr *a, int64_t v)
{
	char buf[24];
	int rc = arr_sep(a);

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return rc ? rc : arr_put(a, buf, strlen(buf));
}

/* One allocation audit row (SET_AUDIT_COLS arrays from au) with no "before". */
static int set_audit_row(struct set_arr *au, int64_t now, const struct actor *who,
			 const char *action, const char *id, const char *team, const char *after)
{
	int rc = arr_i64(&au[0], now);

	if (!rc) rc = arr_text(&au[1], who->token_id);
	if (!rc) rc = arr_text(&au[2], who->name);
	if (!rc) rc = arr_text(&au[3], action);
	if (!rc) rc = arr_text(&au[4], "allocation");
	if (!rc) rc = arr_text(&au[5], id);
	if (!rc) rc = arr_text(&au[6], team);
	if (!rc) rc = arr_text(&au[7], NULL);
	if (!rc) rc = arr_text(&au[8], after);
	return rc;
}

/* The closed literal ("{}" when empty). */
static const char *arr_end(struct set_arr *a)
{
	if ((a->count ? arr_put(a, "}", 1) : arr_put(a, "{}", 2)) != 0)
		return NULL;
	return a->b.p;
}

static void arrs_free(struct set_arr *a, int n)
{
	for (int i = 0; i < n; i++)
		free(a[i].b.p);
}

struct set_team {
	const char *id;
	struct team team;
	bool found;
	/* Its latest period row at the batch's time (optimistic batch, read with the team). */
	bool at_found;
	int64_t at_ps, at_pe, at_spent, at_reserved;
};

struct set_period {
	int team; /* index into the teams */
	int64_t ps, pe;
	int64_t spent, reserved; /* running: reserved includes this batch's approvals */
	int64_t d_reserved;
};

struct set_gpu {
	const char *id;
	struct gpu_type gpu; /* gpu.allocated runs with this batch's approvals */
	bool found;
	int64_t d_alloc;
};

struct set_key {
	const char *token, *key;
	bool stored;       /* a row for this key is in the database */
	char *hash, *body; /* its stored hash and body (owned) */
	int status;
};

static int set_key_cmp(const void *a, const void *b)
{
	const struct set_key *x = a, *y = b;
	int d = strcmp(x->token, y->token);

	return d ? d : strcmp(x->key, y->key);
}

static int set_period_cmp(const void *a, const void *b)
{
	const struct set_period *x = a, *y = b;

	return x->team != y->team ? (x->team < y->team ? -1 : 1)
				  : (x->ps < y->ps ? -1 : x->ps > y->ps);
}

static int set_team_cmp(const void *a, const void *b)
{
	return strcmp(((const struct set_team *)a)->id, ((const struct set_team *)b)->id);
}

static int set_gpu_cmp(const void *a, const void *b)
{
	return strcmp(((const struct set_gpu *)a)->id, ((const struct set_gpu *)b)->id);
}

struct set_ctx {
	struct set_team *teams;
	struct set_period *periods;
	struct set_gpu *gpus;
	struct set_key *keys;
	int nt, np, ng, nk;
	bool ledger_read;   /* set_read read the period and GPU rows too */
	struct pg_step *st; /* malloc'd, 5 per request + 5 (batch_set_once) */
	int nst;            /* steps set (to clear) */
	struct set_arr arr[SET_ALLOC_COLS + SET_AUDIT_COLS + SET_IDEM_COLS];
	/* The GPU catalog, read on the batch's first refusal that names types. */
	struct pg_conn *c;
	struct gpu_type *cat;
	size_t ncat;
	bool cat_read;
	int failed; /* that read failed: the batch fails with this */
};

static void set_ctx_free(struct set_ctx *x)
{
	if (x->st)
		steps_clear(x->st, x->nst);
	free(x->st);
	for (int i = 0; i < x->nk; i++) {
		free(x->keys[i].hash);
		free(x->keys[i].body);
	}
	free(x->teams);
	free(x->periods);
	free(x->gpus);
	free(x->keys);
	free(x->cat);
	arrs_free(x->arr, SET_ALLOC_COLS + SET_AUDIT_COLS + SET_IDEM_COLS);
}

static int set_team_find(const struct set_ctx *x, const char *id)
{
	int lo = 0, hi = x->nt - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2, d = strcmp(id, x->teams[mid].id);

		if (d == 0)
			return mid;
		if (d < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -1;
}

static int set_gpu_find(const struct set_ctx *x, const char *id)
{
	for (int i = 0; i < x->ng; i++)
		if (strcmp(x->gpus[i].id, id) == 0)
			return i;
	return -1;
}

/* Step i of the context's pipeline (reserves it for clearing). */
static struct pg_step *set_step(struct set_ctx *x)
{
	struct pg_step *s = &x->st[x->nst++];

	s->res = NULL;
	s->p.n = 0;
	return s;
}

/*
 * Opens the transaction and reads the due allocations (locked), the teams
 * and the idempotency keys (each after its advisory lock): one pipeline.
 * An optimistic batch reads each team's latest period row and the GPU type
 * rows in it too, unlocked: in the usual case (the period row exists, nothing
 * expired) that is the whole read, one round trip fewer for a batch that a
 * hot team's next batch waits for (queue_hot).  Then expires the due
 * allocations, before anyone decides.
 */
static int set_read(struct pg_conn *c, struct set_ctx *x, struct pg_alloc_req **qs, int nq,
		    int64_t now, bool optimistic)
{
	int rc = 0, base, expired = 0;

	x->nt = x->nk = x->ng = 0;
	x->ledger_read = false;

	for (int i = 0; i < nq; i++) {
		x->teams[x->nt++].id = qs[i]->r->team;
		if (qs[i]->idem && qs[i]->idem->key) {
			x->keys[x->nk].token = qs[i]->who->token_id;
			x->keys[x->nk].key = qs[i]->idem->key;
			x->nk++;
		}
	}
	qsort(x->teams, (size_t)x->nt, sizeof(*x->teams), set_team_cmp);
	qsort(x->keys, (size_t)x->nk, sizeof(*x->keys), set_key_cmp);
	for (int i = 0; i < nq && optimistic; i++)
		if (set_gpu_find(x, qs[i]->r->gpu_type) < 0) {
			memset(&x->gpus[x->ng], 0, sizeof(x->gpus[x->ng]));
			x->gpus[x->ng++].id = qs[i]->r->gpu_type;
		}
	qsort(x->gpus, (size_t)x->ng, sizeof(*x->gpus), set_gpu_cmp);
	{ /* dedupe */
		int n = 0;

		for (int i = 0; i < x->nt; i++)
			if (n == 0 || strcmp(x->teams[n - 1].id, x->teams[i].id) != 0)
				x->teams[n++] = x->teams[i];
		x->nt = n;
		n = 0;
		for (int i = 0; i < x->nk; i++)
			if (n == 0 || set_key_cmp(&x->keys[n - 1], &x->keys[i]) != 0)
				x->keys[n++] = x->keys[i];
		x->nk = n;
	}
	x->nst = 0;
	rc = step_set(c, set_step(x), SQL_BEGIN, "");
	if (rc == 0)
		rc = step_set(c, set_step(x), SQL_GENERIC_PLANS, "");
	if (rc == 0)
		rc = step_set(c, set_step(x), SQL_ALLOC_DUE, "i", now);
	for (int i = 0; i < x->nt && rc == 0; i++)
		rc = step_set(c, set_step(x), SQL_TEAM_SHARE, "t", x->teams[i].id);
	/* Concurrent duplicates queue on the key's advisory lock (in one order). */
	for (int i = 0; i < x->nk && rc == 0; i++) {
		rc = step_set(c, set_step(x), SQL_IDEM_LOCK, "tt", x->keys[i].token, x->keys[i].key);
		if (rc == 0)
			rc = step_set(c, set_step(x), SQL_IDEM_GET, "tt", x->keys[i].token,
				      x->keys[i].key);
	}
	for (int i = 0; i < x->nt && optimistic && rc == 0; i++)
		rc = step_set(c, set_step(x), SQL_PERIOD_AT, "ti", x->teams[i].id, now);
	for (int i = 0; i < x->ng && rc == 0; i++)
		rc = step_set(c, set_step(x), SQL_GPU_BY_ID, "t", x->gpus[i].id);
	if (rc == 0) {
		c->base.in_tx = true;
		rc = pq_pipeline(c, x->st, x->nst);
	}
	if (rc != 0)
		return rc;
	for (int i = 0; i < x->nt && rc == 0; i++) {
		PGresult *r = x->st[3 + i].res;

		if (PQntuples(r) >= 1) {
			if (row_team(r, 0, &x->teams[i].team) != 0) {
				db_err(&c->base, "corrupt row for '%s'", x->teams[i].id);
				rc = ERR_STORE;
			}
			x->teams[i].found = true;
		}
	}
	base = 3 + x->nt;
	for (int i = 0; i < x->nk && rc == 0; i++) {
		PGresult *r = x->st[base + 2 * i + 1].res;

		if (PQntuples(r) >= 1) {
			const char *h = PQgetvalue(r, 0, 0), *b = PQgetvalue(r, 0, 2);

			x->keys[i].stored = true;
			x->keys[i].status = (int)col_i64(r, 0, 1);
			x->keys[i].hash = strdup(h ? h : "");
			x->keys[i].body = strdup(b ? b : "");
			if (!x->keys[i].hash || !x->keys[i].body)
				rc = ERR_NOMEM;
		}
	}
	base += 2 * x->nk;
	for (int i = 0; i < x->nt && optimistic && rc == 0; i++) {
		PGresult *r = x->st[base + i].res;

		x->teams[i].at_found = PQntuples(r) >= 1;
		if (x->teams[i].at_found) {
			x->teams[i].at_ps = col_i64(r, 0, 0);
			x->teams[i].at_pe = col_i64(r, 0, 1);
			x->teams[i].at_spent = col_i64(r, 0, 2);
			x->teams[i].at_reserved = col_i64(r, 0, 3);
		}
	}
	if (optimistic)
		base += x->nt;
	for (int i = 0; i < x->ng && rc == 0; i++) {
		PGresult *r = x->st[base + i].res;

		if (PQntuples(r) >= 1) {
			if (row_gpu(r, 0, &x->gpus[i].gpu) != 0) {
				db_err(&c->base, "corrupt row for '%s'", x->gpus[i].id);
				rc = ERR_STORE;
			}
			x->gpus[i].found = true;
		}
	}
	/* Due allocations give their money and GPUs back before anyone decides. */
	if (rc == 0)
		rc = expire_rows(c, x->st[2].res, now, &expired);
	/* What that moved is not in the rows read above. */
	x->ledger_read = optimistic && expired == 0;
	steps_clear(x->st, x->nst);
	x->nst = 0;
	return rc;
}

/*
 * True when set_read's rows answer for every period of the batch: each is its
 * team's latest row, so it is filled in from there.
 */
static bool set_ledger_from_read(struct set_ctx *x)
{
	if (!x->ledger_read)
		return false;
	for (int i = 0; i < x->np; i++) {
		const struct set_team *t = &x->teams[x->periods[i].team];

		if (!t->at_found || t->at_ps != x->periods[i].ps || t->at_pe != x->periods[i].pe)
			return false;
	}
	for (int i = 0; i < x->np; i++) {
		x->periods[i].spent = x->teams[x->periods[i].team].at_spent;
		x->periods[i].reserved = x->teams[x->periods[i].team].at_reserved;
	}
	return true;
}

/*
 * Reads every period row (by team, then period) and GPU type row (by id) in
 * one pipeline: locked (FOR UPDATE), or - for an optimistic batch - not.
 * An optimistic batch whose set_read read them already (set_ledger_from_read)
 * skips the round trip.
 */
static int set_read_ledger(struct pg_conn *c, struct set_ctx *x, struct pg_alloc_req **qs,
			   int nq, bool lock)
{
	int rc = 0;

	for (int i = 0; i < nq; i++) {
		int team = set_team_find(x, qs[i]->r->team);
		int64_t ps = 0, pe = 0;
		int j;

		if (team < 0 || !x->teams[team].found)
			continue;
		period_bounds(x->teams[team].team.period, qs[i]->now, &ps, &pe);
		for (j = 0; j < x->np; j++)
			if (x->periods[j].team == team && x->periods[j].ps == ps)
				break;
		if (j == x->np) {
			memset(&x->periods[j], 0, sizeof(x->periods[j]));
			x->periods[j].team = team;
			x->periods[j].ps = ps;
			x->periods[j].pe = pe;
			x->np++;
		}
		j = set_gpu_find(x, qs[i]->r->gpu_type);
		if (j < 0) {
			j = x->ng++;
			memset(&x->gpus[j], 0, sizeof(x->gpus[j]));
			x->gpus[j].id = qs[i]->r->gpu_type;
		}
	}
	qsort(x->periods, (size_t)x->np, sizeof(*x->periods), set_period_cmp);
	qsort(x->gpus, (size_t)x->ng, sizeof(*x->gpus), set_gpu_cmp);
	if (!lock && set_ledger_from_read(x))
		return 0;
	for (int i = 0; i < x->ng; i++)
		x->gpus[i].found = false;
	x->nst = 0;
	for (int i = 0; i < x->np && rc == 0; i++) {
		const char *team = x->teams[x->periods[i].team].team.id;

		rc = step_set(c, set_step(x), SQL_PERIOD_ENSURE_QUIET, "tii", team,
			      x->periods[i].ps, x->periods[i].pe);
		if (rc == 0)
			rc = step_set(c, set_step(x), lock ? SQL_PERIOD_LOCK : SQL_PERIOD_GET, "ti",
				      team, x->periods[i].ps);
	}
	for (int i = 0; i < x->ng && rc == 0; i++)
		rc = step_set(c, set_step(x), lock ? SQL_GPU_LOCK : SQL_GPU_BY_ID, "t", x->gpus[i].id);
	if (rc == 0)
		rc = pq_pipeline(c, x->st, x->nst);
	if (rc != 0)
		return rc;
	for (int i = 0; i < x->np; i++) {
		PGresult *r = x->st[2 * i + 1].res;

		if (PQntuples(r) >= 1) {
			x->periods[i].spent = col_i64(r, 0, 0);
			x->periods[i].reserved = col_i64(r, 0, 1);
		}
	}
	for (int i = 0; i < x->ng && rc == 0; i++) {
		PGresult *r = x->st[2 * x->np + i].res;

		if (PQntuples(r) >= 1) {
			if (row_gpu(r, 0, &x->gpus[i].gpu) != 0) {
				db_err(&c->base, "corrupt row for '%s'", x->gpus[i].id);
				rc = ERR_STORE;
			}
			x->gpus[i].found = true;
		}
	}
	steps_clear(x->st, x->nst);
	x->nst = 0;
	return rc;
}

/*
 * A refusal's GPU types: the catalog (read once per batch, unlocked: it only
 * informs) with the batch's running counts of the types it holds.
 */
static int set_suggest_types(struct set_ctx *x, int rc, struct alloc_outcome *lo)
{
	if (!x->cat_read) {
		int crc = ops_alloc_catalog(&x->c->base, &x->cat, &x->ncat);

		if (crc != 0)
			return crc;
		x->cat_read = true;
	}
	for (size_t i = 0; i < x->ncat; i++) {
		int gi = set_gpu_find(x, x->cat[i].id);

		if (gi >= 0 && x->gpus[gi].found)
			x->cat[i].allocated = x->gpus[gi].gpu.allocated;
	}
	store_suggest_types(x->cat, x->ncat, rc == ERR_CAPACITY, &lo->suggest);
	return 0;
}

/* Decides request q (in queue order) on the running totals and stages its writes. */
static int set_decide(struct set_ctx *x, struct pg_alloc_req *q)
{
	const struct alloc_request *r = q->r;
	struct idem *idem = q->idem;
	struct alloc_outcome *lo = q->lo;
	struct set_arr *al = x->arr, *au = x->arr + SET_ALLOC_COLS,
		       *id = x->arr + SET_ALLOC_COLS + SET_AUDIT_COLS;
	struct alloc_facts f;
	struct set_period *P = NULL;
	struct set_gpu *G = NULL;
	const struct team *team;
	struct set_key *K = NULL;
	char *audit = NULL;
	int rc = 0, status = 0, ti, gi;

	memset(lo, 0, sizeof(*lo));
	if (idem && idem->key) {
		struct set_key probe = {.token = q->who->token_id, .key = idem->key};

		K = bsearch(&probe, x->keys, (size_t)x->nk, sizeof(*x->keys), set_key_cmp);
		if (!K) {
			snprintf(q->err, sizeof(q->err), "internal: key not read");
			return ERR_STORE;
		}
		if (K->stored) {
			rc = ops_idem_mismatch(idem, K->hash, q->err, sizeof(q->err));
			if (rc != 0)
				return rc;
			q->replay = strdup(K->body);
			if (!q->replay)
				return ERR_NOMEM;
			q->replay_status = K->status;
			q->replayed = true;
			q->keep = true;
			return 0;
		}
	}
	ti = set_team_find(x, r->team);
	team = ti >= 0 && x->teams[ti].found ? &x->teams[ti].team : NULL;
	if (team) {
		int64_t ps = 0, pe = 0;

		period_bounds(team->period, q->now, &ps, &pe);
		for (int j = 0; j < x->np; j++)
			if (x->periods[j].team == ti && x->periods[j].ps == ps)
				P = &x->periods[j];
		if (!P) {
			snprintf(q->err, sizeof(q->err), "internal: period not read");
			return ERR_STORE;
		}
	}
	gi = set_gpu_find(x, r->gpu_type);
	G = gi >= 0 && x->gpus[gi].found ? &x->gpus[gi] : NULL;
	f = (struct alloc_facts){.team = team, .gpu = G ? &G->gpu : NULL, .ps = P ? P->ps : 0,
				 .spent = P ? P->spent : 0, .reserved = P ? P->reserved : 0};
	rc = ops_alloc_decide(q->who, r, &f, q->now, q->start_timeout_s, lo, q->err, sizeof(q->err));
	if (ops_alloc_wants_types(rc, lo)) {
		int crc = set_suggest_types(x, rc, lo);

		if (crc != 0) {
			snprintf(q->err, sizeof(q->err), "%s", x->c->base.err);
			x->failed = crc;
			return crc;
		}
	}
	if (rc != 0 && rc != ERR_BUDGET && rc != ERR_CAPACITY)
		return rc; /* not a decision: nothing to remember */
	if (rc == 0) {
		struct allocation *a = &lo->alloc;
		const struct actor *who = q->who;
		int64_t est = a->estimated_micros;

		audit = store_alloc_json_text(a);
		if (!audit) {
			snprintf(q->err, sizeof(q->err), "out of memory rendering the audit row");
			return ERR_NOMEM;
		}
		rc = arr_text(&al[0], a->id);
		if (!rc) rc = arr_text(&al[1], a->team);
		if (!rc) rc = arr_text(&al[2], a->project);
		if (!rc) rc = arr_text(&al[3], a->gpu_type);
		if (!rc) rc = arr_i64(&al[4], a->gpu_count);
		if (!rc) rc = arr_i64(&al[5], a->max_runtime_us);
		if (!rc) rc = arr_i64(&al[6], a->price_micros);
		if (!rc) rc = arr_i64(&al[7], a->estimated_micros);
		if (!rc) rc = arr_text(&al[8], alloc_status_name(a->status));
		if (!rc) rc = arr_text(&al[9], a->purpose);
		if (!rc) rc = arr_text(&al[10], a->labels_json);
		if (!rc) rc = arr_text(&al[11], a->created_by);
		if (!rc) rc = arr_i64(&al[12], a->period_start);
		if (!rc) rc = arr_i64(&al[13], a->approved_at);
		if (!rc) rc = arr_i64(&al[14], a->expires_at);
		if (!rc) rc = arr_i64(&al[15], a->started_at);
		if (!rc) rc = arr_i64(&al[16], a->ended_at);
		if (!rc) rc = arr_i64(&al[17], a->actual_micros);
		if (!rc) rc = set_audit_row(au, q->now, who, "allocation.approve", a->id, a->team, audit);
		free(audit);
		if (rc != 0)
			return rc;
		P->reserved += est;
		P->d_reserved += est;
		G->gpu.allocated += r->gpu_count;
		G->d_alloc += r->gpu_count;
	} else {
		/* A refusal is audited too, in the same rows' arrays. */
		struct store_refusal rf = {r, lo, rc};
		int arc;

		audit = store_refusal_json_text(&rf);
		if (!audit) {
			snprintf(q->err, sizeof(q->err), "out of memory rendering the audit row");
			return ERR_NOMEM;
		}
		arc = set_audit_row(au, q->now, q->who, "allocation.refuse", "", r->team, audit);
		free(audit);
		if (arc != 0)
			return arc;
	}
	if (K) {
		char *body = ops_idem_record(rc, lo);
		int arc;

		status = rc;
		if (!body) {
			snprintf(q->err, sizeof(q->err), "out of memory recording the idempotent decision");
			return ERR_NOMEM; /* fails the batch: the staged rows are already in */
		}
		arc = arr_text(&id[0], q->who->token_id);
		if (!arc) arc = arr_text(&id[1], idem->key);
		if (!arc) arc = arr_text(&id[2], idem->hash);
		if (!arc) arc = arr_i64(&id[3], status);
		if (!arc) arc = arr_text(&id[4], body);
		if (!arc) arc = arr_i64(&id[5], q->now);
		/* Later requests of the batch with this key find this answer. */
		K->stored = true;
		K->status = status;
		free(K->hash);
		free(K->body);
		K->hash = strdup(idem->hash ? idem->hash : "");
		K->body = body;
		if (!arc && !K->hash)
			arc = ERR_NOMEM;
		if (arc != 0)
			return arc;
	}
	q->keep = true; /* approved, or a refusal worth remembering */
	return rc;
}

static bool can_lead(const struct pg_store *s);

/*
 * Gives up the leader slot: a batch of another team may start.  An
 * optimistic batch does so once it has decided (before its writes), a
 * locked one once it has committed (its row locks are free).
 */
static void batch_step_aside(struct pg_conn *c)
{
	struct pg_store *s = pg_store_of(c);

	if (!c->leading)
		return;
	pthread_mutex_lock(&s->bmu);
	s->leading--;
	c->leading = false;
	if (can_lead(s))
		pthread_cond_signal(&s->bhead->cv);
	pthread_mutex_unlock(&s->bmu);
}

/*
 * One attempt at a set-based batch, optimistic or locked.  Returns 0 when
 * the COMMIT succeeded (each q->rc is then that request's answer), else the
 * batch's failure: nothing of it persists, PG_RETRY reruns the whole batch
 * and PG_CONFLICT (optimistic only) reruns it locked.
 */
static int batch_set_once(struct pg_conn *c, struct pg_alloc_req **qs, int nq, bool optimistic)
{
	struct set_ctx x;
	int64_t now = qs[0]->now;
	int rc, fin, nal = 0, nau = 0, nid = 0;

	memset(&x, 0, sizeof(x));
	x.c = c;
	for (int i = 0; i < nq; i++) {
		qs[i]->keep = false;
		qs[i]->replayed = false;
		free(qs[i]->replay);
		qs[i]->replay = NULL;
		qs[i]->rc = 0;
		qs[i]->err[0] = '\0';
		if (qs[i]->now > now)
			now = qs[i]->now;
	}
	x.teams = calloc((size_t)nq, sizeof(*x.teams));
	x.periods = calloc((size_t)nq, sizeof(*x.periods));
	x.gpus = calloc((size_t)nq, sizeof(*x.gpus));
	x.keys = calloc((size_t)nq, sizeof(*x.keys));
	/* Not zeroed: set_step initialises what it hands out.  The longest pipeline
	 * (set_read with a key per request) has 5 steps per request plus 3. */
	x.st = malloc(sizeof(*x.st) * (size_t)(5 * nq + 5));
	if (!x.teams || !x.periods || !x.gpus || !x.keys || !x.st) {
		set_ctx_free(&x);
		return ERR_NOMEM;
	}
	for (int attempt = 0;; attempt++) {
		rc = set_read(c, &x, qs, nq, now, optimistic);
		/* A freshly broken session: BEGIN changed nothing, so once more on a new one. */
		if (rc == ERR_UNAVAILABLE && attempt == 0 && !c->base.in_tx &&
		    PQstatus(c->db) != CONNECTION_OK && conn_revive(c) == 0)
			continue;
		break;
	}
	if (rc == 0)
		rc = set_read_ledger(c, &x, qs, nq, !optimistic);
	if (rc != 0)
		goto out;
	for (int i = 0; i < nq; i++) {
		qs[i]->rc = set_decide(&x, qs[i]);
		if (x.failed || qs[i]->rc == ERR_NOMEM || (qs[i]->rc == ERR_STORE && !qs[i]->keep)) {
			rc = x.failed ? x.failed : qs[i]->rc;
			db_err(&c->base, "%s", qs[i]->err[0] ? qs[i]->err : err_name(rc));
			goto out;
		}
	}
	nal = x.arr[0].count;
	nau = x.arr[SET_ALLOC_COLS].count; /* approvals and refusals */
	nid = x.arr[SET_ALLOC_COLS + SET_AUDIT_COLS].count;
	/* All writes in one round trip. */
	x.nst = 0;
	if (nal > 0) {
		struct pg_step *s = set_step(&x);

		s->sql = SQL_ALLOC_INSERT_SET;
		for (int k = 0; k < SET_ALLOC_COLS && rc == 0; k++) {
			const char *v = arr_end(&x.arr[k]);
			rc = v ? params_add(c, &s->p, "t", v) : ERR_NOMEM;
		}
	}
	if (nau > 0 && rc == 0) {
		struct pg_step *s = set_step(&x);

		s->sql = SQL_AUDIT_INSERT_SET;
		for (int k = 0; k < SET_AUDIT_COLS && rc == 0; k++) {
			const char *v = arr_end(&x.arr[SET_ALLOC_COLS + k]);
			rc = v ? params_add(c, &s->p, "t", v) : ERR_NOMEM;
		}
	}
	if (nid > 0 && rc == 0) {
		struct pg_step *s = set_step(&x);

		s->sql = SQL_IDEM_INSERT_SET;
		for (int k = 0; k < SET_IDEM_COLS && rc == 0; k++) {
			const char *v = arr_end(&x.arr[SET_ALLOC_COLS + SET_AUDIT_COLS + k]);
			rc = v ? params_add(c, &s->p, "t", v) : ERR_NOMEM;
		}
	}
	/* The moves last: their row locks (taken here by an optimistic batch) are
	 * then held only until the COMMIT, which rides with the writes (see
	 * SQL_*_CHECKED). */
	for (int i = 0; i < x.np && rc == 0; i++)
		if (x.periods[i].d_reserved > 0)
			rc = step_set(c, set_step(&x), SQL_PERIOD_MOVE_CHECKED, "itii",
				      x.periods[i].d_reserved, x.teams[x.periods[i].team].team.id,
				      x.periods[i].ps, x.teams[x.periods[i].team].team.budget_micros);
	for (int i = 0; i < x.ng && rc == 0; i++)
		if (x.gpus[i].d_alloc > 0)
			rc = step_set(c, set_step(&x), SQL_GPU_MOVE_CHECKED, "it", x.gpus[i].d_alloc,
				      x.gpus[i].id);

	if (rc == 0)
		rc = step_set(c, set_step(&x), SQL_COMMIT, "");
	if (rc == 0 && optimistic)
		batch_step_aside(c); /* a batch of another team may start meanwhile */
	if (rc == 0) {
		rc = pq_pipeline(c, x.st, x.nst);
		/* An optimistic batch read unlocked rows: a failed re-check is a
		 * concurrent change, and the batch reruns under the locks. */
		if (rc == ERR_STORE && optimistic && strstr(c->base.err, PG_CHECK_FAILED))
			rc = PG_CONFLICT;
	}
	if (rc == 0) {
		c->base.in_tx = false; /* committed */
		batch_step_aside(c);
	}
out:
	fin = drv_finish(&c->base, rc == 0);
	if (rc == 0)
		rc = fin;
	set_ctx_free(&x);
	return rc;
}

/* The leader's work: runs the batch (retrying it whole) and sets every answer. */
static void batch_lead(struct pg_conn *c, struct pg_alloc_req **qs, int nq)
{
	int rc;

	rc = PG_RETRYING(c, batch_set_once(c, qs, nq, true));
	if (rc == PG_CONFLICT)
		rc = PG_RETRYING(c, batch_set_once(c, qs, nq, false));
	if (rc == 0)
		return;
	/* Nothing committed: every member fails with the batch's error. */
	for (int i = 0; i < nq; i++) {
		qs[i]->rc = rc;
		qs[i]->keep = false;
		snprintf(qs[i]->err, sizeof(qs[i]->err), "%s", c->base.err[0] ? c->base.err : err_name(rc));
	}
}

/*
 * True when every queued request is for one team that a running batch has
 * to itself (from its reads to its COMMIT): a second batch would only read
 * what is about to change and then queue on the same period row lock, so
 * the requests wait and go together in the next batch.  That is group
 * commit: while one batch of a hot team is on its way, the next gathers.
 * Measured (alternating runs, one hot team, 64 clients): this beat letting
 * the next batch read and decide during the writes, and a line of batches
 * queued on the row lock kept every batch small.  Called under the batch
 * mutex.
 */
static bool queue_hot(const struct pg_store *s)
{
	const char *team = s->bhead->r->team;
	bool held = false;

	for (int i = 0; i < PG_TEAM_SLOTS; i++)
		if (s->team_busy[i] && strcmp(s->team_busy[i], team) == 0)
			held = true;
	if (!held)
		return false;
	for (const struct pg_alloc_req *q = s->bhead->next; q; q = q->next)
		if (strcmp(q->r->team, team) != 0)
			return false;
	return true;
}

/* A batch may start now: a leader slot is free and the queue is worth one. */
static bool can_lead(const struct pg_store *s)
{
	return s->leading < PG_BATCH_LEADERS && s->bhead && !queue_hot(s);
}

/*
 * Group commit: concurrent allocate calls of this process queue up; a call
 * that finds fewer than PG_BATCH_LEADERS batches reading and deciding (and
 * no batch of the queue's one team running, queue_hot) becomes a leader,
 * takes up to PG_BATCH_MAX queued requests (of any teams) and runs them in
 * one transaction on its own connection, then wakes every member.  A member
 * answers only after its batch's COMMIT.  Row locks are taken in one global
 * order (period rows by team, then GPU types by id: batch_lock, or the set
 * batch's moves and its locked rerun), so replicas stay correct; the gain is
 * one commit (and one wait for a hot row) per batch instead of per decision,
 * while a few batches keep different teams committing in parallel.
 */
static int pg_allocate(struct store_conn *bc, const struct actor *who, const struct alloc_request *r,
		       int64_t start_timeout_s, int64_t now, struct idem *idem,
		       struct alloc_outcome *o, char *detail)
{
	struct pg_conn *c = pg_conn_of(bc);
	struct pg_store *s = pg_store_of(c);
	struct pg_alloc_req q = {.who = who, .r = r, .start_timeout_s = start_timeout_s,
				 .now = now, .idem = idem};
	struct pg_alloc_req **batch = NULL;

	if (idem) {
		idem->replayed = false;
		idem->legacy_body = NULL;
	}
	q.lo = calloc(1, sizeof(*q.lo));
	batch = malloc(sizeof(*batch) * PG_BATCH_MAX);
	if (!q.lo || !batch) {
		free(q.lo);
		free(batch);
		return ERR_NOMEM;
	}
	if (pthread_cond_init(&q.cv, NULL) != 0) {
		free(q.lo);
		free(batch);
		return ERR_NOMEM;
	}
	pthread_mutex_lock(&s->bmu);
	if (s->btail)
		s->btail->next = &q;
	else
		s->bhead = &q;
	s->btail = &q;
	while (!q.done) {
		int nq = 0;
		const char *one = NULL;
		int slot = -1;

		/* Only the head of the queue (or a newcomer) is woken to lead: no thundering herd. */
		if (!can_lead(s)) {
			pthread_cond_wait(&q.cv, &s->bmu);
			continue;
		}
		s->leading++;
		while (s->bhead && nq < PG_BATCH_MAX) {
			batch[nq++] = s->bhead;
			s->bhead = s->bhead->next;
		}
		if (!s->bhead)
			s->btail = NULL;
		one = batch[0]->r->team;
		for (int i = 1; i < nq && one; i++)
			if (strcmp(batch[i]->r->team, one) != 0)
				one = NULL;
		for (int i = 0; i < PG_TEAM_SLOTS && one; i++)
			if (!s->team_busy[i]) {
				s->team_busy[i] = one;
				slot = i;
				break;
			}
		if (can_lead(s))
			pthread_cond_signal(&s->bhead->cv);
		c->leading = true;
		pthread_mutex_unlock(&s->bmu);
		batch_lead(c, batch, nq);
		pthread_mutex_lock(&s->bmu);
		if (slot >= 0)
			s->team_busy[slot] = NULL;
		if (c->leading) { /* not given up at its COMMIT (batch_step_aside) */
			s->leading--;
			c->leading = false;
		}
		/* The next leader first: a hot team's next batch is what everyone waits for. */
		if (s->bhead)
			pthread_cond_signal(&s->bhead->cv);
		for (int i = 0; i < nq; i++) {
			batch[i]->done = true;
			if (batch[i] != &q)
				pthread_cond_signal(&batch[i]->cv);
		}
	}
	pthread_mutex_unlock(&s->bmu);
	pthread_cond_destroy(&q.cv);
	free(batch);

	snprintf(c->base.err, sizeof(c->base.err), "%s", q.err);
	memcpy(o->field, q.lo->field, sizeof(o->field)); /* also for a request that was not decided */
	o->suggest = q.lo->suggest; /* (an unknown gpu_type's valid ids) */
	if (q.keep) {
		if (q.replayed) {
			q.rc = ops_idem_replay(q.replay_status, q.replay, idem, o, c->base.err,
					       sizeof(c->base.err));
			q.replay = NULL;
		} else {
			*o = *q.lo;
		}
	}
	db_detail(&c->base, q.rc, detail);
	free(q.replay);
	free(q.lo);
	return q.rc;
}

/* ---- the driver (db.h) ------------------------------------------------- */

static int drv_run(struct store_conn *bc, const char *sql, bool cached, const struct db_param *p,
		   int n, struct db_rows **rows)
{
	struct pg_conn *c = pg_conn_of(bc);
	const char *v[DB_MAX_PARAMS];
	char ibuf[DB_MAX_PARAMS][24];
	struct pg_rows *r = NULL;
	PGresult *res = NULL;
	int rc;

	if (n > DB_MAX_PARAMS) {
		db_err(&c->base, "internal: too many parameters");
		return ERR_STORE;
	}
	for (int i = 0; i < n; i++) {
		if (p[i].type == 't') {
			v[i] = p[i].text;
		} else {
			snprintf(ibuf[i], sizeof(ibuf[i]), "%lld", (long long)p[i].i64);
			v[i] = ibuf[i];
		}
	}
	if (rows) {
		r = malloc(sizeof(*r));
		if (!r)
			return ERR_NOMEM;
	}
	rc = pq_exec_v(c, sql, cached, n, v, &res);
	if (rc != 0) {
		free(r);
		return rc;
	}
	if (!rows) {
		const char *t = PQcmdTuples(res);

		rc = t && *t ? atoi(t) : 0;
		PQclear(res);
		return rc;
	}
	r->base.conn = bc;
	r->res = res;
	r->row = -1;
	*rows = &r->base;
	return 0;
}

static int drv_next(struct db_rows *br)
{
	struct pg_rows *r = (struct pg_rows *)br;

	if (r->row + 1 >= PQntuples(r->res))
		return 0;
	r->row++;
	return 1;
}

static bool drv_is_null(const struct db_rows *br, int col)
{
	const struct pg_rows *r = (const struct pg_rows *)br;

	return PQgetisnull(r->res, r->row, col);
}

static int64_t drv_i64(const struct db_rows *br, int col)
{
	const struct pg_rows *r = (const struct pg_rows *)br;

	return col_i64(r->res, r->row, col);
}

static const char *drv_text(const struct db_rows *br, int col)
{
	const struct pg_rows *r = (const struct pg_rows *)br;

	return PQgetvalue(r->res, r->row, col); /* "" for NULL */
}

static void drv_rows_close(struct db_rows *br)
{
	struct pg_rows *r = (struct pg_rows *)br;

	PQclear(r->res);
	free(r);
}

/* BEGIN/COMMIT without the fault check: db_run injects their faults itself. */
static int drv_begin(struct store_conn *bc, bool write)
{
	struct pg_conn *c = pg_conn_of(bc);
	int rc = pq_exec_v(c, write ? SQL_BEGIN : SQL_BEGIN_RO, true, 0, NULL, NULL);

	if (rc == 0)
		c->base.in_tx = true;
	return rc;
}

static int drv_finish(struct store_conn *bc, bool commit)
{
	struct pg_conn *c = pg_conn_of(bc);
	int rc = 0;

	if (!c->base.in_tx)
		return 0;
	if (commit)
		rc = pq_exec_v(c, SQL_COMMIT, true, 0, NULL, NULL);
	if ((!commit || rc != 0) && PQstatus(c->db) == CONNECTION_OK &&
	    PQtransactionStatus(c->db) != PQTRANS_IDLE) {
		PGresult *r = PQexec(c->db, "ROLLBACK"); /* recovery path */
		PQclear(r);
	}
	c->base.in_tx = false;
	return rc;
}

static int drv_script(struct store_conn *bc, const char *sql)
{
	return q_script(pg_conn_of(bc), sql);
}

/* The batch leader writes allocations on its own connection: a seed runs
 * alone, so that is this one. */
static int drv_set_durable(struct store_conn *bc, bool durable)
{
	return q_script(pg_conn_of(bc), durable ? "SET synchronous_commit = on"
						: "SET synchronous_commit = off");
}

static int drv_ready(struct store_conn *bc)
{
	return conn_ready(pg_conn_of(bc));
}

/* A revocation tells every replica's token cache on its COMMIT. */
static int drv_token_revoking(struct store_conn *bc)
{
	int n = db_exec(bc, SQL_TOKEN_NOTIFY, "");

	return n < 0 ? n : 0;
}

static void drv_token_revoked(struct store *bs)
{
	pg_tokens_forget(((struct pg_store *)bs)->tokens);
}

static const struct db_driver pg_driver = {
	.name = "postgres",
	.conn_open = pg_conn_open,
	.conn_close = pg_conn_close,
	.destroy = pg_destroy,
	.conn_ready = drv_ready,
	.begin = drv_begin,
	.finish = drv_finish,
	.run = drv_run,
	.next = drv_next,
	.is_null = drv_is_null,
	.i64 = drv_i64,
	.text = drv_text,
	.rows_close = drv_rows_close,
	.script = drv_script,
	.migrations = pg_migrations,
	.nmigrations = (int)(sizeof(pg_migrations) / sizeof(pg_migrations[0])),
	.migrate_lock_sql = SQL_MIG_LOCK,
	.rollup_fill_version = 7, /* the migration that made the last rollup (monthly usage) */
	.rollup_lock_sql = SQL_ROLLUP_LOCK,
	.set_durable = drv_set_durable,
	.allocate = pg_allocate,
	.token_by_hash = pg_token_by_hash,
	.token_revoking = drv_token_revoking,
	.token_revoked = drv_token_revoked,
};

/* ---- the backend ------------------------------------------------------- */


int store_pg_new(const char *url, long timeout_ms, struct store **out, char *detail)
{
	struct pg_store *s = NULL;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	s->url = strdup(url);
	if (!s->url)
		goto nomem;
	s->statement_timeout_ms = timeout_ms;
	if (pg_tokens_new(url, &s->tokens) != 0)
		goto nomem;
	if (pthread_mutex_init(&s->bmu, NULL) != 0)
		goto nomem;
	s->base.drv = &pg_driver;
	s->base.pool = NULL;
	s->base.fault_after = -1;
	*out = &s->base;
	return 0;
nomem:
	if (s) {
		pg_tokens_free(s->tokens);
		free(s->url);
	}
	free(s);
	if (detail)
		snprintf(detail, STORE_DETAIL_LEN, "out of memory");
	return ERR_NOMEM;
}
