/*
 * test_slow_clients.c - issue 11, findings 2 and 11, over raw sockets against
 * the real daemon (loopback only; bounded in count and time).
 *
 *   - capacity: one address (127.0.0.2) holds 1,100 slowloris connections
 *     (headers never finished, one byte now and then), another (127.0.0.3)
 *     1,000 idle keep-alive connections; a third (127.0.0.4) must still get
 *     60 of 60 probes answered.  Before: the 1,000-connection limit was
 *     filled by the first address and 0 of 60 were answered.
 *   - deadline: with PLINTH_REQUEST_TIMEOUT=2, a request whose headers (or
 *     body) keep trickling is cut with a 408; before, bytes kept the idle
 *     timeout from ever firing.
 *   - HTTP edge cases: Content-Length with chunked (smuggling), a second
 *     Content-Length, Transfer-Encoding other than chunked, HTTP/1.1 without
 *     Host and %00 in the path each get a 400 problem; errors libmicrohttpd
 *     answers itself (431, bad Content-Length) reach the request log.
 *
 * Figures are printed; nothing is timed beyond generous bounds.
 */
#include "itest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOW_CONNS 1100
#define IDLE_CONNS 1000
#define PROBES 60

static int daemon_port(const struct itest_daemon *d)
{
	const char *colon = strrchr(d->base_url, ':');
	return colon ? atoi(colon + 1) : 0;
}

/* A non-blocking TCP socket from source address src to 127.0.0.1:port
 * (connect in progress or done); -1 on failure. */
static int connect_from(const char *src, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET};
	if (inet_pton(AF_INET, src, &a.sin_addr) != 1 || bind(fd, (void *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (void *)&to, sizeof(to)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends all of s on a non-blocking socket, waiting up to 5 s. 0 or -1. */
static int send_all(int fd, const char *s, size_t n)
{
	int64_t until = itest_now_ms() + 5000;
	while (n > 0 && itest_now_ms() < until) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w > 0) {
			s += w;
			n -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINPROGRESS || errno == ENOTCONN)) {
			struct pollfd p = {fd, POLLOUT, 0};
			(void)poll(&p, 1, 50);
		} else {
			return -1;
		}
	}
	return n == 0 ? 0 : -1;
}

/* Reads until the peer closes, len-1 bytes, timeout_ms or (when stop is not
 * NULL) until the bytes read hold stop; NUL-terminates.  Returns bytes read;
 * *closed says whether the peer closed (EOF or reset). */
static size_t read_until(int fd, char *buf, size_t len, int timeout_ms, const char *stop,
			 bool *closed)
{
	size_t got = 0;
	int64_t until = itest_now_ms() + timeout_ms;
	*closed = false;
	while (got + 1 < len) {
		int64_t left = until - itest_now_ms();
		if (left <= 0)
			break;
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t r = recv(fd, buf + got, len - 1 - got, 0);
		if (r > 0) {
			got += (size_t)r;
			buf[got] = '\0';
			if (stop != NULL && strstr(buf, stop) != NULL)
				break;
		} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			*closed = true;
			break;
		}
	}
	buf[got] = '\0';
	return got;
}

static size_t read_until_close(int fd, char *buf, size_t len, int timeout_ms, bool *closed)
{
	return read_until(fd, buf, len, timeout_ms, NULL, closed);
}

/* Is the connection still open (no EOF or reset pending)?  Drains answers. */
static bool still_open(int fd)
{
	char b[4096];
	for (;;) {
		ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r > 0)
			continue;
		return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

/* One request on a fresh connection from src; the answer's status or 0. */
static long probe(const char *src, int port, const char *req)
{
	static char buf[65536];
	int fd = connect_from(src, port);
	if (fd < 0)
		return 0;
	long status = 0;
	bool closed = false;
	if (send_all(fd, req, strlen(req)) == 0) {
		(void)read_until_close(fd, buf, sizeof(buf), 5000, &closed);
		if (strncmp(buf, "HTTP/1.1 ", 9) == 0)
			status = strtol(buf + 9, NULL, 10);
	}
	close(fd);
	return status;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* One more byte of a header that never ends, on each slowloris connection. */
static void drip(const int *fds, int n)
{
	for (int k = 0; k < n; k++)
		if (fds[k] >= 0)
			(void)send(fds[k], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void test_capacity_under_slowloris(void **state)
{
	struct itest_daemon *d = *state;
	int port = daemon_port(d);
	static int slow[SLOW_CONNS], idle[IDLE_CONNS];
	static const char slow_head[] = "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ";
	static const char idle_req[] = "GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n";

	raise_nofile();
	int nslow = 0;
	for (int i = 0; i < SLOW_CONNS; i++) {
		slow[i] = connect_from("127.0.0.2", port);
		if (slow[i] >= 0 && send_all(slow[i], slow_head, sizeof(slow_head) - 1) == 0)
			nslow++;
	}
	for (int i = 0; i < IDLE_CONNS; i++) {
		idle[i] = connect_from("127.0.0.3", port);
		if (idle[i] >= 0 && send_all(idle[i], idle_req, sizeof(idle_req) - 1) != 0) {
			close(idle[i]);
			idle[i] = -1;
		}
	}
	/* The keep-alive connections each get their answer (bounded wait,
	 * shorter than the daemon's 30 s idle timeout), while the slowloris
	 * connections trickle a byte a second. */
	int answered_idle = 0;
	int64_t until = itest_now_ms() + 15000, next_drip = 0;
	static bool got[IDLE_CONNS];
	while (answered_idle < IDLE_CONNS && itest_now_ms() < until) {
		if (itest_now_ms() >= next_drip) {
			drip(slow, SLOW_CONNS);
			next_drip = itest_now_ms() + 1000;
		}
		for (int i = 0; i < IDLE_CONNS; i++) {
			if (got[i] || idle[i] < 0)
				continue;
			char b[1024];
			ssize_t r = recv(idle[i], b, sizeof(b), MSG_DONTWAIT);
			if (r > 0 && strncmp(b, "HTTP/1.1 200", 12) == 0) {
				got[i] = true;
				answered_idle++;
			} else if (r == 0 || (r < 0 && errno != EAGAIN)) {
				close(idle[i]);
				idle[i] = -1;
			}
		}
		itest_sleep_ms(50);
	}
	/* Legitimate probes from a third address while both are held; the
	 * slowloris connections trickle a byte between probes. */
	int ok = 0;
	const char *probe_reqs[] = {
		"GET /healthz HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n",
		"GET /readyz HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n",
		NULL,
	};
	char *teams_req = itest_strf(d, "GET /v1/teams HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer %s"
					"\r\nConnection: close\r\n\r\n", d->admin);
	probe_reqs[2] = teams_req;
	for (int i = 0; i < PROBES; i++) {
		long st = probe("127.0.0.4", port, probe_reqs[i % 3]);
		if (st == 200)
			ok++;
		else
			fprintf(stderr, "probe %d (%s): status %ld\n", i, i % 3 == 2 ? "/v1/teams" :
				i % 3 ? "/readyz" : "/healthz", st);
		if (i % 10 == 0)
			drip(slow, SLOW_CONNS);
	}
	int held_slow = 0, held_idle = 0;
	for (int i = 0; i < SLOW_CONNS; i++)
		held_slow += slow[i] >= 0 && still_open(slow[i]);
	for (int i = 0; i < IDLE_CONNS; i++)
		held_idle += idle[i] >= 0 && still_open(idle[i]);
	printf("capacity: %d/%d legitimate probes answered while %d slowloris connections "
	       "(of %d opened from 127.0.0.2) and %d idle keep-alive ones (%d answered, of %d "
	       "from 127.0.0.3) were held\n",
	       ok, PROBES, held_slow, nslow, held_idle, answered_idle, IDLE_CONNS);
	fflush(stdout);
	for (int i = 0; i < SLOW_CONNS; i++)
		if (slow[i] >= 0)
			close(slow[i]);
	for (int i = 0; i < IDLE_CONNS; i++)
		if (idle[i] >= 0)
			close(idle[i]);
	assert_int_equal(ok, PROBES);
	assert_int_equal(answered_idle, IDLE_CONNS);
}

/* Trickles `head` then one byte of `drip` every 250 ms for up to 12 s;
 * returns how long the connection lived (ms) and the answer in buf. */
static int64_t trickle(int port, const char *head, char *buf, size_t len, bool *closed)
{
	int fd = connect_from("127.0.0.1", port);
	assert_true(fd >= 0);
	int64_t t0 = itest_now_ms();
	assert_int_equal(send_all(fd, head, strlen(head)), 0);
	*closed = false;
	buf[0] = '\0';
	while (itest_now_ms() - t0 < 12000) {
		(void)read_until_close(fd, buf, len, 250, closed);
		if (*closed || buf[0] != '\0')
			break;
		if (send(fd, "x", 1, MSG_NOSIGNAL) != 1) {
			*closed = true;
			break;
		}
	}
	if (!*closed && buf[0] != '\0')
		(void)read_until_close(fd, buf + strlen(buf), len - strlen(buf), 2000, closed);
	close(fd);
	return itest_now_ms() - t0;
}

static int setup_deadline(void **state)
{
	setenv("PLINTH_REQUEST_TIMEOUT", "2", 1);
	int rc = itest_setup_daemon(state);
	unsetenv("PLINTH_REQUEST_TIMEOUT");
	return rc;
}

static void test_request_deadline(void **state)
{
	struct itest_daemon *d = *state;
	int port = daemon_port(d);
	char buf[4096];
	bool closed;

	/* Headers that never end. */
	int64_t ms = trickle(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", buf, sizeof(buf),
			     &closed);
	printf("deadline 2 s: trickled headers cut after %.1f s: %.*s\n", (double)ms / 1000,
	       (int)strcspn(buf, "\r\n"), buf);
	assert_true(closed);
	assert_true(ms >= 1000);
	assert_true(strncmp(buf, "HTTP/1.1 408", 12) == 0);
	assert_true(strstr(buf, "application/problem+json") != NULL);
	const char *cl = strstr(buf, "Content-Length: ");
	const char *body = strstr(buf, "\r\n\r\n");
	assert_true(cl != NULL && body != NULL);
	assert_int_equal(strtoul(cl + 16, NULL, 10), strlen(body + 4)); /* the whole body, no more */

	/* A body that never ends (an authorised request: anything else is
	 * refused at the headers, before any body byte is read). */
	char head[512];
	snprintf(head, sizeof(head),
		 "PUT /v1/teams/t HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
		 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", d->admin);
	ms = trickle(port, head, buf, sizeof(buf), &closed);
	printf("deadline 2 s: trickled body cut after %.1f s: %.*s\n", (double)ms / 1000,
	       (int)strcspn(buf, "\r\n"), buf);
	assert_true(closed);
	assert_true(strncmp(buf, "HTTP/1.1 408", 12) == 0);

	/* A keep-alive connection: each request has its own deadline. */
	int fd = connect_from("127.0.0.1", port);
	assert_true(fd >= 0);
	for (int i = 0; i < 2; i++) {
		const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
		assert_int_equal(send_all(fd, req, strlen(req)), 0);
		(void)read_until(fd, buf, sizeof(buf), 1000, "\"ok\"}", &closed);
		assert_true(strncmp(buf, "HTTP/1.1 200", 12) == 0);
		itest_sleep_ms(1200);
	}
	close(fd);

	/* The cut requests are in the request log. */
	itest_sleep_ms(300);
	FILE *f = fopen(d->log, "r");
	assert_non_null(f);
	int n408 = 0;
	char line[4096];
	while (fgets(line, sizeof(line), f) != NULL)
		n408 += strstr(line, "\"msg\":\"request\"") && strstr(line, "\"status\":408");
	fclose(f);
	assert_int_equal(n408, 2);
}

/* Sends raw bytes on a fresh connection; the whole exchange until close. */
static void exchange(int port, const char *req, char *buf, size_t len, bool *closed)
{
	int fd = connect_from("127.0.0.1", port);
	assert_true(fd >= 0);
	assert_int_equal(send_all(fd, req, strlen(req)), 0);
	(void)read_until_close(fd, buf, len, 3000, closed);
	close(fd);
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void test_http_edge_cases(void **state)
{
	struct itest_daemon *d = *state;
	int port = daemon_port(d);
	static char buf[65536];
	bool closed;
	itest_put_team(d, "alpha", "100.00");

	struct {
		const char *name, *req;
	} cases[] = {
		{"Content-Length with chunked, a pipelined second request",
		 "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked"
		 "\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"two Content-Length", "POST /v1/teams/beta HTTP/1.1\r\nHost: x\r\nContent-Length: 2"
		 "\r\nContent-Length: 40\r\n\r\n{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"Transfer-Encoding gzip", "POST /v1/teams/beta HTTP/1.1\r\nHost: x\r\n"
		 "Transfer-Encoding: gzip\r\n\r\n"},
		{"HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n"},
		{"%00 in the path", NULL},
	};
	cases[4].req = itest_strf(d, "GET /v1/teams/alpha%%00 HTTP/1.1\r\nHost: x\r\n"
				     "Authorization: Bearer %s\r\n\r\n", d->admin);
	int failed = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		exchange(port, cases[i].req, buf, sizeof(buf), &closed);
		bool ok = strncmp(buf, "HTTP/1.1 400", 12) == 0 &&
			  strstr(buf, "application/problem+json") != NULL &&
			  count_of(buf, "HTTP/1.1 ") == 1 && closed;
		printf("%-55s %s: %.*s\n", cases[i].name, ok ? "refused, 400 problem, closed" : "FAIL",
		       (int)strcspn(buf, "\r\n"), buf);
		failed += !ok;
	}
	/* Errors that libmicrohttpd answers itself are logged with their status. */
	char *big = malloc(40000);
	assert_non_null(big);
	memset(big, 'a', 39999);
	big[39999] = '\0';
	exchange(port, itest_strf(d, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big),
		 buf, sizeof(buf), &closed);
	free(big);
	printf("40 kB header (libmicrohttpd's own HTML answer): %.*s\n", (int)strcspn(buf, "\r\n"),
	       buf);
	exchange(port, "POST /v1/teams/gamma HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", buf,
		 sizeof(buf), &closed);
	printf("Content-Length: -1 (libmicrohttpd's own HTML answer): %.*s (%d status lines)\n",
	       (int)strcspn(buf, "\r\n"), buf, count_of(buf, "HTTP/1.1 "));
	itest_sleep_ms(300);
	FILE *f = fopen(d->log, "r");
	assert_non_null(f);
	int n431 = 0, nbadlen = 0;
	char line[4096];
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "\"msg\":\"request\"") == NULL)
			continue;
		n431 += strstr(line, "\"status\":431") != NULL;
		nbadlen += strstr(line, "\"path\":\"/v1/teams/gamma\"") && strstr(line, "\"status\":400");
	}
	fclose(f);
	printf("request log: %d line(s) with 431, %d with 400 for /v1/teams/gamma (Content-Length: -1)\n", n431, nbadlen);
	assert_int_equal(failed, 0);
	assert_int_equal(n431, 1);
	assert_true(nbadlen >= 1);
	/* Nothing was created by the refused requests. */
	struct itest_resp *r = itest_req(d, "GET", "/v1/teams/beta", d->admin, NULL);
	ITEST_STATUS(r, 404);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_capacity_under_slowloris, itest_setup_daemon,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_request_deadline, setup_deadline,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_http_edge_cases, itest_setup_daemon,
						itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-slow-clients", tests, NULL, NULL);
}
