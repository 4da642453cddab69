/*
 * query.c - query-string parameters shared by list endpoints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/query.h"
#include "core/timeutil.h"
#include "http/jsonv.h"

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
