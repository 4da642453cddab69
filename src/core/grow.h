/*
 * grow.h - room for one more element in a caller-owned array (the one
 * doubling realloc loop of the core and the store).  No state of its own.
 */
#ifndef PLINTH_CORE_GROW_H
#define PLINTH_CORE_GROW_H

#include <stddef.h>

/*
 * Room for one more element (of `size` bytes) in array v of n used, *cap
 * allocated: v itself when there is room, else v grown by doubling (from
 * `first`) with *cap updated, or NULL without memory (v is then unchanged
 * and still owned by the caller).
 */
void *grow(void *v, size_t n, size_t *cap, size_t size, size_t first);

#endif
