/*
 * store_int.h - private helpers shared by the store backends (store_sqlite.c,
 * store_pg.c, ops_*.c), implemented in store_common.c: the
 * JSON renderings of records for audit rows and the list cursors.
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

/* Reports that a connection could not be opened (store_set_conn_fail_log). */
void store_conn_failed(const char *why);

/* An instant for an audit row: RFC 3339 text, or JSON null for 0 (never set). */
json_t *store_json_time(int64_t t);

#endif
