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

/* ops_catalog.c (GPU types) */
int ops_gpu_type_put(struct store_conn *c, const struct actor *who, const struct gpu_type *g,
		     int64_t now, bool *created);
int ops_gpu_type_get(struct store_conn *c, const char *id, struct gpu_type *out);
int ops_gpu_type_list(struct store_conn *c, store_gpu_type_cb cb, void *ctx);
int ops_gpu_type_seed(struct store_conn *c, const struct gpu_type *g, size_t n, int64_t now);

/* ops_teams.c (teams, period ledgers, ping) */
int ops_ping(struct store_conn *c);
int ops_team_put(struct store_conn *c, const struct actor *who, const struct team *t, int64_t now,
		 bool *created);
int ops_team_get(struct store_conn *c, const char *id, struct team *out);
int ops_team_list(struct store_conn *c, const char *const *only, size_t nonly, store_team_cb cb,
		  void *ctx);
int ops_team_ledger(struct store_conn *c, const struct team *t, int64_t now,
		    struct team_ledger *out);

/* ops_audit.c */
int ops_audit_list(struct store_conn *c, const char *team, const char *cursor, int limit,
		   store_audit_cb cb, void *ctx, char *next_cursor);

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
int ops_job_get(struct store_conn *c, const char *id, struct job *out);
int ops_job_cleanup_due(struct store_conn *c, const char *alloc_id, struct job_cleanup *out,
			int max, int *n);
int ops_job_cleanup_done(struct store_conn *c, const char *job_id, int64_t at);

/* ops_allocations.c (get, list, transition, expiry; helpers the allocate engines share) */

/* ops_costs.c (costs, usage, rollups) */

/* ops_allocate.c (the one decision the allocate engines call) */

#endif
