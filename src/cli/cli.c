/*
 * cli.c - the shared machinery of the `plinth` client commands: options,
 * calling the daemon, printing problems and tables.
 *
 * It talks to the daemon only through src/net/httpc.h and must never touch
 * the daemon's internals, never compute money (the one exception: rounding
 * an amount for display, cli_money_text and cli_price_text, in integer
 * micro-units),
 * and never build JSON by string concatenation (jansson only).
 */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/money.h"
#include "net/httpc.h"

/* Bounds for talking to the daemon: a CLI call should never hang or balloon. */
#define CLI_TIMEOUT_MS 30000L
#define CLI_MAX_BODY (16u * 1024u * 1024u)

/* --- terminal output -------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char b = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		len = 2;
	else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		lo = b == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
		hi = b == 0xed ? 0x9f : 0xbf; /* no surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		lo = b == 0xf0 ? 0x90 : 0x80;
		hi = b == 0xf4 ? 0x8f : 0xbf; /* <= U+10FFFF */
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* Neutralises s into a growing buffer (see cli.h); NULL when out of memory. */
static char *cli_neutralise(const char *s, size_t len, int keep_newline, size_t *out_len)
{
	const unsigned char *p = (const unsigned char *)s;
	/* Each input byte becomes at most 6 output bytes ("\u00XX", "\ufffd"). */
	char *out = len < SIZE_MAX / 6 - 1 ? malloc(len * 6 + 1) : NULL;
	size_t o = 0, i = 0;

	if (out == NULL)
		return NULL;
	while (i < len) {
		size_t k = utf8_seq_len(p + i, len - i);
		unsigned cp = 0;
		int bad = k == 0;

		if (k == 1)
			cp = p[i];
		else if (k == 2)
			cp = ((unsigned)(p[i] & 0x1f) << 6) | (p[i + 1] & 0x3f);
		if (bad) {
			memcpy(out + o, "\\ufffd", 6);
			o += 6;
			i++;
			continue;
		}
		if ((k == 1 && ((cp < 0x20 && !(cp == '\n' && keep_newline)) || cp == 0x7f)) ||
		    (k == 2 && cp >= 0x80 && cp <= 0x9f)) {
			static const char hex[] = "0123456789abcdef";
			memcpy(out + o, "\\u00", 4);
			out[o + 4] = hex[cp >> 4];
			out[o + 5] = hex[cp & 15];
			o += 6;
		} else {
			memcpy(out + o, p + i, k);
			o += k;
		}
		i += k;
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

void cli_write(FILE *f, const char *s, size_t len, int keep_newline)
{
	size_t n = 0;
	char *safe = cli_neutralise(s, len, keep_newline, &n);

	if (safe == NULL) {
		fputs("plinth: out of memory\n", stderr);
		return;
	}
	fwrite(safe, 1, n, f);
	free(safe);
}

/* Formats and writes through cli_write; one place for both kinds of line. */
static int cli_vprintf(FILE *f, int keep_newline, const char *fmt, va_list ap)
{
	char *text = NULL;
	int n = vasprintf(&text, fmt, ap);

	if (n < 0) {
		fputs("plinth: out of memory\n", stderr);
		return -1;
	}
	cli_write(f, text, (size_t)n, keep_newline);
	free(text);
	return 0;
}

int cli_printf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = cli_vprintf(f, 1, fmt, ap);
	va_end(ap);
	return rc;
}

char *cli_text_safe(const char *s)
{
	size_t n = 0;

	return cli_neutralise(s, strlen(s), 0, &n);
}

void cli_init(struct cli *c)
{
	const char *url = getenv("PLINTH_URL");
	const char *token = getenv("PLINTH_TOKEN");

	memset(c, 0, sizeof *c);
	c->url = (url != NULL && url[0] != '\0') ? url : "http://127.0.0.1:8080";
	c->token = (token != NULL && token[0] != '\0') ? token : NULL;
	c->cmd = NULL;
}

int cli_usage(const struct cli *c, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* The message quotes the caller's arguments: neutralised like the rest. */
	cli_printf(stderr, "plinth%s%s: %s\nTry 'plinth%s%s --help'.\n", c->cmd ? " " : "",
		c->cmd ? c->cmd : "", msg ? msg : "out of memory", c->cmd ? " " : "",
		c->cmd ? c->cmd : "");
	free(msg);
	return CLI_EXIT_USAGE;
}

int cli_option_common(struct cli *c, int opt, int argc, char **argv)
{
	/* optind has moved past the offending word when getopt reports it. */
	const char *word = (optind > 0 && optind <= argc) ? argv[optind - 1] : "?";

	switch (opt) {
	case CLI_OPT_URL:
		if (optarg[0] == '\0')
			return cli_usage(c, "--url needs a value");
		c->url = optarg;
		return CLI_CONTINUE;
	case CLI_OPT_TOKEN:
		c->token = optarg[0] != '\0' ? optarg : NULL;
		return CLI_CONTINUE;
	case CLI_OPT_JSON:
		c->json = 1;
		return CLI_CONTINUE;
	case 'h':
		cli_printf(stdout, "%s", c->help ? c->help : "");
		return CLI_EXIT_OK;
	case ':':
		return cli_usage(c, "option '%s' needs a value", word);
	case '?':
		if (optopt != 0)
			return cli_usage(c, "unknown option '-%c'", optopt);
		return cli_usage(c, "unknown option '%s'", word);
	default:
		return cli_usage(c, "unexpected option '%s'", word);
	}
}

int cli_options_common_only(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	int o, rc;

	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		rc = cli_option_common(c, o, argc, argv);
		if (rc != CLI_CONTINUE)
			return rc;
	}
	return CLI_CONTINUE;
}

int cli_parse_int(const char *s, long long *out)
{
	char *end = NULL;
	long long v;

	if (s == NULL || s[0] == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* See cli.h: shared by quote and allocate so both validate alike. */
int cli_body_request(struct cli *c, json_t *body, const char *team, const char *gpu_type,
	const char *gpus, const char *hours)
{
	long long n = 0;
	double h;
	char *end = NULL;

	if (team == NULL)
		return cli_usage(c, "--team is required");
	if (gpu_type == NULL)
		return cli_usage(c, "--gpu-type is required");
	if (gpus == NULL)
		return cli_usage(c, "--gpus is required");
	if (hours == NULL)
		return cli_usage(c, "--hours is required");
	if (cli_parse_int(gpus, &n) != 0)
		return cli_usage(c, "--gpus must be a whole number, got '%s'", gpus);
	/* strtod only checks the syntax of a duration; money never goes through double. */
	h = strtod(hours, &end);
	if (end == hours || *end != '\0' || !isfinite(h))
		return cli_usage(c, "--hours must be a number, got '%s'", hours);
	if (json_object_set_new(body, "team", json_string(team)) != 0 ||
	    json_object_set_new(body, "gpu_type", json_string(gpu_type)) != 0 ||
	    json_object_set_new(body, "gpu_count", json_integer(n)) != 0 ||
	    json_object_set_new(body, "max_runtime_hours", json_real(h)) != 0) {
		cli_printf(stderr, "plinth: cannot build the request (bad UTF-8 or out of memory)\n");
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/* --- request paths ------------------------------------------------------ */

static void cli_path_put(struct cli_path *p, const char *s, int encode)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = !encode || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			(ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
		size_t need = plain ? 1 : 3;

		if (p->len + need >= sizeof p->buf) {
			p->overflow = 1;
			return;
		}
		if (plain) {
			p->buf[p->len++] = (char)ch;
		} else {
			p->buf[p->len++] = '%';
			p->buf[p->len++] = hex[ch >> 4];
			p->buf[p->len++] = hex[ch & 15];
		}
	}
	p->buf[p->len] = '\0';
}

void cli_path_init(struct cli_path *p, const char *literal)
{
	memset(p, 0, sizeof *p);
	cli_path_put(p, literal, 0);
}

void cli_path_segment(struct cli_path *p, const char *segment)
{
	cli_path_put(p, "/", 0);
	cli_path_put(p, segment, 1);
}

void cli_path_literal(struct cli_path *p, const char *literal)
{
	cli_path_put(p, literal, 0);
}

void cli_path_query(struct cli_path *p, const char *key, const char *value)
{
	if (value == NULL)
		return;
	cli_path_put(p, p->nquery++ == 0 ? "?" : "&", 0);
	cli_path_put(p, key, 1);
	cli_path_put(p, "=", 0);
	cli_path_put(p, value, 1);
}

/* --- calling the daemon ------------------------------------------------- */

/* A header value must not smuggle a line break into the request. */
static int cli_header_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

/* Prints one line to stderr: the daemon's text may hold no line break of its own. */
static void __attribute__((format(printf, 1, 2))) cli_err_line(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (cli_vprintf(stderr, 0, fmt, ap) == 0)
		cli_write(stderr, "\n", 1, 1);
	va_end(ap);
}

/* What a refusal carries besides its detail, worth a line each; money is
 * rounded like in a table (the --json document keeps the full value). */
static const struct {
	const char *key;
	int money;
} cli_problem_extras[] = {
	{ "estimated_cost", 1 },
	{ "available", 1 },
	{ "gpus_available", 0 },
};

/* A failed call that sent no problem document: its status and the first line
 * of its body ("HTTP 502: Bad Gateway").  Returns buf. */
static const char *cli_status_line(const struct httpc_response *r, char *buf, size_t len)
{
	int n = 0;

	while ((size_t)n < r->len && n < 200 && r->body[n] != '\n' && r->body[n] != '\r')
		n++;
	snprintf(buf, len, "HTTP %ld%s%.*s", r->status, n > 0 ? ": " : "", n,
		n > 0 ? r->body : "");
	return buf;
}

/*
 * Prints a failed call's problem to stderr, each thing once: "plinth: TITLE:
 * DETAIL" (or the status and the first line of a body that is no problem),
 * then "  field: message" for each invalid field unless the detail is that
 * very text (a one-field error says it in its detail already), then the
 * refusal's extras.
 */
static void cli_problem_print(const struct cli *c, const struct httpc_response *r, json_t *p,
			      const json_t *req)
{
	const char *title = NULL, *detail = NULL, *cur = NULL;

	if (json_is_object(p)) {
		title = json_string_value(json_object_get(p, "title"));
		detail = json_string_value(json_object_get(p, "detail"));
		cur = json_string_value(json_object_get(p, "currency"));
	}
	if (title != NULL) {
		if (detail != NULL && detail[0] != '\0' && strcmp(detail, title) != 0)
			cli_err_line("plinth: %s: %s", title, detail);
		else
			cli_err_line("plinth: %s", title);
	} else {
		char first[256];
		cli_err_line("plinth: %s", cli_status_line(r, first, sizeof first));
	}
	if (json_is_object(p)) {
		json_t *errs = json_object_get(p, "errors");
		size_t i;
		json_t *e;

		json_array_foreach(errs, i, e) {
			const char *field = json_string_value(json_object_get(e, "field"));
			const char *msg = json_string_value(json_object_get(e, "message"));
			char *line = NULL;

			if (asprintf(&line, "%s: %s", field ? field : "?", msg ? msg : "invalid") < 0) {
				cli_err_line("plinth: out of memory");
				break;
			}
			if (detail == NULL || strcmp(line, detail) != 0)
				cli_err_line("  %s", line);
			free(line);
		}
		/* A refusal says what was asked and what is left: worth showing. */
		for (i = 0; i < sizeof cli_problem_extras / sizeof cli_problem_extras[0]; i++) {
			char buf[CLI_MONEY_LEN];
			const char *key = cli_problem_extras[i].key;
			json_t *v = json_object_get(p, key);

			if (v == NULL || json_is_null(v))
				continue;
			if (cli_problem_extras[i].money && json_is_string(v))
				cli_money_text(json_string_value(v), cur, buf, sizeof buf);
			else
				cli_json_text(v, buf, sizeof buf);
			cli_err_line("  %s: %s", key, buf);
		}
		cli_refusal_lines(stderr, p, req); /* what would fit instead */
	}
	if (r->status == 401 && c->token == NULL)
		cli_printf(stderr, "plinth: hint: pass --token or set PLINTH_TOKEN\n");
}

/* With --json: a failed call's problem document on stdout.  p is the daemon's
 * document (printed as sent) or NULL: then one is made from status/title/detail
 * (status 0 = none, the daemon was not reached). */
static void cli_problem_json(const struct httpc_response *r, const json_t *p, long status,
	const char *title, const char *detail)
{
	json_t *made;
	char *text, *safe;

	if (json_is_object(p)) {
		cli_write(stdout, r->body, r->len, 1);
		if (r->body[r->len - 1] != '\n')
			cli_printf(stdout, "\n");
		return;
	}
	safe = cli_text_safe(detail); /* a body's first line need not be UTF-8 */
	made = json_pack("{s:s, s:s}", "type", "about:blank", "title", title);
	if (safe == NULL || made == NULL || (status != 0 && json_object_set_new(made, "status",
		json_integer(status)) != 0) ||
	    json_object_set_new(made, "detail", json_string(safe)) != 0) {
		free(safe);
		json_decref(made);
		cli_printf(stderr, "plinth: out of memory\n");
		return;
	}
	free(safe);
	text = json_dumps(made, JSON_COMPACT);
	if (text != NULL)
		cli_printf(stdout, "%s\n", text);
	else
		cli_printf(stderr, "plinth: out of memory\n");
	free(text);
	json_decref(made);
}

int cli_call_raw(struct cli *c, const char *method, const struct cli_path *path, json_t *body,
	const char *extra_header, size_t max_body, struct httpc_response *r)
{
	char *url = NULL, *auth = NULL, *payload = NULL;
	const char *headers[6] = { NULL };
	size_t nh = 0, ulen;
	char detail[HTTPC_DETAIL_LEN] = "";
	int rc = CLI_EXIT_API, err;

	if (path->overflow)
		return cli_usage(c, "an argument is too long for a request");
	if (c->token != NULL && !cli_header_safe(c->token))
		return cli_usage(c, "the token contains control characters");

	/* The base URL may end in '/'; the path always starts with one. */
	ulen = strlen(c->url);
	while (ulen > 0 && c->url[ulen - 1] == '/')
		ulen--;
	if (asprintf(&url, "%.*s%s", (int)ulen, c->url, path->buf) < 0) {
		url = NULL;
		cli_printf(stderr, "plinth: out of memory\n");
		goto out;
	}
	headers[nh++] = "Accept: application/json, application/problem+json";
	headers[nh++] = "User-Agent: plinth/" PLINTH_VERSION;
	if (c->token != NULL) {
		if (asprintf(&auth, "Authorization: Bearer %s", c->token) < 0) {
			auth = NULL;
			cli_printf(stderr, "plinth: out of memory\n");
			goto out;
		}
		headers[nh++] = auth;
	}
	if (body != NULL) {
		/* 15 significant digits print 0.1 as 0.1, not 0.10000000000000001. */
		payload = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
		if (payload == NULL) {
			cli_printf(stderr, "plinth: cannot encode the request\n");
			goto out;
		}
		headers[nh++] = "Content-Type: application/json";
	}
	if (extra_header != NULL)
		headers[nh++] = extra_header;
	headers[nh] = NULL;

	err = httpc_request(method, url, headers, payload, payload ? strlen(payload) : 0,
		CLI_TIMEOUT_MS, max_body, r, detail);
	if (err != 0) {
		const char *why = detail[0] ? detail : err_name(err);
		cli_printf(stderr, "plinth: %s\n", why);
		rc = err == ERR_UNAVAILABLE ? CLI_EXIT_UNREACHABLE :
			err == ERR_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_API;
		if (c->json)
			cli_problem_json(r, NULL, 0, err == ERR_UNAVAILABLE ?
				"Cannot reach the daemon" : "Request failed", why);
		goto out;
	}
	c->status = r->status;
	if (r->status < 200 || r->status > 299) {
		json_error_t jerr;
		json_t *p = r->len > 0 ? json_loadb(r->body, r->len, 0, &jerr) : NULL;
		if (r->status != c->quiet_status) {
			cli_problem_print(c, r, p, body);
			if (c->json) {
				char first[256];
				cli_problem_json(r, p, r->status, "HTTP error",
					cli_status_line(r, first, sizeof first));
			}
		}
		json_decref(p);
		rc = CLI_EXIT_API;
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	free(payload);
	free(auth);
	free(url);
	return rc;
}

int cli_call(struct cli *c, const char *method, const struct cli_path *path, json_t *body,
	const char *extra_header, json_t **out)
{
	struct httpc_response r = { 0 };
	json_t *parsed = NULL;
	json_error_t jerr;
	int rc = cli_call_raw(c, method, path, body, extra_header, CLI_MAX_BODY, &r);

	if (rc != CLI_EXIT_OK)
		goto out;
	if (r.len > 0) {
		parsed = json_loadb(r.body, r.len, 0, &jerr);
		if (parsed == NULL) {
			cli_printf(stderr, "plinth: the daemon sent invalid JSON: %s\n", jerr.text);
			if (c->json)
				cli_problem_json(&r, NULL, r.status, "Invalid response",
					"the daemon sent invalid JSON");
			rc = CLI_EXIT_API;
			goto out;
		}
	}
	if (c->json && r.len > 0) {
		cli_write(stdout, r.body, r.len, 1);
		if (r.body[r.len - 1] != '\n')
			cli_printf(stdout, "\n");
	}
	*out = parsed; /* ownership moves to the caller */
	parsed = NULL;
out:
	json_decref(parsed);
	httpc_response_done(&r);
	return rc;
}

/* --- tables --------------------------------------------------------------- */

struct cli_table {
	size_t ncols;
	const char *const *headers; /* borrowed, static strings */
	char aligns[16];
	char **cells;               /* owned, ncells strings */
	size_t ncells, cap;
	int failed;
};

struct cli_table *cli_table_new(size_t ncols, const char *const *headers, const char *aligns)
{
	struct cli_table *t;

	if (ncols == 0 || ncols >= sizeof t->aligns || strlen(aligns) != ncols)
		return NULL;
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return NULL;
	t->ncols = ncols;
	t->headers = headers;
	memcpy(t->aligns, aligns, ncols);
	return t;
}

void cli_table_cell(struct cli_table *t, const char *s)
{
	char *copy;

	if (t == NULL || t->failed)
		return;
	if (t->ncells == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 32;
		char **n = realloc(t->cells, ncap * sizeof *n);
		if (n == NULL) {
			t->failed = 1;
			return;
		}
		t->cells = n;
		t->cap = ncap;
	}
	/* Stored neutralised, so the widths are those of what is printed. */
	copy = cli_text_safe(s != NULL ? s : "-");
	if (copy == NULL) {
		t->failed = 1;
		return;
	}
	t->cells[t->ncells++] = copy;
}

void cli_table_cellf(struct cli_table *t, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	cli_table_cell(t, buf);
}

const char *cli_json_text(const json_t *v, char *buf, size_t n)
{
	if (v == NULL || json_is_null(v))
		snprintf(buf, n, "-");
	else if (json_is_string(v))
		snprintf(buf, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, n, "%.15g", json_real_value(v));
	else if (json_is_true(v))
		snprintf(buf, n, "yes");
	else if (json_is_false(v))
		snprintf(buf, n, "no");
	else if (json_is_array(v)) {
		/* Lists of names (a token's teams) read best comma-separated. */
		size_t i, off = 0;
		json_t *e;
		buf[0] = '\0';
		json_array_foreach(v, i, e) {
			char item[256];
			int w = snprintf(buf + off, n - off, "%s%s", i ? "," : "",
				cli_json_text(e, item, sizeof item));
			if (w < 0 || (size_t)w >= n - off)
				break;
			off += (size_t)w;
		}
		if (off == 0)
			snprintf(buf, n, "-");
	} else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		snprintf(buf, n, "%s", s ? s : "?");
		free(s);
	}
	return buf;
}

void cli_table_cell_json(struct cli_table *t, const json_t *obj, const char *key)
{
	char buf[1100];

	cli_table_cell(t, cli_json_text(json_object_get(obj, key), buf, sizeof buf));
}

/* amount rounded half-up to at most places decimals (at least 2), then the
 * currency; see cli_money_text. */
static const char *cli_money_round(const char *amount, const char *currency, int places,
	char *buf, size_t n)
{
	const char *digits = amount;
	char num[MONEY_FMT_LEN];
	int64_t micros = 0;

	if (currency == NULL || currency[0] == '\0')
		currency = "USD";
	if (amount == NULL || amount[0] == '\0') {
		snprintf(buf, n, "-");
		return buf;
	}
	if (amount[0] == '-') /* a balance can be negative; money_parse takes none */
		digits = amount + 1;
	if (money_parse(digits, &micros) != 0 ||
	    money_format_round(digits == amount ? micros : -micros, places, num, sizeof num) < 0) {
		/* Not an amount the API would send: shown as received, not guessed at. */
		snprintf(buf, n, "%s %s", amount, currency);
		return buf;
	}
	snprintf(buf, n, "%s %s", num, currency);
	return buf;
}

const char *cli_money_text(const char *amount, const char *currency, char *buf, size_t n)
{
	return cli_money_round(amount, currency, 2, buf, n);
}

const char *cli_price_text(const char *amount, const char *currency, char *buf, size_t n)
{
	return cli_money_round(amount, currency, 4, buf, n);
}

void cli_table_cell_money(struct cli_table *t, const json_t *obj, const char *key,
	const char *currency)
{
	const json_t *v = json_object_get(obj, key);
	char buf[CLI_MONEY_LEN];

	if (!json_is_string(v)) {
		cli_table_cell(t, "-");
		return;
	}
	cli_table_cell(t, cli_money_text(json_string_value(v), currency, buf, sizeof buf));
}

void cli_table_cell_price(struct cli_table *t, const json_t *obj, const char *key,
	const char *currency)
{
	const json_t *v = json_object_get(obj, key);
	char buf[CLI_MONEY_LEN];

	cli_table_cell(t, json_is_string(v) ?
		cli_price_text(json_string_value(v), currency, buf, sizeof buf) : "-");
}

int cli_table_print(const struct cli_table *t, FILE *f)
{
	size_t width[16] = { 0 };
	size_t i, col;

	if (t == NULL || t->failed) {
		cli_printf(stderr, "plinth: out of memory\n");
		return -1;
	}
	for (col = 0; t->headers != NULL && col < t->ncols; col++)
		width[col] = strlen(t->headers[col]);
	for (i = 0; i < t->ncells; i++) {
		size_t len = strlen(t->cells[i]);
		if (len > width[i % t->ncols])
			width[i % t->ncols] = len;
	}
	if (t->headers != NULL) {
		for (col = 0; col < t->ncols; col++) {
			int w = (int)width[col];
			const char *sep = col + 1 < t->ncols ? "  " : "";
			if (t->aligns[col] == 'r')
				cli_printf(f, "%*s%s", w, t->headers[col], sep);
			else if (col + 1 < t->ncols)
				cli_printf(f, "%-*s%s", w, t->headers[col], sep);
			else
				cli_printf(f, "%s", t->headers[col]);
		}
		cli_printf(f, "\n");
	}
	for (i = 0; i < t->ncells; i++) {
		col = i % t->ncols;
		int w = (int)width[col];
		const char *sep = col + 1 < t->ncols ? "  " : "\n";
		if (t->aligns[col] == 'r')
			cli_printf(f, "%*s%s", w, t->cells[i], sep);
		else if (col + 1 < t->ncols)
			cli_printf(f, "%-*s%s", w, t->cells[i], sep);
		else
			cli_printf(f, "%s%s", t->cells[i], sep);
	}
	/* A partial last row still ends its line. */
	if (t->ncells % t->ncols != 0)
		cli_printf(f, "\n");
	return 0;
}

void cli_table_free(struct cli_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/* --- shared views --------------------------------------------------------- */

int cli_print_allocation(const json_t *a)
{
	static const char *const plain[] = { "id", "status", "team", "project", "gpu_type",
		"gpu_count", "max_runtime_hours", "purpose" };
	static const char *const money[] = { "estimated_cost", "accrued_cost", "actual_cost",
		"released" };
	static const char *const times[] = { "approved_at", "expires_at", "started_at",
		"ended_at", "period_start", "created_by" };
	struct cli_table *t = cli_table_new(2, NULL, "ll");
	const json_t *labels = json_object_get(a, "labels");
	int rc = CLI_EXIT_OK;
	size_t i;

	if (t == NULL) {
		cli_printf(stderr, "plinth: out of memory\n");
		return CLI_EXIT_API;
	}
	for (i = 0; i < sizeof plain / sizeof plain[0]; i++) {
		if (json_object_get(a, plain[i]) == NULL)
			continue;
		cli_table_cell(t, plain[i]);
		cli_table_cell_json(t, a, plain[i]);
	}
	if (json_object_get(a, "price_per_gpu_hour") != NULL) {
		cli_table_cell(t, "price_per_gpu_hour");
		cli_table_cell_price(t, a, "price_per_gpu_hour", "USD");
	}
	for (i = 0; i < sizeof money / sizeof money[0]; i++) {
		if (json_object_get(a, money[i]) == NULL)
			continue;
		cli_table_cell(t, money[i]);
		cli_table_cell_money(t, a, money[i], "USD");
	}
	if (json_object_size(labels) > 0) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)labels, k, v) {
			cli_table_cellf(t, "label");
			cli_table_cellf(t, "%s=%s", k, json_is_string(v) ? json_string_value(v) : "?");
		}
	}
	for (i = 0; i < sizeof times / sizeof times[0]; i++) {
		if (json_object_get(a, times[i]) == NULL)
			continue;
		cli_table_cell(t, times[i]);
		cli_table_cell_json(t, a, times[i]);
	}
	if (cli_table_print(t, stdout) != 0)
		rc = CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

int cli_list_pages(struct cli *c, const struct cli_path *base, long long max, json_t **items,
	int *more)
{
	json_t *all = json_array(), *page = NULL;
	char next[512] = "", lim[24];
	int json = c->json, rc = CLI_EXIT_OK;

	*more = 0;
	if (all == NULL)
		return CLI_EXIT_API;
	c->json = 0; /* one document at the end, not one per page */
	for (;;) {
		struct cli_path p = *base;
		long long left = max - (long long)json_array_size(all);
		const char *cur;

		snprintf(lim, sizeof(lim), "%lld", left < 500 ? left : 500);
		cli_path_query(&p, "limit", lim);
		cli_path_query(&p, "cursor", next[0] ? next : NULL);
		rc = cli_call(c, "GET", &p, NULL, NULL, &page);
		if (rc != CLI_EXIT_OK)
			break;
		if (json_array_extend(all, json_object_get(page, "items")) != 0) {
			rc = CLI_EXIT_API;
			break;
		}
		cur = json_string_value(json_object_get(page, "next_cursor"));
		if (cur == NULL)
			break;
		if (strlen(cur) >= sizeof(next)) { /* never a silently short list */
			cli_printf(stderr, "plinth: the daemon sent a cursor of %zu bytes\n",
				strlen(cur));
			rc = CLI_EXIT_API;
			break;
		}
		snprintf(next, sizeof(next), "%s", cur);
		json_decref(page);
		page = NULL;
		if ((long long)json_array_size(all) >= max) {
			*more = 1;
			break;
		}
	}
	json_decref(page);
	c->json = json;
	if (rc != CLI_EXIT_OK) {
		json_decref(all);
		return rc;
	}
	if (json) {
		json_t *doc = json_pack("{s:O, s:s?}", "items", all, "next_cursor",
			*more ? next : NULL);
		char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;

		if (text != NULL)
			cli_printf(stdout, "%s\n", text);
		else
			rc = CLI_EXIT_API;
		free(text);
		json_decref(doc);
	}
	*items = all;
	return rc;
}
