/*
 * bench_alloc.c - allocation decisions per second through the real daemon.
 *
 * usage: bench_alloc PLINTH_BIN [SECONDS_PER_LEVEL]
 *
 * Starts `plinth serve` on a random loopback port with a temporary data
 * directory and PLINTH_ADMIN_TOKEN, gives a team a huge budget and a GPU type
 * a huge capacity, then for 1, 8 and 64 client threads (each its own
 * keep-alive connection, bench/loadgen.c) posts /v1/allocations for a fixed time
 * and reports decisions/s with p50/p99 latency.  It also reads the daemon's
 * VmRSS from /proc/PID/status when idle (after setup, before load) and its
 * VmHWM after the load.
 *
 * usage: bench_alloc --admission PLINTH_BIN [SECONDS_PER_LEVEL]
 *
 * The Kubernetes admission webhook instead: at 1 and 64 clients, GET /healthz
 * (no token, no database: this machine's HTTP ceiling) then POST
 * /v1/admission/review with a GPU Pod labelled with an approved allocation
 * (allowed after its one allocation read), each level printed as
 *   RESULT shape=healthz|admission clients=N ... rate=R p50_us=P p99_us=Q
 *
 * Output: human lines plus machine lines for bench/run.sh:
 *   RESULT clients=N decisions=D errors=E seconds=S rate=R p50_us=P p99_us=Q
 *   RSS idle_kb=K hwm_kb=H
 *
 * A benchmark, not a test: numbers never make it fail; only a daemon that
 * does not start or refuses the setup does (exit 1).  It never talks to
 * anything but 127.0.0.1 and removes its temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define BENCH_ADMIN "bench-admin-secret-0123456789abcdef"
#define BENCH_READY_TIMEOUT_MS 20000
#define BENCH_STOP_TIMEOUT_MS 20000

static const int levels[] = {1, 8, 64};
static const int admission_levels[] = {1, 64};

static char root[256];     /* mkdtemp directory, removed at exit */
static char base_url[128]; /* "http://127.0.0.1:PORT" */
static pid_t daemon_pid;

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A /proc/PID/status field in kB, or -1. */
static long proc_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	size_t fl = strlen(field);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			v = strtol(line + fl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* --- the daemon ------------------------------------------------------------- */

static void daemon_stop(void)
{
	if (daemon_pid <= 0)
		return;
	kill(daemon_pid, SIGTERM);
	int64_t deadline = mono_us() + BENCH_STOP_TIMEOUT_MS * 1000LL;
	int st;
	while (waitpid(daemon_pid, &st, WNOHANG) == 0) {
		if (mono_us() > deadline) {
			kill(daemon_pid, SIGKILL);
			waitpid(daemon_pid, &st, 0);
			break;
		}
		sleep_ms(20);
	}
	daemon_pid = 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Stops the daemon and removes the whole temporary tree (whatever files the
 * daemon made there); BENCH_KEEP keeps it for a look. */
static void cleanup(void)
{
	daemon_stop();
	if (root[0] == '\0' || getenv("BENCH_KEEP") != NULL)
		return;
	if (nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "bench_alloc: cannot remove %s\n", root);
	root[0] = '\0';
}

static void dump_log(void)
{
	char p[512], buf[4096];
	snprintf(p, sizeof(p), "%s/daemon.log", root);
	FILE *f = fopen(p, "r");
	if (f == NULL)
		return;
	if (fseek(f, -(long)sizeof(buf) + 1, SEEK_END) != 0)
		rewind(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	fprintf(stderr, "--- daemon log (tail) ---\n%s\n---\n", buf);
}

/* Starts the daemon and waits for its ready file.  0 or -1. */
static int daemon_start(const char *bin)
{
	char data[512], ready[512], logp[512];
	const char *tmp = getenv("TMPDIR");
	snprintf(root, sizeof(root), "%s/plinth-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(root) == NULL) {
		fprintf(stderr, "bench_alloc: mkdtemp: %s\n", strerror(errno));
		root[0] = '\0';
		return -1;
	}
	snprintf(data, sizeof(data), "%s/data", root);
	snprintf(ready, sizeof(ready), "%s/ready", root);
	snprintf(logp, sizeof(logp), "%s/daemon.log", root);
	const char *threads = getenv("BENCH_DAEMON_THREADS");
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "bench_alloc: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		setenv("PLINTH_ADMIN_TOKEN", BENCH_ADMIN, 1);
		unsetenv("PLINTH_DATABASE_URL");
		if (threads != NULL && *threads != '\0')
			execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--data", data,
			      "--ready-file", ready, "--threads", threads, (char *)NULL);
		else
			execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--data", data,
			      "--ready-file", ready, (char *)NULL);
		_exit(127);
	}
	daemon_pid = pid;
	int64_t deadline = mono_us() + BENCH_READY_TIMEOUT_MS * 1000LL;
	while (mono_us() < deadline) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			daemon_pid = 0;
			fprintf(stderr, "bench_alloc: the daemon exited during start\n");
			dump_log();
			return -1;
		}
		FILE *f = fopen(ready, "r");
		if (f != NULL) {
			char line[128] = "";
			bool ok = fgets(line, sizeof(line), f) != NULL;
			fclose(f);
			line[strcspn(line, "\r\n")] = '\0';
			if (ok && strncmp(line, "http://", 7) == 0) {
				snprintf(base_url, sizeof(base_url), "%s", line);
				return 0;
			}
		}
		sleep_ms(20);
	}
	fprintf(stderr, "bench_alloc: the daemon did not become ready in %d ms\n",
		BENCH_READY_TIMEOUT_MS);
	dump_log();
	return -1;
}

/* --- load ------------------------------------------------------------------- */

struct worker {
	pthread_t th;
	int64_t deadline_us;
	int64_t *lat; /* microseconds per decision, owned by the worker struct */
	size_t nlat, cap;
	long errors;
	long last_bad_status;
};

static const char ALLOC_BODY[] =
	"{\"team\":\"bench\",\"project\":\"bench\",\"gpu_type\":\"bench-gpu\",\"gpu_count\":1,"
	"\"max_runtime_hours\":1,\"purpose\":\"benchmark\"}";

/* What the clients send, and the two statuses that count as an answer. */
static const char *load_method = "POST", *load_path = "/v1/allocations", *load_body = ALLOC_BODY;
static long load_ok[2] = {201, 409}; /* approved and refused are both decisions */
static const char *load_shape = NULL; /* RESULT shape=, NULL: none */
static char review_body[3072];

/* A GPU Pod's AdmissionReview as the API server sends it (about 1.5 kB),
 * labelled with allocation id.  0 or -1. */
static int review_make(const char *id)
{
	int n = snprintf(
		review_body, sizeof(review_body),
		"{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{"
		"\"uid\":\"705ab4f5-6393-11e8-b7cc-42010a800002\",\"kind\":{\"group\":\"\","
		"\"version\":\"v1\",\"kind\":\"Pod\"},\"resource\":{\"group\":\"\",\"version\":\"v1\","
		"\"resource\":\"pods\"},\"requestKind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":"
		"\"Pod\"},\"name\":\"train-x7k2p\",\"namespace\":\"bench\",\"operation\":\"CREATE\","
		"\"userInfo\":{\"username\":\"system:serviceaccount:kube-system:job-controller\","
		"\"uid\":\"c1b0\",\"groups\":[\"system:serviceaccounts\",\"system:authenticated\"]},"
		"\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":"
		"\"train-x7k2p\",\"namespace\":\"bench\",\"labels\":{\"app.kubernetes.io/instance\":"
		"\"%s\",\"plinth.io/allocation-id\":\"%s\",\"batch.kubernetes.io/job-name\":\"train\"},"
		"\"ownerReferences\":[{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"name\":\"train\","
		"\"uid\":\"3f0e\",\"controller\":true}]},\"spec\":{\"restartPolicy\":\"Never\","
		"\"nodeSelector\":{\"plinth.io/gpu-type\":\"bench-gpu\"},\"tolerations\":[{\"key\":"
		"\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}],"
		"\"containers\":[{\"name\":\"trainer\",\"image\":"
		"\"pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime\",\"command\":[\"python\",\"train.py\"],"
		"\"env\":[{\"name\":\"PLINTH_ALLOCATION_ID\",\"value\":\"%s\"}],\"resources\":{"
		"\"limits\":{\"nvidia.com/gpu\":\"1\"},\"requests\":{\"nvidia.com/gpu\":\"1\","
		"\"cpu\":\"4\",\"memory\":\"16Gi\"}},\"terminationMessagePolicy\":\"File\","
		"\"imagePullPolicy\":\"IfNotPresent\"}],\"dnsPolicy\":\"ClusterFirst\","
		"\"schedulerName\":\"default-scheduler\",\"priority\":0},\"status\":{}},"
		"\"oldObject\":null,\"dryRun\":false,\"options\":{\"kind\":\"CreateOptions\","
		"\"apiVersion\":\"meta.k8s.io/v1\"}}}",
		id, id, id);
	return n > 0 && (size_t)n < sizeof(review_body) ? 0 : -1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct lg_conn *conn = malloc(sizeof(*conn));
	if (conn == NULL || lg_open(conn, base_url) != 0) {
		w->errors++;
		goto out;
	}
	while (mono_us() < w->deadline_us) {
		int64_t t0 = mono_us();
		long st = lg_request(conn, load_method, load_path, BENCH_ADMIN, load_body);
		int64_t dt = mono_us() - t0;
		if (st != load_ok[0] && st != load_ok[1]) {
			w->errors++;
			w->last_bad_status = st;
			if (st < 0)
				sleep_ms(1); /* no response at all: do not spin */
			continue;
		}
		if (w->nlat == w->cap) {
			size_t ncap = w->cap ? w->cap * 2 : 4096;
			int64_t *nl = realloc(w->lat, ncap * sizeof(*nl));
			if (nl == NULL) {
				w->errors++;
				break;
			}
			w->lat = nl;
			w->cap = ncap;
		}
		w->lat[w->nlat++] = dt;
	}
out:
	if (conn != NULL)
		lg_close(conn);
	free(conn);
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Runs one level; prints its RESULT line.  0 or -1. */
static int run_level(int clients, double seconds)
{
	struct worker *w = calloc((size_t)clients, sizeof(*w));
	int64_t *all = NULL; /* merged latencies, owned here */
	int ret = -1, started = 0;
	if (w == NULL)
		return -1;
	int64_t t0 = mono_us();
	int64_t deadline = t0 + (int64_t)(seconds * 1e6);
	for (int i = 0; i < clients; i++) {
		w[i].deadline_us = deadline;
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "bench_alloc: pthread_create failed\n");
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	double elapsed = (double)(mono_us() - t0) / 1e6;
	if (started != clients)
		goto out;
	size_t total = 0;
	long errors = 0, bad = 0;
	for (int i = 0; i < clients; i++) {
		total += w[i].nlat;
		errors += w[i].errors;
		if (w[i].last_bad_status != 0)
			bad = w[i].last_bad_status;
	}
	all = malloc((total ? total : 1) * sizeof(*all));
	if (all == NULL)
		goto out;
	size_t k = 0;
	for (int i = 0; i < clients; i++) {
		memcpy(all + k, w[i].lat, w[i].nlat * sizeof(*all));
		k += w[i].nlat;
	}
	qsort(all, total, sizeof(*all), cmp_i64);
	int64_t p50 = total ? all[(total - 1) * 50 / 100] : 0;
	int64_t p99 = total ? all[(total - 1) * 99 / 100] : 0;
	double rate = elapsed > 0 ? (double)total / elapsed : 0;
	const char *unit = load_shape ? "answers" : "decisions";
	printf("%-9s %2d clients: %8.0f %s/s  p50 %6.2f ms  p99 %6.2f ms  (%zu %s, %ld errors%s)\n",
	       load_shape ? load_shape : "daemon", clients, rate, unit, (double)p50 / 1000,
	       (double)p99 / 1000, total, unit, errors, errors ? ", see daemon log" : "");
	if (errors)
		printf("        last unexpected status: %ld\n", bad);
	if (load_shape != NULL)
		printf("RESULT shape=%s clients=%d answers=%zu errors=%ld seconds=%.3f rate=%.1f "
		       "p50_us=%lld p99_us=%lld\n",
		       load_shape, clients, total, errors, elapsed, rate, (long long)p50,
		       (long long)p99);
	else
		printf("RESULT clients=%d decisions=%zu errors=%ld seconds=%.3f rate=%.1f p50_us=%lld "
	       "p99_us=%lld\n",
	       clients, total, errors, elapsed, rate, (long long)p50, (long long)p99);
	fflush(stdout);
	ret = 0;
out:
	for (int i = 0; i < clients; i++)
		free(w[i].lat);
	free(w);
	free(all);
	return ret;
}

/* The webhook's levels: the /healthz ceiling, then admission reviews.  0 or -1. */
static int admission_run(struct lg_conn *setup, double seconds)
{
	long st = lg_request(setup, "POST", "/v1/allocations", BENCH_ADMIN, ALLOC_BODY);
	const char *idp = strstr(setup->buf, "\"id\":\"");
	char id[80] = "";
	if (st != 201 || idp == NULL || sscanf(idp + 6, "%79[^\"]", id) != 1 || review_make(id) != 0) {
		fprintf(stderr, "bench_alloc: cannot make the allocation for the reviews (%ld)\n", st);
		return -1;
	}
	st = lg_request(setup, "POST", "/v1/admission/review", BENCH_ADMIN, review_body);
	if (st != 200 || strstr(setup->buf, "\"allowed\":true") == NULL) {
		fprintf(stderr, "bench_alloc: the review is not allowed: %s\n", setup->buf);
		return -1;
	}
	printf("daemon pid %d at %s, %.1f s per level; one review is %zu bytes\n", (int)daemon_pid,
	       base_url, seconds, strlen(review_body));
	for (size_t i = 0; i < sizeof(admission_levels) / sizeof(admission_levels[0]); i++) {
		load_method = "GET";
		load_path = "/healthz";
		load_body = NULL;
		load_ok[0] = load_ok[1] = 200;
		load_shape = "healthz";
		if (run_level(admission_levels[i], seconds) != 0)
			return -1;
		load_method = "POST";
		load_path = "/v1/admission/review";
		load_body = review_body;
		load_shape = "admission";
		if (run_level(admission_levels[i], seconds) != 0)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int ret = 1;
	static struct lg_conn setup = {.fd = -1}; /* 16 kB buffer: not on the stack */
	bool admission = argc > 1 && strcmp(argv[1], "--admission") == 0;
	if (admission) {
		argv++;
		argc--;
	}
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench_alloc [--admission] PLINTH_BIN [SECONDS_PER_LEVEL]\n");
		return 2;
	}
	double seconds = argc == 3 ? strtod(argv[2], NULL) : 5.0;
	if (!(seconds > 0 && seconds <= 3600)) {
		fprintf(stderr, "bench_alloc: SECONDS_PER_LEVEL must be in (0, 3600]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	atexit(cleanup);
	if (daemon_start(argv[1]) != 0)
		goto out;
	if (lg_open(&setup, base_url) != 0)
		goto out;
	long st = lg_request(&setup, "PUT", "/v1/teams/bench", BENCH_ADMIN,
			     "{\"display_name\":\"Bench\",\"budget\":{\"amount\":\"1000000000.00\","
			     "\"period\":\"yearly\"}}");
	if (st != 201 && st != 200) {
		fprintf(stderr, "bench_alloc: PUT /v1/teams/bench -> %ld\n", st);
		dump_log();
		goto out;
	}
	st = lg_request(&setup, "PUT", "/v1/gpu-types/bench-gpu", BENCH_ADMIN,
			"{\"name\":\"Bench GPU\",\"price_per_gpu_hour\":\"1.00\",\"capacity\":1000000}");
	if (st != 201 && st != 200) {
		fprintf(stderr, "bench_alloc: PUT /v1/gpu-types/bench-gpu -> %ld\n", st);
		dump_log();
		goto out;
	}
	if (admission) {
		ret = admission_run(&setup, seconds);
		goto out;
	}
	/* Idle: settled after setup, before any load. */
	sleep_ms(500);
	long idle_kb = proc_status_kb(daemon_pid, "VmRSS");
	printf("daemon pid %d at %s, %.1f s per level\n", (int)daemon_pid, base_url, seconds);
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (run_level(levels[i], seconds) != 0)
			goto out;
	long hwm_kb = proc_status_kb(daemon_pid, "VmHWM");
	printf("daemon RSS idle %.1f MB, peak under load %.1f MB\n", (double)idle_kb / 1024,
	       (double)hwm_kb / 1024);
	printf("RSS idle_kb=%ld hwm_kb=%ld\n", idle_kb, hwm_kb);
	ret = 0;
out:
	lg_close(&setup);
	cleanup();
	return ret;
}
