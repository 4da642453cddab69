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
#include "core/period.h"
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

/* ---- the organisation -------------------------------------------------- */

#define DEMO_MAX_THRESHOLDS 3
#define DEMO_HISTORY (92 * DAY)      /* about one quarter of finished work */
#define DEMO_LIVE_MAX_RUNTIME_H 168  /* serve's default --max-runtime-hours */
#define DEMO_LIVE_JOBS_MAX 10        /* live allocations per team at most */
#define DEMO_ALERT_URL "https://chat.example.com/hooks/ml-platform-budgets"

struct demo_team {
	const char *id, *name;
	enum period_kind period;
	int64_t budget_units;
	/* Alert thresholds in parts per million of the budget, ascending, 0 = none. */
	int64_t thresholds_ppm[DEMO_MAX_THRESHOLDS];
	/* The share of the budget committed (spent + reserved) in the current
	 * period when the demo starts, in ppm. */
	int64_t target_ppm;
	const char *types[2]; /* the GPU types this team uses */
	int64_t max_gpus;     /* the largest finished job */
	int lanes;            /* finished jobs that run at the same time */
	int64_t runtime_lo_h, runtime_hi_h;
	const char *projects[3];
	/* Whom a refusal tells the data scientist to ask (JSON array text). */
	const char *admins_json;
};

/*
 * Five teams of a mid-size company.  speech is comfortable, vision and
 * recsys are light, nlp is past its 80 % alert threshold and
 * forecasting is close to its limit.  A GPU type's capacity must cover,
 * per type, the finished jobs' lanes x max_gpus of every team using it plus
 * the live jobs of the first day of a period (when a period has just begun,
 * its whole share is reservations of live jobs): see demo_capacity.  Each
 * team names one or two admins, so a refusal in the demo says whom to ask.
 */
static const struct demo_team demo_teams[] = {
	{"speech", "Speech", PERIOD_MONTHLY, 30000, {750000, 900000, 1000000}, 620000,
	 {"a100-80gb", "l4-24gb"}, 16, 2, 24, 96, {"asr-conformer", "tts-vits", "diarization"},
	 "[\"amara@speech.example\"]"},
	{"vision", "Computer vision", PERIOD_MONTHLY, 36000, {500000, 800000, 1000000}, 410000,
	 {"a100-80gb", "l40s-48gb"}, 16, 2, 24, 96, {"detector-v3", "segmentation", "video-embeddings"},
	 "[\"wei.zhang@vision.example\",\"jonas@vision.example\"]"},
	{"recsys", "Recommendations", PERIOD_MONTHLY, 12000, {800000, 1000000, 0}, 340000,
	 {"a10g-24gb", "l4-24gb"}, 8, 2, 12, 48, {"ranker", "two-tower", "feature-backfill"},
	 "[\"sofia@recsys.example\"]"},
	{"nlp", "NLP research", PERIOD_QUARTERLY, 180000, {500000, 800000, 1000000}, 840000,
	 {"h100-80gb", "h200-141gb"}, 16, 2, 24, 120, {"llm-pretrain", "instruct-tuning", "eval-harness"},
	 "[\"ravi@nlp.example\",\"hannah@nlp.example\"]"},
	{"forecasting", "Forecasting", PERIOD_MONTHLY, 8000, {800000, 950000, 1000000}, 930000,
	 {"l4-24gb", "a10g-24gb"}, 8, 2, 8, 48, {"demand-tft", "supply-deepar", "backtests"},
	 "[\"priya@forecasting.example\"]"},
};
#define NTEAMS (sizeof(demo_teams) / sizeof(demo_teams[0]))
#define DEMO_MEMBER_TEAM 4 /* the data scientist works in forecasting */

static const struct {
	const char *id;
	int64_t capacity;
} demo_capacity[] = {
	{"h100-80gb", 128}, {"h200-141gb", 96}, {"a100-80gb", 128},
	{"l40s-48gb", 64},  {"l4-24gb", 128},   {"a10g-24gb", 64},
};
#define NTYPES (sizeof(demo_capacity) / sizeof(demo_capacity[0]))

/* MLflow names runs "<adjective>-<animal>-<number>"; the demo's jobs do too. */
static const char *const run_adjectives[] = {
	"bold", "brave", "calm", "clever", "eager", "gentle", "happy", "jolly", "keen", "lucky",
	"merry", "nimble", "proud", "quiet", "rare", "shy", "swift", "witty", "sunny", "upbeat",
};
static const char *const run_animals[] = {
	"otter", "heron", "lynx", "panda", "koala", "finch", "mole", "owl", "seal", "wolf",
	"yak", "zebra", "crane", "gull", "hare", "ibis", "newt", "robin", "sloth", "toad",
};
#define NELEM(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* One planned allocation: when it is approved, started and completed. */
struct demo_job {
	int team, type;      /* indexes into demo_teams / demo_capacity */
	const char *project;
	char run[48];        /* MLflow-style run name */
	int64_t gpus, runtime_h;
	int64_t approved, started, ended; /* started/ended 0 = not (yet) */
	char id[STORE_ID_LEN];            /* once approved */
};

/* At one instant: free GPUs first, and a job is approved before it starts. */
enum demo_ev_kind { EV_COMPLETE, EV_APPROVE, EV_START };

struct demo_event {
	int64_t at;
	enum demo_ev_kind kind;
	int job;
};

struct demo_ctx {
	struct store_conn *c;
	const struct store_ops *ops;
	struct lcg g;
	int64_t now;
	struct actor system, member;
	struct gpu_type types[NTYPES];
	struct demo_job *jobs; /* owned, grown by plan_job */
	int njobs, cap;
	/* Alerts: the period and thresholds already recorded, per team. */
	int64_t alert_period[NTEAMS];
	int64_t committed[NTEAMS]; /* spent + reserved of alert_period */
	bool alerted[NTEAMS][DEMO_MAX_THRESHOLDS];
	char *detail;
};

static int type_index(const char *id)
{
	for (size_t i = 0; i < NTYPES; i++)
		if (strcmp(demo_capacity[i].id, id) == 0)
			return (int)i;
	return -1;
}

static int64_t job_cost(const struct demo_ctx *d, int type, int64_t gpus, int64_t duration_s)
{
	int64_t out = 0;
	/* Inputs are small and positive: cost_compute cannot fail here. */
	(void)cost_compute(d->types[type].price_micros, gpus, duration_s * USEC_PER_SEC, &out);
	return out;
}

/* Adds a job to the plan; NULL (detail set) when out of memory. */
static struct demo_job *plan_job(struct demo_ctx *d, int team, int type, int64_t gpus,
				 int64_t runtime_h, int64_t approved)
{
	if (d->njobs == d->cap) {
		int cap = d->cap ? d->cap * 2 : 256;
		struct demo_job *p = realloc(d->jobs, (size_t)cap * sizeof(*p));
		if (p == NULL) {
			set_detail(d->detail, "seed demo: out of memory");
			return NULL;
		}
		d->jobs = p;
		d->cap = cap;
	}
	struct demo_job *j = &d->jobs[d->njobs++];
	memset(j, 0, sizeof(*j));
	j->team = team;
	j->type = type;
	j->gpus = gpus;
	j->runtime_h = runtime_h;
	j->approved = approved;
	j->project = demo_teams[team].projects[lcg_range(&d->g, 0, 2)];
	(void)snprintf(j->run, sizeof(j->run), "%s-%s-%03" PRId64,
		       run_adjectives[lcg_range(&d->g, 0, NELEM(run_adjectives) - 1)],
		       run_animals[lcg_range(&d->g, 0, NELEM(run_animals) - 1)],
		       lcg_range(&d->g, 100, 999));
	return j;
}

/*
 * Finished jobs of one team in [from, to), `lanes` at a time, until their
 * actual costs reach `target` micros or time runs out.  Returns the sum of
 * the actual costs planned, or -1 when out of memory.
 */
static int64_t plan_finished(struct demo_ctx *d, int team, int64_t from, int64_t to, int64_t target)
{
	const struct demo_team *t = &demo_teams[team];
	int64_t lane_at[4];
	int64_t spent = 0;
	/* Pace: the lanes would spend `full` busy all the time; they pause
	 * between jobs so the target is reached near the end of the window, and
	 * the burn rate is even (a forecast from recent use stays realistic). */
	int a = type_index(t->types[0]), b = type_index(t->types[1]);
	int64_t hours = (to - from) / HOUR;
	int64_t full = t->lanes * (job_cost(d, a, 3 * t->max_gpus, HOUR) +
				   job_cost(d, b, 3 * t->max_gpus, HOUR)) / 8 * hours;
	int64_t busy_pct = full > target ? (int64_t)((__int128)target * 100 / full) : 100;
	if (busy_pct < 5)
		busy_pct = 5;

	for (int l = 0; l < t->lanes; l++)
		lane_at[l] = from + lcg_range(&d->g, 0, 8 * HOUR);
	for (;;) {
		int l = 0;
		for (int k = 1; k < t->lanes; k++)
			if (lane_at[k] < lane_at[l])
				l = k;
		int64_t at = lane_at[l];
		int type = type_index(t->types[lcg_range(&d->g, 0, 1)]);
		int64_t gpus = t->max_gpus >> lcg_range(&d->g, 0, 1);
		int64_t runtime_h = lcg_range(&d->g, t->runtime_lo_h, t->runtime_hi_h);
		int64_t room_h = (to - at - 30 * MINUTE) / HOUR; /* start delay included */
		if (gpus < 1)
			gpus = 1;
		if (runtime_h > room_h)
			runtime_h = room_h;
		if (runtime_h < 2)
			break; /* the earliest lane is at the end of the window */
		/* The last job is cut to what is left of the target. */
		int64_t left = target - spent, hour = job_cost(d, type, gpus, HOUR);
		if (job_cost(d, type, gpus, runtime_h * HOUR) > left)
			runtime_h = left / hour;
		if (runtime_h < 2)
			break;
		struct demo_job *j = plan_job(d, team, type, gpus, runtime_h, at);
		if (j == NULL)
			return -1;
		j->started = at + lcg_range(&d->g, 1 * MINUTE, 20 * MINUTE);
		/* Jobs finish somewhat before their limit; some use all of it. */
		int64_t ran = runtime_h * HOUR - lcg_range(&d->g, 0, runtime_h * HOUR / 4);
		j->ended = j->started + (ran < HOUR ? HOUR : ran);
		spent += job_cost(d, type, gpus, j->ended - j->started);
		int64_t pause = (j->ended - j->started) * (100 - busy_pct) / busy_pct;
		lane_at[l] = j->ended + lcg_range(&d->g, 15 * MINUTE, 2 * HOUR) +
			     lcg_range(&d->g, pause / 2, pause * 3 / 2);
	}
	return spent;
}

/* GPUs of type `type` that finished jobs of the current period may hold. */
static int64_t lanes_hold(int type)
{
	int64_t n = 0;
	for (size_t i = 0; i < NTEAMS; i++)
		for (int k = 0; k < 2; k++)
			if (strcmp(demo_teams[i].types[k], demo_capacity[type].id) == 0)
				n += demo_teams[i].lanes * demo_teams[i].max_gpus;
	return n;
}

/*
 * The live allocations of one team in the current period [ps, now): enough
 * running (and, last, one approved but not started) jobs to bring the
 * period's committed money from `committed` to the target.  free_gpus is
 * what live jobs may still take per type.  Fails (ERR_INVALID) when the
 * capacity cannot hold the target: a bug in the tables above.
 */
static int plan_live(struct demo_ctx *d, int team, int64_t ps, int64_t committed,
		     int64_t *free_gpus)
{
	const struct demo_team *t = &demo_teams[team];
	int64_t budget = t->budget_units * MONEY_MICROS_PER_UNIT;
	int64_t target = (int64_t)((__int128)budget * t->target_ppm / 1000000);
	/* Live jobs are approved in [ps, end]: up to ten minutes before now,
	 * or at the period's first instant when it began later than that. */
	int64_t end = d->now - 10 * MINUTE > ps ? d->now - 10 * MINUTE : ps;
	int64_t window = end - ps;
	int n = 0;

	while (target - committed > budget / 100 && n < DEMO_LIVE_JOBS_MAX) {
		int a = type_index(t->types[0]), b = type_index(t->types[1]);
		int type = free_gpus[a] >= free_gpus[b] ? a : b;
		int64_t gpus = free_gpus[type] < 2 * t->max_gpus ? free_gpus[type] : 2 * t->max_gpus;
		int64_t left = target - committed;
		if (gpus < 1)
			break;
		/* The first team's first live job leaves a quarter of the share to
		 * a second, so that the demo always has a job waiting for its pods
		 * (below), whatever the hour (one job often covered a share). */
		if (team == 0 && n == 0)
			left -= left / 4;
		int64_t hour = job_cost(d, type, gpus, HOUR);
		if (left < 4 * hour) { /* a small remainder: fewer GPUs for a few hours */
			gpus = left / (4 * job_cost(d, type, 1, HOUR));
			if (gpus < 1)
				gpus = 1;
			hour = job_cost(d, type, gpus, HOUR);
		}
		int64_t runtime_h = (left + hour - 1) / hour;
		if (runtime_h > DEMO_LIVE_MAX_RUNTIME_H)
			runtime_h = DEMO_LIVE_MAX_RUNTIME_H;
		if (committed + job_cost(d, type, gpus, runtime_h * HOUR) > budget)
			runtime_h--;
		/* Approved up to two days ago (never before the period, never
		 * longer ago than its runtime: it is still running). */
		int64_t ago = lcg_range(&d->g, 2 * HOUR, 48 * HOUR);
		if (ago > runtime_h * HOUR / 2)
			ago = runtime_h * HOUR / 2;
		if (ago > window)
			ago = window;
		struct demo_job *j = plan_job(d, team, type, gpus, runtime_h, end - ago);
		if (j == NULL)
			return ERR_NOMEM;
		int64_t delay = lcg_range(&d->g, MINUTE, 10 * MINUTE); /* never after now */
		j->started = j->approved + (delay < d->now - j->approved ? delay : d->now - j->approved);
		committed += job_cost(d, type, gpus, runtime_h * HOUR);
		free_gpus[type] -= gpus;
		n++;
	}
	/* With more than one, the newest waits for its pods: approved minutes
	 * ago, not started. */
	if (n > 1) {
		struct demo_job *j = &d->jobs[d->njobs - 1];
		int64_t ago = lcg_range(&d->g, 5 * MINUTE, 40 * MINUTE);
		j->approved = end - (ago < window ? ago : window);
		j->started = 0;
	}
	if (target - committed > budget / 50) {
		set_detail(d->detail, "seed demo: team %s: capacity too small for its live jobs", t->id);
		return ERR_INVALID;
	}
	return 0;
}

/* The whole plan: every team's periods over the history, then its live jobs. */
static int plan(struct demo_ctx *d)
{
	int64_t from = d->now - DEMO_HISTORY, free_gpus[NTYPES];
	int64_t cur_spent[NTEAMS], cur_ps[NTEAMS];

	for (size_t k = 0; k < NTYPES; k++)
		free_gpus[k] = demo_capacity[k].capacity - lanes_hold((int)k);
	for (size_t i = 0; i < NTEAMS; i++) {
		const struct demo_team *t = &demo_teams[i];
		int64_t budget = t->budget_units * MONEY_MICROS_PER_UNIT;
		int64_t ps = 0, pe = 0;
		period_bounds(t->period, from, &ps, &pe);
		for (;;) {
			int64_t ws = ps > from ? ps : from;
			bool current = pe > d->now;
			/* The current period leaves a tenth of its share to live jobs;
			 * a past one used 55-90 % (a partial first one, pro rata). */
			int64_t ppm = current ? t->target_ppm * 9 / 10 : lcg_range(&d->g, 550000, 900000);
			int64_t we = current ? d->now - 15 * MINUTE : pe;
			int64_t target = (int64_t)((__int128)budget * ppm / 1000000 * (pe - ws) / (pe - ps));
			int64_t spent = plan_finished(d, (int)i, ws, we, target);
			if (spent < 0)
				return ERR_NOMEM;
			if (current) {
				cur_spent[i] = spent;
				cur_ps[i] = ps;
				break;
			}
			period_bounds(t->period, pe, &ps, &pe);
		}
	}
	for (size_t i = 0; i < NTEAMS; i++) {
		int rc = plan_live(d, (int)i, cur_ps[i], cur_spent[i], free_gpus);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- writing the plan through the store -------------------------------- */

/*
 * The alerter's record of each threshold a team crosses (alerter.c records
 * one per webhook URL when spent + reserved reaches it; this demo's receiver
 * is a chat webhook that took it at once).  committed is tracked here from
 * the same numbers the store moves.
 */
static int demo_alerts(struct demo_ctx *d, int team, int64_t ps, int64_t at)
{
	const struct demo_team *t = &demo_teams[team];
	int64_t budget = t->budget_units * MONEY_MICROS_PER_UNIT;
	static const char *const urls[] = {DEMO_ALERT_URL};

	for (int k = 0; k < DEMO_MAX_THRESHOLDS && t->thresholds_ppm[k] != 0; k++) {
		if (d->alerted[team][k] ||
		    (__int128)d->committed[team] * 1000000 < (__int128)t->thresholds_ppm[k] * budget)
			continue;
		struct alert a;
		int created = 0;
		memset(&a, 0, sizeof(a));
		(void)snprintf(a.team, sizeof(a.team), "%s", t->id);
		(void)snprintf(a.url, sizeof(a.url), "%s", DEMO_ALERT_URL);
		a.period_start = ps;
		a.threshold_ppm = t->thresholds_ppm[k];
		a.budget = budget;
		a.committed = d->committed[team];
		int rc = d->ops->alert_record(d->c, &a, urls, 1, at, &created);
		if (rc == 0)
			rc = d->ops->alert_done(d->c, &a, true, 0, NULL, at + 2);
		if (rc != 0) {
			set_detail(d->detail, "seed demo: alert for %s: %s", t->id, err_name(rc));
			return rc;
		}
		d->alerted[team][k] = true;
	}
	return 0;
}

static const struct actor *job_actor(const struct demo_ctx *d, const struct demo_job *j)
{
	return j->team == DEMO_MEMBER_TEAM ? &d->member : &d->system;
}

static int demo_approve(struct demo_ctx *d, struct demo_job *j)
{
	const struct demo_team *t = &demo_teams[j->team];
	struct alloc_request req;
	struct alloc_outcome o;
	struct idem idem;
	char sub[STORE_DETAIL_LEN] = "";
	char avail[MONEY_FMT_LEN] = "?";

	memset(&req, 0, sizeof(req));
	memset(&o, 0, sizeof(o));
	memset(&idem, 0, sizeof(idem)); /* no Idempotency-Key */
	(void)snprintf(req.team, sizeof(req.team), "%s", t->id);
	(void)snprintf(req.project, sizeof(req.project), "%s", j->project);
	(void)snprintf(req.gpu_type, sizeof(req.gpu_type), "%s", demo_capacity[j->type].id);
	req.gpu_count = j->gpus;
	req.max_runtime_us = j->runtime_h * USEC_PER_HOUR;
	(void)snprintf(req.purpose, sizeof(req.purpose), "job %s/%s: %s", t->id, j->run, j->project);
	(void)snprintf(req.labels_json, sizeof(req.labels_json),
		       "{\"demo\":\"true\",\"mlflow-run\":\"%s\"}", j->run);

	int rc = d->ops->allocate(d->c, job_actor(d, j), &req, DEMO_START_TIMEOUT_S, j->approved,
				  &idem, &o, sub);
	if (rc != 0) {
		(void)money_format(o.available, avail, sizeof(avail));
		set_detail(d->detail,
			   "seed demo: allocation for %s (%" PRId64 " x %s, %" PRId64
			   " h) refused: %s (available %s, gpus free %" PRId64 ") %s",
			   t->id, j->gpus, req.gpu_type, j->runtime_h, err_name(rc), avail,
			   o.gpus_available, sub);
		return rc;
	}
	(void)snprintf(j->id, sizeof(j->id), "%s", o.alloc.id);
	if (d->alert_period[j->team] != o.alloc.period_start) {
		d->alert_period[j->team] = o.alloc.period_start;
		d->committed[j->team] = 0;
		memset(d->alerted[j->team], 0, sizeof(d->alerted[j->team]));
	}
	d->committed[j->team] += o.alloc.estimated_micros;
	return demo_alerts(d, j->team, o.alloc.period_start, j->approved);
}

static int demo_transition(struct demo_ctx *d, struct demo_job *j, enum alloc_event ev, int64_t at)
{
	struct allocation a;
	bool repeat = false;
	char sub[STORE_DETAIL_LEN] = "";
	int rc = d->ops->alloc_transition(d->c, job_actor(d, j), j->id, ev, at, at, &a, &repeat, sub);
	if (rc != 0) {
		set_detail(d->detail, "seed demo: %s of %s failed: %s %s", alloc_event_name(ev), j->id,
			   err_name(rc), sub);
		return rc;
	}
	if (ev == ALLOC_EV_COMPLETE && d->alert_period[j->team] == a.period_start)
		d->committed[j->team] += a.actual_micros - a.estimated_micros;
	return 0;
}

static int event_cmp(const void *pa, const void *pb)
{
	const struct demo_event *a = pa, *b = pb;
	if (a->at != b->at)
		return a->at < b->at ? -1 : 1;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return a->job < b->job ? -1 : a->job > b->job;
}

/* Applies the plan in time order, as it would have happened. */
static int demo_apply(struct demo_ctx *d)
{
	struct demo_event *ev = calloc((size_t)d->njobs * 3, sizeof(*ev)); /* owned here */
	int n = 0, rc = 0;

	if (ev == NULL) {
		set_detail(d->detail, "seed demo: out of memory");
		return ERR_NOMEM;
	}
	for (int i = 0; i < d->njobs; i++) {
		const struct demo_job *j = &d->jobs[i];
		ev[n++] = (struct demo_event){j->approved, EV_APPROVE, i};
		if (j->started != 0)
			ev[n++] = (struct demo_event){j->started, EV_START, i};
		if (j->ended != 0)
			ev[n++] = (struct demo_event){j->ended, EV_COMPLETE, i};
	}
	qsort(ev, (size_t)n, sizeof(*ev), event_cmp);
	for (int i = 0; i < n && rc == 0; i++) {
		struct demo_job *j = &d->jobs[ev[i].job];
		switch (ev[i].kind) {
		case EV_APPROVE: rc = demo_approve(d, j); break;
		case EV_START: rc = demo_transition(d, j, ALLOC_EV_START, ev[i].at); break;
		case EV_COMPLETE: rc = demo_transition(d, j, ALLOC_EV_COMPLETE, ev[i].at); break;
		}
	}
	free(ev);
	return rc;
}

/*
 * The data scientist asks for more than forecasting has left, minutes ago:
 * a real refusal by the ledger, so the audit log and the dashboard show one.
 */
static int demo_refusal(struct demo_ctx *d)
{
	const struct demo_team *t = &demo_teams[DEMO_MEMBER_TEAM];
	int type = type_index(t->types[0]);
	struct team_ledger l;
	struct team team;
	struct alloc_request req;
	struct alloc_outcome o;
	struct idem idem;
	char sub[STORE_DETAIL_LEN] = "";
	int64_t at = d->now - 5 * MINUTE, ps = 0, pe = 0;

	period_bounds(t->period, d->now, &ps, &pe);
	if (at < ps) /* in the period it is refused for */
		at = ps;
	int rc = d->ops->team_get(d->c, t->id, &team);
	if (rc == 0)
		rc = d->ops->team_ledger(d->c, &team, at, &l);
	if (rc != 0) {
		set_detail(d->detail, "seed demo: ledger of %s: %s", t->id, err_name(rc));
		return rc;
	}
	int64_t left = team.budget_micros - l.spent - l.reserved, gpus = 8;
	/* A day more than what would fit. */
	int64_t runtime_h = left / job_cost(d, type, gpus, HOUR) + 24;
	memset(&req, 0, sizeof(req));
	memset(&o, 0, sizeof(o));
	memset(&idem, 0, sizeof(idem));
	(void)snprintf(req.team, sizeof(req.team), "%s", t->id);
	(void)snprintf(req.project, sizeof(req.project), "%s", t->projects[0]);
	(void)snprintf(req.gpu_type, sizeof(req.gpu_type), "%s", t->types[0]);
	req.gpu_count = gpus;
	req.max_runtime_us = runtime_h * USEC_PER_HOUR;
	(void)snprintf(req.purpose, sizeof(req.purpose), "job %s/eager-walrus-512: %s", t->id,
		       t->projects[0]);
	(void)snprintf(req.labels_json, sizeof(req.labels_json),
		       "{\"demo\":\"true\",\"mlflow-run\":\"eager-walrus-512\"}");
	rc = d->ops->allocate(d->c, &d->member, &req, DEMO_START_TIMEOUT_S, at, &idem, &o, sub);
	if (rc == ERR_BUDGET)
		return 0;
	set_detail(d->detail, "seed demo: the over-budget request of %s was not refused: %s %s", t->id,
		   rc == 0 ? "approved" : err_name(rc), sub);
	return rc == 0 ? ERR_INVALID : rc;
}

/* ---- catalog, teams, people -------------------------------------------- */

static int demo_types(struct demo_ctx *d, int64_t at)
{
	for (size_t i = 0; i < NTYPES; i++) {
		struct gpu_type *g = &d->types[i];
		bool created = false;
		/* Keep the seeded price, name and source; only the capacity is demo data. */
		int rc = d->ops->gpu_type_get(d->c, demo_capacity[i].id, g);
		if (rc != 0) {
			set_detail(d->detail, "seed demo: gpu type %s: %s (catalog not seeded?)",
				   demo_capacity[i].id, err_name(rc));
			return rc;
		}
		g->capacity = demo_capacity[i].capacity;
		rc = d->ops->gpu_type_put(d->c, &d->system, g, at, &created);
		if (rc != 0) {
			set_detail(d->detail, "seed demo: capacity of %s: %s", g->id, err_name(rc));
			return rc;
		}
	}
	return 0;
}

/* "[0.75,0.9,1]" from parts per million. */
static void thresholds_json(const int64_t *ppm, char *out, size_t len)
{
	size_t n = 0;
	out[n++] = '[';
	for (int k = 0; k < DEMO_MAX_THRESHOLDS && ppm[k] != 0; k++) {
		char frac[8];
		(void)snprintf(frac, sizeof(frac), "%06" PRId64, ppm[k] % 1000000);
		for (int e = 5; e >= 0 && frac[e] == '0'; e--)
			frac[e] = '\0';
		n += (size_t)snprintf(out + n, len - n, "%s%" PRId64 "%s%s", k ? "," : "",
				      ppm[k] / 1000000, frac[0] ? "." : "", frac);
	}
	(void)snprintf(out + n, len - n, "]");
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
		t.period = demo_teams[i].period;
		thresholds_json(demo_teams[i].thresholds_ppm, t.thresholds_json,
				sizeof(t.thresholds_json));
		(void)snprintf(t.admins_json, sizeof(t.admins_json), "%s", demo_teams[i].admins_json);
		t.created_at = at;
		t.updated_at = at;
		int rc = d->ops->team_put(d->c, &d->system, &t, at, &created);
		if (rc != 0) {
			set_detail(d->detail, "seed demo: team %s: %s", t.id, err_name(rc));
			return rc;
		}
	}
	return 0;
}

/* A token for one person; its secret goes to the caller, never to the store. */
static int demo_person(struct demo_ctx *d, const char *name, enum role role, const char *teams_json,
		       int64_t at, struct seed_person *out, struct actor *as)
{
	char hash[STORE_HASH_LEN];
	struct token t;
	memset(&t, 0, sizeof(t));
	int rc = util_random_secret(out->secret, sizeof(out->secret));
	if (rc == 0)
		rc = util_sha256_hex(out->secret, strlen(out->secret), hash);
	if (rc == 0)
		rc = util_random_id("tok_", 16, t.id, sizeof(t.id));
	if (rc == 0) {
		(void)snprintf(t.name, sizeof(t.name), "%s", name);
		(void)snprintf(out->name, sizeof(out->name), "%s", name);
		out->role = role;
		t.role = role;
		(void)snprintf(t.teams_json, sizeof(t.teams_json), "%s", teams_json);
		t.created_at = at;
		rc = d->ops->token_create(d->c, &d->system, &t, hash, at);
	}
	if (rc != 0) {
		set_detail(d->detail, "seed demo: token for %s: %s", name, err_name(rc));
		return rc;
	}
	if (as != NULL) {
		(void)snprintf(as->token_id, sizeof(as->token_id), "%s", t.id);
		(void)snprintf(as->name, sizeof(as->name), "%s", t.name);
		as->role = role;
	}
	return 0;
}

static int count_team(void *ctx, const struct team *t)
{
	(void)t;
	(*(int *)ctx)++;
	return 1; /* one is enough */
}

int seed_demo(struct store_conn *c, int64_t now, struct seed_people *people, char *detail)
{
	struct demo_ctx *d = calloc(1, sizeof(*d)); /* owned here: large */
	int rc, teams = 0;
	bool relaxed = false;

	memset(people, 0, sizeof(*people));
	if (d == NULL) {
		set_detail(detail, "seed demo: out of memory");
		return ERR_NOMEM;
	}
	d->c = c;
	d->ops = store_conn_ops(c);
	d->detail = detail;
	d->now = now;
	d->g.state = UINT64_C(0x706c696e7468); /* "plinth": fixed, so the demo is reproducible */
	(void)snprintf(d->system.token_id, sizeof(d->system.token_id), "system");
	(void)snprintf(d->system.name, sizeof(d->system.name), "demo seed");
	d->system.role = ROLE_ADMIN;

	/* Only into an empty organisation: a no-op on every later start. */
	rc = d->ops->team_list(c, NULL, 0, count_team, &teams);
	if (rc != 0) {
		set_detail(detail, "seed demo: listing teams: %s", err_name(rc));
		goto out;
	}
	if (teams > 0)
		goto out;

	/* Thousands of small transactions: they need not wait for the disk one
	 * by one; the last commit below, durable again, flushes them all. */
	rc = store_conn_durable(c, false);
	if (rc != 0) {
		set_detail(detail, "seed demo: relaxing durability: %s", err_name(rc));
		goto out;
	}
	relaxed = true;
	/* The organisation exists from just before its history begins. */
	int64_t setup_at = now - DEMO_HISTORY - DAY;
	char member_teams[STORE_ID_LEN + 8];
	(void)snprintf(member_teams, sizeof(member_teams), "[\"%s\"]",
		       demo_teams[DEMO_MEMBER_TEAM].id);
	rc = demo_types(d, setup_at);
	if (rc == 0)
		rc = demo_teams_put(d, setup_at);
	if (rc == 0)
		rc = demo_person(d, SEED_MEMBER_NAME, ROLE_MEMBER, member_teams, setup_at,
				 &people->member, &d->member);
	if (rc == 0)
		rc = demo_person(d, SEED_FINANCE_NAME, ROLE_FINANCE, "[]", setup_at,
				 &people->finance, NULL);
	if (rc == 0)
		rc = plan(d);
	if (rc == 0)
		rc = demo_apply(d);
	if (relaxed) {
		int drc = store_conn_durable(c, true);
		if (rc == 0 && drc != 0) {
			set_detail(detail, "seed demo: restoring durability: %s", err_name(drc));
			rc = drc;
		}
	}
	/* Last, durable: the refusal's commit flushes everything before it. */
	if (rc == 0)
		rc = demo_refusal(d);
	if (rc == 0)
		people->seeded = true;
out:
	free(d->jobs);
	free(d);
	return rc;
}
