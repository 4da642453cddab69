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
#include "core/grow.h"
#include "core/period.h"
#include "core/timeutil.h"
#include "core/usage.h"

/* The four rollups, in the order a rebuild clears and fills them; each daily
 * table is followed by its monthly one (rollup_span relies on it). */
enum roll_table { ROLL_DAILY, ROLL_MONTHLY, ROLL_USAGE, ROLL_USAGE_MONTHLY, ROLL_N };

/* A rollup's statements: add to a row (creating it), read [?, ?), clear. */
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
} roll[ROLL_N] = {
	[ROLL_DAILY] = ROLL("cost_daily_approved", "day"),
	[ROLL_MONTHLY] = ROLL("cost_monthly_approved", "month"),
	[ROLL_USAGE] = ROLL("cost_daily_usage", "day"),
	[ROLL_USAGE_MONTHLY] = ROLL("cost_monthly_usage", "month"),
};

static const char SQL_COMPLETED_TEAMS[] =
	"SELECT DISTINCT team_id FROM allocations WHERE status = 'completed' ORDER BY team_id";
/* One team at a time (bounded memory on a client that holds whole results),
 * grouped so that each (project, GPU type) is summed once and written once.
 * `status || ''` keeps SQLite (no statistics) from reading every completed
 * allocation through a status index for each team: it takes the team's. */
static const char SQL_COMPLETED_OF_TEAM[] =
	"SELECT " ALLOC_COLS " FROM allocations WHERE team_id = ? AND status || '' = 'completed'"
	" ORDER BY project, gpu_type";

/* ---- summing costs ---------------------------------------------------- */

/* Adds to the row of the group key of q->group (cost_group_key). */
static int acc_put(struct cost_table *acc, const struct cost_query *q, int64_t t,
		   const char *team, const char *project, const char *gpu, int64_t spent,
		   int64_t accrued, int64_t reserved, int64_t gpu_mh)
{
	char key[COST_KEY_LEN];

	cost_group_key(q->group, t, team, project, gpu, key);
	return cost_table_add(acc, key, spent, accrued, reserved, gpu_mh);
}

/* Adds to the row of instant t as zero-padded decimal text (sorts as the number). */
static int sum_add(struct cost_table *acc, int64_t t, int64_t spent, int64_t gpu_mh)
{
	char key[24];

	snprintf(key, sizeof(key), "%020lld", (long long)t);
	return cost_table_add(acc, key, spent, 0, 0, gpu_mh);
}

/* A completed allocation's billed end and GPU micro-hours. */
static int completed_use(const struct allocation *a, int64_t *ue, int64_t *gpu_mh)
{
	return usage_completed(a->gpu_count, a->max_runtime_us, a->started_at, a->ended_at, ue,
			       gpu_mh);
}

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
		return completed_use(a, ue, gpu_mh);
	}
	if (a->status == ALLOC_RUNNING && !q->exclude_running)
		return usage_running(a->price_micros, a->gpu_count, a->max_runtime_us,
				     a->started_at, q->now, ue, money, gpu_mh);
	return 1;
}

struct day_ctx {
	struct cost_table *acc;
	const struct cost_query *q;
	const struct allocation *a;
};

static int day_part(void *ctx, int64_t d, int64_t pm, int64_t pg)
{
	struct day_ctx *dc = ctx;
	bool accrued = dc->a->status == ALLOC_RUNNING;

	if (d + TIME_DAY <= dc->q->from || d >= dc->q->to)
		return 0;
	return acc_put(dc->acc, dc->q, d, dc->a->team, dc->a->project, dc->a->gpu_type,
		       accrued ? 0 : pm, accrued ? pm : 0, 0, pg);
}

/* COST_VIEW_USE: adds allocation a's use, split by UTC day, to the keys of
 * the days overlapping [from, to); its reservation at its approval time. */
static int cost_by_use(struct cost_table *acc, const struct cost_query *q,
		       const struct allocation *a)
{
	struct day_ctx dc = {acc, q, a};
	int64_t money = 0, gpu_mh = 0, ue = 0;
	int rc;

	/* Reserved money is a promise, not a use: it stays at the approval time. */
	if (lifecycle_holds_resources(a->status) && a->approved_at >= q->from &&
	    a->approved_at < q->to) {
		rc = acc_put(acc, q, a->approved_at, a->team, a->project, a->gpu_type, 0, 0,
			     a->estimated_micros, 0);
		if (rc != 0)
			return rc;
	}
	rc = alloc_use(q, a, &ue, &money, &gpu_mh);
	if (rc != 0)
		return rc == 1 ? 0 : rc;
	return usage_split_days(a->started_at, ue, money, gpu_mh, day_part, &dc);
}

/* COST_VIEW_BUDGET: adds allocation a to acc under the key of its approval
 * time (cancelled/expired cost nothing). */
static int cost_by_key(struct cost_table *acc, const struct cost_query *q,
		       const struct allocation *a)
{
	bool held = lifecycle_holds_resources(a->status);
	int64_t money = 0, gpu_mh = 0, ue = 0;
	int rc;

	if (!held && a->status != ALLOC_COMPLETED)
		return 0;
	rc = alloc_use(q, a, &ue, &money, &gpu_mh);
	if (rc < 0)
		return rc;
	return acc_put(acc, q, a->approved_at, a->team, a->project, a->gpu_type,
		       held ? 0 : money, held ? money : 0, held ? a->estimated_micros : 0, gpu_mh);
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

/* ---- keeping the rollups ----------------------------------------------- */

/*
 * The group being summed by the rebuild (or one completion): one (team,
 * project, GPU type), its sums per rollup table (by approval day, approval
 * month, day and month of use), keyed by the instant (sum_add) for the
 * cost accumulator's exact 128-bit sums.
 */
struct roll_group {
	struct store_conn *c;
	char project[STORE_ID_LEN], gpu_type[STORE_ID_LEN];
	const char *team;
	struct cost_table sums[ROLL_N];
};

static int group_part(void *ctx, int64_t day, int64_t money, int64_t gpu_mh)
{
	struct roll_group *g = ctx;
	int rc = sum_add(&g->sums[ROLL_USAGE], day, money, gpu_mh);

	return rc == 0 ? sum_add(&g->sums[ROLL_USAGE_MONTHLY], period_floor(PERIOD_MONTHLY, day),
				 money, gpu_mh)
		       : rc;
}

static int sums_flush(struct roll_group *g, enum roll_table t)
{
	struct cost_table *acc = &g->sums[t];

	for (size_t i = 0; i < acc->n; i++) {
		const struct cost_row *row = &acc->rows[i];
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
	acc->n = 0;
	return 0;
}

static int group_flush(struct roll_group *g)
{
	int rc = 0;

	for (int t = 0; rc == 0 && t < ROLL_N; t++)
		rc = sums_flush(g, (enum roll_table)t);
	return rc;
}

/* Adds one completed allocation to its group's sums. */
static int group_add(struct roll_group *g, const struct allocation *a)
{
	int64_t ue = 0, gpu_mh = 0;
	int rc = completed_use(a, &ue, &gpu_mh);

	if (rc == 0)
		rc = sum_add(&g->sums[ROLL_DAILY], time_day_start(a->approved_at), a->actual_micros,
			     gpu_mh);
	if (rc == 0)
		rc = sum_add(&g->sums[ROLL_MONTHLY], period_floor(PERIOD_MONTHLY, a->approved_at),
			     a->actual_micros, gpu_mh);
	if (rc == 0)
		rc = usage_split_days(a->started_at, ue, a->actual_micros, gpu_mh, group_part, g);
	return rc;
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
	for (int t = 0; t < ROLL_N; t++)
		free(g.sums[t].rows);
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

	for (int t = 0; rc >= 0 && t < ROLL_N; t++)
		rc = db_exec(c, roll[t].clear, "");
	if (rc >= 0)
		rc = db_query(c, SQL_COMPLETED_TEAMS, &r, "");
	while (rc == 0 && (rc = db_next(r)) == 1) {
		char **nt = grow(teams, n, &cap, sizeof(*nt), 16);

		if (!nt) {
			rc = ERR_NOMEM;
			break;
		}
		teams = nt;
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
	for (int t = 0; t < ROLL_N; t++)
		free(g.sums[t].rows);
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
 * p3) and q's team scope through cost_by_use/key (by q->view) into acc.
 */
static int scan_into(struct store_conn *c, const struct cost_query *q, struct cost_table *acc,
		     struct allocation *a, const char *base, const char *fmt, int64_t p1,
		     int64_t p2, int64_t p3)
{
	struct db_rows *r = NULL;
	int rc = query_scoped(c, q, base, NULL, &r, fmt, p1, p2, p3);

	while (rc == 0 && (rc = db_next(r)) == 1) {
		rc = db_row_alloc(r, 0, a);
		if (rc == 0)
			rc = q->view == COST_VIEW_USE ? cost_by_use(acc, q, a) : cost_by_key(acc, q, a);
	}
	db_rows_close(r);
	return rc;
}

/* Sums rollup rows of [d0, d1) (days or months) into acc under their group key. */
static int rollup_into(struct store_conn *c, const struct cost_query *q, struct cost_table *acc,
		       enum roll_table table, int64_t d0, int64_t d1)
{
	struct db_rows *r = NULL;
	int rc;

	if (d0 >= d1)
		return 0;
	/* Row by row, no SQL SUM: SQLite's SUM fails on an int64 overflow, while
	 * cost_table_add sums in 128 bits (exact for any number of rows). */
	rc = query_scoped(c, q, roll[table].select, NULL, &r, "ii", d0, d1, 0);
	while (rc == 0 && (rc = db_next(r)) == 1) {
		char t[STORE_ID_LEN], pr[STORE_ID_LEN], g[STORE_ID_LEN];

		if (db_copy(r, 1, t, sizeof(t)) != 0 || db_copy(r, 2, pr, sizeof(pr)) != 0 ||
		    db_copy(r, 3, g, sizeof(g)) != 0) {
			db_err(c, "corrupt cost rollup row of team '%s'", t);
			rc = ERR_STORE;
			break;
		}
		rc = acc_put(acc, q, db_i64(r, 0), t, pr, g, db_i64(r, 4), 0, 0, db_i64(r, 5));
	}
	db_rows_close(r);
	return rc;
}

/* Rollup rows of the days [d0, d1): whole months from the monthly table
 * (unless by day: monthly rows cannot say the day), the days around them
 * from the daily one. */
static int rollup_span(struct store_conn *c, const struct cost_query *q,
		       struct cost_table *acc, enum roll_table daily, int64_t d0, int64_t d1)
{
	int64_t m1 = period_ceil(PERIOD_MONTHLY, d0), m2 = period_floor(PERIOD_MONTHLY, d1);
	int rc;

	if (m1 >= m2 || q->group == COST_BY_DAY)
		return rollup_into(c, q, acc, daily, d0, d1);
	rc = rollup_into(c, q, acc, daily + 1, m1, m2); /* its monthly table follows it */
	if (rc == 0)
		rc = rollup_into(c, q, acc, daily, d0, m1);
	return rc == 0 ? rollup_into(c, q, acc, daily, m2, d1) : rc;
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

/* Costs by approval time from the rollups: whole days (rollup_span), the
 * partial days at the edges of [from, to) and every live allocation from
 * the allocations. */
static int costs_by_key(struct store_conn *c, const struct cost_query *q,
			struct cost_table *acc, struct allocation *a)
{
	int64_t f1 = time_day_ceil(q->from), t1 = time_day_start(q->to);
	int rc = scan_into(c, q, acc, a, LIVE, "ii", q->from, q->to, 0);

	if (rc != 0)
		return rc;
	if (f1 >= t1)
		return scan_into(c, q, acc, a, DONE, "ii", q->from, q->to, 0);
	rc = rollup_span(c, q, acc, ROLL_DAILY, f1, t1);
	if (rc == 0 && q->from < f1)
		rc = scan_into(c, q, acc, a, DONE, "ii", q->from, f1, 0);
	if (rc == 0 && t1 < q->to)
		rc = scan_into(c, q, acc, a, DONE, "ii", t1, q->to, 0);
	return rc;
}

struct costs_read {
	const struct cost_query *q;
	struct cost_table acc;
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
	rc = scan_into(c, q, &x->acc, x->a, LIVE_DAY, "i", time_day_ceil(q->to), 0, 0);
	return rc == 0 ? rollup_span(c, q, &x->acc, ROLL_USAGE, time_day_start(q->from),
				     time_day_ceil(q->to))
		       : rc;
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
			rc = scan_into(c, q, &x.acc, x.a, SCAN_DAY, "iii", time_day_ceil(q->to),
				       time_day_start(q->from), time_day_ceil(q->to));
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

/* The FOCUS export's per-day usage rows: a usage_split_days callback. */
struct usage_ctx {
	const struct cost_query *q;
	struct usage_row row;
	store_usage_cb cb;
	void *ctx;
	bool stopped;
};

static int usage_part(void *ctx, int64_t day, int64_t money, int64_t gpu_mh)
{
	struct usage_ctx *u = ctx;

	if (day + TIME_DAY <= u->q->from || day >= u->q->to)
		return 0;
	u->row.day = day;
	u->row.cost = money;
	u->row.gpu_microhours = gpu_mh;
	if (u->cb(u->ctx, &u->row) != 0) {
		u->stopped = true;
		return 1;
	}
	return 0;
}

int ops_cost_usage(struct store_conn *c, const struct cost_query *q, store_usage_cb cb, void *ctx)
{
	struct usage_ctx u = {.q = q, .cb = cb, .ctx = ctx};
	struct allocation *a = malloc(sizeof(*a));
	struct db_rows *r = NULL;
	int64_t d1 = time_day_ceil(q->to);
	int rc = a ? db_op(c) : ERR_NOMEM;

	if (rc == 0)
		rc = query_scoped(c, q, SQL_USAGE_BASE, " ORDER BY approved_at, id", &r, "iii",
				  time_day_start(q->from), d1, q->exclude_running ? INT64_MIN : d1);
	while (rc == 0 && !u.stopped && (rc = db_next(r)) == 1) {
		int64_t ue = 0, gpu_mh = 0, money = 0;

		rc = db_row_alloc(r, 0, a);
		if (rc == 0 && store_alloc_unreadable(a)) { /* the money is exported, the texts blank */
			store_bad_row("allocations", a->id, store_alloc_unreadable(a));
			store_alloc_blank_unreadable(a);
		}
		if (rc == 0)
			rc = alloc_use(q, a, &ue, &money, &gpu_mh);
		if (rc == 1) { /* none: the query reads only rows that have some */
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		u.row.running = a->status == ALLOC_RUNNING;
		u.row.alloc = a;
		rc = usage_split_days(a->started_at, ue, money, gpu_mh, usage_part, &u);
		if (u.stopped)
			rc = 0;
	}
	db_rows_close(r);
	free(a);
	return rc;
}
