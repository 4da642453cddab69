/* loadgen.c - see loadgen.h. */
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int connect_fd(const struct lg_conn *c)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)c->port)};
	int fd, one = 1;

	if (inet_pton(AF_INET, c->host, &a.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int lg_open(struct lg_conn *c, const char *base)
{
	const char *p = strstr(base, "://");
	const char *colon;
	size_t n;

	c->fd = -1;
	p = p ? p + 3 : base;
	colon = strrchr(p, ':');
	if (!colon || (n = (size_t)(colon - p)) >= sizeof(c->host))
		return -1;
	memcpy(c->host, p, n);
	c->host[n] = '\0';
	c->port = atoi(colon + 1);
	c->fd = connect_fd(c);
	return c->fd >= 0 ? 0 : -1;
}

void lg_close(struct lg_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The header line starting with name (case-insensitive), or NULL. */
static const char *header(const char *buf, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = buf; (p = strstr(p, "\r\n")) != NULL; p += 2)
		if (strncasecmp(p, name, n) == 0)
			return p;
	return NULL;
}

/* Whether buf[0..have) holds one whole response: 1 (with *status), 0 when
 * more must be read, -1 when it can never be one we read. */
static int response_complete(const char *buf, size_t have, size_t cap, long *status)
{
	const char *end = strstr(buf, "\r\n\r\n");
	const char *cl;
	size_t head, need;

	if (!end)
		return have >= cap - 1 ? -1 : 0;
	cl = header(buf, "\r\nContent-Length:");
	head = (size_t)(end - buf) + 4;
	if (sscanf(buf, "HTTP/1.%*d %ld", status) != 1)
		return -1;
	need = head + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
	if (need > cap - 1)
		return -1; /* bigger than any answer we measure */
	if (have < need)
		return 0;
	return have == need ? 1 : -1; /* no pipelining: nothing extra */
}

/* Reads one response; its status, or -1. */
static long read_response(struct lg_conn *c)
{
	size_t have = 0;
	long status = -1;

	for (;;) {
		ssize_t r = recv(c->fd, c->buf + have, sizeof(c->buf) - 1 - have, 0);
		int done;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		have += (size_t)r;
		c->buf[have] = '\0';
		done = response_complete(c->buf, have, sizeof(c->buf), &status);
		if (done != 0)
			return done > 0 ? status : -1;
	}
}

/* The request text; its length, or -1 when it does not fit. */
static int format_request(char *out, size_t len, const struct lg_conn *c, const char *method,
			  const char *path, const char *token, const char *body)
{
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(out, len,
			 "%s %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 method, path, c->host, c->port, token, blen, body ? body : "");

	return n < 0 || (size_t)n >= len ? -1 : n;
}

long lg_request(struct lg_conn *c, const char *method, const char *path, const char *token,
		const char *body)
{
	char req[4096];
	int n = format_request(req, sizeof(req), c, method, path, token, body);

	if (n < 0)
		return -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		long st;

		if (c->fd < 0 && (c->fd = connect_fd(c)) < 0)
			return -1;
		if (send_all(c->fd, req, (size_t)n) == 0 && (st = read_response(c)) > 0)
			return st;
		lg_close(c); /* the server closed a kept-alive connection: once more */
	}
	return -1;
}

/* ---- many connections, one thread ------------------------------------- */

struct lg_slot {
	struct lg_conn conn;
	char req[4096];
	size_t req_len, sent, have;
	int64_t t0;
	int index; /* requests sent on this connection */
};

static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Starts the next request of slot i; -1 on failure. */
static int slot_send(const struct lg_loop *l, struct lg_slot *sl, int i)
{
	const char *body = l->body ? l->body(l->ctx, i, sl->index++) : NULL;
	int n = format_request(sl->req, sizeof(sl->req), &sl->conn, l->method, l->path, l->token,
			       body);

	if (n < 0)
		return -1;
	sl->req_len = (size_t)n;
	sl->sent = sl->have = 0;
	sl->t0 = mono_us();
	while (sl->sent < sl->req_len) {
		ssize_t w = send(sl->conn.fd, sl->req + sl->sent, sl->req_len - sl->sent, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1; /* a request is far smaller than a socket buffer */
		sl->sent += (size_t)w;
	}
	return 0;
}

int lg_run(const struct lg_loop *l)
{
	struct lg_slot *slots = calloc((size_t)l->conns, sizeof(*slots));
	struct epoll_event ev, evs[64];
	int ep = -1, rc = -1, open = 0;

	if (!slots)
		return -1;
	for (int i = 0; i < l->conns; i++)
		slots[i].conn.fd = -1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		goto out;
	for (int i = 0; i < l->conns; i++) {
		if (lg_open(&slots[i].conn, l->base) != 0)
			goto out;
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, slots[i].conn.fd, &ev) != 0 ||
		    slot_send(l, &slots[i], i) != 0)
			goto out;
		open++;
	}
	while (open > 0) {
		int n = epoll_wait(ep, evs, 64, 1000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		for (int k = 0; k < n; k++) {
			int i = (int)evs[k].data.u32;
			struct lg_slot *sl = &slots[i];
			ssize_t r = recv(sl->conn.fd, sl->conn.buf + sl->have,
					 sizeof(sl->conn.buf) - 1 - sl->have, MSG_DONTWAIT);
			long status = -1;
			int done;

			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (r <= 0)
				goto out; /* the daemon closed a connection mid-run */
			sl->have += (size_t)r;
			sl->conn.buf[sl->have] = '\0';
			done = response_complete(sl->conn.buf, sl->have, sizeof(sl->conn.buf), &status);
			if (done == 0)
				continue;
			l->done(l->ctx, done > 0 ? status : -1, mono_us() - sl->t0);
			if (done < 0)
				goto out;
			if (mono_us() >= l->until_us) {
				lg_close(&sl->conn); /* closing takes it out of the epoll set */
				open--;
			} else if (slot_send(l, sl, i) != 0) {
				goto out;
			}
		}
	}
	rc = 0;
out:
	for (int i = 0; i < l->conns; i++)
		lg_close(&slots[i].conn);
	if (ep >= 0)
		close(ep);
	free(slots);
	return rc;
}
