/*
 * seed.h - first-start data: the price catalog and the demo organisation.
 */
#ifndef PLINTH_SEED_H
#define PLINTH_SEED_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

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

/*
 * Seeds the demo organisation once (a no-op when team "nlp" exists): three
 * teams with budgets, capacity on four GPU types, five weeks of finished,
 * running and approved allocations.  Uses the store, not HTTP, because
 * history needs approval times in the past.
 */
int seed_demo(struct store_conn *c, int64_t now, char *detail);

#endif
