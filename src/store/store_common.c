/*
 * store_common.c - the backend-independent parts of the store backends
 * (declared in store_int.h): audit renderings of records.  Both store_sqlite.c
 * and store_pg.c call these, so the two backends give the same bytes for the same data.
 *
 * It must never run SQL, touch a connection or a transaction, keep state
 * between calls, or use floating point money.
 */
#include "store/store_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/lifecycle.h"
#include "core/money.h"
#include "core/period.h"
#include "core/timeutil.h"
#include "util/jsonw.h"
#include "util/util.h"

/* ---- audit ------------------------------------------------------------- */

const char *store_fmt_money(int64_t v, char *buf)
{
	if (money_format(v, buf, MONEY_FMT_LEN) < 0)
		snprintf(buf, MONEY_FMT_LEN, "%lld", (long long)v);
	return buf;
}

/* JSON text stored in a record, embedded as JSON (or as a string if invalid). */
static json_t *store_json_text(const char *text)
{
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);

	if (!j)
		j = json_string(text);
	if (!j)
		j = json_null();
	return j;
}

json_t *store_json_list(const char *joined)
{
	json_t *a = json_array();
	const char *s = joined;

	while (a != NULL && *s != '\0') {
		size_t n = strcspn(s, ",");

		if (json_array_append_new(a, json_stringn(s, n)) != 0) {
			json_decref(a);
			return NULL;
		}
		s += n + (s[n] == ',');
	}
	return a;
}

json_t *store_json_token(const void *p)
{
	const struct token *t = p;

	/* Never the hash: it is not part of struct token on purpose. */
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I}", "id", t->id, "name", t->name, "role",
			 role_name(t->role), "teams", store_json_text(t->teams_json), "created_at",
			 (json_int_t)t->created_at, "revoked_at", (json_int_t)t->revoked_at);
}

json_t *store_json_gpu(const void *p)
{
	const struct gpu_type *g = p;
	char price[MONEY_FMT_LEN];

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", g->id, "name", g->name,
			 "price_per_gpu_hour", store_fmt_money(g->price_micros, price), "price_date",
			 g->price_date, "price_source", g->price_source, "capacity",
			 (json_int_t)g->capacity, "allocated", (json_int_t)g->allocated, "updated_at",
			 (json_int_t)g->updated_at);
}

json_t *store_json_team(const void *p)
{
	const struct team *t = p;
	char budget[MONEY_FMT_LEN];

	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:I}", "id", t->id, "display_name",
			 t->display_name, "budget", store_fmt_money(t->budget_micros, budget), "period",
			 period_kind_name(t->period), "alert_thresholds", store_json_text(t->thresholds_json),
			 "namespaces", store_json_list(t->namespaces),
			 "created_at", (json_int_t)t->created_at, "updated_at",
			 (json_int_t)t->updated_at);
}

/* Written with jsonw: the set-based PostgreSQL batch renders one per
 * approval.  labels_json is always compact JSON made by the API. */
char *store_alloc_json_text(const struct allocation *a)
{
	char price[MONEY_FMT_LEN], est[MONEY_FMT_LEN], actual[MONEY_FMT_LEN];
	struct jsonw w;

	jw_init(&w);
	jw_open(&w, NULL);
	jw_str(&w, "id", a->id);
	jw_str(&w, "team", a->team);
	jw_str(&w, "project", a->project);
	jw_str(&w, "gpu_type", a->gpu_type);
	jw_int(&w, "gpu_count", a->gpu_count);
	jw_int(&w, "max_runtime_us", a->max_runtime_us);
	jw_str(&w, "price_per_gpu_hour", store_fmt_money(a->price_micros, price));
	jw_str(&w, "estimated_cost", store_fmt_money(a->estimated_micros, est));
	jw_str(&w, "status", alloc_status_name(a->status));
	jw_str(&w, "purpose", a->purpose);
	jw_raw(&w, "labels", a->labels_json[0] ? a->labels_json : NULL);
	jw_str(&w, "created_by", a->created_by);
	jw_int(&w, "period_start", a->period_start);
	jw_int(&w, "approved_at", a->approved_at);
	jw_int(&w, "expires_at", a->expires_at);
	jw_int(&w, "started_at", a->started_at);
	jw_int(&w, "ended_at", a->ended_at);
	jw_str(&w, "actual_cost",
	       a->actual_micros < 0 ? NULL : store_fmt_money(a->actual_micros, actual));
	jw_close(&w);
	return jw_finish(&w, NULL);
}

char *store_refusal_json_text(const struct store_refusal *f)
{
	char est[MONEY_FMT_LEN], avail[MONEY_FMT_LEN];
	struct jsonw w;

	jw_init(&w);
	jw_open(&w, NULL);
	jw_str(&w, "team", f->r->team);
	jw_str(&w, "project", f->r->project);
	jw_str(&w, "gpu_type", f->r->gpu_type);
	jw_int(&w, "gpu_count", f->r->gpu_count);
	jw_int(&w, "max_runtime_us", f->r->max_runtime_us);
	jw_str(&w, "purpose", f->r->purpose);
	jw_raw(&w, "labels", f->r->labels_json[0] ? f->r->labels_json : "{}");
	jw_str(&w, "status", "refused");
	jw_str(&w, "reason", f->rc == ERR_BUDGET ? "budget" : "capacity");
	jw_str(&w, "estimated_cost", store_fmt_money(f->o->estimated, est));
	jw_str(&w, "available", store_fmt_money(f->o->available, avail));
	jw_int(&w, "gpus_available", f->o->gpus_available);
	jw_close(&w);
	return jw_finish(&w, NULL);
}

/* The JSON value of text (consumed; NULL without memory gives NULL). */
static json_t *json_of_text(char *text)
{
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	free(text);
	return j;
}

json_t *store_json_refusal(const void *p)
{
	return json_of_text(store_refusal_json_text(p));
}

json_t *store_json_alloc(const void *p)
{
	return json_of_text(store_alloc_json_text(p));
}

/* Labels that are a JSON object; a purpose that is UTF-8 (json_string refuses others). */
static bool alloc_labels_ok(const struct allocation *a)
{
	json_t *j = json_loads(a->labels_json, 0, NULL);
	bool ok = json_is_object(j);

	json_decref(j);
	return ok;
}

static bool alloc_purpose_ok(const struct allocation *a)
{
	json_t *j = json_string(a->purpose);

	json_decref(j);
	return j != NULL;
}

const char *store_alloc_unreadable(const struct allocation *a)
{
	if (a->labels_json[0] == '\0') /* db_row_alloc: a text did not fit */
		return "labels_json or purpose does not fit its field";
	if (!alloc_labels_ok(a))
		return "labels_json is not a JSON object";
	return alloc_purpose_ok(a) ? NULL : "purpose is not UTF-8";
}

void store_alloc_blank_unreadable(struct allocation *a)
{
	if (!alloc_labels_ok(a))
		snprintf(a->labels_json, sizeof(a->labels_json), "{}");
	if (!alloc_purpose_ok(a))
		a->purpose[0] = '\0';
}

/* The compact JSON text of record rec rendered by fn into *out (NULL without rec). */
static int audit_text(json_t *(*fn)(const void *), const void *rec, char **out)
{
	json_t *j = rec ? fn(rec) : NULL;

	*out = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return rec && !*out ? ERR_NOMEM : 0;
}

int store_audit_render(json_t *(*fn)(const void *), const void *before, const void *after,
		       char **b, char **a)
{
	int rc = audit_text(fn, before, b);

	return rc != 0 ? rc : audit_text(fn, after, a);
}

json_t *store_json_time(int64_t t)
{
	char buf[TIME_FMT_LEN];

	if (t == 0)
		return json_null();
	time_format_rfc3339(t, buf);
	return json_string(buf);
}
