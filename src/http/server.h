/*
 * server.h - the HTTP server: libmicrohttpd with an internal thread pool and
 * epoll, graceful stop (finish requests in flight), request size limits.
 */
#ifndef PLINTH_SERVER_H
#define PLINTH_SERVER_H

#include <stdint.h>

#include "http/http.h"

struct server;

/*
 * Starts listening on listen ("127.0.0.1:8080", "[::1]:0", ":8080"), one
 * thread per connection.  Returns 0 and *out (caller owns; server_stop
 * frees), or an error with a one-line detail.  *port is the bound port.
 */
int server_start(struct app *app, const char *listen, struct server **out, unsigned *port,
		 char *detail, size_t detail_len);

/* Stops accepting, waits up to grace_s for requests in flight, then stops. */
void server_stop(struct server *s, int grace_s);

#endif
