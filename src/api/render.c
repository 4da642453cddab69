/*
 * render.c - store records to JSON, in one place so every endpoint prints a
 * resource the same way.  Money is a decimal string, times RFC 3339 UTC.
 */
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "core/cost.h"
#include "core/ledger.h"
#include "core/money.h"
#include "core/timeutil.h"
#include "util/jsonw.h"

json_t *render_money(int64_t micros)
{
	char buf[MONEY_FMT_LEN];
	if (money_format(micros, buf, sizeof(buf)) < 0)
		return json_null();
	return json_string(buf);
}

void render_refusal_detail(bool budget, int64_t estimated, int64_t available, int64_t gpu_count,
			   int64_t gpus_available, const char *currency, char *buf, size_t len)
{
	char need[MONEY_FMT_LEN], avail[MONEY_FMT_LEN];
	if (!budget) {
		snprintf(buf, len, "%lld GPUs requested, %lld free", (long long)gpu_count,
			 (long long)gpus_available);
		return;
	}
	/* MONEY_FMT_LEN holds any int64 amount: these cannot fail. */
	money_format_round(estimated, 2, need, sizeof(need));
	money_format_round(available, 2, avail, sizeof(avail));
	snprintf(buf, len, "estimated cost %s %s exceeds the %s %s available", need, currency, avail,
		 currency);
}

json_t *render_money_sum(store_sum_t micros)
{
	if (micros >= INT64_MIN && micros <= INT64_MAX)
		return render_money((int64_t)micros);
	/* Beyond int64: the same text (units, '.', 2 to 6 decimals), digit by digit. */
	char buf[64];
	size_t n = sizeof(buf);
	unsigned __int128 mag = micros < 0 ? -(unsigned __int128)micros : (unsigned __int128)micros;
	unsigned __int128 units = mag / MONEY_MICROS_PER_UNIT;
	int64_t frac = (int64_t)(mag % MONEY_MICROS_PER_UNIT);
	int nf = 6;
	while (nf > 2 && frac % 10 == 0) {
		frac /= 10;
		nf--;
	}
	buf[--n] = '\0';
	for (int i = 0; i < nf; i++, frac /= 10)
		buf[--n] = (char)('0' + frac % 10);
	buf[--n] = '.';
	do {
		buf[--n] = (char)('0' + (int)(units % 10));
		units /= 10;
	} while (units != 0);
	if (micros < 0)
		buf[--n] = '-';
	return json_string(buf + n);
}

json_t *render_time(int64_t t)
{
	if (t == 0)
		return json_null();
	char buf[TIME_FMT_LEN];
	time_format_rfc3339(t, buf);
	return json_string(buf);
}

json_t *render_json_text(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
	return v ? v : json_null();
}

/* A duration in whole microseconds as hours, for display only. */
json_t *render_hours(int64_t us)
{
	int64_t uh = us / USEC_PER_MICROHOUR;
	if (uh % 1000000 == 0)
		return json_integer(uh / 1000000);
	return json_real((double)uh / 1e6);
}

void render_hours_text(int64_t us, char *buf, size_t len)
{
	int64_t uh = us / USEC_PER_MICROHOUR; /* whole micro-hours: rounded down */
	int64_t frac = uh % 1000000;
	int nf = 6;

	if (frac == 0) {
		snprintf(buf, len, "%lld", (long long)(uh / 1000000));
		return;
	}
	while (frac % 10 == 0) {
		frac /= 10;
		nf--;
	}
	snprintf(buf, len, "%lld.%0*lld", (long long)(uh / 1000000), nf, (long long)frac);
}

int render_suggest(json_t *v, const struct alloc_suggest *s)
{
	int rc = 0;

	if (s->budget) {
		char hours[32];

		render_hours_text(s->max_runtime_us, hours, sizeof(hours));
		rc |= json_object_set_new(v, "max_gpus_that_fit", json_integer(s->max_gpus));
		rc |= json_object_set_new(v, "max_hours_that_fit", json_string(hours));
		rc |= json_object_set_new(v, "budget_renews_at", render_time(s->renews_at));
		json_t *admins = json_loads(s->admins_json, 0, NULL);
		rc |= json_object_set_new(v, "team_admins", json_is_array(admins) ? admins : json_array());
		if (admins && !json_is_array(admins))
			json_decref(admins);
	}
	if (s->nfree > 0) {
		json_t *a = json_array();

		for (int i = 0; a && i < s->nfree; i++)
			rc |= json_array_append_new(
				a, json_pack("{s:s, s:s, s:I, s:o}", "id", s->free[i].id, "name",
					     s->free[i].name, "free_gpus", (json_int_t)s->free[i].free_gpus,
					     "price_per_gpu_hour", render_money(s->free[i].price_micros)));
		rc |= json_object_set_new(v, "free_gpu_types", a);
		if (s->ntypes > s->nfree)
			rc |= json_object_set_new(v, "free_gpu_types_more",
						  json_integer(s->ntypes - s->nfree));
	}
	if (s->nvalid > 0) {
		json_t *a = json_array();

		for (int i = 0; a && i < s->nvalid; i++)
			rc |= json_array_append_new(a, json_string(s->valid[i]));
		rc |= json_object_set_new(v, "valid_gpu_types", a);
		if (s->ntypes > s->nvalid)
			rc |= json_object_set_new(v, "valid_gpu_types_more",
						  json_integer(s->ntypes - s->nvalid));
	}
	return rc ? -1 : 0;
}

void render_valid_types_text(const struct alloc_suggest *s, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < s->nvalid && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", s->valid[i]);
	if (s->ntypes > s->nvalid && n < len)
		snprintf(buf + n, len - n, " and %d more", s->ntypes - s->nvalid);
}

json_t *render_gpu_type(const struct gpu_type *g, const char *currency)
{
	/* A retired type takes no new allocations: nothing of it is free. */
	int64_t free_gpus = g->capacity > g->allocated && !g->retired_at ? g->capacity - g->allocated : 0;
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o}", "id", g->id,
			 "name", g->name, "price_per_gpu_hour", render_money(g->price_micros),
			 "currency", currency, "price_date", g->price_date, "price_source",
			 g->price_source, "capacity", (json_int_t)g->capacity, "allocated",
			 (json_int_t)g->allocated, "available", (json_int_t)free_gpus, "updated_at",
			 render_time(g->updated_at), "retired_at", render_time(g->retired_at));
}

json_t *render_team_settings(const struct team *t, const char *currency)
{
	return json_pack("{s:s, s:s, s:{s:o, s:s}, s:o, s:o, s:o, s:o, s:s}", "id", t->id,
			 "display_name", t->display_name, "budget", "amount",
			 render_money(t->budget_micros), "period", period_kind_name(t->period),
			 "alert_thresholds", render_json_text(t->thresholds_json), "admins",
			 render_json_text(t->admins_json[0] ? t->admins_json : "[]"), "retired_at",
			 render_time(t->retired_at), "namespaces", store_json_list(t->namespaces),
			 "currency", currency);
}

json_t *render_team(const struct team *t, const struct team_ledger *l, int64_t now,
		    const char *currency, int64_t recent_used, int64_t window_s)
{
	int64_t committed = l->spent + l->reserved;
	int64_t available = t->budget_micros > committed ? t->budget_micros - committed : 0;
	int64_t burn = 0, forecast = 0, exhaust = 0;
	ledger_forecast_recent(l->period_start, l->period_end, now, t->budget_micros, l->spent,
			       l->accrued, l->reserved, recent_used, window_s, &burn, &forecast,
			       &exhaust);
	json_t *v = render_team_settings(t, currency);
	if (json_object_update_new(
		    v, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}",
				 "period_start", render_time(l->period_start), "period_end",
				 render_time(l->period_end), "spent", render_money(l->spent),
				 "reserved", render_money(l->reserved), "accrued",
				 render_money(l->accrued), "available", render_money(available),
				 "burn_rate_per_day", render_money(burn), "forecast_period_end",
				 render_money(forecast), "budget_exhausted_at", render_time(exhaust),
				 "running_allocations", (json_int_t)l->running)) != 0) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* A money member as a decimal string (null if it cannot be printed). */
static void jw_money(struct jsonw *w, const char *key, int64_t micros)
{
	char buf[MONEY_FMT_LEN];
	jw_str(w, key, money_format(micros, buf, sizeof(buf)) < 0 ? NULL : buf);
}

static void jw_time(struct jsonw *w, const char *key, int64_t t)
{
	char buf[TIME_FMT_LEN];
	if (t == 0) {
		jw_null(w, key);
		return;
	}
	time_format_rfc3339(t, buf);
	jw_str(w, key, buf);
}

/* The one definition of an allocation's JSON: written with jsonw because
 * POST /v1/allocations answers with it on the hot path. */
const char *render_alloc_managed_by(const struct allocation *a)
{
	json_t *labels = json_loads(a->labels_json, 0, NULL);
	bool job = json_is_string(json_object_get(labels, ALLOC_JOB_LABEL));
	json_decref(labels);
	return job ? "controller" : NULL;
}

static void render_allocation_w(struct jsonw *w, const struct allocation *a, int64_t now)
{
	int64_t accrued = 0;
	if (a->status == ALLOC_RUNNING &&
	    ledger_accrued(a->price_micros, a->gpu_count, a->max_runtime_us, a->started_at, now,
			   &accrued) != 0)
		accrued = a->estimated_micros;
	if (a->status == ALLOC_COMPLETED)
		accrued = a->actual_micros;
	jw_open(w, NULL);
	jw_str(w, "id", a->id);
	jw_str(w, "team", a->team);
	jw_str(w, "project", a->project);
	jw_str(w, "gpu_type", a->gpu_type);
	jw_int(w, "gpu_count", a->gpu_count);
	jw_fixed(w, "max_runtime_hours", a->max_runtime_us / USEC_PER_MICROHOUR, 6);
	jw_str(w, "purpose", a->purpose);
	jw_raw(w, "labels", a->labels_json[0] ? a->labels_json : NULL);
	jw_str(w, "status", alloc_status_name(a->status));
	jw_money(w, "price_per_gpu_hour", a->price_micros);
	jw_money(w, "estimated_cost", a->estimated_micros);
	if (a->actual_micros >= 0 && a->status == ALLOC_COMPLETED)
		jw_money(w, "actual_cost", a->actual_micros);
	else
		jw_null(w, "actual_cost");
	jw_money(w, "accrued_cost", accrued);
	jw_time(w, "approved_at", a->approved_at);
	jw_time(w, "expires_at", a->expires_at);
	jw_time(w, "started_at", a->started_at);
	jw_time(w, "ended_at", a->ended_at);
	jw_time(w, "period_start", a->period_start);
	jw_str(w, "created_by", a->created_by);
	jw_str(w, "managed_by", render_alloc_managed_by(a));
	jw_close(w);
}

char *render_allocation_text(const struct allocation *a, int64_t now, size_t *len)
{
	struct jsonw w;
	jw_init(&w);
	render_allocation_w(&w, a, now);
	return jw_finish(&w, len);
}

json_t *render_allocation(const struct allocation *a, int64_t now)
{
	char *text = render_allocation_text(a, now, NULL);
	json_t *v = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return v;
}

json_t *render_token(const struct token *t)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "id", t->id, "name", t->name,
			 "role", role_name(t->role), "teams", render_json_text(t->teams_json),
			 "created_at", render_time(t->created_at), "revoked_at",
			 render_time(t->revoked_at), "status", t->revoked_at ? "revoked" : "active");
}

json_t *render_job(const struct job *j)
{
	json_t *v;
	if (j->status != 0)
		v = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "id", j->id, "team", j->team,
			      "name", j->name, "state", j->status == 201 ? "created" : "failed",
			      "http_status", j->status, "outcome", render_json_text(j->body));
	else
		v = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "id", j->id, "team", j->team, "name",
			      j->name, "state", "in_progress", "allocation_id",
			      j->allocation_id[0] ? j->allocation_id : NULL);
	if (v != NULL && json_object_set_new(v, "created_at", render_time(j->created_at)) != 0) {
		json_decref(v);
		return NULL;
	}
	return v;
}
