/*
 * api_quotes.c - what a request would cost and whether it would be approved
 * now.  Reads only; the answer can change before an allocation is made, and
 * the allocation's own atomic check is what counts.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/cost.h"
#include "core/err.h"
#include "core/ledger.h"
#include "core/money.h"

void api_quote(struct req *r)
{
	struct alloc_request ar;
	struct team team;
	struct gpu_type gpu;
	struct team_ledger l;
	if (alloc_request_parse(r, true, &ar, &team, &gpu) != 0)
		return;
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_ledger(db, &team, r->now, &l);
	if (rc != 0) {
		reply_err(r, rc, "cannot read the team's ledger");
		return;
	}
	struct ledger_check c = {
		.budget = team.budget_micros,
		.spent = l.spent,
		.reserved = l.reserved,
		.capacity = gpu.capacity,
		.allocated = gpu.allocated,
		.gpu_count = ar.gpu_count,
	};
	rc = cost_compute(gpu.price_micros, ar.gpu_count, ar.max_runtime_us, &c.estimated);
	if (rc != 0) {
		json_t *errors = json_array();
		json_array_append_new(errors, json_pack("{s:s, s:s}", "field", "gpu_count", "message",
							"the estimated cost is too large"));
		reply_invalid(r, errors);
		return;
	}
	struct ledger_decision d;
	ledger_decide(&c, &d);
	json_t *reasons = json_array();
	char need[MONEY_FMT_LEN], avail[MONEY_FMT_LEN], line[200];
	/* For a person: to the cent (the members keep the exact amounts). */
	money_format_round(c.estimated, 2, need, sizeof(need));
	money_format_round(d.available, 2, avail, sizeof(avail));
	if (!d.budget_ok) {
		snprintf(line, sizeof(line), "budget: needs %s %s, %s %s available", need,
			 r->app->currency, avail, r->app->currency);
		json_array_append_new(reasons, json_string(line));
	}
	if (!d.capacity_ok) {
		snprintf(line, sizeof(line), "capacity: needs %lld GPUs of %s, %lld free",
			 (long long)ar.gpu_count, gpu.id, (long long)d.gpus_available);
		json_array_append_new(reasons, json_string(line));
	}
	/* Not approved: what would fit instead, as an allocation's refusal says it. */
	struct alloc_suggest s;
	memset(&s, 0, sizeof(s));
	if (!d.budget_ok) {
		s.budget = true;
		ledger_fit(&c, gpu.price_micros, ar.max_runtime_us, &s.max_gpus, &s.max_runtime_us);
		s.renews_at = l.period_end;
		snprintf(s.admins_json, sizeof(s.admins_json), "%s", store_team_admins_json(&team));
	}
	if (!d.capacity_ok && (rc = alloc_catalog_suggest(r, true, &s)) != 0) {
		json_decref(reasons);
		reply_err(r, rc, "cannot read the catalog");
		return;
	}
	json_t *v = json_pack("{s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:I, s:b, s:o}", "team", team.id,
			     "gpu_type", gpu.id, "gpu_count", (json_int_t)ar.gpu_count,
			     "max_runtime_hours", render_hours(ar.max_runtime_us),
			     "price_per_gpu_hour", render_money(gpu.price_micros), "estimated_cost",
			     render_money(c.estimated), "available", render_money(d.available),
			     "gpus_available", (json_int_t)d.gpus_available, "approved", d.approved,
			     "reasons", reasons);
	if (v != NULL && json_object_set_new(v, "currency", json_string(r->app->currency)) != 0) {
		json_decref(v);
		v = NULL;
	}
	if (v != NULL && render_suggest(v, &s) != 0) {
		json_decref(v);
		v = NULL;
	}
	if (v == NULL)
		reply_err(r, ERR_NOMEM, "cannot render the quote");
	else
		reply_json(r, 200, v);
}
