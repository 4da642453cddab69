/*
 * loadgen.h - the benchmarks' HTTP/1.1 load client: one keep-alive TCP
 * connection per client thread, requests written with one send() and
 * answers read by Content-Length.  Lean on purpose: the client shares the
 * machine's cores with the daemon and the database, so every microsecond it
 * spends is taken from what is measured (curl cost about 160 us a request).
 * Only for our daemon's answers: no chunked bodies, no redirects, no TLS.
 */
#ifndef PLINTH_BENCH_LOADGEN_H
#define PLINTH_BENCH_LOADGEN_H

#include <stdint.h>

struct lg_conn {
	int fd; /* -1 when closed */
	char host[64];
	int port;
	char buf[16384]; /* the response being read */
};

/* base is "http://HOST:PORT" (as the daemon's ready file says). 0 or -1. */
int lg_open(struct lg_conn *c, const char *base);
/* One request on the connection (reconnecting once if the server closed
 * it); returns the HTTP status, or -1 when no answer arrived. */
long lg_request(struct lg_conn *c, const char *method, const char *path, const char *token,
		const char *body);
void lg_close(struct lg_conn *c);

/*
 * Many keep-alive connections driven by ONE thread with epoll, like wrk:
 * each connection sends its next request as soon as its answer is in, until
 * until_us (CLOCK_MONOTONIC microseconds).  64 client threads would compete
 * for the cores with the daemon they measure.
 */
struct lg_loop {
	const char *base; /* "http://HOST:PORT" */
	int conns;
	int64_t until_us;
	const char *method, *path, *token;
	/* The body of request `index` on connection `conn` (NULL: none). */
	const char *(*body)(void *ctx, int conn, int index);
	/* Each answer: its status (-1: none) and latency. */
	void (*done)(void *ctx, long status, int64_t latency_us);
	void *ctx;
};
/* 0 when every connection ran to the end, -1 otherwise. */
int lg_run(const struct lg_loop *l);

#endif
