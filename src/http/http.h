/*
 * http.h - the request context shared by the server glue, the router, auth,
 * validation and the API handlers: what the HTTP layer gives a handler (the
 * request, its headers and query, the response helpers) and the shape of the
 * route table the API layer gives the server.  Nothing here names the API:
 * http/ includes nothing from src/api/.
 *
 * One struct req lives for one HTTP request: allocated by server.c when the
 * request starts, freed (with everything it owns) when the response has been
 * sent.  Handlers never free it; they set a response with one of the
 * reply_*() functions.
 */
#ifndef PLINTH_HTTP_H
#define PLINTH_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

#define HTTP_MAX_BODY (1024 * 1024) /* bodies over 1 MiB are refused with 413 */
#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_PARAMS 3
#define HTTP_MAX_TOKEN_TEAMS 32
#define HTTP_MAX_ERRORS 50      /* a 422 lists at most this many errors */
#define HTTP_DB_WAIT_MS 3000    /* default deadline for a database connection */
#define HTTP_READY_WAIT_MS 1000 /* /readyz's own, shorter deadline */
#define HTTP_PROBLEM_BASE "https://plinth.io/problems/"
/* Compact JSON; reals (thresholds, hours, latencies) with 15 significant
 * digits so 0.8 prints as 0.8, not 0.80000000000000004. */
#define HTTP_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

struct req;

/* --- the route table (filled by the API layer: api/routes.c) -------------- */

/* A route's roles: HTTP_ROLE(ROLE_ADMIN) | ...; HTTP_ROLES_PUBLIC needs no token. */
#define HTTP_ROLE(role) (1u << (role))
#define HTTP_ROLES_PUBLIC 0u

struct http_route {
	const char *method;           /* "GET" also answers HEAD */
	const char *pattern;          /* a path; "{}" captures one segment into r->params */
	void (*handler)(struct req *r);
	unsigned roles;               /* who may call it (HTTP_ROLE bits) */
};

/* A route table: the first route whose pattern and method match wins. */
struct http_routes {
	const struct http_route *items;
	size_t n;
};

/* Daemon-wide settings and shared state; owned by cmd_serve. */
struct app {
	const struct http_routes *routes; /* what the server dispatches to (api_routes) */
	struct store *store;
	int64_t start_timeout_s;   /* approved but not started -> expired after this */
	int64_t max_runtime_hours; /* upper bound for max_runtime_hours */
	const char *currency;      /* "USD" */
	struct integrations *integrations; /* MLflow + GitOps for /v1/jobs; NULL = off */
	long db_wait_ms;           /* deadline for a pool connection; 0 = HTTP_DB_WAIT_MS */
};

struct req {
	struct app *app;
	void *conn;             /* struct MHD_Connection *, opaque outside server.c */
	char method[16];
	char path[512];
	char id[32];            /* request id for logs and problem details */
	int64_t now;            /* wall clock at request start, seconds */
	int64_t t0_us;          /* monotonic start, for latency */

	struct buf body;        /* NUL-terminated once anything arrived, owned by the req */

	char params[HTTP_MAX_PARAMS][STORE_ID_LEN * 2]; /* path parameters from the router */
	int nparams;

	bool authed;
	struct token token;     /* the caller's token record (no secret) */
	char client_cert[256];  /* the verified client certificate's subject (RFC 4514) on a TLS
				 * listener with a client CA; "" otherwise.  A longer one ends "..." */
	struct actor actor;
	char teams[HTTP_MAX_TOKEN_TEAMS][STORE_ID_LEN]; /* member's teams */
	size_t nteams;

	const struct http_route *route; /* set by router_admit() */
	struct store_conn *db;  /* acquired lazily by req_db(), held only while the
				 * handler runs: released before the answer is sent */

	/* The response. */
	unsigned status;
	char *resp;             /* malloc'd, owned by the req until sent */
	size_t resp_len;
	const char *ctype;
	char allow[64];         /* Allow header for 405 */
	char disposition[96];   /* Content-Disposition ("" = none), e.g. a download's filename */
	bool www_authenticate;  /* add WWW-Authenticate: Bearer for 401 */
	const char *csp;        /* Content-Security-Policy (static, for the dashboard) */
	bool queued;            /* server.c: the response was handed to MHD */
	bool close_conn;        /* server.c: send Connection: close and close after the response
				 * (an unread body, ambiguous framing) */
	unsigned retry_after_s; /* Retry-After on a 503, 0 = none */
};

/* --- responses (server.c / problem.c) ------------------------------------ */

/* Sets a JSON response; takes ownership of body (a json_t reference). */
void reply_json(struct req *r, unsigned status, json_t *body);
/* Sets a raw response; copies the bytes. */
void reply_raw(struct req *r, unsigned status, const char *ctype, const char *data, size_t len);
/* Takes ownership of a malloc'd buffer. */
void reply_take(struct req *r, unsigned status, const char *ctype, char *data, size_t len);

/*
 * A problem+json response.  name: the problem type's last segment
 * ("validation-error"); detail: one line, may be NULL.  extra: extra members
 * merged in (reference stolen), may be NULL.
 */
void reply_problem(struct req *r, unsigned status, const char *name, const char *title,
		   const char *detail, json_t *extra);
/* Maps an enum err to its status, name and title in one table, then replies. */
void reply_err(struct req *r, int err, const char *detail);
/* 422 with errors[] (reference stolen). */
void reply_invalid(struct req *r, json_t *errors);
/* The same with more extension members (consumed; may be NULL). */
void reply_invalid_extra(struct req *r, json_t *errors, json_t *more_members);

/* --- request helpers (server.c) ------------------------------------------ */

/* A query-string argument or NULL. */
const char *req_query(struct req *r, const char *key);
/* A request header or NULL (case-insensitive name). */
const char *req_header(struct req *r, const char *name);
/* Frees what the req owns (body, response, database connection), not r. */
void req_release(struct req *r);
/*
 * The database connection for this request, acquired on first use and held
 * until req_db_release() or the end of the request.  Waits at most
 * app->db_wait_ms for a free connection: then ERR_UNAVAILABLE (the caller's
 * reply_err() makes it a 503) and a Retry-After on the answer.
 */
int req_db(struct req *r, struct store_conn **out);
/* req_db with its own deadline in milliseconds. */
int req_db_within(struct req *r, long wait_ms, struct store_conn **out);
/* Returns the request's connection to the pool (no-op without one).  Call it
 * before anything slow that does not use the database (MLflow, git, sending
 * the answer); a later req_db() acquires again. */
void req_db_release(struct req *r);

/*
 * Parses the body as a JSON object.  Replies (400/415/422) and returns -1 on
 * failure; 0 and *out (a new reference the caller owns) on success.  An empty
 * body gives an empty object when allow_empty is set.
 */
int req_json_object(struct req *r, bool allow_empty, json_t **out);

/* --- auth (auth.c) --------------------------------------------------------- */

/* Authenticates the bearer token; replies 401 and returns -1 on failure. */
/* The header a service token names the person it acts for with (auth.c). */
#define AUTH_ON_BEHALF_HEADER "X-Plinth-On-Behalf-Of"
#define AUTH_ON_BEHALF_MAX 100
int auth_authenticate(struct req *r);
/* May this caller act on (or read) the team?  Admin, finance (read) and
 * service: any team; member: its own teams. */
bool auth_team_allowed(const struct req *r, const char *team);
/* For list endpoints: NULL = all teams, else r->teams as a pointer array. */
const char *const *auth_team_scope(struct req *r, const char **buf, size_t *n);

/* --- the request log (reqlog.c); daemon events: util/log.h ---------------- */
/* The request's access line on stderr, and its latency in /metrics. */
void reqlog_write(const struct req *r);

/* --- routing (router.c), over r->app->routes ------------------------------ */
/*
 * Runs once the request line and headers are complete, before any body byte
 * is read: finds the route in r->app->routes and checks the token and the
 * role.  Returns true when the request may go on (r->route set, the database
 * connection given back); false when it has replied (404/405/401/403/503).
 */
bool router_admit(struct req *r);
/* Runs the handler of an admitted request (body complete). */
void router_run(struct req *r);
/* router_admit then router_run (the fuzz harness, which has the body at once). */
void router_dispatch(struct req *r);

#endif
