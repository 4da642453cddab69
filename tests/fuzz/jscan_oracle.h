/*
 * jscan_oracle.h - the property util/jscan.h must keep, checked against
 * jansson (the parser it replaces on the webhook's path): for any input,
 *   - jscan accepts it exactly when jansson (flags 0: the top an object or
 *     array, no NUL in strings) does, but for nesting deeper than
 *     JSCAN_MAX_DEPTH and raw NUL bytes (which jansson skips between
 *     tokens), which jscan alone refuses;
 *   - when both accept, the trees are equal: types, integers, string bytes,
 *     array order, and every object member jansson has is what jscan_get()
 *     finds (the last of a repeated name in both), with no member more.
 * Used by the fuzz target (tests/fuzz/fuzz_jscan.c) and the unit test's
 * mutation loop (tests/unit/test_jscan.c).  Returns 0, or -1 with a reason.
 */
#ifndef PLINTH_TESTS_JSCAN_ORACLE_H
#define PLINTH_TESTS_JSCAN_ORACLE_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/jscan.h"

static size_t oracle_depth(const json_t *j)
{
	size_t d = 0, i;
	const char *k;
	json_t *v;

	if (json_is_array(j)) {
		json_array_foreach((json_t *)j, i, v) {
			size_t c = oracle_depth(v);
			d = c > d ? c : d;
		}
		return d + 1;
	}
	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v) {
			size_t c = oracle_depth(v);
			d = c > d ? c : d;
		}
		return d + 1;
	}
	return 0;
}

static int oracle_same(struct jdoc *d, const json_t *j, const struct jnode *n, const char **why)
{
	switch (json_typeof(j)) {
	case JSON_NULL:
		return n->type == JS_NULL ? 0 : (*why = "null differs", -1);
	case JSON_TRUE:
		return n->type == JS_TRUE ? 0 : (*why = "true differs", -1);
	case JSON_FALSE:
		return n->type == JS_FALSE ? 0 : (*why = "false differs", -1);
	case JSON_INTEGER:
		return n->type == JS_INT && n->v.i == json_integer_value(j) ? 0
									  : (*why = "integer differs", -1);
	case JSON_REAL:
		return n->type == JS_REAL ? 0 : (*why = "real differs", -1);
	case JSON_STRING:
		if (n->type != JS_STRING || n->len != json_string_length(j) ||
		    memcmp(n->v.s, json_string_value(j), n->len) != 0 || n->v.s[n->len] != '\0')
			return *why = "string differs", -1;
		return 0;
	case JSON_ARRAY: {
		const struct jnode *c = jscan_first(n);
		size_t i;
		json_t *v;
		if (n->type != JS_ARRAY || n->len != json_array_size(j))
			return *why = "array differs", -1;
		json_array_foreach((json_t *)j, i, v) {
			if (c == NULL || oracle_same(d, v, c, why) != 0)
				return c == NULL ? (*why = "array too short", -1) : -1;
			c = jscan_next(d, n, c);
		}
		return c == NULL ? 0 : (*why = "array too long", -1);
	}
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		if (n->type != JS_OBJECT || n->len < json_object_size(j))
			return *why = "object differs", -1;
		json_object_foreach((json_t *)j, k, v) {
			const struct jnode *m = jscan_get(d, n, k);
			if (m == NULL || oracle_same(d, v, m, why) != 0)
				return m == NULL ? (*why = "member missing", -1) : -1;
		}
		/* n->len > size only with repeated names, which jscan_get saw. */
		if (n->len > json_object_size(j) && !d->duplicate)
			return *why = "members differ", -1;
		return 0;
	}
	}
	return *why = "unknown type", -1;
}

static int jscan_oracle(const unsigned char *data, size_t size, const char **why)
{
	char *buf = malloc(size + 1);
	struct jdoc doc;
	json_error_t err;
	int rc = 0;

	if (buf == NULL)
		return *why = "out of memory", -1;
	memcpy(buf, data, size);
	buf[size] = '\0';
	json_t *j = json_loadb((const char *)data, size, 0, &err);
	int ok = jscan_parse(&doc, buf, size) == 0;
	if (memchr(data, '\0', size) != NULL) {
		/* jansson reads a raw NUL byte between tokens as nothing at all;
		 * RFC 8259 has no place for one outside a string, nor in one. */
		if (ok) {
			*why = "jscan accepted a raw NUL byte";
			rc = -1;
		}
	} else if (j != NULL && !ok) {
		if (oracle_depth(j) <= JSCAN_MAX_DEPTH) {
			*why = "jscan refused what jansson accepted";
			rc = -1;
		}
	} else if (j == NULL && ok) {
		*why = "jscan accepted what jansson refused";
		rc = -1;
	} else if (j != NULL && ok) {
		rc = oracle_same(&doc, j, &doc.nodes[0], why);
	}
	json_decref(j);
	jscan_free(&doc);
	free(buf);
	return rc;
}

#endif
