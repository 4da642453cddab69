/*
 * ops_audit.c - reads the append-only audit log a page at a time, oldest
 * first, filtered in SQL by team, actor, action and time.  The rows are written by db_audit()
 * in the transaction of each change; nothing here writes.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <string.h>

#include "core/err.h"

#define AUDIT_COLS \
	"seq, at, actor_id, actor_name, action, object_type, object_id, team, before_json, after_json"

/* Only the filters given become conditions, so the team filter keeps using
 * audit(team, seq). */
static int audit_where(struct store_conn *c, const void *filter, char **sql, struct db_param *p,
		       int *np)
{
	const struct audit_filter *f = filter;
	int rc = 0;

	if (f->team)
		rc = db_sql_and(c, sql, p, np, " AND team = ?", "t", f->team);
	if (rc == 0 && f->action)
		rc = db_sql_and(c, sql, p, np, " AND action = ?", "t", f->action);
	if (rc == 0 && f->actor)
		rc = db_sql_and(c, sql, p, np, " AND (actor_id = ? OR actor_name = ?)", "tt",
				 f->actor, f->actor);
	if (rc == 0 && f->since)
		rc = db_sql_and(c, sql, p, np, " AND at >= ?", "i", f->since);
	if (rc == 0 && f->until)
		rc = db_sql_and(c, sql, p, np, " AND at < ?", "i", f->until);
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

/* An unreadable row takes its place in the page, so the cursor walks past it
 * and a page never ends silently before the rows after it. */
static int audit_take(void *ctx, void *rec, const struct db_rows *r, const char **why)
{
	const struct db_list_to *k = ctx;
	int rc = row_audit(r, rec);

	(void)why; /* the default: a text does not fit its field */
	if (rc == 0 && k->cb.audit(k->ctx, rec) != 0)
		rc = 1; /* the caller stopped */
	store_audit_entry_done(rec);
	return rc;
}

static const struct db_page AUDIT_PAGE = {"SELECT " AUDIT_COLS " FROM audit WHERE 1 = 1", "audit",
					  NULL, 0, audit_where, audit_take,
					  sizeof(struct audit_entry)};

int ops_audit_find(struct store_conn *c, const struct audit_filter *f, store_audit_cb cb,
		   void *ctx, char *next_cursor)
{
	struct db_list_to k = {.cb.audit = cb, .ctx = ctx};

	return db_page_walk(c, &AUDIT_PAGE, f, &k, f->cursor, f->limit, next_cursor);
}
