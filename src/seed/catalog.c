/*
 * catalog.c - parses the AWS GPU price CSV into GPU types.
 *
 * The CSV is compiled into the binary (data/aws-gpu-prices.csv) and also fed
 * to the fuzzer, so the parser treats it as untrusted: every field is checked,
 * every length is bounded, and a bad line fails the whole parse with its line
 * number.  Must never touch the store or allocate: seed_catalog(), which
 * writes to the store, lives in demo.c so this file links on its own.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/money.h"
#include "core/timeutil.h"
#include "seed/seed.h"

#define CATALOG_HEADER \
	"instance_type,gpu_model,gpu_memory_gib,gpu_count,usd_per_hour,usd_per_gpu_hour,region,price_date"
#define CATALOG_LINE_MAX 512
#define CATALOG_NFIELDS 8
#define CATALOG_TYPES_MAX 256

enum { F_INSTANCE, F_MODEL, F_MEMORY, F_COUNT, F_USD_HOUR, F_USD_GPU_HOUR, F_REGION, F_DATE };

/* One parsed row, pointing into the caller's line buffer. */
struct catalog_row {
	const char *instance, *model, *region, *date;
	int64_t memory_gib, gpu_count, usd_hour, usd_gpu_hour;
};

static void set_detail(char *detail, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_detail(char *detail, const char *fmt, ...)
{
	if (detail == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	(void)vsnprintf(detail, STORE_DETAIL_LEN, fmt, ap);
	va_end(ap);
}

/* True if s is 1..maxlen chars, each a lower-case letter, digit or one of extra. */
static bool token_ok(const char *s, size_t maxlen, const char *extra, bool upper)
{
	size_t n = strlen(s);
	if (n == 0 || n > maxlen)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			  (upper && ch >= 'A' && ch <= 'Z') || (ch != '\0' && strchr(extra, ch) != NULL);
		if (!ok)
			return false;
	}
	return true;
}

/* A positive decimal integer of at most 4 digits (GiB, GPU count). */
static bool small_int_parse(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t n = strlen(s);
	if (n == 0 || n > 4)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v <= 0)
		return false;
	*out = v;
	return true;
}

/* "YYYY-MM-DD", a real calendar date. */
static bool date_ok(const char *s)
{
	char buf[32];
	int64_t t;
	if (strlen(s) != 10)
		return false;
	(void)snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
	return time_parse_rfc3339(buf, &t) == 0;
}

/* Splits line (modified in place) into a row; returns a reason on failure. */
static const char *row_parse(char *line, struct catalog_row *r)
{
	char *f[CATALOG_NFIELDS];
	int nf = 0;
	char *p = line;
	for (;;) {
		if (nf == CATALOG_NFIELDS)
			return "too many fields";
		f[nf++] = p;
		char *comma = strchr(p, ',');
		if (comma == NULL)
			break;
		*comma = '\0';
		p = comma + 1;
	}
	if (nf != CATALOG_NFIELDS)
		return "expected 8 fields";

	if (!token_ok(f[F_INSTANCE], 40, ".-", false))
		return "bad instance_type";
	if (!token_ok(f[F_MODEL], 20, "", true))
		return "bad gpu_model";
	if (!small_int_parse(f[F_MEMORY], &r->memory_gib))
		return "bad gpu_memory_gib";
	if (!small_int_parse(f[F_COUNT], &r->gpu_count) || r->gpu_count > 64)
		return "bad gpu_count";
	if (money_parse(f[F_USD_HOUR], &r->usd_hour) != 0)
		return "bad usd_per_hour";
	if (money_parse(f[F_USD_GPU_HOUR], &r->usd_gpu_hour) != 0 || r->usd_gpu_hour == 0)
		return "bad usd_per_gpu_hour";
	if (!token_ok(f[F_REGION], 30, "-", false))
		return "bad region";
	if (!date_ok(f[F_DATE]))
		return "bad price_date";
	/* The per-GPU price is the instance price divided by the GPUs, rounded
	 * to micros: a larger gap means a typo in one of the two columns. */
	__int128 gap = (__int128)r->usd_gpu_hour * r->gpu_count - r->usd_hour;
	if (gap < 0)
		gap = -gap; /* 128 bits: both prices may be up to MONEY_MAX_MICROS */
	if (gap >= r->gpu_count)
		return "usd_per_gpu_hour does not match usd_per_hour / gpu_count";

	r->instance = f[F_INSTANCE];
	r->model = f[F_MODEL];
	r->region = f[F_REGION];
	r->date = f[F_DATE];
	return NULL;
}

/* Fills g from the row (the type's id is already set by the caller). */
static void row_to_type(const struct catalog_row *r, struct gpu_type *g)
{
	(void)snprintf(g->name, sizeof(g->name), "NVIDIA %s %" PRId64 "GB", r->model, r->memory_gib);
	g->price_micros = r->usd_gpu_hour;
	(void)snprintf(g->price_date, sizeof(g->price_date), "%s", r->date);
	(void)snprintf(g->price_source, sizeof(g->price_source), "aws %s %s on-demand", r->instance,
		       r->region);
	g->capacity = 0;
	g->allocated = 0;
	g->updated_at = 0;
}

/*
 * out[] is written as types are found; on failure its contents are
 * unspecified but *n is untouched.
 */
int seed_catalog_parse(const char *csv, struct gpu_type *out, size_t max, size_t *n, char *detail)
{
	int64_t best_count[CATALOG_TYPES_MAX];
	size_t ntypes = 0;
	int lineno = 0;
	const char *p = csv;

	if (csv == NULL || out == NULL || n == NULL) {
		set_detail(detail, "catalog: no input");
		return ERR_INVALID;
	}
	if (max > CATALOG_TYPES_MAX)
		max = CATALOG_TYPES_MAX;

	while (*p != '\0') {
		char line[CATALOG_LINE_MAX];
		const char *eol = strchr(p, '\n');
		size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
		lineno++;
		if (len >= sizeof(line)) {
			set_detail(detail, "catalog line %d: line too long", lineno);
			return ERR_INVALID;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (eol != NULL ? 1 : 0);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';

		if (lineno == 1) {
			if (strcmp(line, CATALOG_HEADER) != 0) {
				set_detail(detail, "catalog line 1: unexpected header");
				return ERR_INVALID;
			}
			continue;
		}
		if (len == 0)
			continue; /* blank lines, e.g. at the end of the file */

		struct catalog_row r;
		const char *why = row_parse(line, &r);
		if (why != NULL) {
			set_detail(detail, "catalog line %d: %s", lineno, why);
			return ERR_INVALID;
		}

		char id[STORE_ID_LEN];
		int idlen = snprintf(id, sizeof(id), "%s-%" PRId64 "gb", r.model, r.memory_gib);
		if (idlen < 0 || (size_t)idlen >= sizeof(id)) {
			set_detail(detail, "catalog line %d: id too long", lineno);
			return ERR_INVALID;
		}
		for (char *c = id; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');

		size_t i = 0;
		while (i < ntypes && strcmp(out[i].id, id) != 0)
			i++;
		if (i == ntypes) {
			if (ntypes == max) {
				set_detail(detail, "catalog line %d: more than %zu gpu types", lineno, max);
				return ERR_INVALID;
			}
			memset(&out[i], 0, sizeof(out[i]));
			memcpy(out[i].id, id, (size_t)idlen + 1);
			best_count[i] = r.gpu_count;
			row_to_type(&r, &out[i]);
			ntypes++;
			continue;
		}
		/* The node a training cluster is built from: most GPUs, then cheapest. */
		if (r.gpu_count > best_count[i] ||
		    (r.gpu_count == best_count[i] && r.usd_gpu_hour < out[i].price_micros)) {
			best_count[i] = r.gpu_count;
			row_to_type(&r, &out[i]);
		}
	}
	if (lineno == 0) {
		set_detail(detail, "catalog: empty");
		return ERR_INVALID;
	}
	*n = ntypes;
	return 0;
}
