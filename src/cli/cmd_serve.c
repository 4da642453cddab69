/*
 * cmd_serve.c - `plinth serve`: the daemon.
 *
 * Wires settings (flags and environment), the store, first-start seeding,
 * the admin bootstrap token, the HTTP server, the expiry sweeper and the
 * graceful stop on SIGTERM/SIGINT.  Everything else lives in its module.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "integrations/alerter.h"
#include "api/api.h"
#include "cli/cli.h"
#include "core/err.h"
#include "http/http.h"
#include "http/server.h"
#include "integrations/integrations.h"
#include "integrations/jobclean.h"
#include "seed/seed.h"
#include "util/log.h"
#include "util/util.h"

struct serve_opts {
	const char *listen;
	const char *data;
	const char *database_url;
	const char *admin_token;
	const char *ready_file;
	long threads;
	long start_timeout;
	long sweep_interval;
	long max_runtime_hours;
	int demo;
	const char *alert_urls[ALERTER_MAX_URLS]; /* --alert-webhook or PLINTH_ALERT_WEBHOOKS */
	size_t nalert_urls;
	char *alert_env;                          /* owned copy of PLINTH_ALERT_WEBHOOKS */
	long alert_interval;
	long db_wait_ms;
	long max_connections;     /* --max-connections or PLINTH_MAX_CONNECTIONS */
	long per_ip;              /* --max-connections-per-ip or PLINTH_MAX_CONNECTIONS_PER_IP */
	long request_timeout;     /* --request-timeout or PLINTH_REQUEST_TIMEOUT */
	const char *webhook_listen; /* the admission webhook's TLS listener; NULL = none */
	const char *tls_cert, *tls_key, *webhook_client_ca;
	const char *gitops_repo_url; /* --gitops-repo-url or PLINTH_GITOPS_REPO_URL */
};

static void serve_usage(FILE *f)
{
	fprintf(f,
		"usage: plinth serve [options]\n"
		"\n"
		"Runs the Plinth daemon: the HTTP API, the budget ledger and the expiry sweeper.\n"
		"\n"
		"options (each also read from the environment variable shown):\n"
		"  --listen HOST:PORT        address to listen on (PLINTH_LISTEN, default 127.0.0.1:8080;\n"
		"                            port 0 picks a free port)\n"
		"  --data DIR                data directory for the SQLite ledger (PLINTH_DATA, default ./plinth-data)\n"
		"  --database-url URL        sqlite:PATH (PLINTH_DATABASE_URL; default DIR/plinth.db)\n"
		"  --admin-token SECRET      the first admin token (PLINTH_ADMIN_TOKEN); with none and no admin\n"
		"                            yet, one is generated and printed once\n"
		"  --start-timeout SECONDS   approved allocations not started by then expire (default 86400)\n"
		"  --sweep-interval SECONDS  how often expiry is checked (default 30)\n"
		"  --max-runtime-hours N     upper limit of max_runtime_hours (default 168)\n"
		"  --threads N               requests served at once, each with a database connection\n"
		"                            (PLINTH_THREADS, default 8)\n"
		"  --db-wait MS              how long a request waits for a free database connection before\n"
		"                            answering 503 with Retry-After (PLINTH_DB_WAIT_MS, default 3000)\n"
		"  --max-connections N       open connections in all (PLINTH_MAX_CONNECTIONS, default 4096;\n"
		"                            lowered to fit the open-file limit, raised to its hard limit)\n"
		"  --max-connections-per-ip N  open connections per client address\n"
		"                            (PLINTH_MAX_CONNECTIONS_PER_IP, default 1024; behind a load\n"
		"                            balancer every connection comes from its few addresses)\n"
		"  --request-timeout SECONDS a request's headers and body must arrive within this, counted\n"
		"                            from when the connection was ready for it; an idle keep-alive\n"
		"                            connection closes after it too (PLINTH_REQUEST_TIMEOUT, default 30)\n"
		"  --ready-file PATH         write the base URL here once listening (for scripts and tests)\n"
		"  --demo                    seed a demo organisation on first start (used by `make run`)\n"
		"  (env only) MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD: the\n"
		"                            MLflow server of POST /v1/jobs (unset: that step is skipped)\n"
		"  (env only) PLINTH_GITOPS_REMOTE: git URL for job manifests (default: bare repo DIR/gitops.git)\n"
		"  --gitops-repo-url URL     the repository URL Argo CD reads job manifests from: each\n"
		"                            Application's repoURL (PLINTH_GITOPS_REPO_URL; default the\n"
		"                            remote above, warned about at start when that is a local path)\n"
		"  --alert-webhook URL       POST budget threshold alerts here (repeatable; PLINTH_ALERT_WEBHOOKS,\n"
		"                            comma-separated; Slack-compatible JSON with a `text` field)\n"
		"  --alert-interval SECONDS  how often thresholds are checked and alerts retried (default 30)\n"
		"  --webhook-listen HOST:PORT  serve the Kubernetes admission webhook over TLS here: only\n"
		"                            POST /v1/admission/review, without a token (PLINTH_WEBHOOK_LISTEN)\n"
		"  --tls-cert FILE           its certificate chain, PEM (PLINTH_TLS_CERT)\n"
		"  --tls-key FILE            its private key, PEM (PLINTH_TLS_KEY)\n"
		"  --webhook-client-ca FILE  require a client certificate signed by this CA, PEM\n"
		"                            (PLINTH_WEBHOOK_CLIENT_CA; the API server's client certificate)\n"
		"  -h, --help                this help\n"
		"\n"
		"example: PLINTH_ADMIN_TOKEN=$(openssl rand -hex 24) plinth serve --listen 127.0.0.1:8080 --data /var/lib/plinth\n");
}

static long env_long(const char *name, long def)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : def;
}

static const char *env_str(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct serve_opts *o)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"data", required_argument, NULL, 'd'},
		{"database-url", required_argument, NULL, 'D'},
		{"admin-token", required_argument, NULL, 'a'},
		{"ready-file", required_argument, NULL, 'r'},
		{"threads", required_argument, NULL, 't'},
		{"start-timeout", required_argument, NULL, 's'},
		{"sweep-interval", required_argument, NULL, 'w'},
		{"max-runtime-hours", required_argument, NULL, 'm'},
		{"demo", no_argument, NULL, 'x'},
		{"alert-webhook", required_argument, NULL, 'A'},
		{"alert-interval", required_argument, NULL, 'I'},
		{"db-wait", required_argument, NULL, 'W'},
		{"max-connections", required_argument, NULL, 'C'},
		{"max-connections-per-ip", required_argument, NULL, 'P'},
		{"request-timeout", required_argument, NULL, 'T'},
		{"webhook-listen", required_argument, NULL, 'K'},
		{"tls-cert", required_argument, NULL, 'E'},
		{"tls-key", required_argument, NULL, 'Y'},
		{"webhook-client-ca", required_argument, NULL, 'V'},
		{"gitops-repo-url", required_argument, NULL, 'G'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	o->listen = env_str("PLINTH_LISTEN", "127.0.0.1:8080");
	o->data = env_str("PLINTH_DATA", "plinth-data");
	o->database_url = env_str("PLINTH_DATABASE_URL", NULL);
	o->admin_token = env_str("PLINTH_ADMIN_TOKEN", NULL);
	o->threads = env_long("PLINTH_THREADS", 8);
	o->db_wait_ms = env_long("PLINTH_DB_WAIT_MS", 3000);
	o->max_connections = env_long("PLINTH_MAX_CONNECTIONS", SERVER_DEFAULT_MAX_CONNECTIONS);
	o->per_ip = env_long("PLINTH_MAX_CONNECTIONS_PER_IP", SERVER_DEFAULT_PER_IP);
	o->request_timeout = env_long("PLINTH_REQUEST_TIMEOUT", SERVER_DEFAULT_REQUEST_TIMEOUT_S);
	o->webhook_listen = env_str("PLINTH_WEBHOOK_LISTEN", NULL);
	o->tls_cert = env_str("PLINTH_TLS_CERT", NULL);
	o->tls_key = env_str("PLINTH_TLS_KEY", NULL);
	o->webhook_client_ca = env_str("PLINTH_WEBHOOK_CLIENT_CA", NULL);
	o->gitops_repo_url = env_str("PLINTH_GITOPS_REPO_URL", NULL);
	o->start_timeout = 86400;
	o->sweep_interval = 30;
	o->max_runtime_hours = 168;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'l': o->listen = optarg; break;
		case 'd': o->data = optarg; break;
		case 'D': o->database_url = optarg; break;
		case 'a': o->admin_token = optarg; break;
		case 'r': o->ready_file = optarg; break;
		case 't': bad = parse_long(optarg, 1, 256, &o->threads); break;
		case 's': bad = parse_long(optarg, 1, 365L * 86400, &o->start_timeout); break;
		case 'w': bad = parse_long(optarg, 1, 86400, &o->sweep_interval); break;
		case 'm': bad = parse_long(optarg, 1, 100000, &o->max_runtime_hours); break;
		case 'x': o->demo = 1; break;
		case 'A':
			if (o->nalert_urls >= ALERTER_MAX_URLS || strncmp(optarg, "http", 4) != 0)
				bad = 1;
			else
				o->alert_urls[o->nalert_urls++] = optarg;
			break;
		case 'I': bad = parse_long(optarg, 1, 86400, &o->alert_interval); break;
		case 'W': bad = parse_long(optarg, 1, 600000, &o->db_wait_ms); break;
		case 'C': bad = parse_long(optarg, 1, 1000000, &o->max_connections); break;
		case 'P': bad = parse_long(optarg, 1, 1000000, &o->per_ip); break;
		case 'T': bad = parse_long(optarg, 1, 3600, &o->request_timeout); break;
		case 'K': o->webhook_listen = optarg; break;
		case 'E': o->tls_cert = optarg; break;
		case 'Y': o->tls_key = optarg; break;
		case 'V': o->webhook_client_ca = optarg; break;
		case 'G': o->gitops_repo_url = optarg; break;
		case 'h': serve_usage(stdout); exit(0);
		default: serve_usage(stderr); return -1;
		}
		if (bad) {
			fprintf(stderr, "plinth serve: bad value '%s' (see plinth serve --help)\n",
				optarg);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "plinth serve: unexpected argument '%s' (see plinth serve --help)\n",
			argv[optind]);
		return -1;
	}
	if (o->alert_interval == 0)
		o->alert_interval = 30;
	const char *hooks = env_str("PLINTH_ALERT_WEBHOOKS", NULL);
	if (o->nalert_urls == 0 && hooks != NULL) {
		o->alert_env = strdup(hooks);
		char *save = NULL;
		for (char *u = o->alert_env ? strtok_r(o->alert_env, ", ", &save) : NULL; u != NULL;
		     u = strtok_r(NULL, ", ", &save)) {
			if (o->nalert_urls >= ALERTER_MAX_URLS || strncmp(u, "http", 4) != 0) {
				fprintf(stderr, "plinth serve: bad PLINTH_ALERT_WEBHOOKS entry '%s'\n", u);
				return -1;
			}
			o->alert_urls[o->nalert_urls++] = u;
		}
	}
	if (o->db_wait_ms < 1 || o->db_wait_ms > 600000) {
		fprintf(stderr, "plinth serve: --db-wait must be 1..600000 ms\n");
		return -1;
	}
	if (o->webhook_listen != NULL && (o->tls_cert == NULL || o->tls_key == NULL)) {
		fprintf(stderr, "plinth serve: --webhook-listen needs --tls-cert and --tls-key\n");
		return -1;
	}
	if (o->webhook_listen == NULL &&
	    (o->tls_cert != NULL || o->tls_key != NULL || o->webhook_client_ca != NULL)) {
		fprintf(stderr, "plinth serve: --tls-cert, --tls-key and --webhook-client-ca need "
				"--webhook-listen\n");
		return -1;
	}
	if (o->threads < 1 || o->threads > 256) {
		fprintf(stderr, "plinth serve: --threads must be 1..256\n");
		return -1;
	}
	if (o->max_connections < 1 || o->max_connections > 1000000 || o->per_ip < 1 ||
	    o->per_ip > 1000000) {
		fprintf(stderr, "plinth serve: --max-connections and --max-connections-per-ip "
				"must be 1..1000000\n");
		return -1;
	}
	if (o->request_timeout < 1 || o->request_timeout > 3600) {
		fprintf(stderr, "plinth serve: --request-timeout must be 1..3600\n");
		return -1;
	}
	return 0;
}

/* Writes text to path atomically (temp file + rename), mode 0600. */
static int write_file_atomic(const char *path, const char *text)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	size_t len = strlen(text);
	int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	ok = (close(fd) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Reads a PEM file (at most 1 MiB) into a malloc'd NUL-terminated string
 * the caller frees; NULL after saying why. */
static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "plinth serve: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 1024 * 1024;
	char *p = malloc(cap + 1);
	size_t n = p ? fread(p, 1, cap + 1, f) : 0;
	bool err = ferror(f) != 0;
	fclose(f);
	if (p == NULL || err || n == 0 || n > cap) {
		fprintf(stderr, "plinth serve: %s is %s\n", path,
			p == NULL ? "too large for memory" : err ? "unreadable" :
			n == 0 ? "empty" : "larger than 1 MiB");
		free(p);
		return NULL;
	}
	p[n] = '\0';
	return p;
}

/* The admin bootstrap: an env/flag token is ensured; with none and no admin
 * yet, a new one is generated and printed once (and, in demo mode, kept in
 * DIR/demo-admin-token so `make run` can show it again). */
static int bootstrap_admin(struct store_conn *c, const struct serve_opts *o, int64_t now)
{
	const struct store_ops *ops = store_conn_ops(c);
	char secret[UTIL_SECRET_LEN + 64], hash[STORE_HASH_LEN], demo_path[4096];
	struct token t;
	const struct actor system = {"system", "plinth serve", ROLE_ADMIN};
	snprintf(demo_path, sizeof(demo_path), "%s/demo-admin-token", o->data);
	int rc;
	bool generated = false;
	if (o->admin_token != NULL) {
		snprintf(secret, sizeof(secret), "%s", o->admin_token);
	} else {
		FILE *f = o->demo ? fopen(demo_path, "r") : NULL;
		if (f != NULL) {
			if (fgets(secret, sizeof(secret), f) == NULL)
				secret[0] = '\0';
			fclose(f);
			secret[strcspn(secret, "\r\n")] = '\0';
		} else {
			bool exists = false;
			rc = ops->admin_exists(c, &exists);
			if (rc != 0)
				return rc;
			if (exists)
				return 0;
			rc = util_random_secret(secret, sizeof(secret));
			if (rc != 0)
				return rc;
			generated = true;
		}
	}
	if (strlen(secret) < 16) {
		fprintf(stderr, "plinth serve: the admin token must be at least 16 characters\n");
		return ERR_INVALID;
	}
	rc = util_sha256_hex(secret, strlen(secret), hash);
	if (rc != 0)
		return rc;
	rc = ops->token_by_hash(c, hash, &t);
	if (rc == ERR_NOT_FOUND) {
		memset(&t, 0, sizeof(t));
		rc = util_random_id("tok_", 16, t.id, sizeof(t.id));
		if (rc != 0)
			return rc;
		snprintf(t.name, sizeof(t.name), "bootstrap admin");
		t.role = ROLE_ADMIN;
		snprintf(t.teams_json, sizeof(t.teams_json), "[]");
		t.created_at = now;
		rc = ops->token_create(c, &system, &t, hash, now);
		/* token_by_hash finds active tokens only, so a conflict on the hash
		 * means this secret was revoked: it stays revoked, and the daemon
		 * starts anyway (a crash loop would lock every admin out). */
		if (rc == ERR_CONFLICT) {
			log_event("warn", "the bootstrap admin token was revoked; it stays revoked",
				  json_pack("{s:s}", "source", o->admin_token != NULL
							? "PLINTH_ADMIN_TOKEN/--admin-token"
							: "demo-admin-token"));
			return 0;
		}
	}
	if (rc != 0)
		return rc;
	if (generated && o->demo && write_file_atomic(demo_path, secret) != 0)
		fprintf(stderr, "plinth serve: cannot write %s: %s\n", demo_path, strerror(errno));
	if (generated || (o->demo && o->admin_token == NULL)) {
		if (o->demo)
			printf("admin token (demo; kept in %s): %s\n", demo_path, secret);
		else
			printf("admin token (shown once, store it now): %s\n", secret);
		fflush(stdout);
	}
	return 0;
}

/* The demo's other two people: their tokens are written to DIR/demo-tokens
 * when the demo is seeded and printed from there on every start, next to
 * the admin's, so each can log in. */
static void demo_people(const struct serve_opts *o, const struct seed_people *p)
{
	char path[4096], text[1024], line[512];
	snprintf(path, sizeof(path), "%s/demo-tokens", o->data);
	if (p->seeded) {
		snprintf(text, sizeof(text), "%s token for %s: %s\n%s token for %s: %s\n",
			 role_name(p->member.role), p->member.name, p->member.secret,
			 role_name(p->finance.role), p->finance.name, p->finance.secret);
		if (write_file_atomic(path, text) != 0)
			fprintf(stderr, "plinth serve: cannot write %s: %s\n", path, strerror(errno));
	}
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return; /* an organisation seeded by an older plinth: no such people */
	while (fgets(line, sizeof(line), f) != NULL) {
		/* "ROLE token for NAME: SECRET" -> "ROLE token for NAME (demo; kept in PATH): SECRET" */
		line[strcspn(line, "\r\n")] = '\0';
		char *secret = strstr(line, ": plt_");
		if (secret == NULL)
			continue;
		*secret = '\0';
		printf("%s (demo; kept in %s): %s\n", line, path, secret + 2);
	}
	fclose(f);
	fflush(stdout);
}

/* Where the store reports a row it skipped (store_bad_row). */
static void log_bad_row(const char *table, const char *id, const char *why)
{
	log_event("error", "skipped a database row that cannot be read",
		  json_pack("{s:s, s:s, s:s}", "table", table, "id", id, "why", why));
}

static void log_conn_fail(const char *why)
{
	log_event("error", "cannot open a database connection", json_pack("{s:s}", "why", why));
}

struct sweeper {
	struct store *store;
	struct gitops *gitops; /* NULL = no job flow: nothing to clean */
	long interval;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

/*
 * Every interval: expires approved allocations that were never started,
 * then takes the manifests of ended jobs out of the GitOps repository
 * (those of this sweep's expiries and any earlier removal that failed).
 */
static void *sweeper_main(void *arg)
{
	struct sweeper *sw = arg;
	pthread_mutex_lock(&sw->mu);
	while (!sw->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += sw->interval;
		pthread_cond_timedwait(&sw->cv, &sw->mu, &ts);
		if (sw->stop)
			break;
		pthread_mutex_unlock(&sw->mu);
		struct store_conn *c = NULL;
		int n = 0;
		int rc = store_conn_acquire(sw->store, &c);
		if (rc == 0) {
			rc = store_conn_ops(c)->alloc_expire_due(c, util_now(), &n);
			store_conn_release(sw->store, c);
		}
		if (rc != 0)
			log_event("error", "expiry sweep failed", json_pack("{s:s}", "error", err_name(rc)));
		else if (n > 0)
			log_event("info", "allocations expired", json_pack("{s:i}", "count", n));
		if (sw->gitops != NULL)
			(void)jobclean_run(sw->store, sw->gitops, NULL, NULL); /* logs its failures */
		pthread_mutex_lock(&sw->mu);
	}
	pthread_mutex_unlock(&sw->mu);
	return NULL;
}

int cmd_serve(int argc, char **argv)
{
	struct serve_opts o = {0};
	struct store *store = NULL;
	struct store_conn *c = NULL;
	struct server *srv = NULL, *webhook = NULL;
	char *pem_cert = NULL, *pem_key = NULL, *pem_ca = NULL;
	char webhook_url[400] = "";
	struct alerter *alerter = NULL;
	struct integrations *integ = NULL;
	struct sweeper sw = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	pthread_t sweeper_thread;
	bool sweeper_started = false;
	char detail[STORE_DETAIL_LEN] = "", url[4200];
	int exit_code = 1;

	if (parse_opts(argc, argv, &o) != 0)
		return 2;
	/* Signals are handled by sigwait() below; every thread inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The database holds token hashes and the ledger: owner-only files. */
	umask(077);

	/* The data directory holds the SQLite ledger (unless PostgreSQL is
	 * used) and the GitOps repositories of the job flow. */
	if (mkdir(o.data, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "plinth serve: cannot create %s: %s\n", o.data, strerror(errno));
		free(o.alert_env);
		return 1;
	}
	if (o.database_url == NULL) {
		snprintf(url, sizeof(url), "sqlite:%s/plinth.db", o.data);
	} else {
		snprintf(url, sizeof(url), "%s", o.database_url);
	}
	store_set_bad_row_log(log_bad_row);
	store_set_conn_fail_log(log_conn_fail);
	struct store_config scfg = {.url = url, .pool_size = (int)o.threads + 2};
	const char *pg_timeout = env_str("PLINTH_PG_STATEMENT_TIMEOUT_MS", NULL);

	if (pg_timeout && parse_long(pg_timeout, 1, STORE_PG_TIMEOUT_MAX_MS,
				     &scfg.pg_statement_timeout_ms) != 0) {
		fprintf(stderr, "plinth serve: PLINTH_PG_STATEMENT_TIMEOUT_MS must be 1..%ld\n",
			STORE_PG_TIMEOUT_MAX_MS);
		free(o.alert_env);
		return 2;
	}
	int rc = store_open_config(&scfg, &store, detail);
	if (rc == 0)
		rc = store_conn_acquire(store, &c);
	if (rc == 0)
		rc = store_conn_ops(c)->migrate(c, detail);
	int64_t now = util_now();
	if (rc == 0)
		rc = seed_catalog(c, now, detail);
	struct seed_people people;
	memset(&people, 0, sizeof(people));
	if (rc == 0 && o.demo)
		rc = seed_demo(c, now, &people, detail);
	if (rc == 0)
		rc = bootstrap_admin(c, &o, now);
	if (rc == 0 && o.demo)
		demo_people(&o, &people);
	if (c != NULL)
		store_conn_release(store, c);
	if (rc != 0) {
		fprintf(stderr, "plinth serve: cannot start: %s%s%s\n", err_name(rc),
			detail[0] ? ": " : "", detail);
		goto out;
	}

	struct app app = {
		.routes = &api_routes,
		.store = store,
		.start_timeout_s = o.start_timeout,
		.max_runtime_hours = o.max_runtime_hours,
		.currency = "USD",
		.db_wait_ms = o.db_wait_ms,
	};
	/* The job flow's neighbours (MLflow, the GitOps repository in DIR). */
	rc = integrations_open(o.data, o.gitops_repo_url, &integ, detail);
	if (rc != 0) {
		fprintf(stderr, "plinth serve: cannot set up the job flow: %s\n", detail);
		goto out;
	}
	app.integrations = integ;
	unsigned port = 0;
	struct server_limits lim = {
		.max_connections = (unsigned)o.max_connections,
		.per_ip = (unsigned)o.per_ip,
		.request_timeout_s = (unsigned)o.request_timeout,
	};
	rc = server_start(&app, o.listen, &lim, &srv, &port, detail, sizeof(detail));
	if (rc != 0) {
		fprintf(stderr, "plinth serve: %s\n", detail);
		goto out;
	}
	/* The webhook listener's app: the same daemon, but only the review route
	 * (api_webhook_routes: no token, everything else 404).  It must outlive
	 * the listener, so it lives here, not in the block below. */
	struct app webhook_app = app;
	webhook_app.routes = &api_webhook_routes;
	if (o.webhook_listen != NULL) {
		/* The Kubernetes admission webhook: the review route over TLS. */
		pem_cert = read_pem(o.tls_cert);
		pem_key = pem_cert ? read_pem(o.tls_key) : NULL;
		pem_ca = pem_key && o.webhook_client_ca ? read_pem(o.webhook_client_ca) : NULL;
		if (pem_cert == NULL || pem_key == NULL || (o.webhook_client_ca && pem_ca == NULL))
			goto out_stop;
		struct server_tls tls = {pem_cert, pem_key, pem_ca};
		unsigned wport = 0;
		rc = server_start_tls(&webhook_app, o.webhook_listen, &lim, &tls, &webhook, &wport, detail,
				      sizeof(detail));
		if (rc != 0) {
			fprintf(stderr, "plinth serve: %s\n", detail);
			goto out_stop;
		}
		char whost[256];
		snprintf(whost, sizeof(whost), "%s", o.webhook_listen);
		char *wc = strrchr(whost, ':');
		if (wc != NULL)
			*wc = '\0';
		snprintf(webhook_url, sizeof(webhook_url), "https://%s:%u",
			 whost[0] ? whost : "127.0.0.1", wport);
		log_event("info", "admission webhook listening",
			  json_pack("{s:s, s:b}", "url", webhook_url, "client_ca", pem_ca != NULL));
	}
	char host[256];
	snprintf(host, sizeof(host), "%s", o.listen);
	char *colon = strrchr(host, ':');
	if (colon != NULL)
		*colon = '\0';
	char base[400];
	snprintf(base, sizeof(base), "http://%s:%u", host[0] ? host : "127.0.0.1", port);
	sw.store = store;
	sw.gitops = integ ? integ->gitops : NULL;
	sw.interval = o.sweep_interval;
	if (pthread_create(&sweeper_thread, NULL, sweeper_main, &sw) == 0)
		sweeper_started = true;
	rc = alerter_start(store, o.alert_urls, o.nalert_urls, o.alert_interval, app.currency,
			   &alerter);
	if (rc != 0)
		log_event("error", "cannot start the alert thread", json_pack("{s:s}", "error", err_name(rc)));
	log_event("info", "listening",
		  json_pack("{s:s, s:s, s:s}", "url", base, "store", store->ops->name, "version",
			    PLINTH_VERSION));
	printf("Plinth is listening on %s (dashboard: %s/, API: %s/v1/)\n", base, base, base);
	if (webhook_url[0] != '\0')
		printf("Admission webhook (TLS): %s/v1/admission/review\n", webhook_url);
	fflush(stdout);
	if (o.ready_file != NULL) {
		char line[840];
		/* The base URL first (scripts read one line); then the webhook's. */
		snprintf(line, sizeof(line), "%s\n%s%s", base, webhook_url,
			 webhook_url[0] ? "\n" : "");
		if (write_file_atomic(o.ready_file, line) != 0)
			fprintf(stderr, "plinth serve: cannot write %s\n", o.ready_file);
	}
	int sig = 0;
	sigwait(&sigs, &sig);
	log_event("info", "stopping", json_pack("{s:i}", "signal", sig));
	server_stop(webhook, 30);
	webhook = NULL;
	server_stop(srv, 30);
	exit_code = 0;
out_stop:
	/* A failed webhook start: the plain listener is up and stops here. */
	server_stop(webhook, 30);
	if (exit_code != 0)
		server_stop(srv, 30);
out:
	free(pem_cert);
	free(pem_key);
	free(pem_ca);
	alerter_stop(alerter);
	free(o.alert_env);
	if (sweeper_started) {
		pthread_mutex_lock(&sw.mu);
		sw.stop = true;
		pthread_cond_signal(&sw.cv);
		pthread_mutex_unlock(&sw.mu);
		pthread_join(sweeper_thread, NULL);
	}
	integrations_close(integ);
	store_close(store);
	if (exit_code == 0)
		log_event("info", "stopped", NULL);
	return exit_code;
}
