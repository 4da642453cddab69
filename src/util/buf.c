/* buf.c - see buf.h. */
#include "util/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool buf_add(struct buf *b, const void *s, size_t n)
{
	if (n > SIZE_MAX / 2 - b->len)
		return false;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return false;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}
