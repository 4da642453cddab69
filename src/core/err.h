/*
 * err.h - the one error model of Plinth.
 *
 * A function that can fail returns int: 0 on success or a negative enum err.
 * The one-line human detail travels separately (in the request context or an
 * out-parameter buffer), never in a global.  The HTTP layer maps each code to a
 * status in exactly one table (src/http/problem.c).
 */
#ifndef PLINTH_ERR_H
#define PLINTH_ERR_H

enum err {
	ERR_OK = 0,
	ERR_NOMEM = -1,        /* allocation failed */
	ERR_INVALID = -2,      /* input failed validation (422) */
	ERR_NOT_FOUND = -3,    /* no such resource (404) */
	ERR_CONFLICT = -4,     /* impossible state transition (409) */
	ERR_BUDGET = -5,       /* refused: team budget would be exceeded (409) */
	ERR_CAPACITY = -6,     /* refused: GPU capacity would be exceeded (409) */
	ERR_FORBIDDEN = -7,    /* authenticated but not allowed (403) */
	ERR_UNAUTHORIZED = -8, /* missing or bad token (401) */
	ERR_IDEMPOTENCY = -9,  /* Idempotency-Key reused with another body (422) */
	ERR_STORE = -10,       /* the database failed (500, nothing changed) */
	ERR_UNAVAILABLE = -11, /* the database is unreachable or busy (503) */
	ERR_OVERFLOW = -12,    /* an amount does not fit in 64-bit micro-units */
	ERR_TOO_LARGE = -13,   /* body or header over the limit (413/431) */
	ERR_MALFORMED = -14,   /* not parseable at all, e.g. bad JSON (400) */
};

/* A stable lower-case name for logs and problem types ("budget-exceeded"...). */
const char *err_name(int err);

#endif
