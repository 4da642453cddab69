/*
 * grow.c - the doubling growth of a caller-owned array (grow.h).  The
 * caller keeps ownership: a failed growth leaves its array as it was.
 */
#include "core/grow.h"

#include <stdint.h>
#include <stdlib.h>

void *grow(void *v, size_t n, size_t *cap, size_t size, size_t first)
{
	size_t ncap = *cap ? *cap * 2 : first;
	void *nv;

	if (n < *cap)
		return v;
	if (ncap < *cap || ncap > SIZE_MAX / size) /* the doubling itself would overflow */
		return NULL;
	nv = realloc(v, ncap * size);
	if (nv)
		*cap = ncap;
	return nv;
}
