/* loadgen.c - see loadgen.h. */
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
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

/* Reads one response; its status, or -1. */
static long read_response(struct lg_conn *c)
{
	size_t have = 0, head = 0, need = 0;
	long status = -1;

	for (;;) {
		ssize_t r = recv(c->fd, c->buf + have, sizeof(c->buf) - 1 - have, 0);
		char *end;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		have += (size_t)r;
		c->buf[have] = '\0';
		if (head == 0 && (end = strstr(c->buf, "\r\n\r\n")) != NULL) {
			const char *cl = header(c->buf, "\r\nContent-Length:");

			head = (size_t)(end - c->buf) + 4;
			if (sscanf(c->buf, "HTTP/1.%*d %ld", &status) != 1)
				return -1;
			need = head + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
			if (need > sizeof(c->buf) - 1)
				return -1; /* bigger than any answer we measure */
		}
		if (head != 0 && have >= need)
			return have == need ? status : -1; /* no pipelining: nothing extra */
		if (have == sizeof(c->buf) - 1)
			return -1;
	}
}

long lg_request(struct lg_conn *c, const char *method, const char *path, const char *token,
		const char *body)
{
	char req[4096];
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 method, path, c->host, c->port, token, blen, body ? body : "");

	if (n < 0 || (size_t)n >= sizeof(req))
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
