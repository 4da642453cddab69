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

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cost.h"
#include "core/err.h"
#include "core/lifecycle.h"
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
		snprintf(lo->field, sizeof(lo->field), "team");
		snprintf(err, len, "unknown team '%s'", r->team);
		return ERR_NOT_FOUND;
	}
	if (!f->gpu) {
		snprintf(lo->field, sizeof(lo->field), "gpu_type");
		snprintf(err, len, "unknown gpu_type '%s'", r->gpu_type);
		return ERR_NOT_FOUND;
	}
	/* More than the type's whole capacity: no wait can satisfy it, so it is
	 * invalid input (422), not a refusal. */
	if (r->gpu_count > f->gpu->capacity) {
		snprintf(lo->field, sizeof(lo->field), "gpu_count");
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

/* ---- idempotency records ------------------------------------------------ */

/*
 * A decision is remembered as data, not as an HTTP answer: the record's
 * status is the decision's code (0, ERR_BUDGET, ERR_CAPACITY: never > 0) and
 * its body the outcome in the store's own compact JSON, money in micros.  The
 * API renders a replay with the same function as a fresh answer.  Records of
 * plinth before this format hold the HTTP answer itself with its HTTP status
 * (> 0); those are handed back verbatim (struct idem's legacy_*).
 */
char *ops_idem_record(int rc, const struct alloc_outcome *lo)
{
	const struct allocation *a = &lo->alloc;
	json_t *j = json_pack("{s:I, s:I, s:I, s:b, s:b}", "available", (json_int_t)lo->available,
			      "gpus_available", (json_int_t)lo->gpus_available, "estimated",
			      (json_int_t)lo->estimated, "budget_ok", lo->budget_ok, "capacity_ok",
			      lo->capacity_ok);
	char *text = NULL;

	if (j && rc == 0) {
		json_t *aj = json_pack(
			"{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I,"
			" s:I, s:I, s:I}",
			"id", a->id, "team", a->team, "project", a->project, "gpu_type", a->gpu_type,
			"gpu_count", (json_int_t)a->gpu_count, "max_runtime_us",
			(json_int_t)a->max_runtime_us, "price_micros", (json_int_t)a->price_micros,
			"estimated_micros", (json_int_t)a->estimated_micros, "status",
			alloc_status_name(a->status), "purpose", a->purpose, "labels", a->labels_json,
			"created_by", a->created_by, "period_start", (json_int_t)a->period_start,
			"approved_at", (json_int_t)a->approved_at, "expires_at",
			(json_int_t)a->expires_at, "started_at", (json_int_t)a->started_at, "ended_at",
			(json_int_t)a->ended_at, "actual_micros", (json_int_t)a->actual_micros);

		if (!aj || json_object_set_new(j, "allocation", aj) != 0) {
			json_decref(j);
			j = NULL;
		}
	}
	if (j)
		text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/* Copies s into buf (len bytes): 0, or -1 when it does not fit. */
static int copy_text(char *buf, size_t len, const char *s)
{
	return util_fmt(buf, len, "%s", s) == 0 ? 0 : -1;
}

static int record_parse(const char *body, int status, struct alloc_outcome *o)
{
	json_t *j = json_loads(body, 0, NULL), *aj;
	json_int_t av = 0, ga = 0, est = 0;
	int bok = 0, cok = 0, bad;

	memset(o, 0, sizeof(*o));
	bad = !j || json_unpack(j, "{s:I, s:I, s:I, s:b, s:b}", "available", &av, "gpus_available",
				&ga, "estimated", &est, "budget_ok", &bok, "capacity_ok", &cok) != 0;
	o->available = av;
	o->gpus_available = ga;
	o->estimated = est;
	o->budget_ok = bok;
	o->capacity_ok = cok;
	aj = j ? json_object_get(j, "allocation") : NULL;
	if (!bad && status == 0) {
		struct allocation *a = &o->alloc;
		const char *id, *team, *project, *gpu, *st, *purpose, *labels, *by;
		json_int_t n[10];

		bad = !aj || json_unpack(aj,
					 "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s,"
					 " s:I, s:I, s:I, s:I, s:I, s:I}",
					 "id", &id, "team", &team, "project", &project, "gpu_type", &gpu,
					 "gpu_count", &n[0], "max_runtime_us", &n[1], "price_micros",
					 &n[2], "estimated_micros", &n[3], "status", &st, "purpose",
					 &purpose, "labels", &labels, "created_by", &by, "period_start",
					 &n[4], "approved_at", &n[5], "expires_at", &n[6], "started_at",
					 &n[7], "ended_at", &n[8], "actual_micros", &n[9]) != 0;
		if (!bad) {
			bad = copy_text(a->id, sizeof(a->id), id) | copy_text(a->team, sizeof(a->team), team) |
			      copy_text(a->project, sizeof(a->project), project) |
			      copy_text(a->gpu_type, sizeof(a->gpu_type), gpu) |
			      copy_text(a->purpose, sizeof(a->purpose), purpose) |
			      copy_text(a->labels_json, sizeof(a->labels_json), labels) |
			      copy_text(a->created_by, sizeof(a->created_by), by) |
			      (alloc_status_parse(st, &a->status) != 0 ? -1 : 0);
			a->gpu_count = n[0];
			a->max_runtime_us = n[1];
			a->price_micros = n[2];
			a->estimated_micros = n[3];
			a->period_start = n[4];
			a->approved_at = n[5];
			a->expires_at = n[6];
			a->started_at = n[7];
			a->ended_at = n[8];
			a->actual_micros = n[9];
		}
	}
	json_decref(j);
	return bad ? ERR_STORE : 0;
}

int ops_idem_replay(int status, char *body, struct idem *idem, struct alloc_outcome *o, char *err,
		    size_t len)
{
	idem->replayed = true;
	if (status > 0) { /* a record of an older plinth: its HTTP answer */
		idem->legacy_status = status;
		idem->legacy_body = body;
		return 0;
	}
	if (status != 0 && status != ERR_BUDGET && status != ERR_CAPACITY) {
		free(body);
		snprintf(err, len, "unreadable idempotency record (status %d)", status);
		return ERR_STORE;
	}
	if (record_parse(body, status, o) != 0) {
		free(body);
		snprintf(err, len, "unreadable idempotency record");
		return ERR_STORE;
	}
	free(body);
	return status;
}
