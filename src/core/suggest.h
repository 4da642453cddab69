/*
 * suggest.h - the GPU types a capacity refusal offers instead: those with
 * free GPUs, most free first (then by id), at most SUGGEST_TYPES of them.
 * Pure: the store feeds it the catalog it has just read.
 */
#ifndef PLINTH_CORE_SUGGEST_H
#define PLINTH_CORE_SUGGEST_H

#include <stdint.h>

#define SUGGEST_TYPES 16 /* GPU types a refusal names at most */

struct alloc_free_type {
	char id[64];    /* STORE_ID_LEN */
	char name[128]; /* STORE_NAME_LEN */
	int64_t free_gpus;
	int64_t price_micros; /* per GPU-hour */
};

/* The GPUs of a type that are free: capacity - allocated, never below 0. */
int64_t suggest_free_gpus(int64_t capacity, int64_t allocated);

/*
 * Offers t to kept[*n] (most free first, then by id; at most SUGGEST_TYPES):
 * t takes its place in that order, and a full list drops its least free.
 * Ids must be distinct.
 */
void suggest_keep_free(struct alloc_free_type *kept, int *n, const struct alloc_free_type *t);

#endif
