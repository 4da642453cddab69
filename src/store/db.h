/*
 * db.h - the driver interface: what a database backend gives the store's
 * operations, and the small layer over it that every operation uses.
 *
 * A driver (store_sqlite.c, store_pg.c) knows its library and nothing about the
 * ledger: connections, transactions, statements with typed parameters, rows
 * and columns, error mapping, and its allocate group-commit engine.  The
 * operations (ops_*.c) know the ledger and nothing about the library: they
 * are written once, in SQL both databases speak, over the functions below.
 *
 * SQL conventions for statements run through db_exec/db_query:
 *   - parameters are `?` (the PostgreSQL driver numbers them $1, $2 ...);
 *   - a read that must lock what it reads ends with DB_LOCK (FOR UPDATE on
 *     PostgreSQL; SQLite's write transaction already holds the database);
 *   - statements are static strings: their address keys the driver's cache
 *     of prepared statements (db_query_built runs a built string uncached).
 *
 * Every statement passes db_fault_hit() first: the one fault-injection point
 * of the store, whatever the driver.
 */
#ifndef PLINTH_STORE_DB_H
#define PLINTH_STORE_DB_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Marks a locking read; the PostgreSQL driver turns it into FOR UPDATE. */
#define DB_LOCK " /*lock*/"

/* A deadlock or serialization failure: db_run reruns the transaction. */
#define DB_RETRY (-1000)
/* Transactions rerun at most this often before ERR_UNAVAILABLE. */
#define DB_RETRIES 8

/* At most this many parameters per statement (scope lists are bounded by it). */
#define DB_MAX_PARAMS 64

/* One statement's parameters: 't' text (NULL = SQL NULL) or 'i' int64. */
struct db_param {
	char type;
	const char *text;
	int64_t i64;
};

struct db_rows; /* the rows of one query, owned by the caller until db_rows_close */

struct db_driver {
	const char *name; /* "sqlite", "postgres" */
	/* On failure why (STORE_DETAIL_LEN bytes) says what the database answered. */
	int (*conn_open)(struct store *s, struct store_conn **out, char *why);
	void (*conn_close)(struct store_conn *c);
	void (*destroy)(struct store *s);
	/* Re-opens a broken connection before an operation (NULL: nothing to do). */
	int (*conn_ready)(struct store_conn *c);
	/* write: the transaction may change rows (and serialises with other
	 * writers as the driver must); else one read snapshot. */
	int (*begin)(struct store_conn *c, bool write);
	/* Commits (or rolls back); 0 or the commit's failure (then rolled back). */
	int (*finish)(struct store_conn *c, bool commit);
	/* Runs sql (cached: a static string) with params; rows NULL: returns the
	 * rows changed (>= 0), else *rows gets a cursor.  No fault check here. */
	int (*run)(struct store_conn *c, const char *sql, bool cached, const struct db_param *p,
		   int n, struct db_rows **rows);
	/* 1 = positioned on the next row, 0 = no more, < 0 error. */
	int (*next)(struct db_rows *r);
	bool (*is_null)(const struct db_rows *r, int col);
	int64_t (*i64)(const struct db_rows *r, int col);
	const char *(*text)(const struct db_rows *r, int col); /* "" for NULL */
	void (*rows_close)(struct db_rows *r);
	/* A multi-statement script (migrations). */
	int (*script)(struct store_conn *c, const char *sql);
	/* The schema (schema.h): migrations[i] brings it to version i + 1. */
	const char *const *migrations;
	int nmigrations;
	/* Serialises migrations of several processes (NULL: the write lock does). */
	const char *migrate_lock_sql;
	/* The migration after which the cost rollups are filled from the
	 * allocations (the one that created the last rollup table). */
	int rollup_fill_version;
	/* Taken before the rollups are cleared and refilled: a completion's
	 * rollup write then waits for the fill instead of landing in the middle
	 * of it, counted twice (NULL: the write lock does). */
	const char *rollup_lock_sql;
	/* store_conn_durable(): commits of this connection (and of any the
	 * driver writes for it) stop, or again start, waiting for the disk. */
	int (*set_durable)(struct store_conn *c, bool durable);
	/* The group-commit engine of allocate (store.h's contract). */
	int (*allocate)(struct store_conn *c, const struct actor *who, const struct alloc_request *r,
			int64_t start_timeout_s, int64_t now, struct idem *idem,
			struct alloc_outcome *o, char *detail);
	/* Token lookups: a driver may answer from a cache (NULL: always read). */
	int (*token_by_hash)(struct store_conn *c, const char *hash, struct token *out);
	/* In the transaction that revokes a token: tell the other replicas (NULL: none). */
	int (*token_revoking)(struct store_conn *c);
	/* After it, committed or not: forget cached lookups (NULL: none). */
	void (*token_revoked)(struct store *s);
};

/*
 * The fields of struct db_driver that every driver fills alike, from static
 * functions of its file named drv_<field>, and its migrations array.
 */
#define DB_DRIVER_FNS                                                                          \
	.conn_open = drv_conn_open, .conn_close = drv_conn_close, .destroy = drv_destroy,      \
	.begin = drv_begin, .finish = drv_finish, .run = drv_run, .next = drv_next,            \
	.is_null = drv_is_null, .i64 = drv_i64, .text = drv_text, .rows_close = drv_rows_close, \
	.script = drv_script, .set_durable = drv_set_durable, .allocate = drv_allocate,        \
	.migrations = drv_migrations,                                                          \
	.nmigrations = (int)(sizeof(drv_migrations) / sizeof(drv_migrations[0]))

/* The driver of the store a connection belongs to. */
static inline const struct db_driver *db_drv(const struct store_conn *c)
{
	return c->store->drv;
}

/* Records a one-line error on the connection (its detail). */
__attribute__((format(printf, 2, 3))) void db_err(struct store_conn *c, const char *fmt, ...);
/* Copies the connection's error (or err_name(rc)) into detail when rc != 0. */
void db_detail(struct store_conn *c, int rc, char *detail);

/* true: the next statement fails (store_fault_after); the error is recorded. */
bool db_fault_hit(struct store_conn *c);

/* Parameters from a format ('t' const char *, 'i' int64_t) into p (n slots). */
int db_params(struct store_conn *c, struct db_param *p, int max, int *n, const char *fmt, ...);
int db_vparams(struct store_conn *c, struct db_param *p, int max, int *n, const char *fmt,
	       va_list ap);

/* A cached statement: rows changed (>= 0) or an error. */
int db_exec(struct store_conn *c, const char *sql, const char *fmt, ...);
/* A cached query: *rows owned by the caller (db_rows_close). */
int db_query(struct store_conn *c, const char *sql, struct db_rows **rows, const char *fmt, ...);
/* A query built at run time (not cached), with parameters already in p. */
int db_query_built(struct store_conn *c, const char *sql, const struct db_param *p, int n,
		   struct db_rows **rows);
/* The first row's first column as an integer: 0 and *out, ERR_NOT_FOUND without a row. */
int db_query_i64(struct store_conn *c, const char *sql, int64_t *out, const char *fmt, ...);

/* SQL built at run time.  Appends `more` to *sql (malloc'd, grown). */
int db_sql_append(char **sql, const char *more);
/* Appends " AND col IN (?, ...)" for scope v[0..n) to *sql and the values to
 * p (*np used of DB_MAX_PARAMS); n == 0 sees nothing. */
int db_sql_scope(struct store_conn *c, char **sql, const char *col, const char *const *v, size_t n,
		  struct db_param *p, int *np);
/* Appends " AND team_id = ?" for team (if given) and the scope teams[0..nteams)
 * (if teams is not NULL) of a list filter. */
int db_sql_teams(struct store_conn *c, char **sql, const char *team, const char *const *teams,
		  size_t nteams, struct db_param *p, int *np);
/* Appends cond to *sql and its parameters (fmt as db_params) to p. */
int db_sql_and(struct store_conn *c, char **sql, struct db_param *p, int *np, const char *cond,
		const char *fmt, ...);

int db_next(struct db_rows *r);
int64_t db_i64(const struct db_rows *r, int col);
bool db_null(const struct db_rows *r, int col);
const char *db_text(const struct db_rows *r, int col);
/* Copies a text column into buf (len bytes): 0, or -1 when it does not fit
 * (buf then holds it cut; the caller reports the row as bad). */
int db_copy(const struct db_rows *r, int col, char *buf, size_t len);
/* A text column as an owned string (NULL without memory). */
char *db_dup(const struct db_rows *r, int col);
void db_rows_close(struct db_rows *r);

/* Starts an operation that runs outside a transaction (one read): clears
 * c->err and re-opens a broken connection. */
int db_op(struct store_conn *c);

/*
 * Runs fn(c, ctx) in one transaction, rerunning it whole after a deadlock or
 * serialization failure (DB_RETRY).  It commits when fn returns 0 or set
 * c->keep (a refusal whose writes must stay, such as an expiry found on the
 * way), else rolls back.  Clears c->err first.
 */
int db_run(struct store_conn *c, bool write, int (*fn)(struct store_conn *c, void *ctx), void *ctx);
/* One statement (db_exec's arguments) in its own write transaction: the
 * rows it changed (>= 0) or an error. */
int db_exec_tx(struct store_conn *c, const char *sql, const char *fmt, ...);

/* ---- rows of the ledger's tables (the column lists below, in order) ---- */

#define TOKEN_COLS "id, name, role, teams_json, created_at, revoked_at"
#define GPU_COLS                                                                      \
	"id, name, price_micros, price_date, price_source, capacity, allocated, updated_at," \
	" retired_at"
#define TEAM_COLS                                                                         \
	"id, display_name, budget_micros, period, thresholds_json, created_at, updated_at," \
	" admins_json, retired_at, namespaces"
#define ALLOC_COLS                                                                              \
	"id, team_id, project, gpu_type, gpu_count, max_runtime_us, price_micros,"              \
	" estimated_micros, status, purpose, labels_json, created_by, period_start, approved_at," \
	" expires_at, started_at, ended_at, actual_micros"

/* How a row reader takes a column into its member: an int64_t, a char[] (a
 * text that does not fit makes the row bad; CUT: the reader answers 1 and the
 * row stays readable) or a name of an enum (another name makes the row bad). */
enum db_col_kind { DB_COL_I64, DB_COL_TEXT, DB_COL_CUT, DB_COL_ROLE, DB_COL_PERIOD, DB_COL_STATUS };

/* One column of a record's row (DB_I64 ... below), in its SELECT's order. */
struct db_col {
	enum db_col_kind kind;
	size_t off, size; /* the member's offsetof and sizeof */
};

/* Member m of struct S; one of another type than the kind's does not compile. */
#define DB_COL_OF(kind, S, m, type)                                                  \
	{kind, offsetof(struct S, m) + 0 * sizeof(_Generic(((struct S *)0)->m, type: 1)), \
	 sizeof(((struct S *)0)->m)}
#define DB_I64(S, m)    DB_COL_OF(DB_COL_I64, S, m, int64_t)
#define DB_TEXT(S, m)   DB_COL_OF(DB_COL_TEXT, S, m, char *)
#define DB_CUT(S, m)    DB_COL_OF(DB_COL_CUT, S, m, char *)
#define DB_ROLE(S, m)   DB_COL_OF(DB_COL_ROLE, S, m, enum role)
#define DB_PERIOD(S, m) DB_COL_OF(DB_COL_PERIOD, S, m, enum period_kind)
#define DB_STATUS(S, m) DB_COL_OF(DB_COL_STATUS, S, m, enum alloc_status)

/* Reads the n columns of cols from column col on into rec (size bytes, zeroed
 * first): 0, 1 when a DB_COL_CUT text was cut, or ERR_STORE for a bad row. */
int db_read_cols(const struct db_rows *r, int col, const struct db_col *cols, size_t n, void *rec,
		 size_t size);

/* Row readers from column `col` on: 0, or ERR_STORE for a row they cannot read. */
typedef int (*db_row_fn)(const struct db_rows *r, int col, void *rec);
int db_row_token(const struct db_rows *r, int col, void *token);
int db_row_gpu(const struct db_rows *r, int col, void *gpu_type);
int db_row_team(const struct db_rows *r, int col, void *team);
int db_row_alloc(const struct db_rows *r, int col, void *allocation);
#define db_row_alloc_v db_row_alloc /* its name in older callers */

/* Loads the one row `sql` selects for key with row(): 0, ERR_NOT_FOUND or an error. */
int db_load(struct store_conn *c, const char *sql, const char *key,
	    int (*row)(const struct db_rows *, int, void *), void *out);

/* Who writes when no token does (the sweeper, seeding). */
extern const char DB_SYSTEM_ACTOR[];

/* Appends one audit row; before/after are records rendered by fn (NULL = none). */
int db_audit(struct store_conn *c, const struct actor *who, int64_t at, const char *action,
	     const char *type, const char *id, const char *team, json_t *(*fn)(const void *),
	     const void *before, const void *after);

/*
 * A record type that db_put writes (team, GPU type): read it locked, refuse
 * a change of a retired one, merge the named fields, write, audit.
 */
struct db_put_kind {
	const char *type; /* the audit object type, "team" */
	const char *name; /* in the conflict detail, "GPU type" */
	size_t size;      /* of the record; its int64_t members: */
	size_t retired_off, updated_off;
	unsigned put_fields;     /* what a put names */
	unsigned retired_field;  /* the field flag of retired_at */
	const char *prelock_sql; /* taken first with the id (NULL: none) */
	const char *lock_sql;    /* reads the record by id, DB_LOCK */
	const char *get_sql;     /* reads it by id */
	db_row_fn row;
	/* rec = old (NULL: a new record) with the fields f of in. */
	void (*merge)(void *rec, const void *old, const void *in, unsigned f, int64_t now);
	/* UPDATE (exists) or INSERT rec: db_exec's answer. */
	int (*write)(struct store_conn *c, const void *rec, bool exists);
	/* What follows the write (NULL: nothing): 0 or an error. */
	int (*after)(struct store_conn *c, const void *rec, const void *old, int64_t now);
	json_t *(*audit_json)(const void *);
	bool audit_team; /* the audit row's team is the record's id */
};

/* The size and member offsets of record type T, for its struct db_put_kind. */
#define DB_PUT_LAYOUT(T)                                                                   \
	.size = sizeof(T), .retired_off = offsetof(T, retired_at),                         \
	.updated_off = offsetof(T, updated_at)

/*
 * In its own write transaction: without out a put of `fields` of in (creates
 * or replaces; *created says which), with out a patch (of an existing
 * record; one that changes nothing writes nothing and is not audited).  0
 * with the record after it in *out, or an error (nothing written).
 */
int db_put(struct store_conn *c, const struct db_put_kind *k, const struct actor *who,
	   const char *id, const void *in, unsigned fields, int64_t now, void *out, bool *created);

/* Defines prefix_put, prefix_patch and prefix_get (ops.h) of record type T
 * over its kind K: one body for every such type. */
#define DB_PUT_OPS(prefix, T, K)                                                              \
	int prefix##_put(struct store_conn *c, const struct actor *who, const T *in, int64_t now, \
			 bool *created)                                                        \
	{                                                                                      \
		return db_put(c, &K, who, in->id, in, K.put_fields, now, NULL, created);       \
	}                                                                                      \
	int prefix##_patch(struct store_conn *c, const struct actor *who, const T *in,         \
			   unsigned fields, int64_t now, T *out)                               \
	{                                                                                      \
		return db_put(c, &K, who, in->id, in, fields, now, out, NULL);                 \
	}                                                                                      \
	int prefix##_get(struct store_conn *c, const char *id, T *out)                         \
	{                                                                                      \
		return db_get(c, K.get_sql, id, K.row, out, sizeof(*out));                     \
	}

/* db_op then db_load into *out (a team, GPU type or token: size bytes),
 * which is untouched on failure. */
int db_get(struct store_conn *c, const char *sql, const char *key, db_row_fn row, void *out,
	   size_t size);


/* A locking read that passes over rows other transactions hold (FOR UPDATE
 * SKIP LOCKED on PostgreSQL): concurrent claimers take disjoint rows.  Like
 * DB_LOCK, nothing on SQLite, whose write transaction holds the database. */
#define DB_LOCK_SKIP " /*lock skip*/"


/*
 * Walks the rows of a list (r from db_query, closed here): row() reads each
 * into rec from column 0; a row it cannot read is reported as a bad row of
 * `table` (store_bad_row, by its first column) and skipped; each(ctx, rec)
 * gets the others until it returns non-zero.  0 or the first error.
 */
int db_each(struct db_rows *r, const char *table, int (*row)(const struct db_rows *, int, void *),
	    void *rec, int (*each)(void *ctx, const void *rec), void *ctx);

/* db_op, then db_each over the rows of sql (no parameters). */
int db_list(struct store_conn *c, const char *sql, const char *table, db_row_fn row, void *rec,
	    int (*each)(void *ctx, const void *rec), void *ctx);

/* db_each's untyped callback `name` giving each record to a typed one
 * (store.h's store_*_cb) held with its context in a struct name. */
#define DB_EACH_TYPED(name, cb_type)                \
	struct name {                              \
		cb_type cb;                        \
		void *ctx;                         \
	};                                         \
	static int name(void *p, const void *rec)  \
	{                                          \
		const struct name *e = p;          \
		return e->cb(e->ctx, rec);         \
	}
/*
 * One keyset page of a list, for db_page_walk.  A page's cursor is the key
 * of its last row: "AT:ID" for a list newest first by (at_col, id), "SEQ"
 * for one oldest first by seq (column 0).  Old cursors keep working, so
 * this text is a contract.
 */
struct db_page {
	const char *select; /* "SELECT <cols> FROM <table> WHERE 1 = 1" */
	const char *table;  /* bad rows are reported as this table's */
	const char *at_col; /* newest first by (at_col, id DESC); NULL: oldest first by seq */
	int at_idx;         /* at_col's column in the row; id is column 0 */
	/* Appends the list's filters (" AND ...") to *sql and their values to p. */
	int (*where)(struct store_conn *c, const void *filter, char **sql, struct db_param *p,
		     int *np);
	/* Takes the current row into rec and on to the caller (ctx): 0 go on, 1
	 * the caller stops, ERR_STORE with *why (default: a text does not fit)
	 * a bad row reported and skipped - it still moves the cursor, so a page
	 * never ends early - or an error. */
	int (*take)(void *ctx, void *rec, const struct db_rows *r, const char **why);
	size_t rec_size; /* take's record, zeroed once per page (off the stack: records are large) */
};

/*
 * Walks one page: limit clamped to [1, STORE_MAX_PAGE], limit + 1 rows read
 * (one more: there is a next page).  next_cursor ("" on the last page, or
 * when the caller stopped) is STORE_ID_LEN * 2 bytes newest first, else
 * STORE_ID_LEN.  A bad cursor is ERR_INVALID ("invalid cursor").
 */
int db_page_walk(struct store_conn *c, const struct db_page *pg, const void *filter, void *ctx,
		 const char *cursor, int limit, char *next_cursor);

/* A list's caller: its typed callback and context (take's ctx). */
struct db_list_to {
	union {
		store_alloc_cb alloc;
		store_job_cb job;
		store_audit_cb audit;
	} cb;
	void *ctx;
};

#endif
