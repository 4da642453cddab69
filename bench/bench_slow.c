/*
 * bench_slow.c - legitimate service under a slow-client attack (issue 11,
 * findings 2 and 3): the rate and p99 of legitimate requests with no attack,
 * beside 1,100 slowloris connections, then beside those and 10 slow readers,
 * in one run.
 *
 * usage: bench_slow BASE_URL ADMIN_TOKEN [SECONDS_PER_PHASE]
 *
 * bench/run.sh starts the daemon (default settings) and passes its URL.
 * Setup: a team with a huge budget and a GPU type with a huge capacity.
 *   - legitimate load: 8 keep-alive connections from 127.0.0.1 posting
 *     /v1/allocations (bench/loadgen.c), SECONDS_PER_PHASE each phase;
 *   - slowloris: 1,100 connections from 127.0.0.2 sending a header that never
 *     ends, one byte per connection per second;
 *   - slow readers: 10 connections from 127.0.0.3 (1 KiB receive buffer) that
 *     post a 1 MiB body of unknown keys (a 422 answer of several MB today) and
 *     never read.
 * The attack phase is kept shorter than the daemon's 30 s request deadline.
 *
 * Output: human lines plus machine lines for bench/run.sh:
 *   RESULT phase=baseline|slowloris|attack decisions=D errors=E seconds=S rate=R p50_us=P p99_us=Q
 *   ATTACK phase=slowloris|attack slowloris_held=N slowloris_held_end=N2 slow_readers=M
 * A benchmark: numbers never make it fail; only a setup the daemon refuses
 * does (exit 1).  Loopback only; every socket is closed at exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define SLOWLORIS 1100
#define SLOW_READERS 10
#define LEGIT_CONNS 8

static const char ALLOC_BODY[] =
	"{\"team\":\"bench\",\"project\":\"bench\",\"gpu_type\":\"bench-gpu\",\"gpu_count\":1,"
	"\"max_runtime_hours\":1,\"purpose\":\"benchmark\"}";

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --- the attack ------------------------------------------------------------- */

static int port_of(const char *base)
{
	const char *colon = strrchr(base, ':');
	return colon ? atoi(colon + 1) : 0;
}

/* A blocking TCP connection from src to 127.0.0.1:port; rcvbuf > 0 shrinks
 * the receive buffer first.  -1 on failure. */
static int connect_from(const char *src, int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0) ||
	    inet_pton(AF_INET, src, &a.sin_addr) != 1 || bind(fd, (void *)&a, sizeof(a)) != 0 ||
	    connect(fd, (void *)&to, sizeof(to)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct attack {
	int slow[SLOWLORIS];
	int readers[SLOW_READERS];
	pthread_t dripper;
	bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* One byte a second on every slowloris connection until told to stop. */
static void *drip_main(void *arg)
{
	struct attack *a = arg;
	pthread_mutex_lock(&a->mu);
	while (!a->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&a->cv, &a->mu, &ts);
		for (int i = 0; i < SLOWLORIS && !a->stop; i++)
			if (a->slow[i] >= 0)
				(void)send(a->slow[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Is the connection still established?  A connection the daemon closed is
 * in CLOSE_WAIT here, whatever unread answer is pending (a cut slowloris
 * connection has its 408, a slow reader its answer). */
static bool still_open(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	       ti.tcpi_state == TCP_ESTABLISHED;
}

/* How many slowloris connections are open. */
static int slowloris_open(const struct attack *a)
{
	int n = 0;
	for (int i = 0; i < SLOWLORIS; i++)
		n += a->slow[i] >= 0 && still_open(a->slow[i]);
	return n;
}

/*
 * The slow readers' request: a body just under 1 MiB of unknown keys, which
 * today's daemon answers with a 422 listing every one (several MB, more
 * than the kernel's socket buffers take, so the answer's sender waits).
 * Returns a malloc'd request and its length, or NULL.
 */
static char *big_answer_request(const char *token, size_t *len)
{
	size_t cap = 1024 * 1024 + 1024, n = 0;
	char *req = malloc(cap);
	if (req == NULL)
		return NULL;
	char body_head[] = "{";
	size_t body_len = 1024 * 1024 - 64;
	int h = snprintf(req, cap,
			 "POST /v1/allocations HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer %s\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 token, body_len, body_head);
	if (h < 0 || (size_t)h >= cap) {
		free(req);
		return NULL;
	}
	n = (size_t)h;
	size_t body_end = n - 1 + body_len;
	for (int k = 0; n + 16 < body_end; k++)
		n += (size_t)snprintf(req + n, cap - n, "%s\"u%06d\":0", k ? "," : "", k);
	while (n < body_end - 1)
		req[n++] = ' ';
	req[n++] = '}';
	*len = n;
	return req;
}

/* Opens the slowloris connections and, with readers, the slow readers. */
static void attack_start(struct attack *a, int port, const char *token, bool readers)
{
	static const char head[] = "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ";
	size_t n = 0;
	char *req = readers ? big_answer_request(token, &n) : NULL;
	for (int i = 0; i < SLOWLORIS; i++) {
		a->slow[i] = connect_from("127.0.0.2", port, 0);
		if (a->slow[i] >= 0 && send(a->slow[i], head, sizeof(head) - 1, MSG_NOSIGNAL) < 0) {
			close(a->slow[i]);
			a->slow[i] = -1;
		}
	}
	for (int i = 0; i < SLOW_READERS; i++) {
		a->readers[i] = -1;
		if (!readers)
			continue;
		a->readers[i] = connect_from("127.0.0.3", port, 1024);
		if (a->readers[i] >= 0 && (req == NULL || send(a->readers[i], req, n, MSG_NOSIGNAL) !=
								  (ssize_t)n)) {
			close(a->readers[i]);
			a->readers[i] = -1;
		}
	}
	free(req);
	a->stop = false;
	if (pthread_create(&a->dripper, NULL, drip_main, a) != 0)
		a->stop = true; /* no dripping: the connections still hold their slots */
}

static void attack_stop(struct attack *a, int *held, int *readers)
{
	bool joined = !a->stop;
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (joined)
		pthread_join(a->dripper, NULL);
	*held = *readers = 0;
	for (int i = 0; i < SLOWLORIS; i++) {
		if (a->slow[i] >= 0) {
			*held += still_open(a->slow[i]);
			close(a->slow[i]);
		}
	}
	for (int i = 0; i < SLOW_READERS; i++) {
		if (a->readers[i] >= 0) {
			*readers += still_open(a->readers[i]);
			close(a->readers[i]);
		}
	}
}

/* --- the legitimate load ----------------------------------------------------- */

struct lat {
	int64_t *v;
	size_t n, cap;
	long errors;
};

static const char *alloc_body(void *ctx, int conn, int index)
{
	(void)ctx;
	(void)conn;
	(void)index;
	return ALLOC_BODY;
}

static void on_done(void *ctx, long status, int64_t latency_us)
{
	struct lat *l = ctx;
	if (status != 201 && status != 409) {
		l->errors++;
		return;
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 4096;
		int64_t *nv = realloc(l->v, ncap * sizeof(*nv));
		if (nv == NULL) {
			l->errors++;
			return;
		}
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = latency_us;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Runs the legitimate load for seconds; prints its RESULT line; *rate and
 * *p99 for the summary.  0, or -1 when the load could not run. */
static int legit_phase(const char *base, const char *token, const char *phase, double seconds,
		       double *rate, int64_t *p99)
{
	struct lat l = {0};
	struct lg_loop loop = {
		.base = base,
		.conns = LEGIT_CONNS,
		.method = "POST",
		.path = "/v1/allocations",
		.token = token,
		.body = alloc_body,
		.done = on_done,
		.ctx = &l,
	};
	int64_t t0 = mono_us();
	loop.until_us = t0 + (int64_t)(seconds * 1e6);
	int rc = lg_run(&loop);
	double elapsed = (double)(mono_us() - t0) / 1e6;
	if (l.n > 0)
		qsort(l.v, l.n, sizeof(*l.v), cmp_i64);
	int64_t p50 = l.n ? l.v[(l.n - 1) * 50 / 100] : 0;
	*p99 = l.n ? l.v[(l.n - 1) * 99 / 100] : 0;
	*rate = elapsed > 0 ? (double)l.n / elapsed : 0;
	printf("%-9s %d clients: %8.0f decisions/s  p50 %6.2f ms  p99 %7.2f ms  (%zu decisions, "
	       "%ld errors%s)\n",
	       phase, LEGIT_CONNS, *rate, (double)p50 / 1000, (double)*p99 / 1000, l.n, l.errors,
	       rc != 0 ? ", a connection failed" : "");
	printf("RESULT phase=%s decisions=%zu errors=%ld seconds=%.3f rate=%.1f p50_us=%lld "
	       "p99_us=%lld\n",
	       phase, l.n, l.errors + (rc != 0), elapsed, *rate, (long long)p50,
	       (long long)*p99);
	fflush(stdout);
	free(l.v);
	return 0;
}

/* --- setup --------------------------------------------------------------------- */

/* The team and GPU type of the legitimate load. */
static int setup(const char *base, const char *token)
{
	static struct lg_conn c = {.fd = -1}; /* 16 kB buffer: not on the stack */
	int ret = -1;
	if (lg_open(&c, base) != 0)
		return -1;
	long st = lg_request(&c, "PUT", "/v1/teams/bench", token,
			     "{\"display_name\":\"Bench\",\"budget\":{\"amount\":\"1000000000.00\","
			     "\"period\":\"yearly\"}}");
	if (st == 201 || st == 200)
		st = lg_request(&c, "PUT", "/v1/gpu-types/bench-gpu", token,
				"{\"name\":\"Bench GPU\",\"price_per_gpu_hour\":\"1.00\","
				"\"capacity\":1000000}");
	if (st == 201 || st == 200)
		ret = 0;
	else
		fprintf(stderr, "bench_slow: setup refused: HTTP %ld\n", st);
	lg_close(&c);
	return ret;
}

int main(int argc, char **argv)
{
	static struct attack a = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: bench_slow BASE_URL ADMIN_TOKEN [SECONDS_PER_PHASE]\n");
		return 2;
	}
	const char *base = argv[1], *token = argv[2];
	double seconds = argc == 4 ? strtod(argv[3], NULL) : 5.0;
	if (!(seconds > 0 && seconds <= 20)) {
		fprintf(stderr, "bench_slow: SECONDS_PER_PHASE must be in (0, 20] (under the "
				"daemon's 30 s request deadline)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (setup(base, token) != 0)
		return 1;
	double r0 = 0, r1 = 0, r2 = 0;
	int64_t p0 = 0, p1 = 0, p2 = 0;
	legit_phase(base, token, "baseline", seconds, &r0, &p0);
	/* Slowloris alone (the connection limits), then with the slow readers
	 * (what a request holds while its answer is sent). */
	for (int phase = 1; phase <= 2; phase++) {
		bool readers = phase == 2;
		attack_start(&a, port_of(base), token, readers);
		struct timespec settle = {1, 0};
		nanosleep(&settle, NULL); /* the slow readers' answers are written and stuck */
		int held0 = slowloris_open(&a);
		if (readers)
			legit_phase(base, token, "attack", seconds, &r2, &p2);
		else
			legit_phase(base, token, "slowloris", seconds, &r1, &p1);
		int held = 0, nreaders = 0;
		attack_stop(&a, &held, &nreaders);
		printf("  held: %d slowloris connections (of %d) at the start of the phase, %d at "
		       "its end; %d slow readers (of %d) at its end\n",
		       held0, SLOWLORIS, held, nreaders, readers ? SLOW_READERS : 0);
		printf("ATTACK phase=%s slowloris_held=%d slowloris_held_end=%d slow_readers=%d\n",
		       readers ? "attack" : "slowloris", held0, held, nreaders);
		struct timespec drain = {3, 0};
		nanosleep(&drain, NULL); /* the daemon reaps the closed connections' threads */
	}
	printf("slowloris alone / baseline: rate %.0f%%, p99 %.1fx\n", r0 > 0 ? 100 * r1 / r0 : 0,
	       p0 > 0 ? (double)p1 / (double)p0 : 0);
	printf("slowloris + slow readers / baseline: rate %.0f%%, p99 %.1fx\n",
	       r0 > 0 ? 100 * r2 / r0 : 0, p0 > 0 ? (double)p2 / (double)p0 : 0);
	return 0;
}
