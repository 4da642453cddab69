/*
 * api.h - the resource handlers (one file per resource) and the JSON
 * renderers they share.  Handlers run after authentication and the role check
 * of the route table (routes.c); they validate the whole request before changing
 * anything, call the store, and reply.
 */
#ifndef PLINTH_API_H
#define PLINTH_API_H

#include <jansson.h>

#include "http/http.h"

/* routes.c: every endpoint, its handler and its roles; the daemon puts it in
 * app->routes. */
extern const struct http_routes api_routes;
/* The admission webhook's TLS listener: the review alone, without a token. */
extern const struct http_routes api_webhook_routes;

void api_healthz(struct req *r);
void api_readyz(struct req *r);
void api_openapi(struct req *r);

void api_gpu_types_list(struct req *r);
void api_gpu_type_get(struct req *r);
void api_gpu_type_put(struct req *r);
void api_gpu_type_patch(struct req *r);
void api_gpu_type_retire(struct req *r);

void api_teams_list(struct req *r);
void api_team_get(struct req *r);
void api_team_put(struct req *r);
void api_team_patch(struct req *r);
void api_team_retire(struct req *r);
/* 409 "retired" (a retired team or GPU type; field names what is retired). */
void reply_retired(struct req *r, const char *field, const char *detail);

void api_tokens_list(struct req *r);
void api_token_create(struct req *r);
void api_token_delete(struct req *r);

void api_audit_list(struct req *r);
void api_quote(struct req *r);

void api_allocations_list(struct req *r);
void api_allocation_get(struct req *r);
void api_allocation_create(struct req *r);
void api_allocation_start(struct req *r);
void api_allocation_complete(struct req *r);
void api_allocation_cancel(struct req *r);

void api_costs(struct req *r);
void api_costs_export(struct req *r); /* api_export.c */
void api_cost_periods(struct req *r); /* api_periods.c: budget versus actual */
void api_metrics(struct req *r);      /* api_metrics.c */
/* api_web.c: the dashboard */
void api_web_index(struct req *r);
void api_web_app_js(struct req *r);
void api_web_style_css(struct req *r);
void api_web_chart_js(struct req *r);

void api_job_create(struct req *r); /* api_jobs.c: the self-service flow */
void api_job_get(struct req *r);
void api_jobs_list(struct req *r);
void api_admission_review(struct req *r); /* api_admission.c: the Kubernetes webhook */

/* --- api_teams.c: teams read whole before each is rendered ----------------- */

/* A growable array of teams; the holder frees items. */
struct team_list {
	struct team *items;
	size_t n, cap;
};
/* A store_team_cb that appends to a struct team_list (ctx). */
int team_list_add(void *ctx, const struct team *t);

/* --- render.c: records to JSON (new references) ----------------------------- */
json_t *render_money(int64_t micros);
/* A 128-bit sum of micros (cost totals) as an exact decimal string. */
json_t *render_money_sum(store_sum_t micros);
json_t *render_time(int64_t t);         /* null for 0 */
json_t *render_hours(int64_t us);       /* a duration as a number of hours */
json_t *render_gpu_type(const struct gpu_type *g, const char *currency);
/* A duration as a decimal number of hours, rounded down to micro-hours ("9.5"). */
void render_hours_text(int64_t us, char *buf, size_t len);
/* Adds a refusal's suggestion members (API.md, "Refusals") to v: 0 or -1. */
int render_suggest(json_t *v, const struct alloc_suggest *s);
/*
 * A refusal's problem detail, for a person: money to the cent, half-up
 * ("estimated cost 640.82 USD exceeds the 393.44 USD available"; capacity:
 * "8 GPUs requested, 2 free").  The members beside it keep the exact amounts.
 */
void render_refusal_detail(bool budget, int64_t estimated, int64_t available, int64_t gpu_count,
			   int64_t gpus_available, const char *currency, char *buf, size_t len);
/* The valid GPU type ids as a sentence part ("a100-40gb, h100-80gb"). */
void render_valid_types_text(const struct alloc_suggest *s, char *buf, size_t len);
/* recent_used: cost incurred over the window_s seconds before now (the
 * forecast's burn rate). */
/* A team's own settings as GET /v1/teams/{id} shows them (id, display_name,
 * budget {amount, period}, alert_thresholds, currency), without the ledger. */
json_t *render_team_settings(const struct team *t, const char *currency);
json_t *render_team(const struct team *t, const struct team_ledger *l, int64_t now,
		    const char *currency, int64_t recent_used, int64_t window_s);
json_t *render_allocation(const struct allocation *a, int64_t now);
/*
 * The label POST /v1/jobs puts on its allocation (the job id); only that
 * flow may set it.  Such an allocation is managed by plinth controller:
 * its usage (start, complete) comes from the cluster, not from members.
 */
#define ALLOC_JOB_LABEL "plinth.io/job"
/* "controller" for an allocation of a job, NULL for a manual one. */
const char *render_alloc_managed_by(const struct allocation *a);
/* The same allocation as compact JSON text (caller frees; *len if len). */
char *render_allocation_text(const struct allocation *a, int64_t now, size_t *len);
json_t *render_token(const struct token *t); /* with status: active | revoked */
/* A job as GET /v1/jobs/{id} shows it (state, the outcome once decided). */
json_t *render_job(const struct job *j);
/* A JSON text stored by the store ("[...]" / "{...}") back to JSON; null on error. */
json_t *render_json_text(const char *text);

/* --- api_allocations.c: shared by quotes and allocations ------------------- */

/*
 * Parses and validates an allocation (or quote, with for_quote set) request
 * body, including the team scope of the caller.  A quote also checks the
 * team and GPU type exist and fills *team and *gpu; an allocation leaves that
 * to the store's batch (pass NULL).  Replies (400/403/415/422) and returns -1
 * on failure; 0 with *out filled on success.
 */
/* The catalog's suggestion lists (store_suggest_types) read now: 0 or an error. */
int alloc_catalog_suggest(struct req *r, bool free_only, struct alloc_suggest *s);
/* An unknown gpu_type's field error naming the valid ids of s, and *extra
 * (replaced) the valid_gpu_types member: 0 or ERR_NOMEM. */
int alloc_unknown_gpu_type(json_t *errors, const char *gpu_id, const struct alloc_suggest *s,
			   json_t **extra);
int alloc_request_parse(struct req *r, bool for_quote, struct alloc_request *out, struct team *team,
			struct gpu_type *gpu);

#endif
