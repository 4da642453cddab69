/*
 * ops_audit.c - reads the append-only audit log a page at a time, oldest
 * first, filtered in SQL by team, actor, action and time.  The rows are written by db_audit()
 * in the transaction of each change; nothing here writes.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define AUDIT_COLS \
	"seq, at, actor_id, actor_name, action, object_type, object_id, team, before_json, after_json"

/* The page's SQL and parameters for filter f after seq `after` (limit + 1
 * rows: is there more?).  Only the filters given become conditions, so the
 * team filter keeps using audit(team, seq). */
static int audit_sql(struct store_conn *c, const struct audit_filter *f, int64_t after, int limit,
		     char **sql, struct db_param *p, int *np)
{
	int rc;

	*sql = strdup("SELECT " AUDIT_COLS " FROM audit WHERE seq > ?");
	if (!*sql)
		return ERR_NOMEM;
	rc = db_params(c, p, DB_MAX_PARAMS, np, "i", after);
	if (rc == 0 && f->team) {
		rc = ops_sql_append(sql, " AND team = ?");
		if (rc == 0)
			rc = db_params(c, p, DB_MAX_PARAMS, np, "t", f->team);
	}
	if (rc == 0 && f->action) {
		rc = ops_sql_append(sql, " AND action = ?");
		if (rc == 0)
			rc = db_params(c, p, DB_MAX_PARAMS, np, "t", f->action);
	}
	if (rc == 0 && f->actor) {
		rc = ops_sql_append(sql, " AND (actor_id = ? OR actor_name = ?)");
		if (rc == 0)
			rc = db_params(c, p, DB_MAX_PARAMS, np, "tt", f->actor, f->actor);
	}
	if (rc == 0 && f->since) {
		rc = ops_sql_append(sql, " AND at >= ?");
		if (rc == 0)
			rc = db_params(c, p, DB_MAX_PARAMS, np, "i", f->since);
	}
	if (rc == 0 && f->until) {
		rc = ops_sql_append(sql, " AND at < ?");
		if (rc == 0)
			rc = db_params(c, p, DB_MAX_PARAMS, np, "i", f->until);
	}
	if (rc == 0)
		rc = ops_sql_append(sql, " ORDER BY seq LIMIT ?");
	if (rc == 0)
		rc = db_params(c, p, DB_MAX_PARAMS, np, "i", (int64_t)limit + 1);
	return rc;
}

/*
 * The current row into e (its JSON texts owned by e): 0, ERR_STORE for a
 * text that does not fit its field (never a cut value), ERR_NOMEM.
 */
static int row_audit(const struct db_rows *r, struct audit_entry *e)
{
	int bad = 0;

	memset(e, 0, sizeof(*e));
	e->seq = db_i64(r, 0);
	e->at = db_i64(r, 1);
	bad |= db_copy(r, 2, e->actor_id, sizeof(e->actor_id));
	bad |= db_copy(r, 3, e->actor_name, sizeof(e->actor_name));
	bad |= db_copy(r, 4, e->action, sizeof(e->action));
	bad |= db_copy(r, 5, e->object_type, sizeof(e->object_type));
	bad |= db_copy(r, 6, e->object_id, sizeof(e->object_id));
	bad |= db_copy(r, 7, e->team, sizeof(e->team));
	if (bad)
		return ERR_STORE;
	if (!db_null(r, 8) && !(e->before_json = db_dup(r, 8)))
		return ERR_NOMEM;
	if (!db_null(r, 9) && !(e->after_json = db_dup(r, 9)))
		return ERR_NOMEM;
	return 0;
}

int ops_audit_list(struct store_conn *c, const char *team, const char *cursor, int limit,
		   store_audit_cb cb, void *ctx, char *next_cursor)
{
	struct audit_filter f = {.team = team, .cursor = cursor, .limit = limit};

	return ops_audit_find(c, &f, cb, ctx, next_cursor);
}

int ops_audit_find(struct store_conn *c, const struct audit_filter *f, store_audit_cb cb,
		   void *ctx, char *next_cursor)
{
	struct audit_entry e;
	struct db_param p[DB_MAX_PARAMS];
	struct db_rows *r = NULL;
	char *sql = NULL;
	int64_t after = 0, last = 0;
	int limit = f->limit, rows = 0, np = 0, rc;
	bool more = false;

	memset(&e, 0, sizeof(e));
	rc = db_op(c);
	if (rc == 0)
		rc = store_audit_page_args(f->cursor, &limit, &after);
	if (rc != 0)
		return rc;
	rc = audit_sql(c, f, after, limit, &sql, p, &np);
	if (rc == 0)
		rc = db_query_built(c, sql, p, np, &r);
	while (rc == 0 && (rc = db_next(r)) == 1) {
		if (rows == limit) {
			more = true;
			rc = 0;
			break;
		}
		/* An unreadable row takes its place in the page, so the cursor walks
		 * past it and a page never ends silently before the rows after it. */
		rows++;
		last = db_i64(r, 0);
		rc = row_audit(r, &e);
		if (rc == ERR_STORE) {
			store_bad_row("audit", db_text(r, 0), "a text does not fit its field");
			store_audit_entry_done(&e);
			rc = 0;
			continue;
		}
		if (rc == 0 && cb(ctx, &e) != 0)
			rc = 1; /* the caller stopped */
		store_audit_entry_done(&e);
	}
	db_rows_close(r);
	free(sql);
	if (rc < 0)
		return rc;
	if (more)
		snprintf(next_cursor, STORE_ID_LEN, "%lld", (long long)last);
	else
		next_cursor[0] = '\0';
	return 0;
}
