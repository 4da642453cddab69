/* jsonw.c - see jsonw.h. */
#include "util/jsonw.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t jw_utf8_seq_len(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (n == 0 || s[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
		return 0;
	if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
		return 0;
	return n;
}

void jw_init(struct jsonw *w)
{
	memset(w, 0, sizeof(*w));
}

static void put(struct jsonw *w, const char *s, size_t n)
{
	if (!w->failed && !buf_add(&w->out, s, n))
		w->failed = true;
}

static void put_string(struct jsonw *w, const char *s)
{
	static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
	const unsigned char *p = (const unsigned char *)s;

	put(w, "\"", 1);
	while (*p) {
		const unsigned char *run = p;
		size_t n;

		/* Copy the longest stretch that needs no escaping in one go. */
		while (*p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
			p++;
		if (p > run)
			put(w, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		if (*p >= 0x80) {
			n = jw_utf8_seq_len(p);
			if (n == 0) {
				put(w, "?", 1);
				p++;
			} else {
				put(w, (const char *)p, n);
				p += n;
			}
			continue;
		}
		switch (*p) {
		case '"': put(w, "\\\"", 2); break;
		case '\\': put(w, "\\\\", 2); break;
		case '\n': put(w, "\\n", 2); break;
		case '\r': put(w, "\\r", 2); break;
		case '\t': put(w, "\\t", 2); break;
		case '\b': put(w, "\\b", 2); break;
		case '\f': put(w, "\\f", 2); break;
		default: {
			char u[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
			put(w, u, sizeof(u));
		}
		}
		p++;
	}
	put(w, "\"", 1);
}

/* The comma and the key that come before a member. */
static void member(struct jsonw *w, const char *key)
{
	if (w->depth == 0) {
		if (key || w->out.len > 0)
			w->failed = true; /* one top-level value, no key */
		return;
	}
	if (w->nonempty & (1u << w->depth))
		put(w, ",", 1);
	w->nonempty |= 1u << w->depth;
	if (!key) {
		w->failed = true; /* object members need a name */
		return;
	}
	put_string(w, key);
	put(w, ":", 1);
}

void jw_open(struct jsonw *w, const char *key)
{
	member(w, key);
	if (w->depth + 1 >= JW_MAX_DEPTH) {
		w->failed = true;
		return;
	}
	w->depth++;
	w->nonempty &= ~(1u << w->depth);
	put(w, "{", 1);
}

void jw_close(struct jsonw *w)
{
	if (w->depth == 0) {
		w->failed = true;
		return;
	}
	w->depth--;
	put(w, "}", 1);
}

void jw_str(struct jsonw *w, const char *key, const char *v)
{
	member(w, key);
	if (v)
		put_string(w, v);
	else
		put(w, "null", 4);
}

void jw_int(struct jsonw *w, const char *key, int64_t v)
{
	char b[24];
	int n = snprintf(b, sizeof(b), "%" PRId64, v);

	member(w, key);
	put(w, b, (size_t)n);
}

void jw_null(struct jsonw *w, const char *key)
{
	member(w, key);
	put(w, "null", 4);
}

void jw_raw(struct jsonw *w, const char *key, const char *json)
{
	member(w, key);
	if (json)
		put(w, json, strlen(json));
	else
		put(w, "null", 4);
}

void jw_fixed(struct jsonw *w, const char *key, int64_t v, int decimals)
{
	char b[48];
	int64_t scale = 1;
	int n;

	if (v < 0 || decimals < 0 || decimals > 18) {
		w->failed = true;
		return;
	}
	for (int i = 0; i < decimals; i++)
		scale *= 10;
	n = snprintf(b, sizeof(b), "%" PRId64, v / scale);
	if (v % scale != 0) {
		int64_t frac = v % scale;
		int d = decimals;

		while (frac % 10 == 0) {
			frac /= 10;
			d--;
		}
		n += snprintf(b + n, sizeof(b) - (size_t)n, ".%0*" PRId64, d, frac);
	}
	member(w, key);
	put(w, b, (size_t)n);
}

char *jw_finish(struct jsonw *w, size_t *len)
{
	char *out = w->out.p;

	if (w->failed || w->depth != 0 || !out) {
		free(out);
		out = NULL;
	} else if (len) {
		*len = w->out.len;
	}
	w->out = (struct buf){0};
	return out;
}
