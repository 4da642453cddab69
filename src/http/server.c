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
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "http/jsonv.h"
#include "util/log.h"
#include "util/util.h"

/*
 * One accepted connection (MHD's socket_context), from the STARTED to the
 * CLOSED notification.  The fields below `fd` are guarded by server.mu.
 * libmicrohttpd 0.9.75 sends CLOSED before it closes the socket
 * (MHD_cleanup_connections_, and the failure path of new_connection_process_),
 * and CLOSED takes server.mu: so while the reaper holds server.mu, every fd on
 * the list is still open and still this connection's.
 */
struct conn {
	struct server *s;
	struct conn *prev, *next;
	int fd;
	int64_t ready_us;  /* monotonic: ready for its current request since */
	int64_t line_us;   /* monotonic: request line seen (0: not yet) */
	bool receiving;    /* the current request is not complete yet */
	bool reaped;       /* shut down by the reaper: its request missed the deadline */
	bool nul_in_uri;   /* the request line's target holds %00 */
	char path[128];    /* raw request target without the query, for the log */
};

struct server {
	struct MHD_Daemon *mhd;
	struct app *app;
	atomic_long inflight;
	int64_t deadline_us;     /* a whole request must arrive within this */
	pthread_mutex_t mu;      /* guards conns and every struct conn's fields */
	pthread_cond_t cv;       /* wakes the reaper to stop */
	struct conn *conns;      /* every open connection */
	atomic_long refused;     /* connections closed at a connection cap, not yet logged */
	bool client_ca;          /* TLS: every request needs a verified client certificate */
	bool stop;               /* the reaper must end */
	bool reaper_started;
	pthread_t reaper;
};

/* The struct conn of an MHD connection, or NULL (never for a started one). */
static struct conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/*
 * The current request is complete (or answered): the deadline stops.  False
 * when the reaper was first: the client has its 408 and the connection is
 * shut, so the request must not run (it would act on a request the client
 * was told failed).
 */
static bool conn_request_done(struct MHD_Connection *c)
{
	struct conn *k = conn_of(c);
	if (k == NULL || k->s == NULL)
		return true;
	pthread_mutex_lock(&k->s->mu);
	k->receiving = false;
	bool in_time = !k->reaped;
	pthread_mutex_unlock(&k->s->mu);
	return in_time;
}

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
	if (r->disposition[0] != '\0')
		MHD_add_response_header(resp, "Content-Disposition", r->disposition);
	if (r->csp != NULL) {
		MHD_add_response_header(resp, "Content-Security-Policy", r->csp);
		MHD_add_response_header(resp, "X-Frame-Options", "DENY");
		MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	}
	(void)conn_request_done(r->conn); /* answered (maybe early): the deadline stops */
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
	r->close_conn = r->close_conn || body_announced(r);
	return queue(r);
}

/* MHD_OPTION_NOTIFY_CONNECTION: tracks each connection and its socket. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct conn *k = calloc(1, sizeof(*k));
		*socket_context = k;
		if (k == NULL || ci == NULL)
			return; /* untracked: only MHD's idle timeout applies to it */
		k->s = s;
		k->fd = ci->connect_fd;
		k->ready_us = util_mono_us();
		k->receiving = true;
		pthread_mutex_lock(&s->mu);
		k->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = k;
		s->conns = k;
		pthread_mutex_unlock(&s->mu);
		return;
	}
	struct conn *k = *socket_context;
	if (code != MHD_CONNECTION_NOTIFY_CLOSED || k == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	if (k->s != NULL) { /* on the list (else calloc'd but untracked) */
		if (k->prev != NULL)
			k->prev->next = k->next;
		else
			s->conns = k->next;
		if (k->next != NULL)
			k->next->prev = k->prev;
	}
	pthread_mutex_unlock(&s->mu);
	free(k);
	*socket_context = NULL;
}

/*
 * MHD_OPTION_URI_LOG_CALLBACK: the raw request target, before libmicrohttpd
 * unescapes it (its unescaping turns %00 into a NUL that silently cuts the
 * path: "/v1/teams/alpha%00" would serve alpha).  Returns NULL: the request
 * context stays NULL until on_request's first call.  Being called makes MHD
 * report the request to on_completed even when MHD answers it itself.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct server *s = cls;
	struct conn *k = conn_of(c);
	if (k == NULL || uri == NULL)
		return NULL;
	size_t n = strcspn(uri, "?");
	pthread_mutex_lock(&s->mu);
	k->line_us = util_mono_us();
	k->nul_in_uri = strstr(uri, "%00") != NULL;
	if (n >= sizeof(k->path))
		n = sizeof(k->path) - 1; /* a log field: the head of a long path is enough */
	memcpy(k->path, uri, n);
	k->path[n] = '\0';
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

struct header_count {
	unsigned content_length, transfer_encoding;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *k,
				     const char *v)
{
	struct header_count *n = cls;
	(void)kind;
	(void)v;
	if (strcasecmp(k, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		n->content_length++;
	else if (strcasecmp(k, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		n->transfer_encoding++;
	return MHD_YES;
}

/*
 * Refuses, with a 400 problem, a request whose framing or target is
 * ambiguous: behind a proxy that reads it differently it smuggles a second
 * request (Content-Length with chunked), and a cut path names another
 * resource.  Called on the first callback; true when r has its answer, which
 * then closes the connection (the bytes after it cannot be trusted).
 */
static bool conn_refuse_ambiguous(struct req *r, const char *version)
{
	struct header_count n = {0};
	const char *why = NULL;
	struct conn *k = conn_of(r->conn);
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_framing, &n);
	const char *te = req_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (n.transfer_encoding > 0 && n.content_length > 0)
		why = "both Content-Length and Transfer-Encoding";
	else if (n.transfer_encoding > 1 || (te != NULL && strcasecmp(te, "chunked") != 0))
		why = "Transfer-Encoding other than chunked";
	else if (n.content_length > 1)
		why = "more than one Content-Length";
	else if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
		 req_header(r, MHD_HTTP_HEADER_HOST) == NULL)
		why = "no Host header (required in HTTP/1.1)";
	else if (k != NULL && k->nul_in_uri)
		why = "encoded NUL (%00) in the request target";
	if (why == NULL)
		return false;
	reply_problem(r, 400, "bad-request", "Bad request", why, NULL);
	r->close_conn = true;
	return true;
}

/*
 * MHD_OPTION_EXTERNAL_LOGGER: libmicrohttpd closes a connection over the
 * total or per-address cap without any answer; its message is the only
 * trace, so it is counted here and logged by the reaper (one line a second
 * at most, whatever the flood).  Its other messages are not logged: what a
 * client gets wrong is in the request log already.
 */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct server *s = cls;
	(void)ap;
	if (strstr(fmt, "connection limit") != NULL)
		atomic_fetch_add(&s->refused, 1);
}

/*
 * The request deadline: every 200 ms, shuts down each connection whose
 * current request is not complete by ready_us + deadline.  One that has sent
 * its request line gets a 408 problem first (best effort, never blocking);
 * an idle keep-alive connection is closed quietly.  shutdown() wakes the
 * connection's thread, which closes it as a client abort.
 */
static void *reaper_main(void *arg)
{
	struct server *s = arg;
	static const char body408[] =
		"{\"type\":\"https://plinth.io/problems/request-timeout\",\"title\":\"Request timeout\","
		"\"status\":408,\"detail\":\"the request took too long\"}";
	char resp408[400];
	int n408 = snprintf(resp408, sizeof(resp408),
			    "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/problem+json\r\n"
			    "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
			    sizeof(body408) - 1, body408);
	if (n408 < 0 || (size_t)n408 >= sizeof(resp408))
		n408 = 0; /* cannot happen (constant text): then cut without an answer */
	unsigned tick = 0;
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		if (++tick % 5 == 0 && atomic_load(&s->refused) > 0) {
			long n = atomic_exchange(&s->refused, 0);
			pthread_mutex_unlock(&s->mu); /* stderr may block: not with the list held */
			log_event("warning", "connections closed at the connection limit",
				  json_pack("{s:I}", "count", (json_int_t)n));
			pthread_mutex_lock(&s->mu);
			if (s->stop)
				break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000 * 1000;
		if (ts.tv_nsec >= 1000 * 1000 * 1000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000 * 1000 * 1000;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		int64_t now = util_mono_us();
		for (struct conn *k = s->conns; k != NULL && !s->stop; k = k->next) {
			if (!k->receiving || k->reaped || now - k->ready_us < s->deadline_us)
				continue;
			k->reaped = true;
			if (k->line_us != 0 && n408 > 0)
				(void)!send(k->fd, resp408, (size_t)n408, MSG_DONTWAIT | MSG_NOSIGNAL);
			(void)shutdown(k->fd, SHUT_RDWR); /* ENOTCONN if the peer left: fine */
		}
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/*
 * on_completed for a request that never reached on_request: libmicrohttpd
 * answered it itself (431, a bad Content-Length, 413) or the reaper cut it
 * (408).  Logs and counts it like any request; a client that simply left is
 * not a request.
 */
static void conn_log_unhandled(struct server *s, struct MHD_Connection *c)
{
	struct conn *k = conn_of(c);
	if (k == NULL)
		return;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
	pthread_mutex_lock(&s->mu);
	unsigned status = k->reaped ? 408 : ci != NULL ? ci->http_status : 0;
	char path[sizeof(k->path)];
	memcpy(path, k->path, sizeof(path));
	int64_t t0 = k->line_us ? k->line_us : k->ready_us;
	pthread_mutex_unlock(&s->mu);
	if (status == 0)
		return;
	struct req *r = req_new(s, c, path, "-");
	if (r == NULL)
		return;
	r->status = status;
	r->t0_us = t0;
	reqlog_write(r);
	req_free(r);
}

/* A request ended: the connection is ready for the next one from now on. */
static void conn_request_end(struct server *s, struct MHD_Connection *c, struct req *r)
{
	struct conn *k = conn_of(c);
	if (k == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	if (r != NULL && k->reaped && !r->queued)
		r->status = 408; /* cut by the deadline while its body arrived */
	k->ready_us = util_mono_us();
	k->line_us = 0;
	k->receiving = true;
	k->nul_in_uri = false;
	pthread_mutex_unlock(&s->mu);
}

/*
 * Is the peer's certificate present and signed by the trusted client CA (and,
 * when it names its purposes, meant for TLS clients)?  libmicrohttpd with
 * MHD_OPTION_HTTPS_MEM_TRUST only *requests* a client certificate
 * (GNUTLS_CERT_REQUEST); checking it is ours, on every request.  GnuTLS also
 * checks its validity period.  When it passes, the certificate's subject is
 * the caller's identity: r->client_cert, written to the request log.
 */
static bool client_cert_identify(struct req *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL)
		return false;
	gnutls_session_t tls = (gnutls_session_t)ci->tls_session;
	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (void *)GNUTLS_KP_TLS_WWW_CLIENT,
	};
	unsigned status = 0, n = 0;
	if (gnutls_certificate_verify_peers(tls, &purpose, 1, &status) != GNUTLS_E_SUCCESS ||
	    status != 0)
		return false;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(tls, &n);
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t dn = {NULL, 0};
	bool ok = chain != NULL && n > 0 && gnutls_x509_crt_init(&crt) == GNUTLS_E_SUCCESS &&
		  gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS &&
		  gnutls_x509_crt_get_dn3(crt, &dn, 0) == GNUTLS_E_SUCCESS;
	if (ok && dn.size < sizeof(r->client_cert)) {
		memcpy(r->client_cert, dn.data, dn.size);
		r->client_cert[dn.size] = '\0';
	} else if (ok) { /* a log field: the head of a long subject, marked as cut */
		size_t keep = sizeof(r->client_cert) - 4;
		memcpy(r->client_cert, dn.data, keep);
		memcpy(r->client_cert + keep, "...", 4);
	}
	gnutls_free(dn.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct server *s = cls;
	struct req *r = *con_cls;

	if (r == NULL) {
		r = req_new(s, c, url, method);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		atomic_fetch_add(&s->inflight, 1);
		if (s->client_ca && !client_cert_identify(r)) {
			reply_err(r, ERR_FORBIDDEN,
				  "a client certificate signed by the webhook's client CA is required");
			return queue_early(r);
		}
		if (conn_refuse_ambiguous(r, version))
			return queue(r);
		if (strlen(url) >= sizeof(r->path)) {
			/* Never route a cut path: no route is this long. */
			reply_err(r, ERR_NOT_FOUND, "no such endpoint: the path is longer than any route");
			return queue_early(r);
		}
		unsigned nheaders = 0;
		MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &nheaders);
		if (nheaders > HTTP_MAX_HEADERS) {
			reply_problem(r, 431, "too-many-headers", "Request header fields too large",
				      "too many request headers", NULL);
			return queue_early(r);
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
	if (!conn_request_done(c)) /* the whole request is in: its deadline stops */
		return MHD_NO; /* too late: cut by the deadline, never run */
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
	(void)toe;
	if (r == NULL)
		conn_log_unhandled(s, c);
	conn_request_end(s, c, r);
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

/*
 * Stack of each connection's thread: handlers keep their buffers small
 * (bodies and answers live on the heap), so 512 KiB is ample and thousands
 * of threads cost little address space.  Sanitizers grow frames severalfold.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SERVER_THREAD_STACK (4u * 1024 * 1024)
#else
#define SERVER_THREAD_STACK (512u * 1024)
#endif
/* File descriptors kept for everything but connections: the listening
 * socket, the store's pool, logs, MLflow and git children. */
#define SERVER_FD_RESERVE 256u

/* Raises RLIMIT_NOFILE to its hard limit; returns how many connections fit. */
static unsigned server_fd_room(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 1024 - SERVER_FD_RESERVE;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = {rl.rlim_max, rl.rlim_max};
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl.rlim_cur = rl.rlim_max;
	}
	rlim_t room = rl.rlim_cur > 2 * SERVER_FD_RESERVE ? rl.rlim_cur - SERVER_FD_RESERVE
							   : SERVER_FD_RESERVE;
	return room > 1000000 ? 1000000u : (unsigned)room;
}

/* server_start and server_start_tls: tls NULL for plain HTTP. */
static int start(struct app *app, const char *listen, const struct server_limits *lim,
		 const struct server_tls *tls, struct server **out, unsigned *port, char *detail,
		 size_t detail_len)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	bool ipv6 = false;
	if (app == NULL || app->routes == NULL) {
		snprintf(detail, detail_len, "no route table (app->routes)");
		return ERR_INVALID;
	}
	if (tls != NULL && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(detail, detail_len, "this libmicrohttpd was built without TLS");
		return ERR_INVALID;
	}
	int rc = parse_listen(listen, &ss, &sslen, &ipv6, detail, detail_len);
	if (rc != 0)
		return rc;
	unsigned max_conns = lim && lim->max_connections ? lim->max_connections
							 : SERVER_DEFAULT_MAX_CONNECTIONS;
	unsigned per_ip = lim && lim->per_ip ? lim->per_ip : SERVER_DEFAULT_PER_IP;
	unsigned timeout_s = lim && lim->request_timeout_s ? lim->request_timeout_s
							   : SERVER_DEFAULT_REQUEST_TIMEOUT_S;
	unsigned room = server_fd_room();
	if (max_conns > room) {
		log_event("warning", "fewer connections than asked: the file descriptor limit is low",
			  json_pack("{s:i, s:i}", "asked", (int)max_conns, "allowed", (int)room));
		max_conns = room;
	}
	if (per_ip > max_conns)
		per_ip = max_conns;
	struct server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return ERR_NOMEM;
	s->app = app;
	atomic_init(&s->inflight, 0);
	atomic_init(&s->refused, 0);
	s->deadline_us = (int64_t)timeout_s * 1000000;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return ERR_NOMEM;
	}
	if (pthread_cond_init(&s->cv, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return ERR_NOMEM;
	}
	/* One thread per connection: handlers block (a group commit, the
	 * database, MLflow), and in a shared worker thread a blocked request
	 * holds up every other connection of that thread.  With a pool of 64
	 * threads for 64 clients, the random spread of connections over the
	 * threads halved some benchmark runs (one hot team: 2.4k-5.6k
	 * decisions/s against 4.7k-5.7k this way, alternating runs).  The
	 * requests served at once are bounded by the store's pool instead
	 * (PLINTH_THREADS), and MHD_OPTION_CONNECTION_LIMIT bounds the threads. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ipv6)
		flags |= MHD_USE_IPv6;
	/* TLS (the admission webhook): the certificate, its key and, when set,
	 * the CA a client certificate must be signed by (libmicrohttpd only
	 * requests one: client_cert_identify verifies it on every request). */
	struct MHD_OptionItem tls_opts[] = {
		{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL},
		{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL},
	};
	if (tls != NULL) {
		flags |= MHD_USE_TLS;
		tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)tls->cert_pem};
		tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)tls->key_pem};
		if (tls->client_ca_pem != NULL) {
			tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
							      (void *)tls->client_ca_pem};
			s->client_ca = true;
		}
	}
	/* The per-connection memory pool: with 64 KiB, a profile at 64 clients
	 * showed ~5% of the daemon's CPU in libmicrohttpd memsets that scale with
	 * it.  32 KiB (libmicrohttpd's default) still holds an 8 KiB header, and
	 * 16 KiB did not (test_bad_input); bodies are copied out to r->body.
	 * MHD_OPTION_CONNECTION_TIMEOUT (idle time) still bounds a client that
	 * stops reading its answer; the reaper bounds receiving a request. */
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
				  MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				  MHD_OPTION_CONNECTION_LIMIT, max_conns,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
				  MHD_OPTION_THREAD_STACK_SIZE, (size_t)SERVER_THREAD_STACK,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
				  MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)512,
				  MHD_OPTION_ARRAY, tls_opts,
				  MHD_OPTION_END);
	if (s->mhd == NULL) {
		snprintf(detail, detail_len, "cannot listen%s on %s: %s", tls ? " with TLS" : "", listen,
			 errno ? strerror(errno)
			 : tls ? "libmicrohttpd refused to start (is the certificate or key invalid?)"
			       : "libmicrohttpd refused to start");
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return ERR_UNAVAILABLE;
	}
	if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
		snprintf(detail, detail_len, "cannot start the request deadline thread");
		MHD_stop_daemon(s->mhd);
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return ERR_UNAVAILABLE;
	}
	s->reaper_started = true;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : 0;
	*out = s;
	return 0;
}

int server_start(struct app *app, const char *listen, const struct server_limits *lim,
		 struct server **out, unsigned *port, char *detail, size_t detail_len)
{
	return start(app, listen, lim, NULL, out, port, detail, detail_len);
}

int server_start_tls(struct app *app, const char *listen, const struct server_limits *lim,
		     const struct server_tls *tls, struct server **out, unsigned *port,
		     char *detail, size_t detail_len)
{
	return start(app, listen, lim, tls, out, port, detail, detail_len);
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
	MHD_stop_daemon(s->mhd); /* every connection is CLOSED: the list is empty */
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->reaper_started)
		pthread_join(s->reaper, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
