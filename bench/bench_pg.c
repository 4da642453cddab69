/*
 * bench_pg.c - allocation decisions/s of the real daemon on PostgreSQL,
 * beside pgbench running the equivalent SQL transaction on the same server
 * in the same run.
 *
 * usage: bench_pg PLINTH_BIN PG_URL PGBENCH [SECONDS]
 *   PG_URL: a database the benchmark may create schemas in (tools/pg-start.sh).
 *   BENCH_PG_ONLY=hot64 (or teams8, ...) runs that one level, daemon only:
 *   for working on one figure, not for reporting it.
 * For 1, 8 and 64 clients and two shapes - 100 teams (spread over 10 GPU
 * types) and one hot team - it prints decisions/s with p50/p99 latency over
 * HTTP keep-alive (every client connection driven by one epoll thread,
 * lg_run; counted after a WARMUP_S warm-up, as pgbench counts after its
 * connections are made), then pgbench's transactions/s for the same transaction
 * (lock the team's period row, lock the GPU type row, insert the
 * allocation, move reserved and allocated, append an audit row), and the
 * ratio.  Lines starting with RESULT are for scripts.
 *
 * A benchmark, not a test: it must never judge the numbers, only fail when
 * something does not run.  It creates its own schemas and never drops
 * anything else.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define WARMUP_S 1 /* each level's first second (connections, caches) is not counted */
#define NTEAMS 100
#define NGPUS 10
#define MAX_CLIENTS 64
#define MAX_SAMPLES 400000
/* One HTTP thread per client at the top level: a thread that waits for a
 * group commit holds its connection, so the threads bound the batch size. */
#define DAEMON_THREADS "64"

static const char ADMIN[] = "bench-admin-token-0123456789abcdef";

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int pg_run(const char *url, const char *sql)
{
	PGconn *db = PQconnectdb(url);
	PGresult *r = NULL;
	int rc = -1;

	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "bench_pg: connect: %s", PQerrorMessage(db));
		goto out;
	}
	r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "bench_pg: %s", PQresultErrorMessage(r));
		goto out;
	}
	rc = 0;
out:
	PQclear(r);
	PQfinish(db);
	return rc;
}

/* A fresh schema; *out gets a URL that uses it. */
static int schema_new(const char *base, const char *name, char *out, size_t len)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SET client_min_messages = warning; DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", name,
		 name);
	if (pg_run(base, sql) != 0)
		return -1;
	int n = snprintf(out, len, "%s%soptions=-csearch_path%%3D%s", base,
			 strchr(base, '?') ? "&" : "?", name);
	return n >= 0 && (size_t)n < len ? 0 : -1; /* a cut URL would name another schema */
}

/* What the clients ask: the two shapes of the issue, and the HTTP ceiling. */
enum shape { SHAPE_TEAMS, SHAPE_HOT, SHAPE_HEALTHZ };
static const char *const SHAPE_NAMES[] = {"teams", "hot", "healthz"};

struct run {
	enum shape shape;
	int64_t *lat; /* microseconds, one per decision */
	int nlat;  /* latencies kept (at most MAX_SAMPLES) */
	long ok;   /* answers counted */
	int64_t count_from_us; /* answers before this are the warm-up */
	int errors;
	char body[MAX_CLIENTS][256];
};

static const char *run_body(void *ctx, int conn, int index)
{
	struct run *run = ctx;
	int team = (conn * 37 + index) % NTEAMS;

	if (run->shape == SHAPE_HEALTHZ)
		return NULL;
	if (run->shape == SHAPE_HOT)
		snprintf(run->body[conn], sizeof(run->body[conn]),
			 "{\"team\":\"hot\",\"project\":\"b\",\"gpu_type\":\"bg0\","
			 "\"gpu_count\":1,\"max_runtime_hours\":1}");
	else
		snprintf(run->body[conn], sizeof(run->body[conn]),
			 "{\"team\":\"t%d\",\"project\":\"b\",\"gpu_type\":\"bg%d\","
			 "\"gpu_count\":1,\"max_runtime_hours\":1}",
			 team, team % NGPUS);
	return run->body[conn];
}

static void run_done(void *ctx, long status, int64_t latency_us)
{
	struct run *run = ctx;
	long want = run->shape == SHAPE_HEALTHZ ? 200 : 201;

	if (status != want) {
		run->errors++;
		return;
	}
	if (now_us() < run->count_from_us)
		return;
	run->ok++;
	if (run->nlat < MAX_SAMPLES)
		run->lat[run->nlat++] = latency_us;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Runs one level (all clients on one epoll thread); prints and returns decisions/s. */
static double daemon_level(const char *base, enum shape shape, int clients, int secs, int64_t *lat)
{
	struct run *run = calloc(1, sizeof(*run));
	struct lg_loop l = {.base = base, .conns = clients, .token = ADMIN, .body = run_body,
			    .done = run_done, .ctx = run};
	double rate, p50 = 0, p99 = 0;

	if (!run)
		return -1;
	run->shape = shape;
	run->lat = lat;
	l.method = shape == SHAPE_HEALTHZ ? "GET" : "POST";
	l.path = shape == SHAPE_HEALTHZ ? "/healthz" : "/v1/allocations";
	run->count_from_us = now_us() + WARMUP_S * 1000000;
	l.until_us = run->count_from_us + (int64_t)secs * 1000000;
	if (lg_run(&l) != 0) {
		fprintf(stderr, "bench_pg: the load client failed (%s, %d clients)\n",
			SHAPE_NAMES[shape], clients);
		free(run);
		return -1;
	}
	rate = run->ok / ((now_us() - run->count_from_us) / 1e6);
	if (run->nlat > 0) {
		qsort(lat, (size_t)run->nlat, sizeof(*lat), cmp64);
		p50 = lat[run->nlat / 2] / 1000.0;
		p99 = lat[(size_t)((run->nlat - 1) * 0.99)] / 1000.0;
	}
	printf("RESULT who=daemon shape=%s clients=%d rate=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
	       SHAPE_NAMES[shape], clients, rate, p50, p99, run->errors);
	fflush(stdout);
	free(run);
	return rate;
}

/* pgbench with the equivalent transaction; returns tps or -1. */
static double pgbench_level(const char *pgbench, const char *url, const char *script, int clients,
			    int secs)
{
	char cmd[4096], line[512];
	double tps = -1, lat = 0;
	FILE *f;

	/* -T covers connection set-up too, so give 64 clients a little more. */
	snprintf(cmd, sizeof(cmd), "'%s' -n -f '%s' -c %d -j %d -T %d '%s' 2>&1", pgbench, script,
		 clients, clients < 2 ? 1 : 2, secs + (clients > 8 ? 2 : 0), url);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "tps = ", 6) == 0 && tps < 0)
			tps = strtod(line + 6, NULL);
		else if (strncmp(line, "latency average = ", 18) == 0)
			lat = strtod(line + 18, NULL);
	}
	(void)pclose(f); /* pgbench exits non-zero on aborted clients; tps says enough */
	if (tps <= 0) {
		fprintf(stderr, "bench_pg: pgbench failed: %s\n", cmd);
		return -1;
	}
	printf("RESULT who=pgbench script=%s clients=%d rate=%.0f avg_ms=%.2f\n", script, clients,
	       tps, lat);
	fflush(stdout);
	return tps;
}

static int write_script(const char *path, bool hot)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f,
		"%s\n"
		"\\set g :t %% %d\n"
		"BEGIN;\n"
		"SELECT budget FROM pb_teams WHERE id = :t;\n"
		"SELECT spent, reserved FROM pb_periods WHERE team_id = :t AND period_start = 0 FOR UPDATE;\n"
		"SELECT capacity, allocated FROM pb_gpus WHERE id = :g FOR UPDATE;\n"
		"INSERT INTO pb_allocs(team_id, gpu, est, at) VALUES (:t, :g, 1000000, 0);\n"
		"UPDATE pb_periods SET reserved = reserved + 1000000 WHERE team_id = :t AND period_start = 0;\n"
		"UPDATE pb_gpus SET allocated = allocated + 1 WHERE id = :g;\n"
		"INSERT INTO pb_audit(action, obj, after_json) VALUES ('allocation.approve', 'x', '{}');\n"
		"END;\n",
		hot ? "\\set t 0" : "\\set t random(0, 99)", NGPUS);
	return fclose(f) == 0 ? 0 : -1;
}

static pid_t daemon_start(const char *bin, const char *url, const char *ready)
{
	pid_t pid;

	unlink(ready);
	setenv("PLINTH_ADMIN_TOKEN", ADMIN, 1);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
			_exit(126);
		execl(bin, bin, "serve", "--listen", "127.0.0.1:0", "--database-url", url,
		      "--ready-file", ready, "--threads", DAEMON_THREADS, (char *)NULL);
		_exit(127);
	}
	return pid;
}

int main(int argc, char **argv)
{
	static const int levels[] = {1, 8, 64};
	const char *bin, *base, *pgbench;
	char durl[1024], burl[1024], ready[256], baseurl[128] = "", script_t[256], script_h[256];
	static char plain[1024];
	char dir[] = "/tmp/plinth-benchpg-XXXXXX";
	double d[2][3], p[2][3];
	int64_t *lat = NULL;
	int secs, rc = 1;
	pid_t pid = -1;
	static struct lg_conn setup = {.fd = -1}; /* 16 kB buffer: not on the stack */

	if (argc < 4) {
		fprintf(stderr, "usage: bench_pg PLINTH_BIN PG_URL PGBENCH [SECONDS]\n");
		return 2;
	}
	bin = argv[1];
	/* No TLS on this loopback benchmark, for the daemon and pgbench alike:
	 * a root run of tools/pg-start.sh gets Debian's cluster with ssl = on
	 * and a non-root run an initdb cluster without it, and the figure should
	 * not depend on who ran it.  TLS costs both sides the same per byte; the
	 * test suites keep libpq's default (prefer). */
	if (strstr(argv[2], "sslmode=")) {
		snprintf(plain, sizeof(plain), "%s", argv[2]);
	} else {
		snprintf(plain, sizeof(plain), "%s%ssslmode=disable", argv[2],
			 strchr(argv[2], '?') ? "&" : "?");
	}
	base = plain;
	pgbench = argv[3];
	secs = argc > 4 ? atoi(argv[4]) : 5;
	if (secs < 1)
		secs = 1;
	if (!mkdtemp(dir))
		return 1;
	snprintf(ready, sizeof(ready), "%s/ready", dir);
	snprintf(script_t, sizeof(script_t), "%s/teams.sql", dir);
	snprintf(script_h, sizeof(script_h), "%s/hot.sql", dir);
	lat = malloc(sizeof(*lat) * MAX_SAMPLES);
	if (!lat || schema_new(base, "bench_daemon", durl, sizeof(durl)) != 0 ||
	    schema_new(base, "bench_pgbench", burl, sizeof(burl)) != 0)
		goto out;

	/* The daemon, and its teams and GPU types. */
	pid = daemon_start(bin, durl, ready);
	for (int i = 0; i < 300 && !baseurl[0]; i++) {
		FILE *f = fopen(ready, "r");
		if (f) {
			if (!fgets(baseurl, sizeof(baseurl), f))
				baseurl[0] = '\0';
			fclose(f);
			baseurl[strcspn(baseurl, "\r\n")] = '\0';
		}
		usleep(50000);
	}
	if (!baseurl[0] || lg_open(&setup, baseurl) != 0) {
		fprintf(stderr, "bench_pg: the daemon did not start\n");
		goto out;
	}
	for (int g = 0; g < NGPUS; g++) {
		char path[64];
		snprintf(path, sizeof(path), "/v1/gpu-types/bg%d", g);
		if (lg_request(&setup, "PUT", path, ADMIN,
			 "{\"name\":\"bench\",\"price_per_gpu_hour\":\"1.00\",\"capacity\":1000000}") /
			    100 != 2) {
			fprintf(stderr, "bench_pg: cannot create GPU type %s\n", path);
			goto out;
		}
	}
	for (int t = 0; t <= NTEAMS; t++) {
		char path[64];
		if (t == NTEAMS)
			snprintf(path, sizeof(path), "/v1/teams/hot");
		else
			snprintf(path, sizeof(path), "/v1/teams/t%d", t);
		if (lg_request(&setup, "PUT", path, ADMIN,
			 "{\"display_name\":\"bench\",\"budget\":{\"amount\":\"100000000\","
			 "\"period\":\"monthly\"}}") / 100 != 2) {
			fprintf(stderr, "bench_pg: cannot create team %s\n", path);
			goto out;
		}
	}

	/* pgbench's tables: the same rows the daemon's transaction touches. */
	if (pg_run(burl, "CREATE TABLE pb_teams(id INT PRIMARY KEY, budget BIGINT);"
			 "CREATE TABLE pb_periods(team_id INT, period_start BIGINT, spent BIGINT,"
			 " reserved BIGINT, PRIMARY KEY (team_id, period_start));"
			 "CREATE TABLE pb_gpus(id INT PRIMARY KEY, capacity BIGINT, allocated BIGINT);"
			 "CREATE TABLE pb_allocs(id BIGSERIAL PRIMARY KEY, team_id INT, gpu INT,"
			 " est BIGINT, at BIGINT);"
			 "CREATE TABLE pb_audit(seq BIGSERIAL PRIMARY KEY, action TEXT, obj TEXT,"
			 " after_json TEXT);"
			 "INSERT INTO pb_teams SELECT g, 100000000000000 FROM generate_series(0, 99) g;"
			 "INSERT INTO pb_periods SELECT g, 0, 0, 0 FROM generate_series(0, 99) g;"
			 "INSERT INTO pb_gpus SELECT g, 100000000, 0 FROM generate_series(0, 9) g;") != 0)
		goto out;
	if (write_script(script_t, false) != 0 || write_script(script_h, true) != 0)
		goto out;

	for (int shape = 0; shape < 2; shape++) {
		for (int i = 0; i < 3; i++) {
			const char *only = getenv("BENCH_PG_ONLY");
			char name[32];

			snprintf(name, sizeof(name), "%s%d", shape == 1 ? "hot" : "teams", levels[i]);
			if (only && *only) {
				if (strcmp(only, name) == 0 &&
				    daemon_level(baseurl, shape == 1 ? SHAPE_HOT : SHAPE_TEAMS, levels[i],
						 secs, lat) < 0)
					goto out;
				continue;
			}
			d[shape][i] = daemon_level(baseurl, shape == 1 ? SHAPE_HOT : SHAPE_TEAMS,
						   levels[i], secs, lat);
			p[shape][i] = pgbench_level(pgbench, burl, shape == 1 ? script_h : script_t,
						    levels[i], secs);
			if (d[shape][i] < 0 || p[shape][i] < 0)
				goto out;
		}
	}
	/* The reference ceiling of this machine for any decision: HTTP alone. */
	if ((!getenv("BENCH_PG_ONLY") || !*getenv("BENCH_PG_ONLY")) && daemon_level(baseurl, SHAPE_HEALTHZ, 64, secs, lat) < 0)
		goto out;
	rc = 0;
out:
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
	lg_close(&setup);
	free(lat);
	unlink(ready);
	unlink(script_t);
	unlink(script_h);
	rmdir(dir);
	(void)d;
	(void)p;
	return rc;
}
