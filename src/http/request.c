/*
 * request.c - building responses and reading request bodies, independent of
 * the HTTP library (server.c feeds it; the fuzz harness feeds it directly).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "http/http.h"
#include "http/jsonv.h"

void req_db_release(struct req *r)
{
	if (r->db != NULL)
		store_conn_release(r->app->store, r->db);
	r->db = NULL;
}

void req_release(struct req *r)
{
	req_db_release(r);
	free(r->body.p);
	r->body = (struct buf){0};
	free(r->resp);
	r->resp = NULL;
}

int req_db_within(struct req *r, long wait_ms, struct store_conn **out)
{
	if (r->db == NULL) {
		int rc = store_conn_acquire_within(r->app->store, wait_ms, &r->db);
		if (rc == ERR_UNAVAILABLE)
			r->retry_after_s = 1; /* the pool is busy now, not broken */
		if (rc != 0) {
			r->db = NULL;
			return rc;
		}
	}
	*out = r->db;
	return 0;
}

int req_db(struct req *r, struct store_conn **out)
{
	long wait = r->app->db_wait_ms > 0 ? r->app->db_wait_ms : HTTP_DB_WAIT_MS;
	return req_db_within(r, wait, out);
}

void reply_take(struct req *r, unsigned status, const char *ctype, char *data, size_t len)
{
	free(r->resp);
	r->status = status;
	r->ctype = ctype;
	r->resp = data;
	r->resp_len = len;
}

void reply_raw(struct req *r, unsigned status, const char *ctype, const char *data, size_t len)
{
	char *copy = malloc(len + 1);
	if (copy == NULL) {
		reply_take(r, 500, "text/plain", NULL, 0);
		return;
	}
	memcpy(copy, data, len);
	copy[len] = '\0';
	reply_take(r, status, ctype, copy, len);
}

void reply_json(struct req *r, unsigned status, json_t *body)
{
	char *text = body ? json_dumps(body, HTTP_JSON_FLAGS) : NULL;
	json_decref(body);
	if (text == NULL) {
		reply_take(r, 500, "text/plain", NULL, 0);
		return;
	}
	reply_take(r, status, "application/json", text, strlen(text));
}

/* True unless the media-type parameters name a charset other than utf-8:
 * the body is always parsed as UTF-8, so "charset=latin1" must not be
 * silently read as something else. */
static bool ctype_charset_utf8(const char *params)
{
	for (const char *p = strchr(params, ';'); p != NULL; p = strchr(p + 1, ';')) {
		const char *n = p + 1;
		while (*n == ' ' || *n == '\t')
			n++;
		if (strncasecmp(n, "charset", 7) != 0)
			continue;
		n += 7;
		while (*n == ' ' || *n == '\t')
			n++;
		if (*n != '=')
			return false;
		n++;
		while (*n == ' ' || *n == '\t')
			n++;
		bool quoted = *n == '"';
		n += quoted;
		if (strncasecmp(n, "utf-8", 5) != 0)
			return false;
		n += 5;
		if (quoted && *n++ != '"')
			return false;
		while (*n == ' ' || *n == '\t')
			n++;
		if (*n != '\0' && *n != ';')
			return false;
	}
	return true;
}

int req_json_object(struct req *r, bool allow_empty, json_t **out)
{
	if (r->body.len == 0) {
		if (allow_empty) {
			*out = json_object();
			return *out ? 0 : -1;
		}
		reply_problem(r, 400, "malformed-json", "Malformed JSON", "a JSON body is required",
			      NULL);
		return -1;
	}
	const char *ct = req_header(r, "Content-Type");
	/* A PATCH body is a JSON merge patch (RFC 7396): its own media type, or
	 * plain JSON for clients that cannot name it. */
	size_t n = 16;
	if (ct != NULL && strcmp(r->method, "PATCH") == 0 &&
	    strncasecmp(ct, "application/merge-patch+json", 28) == 0)
		n = 28;
	if (ct == NULL || (n == 16 && strncasecmp(ct, "application/json", 16) != 0) ||
	    (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ') || !ctype_charset_utf8(ct + n)) {
		reply_problem(r, 415, "unsupported-media-type", "Unsupported media type",
			      strcmp(r->method, "PATCH") == 0
				      ? "send the body as Content-Type: application/merge-patch+json or "
					"application/json (charset utf-8 only)"
				      : "send the body as Content-Type: application/json (charset utf-8 only)",
			      NULL);
		return -1;
	}
	char limit[160];
	if (jsonv_prescan(r->body.p, r->body.len, limit, sizeof(limit)) != 0) {
		/* A 422 on the body as a whole (field ""), like a non-object body. */
		json_t *errors = json_array();
		if (errors == NULL) {
			reply_err(r, ERR_NOMEM, NULL);
			return -1;
		}
		jsonv_error(errors, "", "%s", limit);
		reply_invalid(r, errors);
		return -1;
	}
	json_error_t jerr;
	json_t *v = json_loadb(r->body.p, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL) {
		char d[300];
		snprintf(d, sizeof(d), "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		reply_problem(r, 400, "malformed-json", "Malformed JSON", d, NULL);
		return -1;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		json_t *errors = json_array();
		jsonv_error(errors, "", "the body must be a JSON object");
		reply_invalid(r, errors);
		return -1;
	}
	*out = v;
	return 0;
}
