/*
 * jsonv.h - request validation declared as data (in the spirit of kcgi).
 *
 * A handler lists the fields it accepts; jsonv_check() rejects unknown
 * fields, missing required ones and wrong JSON types, collecting every
 * problem (not just the first) as {"field","message"} items.  Range and
 * semantic checks follow in the handler, adding to the same list, and
 * nothing is changed unless the list stays empty.
 */
#ifndef PLINTH_JSONV_H
#define PLINTH_JSONV_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum jv_type {
	JV_STRING,
	JV_INTEGER,
	JV_NUMBER,  /* integer or real */
	JV_MONEY,   /* a decimal string, checked with money_parse */
	JV_OBJECT,
	JV_ARRAY,
	JV_BOOL,
};

struct jv_field {
	const char *name;
	enum jv_type type;
	bool required;
	size_t max_len; /* strings: maximum length in bytes (0 = 256) */
};

/*
 * Limits on a JSON body, checked by jsonv_prescan() before the parser
 * allocates anything: what a 1 MiB body could otherwise cost (112k keys
 * parsed and listed back as errors) is bounded by these instead.  Every
 * legitimate body is far below them (at most ~150 keys and values, nesting 3,
 * strings of 4 KiB).
 */
#define JSONV_MAX_DEPTH 8           /* nested objects and arrays */
#define JSONV_MAX_TOKENS 1024       /* keys and values, in all */
#define JSONV_MAX_STRING 32768      /* bytes of one string as sent, escapes included */
#define JSONV_MAX_NUMBER 64         /* bytes of one number or literal */

/*
 * A linear scan of the raw bytes (no allocation, no parse): counts nesting,
 * keys and values and measures strings and numbers.  Returns 0 when the body
 * is within the limits (or is not JSON: the parser reports that), else
 * ERR_INVALID with a message naming the limit.
 */
int jsonv_prescan(const char *p, size_t n, char *detail, size_t detail_len);

/* Replaces every byte that is not part of valid UTF-8 with '?', in place. */
void jsonv_utf8_sanitize(char *s);

/* Appends {"field": field, "message": printf(fmt...)} to errors. */
void jsonv_error(json_t *errors, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Checks obj against spec (terminated by a {NULL} entry).  prefix names the
 * enclosing field for nested objects ("budget." -> "budget.amount").
 * Returns the number of errors appended.
 */
int jsonv_check(json_t *obj, const struct jv_field *spec, const char *prefix, json_t *errors);

/* A DNS-1123 label: ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ */
bool jsonv_is_label(const char *s);

/* An error message's room: a longer one is cut visibly ("…"), never silently. */
#define JSONV_MSG_LEN 1024
/* src into dst (n bytes): whole, or cut at a UTF-8 boundary and ended with "…". */
void jsonv_fit(char *dst, size_t n, const char *src);

/* Reads a money field known to be valid (after jsonv_check). */
int64_t jsonv_money(json_t *obj, const char *name);

#endif
