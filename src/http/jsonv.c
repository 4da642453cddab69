/*
 * jsonv.c - validators declared as data; see jsonv.h.
 */
#include "http/jsonv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/money.h"
#include "util/jsonw.h"

void jsonv_utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p != '\0') {
		size_t n = jw_utf8_seq_len(p);
		if (n == 0)
			*p++ = '?';
		else
			p += n;
	}
}

/* The refusal of jsonv_prescan; its message names the limit. */
static int too_large(char *detail, size_t detail_len, const char *what, long limit)
{
	int w = snprintf(detail, detail_len, "the body has %s %ld (a limit)", what, limit);
	if (w < 0 || (size_t)w >= detail_len)
		snprintf(detail, detail_len, "the body is over a limit");
	return ERR_INVALID;
}

int jsonv_prescan(const char *p, size_t n, char *detail, size_t detail_len)
{
	size_t depth = 0, tokens = 0, run = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		bool starts = false; /* a key or a value starts at this byte */
		if (c == '"') {
			size_t begin = ++i;
			while (i < n && p[i] != '"')
				i += p[i] == '\\' ? 2 : 1;
			if (i >= n)
				return 0; /* unterminated: the parser says where */
			if (i - begin > JSONV_MAX_STRING)
				return too_large(detail, detail_len, "a string longer than",
						 JSONV_MAX_STRING);
			starts = true;
			run = 0;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ':' ||
			   c == '}' || c == ']') {
			if ((c == '}' || c == ']') && depth > 0)
				depth--;
			run = 0;
		} else if (c == '{' || c == '[') {
			if (++depth > JSONV_MAX_DEPTH)
				return too_large(detail, detail_len, "nesting deeper than",
						 JSONV_MAX_DEPTH);
			starts = true;
			run = 0;
		} else { /* a number or a literal (or garbage the parser will refuse) */
			starts = run++ == 0;
			if (run > JSONV_MAX_NUMBER)
				return too_large(detail, detail_len, "a number or literal longer than",
						 JSONV_MAX_NUMBER);
		}
		if (starts && ++tokens > JSONV_MAX_TOKENS)
			return too_large(detail, detail_len, "more keys and values than",
					 JSONV_MAX_TOKENS);
	}
	return 0;
}

void jsonv_fit(char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);
	if (len < n) {
		memcpy(dst, src, len + 1);
		return;
	}
	/* Cut where a UTF-8 sequence starts, and say it was cut. */
	size_t keep = n - sizeof("\xe2\x80\xa6");
	while (keep > 0 && ((unsigned char)src[keep] & 0xC0) == 0x80)
		keep--;
	memcpy(dst, src, keep);
	memcpy(dst + keep, "\xe2\x80\xa6", sizeof("\xe2\x80\xa6"));
}

void jsonv_error(json_t *errors, const char *field, const char *fmt, ...)
{
	char msg[JSONV_MSG_LEN], name[192];
	char *full = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&full, fmt, ap);
	va_end(ap);
	jsonv_fit(msg, sizeof(msg), n >= 0 ? full : "invalid value");
	free(full);
	jsonv_fit(name, sizeof(name), field);
	/* Names and messages may quote user input cut at a byte limit; JSON
	 * needs valid UTF-8, and an error must never be dropped. */
	jsonv_utf8_sanitize(msg);
	jsonv_utf8_sanitize(name);
	json_t *e = json_pack("{s:s, s:s}", "field", name, "message", msg);
	if (e == NULL)
		e = json_pack("{s:s, s:s}", "field", "?", "message", "invalid value");
	if (e == NULL || json_array_append_new(errors, e) != 0)
		abort(); /* out of memory while refusing input: never accept it instead */
}

static const char *type_name(enum jv_type t)
{
	switch (t) {
	case JV_STRING: return "a string";
	case JV_INTEGER: return "an integer";
	case JV_NUMBER: return "a number";
	case JV_MONEY: return "a decimal string such as \"12.50\"";
	case JV_OBJECT: return "an object";
	case JV_ARRAY: return "an array";
	case JV_BOOL: return "a boolean";
	}
	return "?";
}

static bool type_ok(json_t *v, enum jv_type t)
{
	switch (t) {
	case JV_STRING:
	case JV_MONEY: return json_is_string(v);
	case JV_INTEGER: return json_is_integer(v);
	case JV_NUMBER: return json_is_number(v);
	case JV_OBJECT: return json_is_object(v);
	case JV_ARRAY: return json_is_array(v);
	case JV_BOOL: return json_is_boolean(v);
	}
	return false;
}

int jsonv_check(json_t *obj, const struct jv_field *spec, const char *prefix, json_t *errors)
{
	int n = 0;
	char field[160];
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		const struct jv_field *f = spec;
		while (f->name != NULL && strcmp(f->name, key) != 0)
			f++;
		snprintf(field, sizeof(field), "%s%s", prefix, key);
		if (f->name == NULL) {
			jsonv_error(errors, field, "unknown field");
			n++;
		}
	}
	for (const struct jv_field *f = spec; f->name != NULL; f++) {
		snprintf(field, sizeof(field), "%s%s", prefix, f->name);
		v = json_object_get(obj, f->name);
		if (v == NULL) { /* null is a value of the wrong type, not an absent field */
			if (f->required) {
				jsonv_error(errors, field, "is required");
				n++;
			}
			continue;
		}
		if (!type_ok(v, f->type)) {
			jsonv_error(errors, field, "must be %s", type_name(f->type));
			n++;
			continue;
		}
		if (json_is_string(v)) {
			size_t max = f->max_len ? f->max_len : 256;
			size_t len = json_string_length(v);
			if (len > max) {
				jsonv_error(errors, field, "must be at most %zu bytes", max);
				n++;
			} else if (strlen(json_string_value(v)) != len) {
				jsonv_error(errors, field, "must not contain NUL characters");
				n++;
			}
		}
		if (f->type == JV_MONEY && json_is_string(v)) {
			int64_t m;
			int rc = money_parse(json_string_value(v), &m);
			if (rc != 0) {
				jsonv_error(errors, field,
					    "must be a non-negative decimal amount with at most 6 "
					    "decimals, at most 1000000000000");
				n++;
			}
		}
	}
	return n;
}

bool jsonv_is_label(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i < len - 1))
			return false;
	}
	return true;
}

int64_t jsonv_money(json_t *obj, const char *name)
{
	int64_t m = 0;
	if (money_parse(json_string_value(json_object_get(obj, name)), &m) != 0)
		return 0;
	return m;
}
