/*
 * jarena.h - parse one JSON document with jansson into a per-request arena.
 *
 * Why: the admission webhook parses a whole AdmissionReview for every pod
 * the cluster creates, and with the C library's malloc about 40% of that
 * parse (and all of json_decref's walk of the tree) is spent allocating and
 * freeing hundreds of small nodes.  jansson allows one process-wide pair of
 * allocation functions (json_set_alloc_funcs); jarena_install() sets a pair
 * that bump-allocates from the calling thread's active arena while
 * jarena_loadb() runs, and is plain malloc/free everywhere else (other
 * threads, other calls of this thread), so the rest of the program is
 * unchanged.  jarena.c sets it in a constructor, before main(): a program
 * that links this file has it.
 *
 * Ownership: a tree from jarena_loadb() belongs to its arena.  It is read
 * (json_object_get, json_string_value, ...) until jarena_release(), which
 * frees it all at once; it must NEVER be passed to json_decref, stored, or
 * changed (json_object_set would mix heap and arena nodes).
 */
#ifndef PLINTH_JARENA_H
#define PLINTH_JARENA_H

#include <stddef.h>

#include <jansson.h>

#define JARENA_CHUNKS 24 /* chunk k holds first_size << k bytes */

struct jarena {
	char *chunk[JARENA_CHUNKS];
	size_t size[JARENA_CHUNKS];
	int n;       /* chunks in use */
	size_t used; /* bytes used in chunk[n - 1] */
	size_t first_size;
};

/* An empty arena whose first chunk (allocated on first use) has about
 * `hint` bytes (at least 4 KiB). */
void jarena_init(struct jarena *a, size_t hint);

/* json_loadb() with every node of the tree (and the parser's scratch) in
 * `a`.  NULL on a parse error (err filled) or when out of memory. */
json_t *jarena_loadb(struct jarena *a, const char *buf, size_t len, size_t flags,
		     json_error_t *err);

/* Frees the arena and every tree parsed into it. */
void jarena_release(struct jarena *a);

#endif
