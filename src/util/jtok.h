/*
 * jtok.h - a strict JSON tokenizer that allocates nothing: the text is
 * checked and cut into a flat array of tokens the caller provides, and
 * values are looked up in place.  For the admission webhook's hot path,
 * where a whole Pod is read to find a dozen members (jansson builds a tree
 * of a few hundred allocations for it).
 */
#ifndef PLINTH_JTOK_H
#define PLINTH_JTOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JTOK_MAX_DEPTH 64

enum jtok_type { JTOK_OBJECT, JTOK_ARRAY, JTOK_STRING, JTOK_NUMBER, JTOK_TRUE, JTOK_FALSE, JTOK_NULL };

struct jtok {
	uint8_t type;     /* enum jtok_type */
	bool escaped;     /* a string with a backslash escape */
	uint32_t start;   /* offset of the value (a string: after its opening quote) */
	uint32_t end;     /* offset just past it (a string: its closing quote) */
	uint32_t next;    /* index of the token after this value and everything in it */
};

/* Tokens that a text of n bytes can need at most (the caller's array size). */
size_t jtok_max_tokens(size_t n);

/*
 * Checks that s[0..n) is one JSON value (RFC 8259, at most JTOK_MAX_DEPTH
 * deep, n < 4 GiB) and cuts it into toks (at least jtok_max_tokens(n)).  An
 * object's tokens are key, value, key, value...  Returns the number of
 * tokens, or -1 with a one-line reason in why[why_len] (offset included).
 */
long jtok_parse(const char *s, size_t n, struct jtok *toks, size_t max, char *why, size_t why_len);

/* The member `key` of the object at index obj (the last one when repeated,
 * as Go's decoder does), or -1 (absent, or obj is not an object). */
long jtok_get(const char *s, const struct jtok *toks, long obj, const char *key);

/* Is token i (i >= 0) of this type? */
bool jtok_is(const struct jtok *toks, long i, enum jtok_type type);

/*
 * The string at token i, unescaped and NUL-terminated, into buf[len].
 * Returns its length, or -1 when i is not a string or it does not fit.
 */
long jtok_str(const char *s, const struct jtok *toks, long i, char *buf, size_t len);

/* Does the string at token i equal text exactly? */
bool jtok_str_eq(const char *s, const struct jtok *toks, long i, const char *text);

/* The integer at token i (no fraction or exponent, in int64_t): 0, or -1. */
int jtok_int(const char *s, const struct jtok *toks, long i, int64_t *out);

/* The first element or member value of a container (-1 if empty); for an
 * object, the first key.  Then jtok_after() steps to the next sibling. */
long jtok_first(const struct jtok *toks, long i);
/* The sibling after token i within container c, or -1 at its end. */
long jtok_after(const struct jtok *toks, long c, long i);

#endif
