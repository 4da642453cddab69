/*
 * store_int.h - private helpers shared by the store backends (store_sqlite.c,
 * store_pg.c, ops_*.c), implemented in store_common.c: the
 * JSON renderings of records for audit rows, the cost accumulator and its
 * group-by rules, THE per-day split, and small pure helpers.
 *
 * Everything here is backend-independent: no SQL, no connection, no
 * transaction.  It must never be included outside src/store/ (the public
 * interface is store.h) and must never hold state of its own.
 */
#ifndef PLINTH_STORE_INT_H
#define PLINTH_STORE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* Seconds in a UTC day. */
#define STORE_DAY 86400

static inline int64_t store_min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static inline int64_t store_max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* The first day start at or after t. */
int64_t store_day_ceil(int64_t t);

/* ---- audit ------------------------------------------------------------- */

/* v as money text in buf (MONEY_FMT_LEN bytes; plain digits if unformattable). */
const char *store_fmt_money(int64_t v, char *buf);

/* Audit renderings of a struct token / gpu_type / team / allocation (p). */
json_t *store_json_token(const void *p);
json_t *store_json_gpu(const void *p);
json_t *store_json_team(const void *p);
json_t *store_json_alloc(const void *p);
/* The same as compact JSON text (caller frees), or NULL without memory. */
char *store_alloc_json_text(const struct allocation *a);

/*
 * The audit record of a refused request ("allocation.refuse"): what was
 * asked, why not (reason "budget" or "capacity", rc ERR_BUDGET or
 * ERR_CAPACITY) and the figures of the decision.  No allocation exists, so
 * the row has no object id.
 */
struct store_refusal {
	const struct alloc_request *r;
	const struct alloc_outcome *o;
	int rc;
};
json_t *store_json_refusal(const void *p); /* p: struct store_refusal */
char *store_refusal_json_text(const struct store_refusal *f);

/*
 * Why allocation a (as read from a row) cannot be rendered as JSON: labels
 * that are not a JSON object, a purpose that is not UTF-8; NULL when it can.
 * Rows written by this program always can; others are store_bad_row()s.
 */
const char *store_alloc_unreadable(const struct allocation *a);
/* Why row_alloc refused a row (store_bad_row's text). */
#define STORE_BAD_ROW_TEXT "a text does not fit its field or the status is unknown"

/* Blanks what store_alloc_unreadable rejects ("{}" labels, "" purpose) so a
 * bad row's money can still be released or reported. */
void store_alloc_blank_unreadable(struct allocation *a);

/*
 * The before/after texts of an audit row, records rendered by fn (a NULL
 * record gives NULL text) into *b and *a, owned by the caller (also on error).
 */
int store_audit_render(json_t *(*fn)(const void *), const void *before, const void *after,
		       char **b, char **a);

/* ---- budget period changes --------------------------------------------- */

/*
 * A team's period kind changed: its live (approved, running) allocations of
 * other periods move into the new current period, so the new period's check
 * counts them (issue 11, finding 5).  One step per period row, in the global
 * lock order (period_start ascending).
 */
struct store_period_delta {
	int64_t ps;
	int64_t delta; /* added to reserved */
};

/* The period rows a change touches, ascending; d owned (free) by the caller. */
struct store_period_plan {
	struct store_period_delta *d;
	size_t n, cap;
	int64_t total; /* live reservations moving */
};

/* Another period's live reservations `sum` leave its row ps. 0, ERR_NOMEM, ERR_OVERFLOW. */
int store_period_plan_leave(struct store_period_plan *p, int64_t ps, int64_t sum);
/* They all arrive in the new current period's row ps (no-op when none left). */
void store_period_plan_arrive(struct store_period_plan *p, int64_t ps);

/* ---- retirement (teams, GPU types) ------------------------------------- */

/*
 * The rule of a write to a record retired at `retired` (0: active) that sets
 * retired_at to `to` (ignored unless names_retired): 0 = write it, 1 = a
 * retire of a retired record (nothing to do), ERR_CONFLICT = a change of a
 * retired record that does not reactivate it.  *merged gets retired_at after
 * the write (a retired record keeps its first instant).
 */
int store_retire_rule(int64_t retired, bool names_retired, bool only_retired, int64_t to,
		      int64_t *merged);

/* An instant for an audit row: RFC 3339 text, or JSON null for 0 (never set). */
json_t *store_json_time(int64_t t);

/* The audit action of such a write: "<type>.create", ".retire", ".reactivate"
 * or ".update" into buf (len bytes). */
const char *store_retire_action(const char *type, bool exists, int64_t before, int64_t after,
				char *buf, size_t len);

/* ---- costs ------------------------------------------------------------- */

/* Rows kept sorted by key; binary search + insert.  rows owned by the caller. */
struct store_cost_acc {
	struct cost_row *rows;
	size_t n, cap;
};

/* Adds to the row of key (128-bit totals); ERR_OVERFLOW when one would overflow. */
int store_cost_acc_add(struct store_cost_acc *acc, const char *key, int64_t spent,
		       int64_t accrued, int64_t reserved, int64_t gpu_mh);

/* A completed allocation's billed end and GPU micro-hours. */
int store_completed_use(const struct allocation *a, int64_t *ue, int64_t *gpu_mh);

/* Receives one UTC day's part of a split: non-zero stops the split. */
typedef int (*store_split_cb)(void *ctx, int64_t day, int64_t money, int64_t gpu_mh);

/*
 * THE per-day split, shared by day totals, the usage rollup and the FOCUS
 * export: money and GPU-hours used over [us, ue) are split across UTC days
 * by seconds; the last day takes the remainder so the parts sum exactly to
 * the totals.  An empty span puts everything on the day of us.
 */
int store_split_days(int64_t us, int64_t ue, int64_t money, int64_t gpu_mh, store_split_cb cb,
		     void *ctx);

/* A running allocation's accrued cost at now, the end of its use so far and
 * its GPU micro-hours (the daemon's accrual formula, capped at max runtime). */
int store_running_use(const struct allocation *a, int64_t now, int64_t *ue, int64_t *money,
		      int64_t *gpu_mh);

/* The group key of a cost row by q->group: team, team/project, GPU type, or
 * the UTC day / month ("YYYY-MM-DD" / "YYYY-MM") of instant t. */
void store_cost_group_key(const struct cost_query *q, int64_t t, const char *team,
			  const char *project, const char *gpu, char *key, size_t len);

/* COST_VIEW_USE: adds allocation a's use, split by UTC day, to the keys of
 * the days overlapping [from, to); its reservation at its approval time. */
int store_cost_by_use(struct store_cost_acc *acc, const struct cost_query *q,
		      const struct allocation *a);

/* COST_VIEW_BUDGET: adds allocation a to acc under the key of its approval
 * time (cancelled/expired cost nothing). */
int store_cost_by_key(struct store_cost_acc *acc, const struct cost_query *q,
		      const struct allocation *a);

/* The FOCUS export's per-day usage rows: a store_split_days callback. */
struct store_usage_ctx {
	const struct cost_query *q;
	struct usage_row row;
	store_usage_cb cb;
	void *ctx;
	bool stopped;
};

int store_usage_part(void *ctx, int64_t day, int64_t money, int64_t gpu_mh);

#endif
