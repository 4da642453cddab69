/*
 * query.c - query-string parameters shared by list endpoints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/query.h"
#include "core/err.h"
#include "core/period.h"
#include "core/timeutil.h"
#include "http/jsonv.h"
#include "store/store.h"
#include "util/util.h"

int query_limit(struct req *r, json_t *errors)
{
	const char *s = req_query(r, "limit");
	if (s == NULL)
		return QUERY_DEFAULT_LIMIT;
	char *end = NULL;
	long v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || v < 1 || v > STORE_MAX_PAGE) {
		jsonv_error(errors, "limit", "must be an integer from 1 to %d", STORE_MAX_PAGE);
		return QUERY_DEFAULT_LIMIT;
	}
	return (int)v;
}

const char *query_cursor(struct req *r, json_t *errors)
{
	const char *s = req_query(r, "cursor");
	if (s == NULL || *s == '\0')
		return NULL;
	if (strlen(s) >= STORE_ID_LEN * 2) {
		jsonv_error(errors, "cursor", "is not a cursor returned by this API");
		return NULL;
	}
	return s;
}

int query_time(struct req *r, const char *name, int64_t *out, json_t *errors)
{
	const char *s = req_query(r, name);
	if (s == NULL)
		return 0;
	char full[64];
	if (strlen(s) == 10) {
		snprintf(full, sizeof(full), "%sT00:00:00Z", s);
		s = full;
	}
	if (time_parse_rfc3339(s, out) != 0) {
		jsonv_error(errors, name, "must be an RFC 3339 time or a date YYYY-MM-DD");
		return -1;
	}
	return 1;
}

/* "YYYY-MM" with a month 01..12 and a year 1970..9999: 0 and its first instant, or -1. */
static int parse_month(const char *s, int64_t *out)
{
	unsigned y = 0, m = 0;
	int n = 0;

	if (strlen(s) != 7 || sscanf(s, "%4u-%2u%n", &y, &m, &n) != 2 || n != 7 || s[4] != '-' ||
	    y < 1970 || m < 1 || m > 12 || strspn(s, "0123456789-") != 7)
		return -1;
	*out = time_from_civil(y, m, 1);
	return 0;
}

void query_cost_range(struct req *r, struct cost_query *q, char month[8], json_t *errors)
{
	const char *m = req_query(r, "month"), *run = req_query(r, "include_running");
	int64_t s = 0, e = 0;
	char date[16];

	period_bounds(PERIOD_MONTHLY, r->now, &q->from, &q->to);
	if (m != NULL) {
		if (req_query(r, "from") != NULL || req_query(r, "to") != NULL)
			jsonv_error(errors, "month", "give either month or from/to, not both");
		else if (parse_month(m, &q->from) != 0)
			jsonv_error(errors, "month", "must be a month YYYY-MM");
		else
			period_bounds(PERIOD_MONTHLY, q->from, &s, &q->to);
	} else {
		query_time(r, "from", &q->from, errors);
		query_time(r, "to", &q->to, errors);
		if (q->to <= q->from)
			jsonv_error(errors, "to", "must be after from");
	}
	q->exclude_running = false;
	if (run != NULL && strcmp(run, "false") == 0)
		q->exclude_running = true;
	else if (run != NULL && strcmp(run, "true") != 0)
		jsonv_error(errors, "include_running", "must be true or false");
	month[0] = '\0';
	period_bounds(PERIOD_MONTHLY, q->from, &s, &e);
	if (s == q->from && e == q->to) {
		time_format_date(s, date);
		snprintf(month, 8, "%.7s", date);
	}
}

int query_team(struct req *r, json_t *errors, const char **out)
{
	const char *s = req_query(r, "team");
	*out = NULL;
	if (s == NULL)
		return 0;
	if (!jsonv_is_label(s)) {
		jsonv_error(errors, "team", "must be a team id");
		return -1;
	}
	*out = s;
	return 0;
}

int query_team_scope(struct req *r, const char *team, const char **buf,
		     const char *const **teams, size_t *n)
{
	if (team != NULL && !auth_team_allowed(r, team)) {
		reply_err(r, ERR_FORBIDDEN, "this token is not a member of that team");
		return -1;
	}
	*teams = auth_team_scope(r, buf, n);
	return 0;
}

void query_reply_page(struct req *r, int rc, json_t *items, const char *next, const char *what)
{
	if (rc == 0) {
		reply_json(r, 200, json_pack("{s:o, s:s?}", "items", items, "next_cursor",
					     next[0] ? next : NULL));
		return;
	}
	json_decref(items);
	if (rc == ERR_INVALID) {
		json_t *cerr = json_array();
		jsonv_error(cerr, "cursor", "is not a cursor returned by this API");
		reply_invalid(r, cerr);
	} else {
		reply_err(r, rc, what);
	}
}

int query_page_add(struct query_page *pg, json_t *v)
{
	if (v == NULL || json_array_append_new(pg->items, v) != 0) {
		pg->failed = true; /* never a short page that looks whole */
		return 1;
	}
	return 0;
}

void query_list_args(struct req *r, json_t *errors, const char **team, int *limit,
		     const char **cursor)
{
	query_team(r, errors, team);
	*limit = query_limit(r, errors);
	*cursor = query_cursor(r, errors);
}

void query_list_page(struct req *r, json_t *errors, const char *team, const char *const **teams,
		     size_t *nteams,
		     int (*list)(struct store_conn *db, const void *filter, struct query_page *pg,
				 char *next),
		     const void *filter, const char *what)
{
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		return;
	}
	json_decref(errors);
	/* The scope points into buf: it lives as long as the listing. */
	const char *buf[HTTP_MAX_TOKEN_TEAMS];
	if (teams != NULL && query_team_scope(r, team, buf, teams, nteams) != 0)
		return;
	struct store_conn *db;
	char next[STORE_ID_LEN * 2] = "";
	struct query_page pg = {r, json_array(), false};
	int rc = pg.items == NULL ? ERR_NOMEM : req_db(r, &db);
	if (rc == 0)
		rc = list(db, filter, &pg, next);
	query_reply_page(r, rc || !pg.failed ? rc : ERR_NOMEM, pg.items, next, what);
}

#define IDEM_KEY_MAX 255

int query_idempotency_key(struct req *r, const char **out)
{
	const char *k = req_header(r, "Idempotency-Key");
	bool ok = k == NULL || (strlen(k) >= 1 && strlen(k) <= IDEM_KEY_MAX);
	for (size_t i = 0; ok && k != NULL && k[i] != '\0'; i++)
		ok = k[i] >= 0x21 && k[i] <= 0x7e;
	if (!ok) {
		json_t *errors = json_array();
		jsonv_error(errors, "Idempotency-Key", "must be 1 to %d printable ASCII characters",
			    IDEM_KEY_MAX);
		reply_invalid(r, errors);
		return -1;
	}
	*out = k;
	return 0;
}

int query_request_hash(struct req *r, char *out)
{
	size_t n = strlen(r->method) + strlen(r->path) + r->body.len + 2;
	char *buf = malloc(n + 1);
	if (buf == NULL)
		return ERR_NOMEM;
	int len = snprintf(buf, n + 1, "%s %s\n", r->method, r->path);
	if (r->body.len > 0)
		memcpy(buf + len, r->body.p, r->body.len);
	int rc = util_sha256_hex(buf, (size_t)len + r->body.len, out);
	free(buf);
	return rc;
}

int query_include_retired(struct req *r, bool *out)
{
	const char *s = req_query(r, "include_retired");
	json_t *errors;
	*out = s != NULL && strcmp(s, "true") == 0;
	if (s == NULL || *out || strcmp(s, "false") == 0)
		return 0;
	errors = json_array();
	if (errors == NULL) {
		reply_err(r, ERR_NOMEM, NULL);
		return -1;
	}
	jsonv_error(errors, "include_retired", "must be true or false");
	reply_invalid(r, errors);
	return -1;
}
