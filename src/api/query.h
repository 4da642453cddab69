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

/*
 * The Idempotency-Key header: 0 and *out (NULL when absent) when it is 1 to
 * 255 printable ASCII characters; otherwise replies 422 and returns -1.
 */
int query_idempotency_key(struct req *r, const char **out);

/* What an Idempotency-Key is bound to: SHA-256 hex of method, path and body
 * into out (STORE_HASH_LEN bytes).  0 or an enum err. */
int query_request_hash(struct req *r, char *out);

#endif
