/*
 * admission_cache.h - what the admission webhook last read of an allocation,
 * kept in memory for a short, bounded time.
 *
 * The webhook is on the path of every pod creation; a Job's pods all name the
 * same allocation, so most reviews ask about an allocation read a moment
 * ago.  An entry answers for ADMISSION_CACHE_TTL_US after the moment its
 * store read BEGAN, never longer; and a transition made through this process
 * (cancel, complete, start) drops the entry at once.  Hence the documented
 * bound: a pod is never admitted on an allocation that was cancelled (or
 * completed) more than ADMISSION_CACHE_TTL_US earlier, whichever replica
 * cancelled it; through the same process, not at all after the cancel
 * returned.  Expiry needs no invalidation: the entry keeps expires_at and the
 * decision compares it with the clock.
 *
 * Bounded: ADMISSION_CACHE_SLOTS entries, direct-mapped by a hash of the id
 * (a collision replaces); striped locks.  Times are passed in (monotonic
 * microseconds) so the bound can be tested without sleeping.
 */
#ifndef PLINTH_ADMISSION_CACHE_H
#define PLINTH_ADMISSION_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/admission.h"
#include "store/store.h"

#define ADMISSION_CACHE_TTL_US 1000000 /* 1 s: the staleness bound */
#define ADMISSION_CACHE_SLOTS 4096
#define ADMISSION_CACHE_ID_LEN 64 /* as STORE_ID_LEN: longer ids are not cached */

/* One allocation's facts (a copy, the strings inside). */
struct admission_cached {
	char id[ADMISSION_CACHE_ID_LEN];
	char team[ADMISSION_CACHE_ID_LEN];
	char gpu_type[ADMISSION_CACHE_ID_LEN];
	char team_namespaces[STORE_NAMESPACES_LEN];
	struct admission_alloc facts; /* its strings point into this struct */
};

/* The generation to pass to put(): read it BEFORE the store read. */
uint64_t admission_cache_generation(void);

/*
 * Stores what a store read that began at read_start_us (and after `gen` was
 * read) returned.  Dropped when a forget() happened since `gen` (the read may
 * predate that transition) or when a string does not fit.
 */
void admission_cache_put(const struct admission_alloc *a, int64_t read_start_us, uint64_t gen);

/* The entry for id if it is younger than ADMISSION_CACHE_TTL_US at now_us:
 * true and *out filled (out->facts points into *out). */
bool admission_cache_get(const char *id, int64_t now_us, struct admission_cached *out);

/* Drops id's entry (and bumps the generation): after a transition. */
void admission_cache_forget(const char *id);

/* Empties the cache (tests). */
void admission_cache_clear(void);

#endif
