/*
 * router.c - the route table (data, not code) and dispatch.
 *
 * A pattern is a path with "{}" segments that capture one path segment each
 * into r->params.  Each route names the roles allowed to call it; handlers
 * then apply team scoping.  Health checks need no token; everything under
 * /v1 does.  Routing, the token and the role are checked as soon as the
 * headers are complete (router_admit), so an unauthenticated or misrouted
 * request is refused before its body is read.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/err.h"
#include "http/http.h"

#define R_ADMIN (1u << ROLE_ADMIN)
#define R_FINANCE (1u << ROLE_FINANCE)
#define R_MEMBER (1u << ROLE_MEMBER)
#define R_SERVICE (1u << ROLE_SERVICE)
#define R_ANY (R_ADMIN | R_FINANCE | R_MEMBER | R_SERVICE)
#define R_ACT (R_ADMIN | R_MEMBER | R_SERVICE) /* may quote, allocate, transition */
#define R_NONE 0u                              /* no token needed */

struct route {
	const char *method;
	const char *pattern;
	void (*handler)(struct req *r);
	unsigned roles;
};

static const struct route routes[] = {
	{"GET", "/healthz", api_healthz, R_NONE},
	{"GET", "/readyz", api_readyz, R_NONE},
	{"GET", "/v1/openapi.json", api_openapi, R_ANY},
	{"GET", "/v1/gpu-types", api_gpu_types_list, R_ANY},
	{"GET", "/v1/gpu-types/{}", api_gpu_type_get, R_ANY},
	{"PUT", "/v1/gpu-types/{}", api_gpu_type_put, R_ADMIN},
	{"GET", "/v1/teams", api_teams_list, R_ANY},
	{"GET", "/v1/teams/{}", api_team_get, R_ANY},
	{"PUT", "/v1/teams/{}", api_team_put, R_ADMIN},
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
	{"GET", "/metrics", api_metrics, R_NONE},
	{"GET", "/", api_web_index, R_NONE},
	{"GET", "/app.js", api_web_app_js, R_NONE},
	{"GET", "/style.css", api_web_style_css, R_NONE},
	{"GET", "/chart.js", api_web_chart_js, R_NONE},
	{"POST", "/v1/jobs", api_job_create, R_ACT},
	{"GET", "/v1/jobs/{}", api_job_get, R_ANY},
	{"POST", "/v1/admission/review", api_admission_review, R_ADMIN | R_SERVICE},
};

/* Matches path against pattern, capturing "{}" segments into r->params. */
static bool match(const char *pattern, const char *path, struct req *r)
{
	int np = 0;
	const char *p = pattern, *s = path;
	while (*p != '\0' && *s != '\0') {
		if (p[0] == '{' && p[1] == '}') {
			const char *end = strchr(s, '/');
			size_t len = end ? (size_t)(end - s) : strlen(s);
			if (len == 0 || len >= sizeof(r->params[0]) || np >= HTTP_MAX_PARAMS)
				return false;
			memcpy(r->params[np], s, len);
			r->params[np][len] = '\0';
			np++;
			s += len;
			p += 2;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	if (*p != '\0' || *s != '\0')
		return false;
	r->nparams = np;
	return true;
}

bool router_admit(struct req *r)
{
	const struct route *found = NULL;
	char allow[64] = "";
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(routes[i].pattern, r->path, r))
			continue;
		if (strcmp(routes[i].method, r->method) == 0 ||
		    (strcmp(r->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			found = &routes[i];
			break;
		}
		size_t len = strlen(allow);
		snprintf(allow + len, sizeof(allow) - len, "%s%s", len ? ", " : "", routes[i].method);
	}
	if (found == NULL) {
		if (allow[0] != '\0') {
			snprintf(r->allow, sizeof(r->allow), "%s", allow);
			reply_problem(r, 405, "method-not-allowed", "Method not allowed", NULL, NULL);
		} else {
			reply_err(r, ERR_NOT_FOUND, "no such endpoint");
		}
		return false;
	}
	if (found->roles != R_NONE) {
		int rc = auth_authenticate(r);
		/* The body has not been read yet and may take long to arrive:
		 * the connection used for the token goes back to the pool. */
		req_db_release(r);
		if (rc != 0)
			return false;
		if ((found->roles & (1u << r->token.role)) == 0) {
			char d[700];
			snprintf(d, sizeof(d), "the %s role may not %s %s", role_name(r->token.role),
				 r->method, r->path);
			reply_err(r, ERR_FORBIDDEN, d);
			return false;
		}
	}
	r->route = found;
	return true;
}

void router_run(struct req *r)
{
	if (r->route == NULL) {
		reply_err(r, ERR_STORE, "the request was not admitted");
		return;
	}
	r->route->handler(r);
}

void router_dispatch(struct req *r)
{
	if (router_admit(r))
		router_run(r);
}
