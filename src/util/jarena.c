/*
 * jarena.c - jansson parses into a per-request arena (see jarena.h).
 */
#include "util/jarena.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* The arena jansson allocates from on this thread, NULL: the heap. */
static _Thread_local struct jarena *active;

#define JARENA_ALIGN 16 /* what malloc guarantees on x86-64 */
#define JARENA_MIN 4096

static bool owns(const struct jarena *a, const void *p)
{
	for (int i = 0; i < a->n; i++)
		if ((const char *)p >= a->chunk[i] && (const char *)p < a->chunk[i] + a->size[i])
			return true;
	return false;
}

static void *arena_alloc(struct jarena *a, size_t n)
{
	if (n > SIZE_MAX - JARENA_ALIGN)
		return NULL;
	n = (n + JARENA_ALIGN - 1) & ~(size_t)(JARENA_ALIGN - 1);
	if (a->n == 0 || a->size[a->n - 1] - a->used < n) {
		if (a->n == JARENA_CHUNKS)
			return NULL;
		/* Doubling chunks: a 1 MiB body needs a handful, so owns() stays short. */
		size_t size = a->n == 0 ? a->first_size : a->size[a->n - 1] * 2;
		while (size < n)
			size *= 2;
		char *c = malloc(size);
		if (c == NULL)
			return NULL;
		a->chunk[a->n] = c;
		a->size[a->n] = size;
		a->n++;
		a->used = 0;
	}
	void *p = a->chunk[a->n - 1] + a->used;
	a->used += n;
	return p;
}

static void *jarena_malloc(size_t n)
{
	return active != NULL ? arena_alloc(active, n) : malloc(n);
}

/* An arena's memory is given back by jarena_release() only; anything else
 * (allocated before the arena or on the heap) goes back to the heap. */
static void jarena_free(void *p)
{
	if (p == NULL || (active != NULL && owns(active, p)))
		return;
	free(p);
}

/* Before main(), so before any thread and any jansson allocation: linking
 * this file is what installs it (the functions are malloc/free when no arena
 * is active, so everything else is unchanged). */
__attribute__((constructor)) static void jarena_install(void)
{
	json_set_alloc_funcs(jarena_malloc, jarena_free);
}

void jarena_init(struct jarena *a, size_t hint)
{
	*a = (struct jarena){.first_size = JARENA_MIN};
	while (a->first_size < hint && a->first_size < ((size_t)1 << 24))
		a->first_size *= 2;
}

json_t *jarena_loadb(struct jarena *a, const char *buf, size_t len, size_t flags,
		     json_error_t *err)
{
	struct jarena *outer = active;
	active = a;
	json_t *v = json_loadb(buf, len, flags, err);
	active = outer;
	return v;
}

void jarena_release(struct jarena *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->chunk[i]);
	a->n = 0;
	a->used = 0;
}
