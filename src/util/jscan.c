/*
 * jscan.c - the strict JSON parser of jscan.h: recursive descent over the
 * text, nodes in one growing array, strings unescaped in place.
 */
#include "util/jscan.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	struct jdoc *doc;
	char *buf;
	size_t pos, len;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *p, const char *fmt, ...)
{
	char what[64]; /* "byte <20 digits>: " + this fits JSCAN_ERR_LEN */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(p->doc->err, sizeof(p->doc->err), "byte %zu: %s", p->pos, what);
	return -1;
}

/* A new node (its index in *at): -1 when out of memory or past 2^32 nodes. */
static int node_new(struct parser *p, enum jscan_type t, uint32_t *at)
{
	struct jdoc *d = p->doc;

	if (d->n == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 64;
		struct jnode *nn;

		if (cap <= d->cap || cap > UINT32_MAX / 2)
			return fail(p, "too many values");
		nn = realloc(d->nodes, (size_t)cap * sizeof(*nn));
		if (nn == NULL)
			return fail(p, "out of memory");
		d->nodes = nn;
		d->cap = cap;
	}
	*at = d->n++;
	memset(&d->nodes[*at], 0, sizeof(d->nodes[*at]));
	d->nodes[*at].type = t;
	return 0;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->buf[p->pos];
		if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
			return;
		p->pos++;
	}
}

static int hex4(struct parser *p, size_t at, unsigned *out)
{
	unsigned v = 0;

	if (p->len - at < 4)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)p->buf[at + i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	*out = v;
	return 0;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c >= 0xC2 && c <= 0xDF)
		need = 1;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F; /* no UTF-16 surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* at most U+10FFFF */
	} else
		return 0;
	if (n < need + 1 || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i <= need; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return need + 1;
}

static size_t utf8_put(char *w, unsigned cp)
{
	if (cp < 0x80) {
		w[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		w[0] = (char)(0xC0 | (cp >> 6));
		w[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		w[0] = (char)(0xE0 | (cp >> 12));
		w[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		w[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	w[0] = (char)(0xF0 | (cp >> 18));
	w[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	w[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	w[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A \u escape at p->pos (just after the backslash and 'u'), pairs included:
 * its UTF-8 written at *w.  An escape is longer than its UTF-8, so the write
 * never passes the read. */
static int unicode_escape(struct parser *p, char **w)
{
	unsigned cp, lo;

	if (hex4(p, p->pos, &cp) != 0)
		return fail(p, "invalid \\u escape");
	p->pos += 4;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return fail(p, "a lone UTF-16 low surrogate");
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (p->len - p->pos < 6 || p->buf[p->pos] != '\\' || p->buf[p->pos + 1] != 'u' ||
		    hex4(p, p->pos + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
			return fail(p, "a UTF-16 high surrogate without its low half");
		p->pos += 6;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	if (cp == 0)
		return fail(p, "\\u0000 is not allowed in a string");
	*w += utf8_put(*w, cp);
	return 0;
}

/* The string at p->pos (its opening quote): unescaped in place and
 * NUL-terminated; *s and *n describe it. */
static int string_scan(struct parser *p, const char **s, uint32_t *n)
{
	char *start = p->buf + ++p->pos, *w = start;

	for (;;) {
		/* The common case: a run of plain ASCII, copied only after an escape. */
		size_t run = p->pos;
		while (run < p->len) {
			unsigned char c = (unsigned char)p->buf[run];
			if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
				break;
			run++;
		}
		size_t k = run - p->pos;
		if (w != p->buf + p->pos)
			memmove(w, p->buf + p->pos, k);
		w += k;
		p->pos = run;
		if (p->pos >= p->len)
			return fail(p, "unterminated string");
		unsigned char c = (unsigned char)p->buf[p->pos];
		if (c == '"') {
			p->pos++;
			if ((size_t)(w - start) > UINT32_MAX)
				return fail(p, "string too long");
			*w = '\0';
			*s = start;
			*n = (uint32_t)(w - start);
			return 0;
		}
		if (c < 0x20)
			return fail(p, "a control character in a string");
		if (c >= 0x80) {
			size_t u = utf8_len((const unsigned char *)p->buf + p->pos, p->len - p->pos);
			if (u == 0)
				return fail(p, "invalid UTF-8 in a string");
			memmove(w, p->buf + p->pos, u);
			w += u;
			p->pos += u;
			continue;
		}
		/* A backslash. */
		if (p->pos + 1 >= p->len)
			return fail(p, "unterminated string");
		char e = p->buf[p->pos + 1];
		p->pos += 2;
		switch (e) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/': *w++ = '/'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u':
			if (unicode_escape(p, &w) != 0)
				return -1;
			break;
		default:
			p->pos -= 1;
			return fail(p, "invalid escape");
		}
	}
}

/* A number at p->pos: JS_INT when it has no fraction or exponent and fits
 * int64 (larger is refused, as jansson does), else JS_REAL if finite. */
static int number_scan(struct parser *p, struct jnode *out)
{
	size_t start = p->pos, i = p->pos;
	bool neg = false, real = false;
	const char *b = p->buf;

	if (i < p->len && b[i] == '-') {
		neg = true;
		i++;
	}
	if (i >= p->len || b[i] < '0' || b[i] > '9')
		return fail(p, "invalid number");
	if (b[i] == '0')
		i++;
	else
		while (i < p->len && b[i] >= '0' && b[i] <= '9')
			i++;
	size_t int_end = i;
	if (i < p->len && b[i] == '.') {
		real = true;
		i++;
		if (i >= p->len || b[i] < '0' || b[i] > '9')
			return fail(p, "invalid number");
		while (i < p->len && b[i] >= '0' && b[i] <= '9')
			i++;
	}
	if (i < p->len && (b[i] == 'e' || b[i] == 'E')) {
		real = true;
		i++;
		if (i < p->len && (b[i] == '+' || b[i] == '-'))
			i++;
		if (i >= p->len || b[i] < '0' || b[i] > '9')
			return fail(p, "invalid number");
		while (i < p->len && b[i] >= '0' && b[i] <= '9')
			i++;
	}
	if (real) {
		/* strtod stops at the first byte that is not part of the number,
		 * which the grammar above found: a delimiter, or the NUL at len. */
		char save = p->buf[i];
		p->buf[i] = '\0';
		errno = 0;
		double v = strtod(b + start, NULL);
		p->buf[i] = save;
		if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
			return fail(p, "real number overflow");
		out->type = JS_REAL;
		p->pos = i;
		return 0;
	}
	/* Accumulate negatively: -2^63 fits, 2^63 does not. */
	int64_t v = 0;
	for (size_t k = start + neg; k < int_end; k++) {
		int d = b[k] - '0';
		if (v < (INT64_MIN + d) / 10)
			return fail(p, "too big integer");
		v = v * 10 - d;
	}
	if (!neg) {
		if (v == INT64_MIN)
			return fail(p, "too big integer");
		v = -v;
	}
	out->type = JS_INT;
	out->v.i = v;
	p->pos = i;
	return 0;
}

static int value_scan(struct parser *p, int depth);

/* An array or object at p->pos; its node already made at index at. */
static int container_scan(struct parser *p, uint32_t at, bool object, int depth)
{
	char close = object ? '}' : ']';
	uint32_t count = 0;

	if (depth > JSCAN_MAX_DEPTH)
		return fail(p, "nested deeper than %d", JSCAN_MAX_DEPTH);
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->buf[p->pos] == close) {
		p->pos++;
	} else {
		for (;;) {
			if (object) {
				uint32_t k;
				const char *s;
				uint32_t n;

				if (p->pos >= p->len || p->buf[p->pos] != '"')
					return fail(p, "string or '}' expected");
				if (node_new(p, JS_STRING, &k) != 0 || string_scan(p, &s, &n) != 0)
					return -1;
				p->doc->nodes[k].v.s = s;
				p->doc->nodes[k].len = n;
				p->doc->nodes[k].next = k + 1;
				skip_ws(p);
				if (p->pos >= p->len || p->buf[p->pos] != ':')
					return fail(p, "':' expected");
				p->pos++;
				skip_ws(p);
			}
			if (value_scan(p, depth + 1) != 0)
				return -1;
			if (count == UINT32_MAX)
				return fail(p, "too many values");
			count++;
			skip_ws(p);
			if (p->pos < p->len && p->buf[p->pos] == ',') {
				p->pos++;
				skip_ws(p);
				continue;
			}
			if (p->pos < p->len && p->buf[p->pos] == close) {
				p->pos++;
				break;
			}
			return fail(p, object ? "',' or '}' expected" : "',' or ']' expected");
		}
	}
	p->doc->nodes[at].len = count;
	p->doc->nodes[at].next = p->doc->n;
	return 0;
}

static bool literal(struct parser *p, const char *word, size_t n)
{
	if (p->len - p->pos < n || memcmp(p->buf + p->pos, word, n) != 0)
		return false;
	p->pos += n;
	return true;
}

static int value_scan(struct parser *p, int depth)
{
	uint32_t at;

	if (p->pos >= p->len)
		return fail(p, "unexpected end of input");
	char c = p->buf[p->pos];
	if (node_new(p, JS_NULL, &at) != 0)
		return -1;
	p->doc->nodes[at].next = at + 1;
	switch (c) {
	case '{':
	case '[':
		p->doc->nodes[at].type = c == '{' ? JS_OBJECT : JS_ARRAY;
		return container_scan(p, at, c == '{', depth);
	case '"': {
		const char *s;
		uint32_t n;
		if (string_scan(p, &s, &n) != 0)
			return -1;
		p->doc->nodes[at].type = JS_STRING;
		p->doc->nodes[at].v.s = s;
		p->doc->nodes[at].len = n;
		return 0;
	}
	case 't':
		p->doc->nodes[at].type = JS_TRUE;
		return literal(p, "true", 4) ? 0 : fail(p, "invalid token");
	case 'f':
		p->doc->nodes[at].type = JS_FALSE;
		return literal(p, "false", 5) ? 0 : fail(p, "invalid token");
	case 'n':
		return literal(p, "null", 4) ? 0 : fail(p, "invalid token");
	default:
		if (c == '-' || (c >= '0' && c <= '9')) {
			struct jnode tmp = {0};
			if (number_scan(p, &tmp) != 0)
				return -1;
			p->doc->nodes[at].type = tmp.type;
			p->doc->nodes[at].v = tmp.v;
			return 0;
		}
		return fail(p, "invalid token");
	}
}

int jscan_parse(struct jdoc *doc, char *buf, size_t len)
{
	struct parser p = {doc, buf, 0, len};

	memset(doc, 0, sizeof(*doc));
	skip_ws(&p);
	if (p.pos >= p.len || (buf[p.pos] != '{' && buf[p.pos] != '['))
		return fail(&p, "'[' or '{' expected");
	if (value_scan(&p, 1) != 0)
		return -1;
	skip_ws(&p);
	if (p.pos != p.len)
		return fail(&p, "end of input expected");
	return 0;
}

void jscan_free(struct jdoc *doc)
{
	free(doc->nodes);
	doc->nodes = NULL;
	doc->n = doc->cap = 0;
}

const struct jnode *jscan_get(struct jdoc *doc, const struct jnode *obj, const char *key)
{
	const struct jnode *found = NULL;

	if (obj == NULL || obj->type != JS_OBJECT)
		return NULL;
	/* Every member is looked at: a name given twice is reported, whichever
	 * of the two a reader would have taken. */
	for (uint32_t i = (uint32_t)(obj - doc->nodes) + 1; i < obj->next;
	     i = doc->nodes[i + 1].next) {
		if (strcmp(doc->nodes[i].v.s, key) == 0) {
			if (found != NULL)
				doc->duplicate = true;
			found = &doc->nodes[i + 1];
		}
	}
	return found;
}

const struct jnode *jscan_first(const struct jnode *parent)
{
	if (parent == NULL || (parent->type != JS_ARRAY && parent->type != JS_OBJECT) ||
	    parent->len == 0)
		return NULL;
	return parent + 1;
}

const struct jnode *jscan_next(const struct jdoc *doc, const struct jnode *parent,
			       const struct jnode *child)
{
	return child->next < parent->next ? &doc->nodes[child->next] : NULL;
}
