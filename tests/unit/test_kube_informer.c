/*
 * test_kube_informer.c - list-then-watch (src/controller/kube.c) against a
 * canned API server on a random loopback port: the list's resourceVersion
 * starts the watch, events split across reads, bookmarks move the version,
 * an ERROR event with code 410 and an HTTP 410 both list again, a refused
 * watch (500) backs off and lists again.  Never leaves 127.0.0.1.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/kube.h"

#define HEAD_JSON "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
#define OBJ(name, rv) \
	"{\"metadata\":{\"name\":\"" name "\",\"uid\":\"u-" name "\",\"resourceVersion\":\"" rv "\"}}"

/* The canned answers, one per connection, in order; a "|" splits a write
 * in two with a pause between (an event spanning two reads). */
static const char *const script[] = {
	/* 0: the first list */
	HEAD_JSON "{\"kind\":\"JobList\",\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[" OBJ("a", "9") "]}",
	/* 1: a watch: an event, a bookmark, an expired-version ERROR */
	HEAD_JSON "{\"type\":\"ADDED\",\"object\":" OBJ("b", "11") "}\n"
		  "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"12\"}}}\n"
		  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"message\":\"too old resource version\"}}\n",
	/* 2: the list again (paginated: two pages) */
	HEAD_JSON "{\"metadata\":{\"resourceVersion\":\"19\",\"continue\":\"tok/1\"},\"items\":[" OBJ("a", "9") "]}",
	HEAD_JSON "{\"metadata\":{\"resourceVersion\":\"20\"},\"items\":[" OBJ("c", "15") "]}",
	/* 4: the watch answers 410 Gone itself */
	"HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
	"{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}",
	/* 5: list */
	HEAD_JSON "{\"metadata\":{\"resourceVersion\":\"30\"},\"items\":[]}",
	/* 6: a watch whose event spans two reads, then a clean end */
	HEAD_JSON "{\"type\":\"MODIFIED\",\"obj|ect\":" OBJ("c", "31") "}\n"
		  "{\"type\":\"DELETED\",\"object\":" OBJ("c", "32") "}\n",
	/* 7: the watch is renewed from 32, and refused */
	"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
	"{\"kind\":\"Status\",\"code\":500,\"message\":\"etcd unavailable\"}",
	/* 8: list (the test stops here) */
	HEAD_JSON "{\"metadata\":{\"resourceVersion\":\"40\"},\"items\":[]}",
};
#define NSCRIPT (sizeof script / sizeof script[0])

static int listen_fd = -1;
static char requests[NSCRIPT + 4][2048]; /* what the server saw, head only */
static int nrequests;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void *server_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		char req[2048] = "";
		size_t got = 0;
		int i;

		if (fd < 0)
			return NULL;
		while (got < sizeof req - 1 && strstr(req, "\r\n\r\n") == NULL) {
			ssize_t n = read(fd, req + got, sizeof req - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		pthread_mutex_lock(&mu);
		i = nrequests;
		if (i < (int)(sizeof requests / sizeof requests[0]))
			snprintf(requests[i], sizeof requests[i], "%s", req);
		nrequests++;
		pthread_mutex_unlock(&mu);
		if (i < (int)NSCRIPT) {
			const char *s = script[i], *bar = strchr(s, '|');
			if (bar != NULL) {
				struct timespec ts = {0, 100 * 1000000L};
				write_all(fd, s, (size_t)(bar - s));
				nanosleep(&ts, NULL);
				s = bar + 1;
			}
			write_all(fd, s, strlen(s));
		} else {
			write_all(fd, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n", 55);
		}
		close(fd);
	}
}

static volatile sig_atomic_t stop;
static char events[64][64];
static int nevents, lists_ended;

static void on_event(void *ctx, enum kube_event ev, json_t *obj)
{
	static const char *const names[] = {"BEGIN", "ADDED", "MODIFIED", "DELETED", "END"};
	const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));

	(void)ctx;
	if (nevents < 64)
		snprintf(events[nevents++], sizeof events[0], "%s%s%s", names[ev], name ? " " : "",
			name ? name : "");
	if (ev == KUBE_EV_LIST_END && ++lists_ended == 4)
		stop = 1;
}

static void list_then_watch(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t slen = sizeof sa;
	struct kube_config cfg = {0};
	char server[64];
	pthread_t th;
	static const char *const want[] = {
		"BEGIN", "ADDED a", "END",              /* list 10 */
		"ADDED b",                              /* watch from 10 */
		"BEGIN", "ADDED a", "ADDED c", "END",   /* ERROR 410: list again, two pages */
		"BEGIN", "END",                         /* HTTP 410: list again */
		"MODIFIED c", "DELETED c",              /* watch from 30 */
		"BEGIN", "END",                         /* 500: back off, list again */
	};

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(listen_fd >= 0);
	assert_int_equal(bind(listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(listen_fd, 8), 0);
	assert_int_equal(getsockname(listen_fd, (struct sockaddr *)&sa, &slen), 0);
	snprintf(server, sizeof server, "http://127.0.0.1:%d", ntohs(sa.sin_port));
	assert_int_equal(pthread_create(&th, NULL, server_main, NULL), 0);

	cfg.server = server;
	cfg.token = "tok-123";
	struct kube_informer inf = {.cfg = &cfg, .path = "/apis/batch/v1/jobs",
		.label_selector = "plinth.io/allocation-id", .watch_timeout_s = 60,
		.on_event = on_event, .stop = &stop};
	assert_int_equal(kube_informer_run(&inf), 0);

	assert_int_equal(nevents, (int)(sizeof want / sizeof want[0]));
	for (int i = 0; i < nevents; i++)
		assert_string_equal(events[i], want[i]);
	assert_int_equal(nrequests, (int)NSCRIPT);
	/* The first list: the selector, a page size, the token. */
	assert_non_null(strstr(requests[0],
		"GET /apis/batch/v1/jobs?labelSelector=plinth.io%2Fallocation-id&limit=500 HTTP/1.1"));
	assert_non_null(strstr(requests[0], "Authorization: Bearer tok-123\r\n"));
	/* The watch starts at the list's version, with bookmarks. */
	assert_non_null(strstr(requests[1], "watch=1&allowWatchBookmarks=true&labelSelector="
		"plinth.io%2Fallocation-id&resourceVersion=10&timeoutSeconds=60 "));
	assert_non_null(strstr(requests[1], "Authorization: Bearer tok-123\r\n"));
	assert_null(strstr(requests[2], "watch=1"));
	assert_non_null(strstr(requests[3], "&continue=tok%2F1 "));
	assert_non_null(strstr(requests[4], "resourceVersion=20&"));
	assert_null(strstr(requests[5], "watch=1"));
	assert_non_null(strstr(requests[6], "resourceVersion=30&"));
	/* A watch that ended cleanly resumes from the last event's version. */
	assert_non_null(strstr(requests[7], "resourceVersion=32&"));
	assert_null(strstr(requests[8], "watch=1"));
	shutdown(listen_fd, SHUT_RDWR);
	close(listen_fd);
	pthread_join(th, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(list_then_watch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
