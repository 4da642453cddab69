/*
 * ops.h - the store's operations, written once over the driver interface
 * (db.h) in files named by concern: ops_tokens.c, ops_catalog.c,
 * ops_teams.c, ops_allocations.c, ops_costs.c, ops_alerts.c, ops_jobs.c,
 * ops_audit.c.  Each has the contract of its struct store_ops member
 * (store.h).  Private to src/store/.
 */
#ifndef PLINTH_STORE_OPS_H
#define PLINTH_STORE_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* ops_tokens.c */
int ops_token_create(struct store_conn *c, const struct actor *who, const struct token *t,
		     const char *hash, int64_t now);
int ops_token_by_hash(struct store_conn *c, const char *hash, struct token *out);
/* The database's answer, for a driver that caches lookups. */
int ops_token_read(struct store_conn *c, const char *hash, struct token *out);
int ops_token_revoke(struct store_conn *c, const struct actor *who, const char *id, int64_t now);
int ops_admin_exists(struct store_conn *c, bool *out);
int ops_token_list(struct store_conn *c, store_token_cb cb, void *ctx);

/* ops_schema.c: applies the driver's missing migrations; refuses a newer schema. */
int ops_migrate(struct store_conn *c, char *detail);

/* ops_catalog.c (GPU types; put, patch and get are DB_PUT_OPS, db.h) */
int ops_gpu_type_put(struct store_conn *c, const struct actor *who, const struct gpu_type *g,
		     int64_t now, bool *created);
int ops_gpu_type_get(struct store_conn *c, const char *id, struct gpu_type *out);
int ops_gpu_type_list(struct store_conn *c, store_gpu_type_cb cb, void *ctx);
int ops_gpu_type_seed(struct store_conn *c, const struct gpu_type *g, size_t n, int64_t now);
int ops_gpu_type_patch(struct store_conn *c, const struct actor *who, const struct gpu_type *g,
		       unsigned fields, int64_t now, struct gpu_type *out);

/* ops_teams.c (teams, period ledgers, ping; put, patch and get are DB_PUT_OPS) */
int ops_ping(struct store_conn *c);
int ops_team_put(struct store_conn *c, const struct actor *who, const struct team *t, int64_t now,
		 bool *created);
int ops_team_get(struct store_conn *c, const char *id, struct team *out);
int ops_team_patch(struct store_conn *c, const struct actor *who, const struct team *t,
		   unsigned fields, int64_t now, struct team *out);
int ops_team_list(struct store_conn *c, const char *const *only, size_t nonly, store_team_cb cb,
		  void *ctx);
int ops_team_ledger(struct store_conn *c, const struct team *t, int64_t now,
		    struct team_ledger *out);
/* The money of period row (team, ps): 0 (zeros when there is no row yet) or an error. */
int ops_period_read(struct store_conn *c, const char *team, int64_t ps, int64_t *spent,
		    int64_t *reserved);

/* ops_audit.c */
int ops_audit_list(struct store_conn *c, const char *team, const char *cursor, int limit,
		   store_audit_cb cb, void *ctx, char *next_cursor);
int ops_audit_find(struct store_conn *c, const struct audit_filter *f, store_audit_cb cb,
		   void *ctx, char *next_cursor);

/* ops_alerts.c */
int ops_alert_record(struct store_conn *c, const struct alert *a, const char *const *urls,
		     size_t nurls, int64_t now, int *created);
int ops_alert_claim(struct store_conn *c, int64_t now, int64_t lease_s, struct alert *out, int max,
		    int *n);
int ops_alert_done(struct store_conn *c, const struct alert *a, bool delivered, int64_t next_at,
		   const char *error, int64_t now);

/* ops_jobs.c */
int ops_job_begin(struct store_conn *c, const struct job *j, struct job *out, bool *created,
		  char *detail);
int ops_job_update(struct store_conn *c, const struct job *j, char *detail);
int ops_job_take(struct store_conn *c, const struct job *j, int64_t seen, char *detail);
int ops_job_get(struct store_conn *c, const char *id, struct job *out);
int ops_job_list(struct store_conn *c, const struct job_filter *f, store_job_cb cb, void *ctx,
		 char *next_cursor);
int ops_job_cleanup_due(struct store_conn *c, const char *alloc_id, struct job_cleanup *out,
			int max, int *n);
int ops_job_cleanup_done(struct store_conn *c, const char *job_id, int64_t at);

/* ops_allocations.c (get, list, transition, expiry; helpers the allocate engines share) */
int ops_alloc_get(struct store_conn *c, const char *id, struct allocation *out);
int ops_alloc_list(struct store_conn *c, const struct alloc_filter *f, store_alloc_cb cb,
		   void *ctx, char *next_cursor);
int ops_alloc_transition(struct store_conn *c, const struct actor *who, const char *id,
			 enum alloc_event ev, int64_t at, int64_t now, struct allocation *out,
			 bool *repeat, char *detail);
int ops_alloc_expire_due(struct store_conn *c, int64_t now, int *n);
/* Inside the caller's write transaction (the allocate engines' too): */
/* Moves money in period row (team, ps); exactly one row must change. */
int ops_period_move(struct store_conn *c, const char *team, int64_t ps, int64_t d_reserved,
		    int64_t d_spent);
/* The same in allocation a's own period row. */
static inline int ops_ledger_move(struct store_conn *c, const struct allocation *a,
				  int64_t d_reserved, int64_t d_spent)
{
	return ops_period_move(c, a->team, a->period_start, d_reserved, d_spent);
}
/* Moves d GPUs into (d < 0: out of) the type's allocated count. */
int ops_gpu_move(struct store_conn *c, const char *gpu_type, int64_t d);
/* Expires every approved allocation due at now; *count (if given) released. */
int ops_expire_due_tx(struct store_conn *c, int64_t now, int *count);
/* The same for the due rows an engine already read and locked (cursor r,
 * columns ALLOC_COLS; not closed here). */
int ops_expire_rows(struct store_conn *c, struct db_rows *r, int64_t now, int *count);
/* ops_costs.c (costs, usage, rollups) */
int ops_costs(struct store_conn *c, const struct cost_query *q, store_cost_cb cb, void *ctx);
int ops_cost_usage(struct store_conn *c, const struct cost_query *q, store_usage_cb cb, void *ctx);
int ops_cost_rollup_rebuild(struct store_conn *c);
/* Adds completed allocation a to the rollups, in its completion's transaction. */
int ops_rollup_add(struct store_conn *c, const struct allocation *a);
/* Recomputes every rollup from the allocations inside the caller's write
 * transaction: the backfill of the migration that adds the last rollup table. */
int ops_rollup_fill(struct store_conn *c);

/* ops_allocate.c (the one decision the allocate engines call) */
int ops_allocate(struct store_conn *c, const struct actor *who, const struct alloc_request *r,
		 int64_t start_timeout_s, int64_t now, struct idem *idem, struct alloc_outcome *o,
		 char *detail);

/* What one allocation decision needs, read by each engine its own way. */
struct alloc_facts {
	const struct team *team;    /* NULL: unknown team */
	const struct gpu_type *gpu; /* NULL: unknown GPU type */
	int64_t ps;                 /* the team's current period (start) */
	int64_t spent, reserved;    /* that period's ledger */
};

/*
 * Decides request r of `who` at now: 0 = approved (lo->alloc is the new
 * record, lo the numbers), ERR_BUDGET / ERR_CAPACITY = refused (lo says what
 * was available; a budget refusal also what fits, lo->suggest), ERR_NOT_FOUND
 * (unknown team or GPU type), ERR_CONFLICT (a retired team or GPU type;
 * lo->field names it), ERR_INVALID (more GPUs than the type has),
 * ERR_OVERFLOW; err gets the one-line detail.  The GPU types a refusal names
 * need the catalog: the engine adds them (ops_alloc_wants_types).
 */
int ops_alloc_decide(const struct actor *who, const struct alloc_request *r,
		     const struct alloc_facts *f, int64_t now, int64_t start_timeout_s,
		     struct alloc_outcome *lo, char *err, size_t len);

/* True when a decision rc names GPU types (capacity: the free ones; an
 * unknown gpu_type: the valid ids): the engine then reads ops_alloc_catalog
 * in the decision's transaction and fills lo->suggest (store_suggest_types). */
bool ops_alloc_wants_types(int rc, const struct alloc_outcome *lo);
/* Every readable GPU type by id into *out (malloc'd, n rows; a bad row is
 * reported and left out): 0 or an error. */
int ops_alloc_catalog(struct store_conn *c, struct gpu_type **out, size_t *n);

/* The idempotency record of a decision rc (0, ERR_BUDGET, ERR_CAPACITY):
 * its body (owned by the caller; NULL without memory), stored with status rc. */
char *ops_idem_record(int rc, const struct alloc_outcome *lo);

/*
 * A stored record (status, body: consumed) as the caller's answer: sets
 * idem->replayed and returns the original decision's code with *o, or, for
 * a record of an older plinth (status > 0), hands its HTTP answer over in
 * idem->legacy_*.  ERR_STORE (detail in err) for a record it cannot read.
 */
int ops_idem_replay(int status, char *body, struct idem *idem, struct alloc_outcome *o, char *err,
		    size_t len);

/*
 * One request decided and written inside the caller's write transaction
 * (the SQLite engine's savepoint): (replay | expire due allocations | read
 * team, GPU type and period | ops_alloc_decide | the approval's rows) and the
 * idempotency record.  *keep: the part is to be committed (approved, refused
 * or replayed; a replay leaves *replay_status and *replay, owned by the
 * caller, for ops_idem_replay); otherwise the return is the error and the
 * caller undoes the part.
 */
int ops_alloc_one(struct store_conn *c, const struct actor *who, const struct alloc_request *r,
		  int64_t start_timeout_s, int64_t now, struct idem *idem, struct alloc_outcome *lo,
		  int *replay_status, char **replay, bool *keep);

/* 0 when a stored idempotent answer's hash is this request's, else
 * ERR_IDEMPOTENCY with the detail in err. */
int ops_idem_mismatch(const struct idem *idem, const char *stored_hash, char *err, size_t len);

#endif
