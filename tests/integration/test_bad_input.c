/*
 * test_bad_input.c - a data-driven table of bad requests against the real
 * daemon.  Every row must be refused with its 4xx status as a problem+json
 * document naming the bad field, AND leave every observable thing unchanged
 * (team, catalog, allocations, tokens, audit log).
 *
 * A row must never be a request that could legitimately succeed: the
 * "nothing changed" comparison would then fail for the wrong reason.
 */
#include "itest.h"

#include <stdlib.h>

enum gen {
	GEN_NONE,
	GEN_PURPOSE_5000, /* valid allocation with a 5000-char purpose */
	GEN_LABELS_40,    /* valid allocation with 40 labels */
	GEN_LABEL_VAL_64, /* a label value of 64 chars */
	GEN_PROJECT_70,   /* project id of 70 chars */
	GEN_BODY_1MIB_1,  /* 1 MiB + 1 byte */
	GEN_DEEP,         /* 100000 nested arrays */
	GEN_KEY_256,      /* valid body, Idempotency-Key of 256 chars */
};

struct bad_case {
	const char *name;
	const char *method;
	const char *path;  /* "{id}" is replaced by the fixture allocation's id */
	const char *body;  /* NULL: no body (unless gen makes one) */
	enum gen gen;
	const char *ctype; /* NULL: application/json */
	long status;
	long alt_status;   /* another acceptable status (the contract is loose there), or 0 */
	const char *problem; /* problem name required with `status`, or NULL */
	const char *field;   /* must appear in errors[].field (substring), or NULL */
	const char *message; /* exact errors[].message for that field, or NULL */
};

#define ALLOC "/v1/allocations"
#define VALID_TAIL "\"gpu_type\":\"g1\",\"gpu_count\":1,\"max_runtime_hours\":1"
#define TEAM_BODY(amount) \
	"{\"display_name\":\"T\",\"budget\":{\"amount\":" amount ",\"period\":\"monthly\"}}"
#define GPU_BODY(price, cap) "{\"name\":\"G\",\"price_per_gpu_hour\":" price ",\"capacity\":" cap "}"
#define VE "validation-error"

/* 10 + 640 bytes: longer than the request's path field (512), so it must
 * never be routed cut to 511 bytes. */
#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LONG_PATH "/v1/teams/" A64 A64 A64 A64 A64 A64 A64 A64 A64 A64

static const struct bad_case cases[] = {
	{"path over 511 bytes", "GET", LONG_PATH, NULL, 0, NULL, 404, 0, "not-found", NULL, NULL},
	/* syntax */
	{"malformed json", "POST", ALLOC, "{\"team\":", 0, NULL, 400, 0, "malformed-json", NULL, NULL},
	{"trailing garbage", "POST", ALLOC, "{\"team\":\"ta\"} x", 0, NULL, 400, 0, "malformed-json", NULL, NULL},
	{"not json at all", "POST", ALLOC, "team=ta", 0, NULL, 400, 0, "malformed-json", NULL, NULL},
	{"empty body", "POST", ALLOC, "", 0, NULL, 400, 422, NULL, NULL, NULL},
	{"array body", "POST", ALLOC, "[1,2]", 0, NULL, 422, 400, NULL, NULL, NULL},
	{"deep nesting", "POST", ALLOC, NULL, GEN_DEEP, NULL, 400, 422, NULL, NULL, NULL},
	{"invalid utf-8", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"purpose\":\"\xff\xfe\","
	 VALID_TAIL "}", 0, NULL, 400, 422, NULL, NULL, NULL},
	{"nul in string", "POST", ALLOC, "{\"team\":\"ta\\u0000x\",\"project\":\"p\"," VALID_TAIL "}",
	 0, NULL, 400, 422, NULL, NULL, NULL},

	/* allocation fields */
	{"gpu_count string", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":\"2\",\"max_runtime_hours\":1}", 0, NULL, 422, 0, VE, "gpu_count", NULL},
	{"gpu_count 0", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":0,\"max_runtime_hours\":1}", 0, NULL, 422, 0, VE, "gpu_count", NULL},
	{"gpu_count -1", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":-1,\"max_runtime_hours\":1}", 0, NULL, 422, 0, VE, "gpu_count", NULL},
	{"gpu_count above capacity", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":"
	 "\"g1\",\"gpu_count\":9,\"max_runtime_hours\":1}", 0, NULL, 422, 0, VE, "gpu_count", NULL},
	{"gpu_count 1.5", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":1.5,\"max_runtime_hours\":1}", 0, NULL, 422, 0, VE, "gpu_count", NULL},
	{"gpu_count huge", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":99999999999999999999,\"max_runtime_hours\":1}", 0, NULL, 422, 400, NULL, NULL, NULL},
	{"gpu_count null", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":null,\"max_runtime_hours\":1}", 0, NULL, 422, 0, VE, "gpu_count", NULL},
	{"runtime 0", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":1,\"max_runtime_hours\":0}", 0, NULL, 422, 0, VE, "max_runtime_hours", NULL},
	{"runtime -1", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":1,\"max_runtime_hours\":-1}", 0, NULL, 422, 0, VE, "max_runtime_hours", NULL},
	{"runtime 169", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":1,\"max_runtime_hours\":169}", 0, NULL, 422, 0, VE, "max_runtime_hours", NULL},
	{"runtime 7 decimals", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":1,\"max_runtime_hours\":1.1234567}", 0, NULL, 422, 0, VE, "max_runtime_hours", NULL},
	{"runtime string", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":1,\"max_runtime_hours\":\"1\"}", 0, NULL, 422, 0, VE, "max_runtime_hours", NULL},
	{"runtime missing", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":1}", 0, NULL, 422, 0, VE, "max_runtime_hours", NULL},
	{"unknown field", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"colour\":\"red\","
	 VALID_TAIL "}", 0, NULL, 422, 0, VE, "colour", "unknown field"},
	{"team missing", "POST", ALLOC, "{\"project\":\"p\"," VALID_TAIL "}", 0, NULL, 422, 0, VE,
	 "team", NULL},
	{"team number", "POST", ALLOC, "{\"team\":5,\"project\":\"p\"," VALID_TAIL "}", 0, NULL, 422,
	 0, VE, "team", NULL},
	{"unknown team", "POST", ALLOC, "{\"team\":\"nope\",\"project\":\"p\"," VALID_TAIL "}", 0,
	 NULL, 422, 0, VE, "team", NULL},
	{"unknown gpu type", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"gpu_type\":\"nope\","
	 "\"gpu_count\":1,\"max_runtime_hours\":1}", 0, NULL, 422, 0, VE, "gpu_type", NULL},
	{"project uppercase", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"Proj\"," VALID_TAIL "}",
	 0, NULL, 422, 0, VE, "project", NULL},
	{"project ../x", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"../x\"," VALID_TAIL "}", 0,
	 NULL, 422, 0, VE, "project", NULL},
	{"project empty", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"\"," VALID_TAIL "}", 0, NULL,
	 422, 0, VE, "project", NULL},
	{"project 70 chars", "POST", ALLOC, NULL, GEN_PROJECT_70, NULL, 422, 0, VE, "project", NULL},
	{"purpose 5000 chars", "POST", ALLOC, NULL, GEN_PURPOSE_5000, NULL, 422, 0, VE, "purpose", NULL},
	{"40 labels", "POST", ALLOC, NULL, GEN_LABELS_40, NULL, 422, 0, VE, "labels", NULL},
	{"label value 64 chars", "POST", ALLOC, NULL, GEN_LABEL_VAL_64, NULL, 422, 0, VE, "labels", NULL},
	{"label value number", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"labels\":{\"a\":1},"
	 VALID_TAIL "}", 0, NULL, 422, 0, VE, "labels", NULL},
	{"labels array", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\",\"labels\":[\"a\"],"
	 VALID_TAIL "}", 0, NULL, 422, 0, VE, "labels", NULL},
	{"idempotency key 256 chars", "POST", ALLOC, NULL, GEN_KEY_256, NULL, 422, 400, NULL, NULL, NULL},
	{"wrong content type", "POST", ALLOC, "{\"team\":\"ta\",\"project\":\"p\"," VALID_TAIL "}", 0,
	 "text/plain", 415, 0, "unsupported-media-type", NULL, NULL},
	{"form content type", "PUT", "/v1/teams/ta", TEAM_BODY("\"5\""), 0,
	 "application/x-www-form-urlencoded", 415, 0, "unsupported-media-type", NULL, NULL},
	{"body 1 MiB + 1", "POST", ALLOC, NULL, GEN_BODY_1MIB_1, NULL, 413, 0, "too-large", NULL, NULL},

	/* teams */
	{"budget amount number", "PUT", "/v1/teams/ta", TEAM_BODY("5"), 0, NULL, 422, 0, VE, "amount", NULL},
	{"amount 7 decimals", "PUT", "/v1/teams/ta", TEAM_BODY("\"1.1234567\""), 0, NULL, 422, 0, VE,
	 "amount", NULL},
	{"amount overflow", "PUT", "/v1/teams/ta", TEAM_BODY("\"99999999999999999999\""), 0, NULL, 422,
	 0, VE, "amount", NULL},
	{"amount negative", "PUT", "/v1/teams/ta", TEAM_BODY("\"-5\""), 0, NULL, 422, 0, VE, "amount", NULL},
	{"amount exponent", "PUT", "/v1/teams/ta", TEAM_BODY("\"1e3\""), 0, NULL, 422, 0, VE, "amount", NULL},
	{"amount empty", "PUT", "/v1/teams/ta", TEAM_BODY("\"\""), 0, NULL, 422, 0, VE, "amount", NULL},
	{"amount .5", "PUT", "/v1/teams/ta", TEAM_BODY("\".5\""), 0, NULL, 422, 0, VE, "amount", NULL},
	{"period daily", "PUT", "/v1/teams/ta",
	 "{\"display_name\":\"T\",\"budget\":{\"amount\":\"5\",\"period\":\"daily\"}}", 0, NULL, 422, 0,
	 VE, "period", NULL},
	{"threshold 0", "PUT", "/v1/teams/ta",
	 "{\"display_name\":\"T\",\"budget\":{\"amount\":\"5\",\"period\":\"monthly\"},"
	 "\"alert_thresholds\":[0]}", 0, NULL, 422, 0, VE, "alert_thresholds", NULL},
	{"threshold 11", "PUT", "/v1/teams/ta",
	 "{\"display_name\":\"T\",\"budget\":{\"amount\":\"5\",\"period\":\"monthly\"},"
	 "\"alert_thresholds\":[0.5,11]}", 0, NULL, 422, 0, VE, "alert_thresholds", NULL},
	{"team unknown field", "PUT", "/v1/teams/ta",
	 "{\"display_name\":\"T\",\"budget\":{\"amount\":\"5\",\"period\":\"monthly\"},\"owner\":\"x\"}",
	 0, NULL, 422, 0, VE, "owner", "unknown field"},
	{"budget missing", "PUT", "/v1/teams/ta", "{\"display_name\":\"T\"}", 0, NULL, 422, 0, VE,
	 "budget", NULL},
	{"team id uppercase", "PUT", "/v1/teams/TeamA", TEAM_BODY("\"5\""), 0, NULL, 422, 404, NULL,
	 NULL, NULL},
	{"team id 70 chars", "PUT",
	 "/v1/teams/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	 TEAM_BODY("\"5\""), 0, NULL, 422, 404, NULL, NULL, NULL},
	{"team id ../x", "PUT", "/v1/teams/..%2Fx", TEAM_BODY("\"5\""), 0, NULL, 422, 404, NULL, NULL,
	 NULL},
	{"team id trailing dash", "PUT", "/v1/teams/team-", TEAM_BODY("\"5\""), 0, NULL, 422, 404,
	 NULL, NULL, NULL},

	/* gpu types */
	{"capacity -1", "PUT", "/v1/gpu-types/g1", GPU_BODY("\"1\"", "-1"), 0, NULL, 422, 0, VE,
	 "capacity", NULL},
	{"capacity too big", "PUT", "/v1/gpu-types/g1", GPU_BODY("\"1\"", "1000001"), 0, NULL, 422, 0,
	 VE, "capacity", NULL},
	{"capacity string", "PUT", "/v1/gpu-types/g1", GPU_BODY("\"1\"", "\"4\""), 0, NULL, 422, 0, VE,
	 "capacity", NULL},
	{"price number", "PUT", "/v1/gpu-types/g1", GPU_BODY("1", "4"), 0, NULL, 422, 0, VE,
	 "price_per_gpu_hour", NULL},
	{"price 7 decimals", "PUT", "/v1/gpu-types/g1", GPU_BODY("\"0.0000001\"", "4"), 0, NULL, 422,
	 0, VE, "price_per_gpu_hour", NULL},
	{"price negative", "PUT", "/v1/gpu-types/g1", GPU_BODY("\"-1\"", "4"), 0, NULL, 422, 0, VE,
	 "price_per_gpu_hour", NULL},
	{"gpu id uppercase", "PUT", "/v1/gpu-types/H100", GPU_BODY("\"1\"", "4"), 0, NULL, 422, 404,
	 NULL, NULL, NULL},
	{"gpu id ../x", "PUT", "/v1/gpu-types/..%2Fx", GPU_BODY("\"1\"", "4"), 0, NULL, 422, 404, NULL,
	 NULL, NULL},

	/* tokens */
	{"token role bogus", "POST", "/v1/tokens", "{\"name\":\"x\",\"role\":\"root\",\"teams\":[]}", 0,
	 NULL, 422, 0, VE, "role", NULL},
	{"token teams string", "POST", "/v1/tokens",
	 "{\"name\":\"x\",\"role\":\"member\",\"teams\":\"ta\"}", 0, NULL, 422, 0, VE, "teams", NULL},
	{"member without team", "POST", "/v1/tokens",
	 "{\"name\":\"x\",\"role\":\"member\",\"teams\":[]}", 0, NULL, 422, 0, VE, "teams", NULL},
	{"member unknown team", "POST", "/v1/tokens",
	 "{\"name\":\"x\",\"role\":\"member\",\"teams\":[\"nope\"]}", 0, NULL, 422, 0, VE, "teams", NULL},
	/* An optional field sent as null is a value of the wrong type, not an
	 * absent field (it once reached the store and answered 500). */
	{"token teams null", "POST", "/v1/tokens",
	 "{\"name\":\"x\",\"role\":\"admin\",\"teams\":null}", 0, NULL, 422, 0, VE, "teams", NULL},
	{"team thresholds null", "PUT", "/v1/teams/tn",
	 "{\"display_name\":\"T\",\"budget\":{\"amount\":\"1\",\"period\":\"weekly\"},"
	 "\"alert_thresholds\":null}", 0, NULL, 422, 0, VE, "alert_thresholds", NULL},

	/* quotes */
	{"quote gpu_count 0", "POST", "/v1/quotes", "{\"team\":\"ta\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":0,\"max_runtime_hours\":1}", 0, NULL, 422, 0, VE, "gpu_count", NULL},
	{"quote unknown team", "POST", "/v1/quotes", "{\"team\":\"nope\"," VALID_TAIL "}", 0, NULL, 422,
	 0, VE, "team", NULL},
	{"quote runtime 169", "POST", "/v1/quotes", "{\"team\":\"ta\",\"gpu_type\":\"g1\","
	 "\"gpu_count\":1,\"max_runtime_hours\":169}", 0, NULL, 422, 0, VE, "max_runtime_hours", NULL},

	/* transitions on the fixture allocation (approved) */
	{"start bad time", "POST", ALLOC "/{id}/start", "{\"started_at\":\"notatime\"}", 0, NULL, 422,
	 0, VE, "started_at", NULL},
	{"start time number", "POST", ALLOC "/{id}/start", "{\"started_at\":5}", 0, NULL, 422, 0, VE,
	 "started_at", NULL},
	{"start before approval", "POST", ALLOC "/{id}/start", "{\"started_at\":\"2020-01-01T00:00:00Z\"}",
	 0, NULL, 422, 0, VE, "started_at", NULL},
	{"start in the future", "POST", ALLOC "/{id}/start", "{\"started_at\":\"2099-01-01T00:00:00Z\"}",
	 0, NULL, 422, 0, VE, "started_at", NULL},
	{"start unknown field", "POST", ALLOC "/{id}/start", "{\"foo\":1}", 0, NULL, 422, 0, VE, "foo",
	 "unknown field"},
	{"start malformed", "POST", ALLOC "/{id}/start", "{", 0, NULL, 400, 0, "malformed-json", NULL, NULL},
	{"complete before start", "POST", ALLOC "/{id}/complete", "{}", 0, NULL, 409, 0, "conflict",
	 NULL, NULL},
	{"cancel malformed", "POST", ALLOC "/{id}/cancel", "{", 0, NULL, 400, 0, "malformed-json", NULL, NULL},
	{"cancel wrong type", "POST", ALLOC "/{id}/cancel", "{}", 0, "text/plain", 415, 0,
	 "unsupported-media-type", NULL, NULL},
	{"unknown allocation", "POST", ALLOC "/alc-nope/cancel", NULL, 0, NULL, 404, 0, "not-found",
	 NULL, NULL},
	{"allocation id ../x", "GET", ALLOC "/..%2F..%2Fteams", NULL, 0, NULL, 404, 422, NULL, NULL, NULL},

	/* query parameters */
	{"limit 0", "GET", ALLOC "?limit=0", NULL, 0, NULL, 422, 0, VE, "limit", NULL},
	{"limit 501", "GET", ALLOC "?limit=501", NULL, 0, NULL, 422, 0, VE, "limit", NULL},
	{"limit abc", "GET", ALLOC "?limit=abc", NULL, 0, NULL, 422, 0, VE, "limit", NULL},
	{"status bogus", "GET", ALLOC "?status=bogus", NULL, 0, NULL, 422, 0, VE, "status", NULL},
	{"bad cursor", "GET", ALLOC "?cursor=%25%25not-a-cursor", NULL, 0, NULL, 422, 400, NULL, NULL, NULL},
	{"group_by bogus", "GET", "/v1/costs?group_by=bogus", NULL, 0, NULL, 422, 0, VE, "group_by", NULL},
	{"from notatime", "GET", "/v1/costs?from=notatime", NULL, 0, NULL, 422, 0, VE, "from", NULL},
	{"to notatime", "GET", "/v1/costs?to=2026-13-45", NULL, 0, NULL, 422, 0, VE, "to", NULL},
	{"audit limit 0", "GET", "/v1/audit?limit=0", NULL, 0, NULL, 422, 0, VE, "limit", NULL},
};

/* Everything a bad request could have changed. */
struct snapshot {
	json_t *team, *gpus, *allocs, *tokens, *audit, *alloc;
};

static json_t *snap_get(struct itest_daemon *d, const char *path)
{
	struct itest_resp *r = itest_req(d, "GET", path, d->admin, NULL);

	ITEST_STATUS(r, 200);
	assert_non_null(r->json);
	return r->json;
}

static void snapshot_take(struct itest_daemon *d, const char *alloc_id, struct snapshot *s)
{
	s->team = snap_get(d, "/v1/teams/ta");
	s->gpus = snap_get(d, "/v1/gpu-types");
	s->allocs = snap_get(d, "/v1/allocations?limit=500");
	s->tokens = snap_get(d, "/v1/tokens");
	s->audit = snap_get(d, "/v1/audit?limit=500");
	s->alloc = snap_get(d, itest_strf(d, "/v1/allocations/%s", alloc_id));
	/* The audit page must hold everything for the comparison to be fair. */
	assert_true(json_is_null(itest_jget(s->audit, "next_cursor")));
}

static int snapshot_same(const char *row, const char *what, json_t *a, json_t *b)
{
	char *sa, *sb;

	if (json_equal(a, b))
		return 1;
	sa = json_dumps(a, JSON_SORT_KEYS);
	sb = json_dumps(b, JSON_SORT_KEYS);
	fprintf(stderr, "row \"%s\" changed %s:\n before: %s\n after:  %s\n", row, what,
		sa ? sa : "?", sb ? sb : "?");
	free(sa);
	free(sb);
	return 0;
}

static char *repeat_char(struct itest_daemon *d, char c, size_t n)
{
	char *s = itest_keep(d, malloc(n + 1));

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Builds a generated body; returns it (owned by d) and sets *len. */
static const char *gen_body(struct itest_daemon *d, enum gen g, size_t *len)
{
	const char *body = NULL;

	switch (g) {
	case GEN_NONE:
		return NULL;
	case GEN_PURPOSE_5000:
		body = itest_strf(d, "{\"team\":\"ta\",\"project\":\"p\",\"purpose\":\"%s\"," VALID_TAIL "}",
				  repeat_char(d, 'x', 5000));
		break;
	case GEN_LABELS_40: {
		char *labels = itest_keep(d, calloc(1, 40 * 16 + 8));
		int i;

		assert_non_null(labels);
		for (i = 0; i < 40; i++)
			sprintf(labels + strlen(labels), "%s\"k%d\":\"v\"", i ? "," : "", i);
		body = itest_strf(d, "{\"team\":\"ta\",\"project\":\"p\",\"labels\":{%s}," VALID_TAIL "}",
				  labels);
		break;
	}
	case GEN_LABEL_VAL_64:
		body = itest_strf(d, "{\"team\":\"ta\",\"project\":\"p\",\"labels\":{\"k\":\"%s\"},"
				  VALID_TAIL "}", repeat_char(d, 'v', 64));
		break;
	case GEN_PROJECT_70:
		body = itest_strf(d, "{\"team\":\"ta\",\"project\":\"%s\"," VALID_TAIL "}",
				  repeat_char(d, 'p', 70));
		break;
	case GEN_BODY_1MIB_1: {
		/* A syntactically valid JSON object, exactly 1 MiB + 1 bytes. */
		size_t total = 1024 * 1024 + 1;
		const char *head = "{\"team\":\"ta\",\"project\":\"p\"," VALID_TAIL ",\"purpose\":\"";
		size_t hl = strlen(head);
		size_t fill = total - hl - 2;
		char *b = malloc(total + 1);

		if (b == NULL) /* abort, not assert: tells the compiler b is valid below */
			abort();
		itest_keep(d, b);
		memcpy(b, head, hl);
		memset(b + hl, 'x', fill);
		memcpy(b + hl + fill, "\"}", 3);
		assert_int_equal(strlen(b), total);
		body = b;
		break;
	}
	case GEN_DEEP: {
		size_t n = 100000;
		char *b = itest_keep(d, malloc(2 * n + 1));

		assert_non_null(b);
		memset(b, '[', n);
		memset(b + n, ']', n);
		b[2 * n] = '\0';
		body = b;
		break;
	}
	case GEN_KEY_256:
		body = "{\"team\":\"ta\",\"project\":\"p\"," VALID_TAIL "}";
		break;
	}
	*len = strlen(body);
	return body;
}

/* Replaces "{id}" in path with id. */
static const char *expand_path(struct itest_daemon *d, const char *path, const char *id)
{
	const char *p = strstr(path, "{id}");

	if (p == NULL)
		return path;
	return itest_strf(d, "%.*s%s%s", (int)(p - path), path, id, p + 4);
}

/* Runs one row; on a state change, *before becomes the new state so the
 * next rows are judged on their own. */
static int run_case(struct itest_daemon *d, const struct bad_case *c, const char *alloc_id,
		    struct snapshot *before)
{
	const char *headers[3] = {NULL, NULL, NULL};
	const char *body = c->body;
	size_t len = body ? strlen(body) : 0;
	struct itest_resp *r;
	struct snapshot after;
	int nh = 0;
	int ok = 1;

	if (c->gen != GEN_NONE)
		body = gen_body(d, c->gen, &len);
	if (c->ctype != NULL)
		headers[nh++] = itest_strf(d, "Content-Type: %s", c->ctype);
	if (c->gen == GEN_KEY_256)
		headers[nh++] = itest_strf(d, "Idempotency-Key: %s", repeat_char(d, 'k', 256));

	r = itest_keep(d, calloc(1, sizeof(*r)));
	assert_non_null(r);
	if (itest_http(d->curl, d->base_url, c->method, expand_path(d, c->path, alloc_id), d->admin,
		       body, len, headers, r) != 0) {
		fprintf(stderr, "row \"%s\": no HTTP response (curl %d)\n", c->name, (int)r->curl_rc);
		itest_resp_clear(r);
		return 0;
	}
	if (r->status == c->status) {
		if (!itest_is_problem(r, c->status, c->problem)) {
			fprintf(stderr, "row \"%s\": not the problem %s [%s]: %s\n", c->name,
				c->problem ? c->problem : "(any)", r->content_type, r->body);
			ok = 0;
		}
		if (c->field != NULL && !itest_problem_names_field(r, c->field)) {
			fprintf(stderr, "row \"%s\": errors[] does not name \"%s\": %s\n", c->name,
				c->field, r->body);
			ok = 0;
		}
		if (c->message != NULL) {
			json_t *e;
			size_t i;
			int found = 0;

			json_array_foreach(itest_jget(r->json, "errors"), i, e) {
				const char *f = itest_jstr(e, "field");
				const char *m = itest_jstr(e, "message");

				if (f && m && strstr(f, c->field) && strcmp(m, c->message) == 0)
					found = 1;
			}
			if (!found) {
				fprintf(stderr, "row \"%s\": no message \"%s\" for %s: %s\n", c->name,
					c->message, c->field, r->body);
				ok = 0;
			}
		}
	} else if (c->alt_status != 0 && r->status == c->alt_status) {
		if (!itest_is_problem(r, c->alt_status, NULL)) {
			fprintf(stderr, "row \"%s\": status %ld without problem+json [%s]: %s\n",
				c->name, r->status, r->content_type, r->body);
			ok = 0;
		}
	} else {
		fprintf(stderr, "row \"%s\": expected HTTP %ld%s, got %ld: %.300s\n", c->name,
			c->status, c->alt_status ? " (or alternative)" : "", r->status, r->body);
		ok = 0;
	}
	itest_resp_clear(r);

	snapshot_take(d, alloc_id, &after);
	ok &= snapshot_same(c->name, "team", before->team, after.team);
	ok &= snapshot_same(c->name, "gpu types", before->gpus, after.gpus);
	ok &= snapshot_same(c->name, "allocations", before->allocs, after.allocs);
	ok &= snapshot_same(c->name, "tokens", before->tokens, after.tokens);
	ok &= snapshot_same(c->name, "audit", before->audit, after.audit);
	ok &= snapshot_same(c->name, "allocation", before->alloc, after.alloc);
	if (!ok)
		*before = after;
	return ok;
}

static void fixture(struct itest_daemon *d, char *alloc_id, size_t len)
{
	struct itest_resp *r;

	itest_put_gpu(d, "g1", "1.00", 8);
	itest_put_team(d, "ta", "1000");
	r = itest_allocate(d, d->admin, "ta", "p", "g1", 1, "1");
	ITEST_STATUS(r, 201);
	snprintf(alloc_id, len, "%s", itest_jstr(r->json, "id"));
}

static void test_bad_request_table(void **state)
{
	struct itest_daemon *d = *state;
	struct snapshot before;
	char alloc_id[128];
	size_t i;
	int failures = 0;

	fixture(d, alloc_id, sizeof(alloc_id));
	snapshot_take(d, alloc_id, &before);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!run_case(d, &cases[i], alloc_id, &before))
			failures++;
	}
	if (failures > 0) {
		fprintf(stderr, "%d of %zu bad-input rows failed\n", failures,
			sizeof(cases) / sizeof(cases[0]));
		itest_daemon_dump_log(d, 2048);
	}
	ITEST_STATUS(itest_req(d, "GET", "/healthz", NULL, NULL), 200);
	assert_int_equal(failures, 0);
}

/* 200 headers of 1 KiB each: refused with a 4xx, and the daemon keeps serving. */
static void test_huge_headers(void **state)
{
	struct itest_daemon *d = *state;
	const char **headers = NULL;
	struct itest_resp r = {0};
	char *value;
	int i;

	headers = itest_keep(d, calloc(201, sizeof(*headers)));
	assert_non_null(headers);
	value = repeat_char(d, 'h', 1024);
	for (i = 0; i < 200; i++)
		headers[i] = itest_strf(d, "X-Filler-%d: %s", i, value);
	if (itest_http(d->curl, d->base_url, "GET", "/v1/teams", d->admin, NULL, 0, headers, &r) == 0) {
		fprintf(stderr, "huge headers: HTTP %ld\n", r.status);
		if (!(r.status == 413 || r.status == 431 || r.status == 400)) {
			fprintf(stderr, "huge headers: got HTTP %ld\n", r.status);
			itest_resp_clear(&r);
			fail();
		}
	} else {
		/* Closing the connection is not a 4xx answer. */
		fprintf(stderr, "huge headers: no HTTP response (curl %d)\n", (int)r.curl_rc);
		itest_resp_clear(&r);
		fail();
	}
	itest_resp_clear(&r);
	ITEST_STATUS(itest_req(d, "GET", "/healthz", NULL, NULL), 200);
	ITEST_STATUS(itest_req(d, "GET", "/v1/teams", d->admin, NULL), 200);
}

/* One 8 KiB header (a big cookie from another app on the same host) is
 * still served: the per-connection memory limit leaves room for it. */
static void test_big_header_served(void **state)
{
	struct itest_daemon *d = *state;
	const char *headers[2] = {NULL, NULL};
	struct itest_resp r = {0};

	headers[0] = itest_strf(d, "Cookie: c=%s", repeat_char(d, 'c', 8 * 1024));
	assert_int_equal(itest_http(d->curl, d->base_url, "GET", "/v1/teams", d->admin, NULL, 0,
				    headers, &r),
			 0);
	if (r.status != 200)
		fprintf(stderr, "8 KiB header: got HTTP %ld\n", r.status);
	assert_int_equal(r.status, 200);
	itest_resp_clear(&r);
}

/* Methods the route does not have: 405 with Allow, and nothing changes. */
static void test_method_not_allowed(void **state)
{
	struct itest_daemon *d = *state;
	struct itest_resp *r;
	char allow[256];

	itest_put_team(d, "ta", "10");
	r = itest_req(d, "DELETE", "/v1/teams/ta", d->admin, NULL);
	ITEST_PROBLEM(r, 405, "method-not-allowed");
	assert_int_equal(itest_resp_header(r, "Allow", allow, sizeof(allow)), 0);
	assert_non_null(strstr(allow, "PUT"));
	r = itest_req(d, "PATCH", "/v1/allocations", d->admin, "{}");
	ITEST_PROBLEM(r, 405, "method-not-allowed");
	ITEST_STATUS(itest_req(d, "GET", "/v1/teams/ta", d->admin, NULL), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_request_table, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_big_header_served, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_huge_headers, itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_method_not_allowed, itest_setup_daemon, itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-bad-input", tests, NULL, NULL);
}
