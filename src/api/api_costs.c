/*
 * api_costs.c - spend grouped by team, project, GPU type, day or month.
 * view=use (default) counts cost on the days the GPUs were used, as the
 * FOCUS export does; view=budget at the approval time, as the budgets do.
 * Members see only their teams.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/query.h"
#include "core/err.h"
#include "core/money.h"
#include "core/period.h"
#include "http/jsonv.h"

struct cost_acc {
	json_t *items;
	struct cost_row total;
	bool overflow;
};

static json_t *render_row(const char *key, const struct cost_row *c)
{
	return json_pack("{s:s?, s:o, s:o, s:o, s:o}", "key", key, "spent", render_money_sum(c->spent),
			 "accrued", render_money_sum(c->accrued), "reserved",
			 render_money_sum(c->reserved), "gpu_hours", render_money_sum(c->gpu_microhours));
}

/* Totals in 128 bits like the rows: exact, or (never in practice) refused. */
static int add_row(void *ctx, const struct cost_row *c)
{
	struct cost_acc *acc = ctx;
	if (__builtin_add_overflow(acc->total.spent, c->spent, &acc->total.spent) ||
	    __builtin_add_overflow(acc->total.accrued, c->accrued, &acc->total.accrued) ||
	    __builtin_add_overflow(acc->total.reserved, c->reserved, &acc->total.reserved) ||
	    __builtin_add_overflow(acc->total.gpu_microhours, c->gpu_microhours,
				   &acc->total.gpu_microhours)) {
		acc->overflow = true;
		return 1;
	}
	return json_array_append_new(acc->items, render_row(c->key, c));
}

void api_costs(struct req *r)
{
	json_t *errors = json_array();
	struct cost_query q;
	char month[8];
	memset(&q, 0, sizeof(q));
	q.now = r->now;
	query_cost_range(r, &q, month, errors);
	const char *g = req_query(r, "group_by"), *v = req_query(r, "view");
	static const char *const groups[] = {"team", "project", "gpu_type", "day", "month"};
	static const char *const views[] = {"use", "budget"};
	q.group = COST_BY_TEAM;
	if (g != NULL) {
		size_t i = 0;
		while (i < 5 && strcmp(groups[i], g) != 0)
			i++;
		if (i == 5)
			jsonv_error(errors, "group_by",
				    "must be one of team, project, gpu_type, day, month");
		else
			q.group = (enum cost_group)i;
	}
	q.view = COST_VIEW_USE;
	if (v != NULL && strcmp(v, "budget") == 0)
		q.view = COST_VIEW_BUDGET;
	else if (v != NULL && strcmp(v, "use") != 0)
		jsonv_error(errors, "view", "must be use or budget");
	const char *team = NULL;
	query_team(r, errors, &team);
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		return;
	}
	json_decref(errors);
	if (team != NULL && !auth_team_allowed(r, team)) {
		reply_err(r, ERR_FORBIDDEN, "this token may not read that team");
		return;
	}
	const char *scope_buf[HTTP_MAX_TOKEN_TEAMS];
	q.teams = auth_team_scope(r, scope_buf, &q.nteams);
	if (team != NULL) { /* ?team= narrows to one team the caller may read */
		q.teams = &team;
		q.nteams = 1;
	}

	struct store_conn *db;
	struct cost_acc acc = {.items = json_array()};
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->costs(db, &q, add_row, &acc);
	if (rc == 0 && acc.overflow)
		rc = ERR_OVERFLOW;
	if (rc == ERR_OVERFLOW) { /* the query is valid; its sums do not fit */
		json_decref(acc.items);
		reply_err(r, ERR_STORE, "the cost totals do not fit in 128 bits");
		return;
	}
	if (rc != 0) {
		json_decref(acc.items);
		reply_err(r, rc, "cannot compute costs");
		return;
	}
	reply_json(r, 200, json_pack("{s:o, s:o, s:s, s:s, s:b, s:s, s:o, s:o}", "from",
				     render_time(q.from), "to", render_time(q.to), "group_by",
				     groups[q.group], "view", views[q.view], "include_running",
				     !q.exclude_running, "currency", r->app->currency, "items",
				     acc.items, "total", render_row(NULL, &acc.total)));
}
