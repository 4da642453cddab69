/*
 * api_teams.c - teams, their budgets, and the budget view of the current
 * period (spent, reserved, accrued, available, burn rate, forecast).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/err.h"
#include "core/money.h"
#include "http/jsonv.h"
#include "util/util.h"

#define TEAM_MAX_THRESHOLDS 10

#define TEAM_FORECAST_WINDOW_S (7 * 86400) /* the burn rate follows the last 7 days */

static int add_usage(void *ctx, const struct cost_row *c)
{
	*(int64_t *)ctx += c->spent + c->accrued;
	return 0;
}

/* Renders one team with its current ledger and a forecast whose burn rate is
 * the cost the team incurred over the last week of this period. */
static int team_view(struct req *r, struct store_conn *db, const struct team *t, json_t **out)
{
	struct team_ledger l;
	int rc = store_conn_ops(db)->team_ledger(db, t, r->now, &l);
	if (rc != 0)
		return rc;
	const char *only[1] = {t->id};
	struct cost_query q = {
		.from = r->now - TEAM_FORECAST_WINDOW_S,
		.to = r->now + 1,
		.group = COST_BY_DAY,
		.teams = only,
		.nteams = 1,
		.now = r->now,
	};
	if (q.from < l.period_start)
		q.from = l.period_start;
	int64_t recent = 0;
	rc = store_conn_ops(db)->costs(db, &q, add_usage, &recent);
	if (rc != 0)
		return rc;
	*out = render_team(t, &l, r->now, r->app->currency, recent, r->now - q.from);
	return *out ? 0 : ERR_NOMEM;
}

int team_list_add(void *ctx, const struct team *t)
{
	struct team_list *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct team *ni = realloc(l->items, cap * sizeof(*ni));
		if (ni == NULL)
			return ERR_NOMEM;
		l->items = ni;
		l->cap = cap;
	}
	l->items[l->n++] = *t;
	return 0;
}

void api_teams_list(struct req *r)
{
	struct store_conn *db;
	struct team_list list = {0};
	const char *scope_buf[HTTP_MAX_TOKEN_TEAMS];
	size_t nscope = 0;
	const char *const *scope = auth_team_scope(r, scope_buf, &nscope);
	json_t *items = json_array();
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_list(db, scope, nscope, team_list_add, &list);
	for (size_t i = 0; rc == 0 && i < list.n; i++) {
		json_t *v = NULL;
		rc = team_view(r, db, &list.items[i], &v);
		if (rc == 0)
			json_array_append_new(items, v);
	}
	free(list.items);
	if (rc != 0) {
		json_decref(items);
		reply_err(r, rc, "cannot list teams");
		return;
	}
	reply_json(r, 200, json_pack("{s:o}", "items", items));
}

void api_team_get(struct req *r)
{
	struct store_conn *db;
	struct team t;
	json_t *v = NULL;
	if (!auth_team_allowed(r, r->params[0])) {
		reply_err(r, ERR_FORBIDDEN, "this token is not a member of that team");
		return;
	}
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_get(db, r->params[0], &t);
	if (rc == 0)
		rc = team_view(r, db, &t, &v);
	if (rc != 0) {
		reply_err(r, rc, rc == ERR_NOT_FOUND ? "no such team" : "cannot read team");
		return;
	}
	reply_json(r, 200, v);
}

static const struct jv_field team_fields[] = {
	{"display_name", JV_STRING, true, STORE_NAME_LEN - 1},
	{"budget", JV_OBJECT, true, 0},
	{"alert_thresholds", JV_ARRAY, false, 0},
	{"namespaces", JV_ARRAY, false, 0},
	{NULL, 0, false, 0},
};

static const struct jv_field budget_fields[] = {
	{"amount", JV_MONEY, true, 32},
	{"period", JV_STRING, true, 16},
	{NULL, 0, false, 0},
};

/*
 * Validates alert_thresholds: at most 10, each a whole number of parts per
 * million of the budget (at most 6 decimals) from 0.000001 to 10, strictly
 * ascending.  The alerter compares in ppm, so a threshold that is not
 * exactly a ppm count (1e-320 would round to 0 ppm, an alert at once) is
 * refused rather than rounded.
 */
static void check_thresholds(json_t *th, json_t *errors)
{
	size_t i;
	json_t *v;
	double prev_ppm = 0;
	if (json_array_size(th) > TEAM_MAX_THRESHOLDS) {
		jsonv_error(errors, "alert_thresholds", "at most %d thresholds", TEAM_MAX_THRESHOLDS);
		return;
	}
	json_array_foreach(th, i, v) {
		char field[40];
		snprintf(field, sizeof(field), "alert_thresholds[%zu]", i);
		if (!json_is_number(v)) {
			jsonv_error(errors, field, "must be a number");
			continue;
		}
		double x = json_number_value(v);
		if (!(x > 0 && x <= 10)) {
			jsonv_error(errors, field, "must be a fraction of the budget in (0, 10]");
			continue;
		}
		/* x <= 10, so x * 1e6 <= 1e7 and its rounding error is far below
		 * 1e-6 ppm: a value with at most 6 decimals passes, a 7th does not. */
		double ppm = x * 1e6, whole = (double)(int64_t)(ppm + 0.5);
		if (whole < 1 || ppm - whole > 1e-6 || whole - ppm > 1e-6)
			jsonv_error(errors, field,
				    "must have at most 6 decimals and be at least 0.000001");
		else if (whole <= prev_ppm)
			jsonv_error(errors, field, "thresholds must be in ascending order");
		else
			prev_ppm = whole;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Validates `namespaces` (1 to STORE_MAX_NAMESPACES DNS labels, no repeats)
 * and writes them sorted and comma-joined to out (which they always fit).
 */
static void check_namespaces(json_t *list, char out[STORE_NAMESPACES_LEN], json_t *errors)
{
	const char *ns[STORE_MAX_NAMESPACES];
	size_t n = json_array_size(list), len = 0;
	if (n == 0 || n > STORE_MAX_NAMESPACES) {
		jsonv_error(errors, "namespaces", "must list 1 to %d Kubernetes namespaces",
			    STORE_MAX_NAMESPACES);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		ns[i] = json_string_value(json_array_get(list, i));
		if (ns[i] == NULL || !jsonv_is_label(ns[i])) {
			char field[40];
			snprintf(field, sizeof(field), "namespaces[%zu]", i);
			jsonv_error(errors, field,
				    "must be a namespace name: a lower-case DNS label (a-z, 0-9, '-', <= 63)");
			return;
		}
	}
	qsort(ns, n, sizeof(ns[0]), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(ns[i], ns[i - 1]) == 0) {
			jsonv_error(errors, "namespaces", "lists '%s' twice", ns[i]);
			return;
		}
		/* 16 labels of <= 63 bytes and 15 commas fit STORE_NAMESPACES_LEN. */
		len += (size_t)snprintf(out + len, STORE_NAMESPACES_LEN - len, "%s%s", i ? "," : "",
					ns[i]);
	}
}

void api_team_put(struct req *r)
{
	json_t *body = NULL, *errors = json_array();
	char *th_text = NULL;
	struct team t;
	memset(&t, 0, sizeof(t));
	if (req_json_object(r, false, &body) != 0)
		goto out;
	if (!jsonv_is_label(r->params[0]))
		jsonv_error(errors, "id", "must be a lower-case DNS label (a-z, 0-9, '-', <= 63)");
	jsonv_check(body, team_fields, "", errors);
	json_t *budget = json_object_get(body, "budget");
	if (json_is_object(budget)) {
		jsonv_check(budget, budget_fields, "budget.", errors);
		const char *p = json_string_value(json_object_get(budget, "period"));
		if (p != NULL && period_kind_parse(p, &t.period) != 0)
			jsonv_error(errors, "budget.period",
				    "must be one of weekly, monthly, quarterly, yearly");
	}
	json_t *th = json_object_get(body, "alert_thresholds");
	if (json_is_array(th))
		check_thresholds(th, errors);
	json_t *nss = json_object_get(body, "namespaces");
	if (json_is_array(nss))
		check_namespaces(nss, t.namespaces, errors);
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	th_text = th ? json_dumps(th, HTTP_JSON_FLAGS) : strdup("[0.5,0.8,1.0]");
	if (th_text == NULL || strlen(th_text) >= sizeof(t.thresholds_json)) {
		reply_err(r, ERR_NOMEM, "cannot store thresholds");
		goto out;
	}
	/* Validated above, so these fit; a value that would not is refused, never cut. */
	if (util_fmt(t.id, sizeof(t.id), "%s", r->params[0]) != 0 ||
	    util_fmt(t.display_name, sizeof(t.display_name), "%s",
		     json_string_value(json_object_get(body, "display_name"))) != 0 ||
	    util_fmt(t.thresholds_json, sizeof(t.thresholds_json), "%s", th_text) != 0) {
		reply_err(r, ERR_INVALID, "a value does not fit its field");
		goto out;
	}
	t.budget_micros = jsonv_money(budget, "amount");

	struct store_conn *db;
	bool created = false;
	json_t *v = NULL;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_put(db, &r->actor, &t, r->now, &created);
	if (rc == 0)
		rc = store_conn_ops(db)->team_get(db, t.id, &t);
	if (rc == 0)
		rc = team_view(r, db, &t, &v);
	if (rc != 0) {
		reply_err(r, rc, rc == ERR_CONFLICT ? db->err : "cannot store the team");
		goto out;
	}
	reply_json(r, created ? 201 : 200, v);
out:
	free(th_text);
	json_decref(body);
	json_decref(errors);
}
