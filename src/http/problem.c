/*
 * problem.c - RFC 9457 problem+json responses, and the one table that maps
 * Plinth's error codes to HTTP statuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "http/http.h"
#include "http/jsonv.h"

struct err_http {
	int err;
	unsigned status;
	const char *name;
	const char *title;
};

static const struct err_http err_table[] = {
	{ERR_NOMEM, 500, "internal", "Out of memory"},
	{ERR_INVALID, 422, "validation-error", "Invalid request"},
	{ERR_NOT_FOUND, 404, "not-found", "Not found"},
	{ERR_CONFLICT, 409, "conflict", "Impossible state transition"},
	{ERR_BUDGET, 409, "budget-exceeded", "Budget exceeded"},
	{ERR_CAPACITY, 409, "capacity-exceeded", "GPU capacity exceeded"},
	{ERR_FORBIDDEN, 403, "forbidden", "Forbidden"},
	{ERR_UNAUTHORIZED, 401, "unauthorized", "Unauthorized"},
	{ERR_IDEMPOTENCY, 422, "idempotency-mismatch",
	 "Idempotency-Key reused with a different request"},
	{ERR_STORE, 500, "internal", "Internal error"},
	{ERR_UNAVAILABLE, 503, "unavailable", "Service unavailable"},
	{ERR_OVERFLOW, 422, "validation-error", "Amount out of range"},
	{ERR_TOO_LARGE, 413, "too-large", "Request too large"},
	{ERR_MALFORMED, 400, "malformed-json", "Malformed JSON"},
};

void reply_problem(struct req *r, unsigned status, const char *name, const char *title,
		   const char *detail, json_t *extra)
{
	char type[128], d[JSONV_MSG_LEN + 256];
	snprintf(type, sizeof(type), "%s%s", HTTP_PROBLEM_BASE, name); /* our own names: fit */
	jsonv_fit(d, sizeof(d), detail ? detail : title);
	jsonv_utf8_sanitize(d); /* details may quote user input */
	json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", title, "status",
			      (int)status, "detail", d, "instance", r->id);
	if (p != NULL && extra != NULL)
		json_object_update(p, extra);
	json_decref(extra);
	reply_json(r, status, p);
	if (r->status == status)
		r->ctype = "application/problem+json";
	if (status == 401)
		r->www_authenticate = true;
}

void reply_err(struct req *r, int err, const char *detail)
{
	for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
		if (err_table[i].err == err) {
			reply_problem(r, err_table[i].status, err_table[i].name, err_table[i].title,
				      detail, NULL);
			/* Every 503 (pool busy, database down, disk full) is
			 * temporary: tell clients when to try again. */
			if (err_table[i].status == 503 && r->retry_after_s == 0)
				r->retry_after_s = 1;
			return;
		}
	}
	reply_problem(r, 500, "internal", "Internal error", detail, NULL);
}

void reply_invalid(struct req *r, json_t *errors)
{
	reply_invalid_extra(r, errors, NULL);
}

void reply_invalid_extra(struct req *r, json_t *errors, json_t *more_members)
{
	/* A bounded answer whatever the input: the first HTTP_MAX_ERRORS errors
	 * and how many more there were. */
	size_t total = json_array_size(errors);
	json_t *more = NULL;
	if (total > HTTP_MAX_ERRORS) {
		for (size_t i = total; i > HTTP_MAX_ERRORS; i--)
			json_array_remove(errors, i - 1);
		more = json_integer((json_int_t)(total - HTTP_MAX_ERRORS));
	}
	const char *detail = "the request has invalid fields";
	json_t *first = json_array_get(errors, 0);
	char buf[JSONV_MSG_LEN + 256];
	if (json_array_size(errors) == 1 && first != NULL) {
		const char *field = json_string_value(json_object_get(first, "field"));
		char *full = NULL;
		if (asprintf(&full, "%s%s%s", field ? field : "", field && field[0] ? ": " : "",
			     json_string_value(json_object_get(first, "message"))) >= 0) {
			jsonv_fit(buf, sizeof(buf), full);
			detail = buf;
		}
		free(full);
	}
	json_t *extra = json_pack("{s:o}", "errors", errors);
	if (more != NULL && extra != NULL)
		(void)json_object_set_new(extra, "errors_truncated", more); /* bounded either way */
	else
		json_decref(more);
	if (extra != NULL && more_members != NULL)
		(void)json_object_update(extra, more_members); /* a member more or less, never a cut one */
	json_decref(more_members);
	reply_problem(r, 422, "validation-error", "Invalid request", detail, extra);
}
