/*
 * seed.h - first-start data: the price catalog and the demo organisation.
 */
#ifndef PLINTH_SEED_H
#define PLINTH_SEED_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/util.h"

/*
 * Parses the AWS price CSV (header: instance_type,gpu_model,gpu_memory_gib,
 * gpu_count,usd_per_hour,usd_per_gpu_hour,region,price_date) into GPU types,
 * one per (model, memory): id "<model>-<mem>gb" lower-case ("h100-80gb"),
 * price per GPU-hour taken from the instance with the most GPUs (the node a
 * training cluster is built from; ties: the lower price), capacity 0.
 * Writes at most max types into out; *n = count.  Returns 0 or ERR_INVALID
 * with a line number in detail.
 */
int seed_catalog_parse(const char *csv, struct gpu_type *out, size_t max, size_t *n, char *detail);

/* Seeds the embedded catalog into the store (only ids not present yet). */
int seed_catalog(struct store_conn *c, int64_t now, char *detail);

/* The two people the demo adds next to the bootstrap admin (the platform
 * engineer): a data scientist in team forecasting and a finance analyst. */
#define SEED_MEMBER_NAME "Maya Chen, data scientist"
#define SEED_FINANCE_NAME "Dana Okafor, finance"

struct seed_person {
	char name[STORE_NAME_LEN];
	enum role role;
	char secret[UTIL_SECRET_LEN + 16]; /* the token to log in with; never stored */
};

struct seed_people {
	bool seeded; /* false: the organisation existed, nothing was written */
	struct seed_person member, finance;
};

/*
 * Seeds the demo organisation into an empty one (a no-op when any team
 * exists): a quarter of a mid-size company relative to `now` (five teams
 * with monthly or quarterly budgets 34-93 % committed in the current
 * period, one past an alert threshold with the alerter's record of it,
 * about three months of finished allocations, running and approved ones,
 * a budget refusal minutes ago) and tokens for two people whose secrets
 * are returned in *people.  Uses the store, not HTTP, because history
 * needs approval times in the past; every write goes through the store's
 * operations, so the ledger rules hold and the audit log is real.
 */
int seed_demo(struct store_conn *c, int64_t now, struct seed_people *people, char *detail);

#endif
