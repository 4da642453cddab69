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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cost.h"
#include "core/err.h"
#include "core/grow.h"
#include "core/lifecycle.h"
#include "core/ledger.h"
#include "core/money.h"
#include "core/period.h"
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

/* ---- what a refusal suggests ------------------------------------------- */

const char *store_team_admins_json(const struct team *t)
{
	return t->admins_json[0] != '\0' ? t->admins_json : "[]";
}

void store_suggest_types(const struct gpu_type *cat, size_t n, bool free_only,
			 struct alloc_suggest *s)
{
	s->nfree = 0;
	s->nvalid = 0;
	s->ntypes = 0;
	for (size_t i = 0; i < n; i++) {
		const struct gpu_type *g = &cat[i];
		struct alloc_free_type t = {.free_gpus = suggest_free_gpus(g->capacity, g->allocated),
					    .price_micros = g->price_micros};

		if (g->retired_at != 0) /* takes no new allocation: never suggested */
			continue;
		if (!free_only) {
			if (s->nvalid < STORE_SUGGEST_TYPES)
				snprintf(s->valid[s->nvalid++], STORE_ID_LEN, "%s", g->id);
			s->ntypes++;
		} else if (t.free_gpus > 0) {
			s->ntypes++;
			snprintf(t.id, sizeof(t.id), "%s", g->id);
			snprintf(t.name, sizeof(t.name), "%s", g->name);
			suggest_keep_free(s->free, &s->nfree, &t);
		}
	}
}

/* Fills the budget part of lo->suggest for a refusal on budget (pure). */
static void suggest_budget(const struct alloc_request *r, const struct alloc_facts *f,
			   const struct ledger_check *chk, int64_t now, struct alloc_outcome *lo)
{
	struct alloc_suggest *s = &lo->suggest;
	int64_t ps = 0, pe = 0;

	s->budget = true;
	ledger_fit(chk, f->gpu->price_micros, r->max_runtime_us, &s->max_gpus, &s->max_runtime_us);
	period_bounds(f->team->period, now, &ps, &pe);
	s->renews_at = pe;
	snprintf(s->admins_json, sizeof(s->admins_json), "%s", store_team_admins_json(f->team));
}

int ops_alloc_catalog(struct store_conn *c, struct gpu_type **out, size_t *n)
{
	static const char SQL_GPU_ALL[] = "SELECT " GPU_COLS " FROM gpu_types ORDER BY id";
	struct db_rows *r = NULL;
	struct gpu_type *v = NULL;
	size_t cap = 0;
	int rc = db_query(c, SQL_GPU_ALL, &r, "");

	*out = NULL;
	*n = 0;
	while (rc == 0 && (rc = db_next(r)) == 1) {
		struct gpu_type *nv = grow(v, *n, &cap, sizeof(*v), 16);

		if (!nv) {
			rc = ERR_NOMEM;
			break;
		}
		v = nv;
		/* The catalog only informs a refusal: a row it cannot read is
		 * reported and left out, never a failure of the refusal (or of
		 * the PostgreSQL batch that decides it with other requests). */
		if (db_row_gpu(r, 0, &v[*n]) == 0)
			(*n)++;
		else
			store_bad_row("gpu_types", db_text(r, 0), "a text does not fit its field");
		rc = 0; /* on to the next row */
	}
	db_rows_close(r);
	if (rc != 0) { /* db_next's 0 ends the loop with rc 0 */
		free(v);
		v = NULL;
		*n = 0;
	}
	*out = v;
	return rc;
}

int store_gpu_catalog(struct store_conn *c, struct gpu_type **out, size_t *n)
{
	int rc = db_op(c);

	*out = NULL;
	*n = 0;
	return rc != 0 ? rc : ops_alloc_catalog(c, out, n);
}

bool ops_alloc_wants_types(int rc, const struct alloc_outcome *lo)
{
	return rc == ERR_CAPACITY || (rc == ERR_NOT_FOUND && strcmp(lo->field, "gpu_type") == 0);
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
	/* Retired: history stays, but nothing new is approved for it (409 on
	 * the field; ERR_CONFLICT is not a decision, so nothing is remembered). */
	if (f->team->retired_at) {
		snprintf(lo->field, sizeof(lo->field), "team");
		snprintf(err, len, "team '%s' is retired", r->team);
		return ERR_CONFLICT;
	}
	if (f->gpu->retired_at) {
		snprintf(lo->field, sizeof(lo->field), "gpu_type");
		snprintf(err, len, "GPU type '%s' is retired", r->gpu_type);
		return ERR_CONFLICT;
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
		suggest_budget(r, f, &chk, now, lo);
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
 *
 * Each JSON object of the record is one table of members (name, kind, place
 * in the struct) that both writes and reads it, so the two cannot drift.  The
 * tables' order is the members' order in the text: records are written byte
 * for byte as before (tests/store: test_idempotency_records).
 */
enum rec_kind { K_I64, K_INT, K_BOOL, K_TEXT, K_STATUS };

struct rec_field {
	const char *name;
	enum rec_kind kind;
	size_t off, len; /* len: a text's buffer */
};

/* A table with its length, for rec_put / rec_get. */
#define REC_T(table) table, sizeof(table) / sizeof((table)[0])
#define REC(type, member, name, kind) {name, kind, offsetof(type, member), sizeof(((type *)0)->member)}
#define RO(m, k) REC(struct alloc_outcome, m, #m, k)
#define RA(m, k) REC(struct allocation, m, #m, k)
#define RS(m, k) REC(struct alloc_suggest, m, #m, k)
#define RF(m, k) REC(struct alloc_free_type, m, #m, k)

static const struct rec_field REC_OUTCOME[] = {
	RO(available, K_I64), RO(gpus_available, K_I64), RO(estimated, K_I64),
	RO(budget_ok, K_BOOL), RO(capacity_ok, K_BOOL),
};

/* Member "allocation": an approval's record (absent from a refusal's). */
static const struct rec_field REC_ALLOC[] = {
	RA(id, K_TEXT), RA(team, K_TEXT), RA(project, K_TEXT), RA(gpu_type, K_TEXT),
	RA(gpu_count, K_I64), RA(max_runtime_us, K_I64), RA(price_micros, K_I64),
	RA(estimated_micros, K_I64), RA(status, K_STATUS), RA(purpose, K_TEXT),
	REC(struct allocation, labels_json, "labels", K_TEXT), RA(created_by, K_TEXT),
	RA(period_start, K_I64), RA(approved_at, K_I64), RA(expires_at, K_I64),
	RA(started_at, K_I64), RA(ended_at, K_I64), RA(actual_micros, K_I64),
};

/* Member "suggest": a refusal's suggestion, absent when there is none
 * (records of a plinth before it replay without it), then its array "free". */
static const struct rec_field REC_SUGGEST[] = {
	RS(budget, K_BOOL), RS(max_gpus, K_I64), RS(max_runtime_us, K_I64), RS(renews_at, K_I64),
	REC(struct alloc_suggest, admins_json, "admins", K_TEXT), RS(ntypes, K_INT),
};

static const struct rec_field REC_FREE[] = {
	RF(id, K_TEXT), RF(name, K_TEXT), RF(free_gpus, K_I64), RF(price_micros, K_I64),
};

/* Adds the members fl[n] of the struct at base to object o: 0, or -1
 * without memory (or for a text that is not UTF-8). */
static int rec_put(json_t *o, const struct rec_field *fl, size_t n, const void *base)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = (const char *)base + fl[i].off;
		json_t *v;

		switch (fl[i].kind) {
		case K_I64:
			v = json_integer(*(const int64_t *)p);
			break;
		case K_INT:
			v = json_integer(*(const int *)p);
			break;
		case K_BOOL:
			v = json_boolean(*(const bool *)p);
			break;
		case K_STATUS:
			v = json_string(alloc_status_name(*(const enum alloc_status *)p));
			break;
		default:
			v = json_string(p);
		}
		if (json_object_set_new(o, fl[i].name, v) != 0) /* consumes v, NULL too */
			return -1;
	}
	return 0;
}

/* rec_put into a new object added to parent (as member key, or appended to
 * the array parent when key is NULL): the object, or NULL as rec_put's -1. */
static json_t *rec_add(json_t *parent, const char *key, const struct rec_field *fl, size_t n,
		       const void *base)
{
	json_t *o = json_object();
	int rc = key ? json_object_set_new(parent, key, o) : json_array_append_new(parent, o);

	return rc == 0 && rec_put(o, fl, n, base) == 0 ? o : NULL;
}

/* Reads the members fl[n] of object o into the struct at base: 0, or -1 for
 * a member that is missing, of another type, or a text that does not fit. */
static int rec_get(const json_t *o, const struct rec_field *fl, size_t n, void *base)
{
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_object_get(o, fl[i].name);
		const char *t = json_string_value(v); /* NULL unless a string */
		char *p = (char *)base + fl[i].off;

		if (fl[i].kind == K_I64 || fl[i].kind == K_INT) {
			if (!json_is_integer(v))
				return -1;
			if (fl[i].kind == K_I64)
				*(int64_t *)p = json_integer_value(v);
			else
				*(int *)p = (int)json_integer_value(v);
		} else if (fl[i].kind == K_BOOL) {
			if (!json_is_boolean(v))
				return -1;
			*(bool *)p = json_is_true(v);
		} else if (!t || (fl[i].kind == K_STATUS
					  ? alloc_status_parse(t, (enum alloc_status *)p) != 0
					  : util_fmt(p, fl[i].len, "%s", t) != 0)) {
			return -1;
		}
	}
	return 0;
}

char *ops_idem_record(int rc, const struct alloc_outcome *lo)
{
	const struct alloc_suggest *s = &lo->suggest;
	json_t *j = json_object(), *o, *fr;
	char *text = NULL;
	bool ok = j && rec_put(j, REC_T(REC_OUTCOME), lo) == 0;

	if (ok && rc == 0)
		ok = rec_add(j, "allocation", REC_T(REC_ALLOC), &lo->alloc) != NULL;
	if (ok && (s->budget || s->nfree > 0)) {
		o = rec_add(j, "suggest", REC_T(REC_SUGGEST), s);
		fr = json_array();
		ok = o && json_object_set_new(o, "free", fr) == 0;
		for (int i = 0; ok && i < s->nfree; i++)
			ok = rec_add(fr, NULL, REC_T(REC_FREE), &s->free[i]) != NULL;
	}
	if (ok)
		text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/* The outcome of a record with status 0, ERR_BUDGET or ERR_CAPACITY: 0 or ERR_STORE. */
static int record_parse(const char *body, int status, struct alloc_outcome *o)
{
	json_t *j = json_loads(body, 0, NULL);
	const json_t *s = json_object_get(j, "suggest"), *fr = json_object_get(s, "free"), *e;
	size_t i;
	bool bad;

	memset(o, 0, sizeof(*o));
	bad = rec_get(j, REC_T(REC_OUTCOME), o) != 0 ||
	      (status == 0 &&
	       rec_get(json_object_get(j, "allocation"), REC_T(REC_ALLOC), &o->alloc) != 0) ||
	      (s && (rec_get(s, REC_T(REC_SUGGEST), &o->suggest) != 0 ||
		     json_array_size(fr) > STORE_SUGGEST_TYPES));
	if (!bad) {
		json_array_foreach(fr, i, e) {
			if (rec_get(e, REC_T(REC_FREE), &o->suggest.free[i]) != 0)
				bad = true;
		}
		o->suggest.nfree = (int)json_array_size(fr);
	}
	json_decref(j);
	return bad ? ERR_STORE : 0;
}

int ops_idem_replay(int status, char *body, struct idem *idem, struct alloc_outcome *o, char *err,
		    size_t len)
{
	int rc;

	idem->replayed = true;
	if (status > 0) { /* a record of an older plinth: its HTTP answer */
		idem->legacy_status = status;
		idem->legacy_body = body;
		return 0;
	}
	if (status != 0 && status != ERR_BUDGET && status != ERR_CAPACITY) {
		rc = ERR_STORE;
		snprintf(err, len, "unreadable idempotency record (status %d)", status);
	} else if ((rc = record_parse(body, status, o)) != 0) {
		snprintf(err, len, "unreadable idempotency record");
	}
	free(body);
	return rc != 0 ? rc : status;
}

/* ---- one request inside the caller's transaction ------------------------ */

static const char SQL_TEAM_BY_ID[] = "SELECT " TEAM_COLS " FROM teams WHERE id = ?";
static const char SQL_GPU_BY_ID[] = "SELECT " GPU_COLS " FROM gpu_types WHERE id = ?";
static const char SQL_PERIOD_ENSURE[] =
	"INSERT INTO team_periods(team_id, period_start, period_end, spent, reserved)"
	" VALUES (?, ?, ?, 0, 0) ON CONFLICT DO NOTHING";
static const char SQL_IDEM_INSERT[] =
	"INSERT INTO idempotency(token_id, key, request_hash, status, body, created_at)"
	" VALUES (?, ?, ?, ?, ?, ?)";

/* The stored record of (token, key): 1 with *status and *body (owned), 0 none, < 0 error. */
static int idem_read(struct store_conn *c, const char *token_id, const struct idem *idem,
		     int *status, char **body)
{
	static const char SQL_IDEM_GET[] =
		"SELECT request_hash, status, body FROM idempotency WHERE token_id = ? AND key = ?";
	struct db_rows *r = NULL;
	int rc = db_query(c, SQL_IDEM_GET, &r, "tt", token_id, idem->key);

	if (rc == 0 && (rc = db_next(r)) == 1) {
		rc = ops_idem_mismatch(idem, db_text(r, 0), c->err, sizeof(c->err));
		if (rc == 0) {
			*status = (int)db_i64(r, 1);
			*body = db_dup(r, 2);
			rc = *body ? 1 : ERR_NOMEM;
		}
	}
	db_rows_close(r);
	return rc;
}

/* Defensive re-read after an approval: the rule can only break by a bug. */
static int invariants_verify(struct store_conn *c, const struct team *t, int64_t ps,
			     const char *gpu_type)
{
	struct gpu_type g;
	int64_t spent = 0, reserved = 0;
	int rc = ops_period_read(c, t->id, ps, &spent, &reserved);

	if (rc != 0)
		return rc;
	if (spent > t->budget_micros - reserved) {
		db_err(c, "ledger invariant violated for team '%s'", t->id);
		return ERR_STORE;
	}
	rc = db_load(c, SQL_GPU_BY_ID, gpu_type, db_row_gpu, &g);
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? ERR_STORE : rc;
	if (g.allocated > g.capacity) {
		db_err(c, "capacity invariant violated for gpu type '%s'", gpu_type);
		return ERR_STORE;
	}
	return 0;
}

/* The approval's rows: the allocation, the ledger and GPU moves, the audit row. */
static int approval_write(struct store_conn *c, const struct actor *who, const struct team *team,
			  const struct allocation *a, int64_t now)
{
	static const char SQL_ALLOC_INSERT[] =
		"INSERT INTO allocations(" ALLOC_COLS ") VALUES"
		" (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	int rc, n;

	n = db_exec(c, SQL_ALLOC_INSERT, "ttttiiiittttiiiiii", a->id, a->team, a->project,
		    a->gpu_type, a->gpu_count, a->max_runtime_us, a->price_micros,
		    a->estimated_micros, alloc_status_name(a->status), a->purpose, a->labels_json,
		    a->created_by, a->period_start, a->approved_at, a->expires_at, a->started_at,
		    a->ended_at, a->actual_micros);
	if (n < 0)
		return n;
	rc = ops_ledger_move(c, a, a->estimated_micros, 0);
	if (rc == 0)
		rc = ops_gpu_move(c, a->gpu_type, a->gpu_count);
	if (rc == 0)
		rc = invariants_verify(c, team, a->period_start, a->gpu_type);
	if (rc == 0)
		rc = db_audit(c, who, now, "allocation.approve", "allocation", a->id, a->team,
			      store_json_alloc, NULL, a);
	return rc;
}

int ops_alloc_one(struct store_conn *c, const struct actor *who, const struct alloc_request *r,
		  int64_t start_timeout_s, int64_t now, struct idem *idem, struct alloc_outcome *lo,
		  int *replay_status, char **replay, bool *keep)
{
	struct team team;
	struct gpu_type gpu;
	struct alloc_facts f = {NULL, NULL, 0, 0, 0};
	int64_t pe = 0;
	char *body = NULL; /* the idempotency record, owned here */
	bool use_idem = idem && idem->key;
	int rc, n;

	*keep = false;
	*replay = NULL;
	if (use_idem) {
		rc = idem_read(c, who->token_id, idem, replay_status, replay);
		if (rc != 0) {
			*keep = rc == 1;
			return rc == 1 ? 0 : rc;
		}
	}
	rc = db_load(c, SQL_TEAM_BY_ID, r->team, db_row_team, &team);
	if (rc != 0 && rc != ERR_NOT_FOUND)
		return rc;
	f.team = rc == 0 ? &team : NULL;
	if (f.team) {
		/* Due allocations give their money and GPUs back before we decide. */
		rc = ops_expire_due_tx(c, now, NULL);
		if (rc == 0)
			rc = db_load(c, SQL_GPU_BY_ID, r->gpu_type, db_row_gpu, &gpu);
		if (rc != 0 && rc != ERR_NOT_FOUND)
			return rc;
		f.gpu = rc == 0 ? &gpu : NULL;
	}
	if (f.gpu) {
		period_bounds(team.period, now, &f.ps, &pe);
		n = db_exec(c, SQL_PERIOD_ENSURE, "tii", team.id, f.ps, pe);
		rc = n < 0 ? n : ops_period_read(c, team.id, f.ps, &f.spent, &f.reserved);
		if (rc != 0)
			return rc;
	}
	rc = ops_alloc_decide(who, r, &f, now, start_timeout_s, lo, c->err, sizeof(c->err));
	if (ops_alloc_wants_types(rc, lo)) {
		struct gpu_type *cat = NULL;
		size_t ncat = 0;
		int crc = ops_alloc_catalog(c, &cat, &ncat);

		if (crc != 0)
			return crc;
		store_suggest_types(cat, ncat, rc == ERR_CAPACITY, &lo->suggest);
		free(cat);
	}
	if (rc != 0 && rc != ERR_BUDGET && rc != ERR_CAPACITY)
		return rc; /* not a decision: nothing to remember */
	n = rc == 0 ? approval_write(c, who, &team, &lo->alloc, now)
		    : db_audit(c, who, now, "allocation.refuse", "allocation", "", r->team,
			       store_json_refusal, NULL, &(struct store_refusal){r, lo, rc});
	if (n != 0)
		return n;
	if (use_idem) {
		body = ops_idem_record(rc, lo);
		if (!body) {
			db_err(c, "out of memory recording the idempotent decision");
			return ERR_NOMEM;
		}
		n = db_exec(c, SQL_IDEM_INSERT, "tttiti", who->token_id, idem->key, idem->hash,
			    (int64_t)rc, body, now);
		free(body);
		if (n < 0)
			return n;
	}
	*keep = true; /* approved, or a refusal worth remembering */
	return rc;
}

/* The store's allocate: the driver's group-commit engine. */
int ops_allocate(struct store_conn *c, const struct actor *who, const struct alloc_request *r,
		 int64_t start_timeout_s, int64_t now, struct idem *idem, struct alloc_outcome *o,
		 char *detail)
{
	return db_drv(c)->allocate(c, who, r, start_timeout_s, now, idem, o, detail);
}
