/*
 * api_teams.c - teams, their budgets and admins, and the budget view of the
 * current period (spent, reserved, accrued, available, burn rate, forecast).
 * A team is created or replaced by PUT, changed field by field by PATCH (a
 * JSON merge patch, RFC 7396), and retired instead of deleted: its history
 * (allocations, costs, audit) must stay.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/query.h"
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
	bool all = false;
	if (query_include_retired(r, &all) != 0)
		return;
	json_t *items = json_array();
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_list(db, scope, nscope, team_list_add, &list);
	for (size_t i = 0; rc == 0 && i < list.n; i++) {
		json_t *v = NULL;
		if (list.items[i].retired_at && !all)
			continue;
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

/* PUT: the whole team. */
static const struct jv_field team_fields[] = {
	{"display_name", JV_STRING, true, STORE_NAME_LEN - 1},
	{"budget", JV_OBJECT, true, 0},
	{"alert_thresholds", JV_ARRAY, false, 0},
	{"admins", JV_ARRAY, false, 0},
	{"namespaces", JV_ARRAY, false, 0},
	{NULL, 0, false, 0},
};

/* PATCH: any subset (nulls are handled before, see patch_nulls). */
static const struct jv_field team_patch_fields[] = {
	{"display_name", JV_STRING, false, STORE_NAME_LEN - 1},
	{"budget", JV_OBJECT, false, 0},
	{"alert_thresholds", JV_ARRAY, false, 0},
	{"admins", JV_ARRAY, false, 0},
	{"namespaces", JV_ARRAY, false, 0},
	{NULL, 0, false, 0},
};

static const struct jv_field budget_fields[] = {
	{"amount", JV_MONEY, true, 32},
	{"period", JV_STRING, true, 16},
	{NULL, 0, false, 0},
};

static const struct jv_field budget_patch_fields[] = {
	{"amount", JV_MONEY, false, 32},
	{"period", JV_STRING, false, 16},
	{NULL, 0, false, 0},
};

#define TEAM_DEFAULT_THRESHOLDS "[0.5,0.8,1.0]"

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

/* An e-mail address: local@domain, a dot in the domain. */
static bool admin_is_email(const char *s)
{
	const char *at = strchr(s, '@');
	if (at == NULL || at == s || strchr(at + 1, '@') != NULL || strchr(at + 1, '.') == NULL ||
	    at[1] == '.' || s[strlen(s) - 1] == '.')
		return false;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr(p < at ? "._%+-" : ".-@", *p)))
			return false;
	return true;
}

/* A Backstage entity ref: [kind:][namespace/]name (e.g. user:default/jane.doe). */
static bool admin_is_entity_ref(const char *s)
{
	const char *colon = strchr(s, ':'), *slash = strchr(s, '/');
	if ((colon && (colon == s || strchr(colon + 1, ':'))) ||
	    (slash && (strchr(slash + 1, '/') || slash == s || slash == colon + 1)) ||
	    (colon && slash && slash < colon) || s[strlen(s) - 1] == '/' || s[strlen(s) - 1] == ':')
		return false;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("._-:/", *p)))
			return false;
	return true;
}

/*
 * Validates admins: at most STORE_ADMINS_MAX distinct strings, each an
 * e-mail address or a Backstage entity ref of 1 to STORE_ADMIN_MAXLEN
 * characters.  Their character sets leave JSON nothing to escape, so the
 * stored text always fits STORE_ADMINS_LEN.
 */
static void check_admins(json_t *admins, json_t *errors)
{
	size_t i, j;
	json_t *v;
	if (json_array_size(admins) > STORE_ADMINS_MAX) {
		jsonv_error(errors, "admins", "at most %d admins", STORE_ADMINS_MAX);
		return;
	}
	json_array_foreach(admins, i, v) {
		char field[32];
		snprintf(field, sizeof(field), "admins[%zu]", i);
		const char *a = json_string_value(v);
		if (a == NULL) {
			jsonv_error(errors, field, "must be a string");
			continue;
		}
		if (json_string_length(v) == 0 || json_string_length(v) > STORE_ADMIN_MAXLEN ||
		    strlen(a) != json_string_length(v)) {
			jsonv_error(errors, field, "must be 1 to %d characters", STORE_ADMIN_MAXLEN);
			continue;
		}
		if (!admin_is_email(a) && !admin_is_entity_ref(a)) {
			jsonv_error(errors, field,
				    "must be an e-mail address or a Backstage entity ref "
				    "([kind:][namespace/]name)");
			continue;
		}
		for (j = 0; j < i; j++)
			if (json_equal(json_array_get(admins, j), v))
				break;
		if (j < i)
			jsonv_error(errors, field, "is listed twice");
	}
}

/*
 * A merge patch's nulls (RFC 7396: remove the member), taken out of body:
 * an optional member goes back to its default (alert_thresholds, admins),
 * retired_at: null reactivates, a required one cannot be removed.  Any other
 * retired_at is refused: retiring is POST .../retire.
 */
static void patch_nulls(json_t *body, struct team *t, unsigned *fields, json_t *errors)
{
	const char *key;
	json_t *v, *budget = json_object_get(body, "budget");
	void *tmp;
	json_t *ra = json_object_get(body, "retired_at");
	if (ra != NULL && !json_is_null(ra))
		jsonv_error(errors, "retired_at",
			    "only null (reactivate the team); retire it with POST "
			    "/v1/teams/{id}/retire");
	json_object_foreach_safe(body, tmp, key, v) {
		if (strcmp(key, "retired_at") == 0) {
			*fields |= TEAM_F_RETIRED; /* t->retired_at stays 0: reactivate */
			json_object_del(body, key);
		} else if (!json_is_null(v)) {
			continue;
		} else if (strcmp(key, "alert_thresholds") == 0) {
			*fields |= TEAM_F_THRESHOLDS;
			snprintf(t->thresholds_json, sizeof(t->thresholds_json), "%s",
				 TEAM_DEFAULT_THRESHOLDS);
			json_object_del(body, key);
		} else if (strcmp(key, "admins") == 0) {
			*fields |= TEAM_F_ADMINS;
			snprintf(t->admins_json, sizeof(t->admins_json), "[]");
			json_object_del(body, key);
		} else if (strcmp(key, "namespaces") == 0) {
			/* Back to the default: the namespace named after the team. */
			*fields |= TEAM_F_NAMESPACES;
			snprintf(t->namespaces, sizeof(t->namespaces), "%s", t->id);
			json_object_del(body, key);
		} else if (strcmp(key, "display_name") == 0 || strcmp(key, "budget") == 0) {
			jsonv_error(errors, key, "cannot be removed");
			json_object_del(body, key);
		}
	}
	if (json_is_object(budget))
		json_object_foreach_safe(budget, tmp, key, v) {
			if (json_is_null(v) && (strcmp(key, "amount") == 0 || strcmp(key, "period") == 0)) {
				jsonv_error(errors, strcmp(key, "amount") == 0 ? "budget.amount"
									       : "budget.period",
					    "cannot be removed");
				json_object_del(budget, key);
			}
		}
}

/* A JSON array as compact text into buf (len bytes): 0, or -1 when it does not fit. */
static int json_text_into(json_t *v, char *buf, size_t len)
{
	char *text = json_dumps(v, HTTP_JSON_FLAGS);
	int rc = text != NULL ? util_fmt(buf, len, "%s", text) : -1;
	free(text);
	return rc;
}

/*
 * Validates a PUT (patch false: every required field) or PATCH body into t
 * and the fields it names; errors get every invalid field.  Changes nothing.
 */
static void team_parse(struct req *r, json_t *body, bool patch, struct team *t, unsigned *fields,
		       json_t *errors)
{
	if (!jsonv_is_label(r->params[0]))
		jsonv_error(errors, "id", "must be a lower-case DNS label (a-z, 0-9, '-', <= 63)");
	if (util_fmt(t->id, sizeof(t->id), "%s", r->params[0]) != 0)
		return; /* reported above: not a label */
	if (patch)
		patch_nulls(body, t, fields, errors);
	jsonv_check(body, patch ? team_patch_fields : team_fields, "", errors);
	json_t *name = json_object_get(body, "display_name");
	if (json_is_string(name)) {
		*fields |= TEAM_F_DISPLAY_NAME;
		if (util_fmt(t->display_name, sizeof(t->display_name), "%s", json_string_value(name)) != 0)
			jsonv_error(errors, "display_name", "does not fit");
	}
	json_t *budget = json_object_get(body, "budget");
	if (json_is_object(budget)) {
		if (jsonv_check(budget, patch ? budget_patch_fields : budget_fields, "budget.",
				errors) == 0 && json_object_get(budget, "amount")) {
			*fields |= TEAM_F_BUDGET;
			t->budget_micros = jsonv_money(budget, "amount");
		}
		const char *p = json_string_value(json_object_get(budget, "period"));
		if (p != NULL && period_kind_parse(p, &t->period) != 0)
			jsonv_error(errors, "budget.period",
				    "must be one of weekly, monthly, quarterly, yearly");
		else if (p != NULL)
			*fields |= TEAM_F_PERIOD;
	}
	json_t *th = json_object_get(body, "alert_thresholds");
	if (json_is_array(th)) {
		*fields |= TEAM_F_THRESHOLDS;
		check_thresholds(th, errors);
		if (json_array_size(errors) == 0 &&
		    json_text_into(th, t->thresholds_json, sizeof(t->thresholds_json)) != 0)
			jsonv_error(errors, "alert_thresholds", "does not fit");
	} else if (!patch) {
		snprintf(t->thresholds_json, sizeof(t->thresholds_json), "%s", TEAM_DEFAULT_THRESHOLDS);
	}
	json_t *admins = json_object_get(body, "admins");
	if (json_is_array(admins)) {
		*fields |= TEAM_F_ADMINS;
		check_admins(admins, errors);
		if (json_array_size(errors) == 0 &&
		    json_text_into(admins, t->admins_json, sizeof(t->admins_json)) != 0)
			jsonv_error(errors, "admins", "does not fit");
	} else if (!patch) {
		snprintf(t->admins_json, sizeof(t->admins_json), "[]");
	}
	json_t *nss = json_object_get(body, "namespaces");
	if (json_is_array(nss)) {
		*fields |= TEAM_F_NAMESPACES;
		check_namespaces(nss, t->namespaces, errors);
	} /* absent (or removed): t->namespaces "" keeps the team's (a new team: its id) */
}

void reply_retired(struct req *r, const char *field, const char *detail)
{
	reply_problem(r, 409, "retired", "Retired", detail, json_pack("{s:s}", "field", field));
}

/* The answer to a write of a team: the team after it, or the error. */
static void team_reply(struct req *r, struct store_conn *db, int rc, const struct team *t,
		       unsigned status)
{
	json_t *v = NULL;
	char d[STORE_DETAIL_LEN + 160];
	if (rc == ERR_CONFLICT && strncmp(db->err, "namespaces:", 11) == 0) {
		reply_err(r, rc, db->err); /* another team's namespace: the store names it */
		return;
	}
	if (rc == ERR_CONFLICT) {
		snprintf(d, sizeof(d),
			 "team '%s' is retired; an admin reactivates it with PATCH /v1/teams/%s "
			 "{\"retired_at\": null}",
			 t->id, t->id);
		reply_retired(r, "retired_at", d);
		return;
	}
	if (rc == 0)
		rc = team_view(r, db, t, &v);
	if (rc != 0) {
		reply_err(r, rc, rc == ERR_NOT_FOUND ? "no such team" : "cannot store the team");
		return;
	}
	reply_json(r, status, v);
}

void api_team_put(struct req *r)
{
	json_t *body = NULL, *errors = json_array();
	struct team t;
	unsigned fields = 0;
	memset(&t, 0, sizeof(t));
	if (errors == NULL || req_json_object(r, false, &body) != 0)
		goto out;
	team_parse(r, body, false, &t, &fields, errors);
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	struct store_conn *db;
	bool created = false;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_put(db, &r->actor, &t, r->now, &created);
	if (rc == 0)
		rc = store_conn_ops(db)->team_get(db, t.id, &t);
	team_reply(r, db, rc, &t, created ? 201 : 200);
out:
	json_decref(body);
	json_decref(errors);
}

void api_team_patch(struct req *r)
{
	json_t *body = NULL, *errors = json_array();
	struct team t, after;
	unsigned fields = 0;
	memset(&t, 0, sizeof(t));
	if (errors == NULL || req_json_object(r, false, &body) != 0)
		goto out;
	team_parse(r, body, true, &t, &fields, errors);
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_patch(db, &r->actor, &t, fields, r->now, &after);
	team_reply(r, db, rc, rc == 0 ? &after : &t, 200);
out:
	json_decref(body);
	json_decref(errors);
}

void api_team_retire(struct req *r)
{
	struct team t, after;
	memset(&t, 0, sizeof(t));
	if (util_fmt(t.id, sizeof(t.id), "%s", r->params[0]) != 0) {
		reply_err(r, ERR_NOT_FOUND, "no such team");
		return;
	}
	t.retired_at = r->now;
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_patch(db, &r->actor, &t, TEAM_F_RETIRED, r->now, &after);
	team_reply(r, db, rc, rc == 0 ? &after : &t, 200);
}
