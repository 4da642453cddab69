/*
 * router.c - dispatch over the route table the daemon gives the server in
 * app->routes (the API's, api/routes.c; http/ never names a handler).
 *
 * A pattern is a path with "{}" segments that capture one path segment each
 * into r->params.  Each route names the roles allowed to call it; handlers
 * then apply team scoping.  Routing, the token and the role are checked as
 * soon as the headers are complete (router_admit), so an unauthenticated or
 * misrouted request is refused before its body is read.
 */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "http/http.h"

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
	const struct http_route *found = NULL;
	const struct http_routes *t = r->app != NULL ? r->app->routes : NULL;
	char allow[64] = "";
	for (size_t i = 0; t != NULL && i < t->n; i++) {
		const struct http_route *rt = &t->items[i];
		if (!match(rt->pattern, r->path, r))
			continue;
		if (strcmp(rt->method, r->method) == 0 ||
		    (strcmp(r->method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)) {
			found = rt;
			break;
		}
		size_t len = strlen(allow);
		snprintf(allow + len, sizeof(allow) - len, "%s%s", len ? ", " : "", rt->method);
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
	if (found->roles != HTTP_ROLES_PUBLIC) {
		int rc = auth_authenticate(r);
		/* The body has not been read yet and may take long to arrive:
		 * the connection used for the token goes back to the pool. */
		req_db_release(r);
		if (rc != 0)
			return false;
		if ((found->roles & HTTP_ROLE(r->token.role)) == 0) {
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
