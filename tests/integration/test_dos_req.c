/*
 * test_dos_req.c - hostile clients against the real daemon (issue 11,
 * findings 3 and 4): slow readers and a hanging MLflow must not pin the
 * database pool, a refused request must be answered before its body is read,
 * error answers and parse costs must stay bounded, and the daemon's peak RSS
 * under 16 concurrent hostile 1 MiB bodies must stay under 200 MB.
 *
 * Loopback only; every socket operation and every wait has a deadline, every
 * loop a bound.  The figures measured are printed ("# dos: ...").  Raw
 * sockets are used where a client must misbehave (never read, never send the
 * body); threads never call cmocka assertions, the main thread judges.
 */
#include "itest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "itest_pg.h"

#define BOUND_MS 10000           /* a deadline for waits and misbehaving sockets */
#define PROMPT_MS 7000           /* a prompt answer: well below MLflow's 10 s and MHD's 30 s */
#define NSLOW 4                  /* slow readers: more than the pool of --threads 1 (3) */
#define NALLOC 150               /* allocations behind the large list page */
#define PIPE_BYTES (8 << 20)     /* pipelined answers per slow reader: over any socket buffer */
#define NJOBS 3                  /* job submissions hanging on MLflow: the whole pool */
#define NHOSTILE 16              /* concurrent hostile 1 MiB bodies */
#define HOSTILE_BODY (1024 * 1024)
#define RSS_LIMIT_KB (200 * 1024)

/* ---- raw HTTP over loopback ---- */

static int daemon_port(const struct itest_daemon *d)
{
	const char *colon = strrchr(d->base_url, ':');
	return colon ? atoi(colon + 1) : 0;
}

/* A connected loopback socket, or -1.  rcvbuf > 0 shrinks the receive buffer
 * (before connect, so the advertised window stays small). */
static int tcp_connect(int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0) {
		close(fd);
		return -1;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends all of p within the deadline; 0, or -1 (timeout, reset, closed). */
static int send_all(int fd, const char *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int64_t left = deadline - itest_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct raw {
	long status;  /* from the status line; 0 when none arrived */
	bool eof;     /* the daemon closed the connection */
	size_t len;   /* bytes received */
	char head[2048]; /* the first bytes (NUL-terminated) */
	int64_t ms;   /* from the request sent to the end of the reading */
};

/* Reads until EOF, the deadline, or (with want > 0) want bytes. */
static void read_until(int fd, int64_t deadline, size_t want, struct raw *out)
{
	char buf[65536];
	for (int i = 0; i < 1000000; i++) {
		if (want > 0 && out->len >= want)
			break;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - itest_now_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			out->eof = true;
			break;
		}
		size_t have = strlen(out->head), room = sizeof(out->head) - 1 - have;
		size_t take = (size_t)r < room ? (size_t)r : room;
		memcpy(out->head + have, buf, take);
		out->head[have + take] = '\0';
		out->len += (size_t)r;
	}
	if (strncmp(out->head, "HTTP/1.1 ", 9) == 0)
		out->status = strtol(out->head + 9, NULL, 10);
}

/* One request (the text must ask for Connection: close) read to EOF. */
static void raw_request(int port, const char *text, size_t len, int timeout_ms, struct raw *out)
{
	memset(out, 0, sizeof(*out));
	int64_t t0 = itest_now_ms(), deadline = t0 + timeout_ms;
	int fd = tcp_connect(port, 0);
	if (fd < 0)
		return;
	if (send_all(fd, text, len, deadline) == 0)
		read_until(fd, deadline, 0, out);
	out->ms = itest_now_ms() - t0;
	close(fd);
}

static void raw_get(struct itest_daemon *d, const char *path, const char *token, struct raw *out)
{
	char *text = itest_strf(d,
				"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sConnection: close\r\n\r\n",
				path, token ? "Authorization: Bearer " : "", token ? token : "",
				token ? "\r\n" : "");
	raw_request(daemon_port(d), text, strlen(text), PROMPT_MS, out);
}

/* The daemon's peak resident set (VmHWM) in kB, or -1. */
static long daemon_hwm_kb(const struct itest_daemon *d)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

/* Is the daemon built with AddressSanitizer?  Its shadow memory and
 * quarantine are not the daemon's own, so the RSS limit does not apply. */
static bool daemon_sanitized(const struct itest_daemon *d)
{
	char path[64], line[512];
	bool asan = false;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)d->pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	for (int i = 0; i < 100000 && !asan && fgets(line, sizeof(line), f) != NULL; i++)
		asan = strstr(line, "libasan") != NULL;
	fclose(f);
	return asan;
}

/* A body of about `size` bytes: one object of short unknown keys. */
static char *hostile_body(size_t size)
{
	char *b = malloc(size + 32);
	assert_non_null(b);
	size_t n = 0;
	b[n++] = '{';
	for (unsigned k = 0; n + 16 < size; k++)
		n += (size_t)sprintf(b + n, "%s\"%05x\":0", k ? "," : "", k);
	b[n++] = '}';
	b[n] = '\0';
	return b;
}

static int setup_threads1(void **state)
{
	const char *args[] = {"--threads", "1", NULL};
	struct itest_daemon *d = itest_daemon_new(args);
	if (d == NULL)
		return -1;
	*state = d;
	return 0;
}

/* Two tenants: alpha (the attacker, with a big budget) and beta. */
static void two_tenants(struct itest_daemon *d, const char **alpha, const char **beta)
{
	itest_put_gpu(d, "g1", "0.000001", 100000);
	itest_put_team(d, "alpha", "1000000");
	itest_put_team(d, "beta", "1000");
	*alpha = itest_make_token(d, "member", "[\"alpha\"]", NULL);
	*beta = itest_make_token(d, "member", "[\"beta\"]", NULL);
}

/* ---- finding 3: slow readers ---- */

/*
 * NSLOW sockets (more than the pool of --threads 1) each ask for a large list
 * page, pipelined until the answers exceed any socket buffer, and never read.
 * Another tenant's request and /readyz must be answered within PROMPT_MS.
 * Before: the daemon held a pool connection until the last byte was sent, so
 * both hung until MHD's 30 s timeout closed the slow readers.
 */
static void test_slow_readers_do_not_pin_the_pool(void **state)
{
	struct itest_daemon *d = *state;
	const char *alpha, *beta;
	two_tenants(d, &alpha, &beta);

	char purpose[1001], labels[4096];
	memset(purpose, 'p', 1000);
	purpose[1000] = '\0';
	size_t ln = 0;
	labels[ln++] = '{';
	for (int i = 0; i < 16; i++)
		ln += (size_t)snprintf(labels + ln, sizeof(labels) - ln,
				       "%s\"k%02d%.60s\":\"%.63s\"", i ? "," : "", i,
				       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
				       "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
	assert_true(ln + 2 < sizeof(labels));
	labels[ln++] = '}';
	labels[ln] = '\0';
	const char *body = itest_strf(d,
				      "{\"team\":\"alpha\",\"project\":\"p\",\"gpu_type\":\"g1\","
				      "\"gpu_count\":1,\"max_runtime_hours\":1,\"purpose\":\"%s\","
				      "\"labels\":%s}",
				      purpose, labels);
	for (int i = 0; i < NALLOC; i++)
		ITEST_STATUS(itest_req(d, "POST", "/v1/allocations", alpha, body), 201);
	const char *page = "/v1/allocations?team=alpha&limit=500";
	struct itest_resp *full = itest_req(d, "GET", page, alpha, NULL);
	ITEST_STATUS(full, 200);
	size_t npipe = PIPE_BYTES / full->body_len + 1;
	if (npipe > 200)
		npipe = 200;

	const char *one = itest_strf(d,
				     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n",
				     page, alpha);
	size_t onelen = strlen(one);
	char *pipe_text = malloc(onelen * npipe + 1);
	assert_non_null(pipe_text);
	for (size_t i = 0; i < npipe; i++)
		memcpy(pipe_text + i * onelen, one, onelen);
	int slow[NSLOW];
	for (int i = 0; i < NSLOW; i++) {
		slow[i] = tcp_connect(daemon_port(d), 4096);
		assert_true(slow[i] >= 0);
		assert_int_equal(send_all(slow[i], pipe_text, onelen * npipe,
					  itest_now_ms() + BOUND_MS), 0);
	}
	free(pipe_text);
	/* Wait (bounded) until the daemon is sending to every slow reader. */
	int64_t deadline = itest_now_ms() + BOUND_MS;
	for (int i = 0; i < NSLOW; i++) {
		int avail = 0;
		while (itest_now_ms() < deadline && (ioctl(slow[i], FIONREAD, &avail) != 0 || avail == 0))
			itest_sleep_ms(20);
		assert_true(avail > 0);
	}
	itest_sleep_ms(300);

	struct raw victim, ready;
	raw_get(d, "/v1/teams/beta", beta, &victim);
	raw_get(d, "/readyz", NULL, &ready);
	printf("# dos: %d slow readers x %zu pipelined pages of %zu bytes (--threads 1): "
	       "other tenant %ld in %lld ms, /readyz %ld in %lld ms\n",
	       NSLOW, npipe, full->body_len, victim.status, (long long)victim.ms, ready.status,
	       (long long)ready.ms);
	for (int i = 0; i < NSLOW; i++)
		close(slow[i]);
	assert_int_equal(victim.status, 200);
	assert_int_equal(ready.status, 200);
}

/* ---- finding 3: a job waiting on MLflow ---- */

struct job_call {
	const char *base_url;
	const char *token;
	char body[256];
	long status;
	char answer[300]; /* its first bytes, for the log */
	atomic_bool done;
};

static void *job_main(void *arg)
{
	struct job_call *j = arg;
	CURL *h = curl_easy_init();
	struct itest_resp r = {0};
	if (h != NULL) {
		itest_http(h, j->base_url, "POST", "/v1/jobs", j->token, j->body, strlen(j->body),
			   NULL, &r);
		j->status = r.status;
		snprintf(j->answer, sizeof(j->answer), "%.299s", r.body ? r.body : "");
		itest_resp_clear(&r);
		curl_easy_cleanup(h);
	}
	atomic_store(&j->done, true);
	return NULL;
}

/*
 * MLflow is a socket that accepts and never answers.  NJOBS submissions (the
 * whole pool of --threads 1) wait on it; another tenant's request and /readyz
 * must be answered meanwhile.  Before: each submission held its pool
 * connection across the MLflow call (10 s timeout), so both waited for it.
 */
static int mlflow_lfd = -1; /* the silent MLflow's listening socket */

static int setup_silent_mlflow(void **state)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* not the daemon's */
	if (lfd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t salen = sizeof(sa);
	char uri[64];
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 16) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0 ||
	    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d", ntohs(sa.sin_port)) <= 0 ||
	    setenv("MLFLOW_TRACKING_URI", uri, 1) != 0) {
		close(lfd);
		return -1;
	}
	mlflow_lfd = lfd;
	int rc = setup_threads1(state);
	if (unsetenv("MLFLOW_TRACKING_URI") != 0)
		rc = -1;
	return rc;
}

static int teardown_silent_mlflow(void **state)
{
	if (mlflow_lfd >= 0)
		close(mlflow_lfd);
	mlflow_lfd = -1;
	return itest_teardown_daemon(state);
}

static void test_job_waiting_on_mlflow_does_not_hold_the_pool(void **state)
{
	struct itest_daemon *d = *state;
	int lfd = mlflow_lfd;
	const char *alpha, *beta;
	two_tenants(d, &alpha, &beta);

	struct job_call jobs[NJOBS];
	pthread_t tids[NJOBS];
	for (int i = 0; i < NJOBS; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].base_url = d->base_url;
		jobs[i].token = alpha;
		snprintf(jobs[i].body, sizeof(jobs[i].body),
			 "{\"team\":\"alpha\",\"project\":\"p\",\"name\":\"job%d\","
			 "\"framework\":\"pytorch\",\"gpu_type\":\"g1\",\"gpu_count\":1,"
			 "\"max_runtime_hours\":1}",
			 i);
		atomic_init(&jobs[i].done, false);
		assert_int_equal(pthread_create(&tids[i], NULL, job_main, &jobs[i]), 0);
	}
	/* Every submission has reached MLflow once its connection is accepted. */
	int held[NJOBS], nheld = 0;
	int64_t deadline = itest_now_ms() + BOUND_MS;
	while (nheld < NJOBS && itest_now_ms() < deadline) {
		struct pollfd pfd = {.fd = lfd, .events = POLLIN};
		if (poll(&pfd, 1, 100) == 1) {
			int c = accept(lfd, NULL, NULL);
			if (c >= 0)
				held[nheld++] = c;
		}
	}
	struct raw victim, ready;
	raw_get(d, "/v1/teams/beta", beta, &victim);
	raw_get(d, "/readyz", NULL, &ready);
	int pending = 0;
	for (int i = 0; i < NJOBS; i++)
		pending += !atomic_load(&jobs[i].done);
	printf("# dos: %d job submissions waiting on a silent MLflow (%d still waiting): "
	       "other tenant %ld in %lld ms, /readyz %ld in %lld ms\n",
	       nheld, pending, victim.status, (long long)victim.ms, ready.status,
	       (long long)ready.ms);
	/* MLflow goes away (the listener first, so that the compensating
	 * calls are refused at once): the submissions fail (502) and cancel. */
	close(lfd);
	mlflow_lfd = -1;
	for (int i = 0; i < nheld; i++)
		close(held[i]);
	for (int i = 0; i < NJOBS; i++)
		pthread_join(tids[i], NULL);
	for (int i = 0; i < NJOBS; i++)
		printf("# dos: job %d answered %ld: %s\n", i, jobs[i].status, jobs[i].answer);
	assert_int_equal(nheld, NJOBS);
	assert_int_equal(victim.status, 200);
	assert_int_equal(ready.status, 200);
	for (int i = 0; i < NJOBS; i++)
		assert_int_equal(jobs[i].status, 502);
	/* Nothing stays reserved for the failed jobs. */
	struct itest_resp *t = itest_req(d, "GET", "/v1/teams/alpha", d->admin, NULL);
	ITEST_STATUS(t, 200);
	assert_int_equal(itest_jmoney(t->json, "reserved"), 0);
}

/* ---- finding 3: the pool's deadline ---- */

/* The test's own lock on the daemon's database: SQLite's write lock, or an
 * exclusive lock on PostgreSQL's teams table. */
struct db_lock {
	sqlite3 *lite;
	PGconn *pg;
};

static int db_lock_take(const struct itest_daemon *d, struct db_lock *l)
{
	memset(l, 0, sizeof(*l));
	if (!itest_pg_enabled()) {
		char path[ITEST_PATH_LEN + 16];
		snprintf(path, sizeof(path), "%s/plinth.db", d->data);
		if (sqlite3_open_v2(path, &l->lite, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
			return -1;
		return sqlite3_exec(l->lite, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
	}
	const char *url = NULL;
	for (int i = 0; i + 1 < ITEST_MAX_ARGS && d->args[i] != NULL; i++)
		if (strcmp(d->args[i], "--database-url") == 0)
			url = d->args[i + 1];
	if (url == NULL)
		return -1;
	l->pg = PQconnectdb(url);
	if (PQstatus(l->pg) != CONNECTION_OK)
		return -1;
	PGresult *r = PQexec(l->pg, "BEGIN; LOCK TABLE teams IN ACCESS EXCLUSIVE MODE");
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
	PQclear(r);
	return rc;
}

static void db_lock_drop(struct db_lock *l)
{
	if (l->lite != NULL) {
		(void)sqlite3_exec(l->lite, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(l->lite);
	}
	if (l->pg != NULL) {
		PQclear(PQexec(l->pg, "ROLLBACK"));
		PQfinish(l->pg);
	}
	memset(l, 0, sizeof(*l));
}

struct writer {
	const char *base_url;
	const char *token;
	char path[64];
	long status;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	CURL *h = curl_easy_init();
	struct itest_resp r = {0};
	const char *body = "{\"display_name\":\"G\",\"budget\":{\"amount\":\"1\","
			   "\"period\":\"monthly\"}}";
	if (h != NULL) {
		itest_http(h, w->base_url, "PUT", w->path, w->token, body, strlen(body), NULL, &r);
		w->status = r.status;
		itest_resp_clear(&r);
		curl_easy_cleanup(h);
	}
	return NULL;
}

static int setup_short_wait(void **state)
{
	const char *args[] = {"--threads", "1", NULL};
	/* --db-wait 1000 (as the variable: the daemon before the fix ignores it
	 * and starts); PostgreSQL: the blocked writes wait up to 15 s. */
	if (setenv("PLINTH_DB_WAIT_MS", "1000", 1) != 0 ||
	    setenv("PLINTH_PG_STATEMENT_TIMEOUT_MS", "15000", 1) != 0)
		return -1;
	struct itest_daemon *d = itest_daemon_new(args);
	if (unsetenv("PLINTH_DB_WAIT_MS") != 0 || unsetenv("PLINTH_PG_STATEMENT_TIMEOUT_MS") != 0 ||
	    d == NULL) {
		itest_daemon_free(d);
		return -1;
	}
	*state = d;
	return 0;
}

/*
 * Writes blocked on a lock the test holds occupy the whole pool (--threads 1:
 * 3 connections).  A request that then needs a connection must answer 503
 * unavailable with Retry-After after --db-wait (1 s), not wait for one.
 * Before: no deadline, it waited until a write gave its connection back.
 */
static void test_pool_deadline_answers_503(void **state)
{
	struct itest_daemon *d = *state;
	const char *alpha, *beta;
	two_tenants(d, &alpha, &beta);
	(void)alpha;
	(void)beta;
	struct db_lock lock;
	assert_int_equal(db_lock_take(d, &lock), 0);
	struct writer ws[3];
	pthread_t tids[3];
	for (int i = 0; i < 3; i++) {
		ws[i] = (struct writer){d->base_url, d->admin, "", 0};
		snprintf(ws[i].path, sizeof(ws[i].path), "/v1/teams/gamma%d", i);
		if (pthread_create(&tids[i], NULL, writer_main, &ws[i]) != 0) {
			db_lock_drop(&lock);
			fail();
		}
	}
	/* Probe until the writers hold the pool (bounded in tries and time). */
	long status = 0;
	int64_t ms = 0;
	char retry[32] = "";
	int tries = 0;
	int64_t deadline = itest_now_ms() + BOUND_MS;
	CURL *h = curl_easy_init();
	while (h != NULL && status != 503 && tries < 20 && itest_now_ms() < deadline) {
		struct itest_resp r = {0};
		int64_t t0 = itest_now_ms();
		tries++;
		itest_http(h, d->base_url, "GET", "/v1/gpu-types", d->admin, NULL, 0, NULL, &r);
		ms = itest_now_ms() - t0;
		status = r.status;
		if (status == 503 && (!itest_is_problem(&r, 503, "unavailable") ||
				      itest_resp_header(&r, "Retry-After", retry, sizeof(retry)) != 0))
			status = -503; /* a 503 without the problem or Retry-After */
		itest_resp_clear(&r);
		if (status != 503)
			itest_sleep_ms(100);
	}
	if (h != NULL)
		curl_easy_cleanup(h);
	db_lock_drop(&lock);
	for (int i = 0; i < 3; i++)
		pthread_join(tids[i], NULL);
	printf("# dos: pool held by 3 blocked writes (--threads 1, --db-wait 1000): probe %d "
	       "answered %ld in %lld ms, Retry-After: %s; the writes answered %ld %ld %ld\n",
	       tries, status, (long long)ms, retry, ws[0].status, ws[1].status, ws[2].status);
	assert_int_equal(status, 503);
	assert_string_equal(retry, "1");
	assert_true(ms >= 900);
	ITEST_STATUS(itest_req(d, "GET", "/readyz", NULL, NULL), 200);
}

/* ---- finding 4: refused before the body is read ---- */

/*
 * Headers announcing a 1 MiB body, and no body: a request the daemon refuses
 * (no or a bad token, unknown path, wrong method, a role that may not) must
 * be answered at once and the connection closed.  Before: the daemon waited
 * for (and buffered) the whole body before looking at the token.
 */
static void test_refused_before_the_body_is_read(void **state)
{
	struct itest_daemon *d = *state;
	const char *alpha, *beta;
	two_tenants(d, &alpha, &beta);
	struct {
		const char *method, *path, *auth;
		long status;
	} cases[] = {
		{"POST", "/v1/allocations", NULL, 401},
		{"POST", "/v1/allocations", "Bearer not-a-token", 401},
		{"PUT", "/v1/teams/alpha", NULL, 401},
		{"DELETE", "/v1/tokens/tok_x", NULL, 401},
		{"POST", "/v1/nothing-here", NULL, 404},
		{"DELETE", "/v1/teams/alpha", NULL, 405}, /* teams are retired, not deleted */
		{"PUT", "/v1/teams/alpha", alpha, 403},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int chunked = 0; chunked < 2; chunked++) {
			const char *auth = cases[i].auth;
			char *text = itest_strf(
				d,
				"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
				"%s%s%s%s\r\n",
				cases[i].method, cases[i].path,
				chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 1048576\r\n",
				auth ? "Authorization: " : "",
				auth ? (strncmp(auth, "Bearer", 6) == 0 ? auth : itest_strf(d, "Bearer %s", auth)) : "",
				auth ? "\r\n" : "");
			struct raw r;
			raw_request(daemon_port(d), text, strlen(text), BOUND_MS, &r);
			printf("# dos: %s %s (%s, no body sent) -> %ld in %lld ms, closed: %s\n",
			       cases[i].method, cases[i].path, chunked ? "chunked" : "1 MiB announced",
			       r.status, (long long)r.ms, r.eof ? "yes" : "no");
			assert_int_equal(r.status, cases[i].status);
			assert_true(r.eof);
			assert_non_null(strstr(r.head, "application/problem+json"));
		}
	}
}

/* ---- finding 4: bounded answers and parse limits ---- */

static void test_bounded_errors_and_json_limits(void **state)
{
	struct itest_daemon *d = *state;
	const char *alpha, *beta;
	two_tenants(d, &alpha, &beta);
	(void)beta;

	/* 300 unknown fields: 50 errors listed, the rest counted. */
	char *many = hostile_body(300 * 10);
	struct itest_resp *r = itest_req(d, "POST", "/v1/allocations", alpha, many);
	free(many);
	ITEST_PROBLEM(r, 422, "validation-error");
	printf("# dos: 422 for ~300 unknown fields: %zu bytes, %zu errors listed, "
	       "errors_truncated %lld\n",
	       r->body_len, json_array_size(itest_jget(r->json, "errors")),
	       (long long)itest_jint(r->json, "errors_truncated"));
	assert_int_equal(json_array_size(itest_jget(r->json, "errors")), 50);
	assert_true(itest_jint(r->json, "errors_truncated") >= 250);
	assert_true(r->body_len < 16 * 1024);

	/* The 1 MiB body of ~100k unknown keys: refused before parsing, small. */
	char *huge = hostile_body(HOSTILE_BODY - 64);
	r = itest_req(d, "POST", "/v1/allocations", alpha, huge);
	free(huge);
	ITEST_PROBLEM(r, 422, "validation-error");
	printf("# dos: 1 MiB of unknown keys -> %ld, %zu bytes: %s\n", r->status, r->body_len,
	       itest_jstr(r->json, "detail"));
	assert_true(r->body_len < 4096);
	assert_int_equal(json_array_size(itest_jget(r->json, "errors")), 1);
	assert_non_null(strstr(itest_jstr(r->json, "detail"), "1024"));

	/* Nesting, string and number sizes. */
	const char *deep = "{\"labels\":[[[[[[[[[1]]]]]]]]]}";
	r = itest_req(d, "POST", "/v1/allocations", alpha, deep);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_non_null(strstr(itest_jstr(r->json, "detail"), "nesting"));
	static char longstr[40 * 1024 + 64];
	int n = snprintf(longstr, sizeof(longstr), "{\"purpose\":\"");
	assert_true(n > 0);
	memset(longstr + n, 'a', 40 * 1024);
	snprintf(longstr + n + 40 * 1024, sizeof(longstr) - (size_t)n - 40 * 1024, "\"}");
	r = itest_req(d, "POST", "/v1/allocations", alpha, longstr);
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_non_null(strstr(itest_jstr(r->json, "detail"), "string"));
	r = itest_req(d, "POST", "/v1/allocations", alpha,
		      "{\"gpu_count\":1000000000000000000000000000000000000000000000000000000000"
		      "000000000000000000000}");
	ITEST_PROBLEM(r, 422, "validation-error");
	assert_non_null(strstr(itest_jstr(r->json, "detail"), "number"));
	/* Within the limits nothing changes: malformed JSON is still a 400, a
	 * string with escapes a 422 on its field. */
	r = itest_req(d, "POST", "/v1/allocations", alpha, "{\"team\":");
	ITEST_PROBLEM(r, 400, "malformed-json");
	r = itest_req(d, "POST", "/v1/allocations", alpha,
		      "{\"team\":\"al\\\"pha\\\\\",\"project\":\"p\",\"gpu_type\":\"g1\","
		      "\"gpu_count\":1,\"max_runtime_hours\":1}");
	ITEST_PROBLEM(r, 422, "validation-error");
}

/* ---- finding 4: peak memory ---- */

struct hostile {
	int port;
	const char *text; /* the whole request, headers and body */
	size_t len;
	pthread_barrier_t *barrier;
	long status;
	size_t answer_len; /* bytes of the answer */
};

static void *hostile_main(void *arg)
{
	struct hostile *h = arg;
	struct raw r;
	pthread_barrier_wait(h->barrier);
	memset(&r, 0, sizeof(r));
	int64_t deadline = itest_now_ms() + 6 * BOUND_MS;
	int fd = tcp_connect(h->port, 0);
	if (fd >= 0) {
		/* A refused upload is cut short: ignore the send error, read. */
		(void)send_all(fd, h->text, h->len, deadline);
		read_until(fd, deadline, 0, &r);
		close(fd);
	}
	h->status = r.status;
	h->answer_len = r.len;
	return NULL;
}

/*
 * NHOSTILE authenticated 1 MiB bodies of ~100k unknown keys and NHOSTILE
 * unauthenticated 1 MiB bodies at once: all refused, and the daemon's VmHWM
 * stays under 200 MB.  Before: ~85 MB per hostile body in flight.
 */
static void test_hostile_bodies_peak_rss(void **state)
{
	struct itest_daemon *d = *state;
	const char *alpha, *beta;
	two_tenants(d, &alpha, &beta);
	(void)beta;
	long before = daemon_hwm_kb(d);
	char *body = hostile_body(HOSTILE_BODY - 64);
	size_t blen = strlen(body);
	char *authed = malloc(blen + 512), *anon = malloc(blen + 512);
	assert_non_null(authed);
	assert_non_null(anon);
	int ha = snprintf(authed, 512,
			  "POST /v1/allocations HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
			  "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			  alpha, blen);
	int hn = snprintf(anon, 512,
			  "POST /v1/allocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			  "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			  blen);
	assert_true(ha > 0 && ha < 512 && hn > 0 && hn < 512);
	memcpy(authed + ha, body, blen);
	memcpy(anon + hn, body, blen);
	free(body);

	pthread_barrier_t barrier;
	assert_int_equal(pthread_barrier_init(&barrier, NULL, 2 * NHOSTILE), 0);
	struct hostile hs[2 * NHOSTILE];
	pthread_t tids[2 * NHOSTILE];
	int64_t t0 = itest_now_ms();
	for (int i = 0; i < 2 * NHOSTILE; i++) {
		bool a = i % 2 == 0;
		hs[i] = (struct hostile){daemon_port(d), a ? authed : anon,
					 (size_t)(a ? ha : hn) + blen, &barrier, 0, 0};
		assert_int_equal(pthread_create(&tids[i], NULL, hostile_main, &hs[i]), 0);
	}
	for (int i = 0; i < 2 * NHOSTILE; i++)
		pthread_join(tids[i], NULL);
	int64_t ms = itest_now_ms() - t0;
	pthread_barrier_destroy(&barrier);
	free(authed);
	free(anon);
	long hwm = daemon_hwm_kb(d);
	int n422 = 0, n401 = 0;
	size_t biggest = 0;
	for (int i = 0; i < 2 * NHOSTILE; i++) {
		n422 += hs[i].status == 422;
		n401 += hs[i].status == 401;
		if (hs[i].answer_len > biggest)
			biggest = hs[i].answer_len;
	}
	printf("# dos: %d authenticated + %d anonymous hostile 1 MiB bodies at once: "
	       "%d x 422, %d x 401 in %lld ms, largest answer %zu bytes; daemon VmHWM %ld kB "
	       "before, %ld kB after (limit %d kB)\n",
	       NHOSTILE, NHOSTILE, n422, n401, (long long)ms, biggest, before, hwm, RSS_LIMIT_KB);
	assert_int_equal(n422, NHOSTILE);
	assert_true(biggest < 4096);
	assert_int_equal(n401, NHOSTILE);
	assert_true(hwm > 0);
	if (daemon_sanitized(d))
		printf("# dos: AddressSanitizer build: the VmHWM limit is not applied\n");
	else
		assert_true(hwm < RSS_LIMIT_KB);
	/* Still serving. */
	ITEST_STATUS(itest_req(d, "GET", "/readyz", NULL, NULL), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slow_readers_do_not_pin_the_pool,
						setup_threads1, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_job_waiting_on_mlflow_does_not_hold_the_pool,
						setup_silent_mlflow, teardown_silent_mlflow),
		cmocka_unit_test_setup_teardown(test_pool_deadline_answers_503, setup_short_wait,
						itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_refused_before_the_body_is_read,
						itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_bounded_errors_and_json_limits,
						itest_setup_daemon, itest_teardown_daemon),
		cmocka_unit_test_setup_teardown(test_hostile_bodies_peak_rss, itest_setup_daemon,
						itest_teardown_daemon),
	};

	itest_global_init();
	return cmocka_run_group_tests_name("integration-dos-req", tests, NULL, NULL);
}
