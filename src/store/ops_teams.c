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
static const char SQL_NS_SET[] = "UPDATE teams SET namespaces = ? WHERE id = ?";
static const char SQL_NS_OWNER[] = "SELECT team_id FROM team_namespaces WHERE namespace = ?";
static const char SQL_NS_DROP[] = "DELETE FROM team_namespaces WHERE team_id = ?";
static const char SQL_NS_ADD[] = "INSERT INTO team_namespaces(namespace, team_id) VALUES (?, ?)";
static const char SQL_TEAM_LIST[] = "SELECT " TEAM_COLS " FROM teams ORDER BY id";
/* A scope's list: the head holds the first `?`, each further id adds ", ?". */
#define SQL_TEAM_SCOPE_HEAD "SELECT " TEAM_COLS " FROM teams WHERE id IN (?"
#define SQL_TEAM_SCOPE_TAIL ") ORDER BY id"
static const char SQL_PERIOD_GET[] =
	"SELECT spent, reserved FROM team_periods WHERE team_id = ? AND period_start = ?";
static const char SQL_PERIOD_ENSURE[] =
	"INSERT INTO team_periods(team_id, period_start, period_end, spent, reserved)"
	" VALUES (?, ?, ?, 0, 0) ON CONFLICT (team_id, period_start) DO NOTHING";
static const char SQL_PERIOD_MOVE[] =
	"UPDATE team_periods SET reserved = reserved + ?, spent = spent + ?"
	" WHERE team_id = ? AND period_start = ?";
/* Locked before the team row, in the expiry's order (see the top). */
static const char SQL_LIVE_LOCK[] =
	"SELECT id FROM allocations WHERE team_id = ? AND status IN ('approved', 'running')"
	" ORDER BY expires_at, id" DB_LOCK;
static const char SQL_LIVE_BY_PERIOD[] =
	"SELECT period_start, CAST(SUM(estimated_micros) AS BIGINT) FROM allocations"
	" WHERE team_id = ? AND status IN ('approved', 'running') AND period_start <> ?"
	" GROUP BY period_start ORDER BY period_start";
static const char SQL_LIVE_REKEY[] =
	"UPDATE allocations SET period_start = ? WHERE team_id = ?"
	" AND status IN ('approved', 'running') AND period_start <> ?";
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
	for (size_t i = 0; rc >= 0 && i < plan.n; i++) {
		rc = db_exec(c, SQL_PERIOD_MOVE, "iiti", plan.d[i].delta, (int64_t)0, team,
			     plan.d[i].ps);
		if (rc == 0) { /* each of these rows exists */
			db_err(c, "ledger row of team '%s' is missing", team);
			rc = ERR_STORE;
		}
	}
	if (rc >= 0)
		rc = db_exec(c, SQL_LIVE_REKEY, "iti", ps, team, ps);
	rc = rc < 0 ? rc : 0;
out:
	free(plan.d);
	return rc;
}

/*
 * Gives team `rec` the namespaces in rec->namespaces ("" = keep `old`'s, or
 * the team's id for a new team).  A namespace of another team is a conflict
 * that names the owner; two teams claiming one at once meet at the primary
 * key of team_namespaces and the loser reruns into that message.
 */
static int namespaces_put(struct store_conn *c, struct team *rec, const struct team *old)
{
	char list[STORE_NAMESPACES_LEN], owner[STORE_ID_LEN];
	int rc = 0, n;

	if (rec->namespaces[0] == '\0')
		snprintf(rec->namespaces, sizeof(rec->namespaces), "%s",
			 old ? old->namespaces : rec->id); /* both fit: same size, id < 64 */
	if (old != NULL && strcmp(old->namespaces, rec->namespaces) == 0)
		return 0;
	memcpy(list, rec->namespaces, sizeof(list));
	for (char *save = NULL, *ns = strtok_r(list, ",", &save); rc == 0 && ns != NULL;
	     ns = strtok_r(NULL, ",", &save)) {
		struct db_rows *r = NULL;

		rc = db_query(c, SQL_NS_OWNER, &r, "t", ns);
		if (rc == 0 && (rc = db_next(r)) == 1)
			rc = db_copy(r, 0, owner, sizeof(owner)) != 0 ? ERR_STORE : 1;
		db_rows_close(r);
		if (rc == 1 && strcmp(owner, rec->id) != 0) {
			db_err(c, "namespaces: namespace '%s' belongs to team '%s'; remove it there first",
			       ns, owner);
			return ERR_CONFLICT;
		}
		rc = rc == 1 ? 0 : rc;
	}
	n = rc != 0 ? rc : db_exec(c, SQL_NS_DROP, "t", rec->id);
	memcpy(list, rec->namespaces, sizeof(list));
	for (char *save = NULL, *ns = strtok_r(list, ",", &save); n >= 0 && ns != NULL;
	     ns = strtok_r(NULL, ",", &save))
		n = db_exec(c, SQL_NS_ADD, "tt", ns, rec->id);
	if (n >= 0)
		n = db_exec(c, SQL_NS_SET, "tt", rec->namespaces, rec->id);
	/* A unique violation: another team took one since the check above. */
	return n == ERR_CONFLICT ? DB_RETRY : n < 0 ? n : 0;
}
/* What a put names: everything an admin sets (not retired_at). */
#define TEAM_F_PUT                                                                  \
	(TEAM_F_DISPLAY_NAME | TEAM_F_BUDGET | TEAM_F_PERIOD | TEAM_F_THRESHOLDS | \
	 TEAM_F_ADMINS | TEAM_F_NAMESPACES)

struct team_write {
	const struct actor *who;
	const struct team *t;
	unsigned fields; /* enum team_field named by the write */
	bool patch;      /* true: the team must exist */
	int64_t now;
	bool created;
	struct team out; /* the record after the write */
};

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

/* rec = old with the named fields of t. */
static void team_merge(struct team *rec, const struct team *old, const struct team *t, unsigned f)
{
	*rec = *old;
	if (f & TEAM_F_DISPLAY_NAME)
		memcpy(rec->display_name, t->display_name, sizeof(rec->display_name));
	if (f & TEAM_F_BUDGET)
		rec->budget_micros = t->budget_micros;
	if (f & TEAM_F_PERIOD)
		rec->period = t->period;
	if (f & TEAM_F_THRESHOLDS)
		memcpy(rec->thresholds_json, t->thresholds_json, sizeof(rec->thresholds_json));
	if (f & TEAM_F_ADMINS)
		memcpy(rec->admins_json, t->admins_json, sizeof(rec->admins_json));
	if (f & TEAM_F_NAMESPACES) /* "" keeps them (namespaces_put) */
		memcpy(rec->namespaces, t->namespaces, sizeof(rec->namespaces));
}

static int team_write_tx(struct store_conn *c, void *ctx)
{
	struct team_write *w = ctx;
	struct team old, rec;
	char action[48];
	int64_t retired = 0;
	bool exists;
	int rc, n;

	n = db_exec(c, SQL_LIVE_LOCK, "t", w->t->id);
	rc = n < 0 ? n : db_load(c, SQL_TEAM_LOCK, w->t->id, db_row_team_v, &old);
	if (rc != 0 && (rc != ERR_NOT_FOUND || w->patch))
		return rc;
	exists = rc == 0;
	rc = !exists ? 0 : retire_rule(old.retired_at, w->fields & TEAM_F_RETIRED,
				       w->fields == TEAM_F_RETIRED, w->t->retired_at, &retired);
	if (rc == 1) { /* retire again: nothing to do */
		w->out = old;
		return 0;
	}
	if (rc != 0) {
		db_err(c, "team '%s' is retired", old.id);
		return rc;
	}
	if (exists) {
		team_merge(&rec, &old, w->t, w->fields);
		rec.retired_at = retired;
	} else {
		rec = *w->t;
		rec.created_at = w->now;
		rec.retired_at = 0;
	}
	if (rec.admins_json[0] == '\0')
		memcpy(rec.admins_json, "[]", 3);
	rec.updated_at = w->now;
	if (exists)
		n = db_exec(c, SQL_TEAM_UPDATE, "tittitit", rec.display_name, rec.budget_micros,
			    period_kind_name(rec.period), rec.thresholds_json, w->now,
			    rec.admins_json, rec.retired_at, rec.id);
	else
		n = db_exec(c, SQL_TEAM_INSERT, "ttittiit", rec.id, rec.display_name,
			    rec.budget_micros, period_kind_name(rec.period), rec.thresholds_json,
			    w->now, w->now, rec.admins_json);
	if (n < 0) /* two creators raced (row locks): the loser reruns and updates instead */
		return n == ERR_CONFLICT && !exists ? DB_RETRY : n;
	rc = namespaces_put(c, &rec, exists ? &old : NULL);
	if (rc != 0)
		return rc;
	if (exists && old.period != rec.period) {
		rc = period_rekey(c, rec.id, rec.period, w->now);
		if (rc != 0)
			return rc;
	}
	w->created = !exists;
	w->out = rec;
	retire_action("team", exists, exists ? old.retired_at : 0, rec.retired_at, action,
		      sizeof(action));
	return db_audit(c, w->who, w->now, action, "team", rec.id, rec.id, team_audit_json,
			exists ? &old : NULL, &rec);
}

int ops_team_put(struct store_conn *c, const struct actor *who, const struct team *t, int64_t now,
		 bool *created)
{
	struct team_write w = {.who = who, .t = t, .fields = TEAM_F_PUT, .now = now};
	int rc = db_run(c, true, team_write_tx, &w);

	if (rc == 0)
		*created = w.created;
	return rc;
}

int ops_team_patch(struct store_conn *c, const struct actor *who, const struct team *t,
		   unsigned fields, int64_t now, struct team *out)
{
	struct team_write w = {.who = who, .t = t, .fields = fields, .patch = true, .now = now};
	int rc = db_run(c, true, team_write_tx, &w);

	if (rc == 0)
		*out = w.out;
	return rc;
}

int ops_team_get(struct store_conn *c, const char *id, struct team *out)
{
	struct team t;
	int rc = db_op(c);

	if (rc == 0)
		rc = db_load(c, SQL_TEAM_BY_ID, id, db_row_team_v, &t);
	if (rc == 0)
		*out = t;
	return rc;
}

/* The teams of a scope (n >= 1 ids): "... WHERE id IN (?, ...)" with its parameters. */
static int team_scope_query(struct store_conn *c, const char *const *ids, size_t n,
			    struct db_rows **r)
{
	char sql[sizeof(SQL_TEAM_SCOPE_HEAD) + 3 * DB_MAX_PARAMS + sizeof(SQL_TEAM_SCOPE_TAIL)];
	struct db_param p[DB_MAX_PARAMS];
	size_t len = sizeof(SQL_TEAM_SCOPE_HEAD) - 1;
	int np = 0;

	memcpy(sql, SQL_TEAM_SCOPE_HEAD, len);
	for (size_t i = 0; i < n; i++) {
		/* db_params refuses more than DB_MAX_PARAMS, which sql has room for. */
		int rc = db_params(c, p, DB_MAX_PARAMS, &np, "t", ids[i]);

		if (rc != 0)
			return rc;
		if (i) {
			memcpy(sql + len, ", ?", 3);
			len += 3;
		}
	}
	memcpy(sql + len, SQL_TEAM_SCOPE_TAIL, sizeof(SQL_TEAM_SCOPE_TAIL));
	return db_query_built(c, sql, p, np, r);
}

/* A list's callback as db_each calls it. */
struct team_each {
	store_team_cb cb;
	void *ctx;
};

static int team_each(void *p, const void *rec)
{
	const struct team_each *e = p;

	return e->cb(e->ctx, rec);
}

int ops_team_list(struct store_conn *c, const char *const *only, size_t nonly, store_team_cb cb,
		  void *ctx)
{
	struct team_each e = {cb, ctx};
	struct db_rows *r = NULL;
	struct team t;
	int rc = db_op(c);

	if (rc != 0 || (only && nonly == 0))
		return rc; /* an empty scope sees nothing */
	rc = only ? team_scope_query(c, only, nonly, &r) : db_query(c, SQL_TEAM_LIST, &r, "");
	return rc != 0 ? rc : db_each(r, "teams", db_row_team_v, &t, team_each, &e);
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
	rc = db_query(c, SQL_PERIOD_GET, &r, "ti", x->t->id, l->period_start);
	if (rc == 0 && (rc = db_next(r)) == 1) { /* no row yet: zeros */
		l->spent = db_i64(r, 0);
		l->reserved = db_i64(r, 1);
		rc = 0;
	}
	db_rows_close(r);
	r = NULL;
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
