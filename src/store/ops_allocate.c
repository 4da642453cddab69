/*
 * ops_allocate.c - THE allocation decision, called by both group-commit
 * engines (store_sqlite.c: one request after another in savepoints of a
 * batch; store_pg.c: a set-based batch decided in memory).  Each engine
 * reads the facts its own way; what is decided from them, and every word
 * of a refusal, is written here once.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

#include "core/cost.h"
#include "core/err.h"
#include "core/ledger.h"
#include "core/money.h"
#include "util/util.h"

/* The record of an approved allocation of r (a fresh id); 0 or util_random_id's error. */
static int approved_record(struct allocation *a, const struct alloc_request *r,
			   const struct alloc_facts *f, int64_t est, const char *created_by,
			   int64_t now, int64_t start_timeout_s)
{
	int rc = util_random_id("alloc_", 20, a->id, sizeof(a->id));

	if (rc != 0)
		return rc;
	snprintf(a->team, sizeof(a->team), "%s", f->team->id);
	snprintf(a->project, sizeof(a->project), "%s", r->project);
	snprintf(a->gpu_type, sizeof(a->gpu_type), "%s", f->gpu->id);
	a->gpu_count = r->gpu_count;
	a->max_runtime_us = r->max_runtime_us;
	a->price_micros = f->gpu->price_micros;
	a->estimated_micros = est;
	a->status = ALLOC_APPROVED;
	snprintf(a->purpose, sizeof(a->purpose), "%s", r->purpose);
	snprintf(a->labels_json, sizeof(a->labels_json), "%s",
		 r->labels_json[0] ? r->labels_json : "{}");
	snprintf(a->created_by, sizeof(a->created_by), "%s", created_by);
	a->period_start = f->ps;
	a->approved_at = now;
	a->expires_at = now + start_timeout_s;
	a->started_at = 0;
	a->ended_at = 0;
	a->actual_micros = -1;
	return 0;
}

int ops_alloc_decide(const struct actor *who, const struct alloc_request *r,
		     const struct alloc_facts *f, int64_t now, int64_t start_timeout_s,
		     struct alloc_outcome *lo, char *err, size_t len)
{
	struct ledger_decision dec;
	struct ledger_check chk;
	char av[MONEY_FMT_LEN], es[MONEY_FMT_LEN];
	int64_t est = 0;

	memset(lo, 0, sizeof(*lo));
	if (!f->team) {
		snprintf(err, len, "unknown team '%s'", r->team);
		return ERR_NOT_FOUND;
	}
	if (!f->gpu) {
		snprintf(err, len, "unknown gpu_type '%s'", r->gpu_type);
		return ERR_NOT_FOUND;
	}
	/* More than the type's whole capacity: no wait can satisfy it, so it is
	 * invalid input (422), not a refusal. */
	if (r->gpu_count > f->gpu->capacity) {
		snprintf(err, len, "exceeds the capacity of %s (%lld GPUs)", f->gpu->id,
			 (long long)f->gpu->capacity);
		return ERR_INVALID;
	}
	if (cost_compute(f->gpu->price_micros, r->gpu_count, r->max_runtime_us, &est) != 0) {
		snprintf(err, len, "the estimated cost does not fit");
		return ERR_OVERFLOW;
	}
	chk = (struct ledger_check){
		.budget = f->team->budget_micros,
		.spent = f->spent,
		.reserved = f->reserved,
		.estimated = est,
		.capacity = f->gpu->capacity,
		.allocated = f->gpu->allocated,
		.gpu_count = r->gpu_count,
	};
	ledger_decide(&chk, &dec);
	lo->available = dec.available;
	lo->gpus_available = dec.gpus_available;
	lo->estimated = est;
	lo->budget_ok = dec.budget_ok;
	lo->capacity_ok = dec.capacity_ok;
	if (dec.approved) {
		int rc = approved_record(&lo->alloc, r, f, est, who->token_id, now, start_timeout_s);

		if (rc != 0)
			snprintf(err, len, "cannot generate an allocation id");
		return rc;
	}
	if (!dec.budget_ok) {
		snprintf(err, len, "team '%s' has %s available, the request needs %s", f->team->id,
			 store_fmt_money(dec.available, av), store_fmt_money(est, es));
		return ERR_BUDGET;
	}
	snprintf(err, len, "%lld GPUs of type '%s' available, the request needs %lld",
		 (long long)dec.gpus_available, f->gpu->id, (long long)r->gpu_count);
	return ERR_CAPACITY;
}

int ops_idem_mismatch(const struct idem *idem, const char *stored_hash, char *err, size_t len)
{
	if (stored_hash && idem->hash && strcmp(stored_hash, idem->hash) == 0)
		return 0;
	snprintf(err, len, "Idempotency-Key '%s' was used with a different request", idem->key);
	return ERR_IDEMPOTENCY;
}
