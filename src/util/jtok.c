/*
 * jtok.c - see jtok.h.  One pass over the text with an explicit stack (no
 * recursion, so depth costs no C stack), tokens written into the caller's
 * array; never allocates, never reads past n.
 */
#include "util/jtok.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t jtok_max_tokens(size_t n)
{
	/* Every value but the last takes at least two bytes (itself and a
	 * separator): n / 2 + 1, with room to spare. */
	return n / 2 + 2;
}

struct scan {
	const char *s;
	size_t n, pos;
	struct jtok *toks;
	size_t max, ntok;
	char *why;
	size_t why_len;
};

__attribute__((format(printf, 2, 3))) static long fail(struct scan *sc, const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sc->why_len > 0)
		snprintf(sc->why, sc->why_len, "%s at byte %zu", msg, sc->pos);
	return -1;
}

static void skip_ws(struct scan *sc)
{
	while (sc->pos < sc->n) {
		char c = sc->s[sc->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		sc->pos++;
	}
}

static long tok_new(struct scan *sc, enum jtok_type type, size_t start)
{
	if (sc->ntok >= sc->max)
		return fail(sc, "too many JSON values");
	struct jtok *t = &sc->toks[sc->ntok];
	t->type = (uint8_t)type;
	t->escaped = false;
	t->start = (uint32_t)start;
	t->end = (uint32_t)start;
	t->next = (uint32_t)sc->ntok + 1;
	return (long)sc->ntok++;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A string starting at the quote at sc->pos; its token index or -1. */
static long scan_string(struct scan *sc)
{
	long t = tok_new(sc, JTOK_STRING, ++sc->pos);
	if (t < 0)
		return -1;
	while (sc->pos < sc->n) {
		unsigned char c = (unsigned char)sc->s[sc->pos];
		if (c == '"') {
			sc->toks[t].end = (uint32_t)sc->pos++;
			return t;
		}
		if (c < 0x20)
			return fail(sc, "a control character in a string");
		if (c == '\\') {
			sc->toks[t].escaped = true;
			if (sc->pos + 1 >= sc->n)
				break;
			char e = sc->s[sc->pos + 1];
			if (e == 'u') {
				if (sc->pos + 6 > sc->n)
					break;
				for (int k = 2; k < 6; k++)
					if (hexval(sc->s[sc->pos + k]) < 0)
						return fail(sc, "a bad \\u escape");
				sc->pos += 6;
				continue;
			}
			if (strchr("\"\\/bfnrt", e) == NULL || e == '\0')
				return fail(sc, "a bad escape");
			sc->pos += 2;
			continue;
		}
		sc->pos++;
	}
	return fail(sc, "an unterminated string");
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static long scan_number(struct scan *sc)
{
	size_t p = sc->pos;
	const char *s = sc->s;
	if (p < sc->n && s[p] == '-')
		p++;
	if (p < sc->n && s[p] == '0') {
		p++;
	} else if (p < sc->n && is_digit(s[p])) {
		while (p < sc->n && is_digit(s[p]))
			p++;
	} else {
		return fail(sc, "not a JSON value");
	}
	if (p < sc->n && s[p] == '.') {
		p++;
		if (p >= sc->n || !is_digit(s[p]))
			return fail(sc, "a bad number");
		while (p < sc->n && is_digit(s[p]))
			p++;
	}
	if (p < sc->n && (s[p] == 'e' || s[p] == 'E')) {
		p++;
		if (p < sc->n && (s[p] == '+' || s[p] == '-'))
			p++;
		if (p >= sc->n || !is_digit(s[p]))
			return fail(sc, "a bad number");
		while (p < sc->n && is_digit(s[p]))
			p++;
	}
	long t = tok_new(sc, JTOK_NUMBER, sc->pos);
	if (t < 0)
		return -1;
	sc->toks[t].end = (uint32_t)p;
	sc->pos = p;
	return t;
}

static long scan_literal(struct scan *sc, const char *word, enum jtok_type type)
{
	size_t len = strlen(word);
	if (sc->n - sc->pos < len || memcmp(sc->s + sc->pos, word, len) != 0)
		return fail(sc, "not a JSON value");
	long t = tok_new(sc, type, sc->pos);
	if (t < 0)
		return -1;
	sc->pos += len;
	sc->toks[t].end = (uint32_t)sc->pos;
	return t;
}

long jtok_parse(const char *s, size_t n, struct jtok *toks, size_t max, char *why, size_t why_len)
{
	struct scan sc = {s, n, 0, toks, max, 0, why, why_len};
	long stack[JTOK_MAX_DEPTH]; /* open containers */
	int depth = 0;
	/* What the grammar wants next. */
	enum { VALUE, KEY_OR_END, KEY, VALUE_OR_END, COLON, COMMA_OR_END, DONE } want = VALUE;
	if (n >= UINT32_MAX)
		return fail(&sc, "a JSON text over 4 GiB");
	for (;;) {
		skip_ws(&sc);
		if (sc.pos >= n) {
			if (want == DONE)
				return (long)sc.ntok;
			return fail(&sc, "unexpected end of the JSON text");
		}
		char c = s[sc.pos];
		if (want == DONE)
			return fail(&sc, "text after the JSON value");
		if (want == COLON) {
			if (c != ':')
				return fail(&sc, "':' expected");
			sc.pos++;
			want = VALUE;
			continue;
		}
		if ((c == '}' || c == ']') &&
		    (want == KEY_OR_END || want == VALUE_OR_END || want == COMMA_OR_END)) {
			long open = stack[depth - 1];
			if ((c == '}') != (toks[open].type == JTOK_OBJECT))
				return fail(&sc, "mismatched bracket");
			sc.pos++;
			toks[open].end = (uint32_t)sc.pos;
			toks[open].next = (uint32_t)sc.ntok;
			depth--;
			want = depth == 0 ? DONE : COMMA_OR_END;
			continue;
		}
		if (want == COMMA_OR_END) {
			if (c != ',')
				return fail(&sc, "',' expected");
			sc.pos++;
			want = toks[stack[depth - 1]].type == JTOK_OBJECT ? KEY : VALUE;
			continue;
		}
		if (want == KEY || want == KEY_OR_END) {
			if (c != '"')
				return fail(&sc, "a member name expected");
			if (scan_string(&sc) < 0)
				return -1;
			want = COLON;
			continue;
		}
		/* A value. */
		long t;
		if (c == '{' || c == '[') {
			if (depth >= JTOK_MAX_DEPTH)
				return fail(&sc, "JSON nested deeper than %d", JTOK_MAX_DEPTH);
			t = tok_new(&sc, c == '{' ? JTOK_OBJECT : JTOK_ARRAY, sc.pos);
			if (t < 0)
				return -1;
			sc.pos++;
			stack[depth++] = t;
			want = c == '{' ? KEY_OR_END : VALUE_OR_END;
			continue;
		}
		if (c == '"')
			t = scan_string(&sc);
		else if (c == 't')
			t = scan_literal(&sc, "true", JTOK_TRUE);
		else if (c == 'f')
			t = scan_literal(&sc, "false", JTOK_FALSE);
		else if (c == 'n')
			t = scan_literal(&sc, "null", JTOK_NULL);
		else
			t = scan_number(&sc);
		if (t < 0)
			return -1;
		want = depth == 0 ? DONE : COMMA_OR_END;
	}
}

bool jtok_is(const struct jtok *toks, long i, enum jtok_type type)
{
	return i >= 0 && toks[i].type == type;
}

long jtok_first(const struct jtok *toks, long i)
{
	if (!jtok_is(toks, i, JTOK_OBJECT) && !jtok_is(toks, i, JTOK_ARRAY))
		return -1;
	return toks[i].next > (uint32_t)i + 1 ? i + 1 : -1;
}

long jtok_after(const struct jtok *toks, long c, long i)
{
	long n = toks[i].next;
	return n < (long)toks[c].next ? n : -1;
}

/* Decodes the escape at s[*p] (a backslash) into out (up to 4 bytes). */
static size_t unescape_one(const char *s, size_t *p, size_t end, char *out)
{
	char e = s[*p + 1];
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *k = strchr(from, e);
	if (e != 'u') {
		*p += 2;
		out[0] = k ? to[k - from] : e;
		return 1;
	}
	unsigned cp = 0;
	for (int i = 2; i < 6; i++)
		cp = cp * 16 + (unsigned)hexval(s[*p + i]);
	*p += 6;
	if (cp >= 0xd800 && cp < 0xdc00 && *p + 6 <= end && s[*p] == '\\' && s[*p + 1] == 'u') {
		unsigned lo = 0;
		for (int i = 2; i < 6; i++)
			lo = lo * 16 + (unsigned)hexval(s[*p + i]);
		if (lo >= 0xdc00 && lo < 0xe000) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			*p += 6;
		}
	}
	if (cp >= 0xd800 && cp < 0xe000)
		cp = 0xfffd; /* a lone surrogate */
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

long jtok_str(const char *s, const struct jtok *toks, long i, char *buf, size_t len)
{
	if (!jtok_is(toks, i, JTOK_STRING) || len == 0)
		return -1;
	size_t p = toks[i].start, end = toks[i].end, o = 0;
	while (p < end) {
		char tmp[4];
		size_t k = 1;
		if (s[p] == '\\')
			k = unescape_one(s, &p, end, tmp);
		else
			tmp[0] = s[p++];
		if (o + k >= len)
			return -1;
		memcpy(buf + o, tmp, k);
		o += k;
	}
	buf[o] = '\0';
	return (long)o;
}

bool jtok_str_eq(const char *s, const struct jtok *toks, long i, const char *text)
{
	if (!jtok_is(toks, i, JTOK_STRING))
		return false;
	size_t tl = strlen(text);
	if (!toks[i].escaped)
		return toks[i].end - toks[i].start == tl && memcmp(s + toks[i].start, text, tl) == 0;
	char buf[256];
	return tl < sizeof(buf) && jtok_str(s, toks, i, buf, sizeof(buf)) == (long)tl &&
	       memcmp(buf, text, tl) == 0;
}

long jtok_get(const char *s, const struct jtok *toks, long obj, const char *key)
{
	long found = -1;
	if (!jtok_is(toks, obj, JTOK_OBJECT))
		return -1;
	for (long k = jtok_first(toks, obj); k >= 0;) {
		long v = k + 1; /* a key is a string: its value follows it */
		if (jtok_str_eq(s, toks, k, key))
			found = v;
		k = jtok_after(toks, obj, v);
	}
	return found;
}

int jtok_int(const char *s, const struct jtok *toks, long i, int64_t *out)
{
	if (!jtok_is(toks, i, JTOK_NUMBER))
		return -1;
	char buf[24];
	size_t len = toks[i].end - toks[i].start;
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, s + toks[i].start, len);
	buf[len] = '\0';
	if (strpbrk(buf, ".eE") != NULL)
		return -1;
	errno = 0;
	long long v = strtoll(buf, NULL, 10);
	if (errno == ERANGE)
		return -1;
	*out = v;
	return 0;
}
