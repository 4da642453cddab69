/*
 * itest.c - the integration-test harness (see itest.h).
 *
 * Starts the real daemon as a child process, waits for its ready file, and
 * speaks HTTP to it with libcurl.  It must never leave a daemon running or a
 * temporary directory behind, never wait without a deadline, and never
 * connect anywhere but the loopback address the daemon wrote.
 */
#include "itest.h"
#include "itest_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/util.h"

#define ITEST_BODY_CAP (16u * 1024u * 1024u)
#define ITEST_HDR_CAP (256u * 1024u)

/* A singly linked list of pointers freed with the daemon. */
struct itest_garbage {
	void *p;
	int is_resp;
	struct itest_garbage *next;
};

void itest_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "itest: curl_global_init failed\n");
		abort();
	}
	/* A daemon that dies mid-write must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
}

int64_t itest_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void itest_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int random_hex(char *out, size_t nbytes)
{
	unsigned char buf[64];
	int fd = -1;
	int rc = -1;
	size_t i;

	if (nbytes > sizeof(buf))
		return -1;
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (read(fd, buf, nbytes) != (ssize_t)nbytes)
		goto out;
	for (i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", buf[i]);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

void itest_daemon_dump_log(const struct itest_daemon *d, size_t max)
{
	FILE *f = NULL;
	long size;
	char buf[4096];
	size_t n;

	f = fopen(d->log, "r");
	if (f == NULL)
		return;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > (long)max)
		fseek(f, size - (long)max, SEEK_SET);
	else
		fseek(f, 0, SEEK_SET);
	fprintf(stderr, "---- daemon log (%s, tail) ----\n", d->log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "---- end of daemon log ----\n");
	fclose(f);
}

/* Forks and execs `plinth serve ...`; the child's output goes to d->log. */
static int daemon_spawn(struct itest_daemon *d)
{
	const char *bin = getenv("PLINTH_BIN");
	const char *argv[ITEST_MAX_ARGS + 16];
	int argc = 0;
	int i;
	pid_t pid;

	if (bin == NULL || bin[0] == '\0') {
		fprintf(stderr, "itest: PLINTH_BIN is not set\n");
		return -1;
	}
	argv[argc++] = bin;
	argv[argc++] = "serve";
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--data";
	argv[argc++] = d->data;
	argv[argc++] = "--ready-file";
	argv[argc++] = d->ready;
	for (i = 0; d->args[i] != NULL; i++)
		argv[argc++] = d->args[i];
	argv[argc] = NULL;

	if (unlink(d->ready) != 0 && errno != ENOENT)
		return -1;
	/* Set in the parent: the child may only make async-signal-safe calls. */
	if (setenv("PLINTH_ADMIN_TOKEN", d->admin, 1) != 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		/* The daemon must not outlive a crashed or timed-out test. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		signal(SIGPIPE, SIG_DFL);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	d->pid = pid;
	return 0;
}

/* Waits for the ready file and reads the base URL from it. */
static int daemon_wait_ready(struct itest_daemon *d)
{
	int64_t deadline = itest_now_ms() + ITEST_READY_TIMEOUT_MS;

	while (itest_now_ms() < deadline) {
		int status;
		pid_t w = waitpid(d->pid, &status, WNOHANG);
		FILE *f;

		if (w == d->pid) {
			fprintf(stderr, "itest: daemon exited before ready (status 0x%x)\n", status);
			d->pid = 0;
			return -1;
		}
		f = fopen(d->ready, "r");
		if (f != NULL) {
			char line[sizeof(d->base_url)] = "";
			size_t len;

			if (fgets(line, sizeof(line), f) == NULL)
				line[0] = '\0';
			fclose(f);
			len = strlen(line);
			while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
				line[--len] = '\0';
			/* Loopback only: refuse anything else the daemon might print. */
			if (strncmp(line, "http://127.0.0.1:", 17) == 0 && len > 17) {
				memcpy(d->base_url, line, len + 1);
				return 0;
			}
		}
		itest_sleep_ms(20);
	}
	fprintf(stderr, "itest: daemon not ready after %d ms\n", ITEST_READY_TIMEOUT_MS);
	return -1;
}

struct itest_daemon *itest_daemon_new(const char *const *extra_args)
{
	struct itest_daemon *d = NULL;
	const char *tmp = getenv("TMPDIR");
	char hex[49];
	int i;

	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	snprintf(d->root, sizeof(d->root), "%s/plinth-itest-XXXXXX", tmp);
	if (mkdtemp(d->root) == NULL) {
		fprintf(stderr, "itest: mkdtemp: %s\n", strerror(errno));
		free(d);
		return NULL;
	}
	/* d->root is shorter than these buffers by far; a cut path is refused. */
	if (util_fmt(d->data, sizeof(d->data), "%s/data", d->root) != 0 ||
	    util_fmt(d->ready, sizeof(d->ready), "%s/ready", d->root) != 0 ||
	    util_fmt(d->log, sizeof(d->log), "%s/daemon.log", d->root) != 0 ||
	    mkdir(d->data, 0700) != 0)
		goto fail;
	if (random_hex(hex, 24) != 0)
		goto fail;
	snprintf(d->admin, sizeof(d->admin), "itest-admin-%s", hex);
	for (i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
		if (i >= ITEST_MAX_ARGS - 1)
			goto fail;
		d->args[i] = strdup(extra_args[i]);
		if (d->args[i] == NULL)
			goto fail;
	}
	/* ITEST_PG=1: a fresh PostgreSQL schema per daemon (itest_pg.c). */
	if (itest_pg_args(d->args, ITEST_MAX_ARGS) != 0)
		goto fail;
	d->curl = curl_easy_init();
	if (d->curl == NULL)
		goto fail;
	if (daemon_spawn(d) != 0 || daemon_wait_ready(d) != 0)
		goto fail;
	return d;
fail:
	itest_daemon_dump_log(d, 8192);
	itest_daemon_free(d);
	return NULL;
}

int itest_daemon_restart(struct itest_daemon *d)
{
	if (d->pid != 0)
		return -1;
	d->base_url[0] = '\0';
	if (daemon_spawn(d) != 0 || daemon_wait_ready(d) != 0) {
		itest_daemon_dump_log(d, 8192);
		return -1;
	}
	return 0;
}

/* Waits up to timeout_ms for the child; returns its waitpid status or -1. */
static int daemon_reap(struct itest_daemon *d, int timeout_ms)
{
	int64_t deadline = itest_now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t w = waitpid(d->pid, &status, WNOHANG);

		if (w == d->pid) {
			d->pid = 0;
			return status;
		}
		if (w < 0) {
			d->pid = 0;
			return -1;
		}
		if (itest_now_ms() >= deadline)
			return -1;
		itest_sleep_ms(10);
	}
}

int itest_daemon_stop(struct itest_daemon *d)
{
	int status;

	if (d->pid == 0)
		return -1;
	if (kill(d->pid, SIGTERM) != 0)
		return -1;
	status = daemon_reap(d, ITEST_STOP_TIMEOUT_MS);
	if (status == -1) {
		fprintf(stderr, "itest: daemon ignored SIGTERM for %d ms\n", ITEST_STOP_TIMEOUT_MS);
		itest_daemon_kill(d);
		return -1;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

int itest_daemon_kill(struct itest_daemon *d)
{
	if (d->pid == 0)
		return -1;
	if (kill(d->pid, SIGKILL) != 0)
		return -1;
	return daemon_reap(d, ITEST_STOP_TIMEOUT_MS) == -1 ? -1 : 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void itest_daemon_free(struct itest_daemon *d)
{
	struct itest_garbage *g;
	int i;

	if (d == NULL)
		return;
	if (d->pid != 0)
		itest_daemon_kill(d);
	while ((g = d->garbage) != NULL) {
		d->garbage = g->next;
		if (g->is_resp)
			itest_resp_clear(g->p);
		free(g->p);
		free(g);
	}
	for (i = 0; i < ITEST_MAX_ARGS; i++)
		free(d->args[i]);
	if (d->curl != NULL)
		curl_easy_cleanup(d->curl);
	if (getenv("ITEST_VERBOSE") != NULL)
		itest_daemon_dump_log(d, 1 << 20);
	if (getenv("ITEST_KEEP") != NULL)
		fprintf(stderr, "itest: kept %s\n", d->root);
	else if (d->root[0] != '\0')
		nftw(d->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

/* ---- HTTP ---- */

/* A response part being read: the daemon's own buffer, with a cap. */
struct capped {
	struct buf b;
	size_t max;
};

static int capped_add(struct capped *c, const char *data, size_t n)
{
	if (c->b.len + n + 1 > c->max)
		return -1;
	return buf_add(&c->b, data, n) ? 0 : -1;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	return capped_add(ud, data, size * n) == 0 ? size * n : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	struct capped *c = ud;

	/* A new status line starts a new response (after 100 Continue). */
	if (size * n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		c->b.len = 0;
	return capped_add(c, data, size * n) == 0 ? size * n : 0;
}

void itest_resp_clear(struct itest_resp *r)
{
	if (r == NULL)
		return;
	free(r->body);
	free(r->headers);
	if (r->json != NULL)
		json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* Called by curl once the connection is up, before the request is sent. */
static int on_prereq(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
		     int conn_local_port)
{
	struct itest_resp *out = ud;

	(void)conn_primary_ip;
	(void)conn_local_ip;
	(void)conn_primary_port;
	(void)conn_local_port;
	out->connected_ms = itest_now_ms();
	return CURL_PREREQFUNC_OK;
}

int itest_http(CURL *h, const char *base_url, const char *method, const char *path,
	       const char *token, const char *body, size_t body_len,
	       const char *const *extra_headers, struct itest_resp *out)
{
	return itest_http_ex(h, base_url, method, path, token, body, body_len, extra_headers, 0,
			     out);
}

int itest_http_ex(CURL *h, const char *base_url, const char *method, const char *path,
		  const char *token, const char *body, size_t body_len,
		  const char *const *extra_headers, unsigned flags, struct itest_resp *out)
{
	struct curl_slist *hdrs = NULL;
	struct curl_slist *tmp = NULL;
	struct capped bb = {.max = ITEST_BODY_CAP};
	struct capped hb = {.max = ITEST_HDR_CAP};
	char url[4096];
	char line[512];
	int have_ct = 0;
	int rc = -1;
	char *ct = NULL;
	int i;

	memset(out, 0, sizeof(*out));
	curl_easy_reset(h);
	if ((size_t)snprintf(url, sizeof(url), "%s%s", base_url, path) >= sizeof(url)) {
		out->curl_rc = CURLE_URL_MALFORMAT;
		goto out;
	}
	for (i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++) {
		if (strncasecmp(extra_headers[i], "Content-Type:", 13) == 0)
			have_ct = 1;
		tmp = curl_slist_append(hdrs, extra_headers[i]);
		if (tmp == NULL)
			goto oom;
		hdrs = tmp;
	}
	if (body != NULL && !have_ct) {
		tmp = curl_slist_append(hdrs, "Content-Type: application/json");
		if (tmp == NULL)
			goto oom;
		hdrs = tmp;
	}
	if (token != NULL) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
		tmp = curl_slist_append(hdrs, line);
		if (tmp == NULL)
			goto oom;
		hdrs = tmp;
	}
	tmp = curl_slist_append(hdrs, "Expect:");
	if (tmp == NULL)
		goto oom;
	hdrs = tmp;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &bb);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(h, CURLOPT_PREREQDATA, out);
	if (flags & ITEST_FRESH) {
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	}
	if (strcmp(method, "GET") == 0 && body == NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else {
		if (body != NULL || strcmp(method, "POST") == 0) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)(body != NULL ? body_len : 0));
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != NULL ? body : "");
		}
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}

	out->curl_rc = curl_easy_perform(h);
	if (out->curl_rc != CURLE_OK)
		goto out;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
		snprintf(out->content_type, sizeof(out->content_type), "%s", ct);
	rc = 0;
	goto out;
oom:
	out->curl_rc = CURLE_OUT_OF_MEMORY;
out:
	curl_slist_free_all(hdrs);
	out->body = bb.b.p != NULL ? bb.b.p : strdup("");
	out->body_len = bb.b.len;
	out->headers = hb.b.p != NULL ? hb.b.p : strdup("");
	if (rc == 0 && out->body_len > 0) {
		json_error_t err;

		out->json = json_loadb(out->body, out->body_len, JSON_DECODE_ANY, &err);
	}
	return rc;
}

int itest_resp_header(const struct itest_resp *r, const char *name, char *buf, size_t len)
{
	const char *p = r->headers;
	size_t nlen = strlen(name);

	while (p != NULL && *p != '\0') {
		const char *eol = strchr(p, '\n');
		size_t linelen = eol ? (size_t)(eol - p) : strlen(p);

		if (linelen > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			const char *end = p + linelen;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == '\r' || end[-1] == ' '))
				end--;
			if ((size_t)(end - v) >= len)
				return -1;
			memcpy(buf, v, (size_t)(end - v));
			buf[end - v] = '\0';
			return 0;
		}
		p = eol ? eol + 1 : NULL;
	}
	return -1;
}

void *itest_keep(struct itest_daemon *d, void *p)
{
	struct itest_garbage *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	g->p = p;
	g->next = d->garbage;
	d->garbage = g;
	return p;
}

struct itest_resp *itest_req_h(struct itest_daemon *d, const char *method, const char *path,
			       const char *token, const char *body,
			       const char *const *extra_headers)
{
	struct itest_resp *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	itest_keep(d, r);
	d->garbage->is_resp = 1;
	itest_http(d->curl, d->base_url, method, path, token, body,
		   body != NULL ? strlen(body) : 0, extra_headers, r);
	return r;
}

struct itest_resp *itest_req(struct itest_daemon *d, const char *method, const char *path,
			     const char *token, const char *body)
{
	return itest_req_h(d, method, path, token, body, NULL);
}

char *itest_strf(struct itest_daemon *d, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	return itest_keep(d, s);
}

/* ---- JSON and values ---- */

json_t *itest_jget(json_t *root, const char *path)
{
	char key[128];
	const char *p = path;
	json_t *cur = root;

	while (cur != NULL && *p != '\0') {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n >= sizeof(key) || !json_is_object(cur))
			return NULL;
		memcpy(key, p, n);
		key[n] = '\0';
		cur = json_object_get(cur, key);
		p += n + (dot ? 1 : 0);
	}
	return cur;
}

const char *itest_jstr(json_t *root, const char *path)
{
	return json_string_value(itest_jget(root, path));
}

int64_t itest_jint(json_t *root, const char *path)
{
	json_t *v = itest_jget(root, path);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : INT64_MIN;
}

int itest_money_parse(const char *s, int64_t *out)
{
	int64_t units = 0;
	int64_t frac = 0;
	int digits = 0;
	const char *p = s;

	if (s == NULL || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (units > INT64_C(1000000000000))
			return -1;
		units = units * 10 + (*p - '0');
	}
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (++digits > 6)
				return -1;
			frac = frac * 10 + (*p - '0');
		}
		if (digits == 0)
			return -1;
	}
	if (*p != '\0')
		return -1;
	for (; digits < 6; digits++)
		frac *= 10;
	*out = units * 1000000 + frac;
	return 0;
}

int64_t itest_jmoney(json_t *root, const char *path)
{
	int64_t v;

	if (itest_money_parse(itest_jstr(root, path), &v) != 0)
		return INT64_MIN;
	return v;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

int64_t itest_time_parse(const char *s)
{
	int y, mo, d, h, mi, se;
	char z;

	if (s == NULL || strlen(s) != 20 ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se, &z) != 7 || z != 'Z')
		return -1;
	return days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
}

void itest_time_format(int64_t t, char *buf)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int itest_is_problem(const struct itest_resp *r, long status, const char *name)
{
	const char *type;
	size_t tl, nl;

	if (r->status != status)
		return 0;
	if (strncmp(r->content_type, "application/problem+json", 24) != 0)
		return 0;
	if (r->json == NULL || itest_jint(r->json, "status") != status)
		return 0;
	if (itest_jstr(r->json, "title") == NULL)
		return 0;
	if (name == NULL)
		return 1;
	type = itest_jstr(r->json, "type");
	if (type == NULL)
		return 0;
	tl = strlen(type);
	nl = strlen(name);
	return tl > nl && type[tl - nl - 1] == '/' && strcmp(type + tl - nl, name) == 0;
}

int itest_problem_names_field(const struct itest_resp *r, const char *field)
{
	json_t *errs = itest_jget(r->json, "errors");
	size_t i;
	json_t *e;

	if (!json_is_array(errs))
		return 0;
	json_array_foreach(errs, i, e) {
		const char *f = itest_jstr(e, "field");

		if (f != NULL && strstr(f, field) != NULL && itest_jstr(e, "message") != NULL)
			return 1;
	}
	return 0;
}

/* ---- fixtures ---- */

void itest_put_gpu(struct itest_daemon *d, const char *id, const char *price, long capacity)
{
	struct itest_resp *r = itest_req(
		d, "PUT", itest_strf(d, "/v1/gpu-types/%s", id), d->admin,
		itest_strf(d, "{\"name\":\"GPU %s\",\"price_per_gpu_hour\":\"%s\",\"capacity\":%ld}",
			   id, price, capacity));

	if (r->status != 200 && r->status != 201) {
		fprintf(stderr, "itest: PUT gpu-type %s -> %ld %s\n", id, r->status, r->body);
		fail();
	}
}

void itest_put_team(struct itest_daemon *d, const char *id, const char *amount)
{
	struct itest_resp *r = itest_req(
		d, "PUT", itest_strf(d, "/v1/teams/%s", id), d->admin,
		itest_strf(d,
			   "{\"display_name\":\"Team %s\",\"budget\":{\"amount\":\"%s\","
			   "\"period\":\"monthly\"}}",
			   id, amount));

	if (r->status != 200 && r->status != 201) {
		fprintf(stderr, "itest: PUT team %s -> %ld %s\n", id, r->status, r->body);
		fail();
	}
}

const char *itest_make_token(struct itest_daemon *d, const char *role, const char *teams_json,
			     const char **id_out)
{
	struct itest_resp *r = itest_req(
		d, "POST", "/v1/tokens", d->admin,
		itest_strf(d, "{\"name\":\"itest-%s\",\"role\":\"%s\",\"teams\":%s}", role, role,
			   teams_json ? teams_json : "[]"));

	ITEST_STATUS(r, 201);
	assert_non_null(itest_jstr(r->json, "token"));
	assert_non_null(itest_jstr(r->json, "id"));
	if (id_out != NULL)
		*id_out = itest_jstr(r->json, "id");
	return itest_jstr(r->json, "token");
}

struct itest_resp *itest_allocate(struct itest_daemon *d, const char *token, const char *team,
				  const char *project, const char *gpu, long count,
				  const char *hours)
{
	return itest_req(d, "POST", "/v1/allocations", token,
			 itest_strf(d,
				    "{\"team\":\"%s\",\"project\":\"%s\",\"gpu_type\":\"%s\","
				    "\"gpu_count\":%ld,\"max_runtime_hours\":%s}",
				    team, project, gpu, count, hours));
}

int itest_setup_daemon(void **state)
{
	struct itest_daemon *d = itest_daemon_new(NULL);

	if (d == NULL)
		return -1;
	*state = d;
	return 0;
}

int itest_teardown_daemon(void **state)
{
	struct itest_daemon *d = *state;
	int rc = 0;

	if (d != NULL && d->pid != 0) {
		int st = itest_daemon_stop(d);

		if (st != 0) {
			fprintf(stderr, "daemon exit status on SIGTERM: %d (want 0)\n", st);
			itest_daemon_dump_log(d, 4096);
			rc = -1;
		}
	}
	itest_daemon_free(d);
	return rc;
}
