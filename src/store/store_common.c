/*
 * store_common.c - the backend-independent parts of the store backends
 * (declared in store_int.h): audit renderings of records, the cost accumulator with its group-by and per-day rules, and
 * THE per-day split.  Both store_sqlite.c and store_pg.c call these, so the
 * two backends give the same bytes for the same data.
 *
 * It must never run SQL, touch a connection or a transaction, keep state
 * between calls, or use floating point money.
 */
#include "store/store_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cost.h"
#include "core/err.h"
#include "core/ledger.h"
#include "core/lifecycle.h"
#include "core/money.h"
#include "core/period.h"
#include "core/timeutil.h"
#include "util/jsonw.h"
#include "util/util.h"

int64_t store_day_ceil(int64_t t)
{
	int64_t d = time_day_start(t);

	return d == t ? d : d + STORE_DAY;
}

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

json_t *store_json_refusal(const void *p)
{
	char *text = store_refusal_json_text(p);
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	free(text);
	return j;
}

json_t *store_json_alloc(const void *p)
{
	char *text = store_alloc_json_text(p);
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	free(text);
	return j;
}

const char *store_alloc_unreadable(const struct allocation *a)
{
	json_t *j;
	bool ok;

	if (a->labels_json[0] == '\0') /* row_alloc: a text did not fit */
		return "labels_json or purpose does not fit its field";
	j = json_loads(a->labels_json, 0, NULL);
	ok = json_is_object(j);
	json_decref(j);
	if (!ok)
		return "labels_json is not a JSON object";
	j = json_stringn(a->purpose, strlen(a->purpose)); /* NULL for invalid UTF-8 */
	ok = j != NULL;
	json_decref(j);
	return ok ? NULL : "purpose is not UTF-8";
}

void store_alloc_blank_unreadable(struct allocation *a)
{
	json_t *j = json_loads(a->labels_json, 0, NULL);

	if (!json_is_object(j))
		snprintf(a->labels_json, sizeof(a->labels_json), "{}");
	json_decref(j);
	j = json_stringn(a->purpose, strlen(a->purpose));
	if (!j)
		a->purpose[0] = '\0';
	json_decref(j);
}

/* Compact JSON text of j (consumed); NULL j gives NULL text. */
/* Compact JSON text of j (consumed) into *out (owned by the caller); !want gives NULL. */
static int store_json_take_text(json_t *j, bool want, char **out)
{
	char *s;

	if (!want) {
		*out = NULL;
		return 0;
	}
	if (!j)
		return ERR_NOMEM;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return ERR_NOMEM;
	*out = s;
	return 0;
}


int store_audit_render(json_t *(*fn)(const void *), const void *before, const void *after,
		       char **b, char **a)
{
	int rc = store_json_take_text(before ? fn(before) : NULL, before != NULL, b);

	if (rc == 0)
		rc = store_json_take_text(after ? fn(after) : NULL, after != NULL, a);
	return rc;
}

/* ---- allocate ---------------------------------------------------------- */

/* ---- budget period changes --------------------------------------------- */

/* Inserts (ps, delta) in order (room for one more), or adds to ps's entry. */
static void period_delta_put(struct store_period_plan *p, int64_t ps, int64_t delta)
{
	size_t i = 0;

	while (i < p->n && p->d[i].ps < ps)
		i++;
	if (i < p->n && p->d[i].ps == ps) {
		p->d[i].delta += delta;
		return;
	}
	memmove(&p->d[i + 1], &p->d[i], (p->n - i) * sizeof(*p->d));
	p->d[i].ps = ps;
	p->d[i].delta = delta;
	p->n++;
}

int store_period_plan_leave(struct store_period_plan *p, int64_t ps, int64_t sum)
{
	if (p->n + 2 > p->cap) { /* room for this one and the arrival */
		size_t ncap = p->cap ? p->cap * 2 : 8;
		struct store_period_delta *nd = realloc(p->d, ncap * sizeof(*nd));
		if (!nd)
			return ERR_NOMEM;
		p->d = nd;
		p->cap = ncap;
	}
	if (__builtin_add_overflow(p->total, sum, &p->total))
		return ERR_OVERFLOW;
	period_delta_put(p, ps, -sum);
	return 0;
}

void store_period_plan_arrive(struct store_period_plan *p, int64_t ps)
{
	if (p->n > 0)
		period_delta_put(p, ps, p->total);
}

/* ---- costs ------------------------------------------------------------- */

/* The row of key in acc (inserted zeroed when missing). */
static int store_cost_acc_row(struct store_cost_acc *acc, const char *key, struct cost_row **out)
{
	size_t lo = 0, hi = acc->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(acc->rows[mid].key, key);
		if (cmp == 0) {
			*out = &acc->rows[mid];
			return 0;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (acc->n == acc->cap) {
		size_t ncap = acc->cap ? acc->cap * 2 : 16;
		struct cost_row *nr = realloc(acc->rows, ncap * sizeof(*nr));
		if (!nr)
			return ERR_NOMEM;
		acc->rows = nr;
		acc->cap = ncap;
	}
	memmove(&acc->rows[lo + 1], &acc->rows[lo], (acc->n - lo) * sizeof(*acc->rows));
	memset(&acc->rows[lo], 0, sizeof(*acc->rows));
	snprintf(acc->rows[lo].key, sizeof(acc->rows[lo].key), "%s", key);
	acc->n++;
	*out = &acc->rows[lo];
	return 0;
}

int store_cost_acc_add(struct store_cost_acc *acc, const char *key, int64_t spent,
		       int64_t accrued, int64_t reserved, int64_t gpu_mh)
{
	struct cost_row *r = NULL;
	int rc = store_cost_acc_row(acc, key, &r);

	if (rc != 0)
		return rc;
	/* 128-bit sums of int64 parts: 2^63 rows would be needed to overflow. */
	if (__builtin_add_overflow(r->spent, (store_sum_t)spent, &r->spent) ||
	    __builtin_add_overflow(r->accrued, (store_sum_t)accrued, &r->accrued) ||
	    __builtin_add_overflow(r->reserved, (store_sum_t)reserved, &r->reserved) ||
	    __builtin_add_overflow(r->gpu_microhours, (store_sum_t)gpu_mh, &r->gpu_microhours))
		return ERR_OVERFLOW;
	return 0;
}

/* GPU micro-hours used over `secs` seconds, capped at the max runtime. */
/* GPU micro-hours used over `secs` seconds, capped at the max runtime. */
static int store_used_microhours(const struct allocation *a, int64_t secs, int64_t *out)
{
	int64_t us = store_min64(store_max64(secs, 0) * USEC_PER_SEC, a->max_runtime_us);

	return cost_gpu_microhours(a->gpu_count, us, out);
}

/* THE per-day split (see store_int.h); the last day takes the remainder. */
int store_split_days(int64_t us, int64_t ue, int64_t money, int64_t gpu_mh, store_split_cb cb,
		     void *ctx)
{
	int64_t span = ue - us, given_m = 0, given_g = 0;

	if (span <= 0)
		return cb(ctx, time_day_start(us), money, gpu_mh);
	for (int64_t d = time_day_start(us); d < ue; d += STORE_DAY) {
		int64_t a = store_max64(d, us), b = store_min64(d + STORE_DAY, ue), pm, pg;
		int rc;

		if (b >= ue) {
			pm = money - given_m;
			pg = gpu_mh - given_g;
		} else {
			pm = (int64_t)((__int128)money * (b - a) / span);
			pg = (int64_t)((__int128)gpu_mh * (b - a) / span);
		}
		given_m += pm;
		given_g += pg;
		rc = cb(ctx, d, pm, pg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

struct day_ctx {
	struct store_cost_acc *acc;
	const struct cost_query *q;
	const struct allocation *a;
	bool accrued;
};

static int day_part(void *ctx, int64_t d, int64_t pm, int64_t pg)
{
	struct day_ctx *dc = ctx;
	char key[STORE_ID_LEN * 2];

	if (d + STORE_DAY <= dc->q->from || d >= dc->q->to)
		return 0;
	store_cost_group_key(dc->q, d, dc->a->team, dc->a->project, dc->a->gpu_type, key,
			     sizeof(key));
	return store_cost_acc_add(dc->acc, key, dc->accrued ? 0 : pm, dc->accrued ? pm : 0, 0, pg);
}

/* A completed allocation's billed end and GPU micro-hours. */
int store_completed_use(const struct allocation *a, int64_t *ue, int64_t *gpu_mh)
{
	int64_t max_s = (a->max_runtime_us + USEC_PER_SEC - 1) / USEC_PER_SEC;

	*ue = store_min64(a->ended_at, a->started_at + max_s);
	return store_used_microhours(a, a->ended_at - a->started_at, gpu_mh);
}

int store_running_use(const struct allocation *a, int64_t now, int64_t *ue, int64_t *money,
		      int64_t *gpu_mh)
{
	int64_t max_s = (a->max_runtime_us + USEC_PER_SEC - 1) / USEC_PER_SEC;
	int rc = ledger_accrued(a->price_micros, a->gpu_count, a->max_runtime_us, a->started_at,
				now, money);

	*ue = store_min64(store_max64(now, a->started_at), a->started_at + max_s);
	return rc == 0 ? store_used_microhours(a, now - a->started_at, gpu_mh) : rc;
}

int store_cost_by_use(struct store_cost_acc *acc, const struct cost_query *q,
		      const struct allocation *a)
{
	struct day_ctx dc = {acc, q, a, a->status == ALLOC_RUNNING};
	int64_t money = 0, gpu_mh = 0, ue = 0;
	int rc;

	/* Reserved money is a promise, not a use: it stays at the approval time. */
	if ((a->status == ALLOC_APPROVED || a->status == ALLOC_RUNNING) &&
	    a->approved_at >= q->from && a->approved_at < q->to) {
		char key[STORE_ID_LEN * 2];
		store_cost_group_key(q, a->approved_at, a->team, a->project, a->gpu_type, key,
				     sizeof(key));
		rc = store_cost_acc_add(acc, key, 0, 0, a->estimated_micros, 0);
		if (rc != 0)
			return rc;
	}
	if (a->status == ALLOC_COMPLETED) {
		rc = store_completed_use(a, &ue, &gpu_mh);
		money = a->actual_micros;
	} else if (a->status == ALLOC_RUNNING && !q->exclude_running) {
		rc = store_running_use(a, q->now, &ue, &money, &gpu_mh);
	} else {
		return 0;
	}
	return rc == 0 ? store_split_days(a->started_at, ue, money, gpu_mh, day_part, &dc) : rc;
}

int store_cost_by_key(struct store_cost_acc *acc, const struct cost_query *q,
		      const struct allocation *a)
{
	char key[STORE_ID_LEN * 2];
	int64_t spent = 0, accrued = 0, reserved = 0, gpu_mh = 0, ue = 0;
	int rc = 0;

	switch (a->status) {
	case ALLOC_COMPLETED:
		spent = a->actual_micros;
		rc = store_used_microhours(a, a->ended_at - a->started_at, &gpu_mh);
		break;
	case ALLOC_RUNNING:
		reserved = a->estimated_micros;
		if (!q->exclude_running)
			rc = store_running_use(a, q->now, &ue, &accrued, &gpu_mh);
		break;
	case ALLOC_APPROVED:
		reserved = a->estimated_micros;
		break;
	default:
		return 0; /* cancelled and expired cost nothing */
	}
	if (rc != 0)
		return rc;
	store_cost_group_key(q, a->approved_at, a->team, a->project, a->gpu_type, key, sizeof(key));
	return store_cost_acc_add(acc, key, spent, accrued, reserved, gpu_mh);
}


/* The group key of a cost row: rollup rows and the scans spell it alike. */
void store_cost_group_key(const struct cost_query *q, int64_t t, const char *team,
			  const char *project, const char *gpu, char *key, size_t len)
{
	char date[16];

	if (q->group == COST_BY_TEAM)
		snprintf(key, len, "%s", team);
	else if (q->group == COST_BY_PROJECT)
		snprintf(key, len, "%s/%s", team, project);
	else if (q->group == COST_BY_GPU_TYPE)
		snprintf(key, len, "%s", gpu);
	else {
		time_format_date(t, date); /* YYYY-MM-DD; a month key is its first 7 */
		snprintf(key, len, "%.*s", q->group == COST_BY_MONTH ? 7 : 10, date);
	}
}


int store_usage_part(void *ctx, int64_t day, int64_t money, int64_t gpu_mh)
{
	struct store_usage_ctx *u = ctx;

	if (day + STORE_DAY <= u->q->from || day >= u->q->to)
		return 0;
	u->row.day = day;
	u->row.cost = money;
	u->row.gpu_microhours = gpu_mh;
	if (u->cb(u->ctx, &u->row) != 0) {
		u->stopped = true;
		return 1;
	}
	return 0;
}

int store_retire_rule(int64_t retired, bool names_retired, bool only_retired, int64_t to,
		      int64_t *merged)
{
	*merged = !names_retired ? retired : to == 0 ? 0 : retired ? retired : to;
	if (!retired)
		return 0;
	if (only_retired && to != 0)
		return 1;
	return names_retired && to == 0 ? 0 : ERR_CONFLICT;
}

const char *store_retire_action(const char *type, bool exists, int64_t before, int64_t after,
				char *buf, size_t len)
{
	const char *verb = !exists ? "create"
			   : !before && after ? "retire"
			   : before && !after ? "reactivate"
					      : "update";

	snprintf(buf, len, "%s.%s", type, verb);
	return buf;
}

json_t *store_json_time(int64_t t)
{
	char buf[TIME_FMT_LEN];

	if (t == 0)
		return json_null();
	time_format_rfc3339(t, buf);
	return json_string(buf);
}
