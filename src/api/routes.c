/*
 * routes.c - the API's route table (data, not code): method, pattern,
 * handler and the roles allowed to call it.  The server reaches it through
 * app->routes and matches it in http/router.c, so the HTTP layer never names
 * a handler.  Handlers then apply team scoping.  Health checks, the metrics
 * and the dashboard need no token; everything else under /v1 does.
 *
 * The admission webhook's TLS listener (--webhook-listen) has its own table
 * with one route, the review, without a token: a managed control plane
 * (EKS, GKE, AKS) sends its webhooks no credentials, and the review only
 * answers allow/deny for the object it is sent (docs/kubernetes.md,
 * "Security").  Every other path there is 404, whatever the token.
 */
#include "api/api.h"

#define R_ADMIN HTTP_ROLE(ROLE_ADMIN)
#define R_FINANCE HTTP_ROLE(ROLE_FINANCE)
#define R_MEMBER HTTP_ROLE(ROLE_MEMBER)
#define R_SERVICE HTTP_ROLE(ROLE_SERVICE)
#define R_ANY (R_ADMIN | R_FINANCE | R_MEMBER | R_SERVICE)
#define R_ACT (R_ADMIN | R_MEMBER | R_SERVICE) /* may quote, allocate, transition */
#define R_NONE HTTP_ROLES_PUBLIC

static const struct http_route routes[] = {
	{"GET", "/healthz", api_healthz, R_NONE},
	{"GET", "/readyz", api_readyz, R_NONE},
	{"GET", "/v1/openapi.json", api_openapi, R_ANY},
	{"GET", "/v1/gpu-types", api_gpu_types_list, R_ANY},
	{"GET", "/v1/gpu-types/{}", api_gpu_type_get, R_ANY},
	{"PUT", "/v1/gpu-types/{}", api_gpu_type_put, R_ADMIN},
	{"PATCH", "/v1/gpu-types/{}", api_gpu_type_patch, R_ADMIN},
	{"POST", "/v1/gpu-types/{}/retire", api_gpu_type_retire, R_ADMIN},
	{"GET", "/v1/teams", api_teams_list, R_ANY},
	{"GET", "/v1/teams/{}", api_team_get, R_ANY},
	{"PUT", "/v1/teams/{}", api_team_put, R_ADMIN},
	{"PATCH", "/v1/teams/{}", api_team_patch, R_ADMIN},
	{"POST", "/v1/teams/{}/retire", api_team_retire, R_ADMIN},
	{"GET", "/v1/tokens", api_tokens_list, R_ADMIN},
	{"POST", "/v1/tokens", api_token_create, R_ADMIN},
	{"DELETE", "/v1/tokens/{}", api_token_delete, R_ADMIN},
	{"GET", "/v1/audit", api_audit_list, R_ADMIN | R_FINANCE},
	{"POST", "/v1/quotes", api_quote, R_ACT},
	{"GET", "/v1/allocations", api_allocations_list, R_ANY},
	{"POST", "/v1/allocations", api_allocation_create, R_ACT},
	{"GET", "/v1/allocations/{}", api_allocation_get, R_ANY},
	{"POST", "/v1/allocations/{}/start", api_allocation_start, R_ACT},
	{"POST", "/v1/allocations/{}/complete", api_allocation_complete, R_ACT},
	{"POST", "/v1/allocations/{}/cancel", api_allocation_cancel, R_ACT},
	{"GET", "/v1/costs", api_costs, R_ANY},
	{"GET", "/v1/costs/export", api_costs_export, R_ANY},
	{"GET", "/v1/costs/periods", api_cost_periods, R_ANY},
	{"GET", "/metrics", api_metrics, R_NONE},
	{"GET", "/", api_web_index, R_NONE},
	{"GET", "/app.js", api_web_app_js, R_NONE},
	{"GET", "/style.css", api_web_style_css, R_NONE},
	{"GET", "/chart.js", api_web_chart_js, R_NONE},
	{"POST", "/v1/jobs", api_job_create, R_ACT},
	{"GET", "/v1/jobs", api_jobs_list, R_ANY},
	{"GET", "/v1/jobs/{}", api_job_get, R_ANY},
	{"POST", "/v1/admission/review", api_admission_review, R_ADMIN | R_SERVICE},
};

const struct http_routes api_routes = {routes, sizeof(routes) / sizeof(routes[0])};

static const struct http_route webhook_routes[] = {
	{"POST", "/v1/admission/review", api_admission_review, R_NONE},
};

const struct http_routes api_webhook_routes = {
	webhook_routes, sizeof(webhook_routes) / sizeof(webhook_routes[0]),
};
