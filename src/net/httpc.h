/*
 * httpc.h - a small blocking HTTP client (the CLI, the MLflow client, the
 * Kubernetes controller's API and watch client).
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

/*
 * TLS settings for a server with its own CA and, optionally, a client
 * certificate (the Kubernetes API).  Each item is a file or an in-memory PEM
 * (the *_pem members win); NULL members keep libcurl's defaults (system CAs,
 * no client certificate).  Strings are borrowed.
 */
struct httpc_tls {
	const char *ca_file;
	const char *ca_pem;
	size_t ca_pem_len;
	const char *cert_file;
	const char *cert_pem;
	size_t cert_pem_len;
	const char *key_file;
	const char *key_pem;
	size_t key_pem_len;
};

/* httpc_request with TLS settings (tls may be NULL: same as httpc_request). */
int httpc_request_tls(const char *method, const char *url, const char *const *headers,
	const char *body, size_t body_len, long timeout_ms, size_t max_body,
	const struct httpc_tls *tls, struct httpc_response *out, char *detail);

/*
 * A streamed GET (a Kubernetes watch): every chunk of the body is handed to
 * on_data(ctx, status, data, len) as it arrives, whatever the status; a
 * non-zero return stops the transfer.  should_stop(ctx) (may be NULL) is
 * polled about once a second, also while nothing arrives; non-zero stops it.
 * connect_timeout_ms bounds the connection; the transfer itself runs until the
 * server ends it (or stall_s seconds pass without a byte, 0 = no limit).
 * Returns 0 when the server ended the body or a callback stopped it, and sets
 * *status (may be NULL); ERR_UNAVAILABLE (cannot connect, broken exchange),
 * ERR_INVALID or ERR_NOMEM otherwise, with a detail.
 */
int httpc_stream(const char *url, const char *const *headers, const struct httpc_tls *tls,
	long connect_timeout_ms, long stall_s,
	int (*on_data)(void *ctx, long status, const char *data, size_t len),
	int (*should_stop)(void *ctx), void *ctx, long *status, char *detail);

/* Frees what httpc_request put in r and zeroes it; safe on a zeroed struct. */
void httpc_response_done(struct httpc_response *r);

#endif
