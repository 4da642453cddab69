/*
 * alerter.c - budget threshold alerts to webhooks (see alerter.h).
 *
 * The decision "has this team crossed this threshold" is integer arithmetic
 * on micros: committed * 1e6 >= threshold_ppm * budget.  Thresholds are
 * stored as JSON reals; they are turned into parts per million once.  It
 * never changes the ledger; it only reads it and writes the alert outbox.
 */
#include "integrations/alerter.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/money.h"
#include "core/timeutil.h"
#include "net/httpc.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/util.h"

#define ALERTER_BATCH 16
#define ALERTER_LEASE_S 60
#define ALERTER_MAX_BACKOFF_S 3600
#define ALERTER_TIMEOUT_MS 5000

struct alerter {
	struct store *store;
	char *urls[ALERTER_MAX_URLS];
	size_t nurls;
	long interval;
	const char *currency;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

struct team_vec {
	struct team *v;
	size_t n, cap;
};

static int team_push(void *ctx, const struct team *t)
{
	struct team_vec *tv = ctx;
	if (tv->n == tv->cap) {
		size_t cap = tv->cap ? tv->cap * 2 : 16;
		struct team *nv = realloc(tv->v, cap * sizeof(*nv));
		if (nv == NULL)
			return ERR_NOMEM;
		tv->v = nv;
		tv->cap = cap;
	}
	tv->v[tv->n++] = *t;
	return 0;
}

/* Records every crossed threshold of every team; returns 0 or an error. */
static int alerter_scan(struct alerter *al, struct store_conn *c, int64_t now)
{
	const struct store_ops *ops = store_conn_ops(c);
	struct team_vec tv = {NULL, 0, 0};
	int rc = ops->team_list(c, NULL, 0, team_push, &tv);

	for (size_t i = 0; rc == 0 && i < tv.n; i++) {
		const struct team *t = &tv.v[i];
		struct team_ledger l;
		json_t *th = NULL;
		size_t k;
		json_t *v;

		if (t->budget_micros <= 0)
			continue;
		rc = ops->team_ledger(c, t, now, &l);
		if (rc != 0)
			break;
		th = json_loads(t->thresholds_json, 0, NULL);
		json_array_foreach(th, k, v) {
			if (!json_is_number(v))
				continue;
			double d = json_number_value(v);
			if (!(d > 0.0) || d > 100.0)
				continue;
			struct alert a;
			memset(&a, 0, sizeof(a));
			a.threshold_ppm = (int64_t)llround(d * 1e6);
			__int128 lhs = (__int128)(l.spent + l.reserved) * 1000000;
			__int128 rhs = (__int128)a.threshold_ppm * t->budget_micros;
			if (lhs < rhs)
				continue;
			snprintf(a.team, sizeof(a.team), "%s", t->id);
			a.period_start = l.period_start;
			a.budget = t->budget_micros;
			a.committed = l.spent + l.reserved;
			int created = 0;
			rc = ops->alert_record(c, &a, (const char *const *)al->urls, al->nurls, now,
					       &created);
			if (rc != 0)
				break;
			if (created > 0)
				log_event("info", "budget threshold crossed",
					  json_pack("{s:s, s:f}", "team", t->id, "threshold", d));
		}
		json_decref(th);
	}
	free(tv.v);
	return rc;
}

/* The webhook body: Slack's `text` plus the numbers for other receivers. */
static char *alert_body(const struct alerter *al, const struct alert *a)
{
	char budget[MONEY_FMT_LEN], committed[MONEY_FMT_LEN], ps[TIME_FMT_LEN], th[32];
	int64_t pct = a->budget > 0 ? (int64_t)((__int128)a->committed * 100 / a->budget) : 0;

	if (money_format(a->budget, budget, sizeof(budget)) < 0 ||
	    money_format(a->committed, committed, sizeof(committed)) < 0)
		return NULL;
	time_format_rfc3339(a->period_start, ps);
	snprintf(th, sizeof(th), "%lld.%06lld", (long long)(a->threshold_ppm / 1000000),
		 (long long)(a->threshold_ppm % 1000000));
	char text[1024];
	if (util_fmt(text, sizeof(text),
		     ":warning: Plinth: team *%s* has committed %lld%% of its budget "
		     "(%s of %s %s spent or reserved; threshold %lld%%) in the period from %s.",
		     a->team, (long long)pct, committed, budget, al->currency,
		     (long long)(a->threshold_ppm / 10000), ps) != 0)
		return NULL;
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "text", text, "team", a->team,
			      "threshold", th, "period_start", ps, "budget", budget, "committed",
			      committed, "currency", al->currency);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

static int64_t backoff_s(const struct alerter *al, int64_t attempts)
{
	int64_t b = al->interval > 0 ? al->interval : 1;
	for (int64_t i = 0; i < attempts && b < ALERTER_MAX_BACKOFF_S; i++)
		b *= 2;
	return b < ALERTER_MAX_BACKOFF_S ? b : ALERTER_MAX_BACKOFF_S;
}

static int alerter_deliver(struct alerter *al, struct store_conn *c, int64_t now)
{
	const struct store_ops *ops = store_conn_ops(c);
	struct alert batch[ALERTER_BATCH];
	int n = 0;
	int rc = ops->alert_claim(c, now, ALERTER_LEASE_S, batch, ALERTER_BATCH, &n);

	for (int i = 0; rc == 0 && i < n; i++) {
		const struct alert *a = &batch[i];
		static const char *const headers[] = {"Content-Type: application/json", NULL};
		struct httpc_response resp = {0};
		char detail[HTTPC_DETAIL_LEN] = "";
		char *body = alert_body(al, a);
		bool ok = false;

		if (body == NULL) {
			snprintf(detail, sizeof(detail), "cannot render the alert");
		} else if (httpc_request("POST", a->url, headers, body, strlen(body),
					 ALERTER_TIMEOUT_MS, 64 * 1024, &resp, detail) == 0) {
			ok = resp.status >= 200 && resp.status < 300;
			if (!ok)
				snprintf(detail, sizeof(detail), "the webhook answered %ld", resp.status);
		}
		httpc_response_done(&resp);
		free(body);
		metrics_alert_count(ok);
		int64_t next = util_now() + backoff_s(al, a->attempts);
		rc = ops->alert_done(c, a, ok, next, ok ? "" : detail, util_now());
		if (!ok)
			log_event("warn", "alert delivery failed",
				  json_pack("{s:s, s:s, s:I}", "team", a->team, "error", detail,
					    "attempts", (json_int_t)(a->attempts + 1)));
	}
	return rc;
}

static void *alerter_main(void *arg)
{
	struct alerter *al = arg;

	pthread_mutex_lock(&al->mu);
	while (!al->stop) {
		pthread_mutex_unlock(&al->mu);
		struct store_conn *c = NULL;
		int rc = store_conn_acquire(al->store, &c);
		if (rc == 0) {
			rc = alerter_scan(al, c, util_now());
			int rc2 = alerter_deliver(al, c, util_now());
			if (rc == 0)
				rc = rc2;
			store_conn_release(al->store, c);
		}
		if (rc != 0)
			log_event("error", "alert pass failed", json_pack("{s:s}", "error", err_name(rc)));
		pthread_mutex_lock(&al->mu);
		if (al->stop)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += al->interval;
		pthread_cond_timedwait(&al->cv, &al->mu, &ts);
	}
	pthread_mutex_unlock(&al->mu);
	return NULL;
}

int alerter_start(struct store *store, const char *const *urls, size_t nurls, long interval_s,
		  const char *currency, struct alerter **out)
{
	struct alerter *al = NULL;

	*out = NULL;
	if (nurls == 0)
		return 0;
	if (nurls > ALERTER_MAX_URLS)
		return ERR_INVALID;
	al = calloc(1, sizeof(*al));
	if (al == NULL)
		return ERR_NOMEM;
	al->store = store;
	al->interval = interval_s > 0 ? interval_s : 30;
	al->currency = currency;
	for (size_t i = 0; i < nurls; i++) {
		al->urls[i] = strdup(urls[i]);
		if (al->urls[i] == NULL)
			goto nomem;
		al->nurls++;
	}
	if (pthread_mutex_init(&al->mu, NULL) != 0)
		goto nomem;
	if (pthread_cond_init(&al->cv, NULL) != 0) {
		pthread_mutex_destroy(&al->mu);
		goto nomem;
	}
	if (pthread_create(&al->thread, NULL, alerter_main, al) != 0) {
		pthread_cond_destroy(&al->cv);
		pthread_mutex_destroy(&al->mu);
		for (size_t i = 0; i < al->nurls; i++)
			free(al->urls[i]);
		free(al);
		return ERR_STORE;
	}
	*out = al;
	return 0;
nomem:
	for (size_t i = 0; i < al->nurls; i++)
		free(al->urls[i]);
	free(al);
	return ERR_NOMEM;
}

void alerter_stop(struct alerter *al)
{
	if (al == NULL)
		return;
	pthread_mutex_lock(&al->mu);
	al->stop = true;
	pthread_cond_signal(&al->cv);
	pthread_mutex_unlock(&al->mu);
	pthread_join(al->thread, NULL);
	pthread_cond_destroy(&al->cv);
	pthread_mutex_destroy(&al->mu);
	for (size_t i = 0; i < al->nurls; i++)
		free(al->urls[i]);
	free(al);
}
