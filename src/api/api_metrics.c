/*
 * api_metrics.c - GET /metrics in the Prometheus text format (0.0.4).
 *
 * Like the health checks it needs no token: scrapers rarely carry one, and
 * it reveals aggregate numbers only (budgets and spend per team, GPUs per
 * type), never an allocation, a token or a label.  Deployments that treat
 * team budgets as secret keep /metrics off the public listener (see
 * docs/metrics.md).  Gauges are read from the store at scrape time; the
 * counters and the latency histogram come from util/metrics.c.  It never
 * changes anything.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/err.h"
#include "core/money.h"
#include "integrations/jobclean.h"
#include "util/metrics.h"

struct mbuf {
	char *buf;
	size_t len, cap;
};

/* A label value with \, " and newline escaped (ids are validated, but be exact). */
static void label_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (; *in != '\0' && o + 3 < len; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

/* Money as a plain decimal number of currency units (exact; no float). */
static int money_sample(struct mbuf *b, const char *name, const char *label, const char *value,
			int64_t micros)
{
	char m[MONEY_FMT_LEN];
	if (money_format(micros, m, sizeof(m)) < 0)
		return ERR_INVALID;
	return metrics_appendf(&b->buf, &b->len, &b->cap, "%s{%s=\"%s\"} %s\n", name, label, value, m);
}

struct gpu_pass {
	struct mbuf *b;
	bool allocated; /* this pass renders plinth_gpus_allocated, else capacity */
};

static int gpu_sample(void *ctx, const struct gpu_type *g)
{
	struct gpu_pass *p = ctx;
	char id[STORE_ID_LEN * 2];
	label_escape(g->id, id, sizeof(id));
	return metrics_appendf(&p->b->buf, &p->b->len, &p->b->cap, "%s{gpu_type=\"%s\"} %lld\n",
			       p->allocated ? "plinth_gpus_allocated" : "plinth_gpu_capacity", id,
			       /* a retired type has no capacity left to give */
			       (long long)(p->allocated ? g->allocated : g->retired_at ? 0 : g->capacity));
}

void api_metrics(struct req *r)
{
	struct store_conn *db = NULL;
	struct mbuf b = {NULL, 0, 0};
	struct team_list teams = {NULL, 0, 0};
	struct team_ledger *ledgers = NULL;
	int rc = req_db(r, &db);

	if (rc == 0)
		rc = store_conn_ops(db)->team_list(db, NULL, 0, team_list_add, &teams);
	if (rc == 0 && teams.n > 0) {
		ledgers = calloc(teams.n, sizeof(*ledgers));
		if (ledgers == NULL)
			rc = ERR_NOMEM;
	}
	for (size_t i = 0; rc == 0 && i < teams.n; i++)
		rc = store_conn_ops(db)->team_ledger(db, &teams.items[i], r->now, &ledgers[i]);
	static const char *const names[] = {"plinth_team_budget", "plinth_team_spent",
					    "plinth_team_reserved", "plinth_team_accrued",
					    "plinth_team_available"};
	static const char *const helps[] = {
		"Budget of the team's current period, in the deployment currency.",
		"Spend charged in the team's current period.",
		"Money held by approved and running allocations of the current period.",
		"Cost accrued so far by the team's running allocations.",
		"Budget left: budget - spent - reserved, at least 0."};
	for (size_t k = 0; rc == 0 && k < 5; k++) {
		rc = metrics_appendf(&b.buf, &b.len, &b.cap, "# HELP %s %s\n# TYPE %s gauge\n",
				     names[k], helps[k], names[k]);
		for (size_t i = 0; rc == 0 && i < teams.n; i++) {
			const struct team_ledger *l = &ledgers[i];
			int64_t committed = l->spent + l->reserved;
			int64_t avail = teams.items[i].budget_micros > committed
						? teams.items[i].budget_micros - committed : 0;
			int64_t v[5] = {teams.items[i].budget_micros, l->spent, l->reserved,
					l->accrued, avail};
			char id[STORE_ID_LEN * 2];
			label_escape(teams.items[i].id, id, sizeof(id));
			rc = money_sample(&b, names[k], "team", id, v[k]);
		}
	}
	/* Each family's samples stay together, as the text format wants. */
	for (int pass = 0; rc == 0 && pass < 2; pass++) {
		struct gpu_pass gp = {&b, pass == 1};
		rc = metrics_appendf(&b.buf, &b.len, &b.cap, "%s",
				     pass ? "# HELP plinth_gpus_allocated GPUs held by approved and running allocations.\n"
					    "# TYPE plinth_gpus_allocated gauge\n"
					  : "# HELP plinth_gpu_capacity GPUs of the type in the cluster.\n"
					    "# TYPE plinth_gpu_capacity gauge\n");
		if (rc == 0)
			rc = store_conn_ops(db)->gpu_type_list(db, gpu_sample, &gp);
	}
	if (rc == 0)
		rc = metrics_appendf(&b.buf, &b.len, &b.cap,
				     "# HELP plinth_store_bad_rows_total Database rows that could not be "
				     "read and were skipped (see the log).\n"
				     "# TYPE plinth_store_bad_rows_total counter\n"
				     "plinth_store_bad_rows_total %ld\n", store_bad_rows_total());
	if (rc == 0)
		rc = metrics_appendf(&b.buf, &b.len, &b.cap,
				     "# HELP plinth_gitops_cleanup_failures_total Removals of an ended "
				     "job's manifests from the GitOps repository that failed (retried "
				     "by the sweeper; see the log).\n"
				     "# TYPE plinth_gitops_cleanup_failures_total counter\n"
				     "plinth_gitops_cleanup_failures_total %ld\n",
				     jobclean_failures_total());
	if (rc == 0)
		rc = metrics_render(&b.buf, &b.len, &b.cap);
	free(ledgers);
	free(teams.items);
	if (rc != 0) {
		free(b.buf);
		reply_err(r, rc, "cannot render metrics");
		return;
	}
	reply_take(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.buf, b.len);
}
