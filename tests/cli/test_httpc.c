/*
 * test_httpc.c - the HTTP client (src/net/httpc.c) against a tiny canned
 * server on a random loopback port: bodies, headers, the body cap, timeouts
 * and an unreachable peer.  Prints TAP.  Must never touch the network beyond
 * 127.0.0.1.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "net/httpc.h"

static int failures, count;

static void check(int cond, const char *what)
{
	count++;
	printf("%s %d - %s\n", cond ? "ok" : "not ok", count, what);
	if (!cond)
		failures++;
}

/* What the server saw of the last request, for assertions. */
static char last_request[8192];

/* The canned answer for the next connection; NULL = accept and stay silent. */
static const char *answer;
static size_t answer_len;
static int listen_fd = -1;

static void *server_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		size_t got = 0;
		if (fd < 0)
			return NULL;
		/* Read the head and (for our small test bodies) the body. */
		memset(last_request, 0, sizeof last_request);
		for (;;) {
			ssize_t n = read(fd, last_request + got, sizeof last_request - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			char *end = strstr(last_request, "\r\n\r\n");
			if (end != NULL) {
				const char *cl = strcasestr(last_request, "Content-Length:");
				size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
				if (got >= (size_t)(end + 4 - last_request) + want)
					break;
			}
		}
		if (answer != NULL) {
			size_t off = 0;
			while (off < answer_len) {
				ssize_t n = write(fd, answer + off, answer_len - off);
				if (n <= 0)
					break;
				off += (size_t)n;
			}
		} else {
			sleep(2); /* longer than the client's timeout */
		}
		close(fd);
	}
}

int main(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t slen = sizeof sa;
	char url[128], detail[HTTPC_DETAIL_LEN];
	struct httpc_response r = { 0 };
	pthread_t th;
	char *big = NULL;
	int rc;

	/* The client hangs up on over-long bodies; the server must survive that. */
	signal(SIGPIPE, SIG_IGN);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(listen_fd, 8) != 0 || getsockname(listen_fd, (struct sockaddr *)&sa, &slen) != 0) {
		printf("Bail out! cannot listen\n");
		return 1;
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/things?x=1", ntohs(sa.sin_port));
	if (pthread_create(&th, NULL, server_main, NULL) != 0) {
		printf("Bail out! cannot start the server thread\n");
		return 1;
	}

	/* 1. A JSON answer with a status, a body and a content type. */
	answer = "HTTP/1.1 422 Unprocessable Content\r\nContent-Type: application/problem+json\r\n"
		 "Content-Length: 13\r\nConnection: close\r\n\r\n{\"title\":\"x\"}";
	answer_len = strlen(answer);
	{
		const char *const hdrs[] = { "Authorization: Bearer abc", "Content-Type: application/json",
			NULL };
		rc = httpc_request("POST", url, hdrs, "{\"a\":1}", 7, 5000, 1024, &r, detail);
	}
	check(rc == 0, "POST returns 0 for a 4xx answer");
	check(r.status == 422, "status is 422");
	check(r.len == 13 && r.body != NULL && strcmp(r.body, "{\"title\":\"x\"}") == 0,
		"body is complete and NUL-terminated");
	check(strcmp(r.content_type, "application/problem+json") == 0, "content type is kept");
	check(strncmp(last_request, "POST /v1/things?x=1 HTTP/1.1\r\n", 30) == 0,
		"request line has method, path and query");
	check(strstr(last_request, "Authorization: Bearer abc\r\n") != NULL, "headers are sent");
	check(strstr(last_request, "\r\n\r\n{\"a\":1}") != NULL, "body is sent");
	httpc_response_done(&r);
	check(r.body == NULL && r.len == 0, "response_done zeroes the response");

	/* 2. GET, and a PUT with an empty body. */
	answer = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
	answer_len = strlen(answer);
	rc = httpc_request("GET", url, NULL, NULL, 0, 5000, 1024, &r, detail);
	check(rc == 0 && r.status == 204 && r.len == 0 && r.body != NULL && r.body[0] == '\0',
		"GET 204 gives an empty body");
	check(strncmp(last_request, "GET /v1/things?x=1 ", 19) == 0, "GET is a GET");
	httpc_response_done(&r);
	rc = httpc_request("DELETE", url, NULL, NULL, 0, 5000, 1024, &r, detail);
	check(rc == 0 && strncmp(last_request, "DELETE /v1/things", 17) == 0, "DELETE is a DELETE");
	httpc_response_done(&r);

	/* 3. A body over the cap is refused, and *out is untouched. */
	big = malloc(5000);
	if (big == NULL)
		return 1;
	{
		int n = snprintf(big, 5000, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n"
			"Connection: close\r\n\r\n");
		memset(big + n, 'a', 2000);
		answer = big;
		answer_len = (size_t)n + 2000;
	}
	r.status = 777;
	rc = httpc_request("GET", url, NULL, NULL, 0, 5000, 1000, &r, detail);
	check(rc == ERR_TOO_LARGE, "a body over max_body is ERR_TOO_LARGE");
	check(r.status == 777 && r.body == NULL, "*out untouched on failure");
	check(strstr(detail, "larger") != NULL, "detail says too large");
	/* The same body without Content-Length (read until close) is capped too. */
	{
		int n = snprintf(big, 5000, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
		memset(big + n, 'a', 2000);
		answer_len = (size_t)n + 2000;
	}
	rc = httpc_request("GET", url, NULL, NULL, 0, 5000, 1000, &r, detail);
	check(rc == ERR_TOO_LARGE, "a streamed body over max_body is ERR_TOO_LARGE");
	rc = httpc_request("GET", url, NULL, NULL, 0, 5000, 4096, &r, detail);
	check(rc == 0 && r.len == 2000, "the same body under a larger cap is read whole");
	httpc_response_done(&r);

	/* 4. A silent server times out. */
	answer = NULL;
	rc = httpc_request("GET", url, NULL, NULL, 0, 300, 1024, &r, detail);
	check(rc == ERR_UNAVAILABLE, "a silent server is ERR_UNAVAILABLE after the timeout");
	check(strstr(detail, "in time") != NULL, "detail says it timed out");

	/* 5. Nobody listening. */
	rc = httpc_request("GET", "http://127.0.0.1:1/healthz", NULL, NULL, 0, 2000, 1024, &r, detail);
	check(rc == ERR_UNAVAILABLE, "connection refused is ERR_UNAVAILABLE");
	check(strcmp(detail, "cannot reach http://127.0.0.1:1/healthz: Connection refused") == 0,
		"detail names the url and the reason");

	/* 6. Only http and https. */
	rc = httpc_request("GET", "file:///etc/passwd", NULL, NULL, 0, 2000, 1024, &r, detail);
	check(rc == ERR_INVALID, "file:// is refused");
	rc = httpc_request("GET", NULL, NULL, NULL, 0, 2000, 1024, &r, detail);
	check(rc == ERR_INVALID, "a NULL url is refused");

	free(big);
	printf("1..%d\n", count);
	/* The server thread is parked in accept(); exiting ends it. */
	return failures ? 1 : 0;
}
