/*
 * api_audit.c - the append-only audit log (admin and finance), filtered by
 * team, actor, action and time.
 *
 * The store keeps each entry's before/after records as it wrote them
 * (times as epoch seconds, a team's budget as a flat string).  They are
 * shown in the API's own shapes: each record is read back into its struct
 * and printed by the resource's renderer, so a team, GPU type, allocation or
 * token in the audit log looks as its GET shows it, for old rows too.  A
 * record that cannot be read back (another shape, a seed count) is shown as
 * stored, with its epoch times as RFC 3339.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/query.h"
#include "core/err.h"
#include "core/lifecycle.h"
#include "core/money.h"
#include "core/period.h"
#include "core/timeutil.h"
#include "http/jsonv.h"

/* Every action the store audits (docs/openapi.json lists the same). */
static const char *const audit_actions[] = {
	"allocation.approve", "allocation.refuse",  "allocation.start",  "allocation.complete",
	"allocation.cancel",  "allocation.expire",  "gpu_type.retire", "gpu_type.reactivate",
	"team.retire",        "team.reactivate",  "gpu_type.create",   "gpu_type.update",     "gpu_type.seed",
	"team.create",        "team.update",       "token.create",        "token.revoke",
};
#define AUDIT_NACTIONS (sizeof(audit_actions) / sizeof(audit_actions[0]))

/* ---- stored records back into structs ---------------------------------- */

static int get_str(const json_t *o, const char *k, char *buf, size_t n)
{
	const char *s = json_string_value(json_object_get(o, k));
	if (s == NULL || strlen(s) >= n)
		return -1;
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

static int get_int(const json_t *o, const char *k, int64_t *out)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int get_money(const json_t *o, const char *k, int64_t *out)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s != NULL && money_parse(s, out) == 0 ? 0 : -1;
}

/* o[k] (any JSON) as compact text in buf. */
static int get_text(const json_t *o, const char *k, char *buf, size_t n)
{
	json_t *v = json_object_get(o, k);
	size_t len = v ? json_dumpb(v, buf, n, JSON_COMPACT | JSON_ENCODE_ANY) : 0;
	if (len == 0 || len >= n)
		return -1;
	buf[len] = '\0';
	return 0;
}

static json_t *audit_team(const json_t *o, const char *currency)
{
	struct team t;
	const char *period = json_string_value(json_object_get(o, "period"));
	memset(&t, 0, sizeof(t));
	if (get_str(o, "id", t.id, sizeof(t.id)) || get_str(o, "display_name", t.display_name,
							  sizeof(t.display_name)) ||
	    get_money(o, "budget", &t.budget_micros) || period == NULL ||
	    period_kind_parse(period, &t.period) != 0 ||
	    get_text(o, "alert_thresholds", t.thresholds_json, sizeof(t.thresholds_json)) ||
	    get_int(o, "created_at", &t.created_at) || get_int(o, "updated_at", &t.updated_at))
		return NULL;
	/* Its namespaces (schema 6), comma-joined as the struct holds them. */
	const json_t *nss = json_object_get(o, "namespaces");
	size_t i, len = 0;
	const json_t *ns;
	json_array_foreach(nss, i, ns) {
		const char *name = json_string_value(ns);
		int n = name ? snprintf(t.namespaces + len, sizeof(t.namespaces) - len, "%s%s",
					len ? "," : "", name)
			     : -1;
		if (n < 0 || (size_t)n >= sizeof(t.namespaces) - len)
			return NULL;
		len += (size_t)n;
	}
	/* Its admins and retirement (schema 8): absent from older records. */
	const json_t *admins = json_object_get(o, "admins");
	const char *retired = json_string_value(json_object_get(o, "retired_at"));
	if (admins != NULL && get_text(o, "admins", t.admins_json, sizeof(t.admins_json)) != 0)
		return NULL;
	if (retired != NULL && time_parse_rfc3339(retired, &t.retired_at) != 0)
		return NULL;
	json_t *v = render_team_settings(&t, currency);
	if (v != NULL && nss == NULL) /* recorded before teams had namespaces */
		json_object_del(v, "namespaces");
	if (v != NULL && admins == NULL)
		json_object_del(v, "admins");
	if (v != NULL && json_object_get(o, "retired_at") == NULL)
		json_object_del(v, "retired_at");
	if (v != NULL && (json_object_set_new(v, "created_at", render_time(t.created_at)) != 0 ||
			  json_object_set_new(v, "updated_at", render_time(t.updated_at)) != 0)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

static json_t *audit_gpu_type(const json_t *o, const char *currency)
{
	struct gpu_type g;
	memset(&g, 0, sizeof(g));
	if (get_str(o, "id", g.id, sizeof(g.id)) || get_str(o, "name", g.name, sizeof(g.name)) ||
	    get_money(o, "price_per_gpu_hour", &g.price_micros) ||
	    get_str(o, "price_date", g.price_date, sizeof(g.price_date)) ||
	    get_str(o, "price_source", g.price_source, sizeof(g.price_source)) ||
	    get_int(o, "capacity", &g.capacity) || get_int(o, "allocated", &g.allocated) ||
	    get_int(o, "updated_at", &g.updated_at))
		return NULL;
	const char *retired = json_string_value(json_object_get(o, "retired_at"));
	if (retired != NULL && time_parse_rfc3339(retired, &g.retired_at) != 0)
		return NULL;
	return render_gpu_type(&g, currency);
}

/* An allocation as GET shows it at the instant of the entry (its accrued cost then). */
static json_t *audit_allocation(const json_t *o, int64_t at)
{
	struct allocation *a = calloc(1, sizeof(*a)); /* a large record */
	const char *status = json_string_value(json_object_get(o, "status"));
	json_t *v = NULL, *actual = json_object_get(o, "actual_cost");
	if (a == NULL)
		return NULL;
	a->actual_micros = -1;
	if (get_str(o, "id", a->id, sizeof(a->id)) || get_str(o, "team", a->team, sizeof(a->team)) ||
	    get_str(o, "project", a->project, sizeof(a->project)) ||
	    get_str(o, "gpu_type", a->gpu_type, sizeof(a->gpu_type)) ||
	    get_int(o, "gpu_count", &a->gpu_count) ||
	    get_int(o, "max_runtime_us", &a->max_runtime_us) ||
	    get_money(o, "price_per_gpu_hour", &a->price_micros) ||
	    get_money(o, "estimated_cost", &a->estimated_micros) || status == NULL ||
	    alloc_status_parse(status, &a->status) != 0 ||
	    get_str(o, "purpose", a->purpose, sizeof(a->purpose)) ||
	    get_text(o, "labels", a->labels_json, sizeof(a->labels_json)) ||
	    get_str(o, "created_by", a->created_by, sizeof(a->created_by)) ||
	    get_int(o, "period_start", &a->period_start) ||
	    get_int(o, "approved_at", &a->approved_at) ||
	    get_int(o, "expires_at", &a->expires_at) || get_int(o, "started_at", &a->started_at) ||
	    get_int(o, "ended_at", &a->ended_at) ||
	    (!json_is_null(actual) && get_money(o, "actual_cost", &a->actual_micros)))
		goto out;
	v = render_allocation(a, at);
out:
	free(a);
	return v;
}

static json_t *audit_token(const json_t *o)
{
	struct token t;
	const char *role = json_string_value(json_object_get(o, "role"));
	memset(&t, 0, sizeof(t));
	if (get_str(o, "id", t.id, sizeof(t.id)) || get_str(o, "name", t.name, sizeof(t.name)) ||
	    role == NULL || role_parse(role, &t.role) != 0 ||
	    get_text(o, "teams", t.teams_json, sizeof(t.teams_json)) ||
	    get_int(o, "created_at", &t.created_at) || get_int(o, "revoked_at", &t.revoked_at))
		return NULL;
	return render_token(&t);
}

/* A record of another shape (a refused request, the catalog seed) as
 * stored, its epoch times ("*_at", "period_start") as RFC 3339 and a
 * runtime in microseconds as the API's max_runtime_hours. */
static json_t *audit_as_stored(json_t *o)
{
	const char *k;
	json_t *v;
	void *tmp;
	json_t *us = json_object_get(o, "max_runtime_us");
	if (json_is_integer(us)) {
		json_object_set_new(o, "max_runtime_hours", render_hours(json_integer_value(us)));
		json_object_del(o, "max_runtime_us");
	}
	json_object_foreach_safe(o, tmp, k, v) {
		size_t n = strlen(k);
		bool is_time = strcmp(k, "period_start") == 0 || (n > 3 && strcmp(k + n - 3, "_at") == 0);
		if (is_time && json_is_integer(v))
			json_object_set_new(o, k, render_time(json_integer_value(v)));
	}
	return json_incref(o);
}

/* Stored record text of an entry in the API's shape (null when there is none). */
static json_t *audit_record(const struct audit_entry *e, const char *text, const char *currency)
{
	if (text == NULL)
		return json_null();
	json_t *o = render_json_text(text), *v = NULL;
	if (!json_is_object(o))
		return o;
	if (strcmp(e->object_type, "team") == 0)
		v = audit_team(o, currency);
	else if (strcmp(e->object_type, "gpu_type") == 0)
		v = audit_gpu_type(o, currency);
	else if (strcmp(e->object_type, "allocation") == 0)
		v = audit_allocation(o, e->at);
	else if (strcmp(e->object_type, "token") == 0)
		v = audit_token(o);
	if (v == NULL)
		v = audit_as_stored(o);
	json_decref(o);
	return v;
}

static int add_entry(void *ctx, const struct audit_entry *e)
{
	struct req *r = ((struct query_page *)ctx)->r;
	json_t *v = json_pack("{s:I, s:o, s:{s:s, s:s}, s:s, s:s, s:s, s:s?, s:o, s:o}", "seq",
			      (json_int_t)e->seq, "at", render_time(e->at), "actor", "id",
			      e->actor_id, "name", e->actor_name, "action", e->action,
			      "object_type", e->object_type, "object_id", e->object_id, "team",
			      e->team[0] ? e->team : NULL, "before",
			      audit_record(e, e->before_json, r->app->currency), "after",
			      audit_record(e, e->after_json, r->app->currency));
	return query_page_add(ctx, v);
}

static int list_entries(struct store_conn *db, const void *f, struct query_page *pg, char *next)
{
	return store_conn_ops(db)->audit_find(db, f, add_entry, pg, next);
}

/* ---- GET /v1/audit ------------------------------------------------------ */

static void audit_filters(struct req *r, struct audit_filter *f, json_t *errors)
{
	query_list_args(r, errors, &f->team, &f->limit, &f->cursor);
	f->actor = req_query(r, "actor");
	/* Compared in SQL: never bytes PostgreSQL refuses as text (not UTF-8). */
	json_t *utf8 = f->actor ? json_string(f->actor) : NULL;
	if (f->actor != NULL &&
	    (utf8 == NULL || f->actor[0] == '\0' || strlen(f->actor) >= STORE_NAME_LEN))
		jsonv_error(errors, "actor", "must be a token id or name of 1 to %d bytes of UTF-8",
			    STORE_NAME_LEN - 1);
	json_decref(utf8);
	f->action = req_query(r, "action");
	if (f->action != NULL) {
		size_t i = 0;
		while (i < AUDIT_NACTIONS && strcmp(audit_actions[i], f->action) != 0)
			i++;
		if (i == AUDIT_NACTIONS) {
			char list[1024] = ""; /* every action, ~420 bytes */
			for (i = 0; i < AUDIT_NACTIONS; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 i ? ", " : "", audit_actions[i]);
			jsonv_error(errors, "action", "must be one of %s", list);
		}
	}
	int has_since = query_time(r, "since", &f->since, errors);
	int has_until = query_time(r, "until", &f->until, errors);
	if (has_since == 1 && has_until == 1 && f->until <= f->since)
		jsonv_error(errors, "until", "must be after since");
}

void api_audit_list(struct req *r)
{
	json_t *errors = json_array();
	struct audit_filter f;
	memset(&f, 0, sizeof(f));
	audit_filters(r, &f, errors);
	query_list_page(r, errors, NULL, NULL, NULL, list_entries, &f, "cannot read the audit log");
}
