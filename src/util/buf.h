/*
 * buf.h - a growable byte buffer, always NUL-terminated: request bodies,
 * the manifest emitter's output, jsonw's text and the PostgreSQL batch's
 * array literals all append through it.  Zero-initialise; the holder frees p.
 */
#ifndef PLINTH_BUF_H
#define PLINTH_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *p; /* NULL until the first append */
	size_t len, cap;
};

/* Appends n bytes of s; false, with the buffer unchanged, without memory. */
bool buf_add(struct buf *b, const void *s, size_t n);

#endif
