/*
 * ops_allocations.c - an allocation's life after its approval: read one,
 * list a page, start/complete/cancel/expire it, expire the due ones; and the
 * moves the allocate engines share with them (the period ledger row, the GPU
 * count, the release of a held allocation, the expiry inside a caller's
 * transaction).
 *
 * Lock order (PostgreSQL; SQLite's write transaction holds the database):
 * an allocation row first, then its period row, then its GPU type row - the
 * order the check-and-reserve takes them - so a transition, an expiry and a
 * decision never deadlock.  Due allocations are locked in (expires_at, id)
 * order, the order team.put locks a team's live allocations.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/ledger.h"
#include "core/lifecycle.h"

static const char SQL_ALLOC_BY_ID[] = "SELECT " ALLOC_COLS " FROM allocations WHERE id = ?";
static const char SQL_ALLOC_LOCK[] =
	"SELECT " ALLOC_COLS " FROM allocations WHERE id = ?" DB_LOCK;
/* Locked: a row another transaction is expiring is re-checked after it
 * commits and skipped, so an allocation is never released twice. */
static const char SQL_ALLOC_DUE[] =
	"SELECT " ALLOC_COLS " FROM allocations WHERE status = 'approved' AND expires_at <= ?"
	" ORDER BY expires_at, id" DB_LOCK;
static const char SQL_ALLOC_END[] =
	"UPDATE allocations SET status = ?, ended_at = ?, actual_micros = ? WHERE id = ?";
static const char SQL_ALLOC_START[] =
	"UPDATE allocations SET status = ?, started_at = ? WHERE id = ?";
static const char SQL_PERIOD_MOVE[] =
	"UPDATE team_periods SET reserved = reserved + ?, spent = spent + ?"
	" WHERE team_id = ? AND period_start = ?";
static const char SQL_GPU_MOVE[] = "UPDATE gpu_types SET allocated = allocated + ? WHERE id = ?";

/* ---- moves shared with the allocate engines ----------------------------- */

/* n, db_exec's answer for the row of `what` (team or GPU type) id, must be
 * exactly one row: 0, or an error. */
static int one_row(struct store_conn *c, int n, const char *what, const char *id)
{
	if (n == 1 || n < 0)
		return n < 0 ? n : 0;
	db_err(c, "%s '%s' is missing", what, id);
	return ERR_STORE;
}

int ops_period_move(struct store_conn *c, const char *team, int64_t ps, int64_t d_reserved,
		    int64_t d_spent)
{
	return one_row(c, db_exec(c, SQL_PERIOD_MOVE, "iiti", d_reserved, d_spent, team, ps),
		       "ledger row of team", team);
}

int ops_gpu_move(struct store_conn *c, const char *gpu_type, int64_t d)
{
	return one_row(c, db_exec(c, SQL_GPU_MOVE, "it", d, gpu_type), "gpu type", gpu_type);
}

/*
 * Ends held (row-locked) allocation a as `to` (completed, cancelled,
 * expired) at instant `at`, having cost `actual`: releases its reservation
 * and GPUs, books the cost (a completion: in the rollups too), audits;
 * *after (if given) gets the new record.
 */
static int alloc_end(struct store_conn *c, const struct actor *who, const struct allocation *a,
		     enum alloc_status to, int64_t at, int64_t actual, int64_t now,
		     struct allocation *after)
{
	struct allocation *b = malloc(sizeof(*b)); /* owned here (a large record) */
	int rc, n;

	if (!b)
		return ERR_NOMEM;
	*b = *a;
	b->status = to;
	b->ended_at = at;
	b->actual_micros = actual;
	n = db_exec(c, SQL_ALLOC_END, "tiit", alloc_status_name(to), at, actual, a->id);
	rc = n < 0 ? n : ops_ledger_move(c, a, -a->estimated_micros, actual);
	if (rc == 0)
		rc = ops_gpu_move(c, a->gpu_type, -a->gpu_count);
	if (rc == 0 && to == ALLOC_COMPLETED)
		rc = ops_rollup_add(c, b);
	if (rc == 0)
		rc = db_audit(c, who, now,
			      to == ALLOC_EXPIRED ? "allocation.expire"
			      : to == ALLOC_CANCELLED ? "allocation.cancel" : "allocation.complete",
			      "allocation", a->id, a->team, store_json_alloc, a, b);
	if (rc == 0 && after)
		*after = *b;
	free(b);
	return rc;
}

int ops_expire_rows(struct store_conn *c, struct db_rows *r, int64_t now, int *count)
{
	struct allocation *list = NULL; /* owned here */
	size_t n = 0, cap = 0;
	int rc = 0;

	/* Collect first: no update runs under a live SELECT. */
	while (rc == 0 && (rc = db_next(r)) == 1) {
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
		rc = db_row_alloc(r, 0, &list[n]);
		if (rc == ERR_STORE) /* unreadable: reported and left alone */
			store_bad_row("allocations", db_text(r, 0), STORE_BAD_ROW_TEXT);
		else
			n++;
		rc = 0;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const char *why = store_alloc_unreadable(&list[i]);

		if (why) { /* its money is still released; the audit row has blanks */
			store_bad_row("allocations", list[i].id, why);
			store_alloc_blank_unreadable(&list[i]);
		}
		rc = alloc_end(c, NULL, &list[i], ALLOC_EXPIRED, list[i].expires_at, 0, now, NULL);
	}
	if (rc == 0 && count)
		*count = (int)n; /* unreadable rows changed nothing */
	free(list);
	return rc;
}

int ops_expire_due_tx(struct store_conn *c, int64_t now, int *count)
{
	struct db_rows *r = NULL;
	int rc = db_query(c, SQL_ALLOC_DUE, &r, "i", now);

	if (rc == 0)
		rc = ops_expire_rows(c, r, now, count);
	db_rows_close(r);
	return rc;
}

/* ---- reads ------------------------------------------------------------- */

int ops_alloc_get(struct store_conn *c, const char *id, struct allocation *out)
{
	struct allocation *a = malloc(sizeof(*a));
	int rc;

	if (!a)
		return ERR_NOMEM;
	rc = db_op(c);
	if (rc == 0)
		rc = db_load(c, SQL_ALLOC_BY_ID, id, db_row_alloc_v, a);
	if (rc == 0 && store_alloc_unreadable(a)) { /* never rendered with a cut text */
		db_err(c, "allocation %s cannot be read: %s", id, store_alloc_unreadable(a));
		rc = ERR_STORE;
	}
	if (rc == 0)
		*out = *a;
	free(a);
	return rc;
}

/* The list's filters: team or scope, status. */
static int list_where(struct store_conn *c, const void *filter, char **sql, struct db_param *p,
		      int *np)
{
	const struct alloc_filter *f = filter;
	int rc = db_sql_teams(c, sql, f->team, f->teams, f->nteams, p, np);

	if (rc == 0 && f->status >= 0)
		rc = db_sql_and(c, sql, p, np, " AND status = ?", "t",
				 alloc_status_name((enum alloc_status)f->status));
	return rc;
}

/* A row that cannot be read, or could only be read cut, is reported and
 * skipped: the page goes on past it. */
static int list_take(void *ctx, void *rec, const struct db_rows *r, const char **why)
{
	const struct db_list_to *k = ctx;
	int rc = db_row_alloc(r, 0, rec);

	*why = rc == ERR_STORE ? STORE_BAD_ROW_TEXT : rc == 0 ? store_alloc_unreadable(rec) : NULL;
	if (*why)
		return ERR_STORE;
	return rc != 0 ? rc : k->cb.alloc(k->ctx, rec) != 0;
}

static const struct db_page LIST_PAGE = {
	"SELECT " ALLOC_COLS " FROM allocations WHERE 1 = 1", "allocations", "approved_at",
	13 /* in ALLOC_COLS */, list_where, list_take, sizeof(struct allocation)};

int ops_alloc_list(struct store_conn *c, const struct alloc_filter *f, store_alloc_cb cb,
		   void *ctx, char *next_cursor)
{
	struct db_list_to k = {.cb.alloc = cb, .ctx = ctx};

	return db_page_walk(c, &LIST_PAGE, f, &k, f->cursor, f->limit, next_cursor);
}

/* ---- transitions ------------------------------------------------------- */

struct transition {
	const struct actor *who;
	const char *id;
	enum alloc_event ev;
	int64_t at, now;
	struct allocation a, res; /* before, after */
	bool rep, expired_instead;
};

static int complete_tx(struct store_conn *c, struct transition *t)
{
	const struct allocation *a = &t->a;
	int64_t actual = 0;
	int rc;

	if (t->at < a->started_at) {
		db_err(c, "ended_at is before started_at");
		return ERR_INVALID;
	}
	rc = ledger_actual(a->price_micros, a->gpu_count, a->max_runtime_us, a->started_at, t->at,
			   &actual);
	if (rc != 0) {
		db_err(c, "cannot compute the actual cost");
		return rc;
	}
	return alloc_end(c, t->who, a, ALLOC_COMPLETED, t->at, actual, t->now, &t->res);
}

static int start_tx(struct store_conn *c, struct transition *t)
{
	const struct allocation *a = &t->a;
	int rc, n;

	if (t->now >= a->expires_at) {
		/* Too late: it expires instead, and that expiry is committed. */
		rc = alloc_end(c, t->who, a, ALLOC_EXPIRED, a->expires_at, 0, t->now, &t->res);
		if (rc != 0)
			return rc;
		t->expired_instead = true;
		c->keep = true;
		db_err(c, "allocation expired before it started");
		return ERR_CONFLICT;
	}
	t->res.status = ALLOC_RUNNING;
	t->res.started_at = t->at;
	n = db_exec(c, SQL_ALLOC_START, "tit", alloc_status_name(ALLOC_RUNNING), t->at, t->id);
	if (n < 0)
		return n;
	return db_audit(c, t->who, t->now, "allocation.start", "allocation", t->id, a->team,
			store_json_alloc, a, &t->res);
}

static int transition_tx(struct store_conn *c, void *ctx)
{
	struct transition *t = ctx;
	enum alloc_status next;
	int rc;

	t->rep = false;
	t->expired_instead = false;
	/* The allocation row first; its period and GPU rows follow in the
	 * same order as the check-and-reserve takes them. */
	rc = db_load(c, SQL_ALLOC_LOCK, t->id, db_row_alloc_v, &t->a);
	if (rc == ERR_NOT_FOUND)
		db_err(c, "unknown allocation '%s'", t->id);
	if (rc != 0)
		return rc;
	rc = lifecycle_next(t->a.status, t->ev, &next, &t->rep);
	if (rc != 0) {
		db_err(c, "cannot %s an allocation that is %s", alloc_event_name(t->ev),
		       alloc_status_name(t->a.status));
		return rc;
	}
	t->res = t->a;
	if (t->rep)
		return 0; /* nothing changes; the commit is of an empty transaction */
	switch (t->ev) {
	case ALLOC_EV_START:
		return start_tx(c, t);
	case ALLOC_EV_COMPLETE:
		return complete_tx(c, t);
	case ALLOC_EV_CANCEL:
		return alloc_end(c, t->who, &t->a, ALLOC_CANCELLED, t->at, 0, t->now, &t->res);
	case ALLOC_EV_EXPIRE:
		return alloc_end(c, t->who, &t->a, ALLOC_EXPIRED, t->at, 0, t->now, &t->res);
	default:
		db_err(c, "unknown event");
		return ERR_INVALID;
	}
}

int ops_alloc_transition(struct store_conn *c, const struct actor *who, const char *id,
			 enum alloc_event ev, int64_t at, int64_t now, struct allocation *out,
			 bool *repeat, char *detail)
{
	struct transition *t = calloc(1, sizeof(*t)); /* owned here (large records) */
	int rc;

	if (!t)
		return ERR_NOMEM;
	t->who = who;
	t->id = id;
	t->ev = ev;
	t->at = at;
	t->now = now;
	rc = db_run(c, true, transition_tx, t);
	/* An expiry instead of a start was committed: the caller sees the record. */
	if (rc == 0 || (rc == ERR_CONFLICT && t->expired_instead)) {
		*out = t->res;
		*repeat = t->rep;
	}
	free(t);
	db_detail(c, rc, detail);
	return rc;
}

struct expire_run {
	int64_t now;
	int count;
};

static int expire_due_run(struct store_conn *c, void *ctx)
{
	struct expire_run *x = ctx;

	return ops_expire_due_tx(c, x->now, &x->count);
}

int ops_alloc_expire_due(struct store_conn *c, int64_t now, int *n)
{
	struct expire_run x = {now, 0};
	int rc = db_run(c, true, expire_due_run, &x);

	if (rc == 0)
		*n = x.count;
	return rc;
}
