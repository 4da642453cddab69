/*
 * httpc.h - a small blocking HTTP client (the CLI, later the MLflow client).
 *
 * The only module that knows libcurl exists: curl's error model stops here and
 * callers see enum err plus a one-line detail.  It must never follow redirects
 * silently, never read an unbounded body, and never print anything itself.
 */
#ifndef PLINTH_NET_HTTPC_H
#define PLINTH_NET_HTTPC_H

#include <stddef.h>

#define HTTPC_DETAIL_LEN 256

struct httpc_response {
	long status;            /* HTTP status, e.g. 200 */
	char *body;             /* NUL-terminated copy of the body (owned; free with _done) */
	size_t len;             /* body length without the NUL */
	char content_type[128]; /* Content-Type header value, "" when absent */
};

/*
 * Performs one request.  method: "GET", "POST", "PUT", "DELETE"...; headers: a
 * NULL-terminated list of "Name: value" strings or NULL; body/body_len: the
 * request body (NULL/0 for none).  timeout_ms bounds the whole exchange; a
 * response body longer than max_body fails with ERR_TOO_LARGE.
 * Returns 0 and fills *out (the caller owns it: httpc_response_done) for any
 * HTTP status, including 4xx/5xx.  On failure returns ERR_UNAVAILABLE (cannot
 * connect, timeout, transport error), ERR_TOO_LARGE, ERR_INVALID (bad url or
 * arguments) or ERR_NOMEM, writes a one-line reason into detail
 * (HTTPC_DETAIL_LEN bytes, may be NULL) and leaves *out untouched.
 */
int httpc_request(const char *method, const char *url, const char *const *headers,
	const char *body, size_t body_len, long timeout_ms, size_t max_body,
	struct httpc_response *out, char *detail);

/* Frees what httpc_request put in r and zeroes it; safe on a zeroed struct. */
void httpc_response_done(struct httpc_response *r);

#endif
