/*
 * api_export.c - GET /v1/costs/export?format=focus&month= (or from=&to=):
 * spend as CSV in the FinOps FOCUS (1.0) column layout, one row per
 * allocation per UTC day of use: completed ones at their actual cost and,
 * unless include_running=false, running ones at their cost so far.
 *
 * The rows come from the store's cost_usage op, which splits each
 * allocation across days with the very function that GET /v1/costs uses
 * by default (view=use), and the range and include_running are read by the
 * same query_cost_range, so the BilledCost column sums exactly to spent +
 * accrued of GET /v1/costs for the same query: one month, one number.
 * Money is printed from integer micros; no floating point.  Members see only
 * their teams.  It never changes anything.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/query.h"
#include "core/err.h"
#include "core/money.h"
#include "core/period.h"
#include "core/timeutil.h"
#include "http/jsonv.h"
#include "util/metrics.h"

#define EXPORT_MAX_BYTES ((size_t)512 * 1024 * 1024)

static const char *const focus_columns[] = {
	"BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
	"BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
	"ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity",
	"ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
	"InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingQuantity", "PricingUnit",
	"ProviderName", "PublisherName", "ResourceId", "ResourceName", "ResourceType",
	"ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName",
	"Tags", "x_AllocationId", "x_Team", "x_Project", "x_GpuType", "x_GpuCount",
	"x_ApprovedAt", "x_StartedAt", "x_EndedAt", "x_Status"};
#define NCOLUMNS (sizeof(focus_columns) / sizeof(focus_columns[0]))

struct csv {
	char *buf;
	size_t len, cap;
	int rc;
	const struct team *teams;
	size_t nteams;
	const char *currency;
};

/*
 * Appends one field, CSV-quoted (RFC 4180) when it holds a separator, a quote
 * or a line break.  Every text field that a spreadsheet would run as a
 * formula (first character =, +, -, @, tab or CR) gets a leading apostrophe
 * and quotes (OWASP CSV injection): team display names and purposes are
 * anyone's text.  Only the amounts and counts this file formats itself
 * (`number`) are written as they are, so a negative amount stays a number.
 */
static void csv_field(struct csv *c, const char *v, bool last, bool number)
{
	bool guard = !number && v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL;
	bool quote = guard || strpbrk(v, ",\"\r\n") != NULL;
	if (c->rc == 0 && quote)
		c->rc = metrics_appendf(&c->buf, &c->len, &c->cap, "\"");
	if (c->rc == 0 && guard)
		c->rc = metrics_appendf(&c->buf, &c->len, &c->cap, "'");
	for (const char *p = v; c->rc == 0 && *p != '\0'; p++) {
		const char *q = strchr(p, '"');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		c->rc = metrics_appendf(&c->buf, &c->len, &c->cap, "%.*s%s", (int)n, p, q ? "\"\"" : "");
		if (q == NULL)
			break;
		p = q;
	}
	if (c->rc == 0)
		c->rc = metrics_appendf(&c->buf, &c->len, &c->cap, "%s%s", quote ? "\"" : "",
					last ? "\r\n" : ",");
	if (c->rc == 0 && c->len > EXPORT_MAX_BYTES)
		c->rc = ERR_TOO_LARGE;
}

static const struct team *team_find(const struct csv *c, const char *id)
{
	for (size_t i = 0; i < c->nteams; i++)
		if (strcmp(c->teams[i].id, id) == 0)
			return &c->teams[i];
	return NULL;
}

static int add_usage(void *ctx, const struct usage_row *u)
{
	struct csv *c = ctx;
	const struct allocation *a = u->alloc;
	const struct team *t = team_find(c, a->team);
	char cost[MONEY_FMT_LEN], qty[MONEY_FMT_LEN], price[MONEY_FMT_LEN], count[24];
	char day0[TIME_FMT_LEN], day1[TIME_FMT_LEN], ps[TIME_FMT_LEN], pe[TIME_FMT_LEN];
	char appr[TIME_FMT_LEN], start[TIME_FMT_LEN], end[TIME_FMT_LEN];
	char desc[512], sub[STORE_ID_LEN * 2 + 2], skuprice[STORE_ID_LEN + MONEY_FMT_LEN + 2];
	int64_t pstart = 0, pend = 0;

	if (money_format(u->cost, cost, sizeof(cost)) < 0 ||
	    money_format(u->gpu_microhours, qty, sizeof(qty)) < 0 ||
	    money_format(a->price_micros, price, sizeof(price)) < 0)
		return c->rc = ERR_INVALID;
	/* The billing period is the invoice month of the day of use, whatever
	 * the team's budget period (x_ApprovedAt dates the budget charge). */
	period_bounds(PERIOD_MONTHLY, u->day, &pstart, &pend);
	time_format_rfc3339(u->day, day0);
	time_format_rfc3339(u->day + 86400, day1);
	time_format_rfc3339(pstart, ps);
	time_format_rfc3339(pend, pe);
	time_format_rfc3339(a->approved_at, appr);
	time_format_rfc3339(a->started_at, start);
	time_format_rfc3339(a->ended_at, end);
	if (u->running) /* not ended yet */
		end[0] = '\0';
	snprintf(count, sizeof(count), "%lld", (long long)a->gpu_count);
	snprintf(desc, sizeof(desc), "%lld x %s GPU for %s/%s%s", (long long)a->gpu_count,
		 a->gpu_type, a->team, a->project, u->running ? " (running: cost so far)" : "");
	snprintf(sub, sizeof(sub), "%s/%s", a->team, a->project);
	snprintf(skuprice, sizeof(skuprice), "%s@%s", a->gpu_type, price);
	/* ChargeClass is null (empty) for every row: FOCUS sets it to
	 * "Correction" only for a row correcting a previously invoiced billing
	 * period, and Plinth never re-bills one (docs/cost-visibility.md). */
	const char *v[NCOLUMNS] = {
		cost, a->team, t ? t->display_name : a->team, c->currency, pe, ps, "Usage", "",
		desc, day1, day0, qty, "GPU-Hours", cost, price, cost, "Plinth", cost, price, qty,
		"GPU-Hours", "Plinth", "Plinth", a->id, a->purpose, "GPU allocation",
		"AI and Machine Learning", "Plinth GPU allocations", a->gpu_type, skuprice, sub,
		a->project, a->labels_json[0] ? a->labels_json : "{}", a->id, a->team, a->project,
		a->gpu_type, count, appr, start, end, u->running ? "running" : "completed"};
	for (size_t i = 0; i < NCOLUMNS && c->rc == 0; i++)
		csv_field(c, v[i], i + 1 == NCOLUMNS, v[i] == cost || v[i] == qty || v[i] == price ||
						       v[i] == count);
	return c->rc;
}

static int collect_team(void *ctx, const struct team *t)
{
	struct csv *c = ctx;
	struct team *nt = realloc((void *)c->teams, (c->nteams + 1) * sizeof(*nt));
	if (nt == NULL)
		return ERR_NOMEM;
	nt[c->nteams++] = *t;
	c->teams = nt;
	return 0;
}

void api_costs_export(struct req *r)
{
	json_t *errors = json_array();
	struct cost_query q;
	struct csv c = {.currency = r->app->currency};
	char month[8], d0[16], d1[16];
	struct store_conn *db = NULL;
	const char *scope_buf[HTTP_MAX_TOKEN_TEAMS];
	int rc;

	memset(&q, 0, sizeof(q));
	q.now = r->now;
	q.group = COST_BY_DAY;
	query_cost_range(r, &q, month, errors);
	const char *fmt = req_query(r, "format");
	if (fmt != NULL && strcmp(fmt, "focus") != 0)
		jsonv_error(errors, "format", "must be focus");
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
	q.teams = auth_team_scope(r, scope_buf, &q.nteams);
	if (team != NULL) {
		q.teams = &team;
		q.nteams = 1;
	}

	for (size_t i = 0; i < NCOLUMNS && c.rc == 0; i++)
		csv_field(&c, focus_columns[i], i + 1 == NCOLUMNS, false);
	rc = c.rc;
	if (rc == 0)
		rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->team_list(db, q.teams, q.nteams, collect_team, &c);
	if (rc == 0)
		rc = store_conn_ops(db)->cost_usage(db, &q, add_usage, &c);
	if (rc == 0)
		rc = c.rc;
	free((void *)c.teams);
	if (rc != 0) {
		free(c.buf);
		reply_err(r, rc, rc == ERR_TOO_LARGE ? "the export is too large; ask for a shorter range"
						     : "cannot export costs");
		return;
	}
	/* A file name a browser or curl -OJ saves it under: the month, or the range. */
	time_format_date(q.from, d0);
	time_format_date(q.to, d1);
	if (month[0] != '\0')
		snprintf(r->disposition, sizeof(r->disposition),
			 "attachment; filename=\"plinth-focus-%s.csv\"", month);
	else
		snprintf(r->disposition, sizeof(r->disposition),
			 "attachment; filename=\"plinth-focus-%s_%s.csv\"", d0, d1);
	reply_take(r, 200, "text/csv; charset=utf-8; header=present", c.buf, c.len);
}
