/*
 * ops_costs.c - cost visibility: GET /v1/costs answered from the rollups,
 * the per-day usage rows of the FOCUS export, and the rollups themselves.
 *
 * GET /v1/costs attributes cost by use (the per-day split, the default) or
 * by approval time (view=budget); see enum cost_view.
 *
 * Four rollup tables hold completed allocations only (live ones are few and
 * moving, and read directly): cost_daily_approved and cost_monthly_approved
 * by approval day / month, cost_daily_usage and cost_monthly_usage by day /
 * month of use (THE per-day split of usage_split_days; a month's row sums its
 * days').  They are derived data: kept in the transaction of
 * each completion (ops_rollup_add, so rollups and ledger never disagree) and
 * recomputed from the allocations at any time (cost_rollup_rebuild, and the
 * migration that adds the monthly table) under the driver's rollup lock, so a
 * completion committing meanwhile is not counted twice.  Nothing here changes the ledger
 * or an allocation.  Every answer equals the naive scan of the allocations
 * (cost_query.scan), which the tests and bench_costs compare it against.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/period.h"
#include "core/timeutil.h"
#include "core/usage.h"

/* A rollup's statements: add to a row (creating it), read [?, ?), clear; the
 * four rollups (enum usage_roll) in the order a rebuild clears and fills them. */
#define ROLL(table, col)                                                                          \
	{"INSERT INTO " table "(" col ", team_id, project, gpu_type, spent, gpu_microhours)"      \
	 " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (" col ", team_id, project, gpu_type) DO UPDATE" \
	 " SET spent = " table ".spent + excluded.spent,"                                        \
	 " gpu_microhours = " table ".gpu_microhours + excluded.gpu_microhours",                 \
	 "SELECT " col ", team_id, project, gpu_type, spent, gpu_microhours FROM " table         \
	 " WHERE " col " >= ? AND " col " < ?",                                                  \
	 "DELETE FROM " table}

static const struct {
	const char *upsert, *select, *clear;
} roll[USAGE_ROLL_N] = {
	[USAGE_ROLL_DAY_APPROVED] = ROLL("cost_daily_approved", "day"),
	[USAGE_ROLL_MONTH_APPROVED] = ROLL("cost_monthly_approved", "month"),
	[USAGE_ROLL_DAY] = ROLL("cost_daily_usage", "day"),
	[USAGE_ROLL_MONTH] = ROLL("cost_monthly_usage", "month"),
};

#define SELECT_ALLOCS "SELECT " ALLOC_COLS " FROM allocations WHERE "

static const char SQL_COMPLETED_TEAMS[] =
	"SELECT DISTINCT team_id FROM allocations WHERE status = 'completed' ORDER BY team_id";
/* One team at a time (bounded memory on a client that holds whole results),
 * grouped so that each (project, GPU type) is summed once and written once.
 * `status || ''` keeps SQLite (no statistics) from reading every completed
 * allocation through a status index for each team: it takes the team's. */
static const char SQL_COMPLETED_OF_TEAM[] =
	SELECT_ALLOCS "team_id = ? AND status || '' = 'completed' ORDER BY project, gpu_type";

/* ---- what an allocation used ------------------------------------------- */

/*
 * What an allocation has used, to split by day: a completed one's actual cost,
 * a running one's accrued cost at q->now (unless q excludes running ones).
 * 0, 1 when there is no use to count, or an error.
 */
static int alloc_use(const struct cost_query *q, const struct allocation *a, int64_t *ue,
		     int64_t *money, int64_t *gpu_mh)
{
	if (a->status == ALLOC_COMPLETED) {
		*money = a->actual_micros;
		return usage_completed(a->gpu_count, a->max_runtime_us, a->started_at, a->ended_at,
				       ue, gpu_mh);
	}
	if (a->status == ALLOC_RUNNING && !q->exclude_running)
		return usage_running(a->price_micros, a->gpu_count, a->max_runtime_us,
				     a->started_at, q->now, ue, money, gpu_mh);
	return 1;
}

/* Whether UTC day d overlaps q's [from, to). */
static bool day_in(const struct cost_query *q, int64_t d)
{
	return d + TIME_DAY > q->from && d < q->to;
}

/*
 * Runs SELECT `base` with integer parameters fmt (p1, p2, p3), limited to
 * q's teams, `tail` appended (or NULL), into *r.
 */
static int query_scoped(struct store_conn *c, const struct cost_query *q, const char *base,
			const char *tail, struct db_rows **r, const char *fmt, int64_t p1,
			int64_t p2, int64_t p3)
{
	struct db_param p[DB_MAX_PARAMS];
	char *sql = strdup(base);
	int np = 0, rc = sql ? db_params(c, p, DB_MAX_PARAMS, &np, fmt, p1, p2, p3) : ERR_NOMEM;

	if (rc == 0 && q->teams)
		rc = db_sql_scope(c, &sql, "team_id", q->teams, q->nteams, p, &np);
	if (rc == 0 && tail)
		rc = db_sql_append(&sql, tail);
	if (rc == 0)
		rc = db_query_built(c, sql, p, np, r);
	free(sql); /* the driver has its own copy */
	return rc;
}

/*
 * Reads the allocations of query_scoped(base, tail, ...) one by one into a
 * and gives each to fn(ctx) until it returns non-zero: 1 stops the walk
 * (0), anything else is its error.
 */
static int walk_allocs(struct store_conn *c, const struct cost_query *q, const char *base,
		       const char *tail, struct allocation *a, int (*fn)(void *ctx), void *ctx,
		       const char *fmt, int64_t p1, int64_t p2, int64_t p3)
{
	struct db_rows *r = NULL;
	int rc = query_scoped(c, q, base, tail, &r, fmt, p1, p2, p3);

	while (rc == 0 && (rc = db_next(r)) == 1) {
		rc = db_row_alloc(r, 0, a);
		if (rc == 0)
			rc = fn(ctx);
	}
	db_rows_close(r);
	return rc == 1 ? 0 : rc;
}

/* ---- keeping the rollups ----------------------------------------------- */

/*
 * The group being summed by the rebuild (or one completion): one (team,
 * project, GPU type), its sums per rollup table (by approval day, approval
 * month, day and month of use), keyed by the instant (usage_rollup_add) for the
 * cost accumulator's exact 128-bit sums.
 */
struct roll_group {
	struct store_conn *c;
	char project[STORE_ID_LEN], gpu_type[STORE_ID_LEN];
	const char *team;
	struct cost_table sums[USAGE_ROLL_N];
};

/* Adds one completed allocation to its group's sums. */
static int group_add(struct roll_group *g, const struct allocation *a)
{
	return usage_rollup_add(g->sums, a->approved_at, a->gpu_count, a->max_runtime_us,
				a->started_at, a->ended_at, a->actual_micros);
}

/* Writes the group's sums table by table, each in ascending key order, and
 * empties them. */
static int group_flush(struct roll_group *g)
{
	for (int t = 0; t < USAGE_ROLL_N; t++) {
		for (size_t i = 0; i < g->sums[t].n; i++) {
			const struct cost_row *row = &g->sums[t].rows[i];
			int n;

			/* The rollup columns are BIGINT: a sum that does not fit is refused. */
			if (row->spent > INT64_MAX || row->spent < INT64_MIN ||
			    row->gpu_microhours > INT64_MAX || row->gpu_microhours < INT64_MIN)
				return ERR_OVERFLOW;
			n = db_exec(g->c, roll[t].upsert, "itttii", (int64_t)strtoll(row->key, NULL, 10),
				    g->team, g->project, g->gpu_type, (int64_t)row->spent,
				    (int64_t)row->gpu_microhours);
			if (n < 0)
				return n;
		}
		g->sums[t].n = 0;
	}
	return 0;
}

static void group_free(struct roll_group *g)
{
	for (int t = 0; t < USAGE_ROLL_N; t++)
		free(g->sums[t].rows);
}

/*
 * Keeping the rollups in a completion's transaction: its group of one, so
 * rows are written table by table and, within a table, in ascending key
 * order (approval day, approval month, days of use, months of use), and two
 * completions that share rows lock them in the same order: no deadlock.
 */
int ops_rollup_add(struct store_conn *c, const struct allocation *a)
{
	struct roll_group g = {.c = c, .team = a->team};
	int rc;

	if (a->status != ALLOC_COMPLETED)
		return 0;
	snprintf(g.project, sizeof(g.project), "%s", a->project);
	snprintf(g.gpu_type, sizeof(g.gpu_type), "%s", a->gpu_type);
	rc = group_add(&g, a);
	if (rc == 0)
		rc = group_flush(&g);
	group_free(&g);
	return rc;
}

/* Sums and writes the rollups of one team's completed allocations. */
static int fill_team(struct roll_group *g, struct allocation *a)
{
	struct db_rows *r = NULL;
	int rc;

	g->project[0] = g->gpu_type[0] = '\0';
	rc = db_query(g->c, SQL_COMPLETED_OF_TEAM, &r, "t", g->team);
	while (rc == 0 && (rc = db_next(r)) == 1) {
		rc = db_row_alloc(r, 0, a);
		if (rc != 0) {
			db_err(g->c, "corrupt allocation row '%s'", db_text(r, 0));
			break;
		}
		if (strcmp(a->project, g->project) != 0 || strcmp(a->gpu_type, g->gpu_type) != 0) {
			rc = group_flush(g);
			memcpy(g->project, a->project, sizeof(g->project));
			memcpy(g->gpu_type, a->gpu_type, sizeof(g->gpu_type));
		}
		if (rc == 0)
			rc = group_add(g, a);
	}
	db_rows_close(r);
	return rc == 0 ? group_flush(g) : rc;
}

int ops_rollup_fill(struct store_conn *c)
{
	struct roll_group g = {.c = c};
	struct allocation *a = malloc(sizeof(*a)); /* owned here (a large record) */
	struct db_rows *r = NULL;
	const char *lock = db_drv(c)->rollup_lock_sql;
	int rc = !a ? ERR_NOMEM : lock ? db_exec(c, lock, "") : 0;

	for (int t = 0; rc >= 0 && t < USAGE_ROLL_N; t++)
		rc = db_exec(c, roll[t].clear, "");
	if (rc >= 0)
		rc = db_query(c, SQL_COMPLETED_TEAMS, &r, "");
	/* Each team is filled as the list is read: both drivers keep a result
	 * (and its texts) open while other statements run. */
	while (rc == 0 && (rc = db_next(r)) == 1) {
		g.team = db_text(r, 0);
		rc = fill_team(&g, a);
	}
	db_rows_close(r);
	if (rc == ERR_OVERFLOW)
		db_err(c, "a rollup total overflows");
	group_free(&g);
	free(a);
	return rc;
}

static int rebuild_tx(struct store_conn *c, void *ctx)
{
	(void)ctx;
	return ops_rollup_fill(c);
}

int ops_cost_rollup_rebuild(struct store_conn *c)
{
	return db_run(c, true, rebuild_tx, NULL);
}

/* ---- reading costs ------------------------------------------------------ */

/* One GET /v1/costs being answered: its query, its sums, the allocation read. */
struct costs_read {
	const struct cost_query *q;
	struct cost_table acc;
	struct allocation *a;
};

/* Adds to the row of the group key of q->group (cost_group_key). */
static int acc_put(struct costs_read *x, int64_t t, const char *team, const char *project,
		   const char *gpu, int64_t spent, int64_t accrued, int64_t reserved, int64_t gpu_mh)
{
	char key[COST_KEY_LEN];

	cost_group_key(x->q->group, t, team, project, gpu, key);
	return cost_table_add(&x->acc, key, spent, accrued, reserved, gpu_mh);
}

static int day_part(void *ctx, int64_t d, int64_t pm, int64_t pg)
{
	struct costs_read *x = ctx;
	const struct allocation *a = x->a;
	bool accrued = a->status == ALLOC_RUNNING;

	return day_in(x->q, d) ? acc_put(x, d, a->team, a->project, a->gpu_type, accrued ? 0 : pm,
					 accrued ? pm : 0, 0, pg)
			       : 0;
}

/*
 * Adds allocation x->a by q->view.  COST_VIEW_BUDGET: all of it under the
 * key of its approval time (cancelled/expired cost nothing).  COST_VIEW_USE:
 * its use split by UTC day into the days overlapping [from, to), its
 * reservation at its approval time.
 */
static int cost_add(void *ctx)
{
	struct costs_read *x = ctx;
	const struct cost_query *q = x->q;
	const struct allocation *a = x->a;
	bool held = lifecycle_holds_resources(a->status);
	int64_t money = 0, gpu_mh = 0, ue = 0;
	int none = alloc_use(q, a, &ue, &money, &gpu_mh), rc = 0;

	if (none < 0)
		return none;
	if (q->view == COST_VIEW_BUDGET)
		return held || a->status == ALLOC_COMPLETED
			       ? acc_put(x, a->approved_at, a->team, a->project, a->gpu_type,
					 held ? 0 : money, held ? money : 0,
					 held ? a->estimated_micros : 0, gpu_mh)
			       : 0;
	/* Reserved money is a promise, not a use: it stays at the approval time. */
	if (held && a->approved_at >= q->from && a->approved_at < q->to)
		rc = acc_put(x, a->approved_at, a->team, a->project, a->gpu_type, 0, 0,
			     a->estimated_micros, 0);
	return rc != 0 || none ? rc : usage_split_days(a->started_at, ue, money, gpu_mh, day_part, x);
}

/* cost_add of every allocation SELECT `base` (parameters as query_scoped) reads. */
static int scan_into(struct store_conn *c, struct costs_read *x, const char *base,
		     const char *fmt, int64_t p1, int64_t p2, int64_t p3)
{
	return walk_allocs(c, x->q, base, NULL, x->a, cost_add, x, fmt, p1, p2, p3);
}

/* Sums rollup rows of [d0, d1) (days or months) into acc under their group key. */
static int rollup_into(struct store_conn *c, struct costs_read *x, enum usage_roll table,
		       int64_t d0, int64_t d1)
{
	struct db_rows *r = NULL;
	int rc;

	if (d0 >= d1)
		return 0;
	/* Row by row, no SQL SUM: SQLite's SUM fails on an int64 overflow, while
	 * cost_table_add sums in 128 bits (exact for any number of rows). */
	rc = query_scoped(c, x->q, roll[table].select, NULL, &r, "ii", d0, d1, 0);
	while (rc == 0 && (rc = db_next(r)) == 1) {
		char t[STORE_ID_LEN], pr[STORE_ID_LEN], g[STORE_ID_LEN];

		if (db_copy(r, 1, t, sizeof(t)) != 0 || db_copy(r, 2, pr, sizeof(pr)) != 0 ||
		    db_copy(r, 3, g, sizeof(g)) != 0) {
			db_err(c, "corrupt cost rollup row of team '%s'", t);
			rc = ERR_STORE;
			break;
		}
		rc = acc_put(x, db_i64(r, 0), t, pr, g, db_i64(r, 4), 0, 0, db_i64(r, 5));
	}
	db_rows_close(r);
	return rc;
}

/* Rollup rows of the days [d0, d1): whole months from the monthly table
 * (unless by day: monthly rows cannot say the day), the days around them
 * from the daily one. */
static int rollup_span(struct store_conn *c, struct costs_read *x, enum usage_roll daily,
		       int64_t d0, int64_t d1)
{
	int64_t m1 = period_ceil(PERIOD_MONTHLY, d0), m2 = period_floor(PERIOD_MONTHLY, d1);
	int rc;

	if (m1 >= m2 || x->q->group == COST_BY_DAY)
		return rollup_into(c, x, daily, d0, d1);
	rc = rollup_into(c, x, daily + 1, m1, m2); /* its monthly table follows it */
	if (rc == 0)
		rc = rollup_into(c, x, daily, d0, m1);
	return rc == 0 ? rollup_into(c, x, daily, m2, d1) : rc;
}

static const char SCAN_DAY[] =
	SELECT_ALLOCS "((status IN ('approved', 'running') AND approved_at < ?)"
		      " OR (status = 'completed' AND ended_at >= ? AND started_at < ?))";
static const char SCAN_KEY[] = SELECT_ALLOCS "approved_at >= ? AND approved_at < ?";
static const char LIVE[] =
	SELECT_ALLOCS "status IN ('approved', 'running') AND approved_at >= ? AND approved_at < ?";
static const char DONE[] =
	SELECT_ALLOCS "status = 'completed' AND approved_at >= ? AND approved_at < ?";

/* Costs by approval time from the rollups: whole days (rollup_span), the
 * partial days at the edges of [from, to) and every live allocation from
 * the allocations. */
static int costs_by_key(struct store_conn *c, struct costs_read *x)
{
	const struct cost_query *q = x->q;
	int64_t f1 = time_day_ceil(q->from), t1 = time_day_start(q->to);
	int rc = scan_into(c, x, LIVE, "ii", q->from, q->to, 0);

	if (f1 >= t1) /* no whole day: all of [from, to) is an edge */
		f1 = t1 = q->to;
	if (rc == 0)
		rc = rollup_span(c, x, USAGE_ROLL_DAY_APPROVED, f1, t1);
	if (rc == 0 && q->from < f1)
		rc = scan_into(c, x, DONE, "ii", q->from, f1, 0);
	if (rc == 0 && t1 < q->to)
		rc = scan_into(c, x, DONE, "ii", t1, q->to, 0);
	return rc;
}

/* One read snapshot for every part of the answer. */
static int costs_tx(struct store_conn *c, void *ctx)
{
	struct costs_read *x = ctx;
	const struct cost_query *q = x->q;
	int64_t d0 = time_day_start(q->from), d1 = time_day_ceil(q->to);
	int rc;

	x->acc.n = 0; /* a rerun starts over */
	if (q->scan) /* the reference: every allocation read (completed: used on a day in range) */
		return q->view == COST_VIEW_USE ? scan_into(c, x, SCAN_DAY, "iii", d1, d0, d1)
						: scan_into(c, x, SCAN_KEY, "ii", q->from, q->to, 0);
	if (q->view == COST_VIEW_BUDGET)
		return costs_by_key(c, x);
	/* By use: completed days from the usage rollup, live allocations read;
	 * live ones used on the last, partial day may be approved after `to`. */
	rc = scan_into(c, x, LIVE, "ii", INT64_MIN, d1, 0);
	return rc == 0 ? rollup_span(c, x, USAGE_ROLL_DAY, d0, d1) : rc;
}

int ops_costs(struct store_conn *c, const struct cost_query *q, store_cost_cb cb, void *ctx)
{
	struct costs_read x = {.q = q, .a = malloc(sizeof(struct allocation))};
	int rc = x.a ? db_run(c, false, costs_tx, &x) : ERR_NOMEM;

	for (size_t i = 0; rc == 0 && i < x.acc.n; i++) {
		if (cb(ctx, &x.acc.rows[i]) != 0)
			break;
	}
	if (rc == ERR_OVERFLOW)
		db_err(c, "cost totals overflow");
	free(x.a);
	free(x.acc.rows);
	return rc;
}

/* ---- FOCUS export rows -------------------------------------------------- */

/* Completed allocations used on a day overlapping the range, and running
 * ones started before its end (their days before it are dropped). */
static const char SQL_USAGE_BASE[] =
	SELECT_ALLOCS "((status = 'completed' AND ended_at >= ? AND started_at < ?)"
		      " OR (status = 'running' AND started_at < ?))";

/* The FOCUS export's per-day usage rows of one walk. */
struct usage_ctx {
	const struct cost_query *q;
	struct allocation *a; /* read by walk_allocs */
	struct usage_row row;
	store_usage_cb cb;
	void *ctx;
};

/* A usage_split_days callback: 1 when the caller's callback stops the walk. */
static int usage_part(void *ctx, int64_t day, int64_t money, int64_t gpu_mh)
{
	struct usage_ctx *u = ctx;

	if (!day_in(u->q, day))
		return 0;
	u->row.day = day;
	u->row.cost = money;
	u->row.gpu_microhours = gpu_mh;
	return u->cb(u->ctx, &u->row) != 0;
}

/* One allocation's rows (walk_allocs' fn). */
static int usage_alloc(void *ctx)
{
	struct usage_ctx *u = ctx;
	struct allocation *a = u->a;
	int64_t ue = 0, gpu_mh = 0, money = 0;
	int rc;

	if (store_alloc_unreadable(a)) { /* the money is exported, the texts blank */
		store_bad_row("allocations", a->id, store_alloc_unreadable(a));
		store_alloc_blank_unreadable(a);
	}
	rc = alloc_use(u->q, a, &ue, &money, &gpu_mh);
	if (rc != 0) /* none (1) only for rows the query does not read */
		return rc == 1 ? 0 : rc;
	u->row.alloc = a;
	u->row.running = a->status == ALLOC_RUNNING;
	return usage_split_days(a->started_at, ue, money, gpu_mh, usage_part, u);
}

int ops_cost_usage(struct store_conn *c, const struct cost_query *q, store_usage_cb cb, void *ctx)
{
	struct allocation *a = malloc(sizeof(*a));
	struct usage_ctx u = {.q = q, .a = a, .cb = cb, .ctx = ctx};
	int64_t d1 = time_day_ceil(q->to);
	int rc = a ? db_op(c) : ERR_NOMEM;

	if (rc == 0)
		rc = walk_allocs(c, q, SQL_USAGE_BASE, " ORDER BY approved_at, id", a, usage_alloc,
				 &u, "iii", time_day_start(q->from), d1,
				 q->exclude_running ? INT64_MIN : d1);
	free(a);
	return rc;
}
