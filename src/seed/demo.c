/*
 * demo.c - first-start data written through the store: the embedded price
 * catalog and the demo organisation.
 *
 * Everything goes through struct store_ops so the seeds obey the same
 * ledger rules and audit trail as real requests.  Must never be random at
 * run time (the demo is the same on every machine: a fixed LCG, no rand()),
 * and must never leave a refusal unreported: a refused demo allocation is a
 * bug in this file and fails loudly with the detail.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cost.h"
#include "core/err.h"
#include "core/money.h"
#include "seed/embedded.h"
#include "seed/seed.h"

#define SEED_CATALOG_MAX 64
#define DAY INT64_C(86400)
#define HOUR INT64_C(3600)
#define MINUTE INT64_C(60)
#define DEMO_START_TIMEOUT_S (24 * HOUR)

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

int seed_catalog(struct store_conn *c, int64_t now, char *detail)
{
	struct gpu_type *types = NULL; /* owned here, freed at out */
	size_t n = 0;
	int rc;

	types = calloc(SEED_CATALOG_MAX, sizeof(*types));
	if (types == NULL) {
		rc = ERR_NOMEM;
		set_detail(detail, "seed catalog: out of memory");
		goto out;
	}
	rc = seed_catalog_parse((const char *)catalog_csv, types, SEED_CATALOG_MAX, &n, detail);
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		types[i].updated_at = now;
	rc = store_conn_ops(c)->gpu_type_seed(c, types, n, now);
	if (rc != 0)
		set_detail(detail, "seed catalog: store refused the catalog: %s", err_name(rc));
out:
	free(types);
	return rc;
}

/* A fixed linear congruential generator (Knuth's MMIX constants). */
struct lcg {
	uint64_t state;
};

/* A number in [lo, hi]. */
static int64_t lcg_range(struct lcg *g, int64_t lo, int64_t hi)
{
	g->state = g->state * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
	return lo + (int64_t)((g->state >> 33) % (uint64_t)(hi - lo + 1));
}

struct demo_team {
	const char *id, *name;
	int64_t budget_units;
	const char *types[2];   /* the GPU types this team uses */
	const char *projects[3];
};

static const struct demo_team demo_teams[] = {
	{"nlp", "NLP research", 60000, {"h100-80gb", "a100-80gb"},
	 {"llm-pretrain", "instruct-tuning", "eval-harness"}},
	{"vision", "Computer vision", 40000, {"a100-80gb", "l4-24gb"},
	 {"detector-v3", "segmentation", "video-embeddings"}},
	{"recsys", "Recommendations", 25000, {"a10g-24gb", "l4-24gb"},
	 {"ranker", "two-tower", "feature-backfill"}},
};
#define NTEAMS (sizeof(demo_teams) / sizeof(demo_teams[0]))

static const struct {
	const char *id;
	int64_t capacity;
} demo_capacity[] = {
	{"h100-80gb", 16},
	{"a100-80gb", 16},
	{"l4-24gb", 32},
	{"a10g-24gb", 16},
};

struct demo_ctx {
	struct store_conn *c;
	const struct store_ops *ops;
	struct actor who;
	char *detail;
};

/* Approves one allocation at instant `at`; the id is copied to id_out. */
static int demo_allocate(struct demo_ctx *d, const struct demo_team *t, const char *type,
			 const char *project, int64_t gpus, int64_t runtime_h, int64_t at,
			 char *id_out)
{
	struct alloc_request req;
	struct alloc_outcome o;
	struct idem idem;
	char sub[STORE_DETAIL_LEN] = "";
	char avail[MONEY_FMT_LEN] = "?";
	char est[MONEY_FMT_LEN] = "?";

	memset(&req, 0, sizeof(req));
	memset(&o, 0, sizeof(o));
	memset(&idem, 0, sizeof(idem)); /* no Idempotency-Key */
	(void)snprintf(req.team, sizeof(req.team), "%s", t->id);
	(void)snprintf(req.project, sizeof(req.project), "%s", project);
	(void)snprintf(req.gpu_type, sizeof(req.gpu_type), "%s", type);
	req.gpu_count = gpus;
	req.max_runtime_us = runtime_h * USEC_PER_HOUR;
	(void)snprintf(req.purpose, sizeof(req.purpose), "demo: %s on %" PRId64 " x %s", project,
		       gpus, type);
	(void)snprintf(req.labels_json, sizeof(req.labels_json), "{\"demo\":\"true\"}");

	int rc = d->ops->allocate(d->c, &d->who, &req, DEMO_START_TIMEOUT_S, at, &idem, &o, sub);
	if (rc != 0) {
		(void)money_format(o.available, avail, sizeof(avail));
		(void)money_format(o.estimated, est, sizeof(est));
		set_detail(d->detail,
			   "seed demo: allocation for %s (%" PRId64 " x %s, %" PRId64
			   " h) refused: %s (available %s, estimated %s, gpus free %" PRId64 ") %s",
			   t->id, gpus, type, runtime_h, err_name(rc), avail, est, o.gpus_available, sub);
		return rc;
	}
	(void)snprintf(id_out, STORE_ID_LEN, "%s", o.alloc.id);
	return 0;
}

static int demo_transition(struct demo_ctx *d, const char *id, enum alloc_event ev, int64_t at)
{
	struct allocation a;
	bool repeat = false;
	char sub[STORE_DETAIL_LEN] = "";
	int rc = d->ops->alloc_transition(d->c, &d->who, id, ev, at, at, &a, &repeat, sub);
	if (rc != 0)
		set_detail(d->detail, "seed demo: %s of %s failed: %s %s", alloc_event_name(ev), id,
			   err_name(rc), sub);
	return rc;
}

static int demo_types(struct demo_ctx *d, int64_t at)
{
	for (size_t i = 0; i < sizeof(demo_capacity) / sizeof(demo_capacity[0]); i++) {
		struct gpu_type g;
		bool created = false;
		/* Keep the seeded price, name and source; only the capacity is demo data. */
		int rc = d->ops->gpu_type_get(d->c, demo_capacity[i].id, &g);
		if (rc != 0) {
			set_detail(d->detail, "seed demo: gpu type %s: %s (catalog not seeded?)",
				   demo_capacity[i].id, err_name(rc));
			return rc;
		}
		g.capacity = demo_capacity[i].capacity;
		rc = d->ops->gpu_type_put(d->c, &d->who, &g, at, &created);
		if (rc != 0) {
			set_detail(d->detail, "seed demo: capacity of %s: %s", g.id, err_name(rc));
			return rc;
		}
	}
	return 0;
}

static int demo_teams_put(struct demo_ctx *d, int64_t at)
{
	for (size_t i = 0; i < NTEAMS; i++) {
		struct team t;
		bool created = false;
		memset(&t, 0, sizeof(t));
		(void)snprintf(t.id, sizeof(t.id), "%s", demo_teams[i].id);
		(void)snprintf(t.display_name, sizeof(t.display_name), "%s", demo_teams[i].name);
		t.budget_micros = demo_teams[i].budget_units * MONEY_MICROS_PER_UNIT;
		t.period = PERIOD_MONTHLY;
		(void)snprintf(t.thresholds_json, sizeof(t.thresholds_json), "[0.5,0.8,1.0]");
		t.created_at = at;
		t.updated_at = at;
		int rc = d->ops->team_put(d->c, &d->who, &t, at, &created);
		if (rc != 0) {
			set_detail(d->detail, "seed demo: team %s: %s", t.id, err_name(rc));
			return rc;
		}
	}
	return 0;
}

/*
 * Five weeks of finished work.  Each allocation is approved, started and
 * completed before the next is approved, so history never holds GPUs and the
 * capacity check only sees the allocations that are live now.  Sizes are
 * small enough (at most 8 x 24 h x the H100 price, about 1 321 per job)
 * that no team reaches its monthly budget.
 */
static int demo_history(struct demo_ctx *d, struct lcg *g, int64_t now)
{
	const int count = 40;
	const int64_t span = 34 * DAY;
	const int64_t first = now - 35 * DAY;
	const int64_t cancel_at = now - 3 * DAY;
	bool cancelled = false;

	for (int i = 0; i < count; i++) {
		const struct demo_team *t = &demo_teams[lcg_range(g, 0, NTEAMS - 1)];
		const char *type = t->types[lcg_range(g, 0, 1)];
		const char *project = t->projects[lcg_range(g, 0, 2)];
		int64_t gpus = INT64_C(1) << lcg_range(g, 0, 3); /* 1, 2, 4 or 8 */
		int64_t runtime_h = lcg_range(g, 2, 24);
		int64_t approved = first + span * i / count + lcg_range(g, 0, 6 * HOUR);
		int64_t started = approved + lcg_range(g, 1 * MINUTE, 45 * MINUTE);
		/* Jobs finish somewhat before their limit; some use all of it. */
		int64_t ran = runtime_h * HOUR - lcg_range(g, 0, 90 * MINUTE);
		if (ran < HOUR)
			ran = HOUR;
		char id[STORE_ID_LEN];
		int rc = 0;

		if (!cancelled && approved > cancel_at) {
			/* One cancelled three days ago: approved, then dropped within the
			 * hour; written in time order so the audit log reads naturally. */
			rc = demo_allocate(d, &demo_teams[1], "a100-80gb", "segmentation", 4, 12,
					   cancel_at, id);
			if (rc == 0)
				rc = demo_transition(d, id, ALLOC_EV_CANCEL, cancel_at + 40 * MINUTE);
			if (rc != 0)
				return rc;
			cancelled = true;
		}
		rc = demo_allocate(d, t, type, project, gpus, runtime_h, approved, id);
		if (rc == 0)
			rc = demo_transition(d, id, ALLOC_EV_START, started);
		if (rc == 0)
			rc = demo_transition(d, id, ALLOC_EV_COMPLETE, started + ran);
		if (rc != 0)
			return rc;
	}
	if (!cancelled) {
		/* The schedule above always passes cancel_at; this guards edits to it. */
		set_detail(d->detail, "seed demo: the cancelled allocation was never written");
		return ERR_INVALID;
	}
	return 0;
}

/* Live now: three running (started hours ago) and two approved, not started.
 * Per GPU type the live total stays within capacity. */
static int demo_live(struct demo_ctx *d, int64_t now)
{
	static const struct {
		int team;
		const char *type, *project;
		int64_t gpus, runtime_h, approved_ago, started_ago; /* started_ago 0 = not started */
	} live[] = {
		{0, "h100-80gb", "llm-pretrain", 8, 72, 5 * HOUR, 5 * HOUR - 10 * MINUTE},
		{1, "a100-80gb", "detector-v3", 4, 24, 3 * HOUR, 3 * HOUR - 5 * MINUTE},
		{2, "l4-24gb", "ranker", 2, 12, 2 * HOUR, 2 * HOUR - 15 * MINUTE},
		{0, "a100-80gb", "eval-harness", 4, 8, 40 * MINUTE, 0},
		{2, "a10g-24gb", "two-tower", 2, 6, 20 * MINUTE, 0},
	};
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		char id[STORE_ID_LEN];
		int rc = demo_allocate(d, &demo_teams[live[i].team], live[i].type, live[i].project,
				       live[i].gpus, live[i].runtime_h, now - live[i].approved_ago, id);
		if (rc == 0 && live[i].started_ago != 0)
			rc = demo_transition(d, id, ALLOC_EV_START, now - live[i].started_ago);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int seed_demo(struct store_conn *c, int64_t now, char *detail)
{
	struct demo_ctx d;
	struct lcg g = {UINT64_C(0x706c696e7468)}; /* "plinth": fixed, so the demo is reproducible */
	struct team existing;
	int rc;

	memset(&d, 0, sizeof(d));
	d.c = c;
	d.ops = store_conn_ops(c);
	d.detail = detail;
	(void)snprintf(d.who.token_id, sizeof(d.who.token_id), "system");
	(void)snprintf(d.who.name, sizeof(d.who.name), "demo seed");
	d.who.role = ROLE_ADMIN;

	rc = d.ops->team_get(c, "nlp", &existing);
	if (rc == 0)
		goto out; /* seeded before: a no-op */
	if (rc != ERR_NOT_FOUND) {
		set_detail(detail, "seed demo: reading team nlp: %s", err_name(rc));
		goto out;
	}

	/* The organisation exists from just before its history begins. */
	int64_t setup_at = now - 36 * DAY;
	rc = demo_types(&d, setup_at);
	if (rc == 0)
		rc = demo_teams_put(&d, setup_at);
	if (rc == 0)
		rc = demo_history(&d, &g, now);
	if (rc == 0)
		rc = demo_live(&d, now);
out:
	return rc;
}
