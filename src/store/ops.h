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

/* ops_catalog.c (GPU types) */

/* ops_teams.c (teams, period ledgers, ping) */

/* ops_audit.c */

/* ops_alerts.c */

/* ops_jobs.c */

/* ops_allocations.c (get, list, transition, expiry; helpers the allocate engines share) */

/* ops_costs.c (costs, usage, rollups) */

/* ops_allocate.c (the one decision the allocate engines call) */

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
 * was available), ERR_NOT_FOUND (unknown team or GPU type), ERR_INVALID (more
 * GPUs than the type has), ERR_OVERFLOW; err gets the one-line detail.
 */
int ops_alloc_decide(const struct actor *who, const struct alloc_request *r,
		     const struct alloc_facts *f, int64_t now, int64_t start_timeout_s,
		     struct alloc_outcome *lo, char *err, size_t len);

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

/* 0 when a stored idempotent answer's hash is this request's, else
 * ERR_IDEMPOTENCY with the detail in err. */
int ops_idem_mismatch(const struct idem *idem, const char *stored_hash, char *err, size_t len);

#endif
