/*
 * server.c - libmicrohttpd glue.  The only file that includes <microhttpd.h>.
 *
 * It turns MHD's callback protocol into one struct req per request: the
 * route, the token and the role are checked when the headers are complete
 * (router_admit: a refusal is answered at once, its body never read), the
 * body is collected up to HTTP_MAX_BODY (refused with 413 beyond, before any
 * handler runs), the handler runs once the body is complete, the database
 * connection goes back to the pool, and the response is queued from r->resp
 * (a slow reader holds a thread and its answer, never a connection).  It
 * counts requests in flight so that a graceful stop can wait for them.  It
 * never interprets a request itself.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "http/jsonv.h"
#include "util/util.h"

struct server {
	struct MHD_Daemon *mhd;
	struct app *app;
	atomic_long inflight;
};

static struct req *req_new(struct server *s, struct MHD_Connection *c, const char *url,
			   const char *method)
{
	struct req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->app = s->app;
	r->conn = c;
	snprintf(r->method, sizeof(r->method), "%s", method);
	snprintf(r->path, sizeof(r->path), "%s", url);
	r->now = util_now();
	r->t0_us = util_mono_us();
	if (util_random_id("req_", 16, r->id, sizeof(r->id)) != 0)
		snprintf(r->id, sizeof(r->id), "req_unknown");
	return r;
}

static void req_free(struct req *r)
{
	if (r == NULL)
		return;
	req_release(r);
	free(r);
}

const char *req_query(struct req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Appends upload data; false when the body would exceed the limit. */
static bool body_append(struct req *r, const char *data, size_t len)
{
	return len <= HTTP_MAX_BODY - r->body.len && buf_add(&r->body, data, len);
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	(void)kind;
	(void)k;
	(void)v;
	(*(unsigned *)cls)++;
	return MHD_YES;
}

static enum MHD_Result queue(struct req *r)
{
	struct MHD_Response *resp = NULL;
	if (r->resp == NULL && r->status == 0)
		reply_err(r, ERR_STORE, "no response was produced");
	if (r->resp != NULL) {
		resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
		if (resp != NULL)
			r->resp = NULL; /* MHD owns it now */
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (resp == NULL)
		return MHD_NO;
	if (r->ctype != NULL && r->status != 204)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->allow[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->www_authenticate)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"plinth\"");
	if (r->retry_after_s > 0 && r->status == 503) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%u", r->retry_after_s);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (r->close_conn)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (r->csp != NULL) {
		MHD_add_response_header(resp, "Content-Security-Policy", r->csp);
		MHD_add_response_header(resp, "X-Frame-Options", "DENY");
		MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	}
	r->queued = true;
	enum MHD_Result ok = MHD_queue_response(r->conn, r->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* Does the request announce a body (which is still unread at the first call)? */
static bool body_announced(struct req *r)
{
	const char *cl = req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL ||
	       (cl != NULL && strspn(cl, "0") != strlen(cl));
}

/*
 * The first call (headers complete, no body byte read): a request refused
 * here is answered at once.  libmicrohttpd 0.9.75 accepts a response only at
 * this call or once the upload is complete; queued now, it stops reading the
 * body of a POST/PUT, and Connection: close makes sure that no unread body is
 * taken for a next request whatever the method.
 */
static enum MHD_Result queue_early(struct req *r)
{
	r->close_conn = body_announced(r);
	return queue(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct server *s = cls;
	struct req *r = *con_cls;
	(void)version;

	if (r == NULL) {
		r = req_new(s, c, url, method);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		atomic_fetch_add(&s->inflight, 1);
		unsigned nheaders = 0;
		MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &nheaders);
		if (nheaders > HTTP_MAX_HEADERS) {
			reply_problem(r, 431, "too-many-headers", "Request header fields too large",
				      "too many request headers", NULL);
			return queue(r);
		}
		const char *cl = req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > HTTP_MAX_BODY) {
			reply_err(r, ERR_TOO_LARGE, "request body is larger than 1 MiB");
			return queue_early(r);
		}
		if (!router_admit(r))
			return queue_early(r);
		return MHD_YES;
	}
	if (r->queued) {
		*upload_size = 0; /* refused early: discard what is still arriving */
		return MHD_YES;
	}
	if (*upload_size != 0) {
		if (r->status == 0 && !body_append(r, upload, *upload_size))
			reply_err(r, ERR_TOO_LARGE, "request body is larger than 1 MiB");
		/* Consumed, or discarded once refused: libmicrohttpd accepts a
		 * response only after the whole upload, so the 413 waits. */
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->status == 0)
		router_run(r);
	/* The answer is built: it is sent without a database connection. */
	req_db_release(r);
	return queue(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct req *r = *con_cls;
	(void)c;
	(void)toe;
	if (r == NULL)
		return;
	reqlog_write(r);
	req_free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&s->inflight, 1);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sslen,
			bool *ipv6, char *detail, size_t detail_len)
{
	char host[256], port[16];
	const char *colon = strrchr(listen, ':');
	if (colon == NULL || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port)) {
		snprintf(detail, detail_len, "--listen must be HOST:PORT, got '%s'", listen);
		return ERR_INVALID;
	}
	size_t hl = (size_t)(colon - listen);
	if (hl >= sizeof(host)) {
		snprintf(detail, detail_len, "--listen host too long");
		return ERR_INVALID;
	}
	memcpy(host, listen, hl);
	host[hl] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (gai != 0) {
		snprintf(detail, detail_len, "cannot resolve '%s': %s", listen, gai_strerror(gai));
		return ERR_INVALID;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sslen = ai->ai_addrlen;
	*ipv6 = ai->ai_family == AF_INET6;
	freeaddrinfo(ai);
	return 0;
}

int server_start(struct app *app, const char *listen, struct server **out, unsigned *port,
		 char *detail, size_t detail_len)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	bool ipv6 = false;
	int rc = parse_listen(listen, &ss, &sslen, &ipv6, detail, detail_len);
	if (rc != 0)
		return rc;
	struct server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ERR_NOMEM;
	s->app = app;
	atomic_init(&s->inflight, 0);
	/* One thread per connection: handlers block (a group commit, the
	 * database, MLflow), and in a shared worker thread a blocked request
	 * holds up every other connection of that thread.  With a pool of 64
	 * threads for 64 clients, the random spread of connections over the
	 * threads halved some benchmark runs (one hot team: 2.4k-5.6k
	 * decisions/s against 4.7k-5.7k this way, alternating runs).  The
	 * requests served at once are bounded by the store's pool instead
	 * (PLINTH_THREADS), and MHD_OPTION_CONNECTION_LIMIT bounds the threads. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_POLL | MHD_USE_ITC;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	/* The per-connection memory pool: with 64 KiB, a profile at 64 clients
	 * showed ~5% of the daemon's CPU in libmicrohttpd memsets that scale with
	 * it.  32 KiB (libmicrohttpd's default) still holds an 8 KiB header, and
	 * 16 KiB did not (test_bad_input); bodies are copied out to r->body. */
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
				  MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
				  MHD_OPTION_END);
	if (s->mhd == NULL) {
		snprintf(detail, detail_len, "cannot listen on %s: %s", listen,
			 errno ? strerror(errno) : "libmicrohttpd refused to start");
		free(s);
		return ERR_UNAVAILABLE;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : 0;
	*out = s;
	return 0;
}

void server_stop(struct server *s, int grace_s)
{
	if (s == NULL)
		return;
	MHD_socket fd = MHD_quiesce_daemon(s->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	/* Requests already being processed finish and get their response; a
	 * request still arriving on an accepted connection gets a short quiet
	 * period (no request in flight for 200 ms) to be read and answered. */
	int quiet = 0;
	for (int i = 0; i < grace_s * 100 && quiet < 20; i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
		quiet = atomic_load(&s->inflight) > 0 ? 0 : quiet + 1;
	}
	MHD_stop_daemon(s->mhd);
	free(s);
}


/* --- the TLS listener (the Kubernetes admission webhook) ------------------- */

/*
 * Is the peer's certificate present and signed by the trusted client CA?
 * libmicrohttpd with MHD_OPTION_HTTPS_MEM_TRUST only *requests* a client
 * certificate (GNUTLS_CERT_REQUEST); checking it is ours.
 */
static bool client_cert_ok(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return false;
	unsigned status = 0;
	int rc = gnutls_certificate_verify_peers2((gnutls_session_t)ci->tls_session, &status);
	return rc == GNUTLS_E_SUCCESS && status == 0;
}

/* on_request behind a client-certificate check: a request without a valid
 * certificate is answered 403 at once (its body never read). */
static enum MHD_Result on_request_client_cert(void *cls, struct MHD_Connection *c, const char *url,
					      const char *method, const char *version,
					      const char *upload, size_t *upload_size,
					      void **con_cls)
{
	struct server *s = cls;
	if (*con_cls == NULL && !client_cert_ok(c)) {
		struct req *r = req_new(s, c, url, method);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		atomic_fetch_add(&s->inflight, 1);
		reply_err(r, ERR_FORBIDDEN,
			  "a client certificate signed by the webhook's client CA is required");
		return queue_early(r);
	}
	return on_request(cls, c, url, method, version, upload, upload_size, con_cls);
}

int server_start_tls(struct app *app, const char *listen, const struct server_tls *tls,
		     struct server **out, unsigned *port, char *detail, size_t detail_len)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	bool ipv6 = false;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(detail, detail_len, "this libmicrohttpd was built without TLS");
		return ERR_INVALID;
	}
	int rc = parse_listen(listen, &ss, &sslen, &ipv6, detail, detail_len);
	if (rc != 0)
		return rc;
	struct server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ERR_NOMEM;
	s->app = app;
	atomic_init(&s->inflight, 0);
	/* The same threading and limits as server_start (see there); only TLS
	 * and the optional client-certificate check differ. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_POLL | MHD_USE_ITC | MHD_USE_TLS;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	MHD_AccessHandlerCallback handler =
		tls->client_ca_pem != NULL ? on_request_client_cert : on_request;
	struct MHD_OptionItem trust[] = {
		{tls->client_ca_pem != NULL ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0,
		 (void *)tls->client_ca_pem},
		{MHD_OPTION_END, 0, NULL},
	};
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handler, s,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
				  MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
				  MHD_OPTION_HTTPS_MEM_CERT, tls->cert_pem,
				  MHD_OPTION_HTTPS_MEM_KEY, tls->key_pem,
				  MHD_OPTION_ARRAY, trust,
				  MHD_OPTION_END);
	if (s->mhd == NULL) {
		snprintf(detail, detail_len, "cannot listen with TLS on %s: %s", listen,
			 errno ? strerror(errno)
			       : "libmicrohttpd refused to start (is the certificate or key invalid?)");
		free(s);
		return ERR_UNAVAILABLE;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : 0;
	*out = s;
	return 0;
}
