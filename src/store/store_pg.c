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

#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/lifecycle.h"
#include "core/period.h"
#include "util/buf.h"
#include "util/util.h"

#define PG_BATCH_MAX 128  /* allocation requests per group commit */
#define PG_BATCH_LEADERS 3 /* group commits reading and deciding at once per daemon */
#define PG_TEAM_SLOTS 64   /* single-team batches tracked at once (queue_hot) */
/* Internal only: an optimistic batch met a concurrent change; it reruns locked. */
#define PG_CONFLICT (-1001)

struct pg_store {
	struct store base; /* must be first */
	char *url;         /* owned; passed to libpq as is (TLS options included) */
	long statement_timeout_ms;
	struct pg_tokens *tokens; /* owned: token lookups, forgotten on any revocation */
	/* Group commit of allocations (drv_allocate): the queue and its leader. */
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
		return DB_RETRY;
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

/* A multi-statement script, simple protocol, not fault-injected: what names it in the error. */
static int pq_script(struct pg_conn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c->db, sql);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = db_fail(c, r, what);
	PQclear(r);
	return rc;
}

/* Per-connection settings. */
static int conn_setup(struct pg_conn *c)
{
	char sql[256];
	int rc;

	snprintf(sql, sizeof(sql),
		 "SET statement_timeout = %ld; SET lock_timeout = %ld;"
		 " SET default_transaction_isolation = 'read committed'; SET client_min_messages = warning",
		 pg_store_of(c)->statement_timeout_ms, pg_store_of(c)->statement_timeout_ms);
	rc = pq_script(c, sql, "setup");
	return rc == DB_RETRY ? ERR_UNAVAILABLE : rc;
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

/* True when a statement that failed with rc outside a transaction met a
 * dead connection and a fresh one is open: it changed nothing, so it runs
 * once more. */
static bool conn_retry(struct pg_conn *c, int rc)
{
	return rc == ERR_UNAVAILABLE && !c->base.in_tx && PQstatus(c->db) != CONNECTION_OK &&
	       conn_revive(c) == 0;
}

static int drv_conn_open(struct store *bs, struct store_conn **out, char *why)
{
	struct pg_store *s = (struct pg_store *)bs;
	struct pg_conn *c = calloc(1, sizeof(*c));
	/* Our defaults first: settings in the URL override them. */
	const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {"10", "plinth", s->url, NULL};
	int rc;

	if (!c) { /* why is reported by the caller: never left unset */
		snprintf(why, STORE_DETAIL_LEN, "out of memory");
		return ERR_NOMEM;
	}
	c->base.store = bs;
	c->db = PQconnectdbParams(keys, vals, 1);
	rc = !c->db ? ERR_NOMEM : PQstatus(c->db) != CONNECTION_OK ? ERR_UNAVAILABLE : conn_setup(c);
	if (rc != 0) {
		snprintf(why, STORE_DETAIL_LEN, "%s",
			 rc == ERR_UNAVAILABLE ? PQerrorMessage(c->db) : c->base.err[0] ? c->base.err : err_name(rc));
		msg_trim(why);
		PQfinish(c->db); /* NULL is fine */
		free(c);
		return rc;
	}
	*out = &c->base;
	return 0;
}

static void drv_conn_close(struct store_conn *bc)
{
	struct pg_conn *c = pg_conn_of(bc);

	PQfinish(c->db);
	free(c->prepared);
	free(c);
}

static void drv_destroy(struct store *bs)
{
	struct pg_store *s = (struct pg_store *)bs;

	pg_tokens_free(s->tokens);
	pthread_mutex_destroy(&s->bmu);
	free(s->url);
	free(s);
}

/* ---- statements -------------------------------------------------------- */

/* The text form of n parameters for libpq (integers printed into ibuf). */
static void pg_values(const struct db_param *p, int n, const char **v, char (*ibuf)[24])
{
	for (int i = 0; i < n; i++) {
		if (p[i].type == 't') {
			v[i] = p[i].text;
		} else {
			snprintf(ibuf[i], sizeof(ibuf[i]), "%lld", (long long)p[i].i64);
			v[i] = ibuf[i];
		}
	}
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

/* The index of a cached SQL string's prepared statement ("p" and the index),
 * preparing it on first use; < 0 an error. */
static int stmt_prepare(struct pg_conn *c, const char *sql)
{
	size_t i = 0;
	char name[24], *text;
	PGresult *r;
	int rc;

	while (i < c->nprepared && c->prepared[i] != sql)
		i++;
	if (i < c->nprepared)
		return (int)i;
	if (c->nprepared == c->prepared_cap) {
		size_t cap = c->prepared_cap ? c->prepared_cap * 2 : 64;
		const char **grown = realloc(c->prepared, cap * sizeof(*grown));

		if (!grown)
			return ERR_NOMEM;
		c->prepared = grown;
		c->prepared_cap = cap;
	}
	text = pg_sql(sql);
	if (!text)
		return ERR_NOMEM;
	snprintf(name, sizeof(name), "p%zu", i); /* fits: 20 digits at most */
	r = PQprepare(c->db, name, text, 0, NULL);
	free(text);
	rc = PQresultStatus(r) == PGRES_COMMAND_OK ? (int)i : db_fail(c, r, "prepare");
	PQclear(r);
	if (rc >= 0)
		c->prepared[c->nprepared++] = sql;
	return rc;
}

/* Sends statement `stmt` (stmt_prepare) with n parameters; false when libpq could not. */
static bool send_prepared(struct pg_conn *c, int stmt, const struct db_param *p, int n)
{
	const char *v[DB_MAX_PARAMS];
	char ibuf[DB_MAX_PARAMS][24], name[24];

	pg_values(p, n, v, ibuf); /* libpq copies them as it sends */
	snprintf(name, sizeof(name), "p%d", stmt);
	return PQsendQueryPrepared(c->db, name, n, v, NULL, NULL, 0) == 1;
}

/* ---- pipelines --------------------------------------------------------- */

#define PG_PIPE_LONG 1024 /* statements in one pipeline (the set-based batch) */
#define PG_STEP_PARAMS 4  /* inline in a step: all but the array inserts' */

/* One statement of a pipeline: a cached SQL string, its parameters, its result. */
struct pg_step {
	const char *sql;
	int n, stmt; /* stmt: its prepared statement (pq_pipeline) */
	struct db_param p[PG_STEP_PARAMS];
	const struct db_param *ext; /* else the parameters are here (the array inserts) */
	PGresult *res; /* the result of a statement that succeeded (caller PQclears) */
};

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
 * injected into any of them (db_fault_hit, as every statement) fails the call before
 * anything is sent.  If the pipeline cannot be finished cleanly the session
 * is reset, which rolls the transaction back on the server.
 */
static int pq_pipeline(struct pg_conn *c, struct pg_step *st, int n)
{
	const char *failed = NULL;
	bool broken = false;
	int rc = 0;
	PGresult *r;

	for (int i = 0; i < n; i++)
		if (db_fault_hit(&c->base))
			return ERR_STORE;
	for (int i = 0; i < n; i++) /* prepared before the pipeline starts */
		if ((st[i].stmt = stmt_prepare(c, st[i].sql)) < 0)
			return st[i].stmt;
	if (PQenterPipelineMode(c->db) != 1)
		return db_fail(c, NULL, "pipeline");
	for (int i = 0; i < n && !failed; i++)
		if (!send_prepared(c, st[i].stmt, st[i].ext ? st[i].ext : st[i].p, st[i].n))
			failed = "pipeline send";
	if (!failed && PQpipelineSync(c->db) != 1)
		failed = "pipeline sync";
	if (failed) {
		rc = db_fail(c, NULL, failed);
		broken = true;
	}
	for (int i = 0; i < n && !broken; i++) {
		ExecStatusType es;

		r = PQgetResult(c->db);
		if (!r) {
			rc = rc ? rc : db_fail(c, NULL, "pipeline");
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
		broken = r != NULL;
		PQclear(r);
	}
	if (!broken) {
		r = PQgetResult(c->db);
		broken = PQresultStatus(r) != PGRES_PIPELINE_SYNC || PQexitPipelineMode(c->db) != 1;
		PQclear(r);
	}
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
	return rc;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
	const char *v = PQgetvalue(r, row, col);

	return v && *v ? (int64_t)strtoll(v, NULL, 10) : 0;
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
static const char *const drv_migrations[] = SCHEMA_FILES(postgres);

/* Replicas starting together migrate one at a time. */
static const char SQL_MIG_LOCK[] = "SELECT pg_advisory_xact_lock(7164757410)";
/* The rollup fill against completions (db.h): their upserts take ROW
 * EXCLUSIVE, which this waits for and then holds off until the COMMIT. */
static const char SQL_ROLLUP_LOCK[] =
	"LOCK TABLE cost_daily_approved, cost_monthly_approved, cost_daily_usage, cost_monthly_usage"
	" IN SHARE ROW EXCLUSIVE MODE";

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

/* ---- group commit of allocations: the set-based batch ------------------ */

/*
 * The set-based batch (batch_set_once): the leader reads every involved
 * period row and GPU type row once, decides every request in C in queue
 * order on running totals (exactly what consecutive transactions would
 * decide), then sends all writes and the COMMIT in ONE pipeline: the
 * allocations, the audit rows and the idempotency rows as one multi-row
 * INSERT each (unnest of arrays), then one relative UPDATE per period row
 * and per GPU type with the batch's sums, each re-checking the rule inside
 * SQL (move_checked statements).
 *
 * It is optimistic first: the rows are read without locks, and the UPDATEs
 * (last, so the locks are held only until the COMMIT) re-check the rule on
 * the latest committed rows.  A failed re-check means a concurrent change
 * made the reads stale: the whole batch rolls back and reruns locked (FOR
 * UPDATE in the global order: period rows by team and period, then GPU types
 * by id), where a failed re-check is a bug.  Either way no COMMIT can break
 * the rule, and a batch that committed was decided on numbers that fit (see
 * docs/architecture.md).
 *
 * A batch that finds due allocations locks their period and GPU type rows
 * with its own, in the global order, before it expires them: the expiry then
 * takes no lock out of that order, and the batch decides on what it locked.
 *
 * The batch's statements, in the order it runs them:
 */
#define PG_CHECK_FAILED "invariant violated" /* in both move checks; batch_set_once looks for it */
#define PG_PERIOD_GET \
	"SELECT spent, reserved FROM team_periods WHERE team_id = $1 AND period_start = $2"
#define PG_GPU_GET "SELECT " GPU_COLS " FROM gpu_types WHERE id = $1"
static const struct {
	const char *due, *team_share, *idem_lock, *idem_get, *period_at, *gpu_get;
	const char *period_ensure_quiet, *period_get, *period_lock, *gpu_lock;
	const char *alloc_insert, *audit_insert, *idem_insert, *period_move_checked,
		*gpu_move_checked;
} B = {
	/* Locked: a row another transaction is expiring is re-checked after it
	 * commits and skipped, so an allocation is never released twice. */
	.due = "SELECT " ALLOC_COLS " FROM allocations WHERE status = 'approved'"
	       " AND expires_at <= $1 ORDER BY expires_at, id FOR UPDATE",
	/* A decision holds its team row (KEY SHARE) to its COMMIT: a team.put
	 * (FOR UPDATE) waits for decisions in flight and they for it, so no
	 * decision ever uses a budget or period that a committed change replaced. */
	.team_share = "SELECT " TEAM_COLS " FROM teams WHERE id = $1 FOR KEY SHARE",
	/* Concurrent requests with one Idempotency-Key queue here, so the second
	 * sees the first's stored answer instead of deciding again. */
	.idem_lock = "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))",
	.idem_get = "SELECT request_hash, status, body FROM idempotency WHERE token_id = $1"
		    " AND key = $2",
	/* The team's latest period row at a time (its current one, unless a new
	 * period has begun and has no row yet). */
	.period_at = "SELECT period_start, period_end, spent, reserved FROM team_periods"
		     " WHERE team_id = $1 AND period_start <= $2 ORDER BY period_start DESC LIMIT 1",
	.gpu_get = PG_GPU_GET,
	/* Creates a missing period row without waiting: ON CONFLICT alone waits
	 * for a transaction that is updating the existing row, which would hold
	 * an optimistic batch behind the batch before it.  Inserts only when the
	 * row is not in the snapshot; ON CONFLICT still settles a race to create it. */
	.period_ensure_quiet =
		"INSERT INTO team_periods(team_id, period_start, period_end, spent, reserved)"
		" SELECT $1::text, $2::bigint, $3::bigint, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM"
		" team_periods WHERE team_id = $1::text AND period_start = $2::bigint)"
		" ON CONFLICT (team_id, period_start) DO NOTHING",
	.period_get = PG_PERIOD_GET,
	.period_lock = PG_PERIOD_GET " FOR UPDATE",
	.gpu_lock = PG_GPU_GET " FOR UPDATE",
	.alloc_insert = "INSERT INTO allocations(" ALLOC_COLS ") SELECT * FROM unnest($1::text[],"
			" $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],"
			" $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::text[],"
			" $12::text[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[],"
			" $17::bigint[], $18::bigint[])",
	.audit_insert = "INSERT INTO audit(at, actor_id, actor_name, action, object_type,"
			" object_id, team, before_json, after_json) SELECT * FROM"
			" unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],"
			" $6::text[], $7::text[], $8::text[], $9::text[])",
	.idem_insert = "INSERT INTO idempotency(token_id, key, request_hash, status, body,"
		       " created_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[],"
		       " $4::int[], $5::text[], $6::bigint[])",
	/*
	 * The COMMIT rides in the same pipeline as the writes, so the defensive
	 * re-check of the moves must abort the transaction inside SQL: a failed
	 * check (or a missing row) casts its message to int, which raises an
	 * error, and the pipeline skips the COMMIT.  The message names count(*)
	 * so that the planner cannot fold (and raise) it while planning with
	 * known parameters.  $4: the team's budget.
	 */
	.period_move_checked =
		"WITH u AS (UPDATE team_periods SET reserved = reserved + $1"
		" WHERE team_id = $2 AND period_start = $3 RETURNING spent, reserved)"
		" SELECT CASE WHEN count(*) = 1 AND max(spent + reserved) <= $4 THEN 0"
		" ELSE ('ledger " PG_CHECK_FAILED " for team ' || $2 || ', rows: ' || count(*))::int"
		" END FROM u",
	.gpu_move_checked =
		"WITH u AS (UPDATE gpu_types SET allocated = allocated + $1 WHERE id = $2"
		" RETURNING allocated, capacity)"
		" SELECT CASE WHEN count(*) = 1 AND max(allocated - capacity) <= 0 THEN 0"
		" ELSE ('capacity " PG_CHECK_FAILED " for gpu type ' || $2 || ', rows: ' ||"
		" count(*))::int END FROM u",
};

/*
 * One allocation request in a group-commit batch (see drv_allocate).  The
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

/* The batch's arrays (struct set_ctx): 18 allocation columns, then 9 of the
 * audit rows from SET_AUDIT, then 6 of the idempotency rows from SET_IDEM. */
#define SET_AUDIT 18
#define SET_IDEM (SET_AUDIT + 9)
#define SET_ARRS (SET_IDEM + 6)

/* A PostgreSQL array literal being built (text form). */
struct set_arr {
	struct buf b;
	int count;
};

/* Appends one element: an integer, or a text quoted and escaped (NULL = SQL NULL). */
static int arr_add(struct set_arr *a, const struct db_param *v)
{
	char num[24];
	/* Only the member of v's type is set (db_vparams): the other is not read. */
	const char *s = v->type == 't' ? v->text : num;
	bool ok = buf_add(&a->b, a->count++ ? "," : "{", 1);

	if (v->type != 't')
		snprintf(num, sizeof(num), "%lld", (long long)v->i64);
	if (v->type != 't' || !s) {
		s = s ? s : "NULL";
		return ok && buf_add(&a->b, s, strlen(s)) ? 0 : ERR_NOMEM;
	}
	ok = ok && buf_add(&a->b, "\"", 1);
	while (ok && *s) {
		size_t run = strcspn(s, "\"\\"); /* copied in one go */

		ok = buf_add(&a->b, s, run);
		s += run;
		if (ok && *s) {
			char esc[2] = {'\\', *s++};

			ok = buf_add(&a->b, esc, 2);
		}
	}
	return ok && buf_add(&a->b, "\"", 1) ? 0 : ERR_NOMEM;
}

/* The closed literal ("{}" when empty). */
static const char *arr_end(struct set_arr *a)
{
	return buf_add(&a->b, a->count ? "}" : "{}", a->count ? 1 : 2) ? a->b.p : NULL;
}

static void arrs_free(struct set_arr *a, int n)
{
	for (int i = 0; i < n; i++)
		free(a[i].b.p);
}

struct set_period {
	const char *team_id;
	int team; /* index into the teams, or -1 */
	int64_t ps, pe; /* pe 0: only a due allocation's row (it exists), to lock */
	int64_t spent, reserved; /* running: reserved includes this batch's approvals */
	int64_t d_reserved;
};

struct set_team {
	const char *id;
	struct team team;
	bool found, bad; /* bad: its row cannot be read (store_bad_row) */
	/* Its latest period row at the batch's time (optimistic batch, read with the team). */
	bool at_found;
	struct set_period at;
};

struct set_gpu {
	const char *id;
	struct gpu_type gpu; /* gpu.allocated runs with this batch's approvals */
	bool found, bad;
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
	int d = strcmp(x->team_id, y->team_id);

	return d ? d : (x->ps < y->ps ? -1 : x->ps > y->ps);
}

/* Teams and GPU types by id, their first member. */
static int set_id_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts n elements of size bytes and drops repeats: the count left. */
static int sort_uniq(void *base, int n, size_t size, int (*cmp)(const void *, const void *))
{
	char *b = base;
	int k = 0;

	qsort(base, (size_t)n, size, cmp);
	for (int i = 0; i < n; i++)
		if (k == 0 || cmp(b + (size_t)(k - 1) * size, b + (size_t)i * size) != 0)
			memmove(b + (size_t)k++ * size, b + (size_t)i * size, size);
	return k;
}

struct set_ctx {
	struct pg_conn *c;
	struct set_team *teams;
	struct set_period *periods;
	struct set_gpu *gpus;
	struct set_key *keys;
	int nt, np, ng, nk;
	int cap;            /* periods and GPU types the arrays hold */
	bool ledger_read;   /* set_read read the period and GPU rows too */
	PGresult *due;      /* the due allocations (locked), until they are expired */
	struct pg_step *st; /* the pipeline being built (set_add) */
	int nst, stcap;
	int rc; /* the first failure building it */
	struct set_arr arr[SET_ARRS];
	struct db_param ins[SET_ARRS]; /* the closed arrays, the inserts' parameters */
	/* The GPU catalog, read on the batch's first refusal that names types. */
	struct gpu_type *cat;
	size_t ncat;
	bool cat_read;
	int failed; /* the batch fails with this (a read or a staged write failed) */
};

static void set_ctx_free(struct set_ctx *x)
{
	if (x->st)
		steps_clear(x->st, x->nst);
	free(x->st);
	PQclear(x->due);
	for (int i = 0; i < x->nk; i++) {
		free(x->keys[i].hash);
		free(x->keys[i].body);
	}
	free(x->teams);
	free(x->periods);
	free(x->gpus);
	free(x->keys);
	free(x->cat);
	arrs_free(x->arr, SET_ARRS);
}

static int set_team_find(const struct set_ctx *x, const char *id)
{
	struct set_team probe = {.id = id};
	const struct set_team *t =
		bsearch(&probe, x->teams, (size_t)x->nt, sizeof(*x->teams), set_id_cmp);

	return t ? (int)(t - x->teams) : -1;
}

static int set_gpu_find(const struct set_ctx *x, const char *id)
{
	for (int i = 0; i < x->ng; i++)
		if (strcmp(x->gpus[i].id, id) == 0)
			return i;
	return -1;
}

/* The period of team `team` (an index, or -1 with team_id) starting at ps; -1 if none. */
static int set_period_find(const struct set_ctx *x, int team, const char *team_id, int64_t ps)
{
	for (int j = 0; j < x->np; j++)
		if (x->periods[j].ps == ps &&
		    (team >= 0 ? x->periods[j].team == team : strcmp(x->periods[j].team_id, team_id) == 0))
			return j;
	return -1;
}

/* Adds GPU type id to the batch's unless it is there: 0, or ERR_NOMEM past its room. */
static int set_gpu_add(struct set_ctx *x, const char *id)
{
	if (set_gpu_find(x, id) >= 0)
		return 0;
	if (x->ng == x->cap)
		return ERR_NOMEM;
	memset(&x->gpus[x->ng], 0, sizeof(x->gpus[x->ng]));
	x->gpus[x->ng++].id = id;
	return 0;
}

/*
 * Appends a statement to the pipeline being built; the first failure
 * (memory, parameters) sticks in x->rc and later calls do nothing.
 */
static struct pg_step *set_add(struct set_ctx *x, const char *sql, const char *fmt, ...)
{
	struct pg_step *s;
	va_list ap;

	if (x->rc == 0 && x->nst == x->stcap) {
		int cap = x->stcap ? 2 * x->stcap : 64;
		struct pg_step *grown = realloc(x->st, sizeof(*grown) * (size_t)cap);

		if (grown) {
			x->st = grown;
			x->stcap = cap;
		} else {
			x->rc = ERR_NOMEM;
		}
	}
	if (x->rc != 0)
		return NULL;
	s = &x->st[x->nst++];
	*s = (struct pg_step){.sql = sql};
	va_start(ap, fmt);
	x->rc = db_vparams(&x->c->base, s->p, PG_STEP_PARAMS, &s->n, fmt, ap);
	va_end(ap);
	return x->rc ? NULL : s;
}

/* Appends one row to the arrays from a: a value each, from fmt as db_params. */
static int arr_row(struct set_ctx *x, struct set_arr *a, const char *fmt, ...)
{
	struct db_param v[SET_AUDIT]; /* the widest row: an allocation's */
	va_list ap;
	int n = 0, rc;

	va_start(ap, fmt);
	rc = db_vparams(&x->c->base, v, SET_AUDIT, &n, fmt, ap);
	va_end(ap);
	for (int k = 0; k < n && rc == 0; k++)
		rc = arr_add(&a[k], &v[k]);
	return rc;
}

/*
 * Sends the pipeline built, in one round trip unless it is longer than
 * PG_PIPE_LONG (many due allocations): then in parts, one after the other.
 * The caller reads the results, then set_done.
 */
static int set_send(struct set_ctx *x)
{
	int rc = x->rc;

	for (int off = 0; rc == 0 && off < x->nst; off += PG_PIPE_LONG)
		rc = pq_pipeline(x->c, x->st + off,
				 x->nst - off < PG_PIPE_LONG ? x->nst - off : PG_PIPE_LONG);
	return rc;
}

static void set_done(struct set_ctx *x)
{
	steps_clear(x->st, x->nst);
	x->nst = 0;
}

/* A cursor on row `row` of a result the batch holds, for db.h's row readers. */
static struct pg_rows set_rows(struct set_ctx *x, PGresult *res, int row)
{
	return (struct pg_rows){.base = {.conn = &x->c->base}, .res = res, .row = row};
}

/*
 * Reads the first row of res (if any) into out with row(); one it cannot
 * read is reported (store_bad_row) and *bad: only the requests that need it
 * fail.  True when there is a row.
 */
static bool set_row(struct set_ctx *x, PGresult *res, const char *table, const char *id,
		    db_row_fn row, void *out, bool *bad)
{
	struct pg_rows r = set_rows(x, res, 0);

	*bad = false;
	if (PQntuples(res) < 1)
		return false;
	*bad = row(&r.base, 0, out) != 0;
	if (*bad)
		store_bad_row(table, id, "a text does not fit its field or a value is unknown");
	return true;
}

/* A period row from res's first row: with bounds, (period_start, period_end,)
 * then spent, reserved.  False without a row. */
static bool set_period_row(const PGresult *res, struct set_period *P, bool bounds)
{
	int col = 0;

	if (PQntuples(res) < 1)
		return false;
	if (bounds) {
		P->ps = col_i64(res, 0, col++);
		P->pe = col_i64(res, 0, col++);
	}
	P->spent = col_i64(res, 0, col++);
	P->reserved = col_i64(res, 0, col);
	return true;
}

/* The GPU types' rows: a step each, read from step k on. */
static void set_add_gpus(struct set_ctx *x, bool lock)
{
	for (int i = 0; i < x->ng; i++)
		set_add(x, lock ? B.gpu_lock : B.gpu_get, "t", x->gpus[i].id);
}

static void set_read_gpus(struct set_ctx *x, int k)
{
	for (int i = 0; i < x->ng; i++, k++)
		x->gpus[i].found = set_row(x, x->st[k].res, "gpu_types", x->gpus[i].id,
					   db_row_gpu, &x->gpus[i].gpu, &x->gpus[i].bad);
}

/*
 * Opens the transaction and reads the due allocations (locked), the teams
 * and the idempotency keys (each after its advisory lock): one pipeline.
 * An optimistic batch reads each team's latest period row and the GPU type
 * rows in it too, unlocked: in the usual case (the period row exists, nothing
 * is due) that is the whole read, one round trip fewer for a batch that a
 * hot team's next batch waits for (queue_hot).  The due allocations are kept
 * in x->due for set_read_ledger and set_expire.
 */
static int set_read(struct set_ctx *x, struct pg_alloc_req **qs, int nq, int64_t now,
		    bool optimistic)
{
	struct pg_conn *c = x->c;
	int rc, k = 3;

	x->nt = x->nk = x->ng = x->np = 0;
	x->ledger_read = false;
	for (int i = 0; i < nq; i++) {
		x->teams[x->nt++].id = qs[i]->r->team;
		if (qs[i]->idem && qs[i]->idem->key) {
			x->keys[x->nk].token = qs[i]->who->token_id;
			x->keys[x->nk].key = qs[i]->idem->key;
			x->nk++;
		}
		if (optimistic)
			(void)set_gpu_add(x, qs[i]->r->gpu_type); /* room for nq */
	}
	x->nt = sort_uniq(x->teams, x->nt, sizeof(*x->teams), set_id_cmp);
	x->nk = sort_uniq(x->keys, x->nk, sizeof(*x->keys), set_key_cmp);
	qsort(x->gpus, (size_t)x->ng, sizeof(*x->gpus), set_id_cmp);
	x->nst = 0;
	set_add(x, SQL_BEGIN, "");
	set_add(x, SQL_GENERIC_PLANS, "");
	set_add(x, B.due, "i", now);
	for (int i = 0; i < x->nt; i++)
		set_add(x, B.team_share, "t", x->teams[i].id);
	/* Concurrent duplicates queue on the key's advisory lock (in one order). */
	for (int i = 0; i < x->nk; i++) {
		set_add(x, B.idem_lock, "tt", x->keys[i].token, x->keys[i].key);
		set_add(x, B.idem_get, "tt", x->keys[i].token, x->keys[i].key);
	}
	for (int i = 0; i < x->nt && optimistic; i++)
		set_add(x, B.period_at, "ti", x->teams[i].id, now);
	set_add_gpus(x, false);
	if (x->rc == 0)
		c->base.in_tx = true;
	rc = set_send(x);
	if (rc != 0)
		return rc;
	for (int i = 0; i < x->nt; i++, k++)
		x->teams[i].found = set_row(x, x->st[k].res, "teams", x->teams[i].id,
					    db_row_team, &x->teams[i].team, &x->teams[i].bad);
	for (int i = 0; i < x->nk; i++, k += 2) {
		struct set_key *K = &x->keys[i];
		struct pg_rows r = set_rows(x, x->st[k + 1].res, 0);

		K->stored = PQntuples(r.res) >= 1;
		if (K->stored) {
			K->hash = db_dup(&r.base, 0);
			K->status = (int)db_i64(&r.base, 1);
			K->body = db_dup(&r.base, 2);
			if (!K->hash || !K->body)
				return ERR_NOMEM; /* the steps are cleared with x */
		}
	}
	for (int i = 0; i < x->nt && optimistic; i++, k++)
		x->teams[i].at_found = set_period_row(x->st[k].res, &x->teams[i].at, true);
	set_read_gpus(x, k);
	x->due = x->st[2].res; /* kept past set_done */
	x->st[2].res = NULL;
	/* What an expiry moves is not in the rows read above. */
	x->ledger_read = optimistic && PQntuples(x->due) == 0;
	set_done(x);
	return 0;
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

		if (!t->at_found || t->at.ps != x->periods[i].ps || t->at.pe != x->periods[i].pe)
			return false;
	}
	for (int i = 0; i < x->np; i++) {
		x->periods[i].spent = x->teams[x->periods[i].team].at.spent;
		x->periods[i].reserved = x->teams[x->periods[i].team].at.reserved;
	}
	return true;
}

/* Room for n period rows and GPU types: 0 or ERR_NOMEM. */
static int set_room(struct set_ctx *x, int n)
{
	struct set_period *p;
	struct set_gpu *g;

	if (n <= x->cap)
		return 0;
	p = realloc(x->periods, sizeof(*p) * (size_t)n);
	if (p)
		x->periods = p;
	g = p ? realloc(x->gpus, sizeof(*g) * (size_t)n) : NULL;
	if (!g)
		return ERR_NOMEM;
	x->gpus = g;
	x->cap = n;
	return 0;
}

/* Adds a period row to the batch's unless it is there (room: x->cap). */
static void set_period_add(struct set_ctx *x, int team, const char *team_id, int64_t ps, int64_t pe)
{
	if (set_period_find(x, team, team_id, ps) >= 0 || x->np == x->cap)
		return;
	x->periods[x->np++] = (struct set_period){.team_id = team_id, .team = team, .ps = ps, .pe = pe};
}

/*
 * Reads every period row (by team, then period) and GPU type row (by id) in
 * one pipeline: locked (FOR UPDATE), or - for an optimistic batch - not.
 * With due allocations it locks theirs too, in the same order.  An
 * optimistic batch whose set_read read them already (set_ledger_from_read)
 * skips the round trip.  Run again after an expiry, it re-reads the rows.
 */
static int set_read_ledger(struct set_ctx *x, struct pg_alloc_req **qs, int nq, bool lock)
{
	int ndue = PQntuples(x->due), rc, k = 0;

	if (set_room(x, nq + ndue) != 0)
		return ERR_NOMEM;

	for (int i = 0; i < nq; i++) {
		int team = set_team_find(x, qs[i]->r->team);
		int64_t ps = 0, pe = 0;

		if (team < 0 || !x->teams[team].found || x->teams[team].bad)
			continue;
		period_bounds(x->teams[team].team.period, qs[i]->now, &ps, &pe);
		set_period_add(x, team, x->teams[team].id, ps, pe);
		(void)set_gpu_add(x, qs[i]->r->gpu_type); /* room for nq */
	}
	/* A due allocation's rows (team_id, gpu_type, period_start): they exist. */
	for (int i = 0; i < ndue; i++) {
		const char *team = PQgetvalue(x->due, i, 1);
		int64_t ps = col_i64(x->due, i, 12);

		set_period_add(x, set_team_find(x, team), team, ps, 0);
		if (set_gpu_add(x, PQgetvalue(x->due, i, 3)) != 0)
			return ERR_NOMEM;
	}
	qsort(x->periods, (size_t)x->np, sizeof(*x->periods), set_period_cmp);
	qsort(x->gpus, (size_t)x->ng, sizeof(*x->gpus), set_id_cmp);
	if (!lock && set_ledger_from_read(x))
		return 0;
	for (int i = 0; i < x->np; i++) {
		const struct set_period *P = &x->periods[i];

		if (P->pe != 0)
			set_add(x, B.period_ensure_quiet, "tii", P->team_id, P->ps, P->pe);
		set_add(x, lock ? B.period_lock : B.period_get, "ti", P->team_id, P->ps);
	}
	set_add_gpus(x, lock);
	rc = set_send(x);
	if (rc != 0)
		return rc;
	for (int i = 0; i < x->np; i++, k++) {
		k += x->periods[i].pe != 0; /* after its ensure step */
		(void)set_period_row(x->st[k].res, &x->periods[i], false); /* a missing one stays 0 */
	}
	set_read_gpus(x, k);
	set_done(x);
	return 0;
}

/*
 * Expires the due allocations, which gave their money and GPUs back before
 * anyone decides; their rows are locked (set_read_ledger), so it re-reads them.
 */
static int set_expire(struct set_ctx *x, struct pg_alloc_req **qs, int nq, int64_t now)
{
	struct pg_rows rows = set_rows(x, x->due, -1);
	int expired = 0, rc;

	if (PQntuples(x->due) == 0)
		return 0;
	rc = ops_expire_rows(&x->c->base, &rows.base, now, &expired);
	return rc != 0 || expired == 0 ? rc : set_read_ledger(x, qs, nq, true);
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

		if (gi >= 0 && x->gpus[gi].found && !x->gpus[gi].bad)
			x->cat[i].allocated = x->gpus[gi].gpu.allocated;
	}
	store_suggest_types(x->cat, x->ncat, rc == ERR_CAPACITY, &lo->suggest);
	return 0;
}

/* A failure of the batch, not of request q's decision: nothing of it persists. */
static int set_fail(struct set_ctx *x, struct pg_alloc_req *q, int rc, const char *why)
{
	snprintf(q->err, sizeof(q->err), "%s", why);
	x->failed = rc;
	return rc;
}

/* Decides request q (in queue order) on the running totals and stages its writes. */
static int set_decide(struct set_ctx *x, struct pg_alloc_req *q)
{
	const struct alloc_request *r = q->r;
	struct idem *idem = q->idem;
	struct alloc_outcome *lo = q->lo;
	struct store_refusal rf = {r, lo, 0};
	struct alloc_facts f;
	struct set_period *P = NULL;
	struct set_team *T;
	struct set_gpu *G;
	struct set_key *K = NULL;
	struct allocation *a;
	char *audit;
	int rc = 0, arc, ti, gi, pi;

	memset(lo, 0, sizeof(*lo));
	if (idem && idem->key) {
		struct set_key probe = {.token = q->who->token_id, .key = idem->key};

		K = bsearch(&probe, x->keys, (size_t)x->nk, sizeof(*x->keys), set_key_cmp);
		if (!K)
			return set_fail(x, q, ERR_STORE, "internal: key not read");
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
	T = ti >= 0 && x->teams[ti].found ? &x->teams[ti] : NULL;
	gi = set_gpu_find(x, r->gpu_type);
	G = T && gi >= 0 && x->gpus[gi].found ? &x->gpus[gi] : NULL;
	/* A row the store cannot read fails the requests that need it, as alone. */
	if ((T && T->bad) || (G && G->bad)) {
		snprintf(q->err, sizeof(q->err), "corrupt row for '%s'", T->bad ? r->team : r->gpu_type);
		return ERR_STORE;
	}
	if (T) {
		int64_t ps = 0, pe = 0;

		period_bounds(T->team.period, q->now, &ps, &pe);
		pi = set_period_find(x, ti, NULL, ps);
		P = pi >= 0 ? &x->periods[pi] : NULL;
		if (!P)
			return set_fail(x, q, ERR_STORE, "internal: period not read");
	}
	f = (struct alloc_facts){.team = T ? &T->team : NULL, .gpu = G ? &G->gpu : NULL,
				 .ps = P ? P->ps : 0, .spent = P ? P->spent : 0,
				 .reserved = P ? P->reserved : 0};
	rc = ops_alloc_decide(q->who, r, &f, q->now, q->start_timeout_s, lo, q->err, sizeof(q->err));
	rf.rc = rc;
	if (ops_alloc_wants_types(rc, lo)) {
		int crc = set_suggest_types(x, rc, lo);

		if (crc != 0)
			return set_fail(x, q, crc, x->c->base.err);
	}
	if (rc != 0 && rc != ERR_BUDGET && rc != ERR_CAPACITY)
		return rc; /* not a decision: nothing to remember */
	/* Staged in the arrays: the approval, its audit row or the refusal's
	 * (audited too), the idempotency record. */
	a = &lo->alloc;
	audit = rc == 0 ? store_alloc_json_text(a) : store_refusal_json_text(&rf);
	if (!audit)
		return set_fail(x, q, ERR_NOMEM, "out of memory rendering the audit row");
	arc = rc != 0 ? 0 : arr_row(x, x->arr, "ttttiiiittttiiiiii", a->id, a->team, a->project,
				    a->gpu_type, a->gpu_count, a->max_runtime_us, a->price_micros,
				    a->estimated_micros, alloc_status_name(a->status), a->purpose,
				    a->labels_json, a->created_by, a->period_start, a->approved_at,
				    a->expires_at, a->started_at, a->ended_at, a->actual_micros);
	if (!arc)
		arc = arr_row(x, x->arr + SET_AUDIT, "itttttttt", q->now, q->who->token_id,
			      q->who->name, rc ? "allocation.refuse" : "allocation.approve",
			      "allocation", rc ? "" : a->id, rc ? r->team : a->team,
			      (const char *)NULL, audit);
	free(audit);
	if (arc != 0)
		return arc;
	if (rc == 0) {
		P->reserved += a->estimated_micros;
		P->d_reserved += a->estimated_micros;
		G->gpu.allocated += r->gpu_count;
		G->d_alloc += r->gpu_count;
	}
	if (K) {
		char *body = ops_idem_record(rc, lo);

		if (!body) /* fails the batch: the staged rows are already in */
			return set_fail(x, q, ERR_NOMEM,
					"out of memory recording the idempotent decision");
		arc = arr_row(x, x->arr + SET_IDEM, "tttiti", q->who->token_id,
			      idem->key, idem->hash, (int64_t)rc, body, q->now);
		/* Later requests of the batch with this key find this answer. */
		K->stored = true;
		K->status = rc;
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

/* One step inserting the batch's rows from arrays `from` to `to` (none when they are empty). */
static void set_add_insert(struct set_ctx *x, const char *sql, int from, int to)
{
	struct pg_step *s = x->arr[from].count > 0 ? set_add(x, sql, "") : NULL;

	if (!s)
		return;
	s->ext = x->ins + from;
	s->n = to - from;
	for (int k = from; k < to; k++) {
		x->ins[k] = (struct db_param){.type = 't', .text = arr_end(&x->arr[k])};
		if (!x->ins[k].text)
			x->rc = ERR_NOMEM;
	}
}

static int drv_finish(struct store_conn *bc, bool commit);

/*
 * One attempt at a set-based batch, optimistic or locked.  Returns 0 when
 * the COMMIT succeeded (each q->rc is then that request's answer), else the
 * batch's failure: nothing of it persists, DB_RETRY reruns the whole batch
 * and PG_CONFLICT (optimistic only) reruns it locked.
 */
static int batch_set_once(struct pg_conn *c, struct pg_alloc_req **qs, int nq, bool optimistic)
{
	struct set_ctx x;
	int64_t now = qs[0]->now;
	int rc, fin;

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
	x.keys = calloc((size_t)nq, sizeof(*x.keys));
	/* The longest pipeline without due allocations (set_read with a key per
	 * request) has 5 steps per request plus 3: no growing in the usual case. */
	x.stcap = 5 * nq + 5;
	x.st = malloc(sizeof(*x.st) * (size_t)x.stcap);
	if (!x.teams || !x.keys || !x.st || set_room(&x, nq) != 0) {
		set_ctx_free(&x);
		return ERR_NOMEM;
	}
	rc = set_read(&x, qs, nq, now, optimistic);
	if (conn_retry(c, rc)) /* BEGIN changed nothing */
		rc = set_read(&x, qs, nq, now, optimistic);
	if (rc == 0)
		rc = set_read_ledger(&x, qs, nq, !optimistic || PQntuples(x.due) > 0);
	if (rc == 0)
		rc = set_expire(&x, qs, nq, now);
	if (rc != 0)
		goto out;
	for (int i = 0; i < nq; i++) {
		qs[i]->rc = set_decide(&x, qs[i]);
		if (x.failed || qs[i]->rc == ERR_NOMEM) {
			rc = x.failed ? x.failed : qs[i]->rc;
			db_err(&c->base, "%s", qs[i]->err[0] ? qs[i]->err : err_name(rc));
			goto out;
		}
	}
	/* All writes in one round trip: the rows (approvals, then the audit rows
	 * of approvals and refusals, then idempotency records), then the moves,
	 * whose row locks (taken here by an optimistic batch) are held only until
	 * the COMMIT, which rides with them (see move_checked). */
	set_add_insert(&x, B.alloc_insert, 0, SET_AUDIT);
	set_add_insert(&x, B.audit_insert, SET_AUDIT, SET_IDEM);
	set_add_insert(&x, B.idem_insert, SET_IDEM, SET_ARRS);
	for (int i = 0; i < x.np; i++) {
		const struct set_period *P = &x.periods[i];

		if (P->d_reserved > 0)
			set_add(&x, B.period_move_checked, "itii", P->d_reserved, P->team_id, P->ps,
				x.teams[P->team].team.budget_micros);
	}
	for (int i = 0; i < x.ng; i++)
		if (x.gpus[i].d_alloc > 0)
			set_add(&x, B.gpu_move_checked, "it", x.gpus[i].d_alloc, x.gpus[i].id);
	set_add(&x, SQL_COMMIT, "");
	if (x.rc == 0 && optimistic)
		batch_step_aside(c); /* a batch of another team may start meanwhile */
	rc = set_send(&x);
	/* An optimistic batch read unlocked rows: a failed re-check is a
	 * concurrent change, and the batch reruns under the locks. */
	if (rc == ERR_STORE && optimistic && strstr(c->base.err, PG_CHECK_FAILED))
		rc = PG_CONFLICT;
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

/*
 * Runs the batch until it is not a deadlock or serialization failure, which
 * rolled it back in full (a bounded number of times, as db_run).
 */
static int batch_retrying(struct pg_conn *c, struct pg_alloc_req **qs, int nq, bool optimistic)
{
	int rc = conn_ready(c);

	for (int try = 0; rc == 0 && try < DB_RETRIES; try++) {
		rc = batch_set_once(c, qs, nq, optimistic);
		if (rc != DB_RETRY)
			return rc;
		c->base.err[0] = '\0';
	}
	if (rc == DB_RETRY) {
		db_err(&c->base, "too much contention, retry later");
		rc = ERR_UNAVAILABLE;
	}
	return rc;
}

/* The leader's work: runs the batch (retrying it whole) and sets every answer. */
static void batch_lead(struct pg_conn *c, struct pg_alloc_req **qs, int nq)
{
	int rc = batch_retrying(c, qs, nq, true);

	if (rc == PG_CONFLICT)
		rc = batch_retrying(c, qs, nq, false);
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
 * order (period rows by team, then GPU types by id: the batch's moves, its
 * locked rerun, its lock of due rows), so replicas stay correct; the gain is
 * one commit (and one wait for a hot row) per batch instead of per decision,
 * while a few batches keep different teams committing in parallel.
 */
static int drv_allocate(struct store_conn *bc, const struct actor *who, const struct alloc_request *r,
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
	if (!q.lo || !batch || pthread_cond_init(&q.cv, NULL) != 0) {
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

/*
 * Executes one statement (db.c's run passed the fault point; pq_pipeline
 * runs the batch's).  cached: sql is a static string run as a prepared
 * statement of this connection; else a one-off.  A read or BEGIN that meets
 * a dead connection runs once more on a fresh one (conn_retry).
 */
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
	pg_values(p, n, v, ibuf);
	if (rows && !(r = malloc(sizeof(*r))))
		return ERR_NOMEM;
	for (int attempt = 0;; attempt++) {
		char name[24], *text = NULL;

		rc = cached ? stmt_prepare(c, sql) : (text = pg_sql(sql)) ? 0 : ERR_NOMEM;
		if (rc >= 0) {
			snprintf(name, sizeof(name), "p%d", rc);
			res = text ? PQexecParams(c->db, text, n, NULL, v, NULL, NULL, 0)
				   : PQexecPrepared(c->db, name, n, v, NULL, NULL, 0);
			free(text);
			if (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK)
				break;
			rc = db_fail(c, res, "statement");
			PQclear(res);
		}
		if (attempt == 0 && conn_retry(c, rc))
			continue;
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
	int rc = drv_run(bc, write ? SQL_BEGIN : SQL_BEGIN_RO, true, NULL, 0, NULL);

	if (rc >= 0)
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
		rc = drv_run(bc, SQL_COMMIT, true, NULL, 0, NULL);
	if ((!commit || rc != 0) && PQstatus(c->db) == CONNECTION_OK &&
	    PQtransactionStatus(c->db) != PQTRANS_IDLE) {
		PGresult *r = PQexec(c->db, "ROLLBACK"); /* recovery path */
		PQclear(r);
	}
	c->base.in_tx = false;
	return rc;
}

/* A multi-statement script (migrations, settings): the caller passed the
 * fault point (ops_schema.c). */
static int drv_script(struct store_conn *bc, const char *sql)
{
	return pq_script(pg_conn_of(bc), sql, "exec");
}

/* The batch leader writes allocations on its own connection: a seed runs
 * alone, so that is this one. */
static int drv_set_durable(struct store_conn *bc, bool durable)
{
	return drv_script(bc, durable ? "SET synchronous_commit = on" : "SET synchronous_commit = off");
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
	DB_DRIVER_FNS,
	.conn_ready = drv_ready,
	.migrate_lock_sql = SQL_MIG_LOCK,
	.rollup_fill_version = 7, /* the migration that made the last rollup (monthly usage) */
	.rollup_lock_sql = SQL_ROLLUP_LOCK,
	.token_by_hash = pg_token_by_hash,
	.token_revoking = drv_token_revoking,
	.token_revoked = drv_token_revoked,
};

/* ---- the backend ------------------------------------------------------- */

int store_pg_new(const char *url, long timeout_ms, struct store **out)
{
	struct pg_store *s = calloc(1, sizeof(*s));

	if (!s)
		return ERR_NOMEM;
	s->url = strdup(url);
	s->statement_timeout_ms = timeout_ms;
	if (!s->url || pg_tokens_new(url, &s->tokens) != 0 || pthread_mutex_init(&s->bmu, NULL) != 0) {
		pg_tokens_free(s->tokens);
		free(s->url);
		free(s);
		return ERR_NOMEM;
	}
	s->base.drv = &pg_driver;
	*out = &s->base;
	return 0;
}
