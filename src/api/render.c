/*
 * render.c - store records to JSON, in one place so every endpoint prints a
 * resource the same way.  Money is a decimal string, times RFC 3339 UTC.
 */
#include <stdio.h>

#include "api/api.h"
#include "core/cost.h"
#include "core/ledger.h"
#include "core/money.h"
#include "core/timeutil.h"

json_t *render_money(int64_t micros)
{
	char buf[MONEY_FMT_LEN];
	if (money_format(micros, buf, sizeof(buf)) < 0)
		return json_null();
	return json_string(buf);
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

json_t *render_gpu_type(const struct gpu_type *g, const char *currency)
{
	int64_t free_gpus = g->capacity > g->allocated ? g->capacity - g->allocated : 0;
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "id", g->id, "name",
			 g->name, "price_per_gpu_hour", render_money(g->price_micros), "currency",
			 currency, "price_date", g->price_date, "price_source", g->price_source,
			 "capacity", (json_int_t)g->capacity, "allocated", (json_int_t)g->allocated,
			 "available", (json_int_t)free_gpus, "updated_at", render_time(g->updated_at));
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
	return json_pack("{s:s, s:s, s:{s:o, s:s}, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
			 "s:o, s:o, s:I}",
			 "id", t->id, "display_name", t->display_name, "budget", "amount",
			 render_money(t->budget_micros), "period", period_kind_name(t->period),
			 "alert_thresholds", render_json_text(t->thresholds_json), "currency", currency,
			 "period_start", render_time(l->period_start), "period_end",
			 render_time(l->period_end), "spent", render_money(l->spent), "reserved",
			 render_money(l->reserved), "accrued", render_money(l->accrued), "available",
			 render_money(available), "burn_rate_per_day", render_money(burn),
			 "forecast_period_end", render_money(forecast), "budget_exhausted_at",
			 render_time(exhaust), "running_allocations", (json_int_t)l->running);
}

json_t *render_allocation(const struct allocation *a, int64_t now)
{
	int64_t accrued = 0;
	if (a->status == ALLOC_RUNNING &&
	    ledger_accrued(a->price_micros, a->gpu_count, a->max_runtime_us, a->started_at, now,
			   &accrued) != 0)
		accrued = a->estimated_micros;
	if (a->status == ALLOC_COMPLETED)
		accrued = a->actual_micros;
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o, "
			 "s:o, s:o, s:o, s:o, s:s}",
			 "id", a->id, "team", a->team, "project", a->project, "gpu_type", a->gpu_type,
			 "gpu_count", (json_int_t)a->gpu_count, "max_runtime_hours",
			 render_hours(a->max_runtime_us), "purpose", a->purpose, "labels",
			 render_json_text(a->labels_json), "status", alloc_status_name(a->status),
			 "price_per_gpu_hour", render_money(a->price_micros), "estimated_cost",
			 render_money(a->estimated_micros), "actual_cost",
			 a->actual_micros >= 0 && a->status == ALLOC_COMPLETED
				 ? render_money(a->actual_micros)
				 : json_null(),
			 "accrued_cost", render_money(accrued), "approved_at",
			 render_time(a->approved_at), "expires_at", render_time(a->expires_at),
			 "started_at", render_time(a->started_at), "ended_at", render_time(a->ended_at),
			 "period_start", render_time(a->period_start), "created_by", a->created_by);
}

json_t *render_token(const struct token *t)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "id", t->id, "name", t->name, "role",
			 role_name(t->role), "teams", render_json_text(t->teams_json), "created_at",
			 render_time(t->created_at), "revoked_at", render_time(t->revoked_at));
}
