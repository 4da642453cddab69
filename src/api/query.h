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

/*
 * The Idempotency-Key header: 0 and *out (NULL when absent) when it is 1 to
 * 255 printable ASCII characters; otherwise replies 422 and returns -1.
 */
int query_idempotency_key(struct req *r, const char **out);

/* What an Idempotency-Key is bound to: SHA-256 hex of method, path and body
 * into out (STORE_HASH_LEN bytes).  0 or an enum err. */
int query_request_hash(struct req *r, char *out);

#endif
