/*
 * db.c - the layer every store operation runs on (db.h): typed parameters,
 * the one fault-injection point, the transaction runner that reruns a
 * deadlocked or serialisation-failed transaction, row readers of the
 * ledger's tables and the audit row, SQL built at run time and the one
 * keyset page walker of the lists.  Driver-independent: it calls the
 * driver of the connection's store and never speaks a library's API.
 */
#include "store/db.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/lifecycle.h"
#include "core/period.h"
#include "store/store_int.h"

const char DB_SYSTEM_ACTOR[] = "system";

void db_err(struct store_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

void db_detail(struct store_conn *c, int rc, char *detail)
{
	if (!detail || rc == 0)
		return;
	snprintf(detail, STORE_DETAIL_LEN, "%s", c->err[0] ? c->err : err_name(rc));
}

bool db_fault_hit(struct store_conn *c)
{
	if (!store_fault_hit(c->store))
		return false;
	db_err(c, "injected fault");
	return true;
}

int db_vparams(struct store_conn *c, struct db_param *p, int max, int *n, const char *fmt,
	       va_list ap)
{
	for (const char *f = fmt; *f; f++) {
		if (*n >= max) {
			db_err(c, "internal: more than %d parameters", max);
			return ERR_STORE;
		}
		p[*n].type = *f;
		if (*f == 't') {
			p[*n].text = va_arg(ap, const char *);
		} else if (*f == 'i') {
			p[*n].i64 = va_arg(ap, int64_t);
		} else {
			db_err(c, "internal: bad parameter format '%c'", *f);
			return ERR_STORE;
		}
		(*n)++;
	}
	return 0;
}

int db_params(struct store_conn *c, struct db_param *p, int max, int *n, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = db_vparams(c, p, max, n, fmt, ap);
	va_end(ap);
	return rc;
}

/* THE one place a statement of an operation is executed. */
static int run(struct store_conn *c, const char *sql, bool cached, const struct db_param *p, int n,
	       struct db_rows **rows)
{
	if (db_fault_hit(c))
		return ERR_STORE;
	return db_drv(c)->run(c, sql, cached, p, n, rows);
}

/* A cached statement with parameters from fmt/ap: rows changed, or *rows. */
static int run_v(struct store_conn *c, const char *sql, struct db_rows **rows, const char *fmt,
		 va_list ap)
{
	struct db_param p[DB_MAX_PARAMS];
	int n = 0, rc = db_vparams(c, p, DB_MAX_PARAMS, &n, fmt, ap);

	return rc != 0 ? rc : run(c, sql, true, p, n, rows);
}

int db_exec(struct store_conn *c, const char *sql, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = run_v(c, sql, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int db_query(struct store_conn *c, const char *sql, struct db_rows **rows, const char *fmt, ...)
{
	va_list ap;
	int rc;

	*rows = NULL;
	va_start(ap, fmt);
	rc = run_v(c, sql, rows, fmt, ap);
	va_end(ap);
	return rc;
}

int db_query_built(struct store_conn *c, const char *sql, const struct db_param *p, int n,
		   struct db_rows **rows)
{
	*rows = NULL;
	return run(c, sql, false, p, n, rows);
}

int db_query_i64(struct store_conn *c, const char *sql, int64_t *out, const char *fmt, ...)
{
	struct db_rows *r = NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = run_v(c, sql, &r, fmt, ap);
	va_end(ap);
	if (rc == 0) {
		rc = db_next(r);
		if (rc == 1) {
			*out = db_i64(r, 0);
			rc = 0;
		} else if (rc == 0) {
			rc = ERR_NOT_FOUND;
		}
	}
	db_rows_close(r);
	return rc;
}

int db_next(struct db_rows *r)
{
	return r->conn->store->drv->next(r);
}

int64_t db_i64(const struct db_rows *r, int col)
{
	return r->conn->store->drv->i64(r, col);
}

bool db_null(const struct db_rows *r, int col)
{
	return r->conn->store->drv->is_null(r, col);
}

const char *db_text(const struct db_rows *r, int col)
{
	return r->conn->store->drv->text(r, col);
}

int db_copy(const struct db_rows *r, int col, char *buf, size_t len)
{
	const char *t = db_text(r, col);
	size_t n = strlen(t);
	int rc = 0;

	if (n >= len) {
		n = len - 1;
		rc = -1;
	}
	memcpy(buf, t, n);
	buf[n] = '\0';
	return rc;
}

char *db_dup(const struct db_rows *r, int col)
{
	return strdup(db_text(r, col));
}

void db_rows_close(struct db_rows *r)
{
	if (r)
		r->conn->store->drv->rows_close(r);
}

int db_op(struct store_conn *c)
{
	const struct db_driver *d = db_drv(c);

	c->err[0] = '\0';
	return d->conn_ready ? d->conn_ready(c) : 0;
}

/* db_exec_tx's statement, its parameters, and the rows it changed. */
struct exec_tx {
	const char *sql;
	struct db_param p[DB_MAX_PARAMS];
	int n, changed;
};

static int exec_tx(struct store_conn *c, void *ctx)
{
	struct exec_tx *x = ctx;

	x->changed = run(c, x->sql, true, x->p, x->n, NULL);
	return x->changed < 0 ? x->changed : 0;
}

int db_exec_tx(struct store_conn *c, const char *sql, const char *fmt, ...)
{
	struct exec_tx x = {.sql = sql};
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = db_vparams(c, x.p, DB_MAX_PARAMS, &x.n, fmt, ap);
	va_end(ap);
	if (rc == 0)
		rc = db_run(c, true, exec_tx, &x);
	return rc != 0 ? rc : x.changed;
}

int db_run(struct store_conn *c, bool write, int (*fn)(struct store_conn *c, void *ctx), void *ctx)
{
	const struct db_driver *d = db_drv(c);
	int rc = db_op(c);

	/* A DB_RETRY (deadlock, serialization failure, a lost create race) reruns. */
	for (int attempt = 0; (rc == 0 || rc == DB_RETRY) && attempt < DB_RETRIES; attempt++) {
		bool commit;
		int fin;

		c->keep = false;
		rc = db_fault_hit(c) ? ERR_STORE : d->begin(c, write);
		if (rc == 0) {
			rc = fn(c, ctx);
			commit = rc == 0 || c->keep;
			/* COMMIT is a statement like any other: it may fail too. */
			if (commit && db_fault_hit(c)) {
				(void)d->finish(c, false);
				fin = ERR_STORE;
			} else {
				fin = d->finish(c, commit);
			}
			if (fin != 0 && commit)
				rc = fin;
		}
		if (rc != DB_RETRY)
			break;
		c->err[0] = '\0';
	}
	if (rc == DB_RETRY) {
		db_err(c, "too much contention, retry later");
		rc = ERR_UNAVAILABLE;
	}
	return rc;
}

/* ---- rows -------------------------------------------------------------- */

/* The int64_t member at byte offset off of a record. */
#define REC_I64(rec, off) (*(int64_t *)((char *)(rec) + (off)))

int db_read_cols(const struct db_rows *r, int col, const struct db_col *cols, size_t n, void *rec,
		 size_t size)
{
	int bad = 0, cut = 0;

	memset(rec, 0, size);
	for (size_t i = 0; i < n; i++, col++) {
		void *m = (char *)rec + cols[i].off;

		switch (cols[i].kind) {
		case DB_COL_I64: REC_I64(rec, cols[i].off) = db_i64(r, col); break;
		case DB_COL_TEXT: bad |= db_copy(r, col, m, cols[i].size); break;
		case DB_COL_CUT: cut |= db_copy(r, col, m, cols[i].size); break;
		case DB_COL_ROLE: bad |= role_parse(db_text(r, col), m); break;
		case DB_COL_PERIOD: bad |= period_kind_parse(db_text(r, col), m); break;
		case DB_COL_STATUS: bad |= alloc_status_parse(db_text(r, col), m); break;
		}
	}
	return bad ? ERR_STORE : cut ? 1 : 0;
}

/* The columns of TOKEN_COLS ... (db.h), in order. */
static const struct db_col TOKEN_ROW[] = {
	DB_TEXT(token, id), DB_TEXT(token, name), DB_ROLE(token, role), DB_TEXT(token, teams_json),
	DB_I64(token, created_at), DB_I64(token, revoked_at)};
static const struct db_col GPU_ROW[] = {
	DB_TEXT(gpu_type, id), DB_TEXT(gpu_type, name), DB_I64(gpu_type, price_micros),
	DB_TEXT(gpu_type, price_date), DB_TEXT(gpu_type, price_source),
	DB_I64(gpu_type, capacity), DB_I64(gpu_type, allocated), DB_I64(gpu_type, updated_at),
	DB_I64(gpu_type, retired_at)};
static const struct db_col TEAM_ROW[] = {
	DB_TEXT(team, id), DB_TEXT(team, display_name), DB_I64(team, budget_micros),
	DB_PERIOD(team, period), DB_TEXT(team, thresholds_json), DB_I64(team, created_at),
	DB_I64(team, updated_at), DB_TEXT(team, admins_json), DB_I64(team, retired_at),
	DB_TEXT(team, namespaces)};
static const struct db_col ALLOC_ROW[] = {
	DB_TEXT(allocation, id), DB_TEXT(allocation, team), DB_TEXT(allocation, project),
	DB_TEXT(allocation, gpu_type), DB_I64(allocation, gpu_count),
	DB_I64(allocation, max_runtime_us), DB_I64(allocation, price_micros),
	DB_I64(allocation, estimated_micros), DB_STATUS(allocation, status),
	DB_CUT(allocation, purpose), DB_CUT(allocation, labels_json),
	DB_TEXT(allocation, created_by), DB_I64(allocation, period_start),
	DB_I64(allocation, approved_at), DB_I64(allocation, expires_at),
	DB_I64(allocation, started_at), DB_I64(allocation, ended_at),
	DB_I64(allocation, actual_micros)};

#define NCOLS(cols) (sizeof(cols) / sizeof(cols[0]))

/* Reader fn (db.h) of struct S over its column table. */
#define ROW_READER(fn, S, cols)                                                        \
	int fn(const struct db_rows *r, int col, void *out)                             \
	{                                                                               \
		return db_read_cols(r, col, cols, NCOLS(cols), out, sizeof(struct S)); \
	}
ROW_READER(db_row_token, token, TOKEN_ROW)
ROW_READER(db_row_gpu, gpu_type, GPU_ROW)
ROW_READER(db_row_team, team, TEAM_ROW)

int db_row_alloc(const struct db_rows *r, int col, void *out)
{
	struct allocation *a = out;
	int rc = db_read_cols(r, col, ALLOC_ROW, NCOLS(ALLOC_ROW), a, sizeof(*a));

	/* A cut text leaves the money readable (costs, expiry); the row cannot
	 * be rendered (store_alloc_unreadable), which "" labels say. */
	if (rc == 1)
		a->labels_json[0] = '\0';
	return rc == 1 ? 0 : rc;
}

int db_load(struct store_conn *c, const char *sql, const char *key,
	    int (*row)(const struct db_rows *, int, void *), void *out)
{
	struct db_rows *r = NULL;
	int rc;

	rc = db_query(c, sql, &r, "t", key);
	if (rc == 0) {
		rc = db_next(r);
		if (rc == 1) {
			rc = row(r, 0, out);
			if (rc != 0)
				db_err(c, "corrupt row for '%s'", key);
		} else if (rc == 0) {
			rc = ERR_NOT_FOUND;
		}
	}
	db_rows_close(r);
	return rc;
}

/* ---- audit ------------------------------------------------------------- */

static const char SQL_AUDIT_INSERT[] =
	"INSERT INTO audit(at, actor_id, actor_name, action, object_type, object_id, team,"
	" before_json, after_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";

int db_audit(struct store_conn *c, const struct actor *who, int64_t at, const char *action,
	     const char *type, const char *id, const char *team, json_t *(*fn)(const void *),
	     const void *before, const void *after)
{
	char *b = NULL, *a = NULL;
	int rc, n;

	rc = store_audit_render(fn, before, after, &b, &a);
	if (rc != 0)
		goto out;
	n = db_exec(c, SQL_AUDIT_INSERT, "itttttttt", at, who ? who->token_id : DB_SYSTEM_ACTOR,
		    who ? who->name : DB_SYSTEM_ACTOR, action, type, id, team ? team : "", b, a);
	rc = n < 0 ? n : 0;
out:
	if (rc == ERR_NOMEM)
		db_err(c, "out of memory rendering the audit row");
	free(b);
	free(a);
	return rc;
}

/* ---- put and patch of a retirable record (team, GPU type) -------------- */

/* The records db_put and db_get read: their scratch records hold any. */
union db_rec {
	struct team team;
	struct gpu_type gpu;
	struct token token;
};

/* One put or patch (db_put's arguments) and what came of it. */
struct db_put_run {
	const struct db_put_kind *k;
	const void *in; /* the values of `fields` */
	unsigned fields;
	bool patch;
	const char *id;
	const struct actor *who;
	int64_t now;
	bool created;
	union db_rec out; /* the record after the write */
};

/* A change nobody could see in the audit row (before and after rendered
 * alike, updated_at kept) is no change: 1 for one, 0, or an error. */
static int db_put_unchanged(const struct db_put_kind *k, const void *old, const void *rec)
{
	char *b = NULL, *a = NULL;
	int rc = store_audit_render(k->audit_json, old, rec, &b, &a);

	if (rc == 0)
		rc = strcmp(b, a) == 0;
	free(b);
	free(a);
	return rc;
}

static int db_put_tx(struct store_conn *c, void *ctx)
{
	struct db_put_run *p = ctx;
	const struct db_put_kind *k = p->k;
	union db_rec old, rec;
	char action[48];
	int64_t was = 0, retired = 0;
	int rc, n = k->prelock_sql ? db_exec(c, k->prelock_sql, "t", p->id) : 0;

	rc = n < 0 ? n : db_load(c, k->lock_sql, p->id, k->row, &old);
	if (rc != 0 && (rc != ERR_NOT_FOUND || p->patch))
		return rc;
	if (rc == 0) {
		was = REC_I64(&old, k->retired_off);
		rc = retire_rule(was, p->fields & k->retired_field,
				       p->fields == k->retired_field,
				       REC_I64(p->in, k->retired_off), &retired);
		if (rc == ERR_CONFLICT)
			db_err(c, "%s '%s' is retired", k->name, p->id);
		if (rc != 0 && rc != 1)
			return rc;
	}
	p->created = rc == ERR_NOT_FOUND;
	if (!p->created)
		memcpy(&p->out, &old, k->size);
	if (rc == 1) /* a retire of a retired record: nothing to do */
		return 0;
	k->merge(&rec, p->created ? NULL : &old, p->in, p->fields, p->now);
	REC_I64(&rec, k->retired_off) = retired;
	/* A patch that changes nothing writes nothing: no updated_at, no audit row. */
	rc = p->patch ? db_put_unchanged(k, &old, &rec) : 0;
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	REC_I64(&rec, k->updated_off) = p->now;
	n = k->write(c, &rec, !p->created);
	if (n < 0) /* two creators raced (row locks): the loser reruns and updates instead */
		return n == ERR_CONFLICT && p->created ? DB_RETRY : n;
	rc = k->after ? k->after(c, &rec, p->created ? NULL : &old, p->now) : 0;
	if (rc != 0)
		return rc;
	memcpy(&p->out, &rec, k->size);
	retire_action(k->type, !p->created, was, retired, action, sizeof(action));
	return db_audit(c, p->who, p->now, action, k->type, p->id, k->audit_team ? p->id : "",
			k->audit_json, p->created ? NULL : &old, &rec);
}

int db_put(struct store_conn *c, const struct db_put_kind *k, const struct actor *who,
	   const char *id, const void *in, unsigned fields, int64_t now, void *out, bool *created)
{
	struct db_put_run x = {.k = k, .in = in, .fields = fields, .patch = out != NULL,
			       .id = id, .who = who, .now = now};
	int rc = db_run(c, true, db_put_tx, &x);

	if (rc == 0 && out)
		memcpy(out, &x.out, k->size);
	if (rc == 0 && created)
		*created = x.created;
	return rc;
}

int db_get(struct store_conn *c, const char *sql, const char *key, db_row_fn row, void *out,
	   size_t size)
{
	union db_rec tmp;
	int rc = size > sizeof(tmp) ? ERR_STORE : db_op(c);

	if (rc == 0)
		rc = db_load(c, sql, key, row, &tmp);
	if (rc == 0)
		memcpy(out, &tmp, size);
	return rc;
}

int db_list(struct store_conn *c, const char *sql, const char *table, db_row_fn row, void *rec,
	    int (*each)(void *ctx, const void *rec), void *ctx)
{
	struct db_rows *r = NULL;
	int rc = db_op(c);

	if (rc == 0)
		rc = db_query(c, sql, &r, "");
	return rc != 0 ? rc : db_each(r, table, row, rec, each, ctx);
}

/* ---- lists ------------------------------------------------------------- */

int db_each(struct db_rows *r, const char *table, int (*row)(const struct db_rows *, int, void *),
	    void *rec, int (*each)(void *ctx, const void *rec), void *ctx)
{
	int rc;

	while ((rc = db_next(r)) == 1) {
		if (row(r, 0, rec) != 0) { /* unreadable: reported and skipped */
			store_bad_row(table, db_text(r, 0), STORE_BAD_ROW_TEXT);
			continue;
		}
		if (each(ctx, rec) != 0)
			break;
	}
	db_rows_close(r);
	return rc < 0 ? rc : 0;
}

/* ---- SQL built at run time (db.h) ------------------------------------- */

int db_sql_append(char **sql, const char *more)
{
	size_t len = strlen(*sql), m = strlen(more);
	char *s = realloc(*sql, len + m + 1);

	if (!s)
		return ERR_NOMEM;
	memcpy(s + len, more, m + 1);
	*sql = s;
	return 0;
}

int db_sql_and(struct store_conn *c, char **sql, struct db_param *p, int *np, const char *cond,
		const char *fmt, ...)
{
	va_list ap;
	int rc = db_sql_append(sql, cond);

	va_start(ap, fmt);
	if (rc == 0)
		rc = db_vparams(c, p, DB_MAX_PARAMS, np, fmt, ap);
	va_end(ap);
	return rc;
}

int db_sql_scope(struct store_conn *c, char **sql, const char *col, const char *const *v, size_t n,
		  struct db_param *p, int *np)
{
	int rc;

	if (n == 0)
		return db_sql_append(sql, " AND 1 = 0"); /* an empty scope sees nothing */
	if (n > DB_MAX_PARAMS) {
		db_err(c, "a scope of %zu teams is more than %d", n, DB_MAX_PARAMS);
		return ERR_INVALID;
	}
	rc = db_sql_append(sql, " AND ");
	if (rc == 0)
		rc = db_sql_append(sql, col);
	if (rc == 0)
		rc = db_sql_append(sql, " IN (");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = db_sql_and(c, sql, p, np, i ? ", ?" : "?", "t", v[i]);
	return rc == 0 ? db_sql_append(sql, ")") : rc;
}

int db_sql_teams(struct store_conn *c, char **sql, const char *team, const char *const *teams,
		  size_t nteams, struct db_param *p, int *np)
{
	int rc = team ? db_sql_and(c, sql, p, np, " AND team_id = ?", "t", team) : 0;

	if (rc == 0 && teams)
		rc = db_sql_scope(c, sql, "team_id", teams, nteams, p, np);
	return rc;
}

/* ---- keyset pages ------------------------------------------------------ */

/* A cursor ("AT:ID" newest first, else "SEQ"; NULL or "": the first page)
 * into *key and id (STORE_ID_LEN bytes, "" without one): 0 or ERR_INVALID. */
static int page_cursor(const char *cur, bool newest, int64_t *key, char *id)
{
	char *end = NULL;
	size_t len;

	*key = 0;
	id[0] = '\0';
	if (!cur || !cur[0])
		return 0;
	if (cur[0] < '0' || cur[0] > '9') /* no sign, no blank: one spelling per key */
		return ERR_INVALID;
	errno = 0;
	*key = strtoll(cur, &end, 10);
	if (errno == ERANGE) /* clamped to INT64_MAX: another key (the first page) */
		return ERR_INVALID;
	if (!newest)
		return *end ? ERR_INVALID : 0;
	if (*end != ':')
		return ERR_INVALID;
	len = strlen(end + 1);
	if (len == 0 || len >= STORE_ID_LEN)
		return ERR_INVALID;
	memcpy(id, end + 1, len + 1);
	return 0;
}

/* The page's SQL: pg's filters, then the rows after the cursor's key in the
 * list's order, limit + 1 of them. */
static int page_sql(struct store_conn *c, const struct db_page *pg, const void *filter, int64_t key,
		    const char *id, int limit, char **sql, struct db_param *p, int *np)
{
	const char *col = pg->at_col;
	char after[160], order[96];
	int rc;

	*sql = strdup(pg->select);
	if (!*sql)
		return ERR_NOMEM;
	rc = pg->where(c, filter, sql, p, np);
	if (rc == 0 && !col)
		rc = db_sql_and(c, sql, p, np, " AND seq > ?", "i", key);
	if (col) {
		snprintf(after, sizeof(after), " AND (%s < ? OR (%s = ? AND id < ?))", col, col);
		snprintf(order, sizeof(order), " ORDER BY %s DESC, id DESC LIMIT ?", col);
	}
	if (rc == 0 && col && id[0])
		rc = db_sql_and(c, sql, p, np, after, "iit", key, key, id);
	if (rc == 0)
		rc = db_sql_and(c, sql, p, np, col ? order : " ORDER BY seq LIMIT ?", "i",
				 (int64_t)limit + 1);
	return rc;
}

int db_page_walk(struct store_conn *c, const struct db_page *pg, const void *filter, void *ctx,
		 const char *cursor, int limit, char *next_cursor)
{
	bool newest = pg->at_col != NULL, more = false;
	struct db_param p[DB_MAX_PARAMS];
	struct db_rows *r = NULL;
	char *sql = NULL, id[STORE_ID_LEN];
	void *rec = NULL;
	int64_t key = 0;
	int rows = 0, np = 0, rc = db_op(c);

	if (rc != 0)
		return rc;
	limit = limit < 1 ? 1 : limit > STORE_MAX_PAGE ? STORE_MAX_PAGE : limit;
	if (page_cursor(cursor, newest, &key, id) != 0) {
		db_err(c, "invalid cursor");
		return ERR_INVALID;
	}
	rec = calloc(1, pg->rec_size);
	rc = rec ? page_sql(c, pg, filter, key, id, limit, &sql, p, &np) : ERR_NOMEM;
	if (rc == 0)
		rc = db_query_built(c, sql, p, np, &r);
	while (rc == 0 && (rc = db_next(r)) == 1) {
		const char *why = NULL;

		if (rows++ == limit) {
			more = true;
			rc = 0;
			break;
		}
		/* The key before the row is taken: a bad row moves the cursor too.
		 * An id too long is cut here as the row readers cut it; they
		 * report that row. */
		key = db_i64(r, newest ? pg->at_idx : 0);
		if (newest)
			(void)db_copy(r, 0, id, sizeof(id));
		rc = pg->take(ctx, rec, r, &why);
		if (rc == ERR_STORE) {
			store_bad_row(pg->table, db_text(r, 0),
				      why ? why : "a text does not fit its field");
			rc = 0;
		}
	}
	db_rows_close(r);
	free(sql);
	free(rec);
	if (rc < 0)
		return rc;
	if (!more)
		next_cursor[0] = '\0';
	else if (newest)
		snprintf(next_cursor, STORE_ID_LEN * 2, "%lld:%s", (long long)key, id);
	else
		snprintf(next_cursor, STORE_ID_LEN, "%lld", (long long)key);
	return 0;
}
