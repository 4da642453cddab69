/*
 * server.h - the HTTP server: libmicrohttpd with one thread per connection,
 * graceful stop (finish requests in flight), request size limits, a deadline
 * for receiving each request and connection caps (total and per address).
 */
#ifndef PLINTH_SERVER_H
#define PLINTH_SERVER_H

#include <stdint.h>

#include "http/http.h"

struct server;

/* Connection limits; 0 in a field takes its default. */
struct server_limits {
	unsigned max_connections;  /* open connections in all (default 4096; lowered to fit
				    * RLIMIT_NOFILE, which is raised to its hard limit) */
	unsigned per_ip;           /* open connections per client address (default 1024) */
	unsigned request_timeout_s;/* headers + body of one request, from the moment the
				    * connection was ready for it (default 30) */
};
#define SERVER_DEFAULT_MAX_CONNECTIONS 4096u
#define SERVER_DEFAULT_PER_IP 1024u
#define SERVER_DEFAULT_REQUEST_TIMEOUT_S 30u

/*
 * Starts listening on listen ("127.0.0.1:8080", "[::1]:0", ":8080"), one
 * thread per connection, within lim (NULL: defaults), dispatching to
 * app->routes (ERR_INVALID without one).  Returns 0 and *out
 * (caller owns; server_stop frees), or an error with a one-line detail.
 * *port is the bound port.
 */
int server_start(struct app *app, const char *listen, const struct server_limits *lim,
		 struct server **out, unsigned *port, char *detail, size_t detail_len);

/* The TLS listener's material, PEM text; it must outlive the server. */
struct server_tls {
	const char *cert_pem;      /* the server certificate (chain) */
	const char *key_pem;       /* its private key */
	const char *client_ca_pem; /* NULL, or: require a client certificate signed by it */
};

/*
 * server_start over TLS (libmicrohttpd with GnuTLS), for the Kubernetes
 * admission webhook: the same router, limits and request deadline, over the
 * routes of the app it is given (the daemon gives it a table with the review
 * route alone).  With client_ca_pem, a request without a client certificate
 * signed by that CA (and, if the certificate names purposes, meant for TLS
 * clients) is refused with 403 before its body is read; a verified
 * certificate's subject is the caller's identity (r->client_cert, in the
 * request log).  Stop it with server_stop.
 */
int server_start_tls(struct app *app, const char *listen, const struct server_limits *lim,
		     const struct server_tls *tls, struct server **out, unsigned *port,
		     char *detail, size_t detail_len);

/* Stops accepting, waits up to grace_s for requests in flight, then stops. */
void server_stop(struct server *s, int grace_s);

#endif
