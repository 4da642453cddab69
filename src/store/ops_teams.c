/*
 * ops_teams.c - teams and their period ledgers: create or replace a team
 * (moving its live reservations when its period kind changes), change the
 * fields a patch names, retire and reactivate one, read one and its admins,
 * list them (all, or a token's scope), read the ledger of the period
 * containing an instant; and the liveness probe of the store.
 *
 * Lock order of team.put (PostgreSQL; SQLite's write transaction holds the
 * database): the team's live allocations in (expires_at, id) order, then the
 * team row, then period rows ascending - a decision takes due allocations
 * before the team, so the two never deadlock.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/ledger.h"
#include "core/period.h"

static const char SQL_PING[] = "SELECT 1";
static const char SQL_TEAM_BY_ID[] = "SELECT " TEAM_COLS " FROM teams WHERE id = ?";
static const char SQL_TEAM_LOCK[] = "SELECT " TEAM_COLS " FROM teams WHERE id = ?" DB_LOCK;
static const char SQL_TEAM_INSERT[] =
	"INSERT INTO teams(id, display_name, budget_micros, period, thresholds_json, created_at,"
	" updated_at, admins_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_TEAM_UPDATE[] =
	"UPDATE teams SET display_name = ?, budget_micros = ?, period = ?, thresholds_json = ?,"
	" updated_at = ?, admins_json = ?, retired_at = ? WHERE id = ?";
static const char SQL_TEAM_LIST[] = "SELECT " TEAM_COLS " FROM teams ORDER BY id";
static const char SQL_TEAM_SCOPE[] = "SELECT " TEAM_COLS " FROM teams WHERE 1 = 1";
static const char SQL_PERIOD_GET[] =
	"SELECT spent, reserved FROM team_periods WHERE team_id = ? AND period_start = ?";
/* Locked before the team row, in the expiry's order (see the top). */
static const char SQL_LIVE_LOCK[] =
	"SELECT id FROM allocations WHERE team_id = ? AND status IN ('approved', 'running')"
	" ORDER BY expires_at, id" DB_LOCK;
static const char SQL_RUNNING_OF_PERIOD[] =
	"SELECT price_micros, gpu_count, max_runtime_us, started_at FROM allocations"
	" WHERE team_id = ? AND period_start = ? AND status = 'running'";

int ops_ping(struct store_conn *c)
{
	int64_t one = 0;
	int rc = db_op(c);

	if (rc == 0)
		rc = db_query_i64(c, SQL_PING, &one, "");
	return rc == ERR_NOT_FOUND ? ERR_STORE : rc;
}

/*
 * The team's period kind changed (inside the team.put transaction, its live
 * allocations and team row locked): its live allocations of other periods
 * move to the current period of kind `k`, their reservations with them (see
 * struct period_plan); period rows are changed in ascending order.
 */
static int period_rekey(struct store_conn *c, const char *team, enum period_kind k, int64_t now)
{
	static const char SQL_LIVE_BY_PERIOD[] =
		"SELECT period_start, CAST(SUM(estimated_micros) AS BIGINT) FROM allocations"
		" WHERE team_id = ? AND status IN ('approved', 'running') AND period_start <> ?"
		" GROUP BY period_start ORDER BY period_start";
	static const char SQL_PERIOD_ENSURE[] =
		"INSERT INTO team_periods(team_id, period_start, period_end, spent, reserved)"
		" VALUES (?, ?, ?, 0, 0) ON CONFLICT (team_id, period_start) DO NOTHING";
	static const char SQL_LIVE_REKEY[] =
		"UPDATE allocations SET period_start = ? WHERE team_id = ?"
		" AND status IN ('approved', 'running') AND period_start <> ?";
	struct period_plan plan = {NULL, 0, 0, 0}; /* plan.d owned here */
	struct db_rows *r = NULL;
	int64_t ps = 0, pe = 0;
	int rc;

	period_bounds(k, now, &ps, &pe);
	rc = db_query(c, SQL_LIVE_BY_PERIOD, &r, "ti", team, ps);
	while (rc == 0 && (rc = db_next(r)) == 1)
		rc = period_plan_leave(&plan, db_i64(r, 0), db_i64(r, 1));
	db_rows_close(r);
	if (rc != 0 || plan.n == 0)
		goto out;
	period_plan_arrive(&plan, ps);
	rc = db_exec(c, SQL_PERIOD_ENSURE, "tii", team, ps, pe);
	for (size_t i = 0; rc >= 0 && i < plan.n; i++)
		rc = ops_period_move(c, team, plan.d[i].ps, plan.d[i].delta, 0);
	if (rc >= 0)
		rc = db_exec(c, SQL_LIVE_REKEY, "iti", ps, team, ps);
	rc = rc < 0 ? rc : 0;
out:
	free(plan.d);
	return rc;
}

/*
 * Gives team `rec` the namespaces in rec->namespaces (team_merge fills ""
 * in), after dropping its own.  A namespace of another team is a conflict
 * that names the owner; two teams claiming one at once meet at the primary
 * key of team_namespaces and the loser reruns into that message.
 */
static int namespaces_put(struct store_conn *c, const struct team *rec, const struct team *old)
{
	static const char SQL_NS_DROP[] = "DELETE FROM team_namespaces WHERE team_id = ?";
	static const char SQL_NS_OWNER[] =
		"SELECT team_id FROM team_namespaces WHERE namespace = ?";
	static const char SQL_NS_ADD[] =
		"INSERT INTO team_namespaces(namespace, team_id) VALUES (?, ?)";
	static const char SQL_NS_SET[] = "UPDATE teams SET namespaces = ? WHERE id = ?";
	char list[STORE_NAMESPACES_LEN], owner[STORE_ID_LEN];
	int n;

	if (old != NULL && strcmp(old->namespaces, rec->namespaces) == 0)
		return 0;
	n = db_exec(c, SQL_NS_DROP, "t", rec->id);
	memcpy(list, rec->namespaces, sizeof(list));
	for (char *save = NULL, *ns = strtok_r(list, ",", &save); n >= 0 && ns != NULL;
	     ns = strtok_r(NULL, ",", &save)) {
		struct db_rows *r = NULL;

		n = db_query(c, SQL_NS_OWNER, &r, "t", ns);
		if (n == 0 && (n = db_next(r)) == 1)
			n = db_copy(r, 0, owner, sizeof(owner)) != 0 ? ERR_STORE : 1;
		db_rows_close(r);
		if (n == 1 && strcmp(owner, rec->id) != 0) {
			db_err(c, "namespaces: namespace '%s' belongs to team '%s'; remove it there first",
			       ns, owner);
			return ERR_CONFLICT;
		}
		if (n >= 0)
			n = db_exec(c, SQL_NS_ADD, "tt", ns, rec->id);
	}
	if (n >= 0)
		n = db_exec(c, SQL_NS_SET, "tt", rec->namespaces, rec->id);
	/* A unique violation: another team took one since the check above. */
	return n == ERR_CONFLICT ? DB_RETRY : n < 0 ? n : 0;
}

/* What a put names: everything an admin sets (not retired_at). */
#define TEAM_F_PUT                                                                  \
	(TEAM_F_DISPLAY_NAME | TEAM_F_BUDGET | TEAM_F_PERIOD | TEAM_F_THRESHOLDS | \
	 TEAM_F_ADMINS | TEAM_F_NAMESPACES)

/* The audit rendering: the record with its admins and retirement. */
static json_t *team_audit_json(const void *p)
{
	const struct team *t = p;
	json_t *j = store_json_team(p);
	json_t *admins = json_loads(t->admins_json, 0, NULL);

	if (!j || !admins || json_object_set_new(j, "admins", admins) != 0 ||
	    json_object_set_new(j, "retired_at", store_json_time(t->retired_at)) != 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* rec = old (NULL: a new team, t as given) with the named fields of t; ""
 * namespaces keep old's (a new team's: its id), "" admins are "[]". */
static void team_merge(void *out, const void *o, const void *in, unsigned f, int64_t now)
{
	struct team *rec = out;
	const struct team *old = o, *t = in;

	if (!old) {
		*rec = *t;
		rec->created_at = now;
		if (rec->namespaces[0] == '\0') /* both fit: same size, id < 64 */
			snprintf(rec->namespaces, sizeof(rec->namespaces), "%s", rec->id);
	} else {
		*rec = *old;
		if (f & TEAM_F_DISPLAY_NAME)
			memcpy(rec->display_name, t->display_name, sizeof(rec->display_name));
		if (f & TEAM_F_BUDGET)
			rec->budget_micros = t->budget_micros;
		if (f & TEAM_F_PERIOD)
			rec->period = t->period;
		if (f & TEAM_F_THRESHOLDS)
			memcpy(rec->thresholds_json, t->thresholds_json,
			       sizeof(rec->thresholds_json));
		if (f & TEAM_F_ADMINS)
			memcpy(rec->admins_json, t->admins_json, sizeof(rec->admins_json));
		if ((f & TEAM_F_NAMESPACES) && t->namespaces[0] != '\0')
			memcpy(rec->namespaces, t->namespaces, sizeof(rec->namespaces));
	}
	if (rec->admins_json[0] == '\0')
		memcpy(rec->admins_json, "[]", 3);
}

static int team_write(struct store_conn *c, const void *p, bool exists)
{
	const struct team *t = p;
	const char *period = period_kind_name(t->period);

	if (exists)
		return db_exec(c, SQL_TEAM_UPDATE, "tittitit", t->display_name, t->budget_micros,
			       period, t->thresholds_json, t->updated_at, t->admins_json,
			       t->retired_at, t->id);
	return db_exec(c, SQL_TEAM_INSERT, "ttittiit", t->id, t->display_name, t->budget_micros,
		       period, t->thresholds_json, t->created_at, t->updated_at, t->admins_json);
}

/* After the team row: its namespaces, and its live reservations when its
 * period kind changed. */
static int team_after(struct store_conn *c, const void *p, const void *o, int64_t now)
{
	const struct team *rec = p, *old = o;
	int rc = namespaces_put(c, rec, old);

	if (rc == 0 && old && old->period != rec->period)
		rc = period_rekey(c, rec->id, rec->period, now);
	return rc;
}

/* Teams for db_put: their live allocations locked first (see the top). */
static const struct db_put_kind TEAM_KIND = {
	.type = "team", .name = "team", DB_PUT_LAYOUT(struct team), .put_fields = TEAM_F_PUT,
	.retired_field = TEAM_F_RETIRED, .prelock_sql = SQL_LIVE_LOCK, .lock_sql = SQL_TEAM_LOCK,
	.get_sql = SQL_TEAM_BY_ID, .row = db_row_team, .merge = team_merge, .write = team_write,
	.after = team_after, .audit_json = team_audit_json, .audit_team = true};

DB_PUT_OPS(ops_team, struct team, TEAM_KIND)

DB_EACH_TYPED(team_each, store_team_cb)

int ops_team_list(struct store_conn *c, const char *const *only, size_t nonly, store_team_cb cb,
		  void *ctx)
{
	struct team_each e = {cb, ctx};
	struct db_param p[DB_MAX_PARAMS];
	struct db_rows *r = NULL;
	struct team t;
	char *sql = NULL;
	int np = 0, rc;

	if (!only)
		return db_list(c, SQL_TEAM_LIST, "teams", db_row_team, &t, team_each, &e);
	rc = db_op(c);
	if (rc == 0 && !(sql = strdup(SQL_TEAM_SCOPE)))
		rc = ERR_NOMEM;
	if (rc == 0) /* " AND id IN (?, ...)"; an empty scope sees nothing */
		rc = db_sql_scope(c, &sql, "id", only, nonly, p, &np);
	if (rc == 0)
		rc = db_sql_append(&sql, " ORDER BY id");
	if (rc == 0)
		rc = db_query_built(c, sql, p, np, &r);
	free(sql);
	return rc != 0 ? rc : db_each(r, "teams", db_row_team, &t, team_each, &e);
}

int ops_period_read(struct store_conn *c, const char *team, int64_t ps, int64_t *spent,
		    int64_t *reserved)
{
	struct db_rows *r = NULL;
	int rc = db_query(c, SQL_PERIOD_GET, &r, "ti", team, ps);

	*spent = 0;
	*reserved = 0;
	if (rc == 0 && (rc = db_next(r)) == 1) {
		*spent = db_i64(r, 0);
		*reserved = db_i64(r, 1);
	}
	db_rows_close(r);
	return rc < 0 ? rc : 0;
}

struct ledger_read {
	const struct team *t;
	int64_t now;
	struct team_ledger l;
};

/* One read snapshot for both reads: the period row and its running allocations. */
static int team_ledger_tx(struct store_conn *c, void *ctx)
{
	struct ledger_read *x = ctx;
	struct team_ledger *l = &x->l;
	struct db_rows *r = NULL;
	int rc;

	memset(l, 0, sizeof(*l));
	period_bounds(x->t->period, x->now, &l->period_start, &l->period_end);
	rc = ops_period_read(c, x->t->id, l->period_start, &l->spent, &l->reserved);
	if (rc == 0)
		rc = db_query(c, SQL_RUNNING_OF_PERIOD, &r, "ti", x->t->id, l->period_start);
	while (rc == 0 && (rc = db_next(r)) == 1) {
		int64_t acc = 0;

		rc = ledger_accrued(db_i64(r, 0), db_i64(r, 1), db_i64(r, 2), db_i64(r, 3), x->now,
				    &acc);
		if (rc == 0 && __builtin_add_overflow(l->accrued, acc, &l->accrued))
			rc = ERR_OVERFLOW;
		if (rc == 0)
			l->running++;
	}
	db_rows_close(r);
	return rc;
}

int ops_team_ledger(struct store_conn *c, const struct team *t, int64_t now,
		    struct team_ledger *out)
{
	struct ledger_read x = {.t = t, .now = now};
	int rc = db_run(c, false, team_ledger_tx, &x);

	if (rc == 0)
		*out = x.l;
	return rc;
}
