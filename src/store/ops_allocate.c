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
		rc = db_row_gpu(r, 0, &v[*n]);
		if (rc == ERR_STORE) {
			store_bad_row("gpu_types", db_text(r, 0), "a text does not fit its field");
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		(*n)++;
	}
	db_rows_close(r);
	if (rc != 0) { /* db_next's 0 ends the loop with rc 0 */
		free(v);
		*n = 0;
		return rc;
	}
	*out = v;
	return 0;
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

/* Copies s into buf (len bytes): 0, or -1 when it does not fit. */
static int copy_text(char *buf, size_t len, const char *s)
{
	return util_fmt(buf, len, "%s", s) == 0 ? 0 : -1;
}

/*
 * A refusal's suggestion in the record (member "suggest", absent when there
 * is none; records without it, of a plinth before it, replay without it).
 * 0 or -1 without memory.
 */
static int suggest_put(json_t *j, const struct alloc_suggest *s)
{
	json_t *o, *fr;

	if (!s->budget && s->nfree == 0)
		return 0;
	o = json_pack("{s:b, s:I, s:I, s:I, s:s, s:I, s:[]}", "budget", s->budget, "max_gpus",
		      (json_int_t)s->max_gpus, "max_runtime_us", (json_int_t)s->max_runtime_us,
		      "renews_at", (json_int_t)s->renews_at, "admins", s->admins_json, "ntypes",
		      (json_int_t)s->ntypes, "free");
	fr = o ? json_object_get(o, "free") : NULL;
	for (int i = 0; fr && i < s->nfree; i++)
		if (json_array_append_new(fr, json_pack("{s:s, s:s, s:I, s:I}", "id", s->free[i].id,
							"name", s->free[i].name, "free_gpus",
							(json_int_t)s->free[i].free_gpus, "price_micros",
							(json_int_t)s->free[i].price_micros)) != 0)
			fr = NULL;
	if (!fr || json_object_set_new(j, "suggest", o) != 0) {
		json_decref(fr ? NULL : o);
		return -1;
	}
	return 0;
}

/* Reads the record's "suggest" (when there is one): 0, or -1 for one it cannot read. */
static int suggest_get(const json_t *j, struct alloc_suggest *s)
{
	const json_t *o = json_object_get(j, "suggest"), *fr, *e;
	json_int_t mg = 0, mr = 0, ra = 0, nt = 0;
	const char *admins = NULL;
	int bud = 0;
	size_t i;

	if (!o)
		return 0;
	if (json_unpack((json_t *)o, "{s:b, s:I, s:I, s:I, s:s, s:I}", "budget", &bud, "max_gpus",
			&mg, "max_runtime_us", &mr, "renews_at", &ra, "admins", &admins, "ntypes",
			&nt) != 0)
		return -1;
	s->budget = bud;
	s->max_gpus = mg;
	s->max_runtime_us = mr;
	s->renews_at = ra;
	s->ntypes = (int)nt;
	if (copy_text(s->admins_json, sizeof(s->admins_json), admins) != 0)
		return -1;
	fr = json_object_get(o, "free");
	if (json_array_size(fr) > STORE_SUGGEST_TYPES)
		return -1;
	json_array_foreach(fr, i, e) {
		struct alloc_free_type *t = &s->free[i];
		const char *id, *name;
		json_int_t nf, pr;

		if (json_unpack((json_t *)e, "{s:s, s:s, s:I, s:I}", "id", &id, "name", &name,
				"free_gpus", &nf, "price_micros", &pr) != 0 ||
		    copy_text(t->id, sizeof(t->id), id) != 0 ||
		    copy_text(t->name, sizeof(t->name), name) != 0)
			return -1;
		t->free_gpus = nf;
		t->price_micros = pr;
		s->nfree = (int)i + 1;
	}
	return 0;
}

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
	if (j && suggest_put(j, &lo->suggest) != 0) {
		json_decref(j);
		j = NULL;
	}
	if (j)
		text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
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
	if (!bad && suggest_get(j, &o->suggest) != 0)
		bad = 1;
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
	if (rc == 0) {
		int wrc = approval_write(c, who, &team, &lo->alloc, now);

		if (wrc != 0)
			return wrc;
	} else {
		struct store_refusal rf = {r, lo, rc};
		int wrc = db_audit(c, who, now, "allocation.refuse", "allocation", "", r->team,
				   store_json_refusal, NULL, &rf);

		if (wrc != 0)
			return wrc;
	}
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
