/*
 * api_periods.c - GET /v1/costs/periods?team=&limit=: budget versus actual
 * for a team's last `limit` budget periods (its own period kind), newest
 * first: the budget in force at each period's end, what was charged to the
 * period (the budget view of GET /v1/costs: spent, accrued, reserved) and
 * what is left.
 *
 * The store keeps only the current budget; a past period's budget is the
 * one the team's last change before the period's end set, read from the
 * audit log (team entries' `after.budget`, a decimal string or a money
 * object {amount}).  A period before any recorded budget has budget null.
 * At most AUDIT_PAGES pages of the team's audit log are read; `complete`
 * says whether all of it was.  Members may read their own teams.  Read-only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/query.h"
#include "core/err.h"
#include "core/money.h"
#include "core/period.h"
#include "http/jsonv.h"

#define PERIODS_DEFAULT 6
#define PERIODS_MAX 36
#define AUDIT_PAGES 20
#define AUDIT_PAGE 500

struct change {
	int64_t at, budget;
};

struct changes {
	struct change *v;
	size_t n, cap;
	int rc;
};

/* Keeps each team entry's budget. */
static int add_change(void *ctx, const struct audit_entry *e)
{
	struct changes *c = ctx;
	json_t *after = e->after_json ? json_loads(e->after_json, 0, NULL) : NULL;
	json_t *b = json_object_get(after, "budget");
	const char *s = json_is_object(b) ? json_string_value(json_object_get(b, "amount"))
					  : json_string_value(b);
	int64_t micros = 0;

	if (strcmp(e->object_type, "team") == 0 && s != NULL && money_parse(s, &micros) == 0) {
		if (c->n == c->cap) {
			size_t ncap = c->cap ? c->cap * 2 : 16;
			struct change *nv = realloc(c->v, ncap * sizeof(*nv));
			if (nv == NULL) {
				json_decref(after);
				return c->rc = ERR_NOMEM;
			}
			c->v = nv;
			c->cap = ncap;
		}
		c->v[c->n++] = (struct change){e->at, micros};
	}
	json_decref(after);
	return 0;
}

static int add_total(void *ctx, const struct cost_row *row)
{
	struct cost_row *t = ctx;
	t->spent += row->spent;
	t->accrued += row->accrued;
	t->reserved += row->reserved;
	return 0;
}

/* The budget in force at instant t: the latest change before it, or -1
 * (the later entry of two at the same instant: entries come in log order). */
static int64_t budget_at(const struct changes *c, int64_t t)
{
	int64_t best = -1, at = INT64_MIN;

	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].at < t && c->v[i].at >= at) {
			at = c->v[i].at;
			best = c->v[i].budget;
		}
	return best;
}

/* Reads the team's audit log into ch; *complete when all of it was read. */
static int read_changes(struct store_conn *db, const char *team, struct changes *ch, bool *complete)
{
	char cursor[STORE_ID_LEN * 2] = "", next[STORE_ID_LEN * 2] = "";
	int rc = 0;

	*complete = false;
	for (int page = 0; rc == 0 && page < AUDIT_PAGES; page++) {
		next[0] = '\0';
		rc = store_conn_ops(db)->audit_list(db, team, cursor[0] ? cursor : NULL, AUDIT_PAGE,
						    add_change, ch, next);
		if (rc == 0)
			rc = ch->rc;
		if (rc == 0 && next[0] == '\0') {
			*complete = true;
			break;
		}
		memcpy(cursor, next, sizeof(cursor));
	}
	return rc;
}

void api_cost_periods(struct req *r)
{
	json_t *errors = json_array();
	const char *team = NULL, *lim = req_query(r, "limit");
	long limit = PERIODS_DEFAULT;

	query_team(r, errors, &team);
	if (team == NULL && json_array_size(errors) == 0)
		jsonv_error(errors, "team", "is required");
	if (lim != NULL) {
		char *end = NULL;
		limit = strtol(lim, &end, 10);
		if (end == lim || *end != '\0' || limit < 1 || limit > PERIODS_MAX)
			jsonv_error(errors, "limit", "must be an integer from 1 to %d", PERIODS_MAX);
	}
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		return;
	}
	json_decref(errors);
	if (!auth_team_allowed(r, team)) {
		reply_err(r, ERR_FORBIDDEN, "this token may not read that team");
		return;
	}

	struct store_conn *db = NULL;
	struct team t = {0};
	struct changes ch = {0};
	bool complete = false;
	json_t *items = json_array();
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_get(db, team, &t);
	if (rc == 0)
		rc = read_changes(db, team, &ch, &complete);
	int64_t ps = 0, pe = 0;
	if (rc == 0)
		period_bounds(t.period, r->now, &ps, &pe);
	for (long i = 0; rc == 0 && i < limit; i++) {
		const char *only[1] = {team};
		struct cost_query q = {.from = ps, .to = pe, .group = COST_BY_TEAM,
				       .view = COST_VIEW_BUDGET, .teams = only, .nteams = 1,
				       .now = r->now};
		struct cost_row tot;
		memset(&tot, 0, sizeof(tot));
		rc = store_conn_ops(db)->costs(db, &q, add_total, &tot);
		if (rc != 0)
			break;
		int64_t budget = i == 0 ? t.budget_micros : budget_at(&ch, pe);
		store_sum_t actual = tot.spent + tot.accrued;
		json_t *row = json_pack(
			"{s:o, s:o, s:b, s:o, s:o, s:o, s:o, s:o, s:o}", "period_start",
			render_time(ps), "period_end", render_time(pe), "current", i == 0, "budget",
			budget < 0 ? json_null() : render_money(budget), "spent",
			render_money_sum(tot.spent), "accrued", render_money_sum(tot.accrued),
			"reserved", render_money_sum(tot.reserved), "actual", render_money_sum(actual),
			"difference",
			budget < 0 ? json_null() : render_money_sum((store_sum_t)budget - actual));
		if (row == NULL || json_array_append_new(items, row) != 0)
			rc = ERR_NOMEM;
		period_bounds(t.period, ps - 1, &ps, &pe); /* the period before */
	}
	free(ch.v);
	if (rc != 0) {
		json_decref(items);
		reply_err(r, rc, rc == ERR_NOT_FOUND ? "no such team" : "cannot read the periods");
		return;
	}
	reply_json(r, 200, json_pack("{s:s, s:s, s:s, s:b, s:o}", "team", team, "period",
				     period_kind_name(t.period), "currency", r->app->currency,
				     "budget_history_complete", complete, "items", items));
}
