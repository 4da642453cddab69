/*
 * suggest.c - which free GPU types a capacity refusal lists (suggest.h).
 *
 * A bounded sorted insert: the list stays ordered after every offer, so
 * the catalog is read once and never sorted whole.  Pure.
 */
#include "core/suggest.h"

#include <string.h>

int64_t suggest_free_gpus(int64_t capacity, int64_t allocated)
{
	return capacity > allocated ? capacity - allocated : 0;
}

/* Most free first, then by id: the order a refusal lists free types in. */
static int free_before(const struct alloc_free_type *x, const struct alloc_free_type *y)
{
	if (x->free_gpus != y->free_gpus)
		return x->free_gpus > y->free_gpus;
	return strcmp(x->id, y->id) < 0;
}

void suggest_keep_free(struct alloc_free_type *kept, int *n, const struct alloc_free_type *t)
{
	int i = *n;

	if (i == SUGGEST_TYPES) {
		if (!free_before(t, &kept[i - 1]))
			return; /* less free than every kept one */
		i--;            /* the least free makes room */
	} else {
		(*n)++;
	}
	while (i > 0 && free_before(t, &kept[i - 1])) {
		kept[i] = kept[i - 1];
		i--;
	}
	kept[i] = *t;
}
