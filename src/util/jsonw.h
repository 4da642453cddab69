/*
 * jsonw.h - a compact JSON text writer for the hot paths: the request log
 * line, the answer to POST /v1/allocations and the allocation's audit row.
 *
 * Building a jansson tree (one malloc per value, a hash table per object)
 * and then printing it cost more daemon CPU per decision than the decision
 * itself; this writes the same compact text straight into one buffer.
 * Everything else keeps using jansson.
 *
 * Usage: jw_init, jw_open(w, NULL), fields, jw_close, jw_finish.  Keys and
 * strings are escaped; bytes that are not valid UTF-8 become '?', so the
 * output is always valid JSON.  The first failure (out of memory, nesting
 * deeper than JW_MAX_DEPTH) sticks and jw_finish reports it.
 */
#ifndef PLINTH_JSONW_H
#define PLINTH_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define JW_MAX_DEPTH 16

struct jsonw {
	struct buf out; /* owned until jw_finish */
	int depth;
	uint32_t nonempty; /* bit d: the object at depth d has a member already */
	bool failed;
};

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, <= U+10FFFF), or 0 when the bytes there are not one. */
size_t jw_utf8_seq_len(const unsigned char *s);

void jw_init(struct jsonw *w);
/* Opens an object: the top level (key NULL) or a member named key. */
void jw_open(struct jsonw *w, const char *key);
void jw_close(struct jsonw *w);
/* Members.  jw_str with v NULL writes null. */
void jw_str(struct jsonw *w, const char *key, const char *v);
void jw_int(struct jsonw *w, const char *key, int64_t v);
void jw_null(struct jsonw *w, const char *key);
/* A value that is already JSON text (e.g. stored labels); NULL writes null. */
void jw_raw(struct jsonw *w, const char *key, const char *json);
/* A non-negative fixed-point number: v / 10^decimals, trailing zeros trimmed. */
void jw_fixed(struct jsonw *w, const char *key, int64_t v, int decimals);

/* The NUL-terminated text (caller frees) and its length, or NULL after a
 * failure or with an object left open.  Frees the buffer either way. */
char *jw_finish(struct jsonw *w, size_t *len);

#endif
