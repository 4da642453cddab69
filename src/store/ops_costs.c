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
 * month of use (THE per-day split of store_split_days; a month's row sums its
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

static const char SQL_ROLL_APPROVED[] =
	"INSERT INTO cost_daily_approved(day, team_id, project, gpu_type, spent, gpu_microhours)"
	" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day, team_id, project, gpu_type) DO UPDATE"
	" SET spent = cost_daily_approved.spent + excluded.spent,"
	" gpu_microhours = cost_daily_approved.gpu_microhours + excluded.gpu_microhours";
static const char SQL_ROLL_MONTHLY[] =
	"INSERT INTO cost_monthly_approved(month, team_id, project, gpu_type, spent, gpu_microhours)"
	" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (month, team_id, project, gpu_type) DO UPDATE"
	" SET spent = cost_monthly_approved.spent + excluded.spent,"
	" gpu_microhours = cost_monthly_approved.gpu_microhours + excluded.gpu_microhours";
static const char SQL_ROLL_USAGE[] =
	"INSERT INTO cost_daily_usage(day, team_id, project, gpu_type, spent, gpu_microhours)"
	" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (day, team_id, project, gpu_type) DO UPDATE"
	" SET spent = cost_daily_usage.spent + excluded.spent,"
	" gpu_microhours = cost_daily_usage.gpu_microhours + excluded.gpu_microhours";
static const char SQL_ROLL_USAGE_MONTHLY[] =
	"INSERT INTO cost_monthly_usage(month, team_id, project, gpu_type, spent, gpu_microhours)"
	" VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (month, team_id, project, gpu_type) DO UPDATE"
	" SET spent = cost_monthly_usage.spent + excluded.spent,"
	" gpu_microhours = cost_monthly_usage.gpu_microhours + excluded.gpu_microhours";
static const char SQL_CLEAR_APPROVED[] = "DELETE FROM cost_daily_approved";
static const char SQL_CLEAR_USAGE_MONTHLY[] = "DELETE FROM cost_monthly_usage";
static const char SQL_CLEAR_MONTHLY[] = "DELETE FROM cost_monthly_approved";
static const char SQL_CLEAR_USAGE[] = "DELETE FROM cost_daily_usage";
static const char SQL_COMPLETED_TEAMS[] =
	"SELECT DISTINCT team_id FROM allocations WHERE status = 'completed' ORDER BY team_id";
/* One team at a time (bounded memory on a client that holds whole results),
 * grouped so that each (project, GPU type) is summed once and written once.
 * `status || ''` keeps SQLite (no statistics) from reading every completed
 * allocation through a status index for each team: it takes the team's. */
static const char SQL_COMPLETED_OF_TEAM[] =
	"SELECT " ALLOC_COLS " FROM allocations WHERE team_id = ? AND status || '' = 'completed'"
	" ORDER BY project, gpu_type";

/* The first instant of the UTC month containing t, and of the next month at or after t. */
static int64_t month_floor(int64_t t)
{
	int64_t s = 0, e = 0;

	period_bounds(PERIOD_MONTHLY, t, &s, &e);
	return s;
}

static int64_t month_ceil(int64_t t)
{
	int64_t s = 0, e = 0;

	period_bounds(PERIOD_MONTHLY, t, &s, &e);
	return s == t ? s : e;
}

/* ---- keeping the rollups ----------------------------------------------- */

/*
 * The group being summed by the rebuild (or one completion): one (team,
 * project, GPU type), its sums by approval day, approval month, day and
 * month of use, keyed by the instant as decimal text (the cost accumulator's
 * exact 128-bit sums; 10-digit instants sort as numbers).
 */
struct roll_group {
	struct store_conn *c;
	char project[STORE_ID_LEN], gpu_type[STORE_ID_LEN];
	const char *team;
	struct store_cost_acc day, month, usage, usage_month;
};

static int sum_add(struct store_cost_acc *acc, int64_t t, int64_t spent, int64_t gpu_mh)
{
	char key[24];

	snprintf(key, sizeof(key), "%lld", (long long)t);
	return store_cost_acc_add(acc, key, spent, 0, 0, gpu_mh);
}

static int group_part(void *ctx, int64_t day, int64_t money, int64_t gpu_mh)
{
	struct roll_group *g = ctx;
	int rc = sum_add(&g->usage, day, money, gpu_mh);

	return rc == 0 ? sum_add(&g->usage_month, month_floor(day), money, gpu_mh) : rc;
}

static int sums_flush(struct roll_group *g, struct store_cost_acc *acc, const char *sql)
{
	for (size_t i = 0; i < acc->n; i++) {
		const struct cost_row *row = &acc->rows[i];
		int n;

		/* The rollup columns are BIGINT: a sum that does not fit is refused. */
		if (row->spent > INT64_MAX || row->spent < INT64_MIN ||
		    row->gpu_microhours > INT64_MAX || row->gpu_microhours < INT64_MIN)
			return ERR_OVERFLOW;
		n = db_exec(g->c, sql, "itttii", (int64_t)strtoll(row->key, NULL, 10), g->team,
			    g->project, g->gpu_type, (int64_t)row->spent, (int64_t)row->gpu_microhours);
		if (n < 0)
			return n;
	}
	acc->n = 0;
	return 0;
}

/*
 * Keeping the rollups in a completion's transaction.  Rows are written table
 * by table and, within a table, in ascending key order (approval day, approval
 * month, days of use, months of use), so two completions that share rows
 * lock them in the same order and cannot deadlock.
 */
static int roll_usage_part(void *ctx, int64_t day, int64_t money, int64_t gpu_mh)
{
	struct roll_group *g = ctx;
	int n = db_exec(g->c, SQL_ROLL_USAGE, "itttii", day, g->team, g->project, g->gpu_type,
			money, gpu_mh);

	/* The months are summed here and written after every day. */
	return n < 0 ? n : sum_add(&g->usage_month, month_floor(day), money, gpu_mh);
}

int ops_rollup_add(struct store_conn *c, const struct allocation *a)
{
	struct roll_group g = {.c = c, .team = a->team};
	int64_t ue = 0, gpu_mh = 0;
	int rc, n;

	if (a->status != ALLOC_COMPLETED)
		return 0;
	rc = store_completed_use(a, &ue, &gpu_mh);
	if (rc != 0)
		return rc;
	snprintf(g.project, sizeof(g.project), "%s", a->project);
	snprintf(g.gpu_type, sizeof(g.gpu_type), "%s", a->gpu_type);
	n = db_exec(c, SQL_ROLL_APPROVED, "itttii", time_day_start(a->approved_at), a->team,
		    a->project, a->gpu_type, a->actual_micros, gpu_mh);
	if (n >= 0)
		n = db_exec(c, SQL_ROLL_MONTHLY, "itttii", month_floor(a->approved_at), a->team,
			    a->project, a->gpu_type, a->actual_micros, gpu_mh);
	rc = n < 0 ? n : store_split_days(a->started_at, ue, a->actual_micros, gpu_mh,
					  roll_usage_part, &g);
	if (rc == 0)
		rc = sums_flush(&g, &g.usage_month, SQL_ROLL_USAGE_MONTHLY);
	free(g.usage_month.rows);
	return rc;
}

static int group_flush(struct roll_group *g)
{
	int rc = sums_flush(g, &g->day, SQL_ROLL_APPROVED);

	if (rc == 0)
		rc = sums_flush(g, &g->month, SQL_ROLL_MONTHLY);
	if (rc == 0)
		rc = sums_flush(g, &g->usage_month, SQL_ROLL_USAGE_MONTHLY);
	return rc == 0 ? sums_flush(g, &g->usage, SQL_ROLL_USAGE) : rc;
}

/* Adds one completed allocation to its group's sums (the same parts as ops_rollup_add). */
static int group_add(struct roll_group *g, const struct allocation *a)
{
	int64_t ue = 0, gpu_mh = 0;
	int rc = store_completed_use(a, &ue, &gpu_mh);

	if (rc == 0)
		rc = sum_add(&g->day, time_day_start(a->approved_at), a->actual_micros, gpu_mh);
	if (rc == 0)
		rc = sum_add(&g->month, month_floor(a->approved_at), a->actual_micros, gpu_mh);
	if (rc == 0)
		rc = store_split_days(a->started_at, ue, a->actual_micros, gpu_mh, group_part, g);
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
	char **teams = NULL;
	size_t n = 0, cap = 0;
	const char *lock = db_drv(c)->rollup_lock_sql;
	int rc = !a ? ERR_NOMEM : lock ? db_exec(c, lock, "") : 0;

	if (rc >= 0)
		rc = db_exec(c, SQL_CLEAR_APPROVED, "");
	if (rc >= 0)
		rc = db_exec(c, SQL_CLEAR_MONTHLY, "");
	if (rc >= 0)
		rc = db_exec(c, SQL_CLEAR_USAGE, "");
	if (rc >= 0)
		rc = db_exec(c, SQL_CLEAR_USAGE_MONTHLY, "");
	if (rc >= 0)
		rc = db_query(c, SQL_COMPLETED_TEAMS, &r, "");
	while (rc == 0 && (rc = db_next(r)) == 1) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nt = realloc(teams, ncap * sizeof(*nt));

			if (!nt) {
				rc = ERR_NOMEM;
				break;
			}
			teams = nt;
			cap = ncap;
		}
		teams[n] = db_dup(r, 0);
		rc = teams[n] ? 0 : ERR_NOMEM;
		n += rc == 0;
	}
	db_rows_close(r);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		g.team = teams[i];
		rc = fill_team(&g, a);
	}
	if (rc == ERR_OVERFLOW)
		db_err(c, "a rollup total overflows");
	for (size_t i = 0; i < n; i++)
		free(teams[i]);
	free(teams);
	free(g.day.rows);
	free(g.month.rows);
	free(g.usage.rows);
	free(g.usage_month.rows);
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

/*
 * Runs a SELECT of allocations `base` with parameters fmt (integers p1, p2,
 * p3) and q's team scope through store_cost_by_use/key (by q->view) into acc.
 */
static int scan_into(struct store_conn *c, const struct cost_query *q, struct store_cost_acc *acc,
		     struct allocation *a, const char *base, const char *fmt, int64_t p1,
		     int64_t p2, int64_t p3)
{
	struct db_param p[DB_MAX_PARAMS];
	struct db_rows *r = NULL;
	char *sql = strdup(base);
	int np = 0, rc;

	if (!sql)
		return ERR_NOMEM;
	rc = db_params(c, p, DB_MAX_PARAMS, &np, fmt, p1, p2, p3);
	if (rc == 0 && q->teams)
		rc = ops_sql_scope(c, &sql, "team_id", q->teams, q->nteams, p, &np);
	if (rc == 0)
		rc = db_query_built(c, sql, p, np, &r);
	while (rc == 0 && (rc = db_next(r)) == 1) {
		rc = db_row_alloc(r, 0, a);
		if (rc == 0)
			rc = q->view == COST_VIEW_USE ? store_cost_by_use(acc, q, a)
						      : store_cost_by_key(acc, q, a);
	}
	db_rows_close(r);
	free(sql);
	return rc;
}

enum roll_table { ROLL_USAGE, ROLL_USAGE_MONTHLY, ROLL_DAILY, ROLL_MONTHLY };

static const char *const roll_select[] = {
	[ROLL_USAGE] = "SELECT day, team_id, project, gpu_type, spent, gpu_microhours"
		       " FROM cost_daily_usage WHERE day >= ? AND day < ?",
	[ROLL_USAGE_MONTHLY] = "SELECT month, team_id, project, gpu_type, spent, gpu_microhours"
			       " FROM cost_monthly_usage WHERE month >= ? AND month < ?",
	[ROLL_DAILY] = "SELECT day, team_id, project, gpu_type, spent, gpu_microhours"
		       " FROM cost_daily_approved WHERE day >= ? AND day < ?",
	[ROLL_MONTHLY] = "SELECT month, team_id, project, gpu_type, spent, gpu_microhours"
			 " FROM cost_monthly_approved WHERE month >= ? AND month < ?",
};

/* Sums rollup rows of [d0, d1) (days or months) into acc under their group key. */
static int rollup_into(struct store_conn *c, const struct cost_query *q, struct store_cost_acc *acc,
		       enum roll_table table, int64_t d0, int64_t d1)
{
	struct db_param p[DB_MAX_PARAMS];
	struct db_rows *r = NULL;
	char *sql = NULL;
	int np = 0, rc;

	if (d0 >= d1)
		return 0;
	/* Row by row, no SQL SUM: SQLite's SUM fails on an int64 overflow, while
	 * store_cost_acc_add sums in 128 bits (exact for any number of rows). */
	sql = strdup(roll_select[table]);
	if (!sql)
		return ERR_NOMEM;
	rc = db_params(c, p, DB_MAX_PARAMS, &np, "ii", d0, d1);
	if (rc == 0 && q->teams)
		rc = ops_sql_scope(c, &sql, "team_id", q->teams, q->nteams, p, &np);
	if (rc == 0)
		rc = db_query_built(c, sql, p, np, &r);
	while (rc == 0 && (rc = db_next(r)) == 1) {
		char key[STORE_ID_LEN * 2], t[STORE_ID_LEN], pr[STORE_ID_LEN], g[STORE_ID_LEN];

		if (db_copy(r, 1, t, sizeof(t)) != 0 || db_copy(r, 2, pr, sizeof(pr)) != 0 ||
		    db_copy(r, 3, g, sizeof(g)) != 0) {
			db_err(c, "corrupt cost rollup row of team '%s'", t);
			rc = ERR_STORE;
			break;
		}
		store_cost_group_key(q, db_i64(r, 0), t, pr, g, key, sizeof(key));
		rc = store_cost_acc_add(acc, key, db_i64(r, 4), 0, 0, db_i64(r, 5));
	}
	db_rows_close(r);
	free(sql);
	return rc;
}

static const char SCAN_DAY[] =
	"SELECT " ALLOC_COLS " FROM allocations WHERE"
	" ((status IN ('approved', 'running') AND approved_at < ?)"
	" OR (status = 'completed' AND ended_at >= ? AND started_at < ?))";
static const char SCAN_KEY[] =
	"SELECT " ALLOC_COLS " FROM allocations WHERE approved_at >= ? AND approved_at < ?";
static const char LIVE_DAY[] = "SELECT " ALLOC_COLS " FROM allocations WHERE"
			       " status IN ('approved', 'running') AND approved_at < ?";
static const char LIVE[] = "SELECT " ALLOC_COLS " FROM allocations WHERE"
			   " status IN ('approved', 'running') AND approved_at >= ? AND approved_at < ?";
static const char DONE[] = "SELECT " ALLOC_COLS " FROM allocations WHERE"
			   " status = 'completed' AND approved_at >= ? AND approved_at < ?";

/* Completed allocations' use on the days overlapping [from, to), from the
 * rollups: whole months from the monthly rows (unless by day), the days
 * around them from the daily ones. */
static int usage_rollups(struct store_conn *c, const struct cost_query *q,
			 struct store_cost_acc *acc)
{
	int64_t d0 = time_day_start(q->from), d1 = store_day_ceil(q->to);
	int64_t m1 = month_ceil(d0), m2 = month_floor(d1);
	int rc;

	if (m1 >= m2 || q->group == COST_BY_DAY)
		return rollup_into(c, q, acc, ROLL_USAGE, d0, d1);
	rc = rollup_into(c, q, acc, ROLL_USAGE_MONTHLY, m1, m2);
	if (rc == 0)
		rc = rollup_into(c, q, acc, ROLL_USAGE, d0, m1);
	return rc == 0 ? rollup_into(c, q, acc, ROLL_USAGE, m2, d1) : rc;
}

/* Costs by approval time from the rollups: whole months from the monthly
 * rows, the whole days around them from the daily ones, the partial days at
 * the edges of [from, to) and every live allocation from the allocations. */
static int costs_by_key(struct store_conn *c, const struct cost_query *q,
			struct store_cost_acc *acc, struct allocation *a)
{
	int64_t f1 = store_day_ceil(q->from), t1 = time_day_start(q->to);
	int rc = scan_into(c, q, acc, a, LIVE, "ii", q->from, q->to, 0);

	if (rc != 0)
		return rc;
	if (f1 >= t1)
		return scan_into(c, q, acc, a, DONE, "ii", q->from, q->to, 0);
	int64_t m1 = month_ceil(f1), m2 = month_floor(t1);
	if (m1 < m2 && q->group != COST_BY_DAY) { /* monthly rows cannot say the day */
		rc = rollup_into(c, q, acc, ROLL_MONTHLY, m1, m2);
		if (rc == 0)
			rc = rollup_into(c, q, acc, ROLL_DAILY, f1, m1);
		if (rc == 0)
			rc = rollup_into(c, q, acc, ROLL_DAILY, m2, t1);
	} else {
		rc = rollup_into(c, q, acc, ROLL_DAILY, f1, t1);
	}
	if (rc == 0 && q->from < f1)
		rc = scan_into(c, q, acc, a, DONE, "ii", q->from, f1, 0);
	if (rc == 0 && t1 < q->to)
		rc = scan_into(c, q, acc, a, DONE, "ii", t1, q->to, 0);
	return rc;
}

struct costs_read {
	const struct cost_query *q;
	struct store_cost_acc acc;
	struct allocation *a;
};

/* One read snapshot for every part of the answer. */
static int costs_tx(struct store_conn *c, void *ctx)
{
	struct costs_read *x = ctx;
	const struct cost_query *q = x->q;
	int rc;

	x->acc.n = 0; /* a rerun starts over */
	if (q->view == COST_VIEW_BUDGET)
		return costs_by_key(c, q, &x->acc, x->a);
	/* By use: completed days from the usage rollup, live allocations read. */
	/* Live ones used on the last, partial day may be approved after `to`. */
	rc = scan_into(c, q, &x->acc, x->a, LIVE_DAY, "i", store_day_ceil(q->to), 0, 0);
	return rc == 0 ? usage_rollups(c, q, &x->acc) : rc;
}

int ops_costs(struct store_conn *c, const struct cost_query *q, store_cost_cb cb, void *ctx)
{
	struct costs_read x = {.q = q, .a = malloc(sizeof(struct allocation))};
	int rc = x.a ? 0 : ERR_NOMEM;

	if (rc == 0 && !q->scan)
		rc = db_run(c, false, costs_tx, &x);
	else if (rc == 0)
		rc = db_op(c);
	if (rc == 0 && q->scan) { /* the reference: every allocation read */
		if (q->view == COST_VIEW_USE) /* completed: used on a day overlapping [from, to) */
			rc = scan_into(c, q, &x.acc, x.a, SCAN_DAY, "iii", store_day_ceil(q->to),
				       time_day_start(q->from), store_day_ceil(q->to));
		else
			rc = scan_into(c, q, &x.acc, x.a, SCAN_KEY, "ii", q->from, q->to, 0);
	}
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
	"SELECT " ALLOC_COLS " FROM allocations WHERE ((status = 'completed'"
	" AND ended_at >= ? AND started_at < ?) OR (status = 'running' AND started_at < ?))";

int ops_cost_usage(struct store_conn *c, const struct cost_query *q, store_usage_cb cb, void *ctx)
{
	struct store_usage_ctx u = {.q = q, .cb = cb, .ctx = ctx};
	struct allocation *a = malloc(sizeof(*a));
	struct db_param p[DB_MAX_PARAMS];
	struct db_rows *r = NULL;
	char *sql = strdup(SQL_USAGE_BASE);
	int np = 0, rc = a && sql ? db_op(c) : ERR_NOMEM;

	if (rc == 0)
		rc = db_params(c, p, DB_MAX_PARAMS, &np, "iii", time_day_start(q->from),
			       store_day_ceil(q->to), q->exclude_running ? INT64_MIN : store_day_ceil(q->to));
	if (rc == 0 && q->teams)
		rc = ops_sql_scope(c, &sql, "team_id", q->teams, q->nteams, p, &np);
	if (rc == 0)
		rc = ops_sql_append(&sql, " ORDER BY approved_at, id");
	if (rc == 0)
		rc = db_query_built(c, sql, p, np, &r);
	while (rc == 0 && !u.stopped && (rc = db_next(r)) == 1) {
		int64_t ue = 0, gpu_mh = 0, money = 0;

		rc = db_row_alloc(r, 0, a);
		if (rc == 0 && store_alloc_unreadable(a)) { /* the money is exported, the texts blank */
			store_bad_row("allocations", a->id, store_alloc_unreadable(a));
			store_alloc_blank_unreadable(a);
		}
		u.row.running = rc == 0 && a->status == ALLOC_RUNNING;
		if (rc == 0 && u.row.running)
			rc = store_running_use(a, q->now, &ue, &money, &gpu_mh);
		else if (rc == 0)
			rc = store_completed_use(a, &ue, &gpu_mh);
		if (rc != 0)
			break;
		u.row.alloc = a;
		rc = store_split_days(a->started_at, ue, u.row.running ? money : a->actual_micros, gpu_mh,
				      store_usage_part, &u);
		if (u.stopped)
			rc = 0;
	}
	db_rows_close(r);
	free(sql);
	free(a);
	return rc;
}
