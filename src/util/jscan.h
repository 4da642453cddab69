/*
 * jscan.h - a strict JSON parser into a flat array of nodes, for the one hot
 * path that reads a large document and needs a few members of it: the
 * admission webhook (a Pod or Job review on every pod creation).  jansson
 * spends ~180 instructions per byte lexing through a per-byte callback; this
 * scans with tight loops and decodes strings IN PLACE in the caller's buffer
 * (which it therefore modifies: each string's text is rewritten, unescaped,
 * and NUL-terminated where it stood).
 *
 * It accepts exactly RFC 8259 JSON with jansson's defaults, so the two agree
 * (tests/unit/test_jscan.c checks them against each other): the top value an
 * object or array, strings valid UTF-8 without NUL (\u0000 is refused),
 * paired surrogates, integers that fit int64 (larger ones are refused, as
 * jansson does), reals that are finite, nesting at most JSCAN_MAX_DEPTH.
 * Duplicate member names are reported by jscan_get() for the member it looks
 * up (doc->duplicate), not searched for in members nobody reads.
 */
#ifndef PLINTH_UTIL_JSCAN_H
#define PLINTH_UTIL_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSCAN_MAX_DEPTH 256
#define JSCAN_ERR_LEN 96

enum jscan_type { JS_NULL, JS_FALSE, JS_TRUE, JS_INT, JS_REAL, JS_STRING, JS_ARRAY, JS_OBJECT };

/* One value (or an object member's name, a JS_STRING).  A container's
 * children follow it in the array: an object's as name, value, name, value. */
struct jnode {
	enum jscan_type type;
	uint32_t next; /* index of the first node after this one's subtree */
	uint32_t len;  /* JS_STRING: bytes (no NUL inside); containers: values held */
	union {
		const char *s; /* JS_STRING: NUL-terminated, in the parsed buffer */
		int64_t i;     /* JS_INT */
	} v;
};

struct jdoc {
	struct jnode *nodes; /* owned: jscan_free() */
	uint32_t n, cap;
	bool duplicate; /* jscan_get() met a member name twice */
	char err[JSCAN_ERR_LEN];
};

/*
 * Parses buf[0..len) (buf[len] must be writable too; the text is rewritten).
 * 0 and the root at doc->nodes[0], or -1 with doc->err ("byte N: what").
 * Either way jscan_free() releases the nodes.
 */
int jscan_parse(struct jdoc *doc, char *buf, size_t len);
void jscan_free(struct jdoc *doc);

/* obj's member named key (NULL if obj is not an object or lacks it); a second
 * member of that name sets doc->duplicate. */
const struct jnode *jscan_get(struct jdoc *doc, const struct jnode *obj, const char *key);

/* A container's first value (NULL when empty or not a container); the value
 * after child in parent (NULL after the last).  For arrays. */
const struct jnode *jscan_first(const struct jnode *parent);
const struct jnode *jscan_next(const struct jdoc *doc, const struct jnode *parent,
			       const struct jnode *child);

/* The string's text, or NULL if n is NULL or not a string. */
static inline const char *jscan_str(const struct jnode *n)
{
	return n != NULL && n->type == JS_STRING ? n->v.s : NULL;
}

static inline bool jscan_is(const struct jnode *n, enum jscan_type t)
{
	return n != NULL && n->type == t;
}

#endif
