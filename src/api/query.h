/* query.h - query-string parameters shared by list endpoints. */
#ifndef PLINTH_QUERY_H
#define PLINTH_QUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/http.h"

#define QUERY_DEFAULT_LIMIT 50

/* ?limit= 1..STORE_MAX_PAGE, default 50; a bad value adds to errors. */
int query_limit(struct req *r, json_t *errors);
/* ?cursor= or NULL. */
const char *query_cursor(struct req *r, json_t *errors);
/* ?name= as RFC 3339 or YYYY-MM-DD: 1 and *out when present, 0 absent, -1 bad. */
int query_time(struct req *r, const char *name, int64_t *out, json_t *errors);
/* ?include_retired=true|false (default false) into *out: lists show retired
 * teams and GPU types too.  Another value: replies 422 and returns -1. */
int query_include_retired(struct req *r, bool *out);
/* ?team= validated as a label; *out NULL when absent. */
int query_team(struct req *r, json_t *errors, const char **out);

struct cost_query;
/*
 * The range and running-allocation choice shared by GET /v1/costs and its
 * export, so both read a month the same way: ?month=YYYY-MM (that UTC
 * month; not with from/to) or ?from=&to= (default: the current month), and
 * ?include_running=true|false (default true).  Sets q->from, q->to,
 * q->exclude_running; bad values add to errors.  *month is "YYYY-MM" when the
 * range is exactly one UTC month (given either way), else "".
 */
void query_cost_range(struct req *r, struct cost_query *q, char month[8], json_t *errors);

/*
 * The scope of a list request for team (NULL: any): a member asking for
 * another team is answered 403 (returns -1); otherwise *teams and *n are the
 * member's teams (buf: HTTP_MAX_TOKEN_TEAMS slots), NULL for other roles.
 */
int query_team_scope(struct req *r, const char *team, const char **buf,
		     const char *const **teams, size_t *n);

/*
 * Answers a list request: rc 0 gives 200 {items, next_cursor} (items taken,
 * next "" = the last page); ERR_INVALID a 422 on the cursor; another error
 * its problem with detail `what` (items freed).
 */
void query_reply_page(struct req *r, int rc, json_t *items, const char *next, const char *what);

/* A page being listed: the store's callback adds each item with query_page_add. */
struct query_page {
	struct req *r;
	json_t *items;
	bool failed; /* an item could not be rendered or added: the answer is a 500 */
};
/* Adds v (taken; NULL: its rendering failed) to the page: 0, or 1 (stop). */
int query_page_add(struct query_page *pg, json_t *v);
/* ?team=, ?limit= and ?cursor= of a list request; bad values add to errors. */
void query_list_args(struct req *r, json_t *errors, const char **team, int *limit,
		     const char **cursor);
/*
 * Answers a list request, written once for every list of the API: errors
 * (taken) not empty is a 422; with teams (a list a member sees in part) the
 * scope of team is set as query_team_scope does (or 403); then one page is
 * listed with list(db, filter, pg, next) on the request's store connection
 * and answered as query_reply_page does.
 */
struct store_conn;
void query_list_page(struct req *r, json_t *errors, const char *team, const char *const **teams,
		     size_t *nteams,
		     int (*list)(struct store_conn *db, const void *filter, struct query_page *pg,
				 char *next),
		     const void *filter, const char *what);

/*
 * The Idempotency-Key header: 0 and *out (NULL when absent) when it is 1 to
 * 255 printable ASCII characters; otherwise replies 422 and returns -1.
 */
int query_idempotency_key(struct req *r, const char **out);

/* What an Idempotency-Key is bound to: SHA-256 hex of method, path and body
 * into out (STORE_HASH_LEN bytes).  0 or an enum err. */
int query_request_hash(struct req *r, char *out);

#endif
