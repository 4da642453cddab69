/*
 * cmd_controller.c - `plinth controller`: watches the Jobs and Pods labelled
 * plinth.io/allocation-id and reports each allocation's real start and end to
 * Plinth's API with a service token (issue 13, part 1).
 *
 * It keeps the watched objects in memory, derives usage with
 * src/controller/usage.c and calls POST /v1/allocations/{id}/start|complete.
 * It must never open the database, never decide a price or a charge (the API
 * does), and never report an end before the allocation is known to run.
 * A restart lists everything again and derives the same times: the API's
 * transitions are idempotent, so nothing is charged twice and no end is lost.
 *
 * A Job still alive (not finished, not being deleted) whose allocation Plinth
 * says is cancelled, expired or completed is "orphaned": it uses GPUs nobody
 * pays for.  The leader learns it by looking live Jobs' allocations up every
 * --check-interval seconds; --metrics-listen shows orphans on /metrics and,
 * with --enforce, the leader deletes them.
 */
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cli/cli.h"
#include "controller/kube.h"
#include "controller/kueue.h"
#include "controller/lease.h"
#include "controller/usage.h"
#include "core/admission.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "net/httpc.h"
#include "util/util.h"

#define CTL_LABEL "plinth.io/allocation-id"
#define CTL_ID_LEN 64
#define CTL_UID_LEN 64
#define CTL_RETRY_S 10 /* how often allocations with something to report are retried */
#define CTL_API_TIMEOUT_MS 15000L
#define CTL_LEASE_EVERY_S 2 /* how often the lease is renewed or tried */
#define CTL_CHECK_MAX 64    /* allocations looked up in Plinth per check round */
#define CTL_ENFORCE_MAX 16  /* orphaned Jobs deleted per check round */
#define CTL_NAME_LEN 254    /* a Job's name (DNS subdomain) or namespace, NUL included */
#define CTL_TEAM_NS_LEN 1024 /* a team's namespaces, comma-joined (16 labels at most) */

static const char controller_help[] =
	"Usage: plinth controller [--kubeconfig FILE] [--namespace NS]\n"
	"                         [--metrics-listen HOST:PORT] [--enforce]\n"
	"\n"
	"Watch the batch/v1 Jobs and v1 Pods labelled plinth.io/allocation-id and report\n"
	"each allocation's real GPU time to Plinth: `start` when its first pod runs on a\n"
	"node, `complete` when its Job is Complete, Failed or deleted (bare pods: when the\n"
	"last one stops).  The rules are in docs/kubernetes.md.  Needs a service token;\n"
	"never opens the database.  Stops on SIGINT or SIGTERM.\n"
	"\n"
	"Options:\n"
	"  --kubeconfig FILE  the Kubernetes API server and credentials (current context:\n"
	"                     token, tokenFile or client certificate; CA file or data);\n"
	"                     default: in-cluster (service account token and CA,\n"
	"                     KUBERNETES_SERVICE_HOST/PORT)\n"
	"  --namespace NS     watch one namespace only (default: all namespaces)\n"
	"  --watch-timeout S  seconds the API server keeps one watch open before the\n"
	"                     controller renews it (default 300)\n"
	"  --lease-namespace NS  elect one leader among replicas with a\n"
	"                     coordination.k8s.io/v1 Lease in NS (needs get, create and\n"
	"                     update on leases there); only the leader reports to\n"
	"                     Plinth, the others keep watching. Default: no election\n"
	"                     (run one replica)\n"
	"  --lease-name NAME  the Lease's name (default plinth-controller)\n"
	"  --lease-duration S seconds without a renewal before another replica takes\n"
	"                     over (default 15; renewed every 2 s)\n"
	"  --check-interval S how often the leader looks up, in Plinth, the allocation\n"
	"                     of each live Job (at most 64 per round) to find orphaned\n"
	"                     Jobs: alive while their allocation is cancelled, expired\n"
	"                     or completed (default 30, 1..3600)\n"
	"  --metrics-listen HOST:PORT  serve Prometheus text on http://HOST:PORT/metrics:\n"
	"                     plinth_controller_orphaned_jobs{namespace,job},\n"
	"                     plinth_controller_leader, plinth_controller_reports_total{verb},\n"
	"                     plinth_controller_report_failures_total,\n"
	"                     plinth_controller_enforced_deletions_total (default: none)\n"
	"  --enforce          the leader deletes orphaned Jobs (propagationPolicy\n"
	"                     Background; needs delete on jobs); without it they are\n"
	"                     only reported\n"
	"  --kueue            also be Kueue's AdmissionCheck controller for\n"
	"                     controllerName plinth.io/budget (kueue.x-k8s.io/v1beta2):\n"
	"                     allocate for each Workload that holds quota, Ready/Retry/\n"
	"                     Rejected; see docs/kueue.md\n"
	"  --kueue-default-runtime S  the maximum runtime priced for a Workload without\n"
	"                     maximumExecutionTimeSeconds (default 86400, 60..604800)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Environment: PLINTH_URL, PLINTH_TOKEN (a `service` token) as --url/--token.\n"
	"The lease holder's identity is HOSTNAME_PID. Two leaders for a moment (a paused\n"
	"process) cannot charge twice: both would report the same times, and repeating a\n"
	"transition changes nothing.\n"
	"\n"
	"Example:\n"
	"  PLINTH_URL=http://plinth:8080 PLINTH_TOKEN=plt_... plinth controller --kubeconfig ~/.kube/config\n";

enum {
	OPT_KUBECONFIG = 1000,
	OPT_NAMESPACE,
	OPT_WATCH_TIMEOUT,
	OPT_LEASE_NAMESPACE,
	OPT_LEASE_NAME,
	OPT_LEASE_DURATION,
	OPT_CHECK_INTERVAL,
	OPT_METRICS_LISTEN,
	OPT_ENFORCE,
	OPT_KUEUE,
	OPT_KUEUE_RUNTIME,
};

/* What Plinth says about an allocation, as far as the controller knows. */
enum ctl_state { CTL_UNKNOWN, CTL_APPROVED, CTL_RUNNING, CTL_DONE };

struct ctl_pod {
	char uid[CTL_UID_LEN];
	char ns[64]; /* its namespace ("" when not a DNS label) */
	struct usage_pod u;
	bool owned_by_job;
	bool listed; /* seen in the list being delivered */
};

struct ctl_alloc {
	char id[CTL_ID_LEN];
	bool has_job;
	char job_uid[CTL_UID_LEN];
	char job_ns[CTL_NAME_LEN], job_name[CTL_NAME_LEN]; /* "" when not DNS names */
	struct usage_job job;
	bool job_listed;
	struct ctl_pod *pods;
	size_t npods, cap;
	enum ctl_state st;
	char final[16];   /* Plinth's status once CTL_DONE ("" when unknown to Plinth) */
	bool enforced;    /* its orphaned Job was deleted (or found gone) */
	bool enforce_logged; /* a refused deletion is logged once */
	int64_t approved_at, started_at; /* from the API */
	/* Its team and the team's namespaces (from the API, once): only pods and a
	 * Job in those namespaces are its workload. */
	char team[CTL_ID_LEN];
	char team_ns[CTL_TEAM_NS_LEN];
	bool ns_known;
	bool foreign_logged; /* a workload in another namespace is logged once */
	int64_t last_logged;             /* a refused report is logged once per value */
	/* Kueue (--kueue): the allocation's Workload is over (Finished, evicted or
	 * deleted) at wl_end.  Its Job carries no label (Kueue labels only the
	 * pods), so the Workload stands in for the Job in usage_derive. */
	bool wl_ended;
	int64_t wl_end;
};

struct ctl {
	pthread_mutex_t mu;
	struct ctl_alloc *a;
	size_t n, cap;
	bool jobs_synced, pods_synced;
	bool leader; /* only the leader reports (always, without --lease-namespace) */
	char lease_detail[KUBE_DETAIL_LEN]; /* the last lease failure logged (main thread) */
	const char *url, *token;
	unsigned long starts, completes; /* reports Plinth accepted (for the log) */
	unsigned long report_failures;   /* reports not taken: transport, 5xx, 409/404 */
	unsigned long deletions;         /* orphaned Jobs deleted under --enforce */
	const struct kube_config *kc;
	bool enforce;
	size_t check_cursor; /* where the next check round starts (bounded rounds) */
};

static volatile sig_atomic_t ctl_stop;

static void ctl_on_signal(int sig)
{
	(void)sig;
	ctl_stop = 1;
}

static void ctl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool dns_name_ok(const char *s, size_t max);

/* One line on stderr: "2026-12-06T07:00:00Z controller: ...". */
static void ctl_log(const char *fmt, ...)
{
	char when[TIME_FMT_LEN], msg[1024], *safe;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	time_format_rfc3339((int64_t)time(NULL), when);
	safe = cli_text_safe(msg);
	fprintf(stderr, "%s controller: %s\n", when, safe ? safe : "(out of memory)");
	fflush(stderr);
	free(safe);
}

/* --- reading the objects ------------------------------------------------- */

static int64_t json_time(const json_t *v)
{
	int64_t t = 0;
	const char *s = json_string_value(v);

	if (s == NULL || time_parse_rfc3339(s, &t) != 0)
		return 0;
	return t;
}

static int64_t earliest(int64_t a, int64_t b)
{
	return a == 0 ? b : (b == 0 || a < b) ? a : b;
}

/* The allocation id of obj, or NULL when it has none we accept (a DNS-label-ish id). */
static const char *obj_alloc_id(const json_t *obj)
{
	const char *id = json_string_value(json_object_get(json_object_get(json_object_get(obj,
		"metadata"), "labels"), CTL_LABEL));

	if (id == NULL || id[0] == '\0' || strlen(id) >= CTL_ID_LEN)
		return NULL;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return NULL;
	return id;
}

static const char *obj_uid(const json_t *obj)
{
	const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
	return uid != NULL && strlen(uid) < CTL_UID_LEN ? uid : NULL;
}

static void pod_read(const json_t *obj, struct usage_pod *u, bool *owned_by_job)
{
	const json_t *meta = json_object_get(obj, "metadata");
	const json_t *st = json_object_get(obj, "status");
	const char *phase = json_string_value(json_object_get(st, "phase"));
	const json_t *cs, *owners;
	size_t i;

	memset(u, 0, sizeof *u);
	if (phase != NULL && strcmp(phase, "Running") == 0)
		u->phase = USAGE_PHASE_RUNNING;
	else if (phase != NULL && strcmp(phase, "Succeeded") == 0)
		u->phase = USAGE_PHASE_SUCCEEDED;
	else if (phase != NULL && strcmp(phase, "Failed") == 0)
		u->phase = USAGE_PHASE_FAILED;
	u->start_time = json_time(json_object_get(st, "startTime"));
	u->deletion = json_time(json_object_get(meta, "deletionTimestamp"));
	cs = json_object_get(st, "containerStatuses");
	for (i = 0; i < json_array_size(cs); i++) {
		const json_t *c = json_array_get(cs, i);
		const json_t *state = json_object_get(c, "state");
		const json_t *run = json_object_get(state, "running");
		const json_t *term = json_object_get(state, "terminated");
		const json_t *last = json_object_get(json_object_get(c, "lastState"), "terminated");
		int64_t fin = json_time(json_object_get(term, "finishedAt"));

		u->container_started = earliest(u->container_started,
			json_time(json_object_get(run, "startedAt")));
		u->container_started = earliest(u->container_started,
			json_time(json_object_get(term, "startedAt")));
		u->container_started = earliest(u->container_started,
			json_time(json_object_get(last, "startedAt")));
		if (fin > u->container_finished)
			u->container_finished = fin;
	}
	*owned_by_job = false;
	owners = json_object_get(meta, "ownerReferences");
	for (i = 0; i < json_array_size(owners); i++) {
		const char *kind = json_string_value(json_object_get(json_array_get(owners, i), "kind"));
		if (kind != NULL && strcmp(kind, "Job") == 0)
			*owned_by_job = true;
	}
}

static void job_read(const json_t *obj, struct usage_job *u)
{
	const json_t *conds = json_object_get(json_object_get(obj, "status"), "conditions");

	memset(u, 0, sizeof *u);
	u->deletion = json_time(json_object_get(json_object_get(obj, "metadata"),
		"deletionTimestamp"));
	for (size_t i = 0; i < json_array_size(conds); i++) {
		const json_t *c = json_array_get(conds, i);
		const char *type = json_string_value(json_object_get(c, "type"));
		const char *status = json_string_value(json_object_get(c, "status"));

		if (type == NULL || status == NULL || strcmp(status, "True") != 0)
			continue;
		if (strcmp(type, "Complete") == 0)
			u->complete_at = json_time(json_object_get(c, "lastTransitionTime"));
		else if (strcmp(type, "Failed") == 0)
			u->failed_at = json_time(json_object_get(c, "lastTransitionTime"));
	}
}

/* --- state ----------------------------------------------------------------- */

static struct ctl_alloc *alloc_get(struct ctl *c, const char *id)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->a[i].id, id) == 0)
			return &c->a[i];
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct ctl_alloc *a = realloc(c->a, cap * sizeof *a);
		if (a == NULL)
			return NULL;
		c->a = a;
		c->cap = cap;
	}
	memset(&c->a[c->n], 0, sizeof c->a[c->n]);
	snprintf(c->a[c->n].id, sizeof c->a[c->n].id, "%s", id);
	return &c->a[c->n++];
}

static struct ctl_pod *pod_get(struct ctl_alloc *a, const char *uid)
{
	for (size_t i = 0; i < a->npods; i++)
		if (strcmp(a->pods[i].uid, uid) == 0)
			return &a->pods[i];
	if (a->npods == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 4;
		struct ctl_pod *p = realloc(a->pods, cap * sizeof *p);
		if (p == NULL)
			return NULL;
		a->pods = p;
		a->cap = cap;
	}
	memset(&a->pods[a->npods], 0, sizeof a->pods[a->npods]);
	snprintf(a->pods[a->npods].uid, sizeof a->pods[a->npods].uid, "%s", uid);
	return &a->pods[a->npods++];
}

/* --- talking to Plinth ----------------------------------------------------- */

/* One call to Plinth at /v1/<collection>/<id>[/<verb>]; *status and *out
 * (owned) on an answer; ERR_* otherwise. */
static int plinth_call_in(struct ctl *c, const char *method, const char *collection,
	const char *id, const char *verb, const char *field, int64_t at, long *status, json_t **out)
{
	char url[1024], auth[1024], when[TIME_FMT_LEN], body[96], detail[HTTPC_DETAIL_LEN] = "";
	const char *headers[3] = { auth, "Content-Type: application/json", NULL };
	struct httpc_response r = { 0 };
	int n, rc;

	n = snprintf(url, sizeof url, "%s/v1/%s/%s%s%s", c->url, collection, id, verb ? "/" : "",
		verb ? verb : "");
	if (n < 0 || (size_t)n >= sizeof url)
		return ERR_INVALID;
	n = snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
	if (n < 0 || (size_t)n >= sizeof auth)
		return ERR_INVALID;
	body[0] = '\0';
	if (field != NULL) {
		time_format_rfc3339(at, when);
		snprintf(body, sizeof body, "{\"%s\":\"%s\"}", field, when);
	}
	rc = httpc_request(method, url, headers, field ? body : NULL, strlen(body),
		CTL_API_TIMEOUT_MS, 1u << 20, &r, detail);
	if (rc != 0) {
		ctl_log("%s %s: %s", method, url, detail);
		return rc;
	}
	*status = r.status;
	*out = json_loadb(r.body, r.len, 0, NULL);
	httpc_response_done(&r);
	return 0;
}

/* plinth_call_in for /v1/allocations/<id>[/<verb>]. */
static int plinth_call(struct ctl *c, const char *method, const char *id, const char *verb,
	const char *field, int64_t at, long *status, json_t **out)
{
	return plinth_call_in(c, method, "allocations", id, verb, field, at, status, out);
}

/* Updates a's state from an allocation object of the API; says so when it
 * is over and someone else finished it (log_final). */
static void alloc_learn(struct ctl_alloc *a, const json_t *res, bool log_final)
{
	const char *st = json_string_value(json_object_get(res, "status"));

	const char *team = json_string_value(json_object_get(res, "team"));

	if (team != NULL && strlen(team) < sizeof a->team)
		memcpy(a->team, team, strlen(team) + 1);
	a->approved_at = json_time(json_object_get(res, "approved_at"));
	a->started_at = json_time(json_object_get(res, "started_at"));
	if (st == NULL)
		a->st = CTL_UNKNOWN;
	else if (strcmp(st, "approved") == 0)
		a->st = CTL_APPROVED;
	else if (strcmp(st, "running") == 0)
		a->st = CTL_RUNNING;
	else {
		a->st = CTL_DONE;
		snprintf(a->final, sizeof a->final, "%.15s", st);
		if (log_final)
			ctl_log("allocation %s is %s: nothing more to report", a->id, st);
	}
}

static const char *problem_detail(const json_t *res)
{
	const char *d = json_string_value(json_object_get(res, "detail"));
	return d ? d : "";
}

/* Looks the allocation up in Plinth.  Returns 0 when its state is known. */
static int alloc_fetch(struct ctl *c, struct ctl_alloc *a)
{
	json_t *res = NULL;
	long status = 0;
	int rc = plinth_call(c, "GET", a->id, NULL, NULL, 0, &status, &res);

	if (rc != 0)
		return rc;
	if (status == 200) {
		alloc_learn(a, res, true);
	} else if (status == 404) {
		ctl_log("allocation %s: unknown to Plinth (404): ignored", a->id);
		a->st = CTL_DONE;
	} else {
		ctl_log("allocation %s: GET answered %ld %s", a->id, status, problem_detail(res));
		rc = ERR_UNAVAILABLE;
	}
	json_decref(res);
	return rc;
}

/* Learns, once, the namespaces of a's team (looking a up first if its team
 * is not known yet).  0 when they are known or a is done. */
static int alloc_namespaces(struct ctl *c, struct ctl_alloc *a)
{
	json_t *res = NULL, *v;
	long status = 0;
	size_t i, len = 0;
	int rc;

	if (a->ns_known || a->st == CTL_DONE)
		return 0;
	if (a->team[0] == '\0' && ((rc = alloc_fetch(c, a)) != 0 || a->st == CTL_DONE))
		return rc;
	if (a->team[0] == '\0')
		return ERR_UNAVAILABLE; /* an answer without its team: try again later */
	rc = plinth_call_in(c, "GET", "teams", a->team, NULL, NULL, 0, &status, &res);
	if (rc != 0)
		return rc;
	if (status != 200) {
		ctl_log("team %s of allocation %s: GET answered %ld %s", a->team, a->id, status,
			problem_detail(res));
		json_decref(res);
		return ERR_UNAVAILABLE;
	}
	a->team_ns[0] = '\0';
	json_array_foreach(json_object_get(res, "namespaces"), i, v) {
		const char *ns = json_string_value(v);
		int n = ns ? snprintf(a->team_ns + len, sizeof a->team_ns - len, "%s%s",
				      len ? "," : "", ns) : -1;
		if (n < 0 || (size_t)n >= sizeof a->team_ns - len) {
			ctl_log("team %s: its namespaces do not fit (%zu bytes)", a->team,
				sizeof a->team_ns);
			json_decref(res);
			return ERR_INVALID;
		}
		len += (size_t)n;
	}
	json_decref(res);
	a->ns_known = true;
	return 0;
}

/* Reports one transition; 0 when Plinth took it (or had it already). */
static int alloc_report(struct ctl *c, struct ctl_alloc *a, const char *verb, const char *field,
	int64_t at)
{
	json_t *res = NULL;
	long status = 0;
	char when[TIME_FMT_LEN];
	int rc = plinth_call(c, "POST", a->id, verb, field, at, &status, &res);

	if (rc != 0) {
		c->report_failures++;
		return rc;
	}
	time_format_rfc3339(at, when);
	if (status == 200) {
		alloc_learn(a, res, false);
		if (strcmp(verb, "start") == 0) {
			c->starts++;
			ctl_log("allocation %s: started at %s", a->id, when);
		} else {
			const char *cost = json_string_value(json_object_get(res, "actual_cost"));
			c->completes++;
			a->st = CTL_DONE;
			ctl_log("allocation %s: completed at %s, charged %s", a->id, when,
				cost ? cost : "?");
		}
	} else if (status == 409 || status == 404) {
		/* Someone else moved it (a member, an admin, expiry, an earlier life of
		 * this controller): ask what it is now. */
		ctl_log("allocation %s: %s answered %ld %s", a->id, verb, status, problem_detail(res));
		a->st = CTL_UNKNOWN;
		c->report_failures++;
		rc = ERR_CONFLICT;
	} else {
		if (a->last_logged != at)
			ctl_log("allocation %s: %s at %s answered %ld %s (will retry)", a->id, verb,
				when, status, problem_detail(res));
		a->last_logged = at;
		c->report_failures++;
		rc = ERR_UNAVAILABLE;
	}
	json_decref(res);
	return rc;
}

/* Cancels an allocation that never ran (its Kueue Workload was evicted,
 * deleted or finished first): its reservation goes back at once instead of
 * at expiry.  c->mu held. */
static void alloc_release(struct ctl *c, struct ctl_alloc *a)
{
	json_t *res = NULL;
	long status = 0;

	if (a->st == CTL_UNKNOWN && alloc_fetch(c, a) != 0)
		return;
	if (a->st != CTL_APPROVED)
		return;
	if (plinth_call(c, "POST", a->id, "cancel", NULL, 0, &status, &res) != 0)
		return;
	if (status == 200) {
		alloc_learn(a, res, false);
		ctl_log("allocation %s: released (its workload ended before it ran)", a->id);
	} else {
		ctl_log("allocation %s: cancel answered %ld %s", a->id, status, problem_detail(res));
		a->st = CTL_UNKNOWN;
	}
	json_decref(res);
}

/* Brings Plinth in line with what the cluster says about a.  Called with c->mu held. */
static void alloc_reconcile(struct ctl *c, struct ctl_alloc *a)
{
	static const struct usage_job unseen_job = { 0 };
	const struct usage_job *job = NULL;
	struct usage_pod *pods = NULL;
	struct usage u;
	bool owned = false;

	if (a->st == CTL_DONE || !c->jobs_synced || !c->pods_synced || !c->leader)
		return;
	if (alloc_namespaces(c, a) != 0 || a->st == CTL_DONE)
		return;
	pods = malloc((a->npods ? a->npods : 1) * sizeof *pods);
	if (pods == NULL)
		return;
	size_t npods = 0;
	const char *foreign = NULL;
	for (size_t i = 0; i < a->npods; i++) {
		/* Another team's namespace may not use this allocation (the webhook
		 * refuses such pods; with it failing open, they still never count). */
		if (!admission_team_has_namespace(a->team_ns, a->pods[i].ns)) {
			foreign = a->pods[i].ns;
			continue;
		}
		pods[npods++] = a->pods[i].u;
		owned = owned || a->pods[i].owned_by_job;
	}
	bool job_ours = a->has_job && admission_team_has_namespace(a->team_ns, a->job_ns);
	if (a->has_job && !job_ours)
		foreign = a->job_ns;
	if (foreign != NULL && !a->foreign_logged) {
		ctl_log("allocation %s of team %s: a workload in namespace '%s' carries it, but the "
			"team's namespaces are %s: not counted", a->id, a->team, foreign, a->team_ns);
		a->foreign_logged = true;
	}
	struct usage_job wl_job = { 0 };

	if (job_ours) {
		job = &a->job;
	} else if (a->wl_ended) {
		wl_job.complete_at = a->wl_end;
		job = &wl_job;
	} else if (owned)
		job = &unseen_job; /* its Job is not labelled: only a deletion we never see ends it */
	usage_derive(job, pods, npods, &u);
	free(pods);
	if (u.started_at == 0 && a->wl_ended && !a->has_job) {
		alloc_release(c, a); /* a Kueue Workload over before any pod ran */
		return;
	}
	if (u.started_at == 0 && u.ended_at == 0)
		return;
	/* Two rounds at most: a 409 makes us look the allocation up once more. */
	for (int round = 0; round < 2 && a->st != CTL_DONE; round++) {
		if (a->st == CTL_UNKNOWN && alloc_fetch(c, a) != 0)
			return;
		if (a->st == CTL_APPROVED) {
			if (u.started_at == 0)
				return; /* over before it ran: it expires unused */
			int64_t at = u.started_at > a->approved_at ? u.started_at : a->approved_at;
			int rc = alloc_report(c, a, "start", "started_at", at);
			if (rc == ERR_CONFLICT)
				continue;
			if (rc != 0)
				return;
		}
		if (a->st == CTL_RUNNING) {
			if (u.ended_at == 0)
				return;
			int64_t at = u.ended_at > a->started_at ? u.ended_at : a->started_at;
			int rc = alloc_report(c, a, "complete", "ended_at", at);
			if (rc == ERR_CONFLICT)
				continue;
			return;
		}
	}
}

/* Forgets allocations that are done and whose objects are all gone, so a
 * long-running controller's memory follows the live workload.  Should one
 * of them come back, it costs one GET to learn it is done.  c->mu held. */
static void ctl_prune(struct ctl *c)
{
	size_t keep = 0;

	for (size_t i = 0; i < c->n; i++) {
		struct ctl_alloc *a = &c->a[i];
		bool gone = a->st == CTL_DONE && (!a->has_job || a->job.deleted);

		for (size_t j = 0; gone && j < a->npods; j++)
			gone = a->pods[j].u.deleted;
		if (gone) {
			free(a->pods);
			continue;
		}
		if (keep != i)
			c->a[keep] = *a;
		keep++;
	}
	c->n = keep;
}

/* --- orphaned Jobs, --enforce and /metrics ---------------------------------- */

/* True when a's Job is alive although Plinth says the allocation is over:
 * cancelled or expired, or completed while the Job is not finished.  An id
 * unknown to Plinth (404) is not enough: a controller pointed at the wrong
 * Plinth must not delete anything.  c->mu held. */
static bool alloc_orphaned(const struct ctl_alloc *a)
{
	if (a->st != CTL_DONE || !a->has_job || a->job.deleted || a->job.deletion != 0 ||
	    a->job.complete_at != 0 || a->job.failed_at != 0 || a->job_name[0] == '\0')
		return false;
	return strcmp(a->final, "cancelled") == 0 || strcmp(a->final, "expired") == 0 ||
	       strcmp(a->final, "completed") == 0;
}

/* Looks up, in Plinth, the allocations of live Jobs it still believes are
 * approved or running (at most CTL_CHECK_MAX per round, resuming where the
 * last round stopped), so an allocation that ended while its Job lives is
 * learnt.  Leader only; c->mu held. */
static void ctl_check_round(struct ctl *c)
{
	size_t done = 0;

	if (!c->leader || c->n == 0)
		return;
	if (c->check_cursor >= c->n)
		c->check_cursor = 0;
	for (size_t k = 0; k < c->n && done < CTL_CHECK_MAX; k++) {
		struct ctl_alloc *a = &c->a[(c->check_cursor + k) % c->n];

		if (a->st == CTL_DONE || !a->has_job || a->job.deleted)
			continue;
		done++;
		(void)alloc_fetch(c, a); /* a failure is logged; the next round tries again */
	}
	c->check_cursor = (c->check_cursor + CTL_CHECK_MAX) % c->n;
}

/* Deletes one orphaned Job (Background propagation: its pods go too);
 * a 404 means it is gone already.  c->mu held. */
static void alloc_enforce(struct ctl *c, struct ctl_alloc *a)
{
	char path[700], detail[KUBE_DETAIL_LEN] = "";
	json_t *res = NULL;
	long status = 0;

	if (util_fmt(path, sizeof path, "/apis/batch/v1/namespaces/%s/jobs/%s"
		     "?propagationPolicy=Background", a->job_ns, a->job_name) != 0)
		return; /* cannot happen: both are bounded DNS names */
	if (kube_request(c->kc, "DELETE", path, NULL, &status, &res, detail) != 0) {
		ctl_log("deleting orphaned Job %s/%s: %s (will retry)", a->job_ns, a->job_name, detail);
		return;
	}
	if (status == 200 || status == 202) {
		c->deletions++;
		a->enforced = true;
		ctl_log("deleted orphaned Job %s/%s: allocation %s is %s", a->job_ns, a->job_name,
			a->id, a->final);
	} else if (status == 404) {
		a->enforced = true;
	} else if (!a->enforce_logged) {
		const char *msg = json_string_value(json_object_get(res, "message"));
		ctl_log("deleting orphaned Job %s/%s answered %ld %s (will retry)", a->job_ns,
			a->job_name, status, msg ? msg : "");
		a->enforce_logged = true;
	}
	json_decref(res);
}

/* --enforce: the leader deletes up to CTL_ENFORCE_MAX orphaned Jobs.  c->mu held. */
static void ctl_enforce_round(struct ctl *c)
{
	size_t done = 0;

	if (!c->enforce || !c->leader)
		return;
	for (size_t i = 0; i < c->n && done < CTL_ENFORCE_MAX; i++) {
		if (c->a[i].enforced || !alloc_orphaned(&c->a[i]))
			continue;
		done++;
		alloc_enforce(c, &c->a[i]);
	}
}

/* The Prometheus text exposition of c; a malloc'd string or NULL. */
static char *ctl_metrics_text(struct ctl *c, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	bool ok;

	if (f == NULL)
		return NULL;
	if (pthread_mutex_lock(&c->mu) != 0) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fputs("# HELP plinth_controller_orphaned_jobs Jobs alive while their allocation is "
	      "cancelled, expired or completed.\n"
	      "# TYPE plinth_controller_orphaned_jobs gauge\n", f);
	/* Namespaces and Job names are DNS names (checked when read): no escaping needed. */
	for (size_t i = 0; i < c->n; i++)
		if (alloc_orphaned(&c->a[i]))
			fprintf(f, "plinth_controller_orphaned_jobs{namespace=\"%s\",job=\"%s\"} 1\n",
				c->a[i].job_ns, c->a[i].job_name);
	fprintf(f, "# HELP plinth_controller_leader 1 when this replica reports to Plinth.\n"
		   "# TYPE plinth_controller_leader gauge\n"
		   "plinth_controller_leader %d\n"
		   "# HELP plinth_controller_reports_total Reports Plinth accepted.\n"
		   "# TYPE plinth_controller_reports_total counter\n"
		   "plinth_controller_reports_total{verb=\"start\"} %lu\n"
		   "plinth_controller_reports_total{verb=\"complete\"} %lu\n"
		   "# HELP plinth_controller_report_failures_total Reports Plinth did not take.\n"
		   "# TYPE plinth_controller_report_failures_total counter\n"
		   "plinth_controller_report_failures_total %lu\n"
		   "# HELP plinth_controller_enforced_deletions_total Orphaned Jobs deleted "
		   "(--enforce).\n"
		   "# TYPE plinth_controller_enforced_deletions_total counter\n"
		   "plinth_controller_enforced_deletions_total %lu\n",
		c->leader ? 1 : 0, c->starts, c->completes, c->report_failures, c->deletions);
	pthread_mutex_unlock(&c->mu);
	ok = !ferror(f);
	if (fclose(f) != 0 || !ok) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* libmicrohttpd handler: GET /metrics, 404 for any other path, 405 otherwise. */
static enum MHD_Result ctl_metrics_handler(void *cls, struct MHD_Connection *conn,
	const char *url, const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **con_cls)
{
	static const char nf[] = "not found\n", na[] = "method not allowed\n";
	struct MHD_Response *r;
	unsigned int code = MHD_HTTP_OK;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* a body is ignored */
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		r = MHD_create_response_from_buffer(sizeof na - 1, (void *)na, MHD_RESPMEM_PERSISTENT);
	} else if (strcmp(url, "/metrics") != 0) {
		code = MHD_HTTP_NOT_FOUND;
		r = MHD_create_response_from_buffer(sizeof nf - 1, (void *)nf, MHD_RESPMEM_PERSISTENT);
	} else {
		text = ctl_metrics_text(cls, &len);
		if (text == NULL)
			return MHD_NO;
		r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
		if (r == NULL)
			free(text);
	}
	if (r == NULL)
		return MHD_NO;
	if (code == MHD_HTTP_OK &&
	    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8") !=
		    MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Starts the /metrics responder on HOST:PORT (numeric or resolvable host,
 * "[v6]" allowed).  Returns the daemon or NULL with a reason in why. */
static struct MHD_Daemon *ctl_metrics_start(struct ctl *c, const char *listen, char *why,
	size_t whylen)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	long long port = 0;
	size_t hl;
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct MHD_Daemon *d;
	int rc;

	if (colon == NULL || cli_parse_int(colon + 1, &port) != 0 || port < 1 || port > 65535) {
		snprintf(why, whylen, "--metrics-listen must be HOST:PORT (port 1..65535)");
		return NULL;
	}
	hl = (size_t)(colon - listen);
	if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
		listen++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof host) {
		snprintf(why, whylen, "--metrics-listen must be HOST:PORT (host missing or too long)");
		return NULL;
	}
	memcpy(host, listen, hl);
	host[hl] = '\0';
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0 || ai == NULL) {
		snprintf(why, whylen, "--metrics-listen %s: %s", host, gai_strerror(rc));
		return NULL;
	}
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
			(ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, ctl_metrics_handler, c,
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)16,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
		MHD_OPTION_END);
	freeaddrinfo(ai);
	if (d == NULL)
		snprintf(why, whylen, "--metrics-listen %s: cannot listen there", listen);
	return d;
}

/* --- informer callbacks --------------------------------------------------- */

struct ctl_kind {
	struct ctl *c;
	bool pods; /* false: Jobs */
};

static void ctl_list_begin(struct ctl *c, bool pods)
{
	for (size_t i = 0; i < c->n; i++) {
		if (!pods)
			c->a[i].job_listed = false;
		for (size_t j = 0; pods && j < c->a[i].npods; j++)
			c->a[i].pods[j].listed = false;
	}
}

/* After a full list, what it did not name was deleted while we were not watching. */
static void ctl_list_end(struct ctl *c, bool pods)
{
	int64_t now = (int64_t)time(NULL);

	for (size_t i = 0; i < c->n; i++) {
		struct ctl_alloc *a = &c->a[i];
		if (!pods && a->has_job && !a->job_listed && !a->job.deleted) {
			a->job.deleted = true;
			a->job.deleted_seen = now;
		}
		for (size_t j = 0; pods && j < a->npods; j++) {
			if (!a->pods[j].listed && !a->pods[j].u.deleted) {
				a->pods[j].u.deleted = true;
				a->pods[j].u.deleted_seen = now;
			}
		}
	}
	if (pods)
		c->pods_synced = true;
	else
		c->jobs_synced = true;
}

static void ctl_object(struct ctl *c, bool pods, enum kube_event ev, const json_t *obj)
{
	const char *id = obj_alloc_id(obj), *uid = obj_uid(obj);
	struct ctl_alloc *a;
	int64_t now = (int64_t)time(NULL);

	if (id == NULL || uid == NULL)
		return;
	if (strlen(id) >= CTL_ID_LEN || strlen(uid) >= CTL_UID_LEN) {
		/* Label values are at most 63 bytes and uids 36: not ours. */
		ctl_log("ignored an object whose allocation id or uid is too long");
		return;
	}
	a = alloc_get(c, id);
	if (a == NULL) {
		ctl_log("out of memory tracking allocation %s", id);
		return;
	}
	if (pods) {
		struct ctl_pod *p = pod_get(a, uid);
		if (p == NULL) {
			ctl_log("out of memory tracking a pod of %s", id);
			return;
		}
		pod_read(obj, &p->u, &p->owned_by_job);
		const char *pns = json_string_value(
			json_object_get(json_object_get(obj, "metadata"), "namespace"));
		if (pns != NULL && dns_name_ok(pns, 63))
			snprintf(p->ns, sizeof p->ns, "%s", pns);
		else
			p->ns[0] = '\0';
		p->listed = true;
		if (ev == KUBE_EV_DELETED) {
			p->u.deleted = true;
			p->u.deleted_seen = now;
		}
	} else {
		/* One Job per allocation: a newer one replaces the record. */
		const json_t *meta = json_object_get(obj, "metadata");
		const char *jns = json_string_value(json_object_get(meta, "namespace"));
		const char *jname = json_string_value(json_object_get(meta, "name"));

		if (strcmp(a->job_uid, uid) != 0)
			a->enforced = a->enforce_logged = false; /* a new Job of the same id */
		snprintf(a->job_uid, sizeof a->job_uid, "%s", uid);
		/* Kept only when they are DNS names: they go into a URL and /metrics. */
		if (jns != NULL && jname != NULL && dns_name_ok(jns, 63) &&
		    dns_name_ok(jname, CTL_NAME_LEN - 1)) {
			snprintf(a->job_ns, sizeof a->job_ns, "%s", jns);
			snprintf(a->job_name, sizeof a->job_name, "%s", jname);
		} else {
			a->job_ns[0] = a->job_name[0] = '\0';
		}
		a->has_job = true;
		job_read(obj, &a->job);
		a->job_listed = true;
		if (ev == KUBE_EV_DELETED) {
			a->job.deleted = true;
			a->job.deleted_seen = now;
		}
	}
	alloc_reconcile(c, a);
}

static void ctl_on_event(void *ctx, enum kube_event ev, json_t *obj)
{
	struct ctl_kind *k = ctx;
	struct ctl *c = k->c;

	if (pthread_mutex_lock(&c->mu) != 0)
		return;
	switch (ev) {
	case KUBE_EV_LIST_BEGIN:
		ctl_list_begin(c, k->pods);
		break;
	case KUBE_EV_LIST_END:
		ctl_list_end(c, k->pods);
		for (size_t i = 0; i < c->n; i++)
			alloc_reconcile(c, &c->a[i]);
		break;
	default:
		ctl_object(c, k->pods, ev, obj);
		break;
	}
	pthread_mutex_unlock(&c->mu);
}

static void ctl_on_log(void *ctx, const char *msg)
{
	(void)ctx;
	ctl_log("%s", msg);
}

static void *ctl_informer_thread(void *arg)
{
	const struct kube_informer *inf = arg;

	if (kube_informer_run(inf) != 0) {
		ctl_log("watch of %s stopped: out of memory", inf->path);
		ctl_stop = 1;
	}
	return NULL;
}

/* A lower-case DNS name: a-z, 0-9, '-' and (names only) '.', 1..max bytes. */
static bool dns_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
			    (*p == '.' && max > 63)))
			return false;
	return true;
}

/* One lease round (no lock held while it talks to the API server); returns
 * true when this replica just became the leader (everything is reconciled). */
static bool ctl_lease_round(struct ctl *c, struct kube_lease *l)
{
	struct timespec ts;
	char detail[KUBE_DETAIL_LEN];
	bool was = l->leader, now;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return false;
	now = kube_lease_round(l, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, detail);
	/* A failure is logged once until it changes (a follower retries every round). */
	if (detail[0] != '\0' && strcmp(detail, c->lease_detail) != 0)
		ctl_log("%s", detail);
	snprintf(c->lease_detail, sizeof c->lease_detail, "%s", detail);
	if (now != was)
		ctl_log(now ? "leader: holding lease %s as %s" : "no longer the leader (lease %s, %s)",
			l->path, l->identity);
	if (pthread_mutex_lock(&c->mu) != 0)
		return false;
	c->leader = now;
	/* What we knew of Plinth's side may be stale after another leader's
	 * turn: look again before reporting. */
	for (size_t i = 0; now && !was && i < c->n; i++)
		if (c->a[i].st != CTL_DONE)
			c->a[i].st = CTL_UNKNOWN;
	pthread_mutex_unlock(&c->mu);
	return now && !was;
}

/* kueue.c: the Workload holding allocation id is over at `at`. */
static void ctl_kueue_end(void *ctx, const char *id, int64_t at)
{
	struct ctl *c = ctx;
	struct ctl_alloc *a;

	if (pthread_mutex_lock(&c->mu) != 0)
		return;
	a = alloc_get(c, id);
	if (a != NULL && !a->wl_ended) {
		a->wl_ended = true;
		a->wl_end = at;
		alloc_reconcile(c, a);
	}
	pthread_mutex_unlock(&c->mu);
}

static bool ctl_kueue_leader(void *ctx)
{
	const struct ctl *c = ctx;
	return c->leader;
}

int cmd_controller(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
		{ "namespace", required_argument, NULL, OPT_NAMESPACE },
		{ "watch-timeout", required_argument, NULL, OPT_WATCH_TIMEOUT },
		{ "lease-namespace", required_argument, NULL, OPT_LEASE_NAMESPACE },
		{ "lease-name", required_argument, NULL, OPT_LEASE_NAME },
		{ "lease-duration", required_argument, NULL, OPT_LEASE_DURATION },
		{ "check-interval", required_argument, NULL, OPT_CHECK_INTERVAL },
		{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
		{ "enforce", no_argument, NULL, OPT_ENFORCE },
		{ "kueue", no_argument, NULL, OPT_KUEUE },
		{ "kueue-default-runtime", required_argument, NULL, OPT_KUEUE_RUNTIME },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *kubeconfig = NULL, *ns = NULL, *lease_ns = NULL, *lease_name = "plinth-controller";
	const char *metrics_listen = NULL;
	long long watch_timeout = 300, lease_duration = 15, check_interval = 30;
	long long kueue_runtime = 86400;
	bool enforce = false, kueue = false;
	struct kueue *kq = NULL;
	struct MHD_Daemon *metrics = NULL;
	char why[512];
	struct kube_lease lease;
	char identity[300], host[256];
	struct kube_config kc = { 0 };
	struct ctl st = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct ctl_kind kjobs = { &st, false }, kpods = { &st, true };
	struct kube_informer ijobs, ipods;
	char detail[KUBE_DETAIL_LEN] = "", jobs_path[512], pods_path[512];
	pthread_t tj, tp;
	bool tj_ok = false, tp_ok = false;
	struct sigaction sa;
	int o, rc;

	c->help = controller_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		if (o == OPT_KUBECONFIG) {
			kubeconfig = optarg;
		} else if (o == OPT_NAMESPACE) {
			ns = optarg;
		} else if (o == OPT_LEASE_NAMESPACE) {
			lease_ns = optarg;
		} else if (o == OPT_LEASE_NAME) {
			lease_name = optarg;
		} else if (o == OPT_LEASE_DURATION) {
			if (cli_parse_int(optarg, &lease_duration) != 0 || lease_duration < 5 ||
			    lease_duration > 300)
				return cli_usage(c, "--lease-duration must be 5..300 seconds");
		} else if (o == OPT_CHECK_INTERVAL) {
			if (cli_parse_int(optarg, &check_interval) != 0 || check_interval < 1 ||
			    check_interval > 3600)
				return cli_usage(c, "--check-interval must be 1..3600 seconds");
		} else if (o == OPT_METRICS_LISTEN) {
			metrics_listen = optarg;
		} else if (o == OPT_ENFORCE) {
			enforce = true;
		} else if (o == OPT_KUEUE) {
			kueue = true;
		} else if (o == OPT_KUEUE_RUNTIME) {
			if (cli_parse_int(optarg, &kueue_runtime) != 0 || kueue_runtime < 60 ||
			    kueue_runtime > 604800)
				return cli_usage(c, "--kueue-default-runtime must be 60..604800 seconds");
		} else if (o == OPT_WATCH_TIMEOUT) {
			if (cli_parse_int(optarg, &watch_timeout) != 0 || watch_timeout < 1 ||
			    watch_timeout > 3600)
				return cli_usage(c, "--watch-timeout must be 1..3600 seconds");
		} else {
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				return rc;
		}
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (c->token == NULL)
		return cli_usage(c, "a service token is required (--token or PLINTH_TOKEN)");
	if (ns != NULL && !dns_name_ok(ns, 63))
		return cli_usage(c, "--namespace must be a DNS label");
	if (lease_ns != NULL && !dns_name_ok(lease_ns, 63))
		return cli_usage(c, "--lease-namespace must be a DNS label");
	if (!dns_name_ok(lease_name, 253))
		return cli_usage(c, "--lease-name must be a DNS name (a-z, 0-9, '-')");
	rc = kubeconfig ? kube_config_load_file(kubeconfig, &kc, detail)
			: kube_config_in_cluster(NULL, &kc, detail);
	if (rc != 0) {
		cli_printf(stderr, "plinth controller: %s\n", detail);
		return CLI_EXIT_USAGE;
	}
	if (util_fmt(jobs_path, sizeof jobs_path, "%s%s%s/jobs", "/apis/batch/v1",
		     ns ? "/namespaces/" : "", ns ? ns : "") != 0 ||
	    util_fmt(pods_path, sizeof pods_path, "%s%s%s/pods", "/api/v1",
		     ns ? "/namespaces/" : "", ns ? ns : "") != 0) {
		cli_printf(stderr, "plinth controller: --namespace is too long\n");
		kube_config_done(&kc);
		return CLI_EXIT_USAGE;
	}
	st.url = c->url;
	st.token = c->token;
	st.leader = lease_ns == NULL;
	st.kc = &kc;
	st.enforce = enforce;
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = '\0';
	snprintf(identity, sizeof identity, "%s_%ld", host, (long)getpid());
	if (lease_ns != NULL &&
	    kube_lease_init(&lease, &kc, lease_ns, lease_name, identity, (long)lease_duration) != 0) {
		kube_config_done(&kc);
		return cli_usage(c, "--lease-namespace/--lease-name are too long");
	}

	if (metrics_listen != NULL) {
		metrics = ctl_metrics_start(&st, metrics_listen, why, sizeof why);
		if (metrics == NULL) {
			cli_printf(stderr, "plinth controller: %s\n", why);
			kube_config_done(&kc);
			return CLI_EXIT_USAGE;
		}
		ctl_log("serving /metrics on %s%s", metrics_listen,
			enforce ? " (enforcing: orphaned Jobs are deleted)" : "");
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ctl_on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
		if (metrics != NULL)
			MHD_stop_daemon(metrics);
		kube_config_done(&kc);
		return CLI_EXIT_API;
	}
	signal(SIGPIPE, SIG_IGN);

	ijobs = (struct kube_informer){ .cfg = &kc, .path = jobs_path, .label_selector = CTL_LABEL,
		.watch_timeout_s = (long)watch_timeout, .on_event = ctl_on_event, .ctx = &kjobs,
		.stop = &ctl_stop, .log = ctl_on_log };
	ipods = ijobs;
	ipods.path = pods_path;
	ipods.ctx = &kpods;
	ctl_log("watching %s and %s on %s, reporting to %s", jobs_path, pods_path, kc.server,
		c->url);
	tj_ok = pthread_create(&tj, NULL, ctl_informer_thread, &ijobs) == 0;
	tp_ok = tj_ok && pthread_create(&tp, NULL, ctl_informer_thread, &ipods) == 0;
	if (!tj_ok || !tp_ok) {
		ctl_log("cannot start the watch threads");
		ctl_stop = 1;
	}
	if (kueue && !ctl_stop) {
		struct kueue_opts ko = { .kc = &kc, .url = c->url, .token = c->token, .ns = ns,
			.watch_timeout_s = (long)watch_timeout, .default_seconds = kueue_runtime,
			.stop = &ctl_stop, .on_end = ctl_kueue_end, .ctx = &st,
			.is_leader = ctl_kueue_leader };
		kq = kueue_start(&ko);
		if (kq == NULL) {
			ctl_log("cannot start the Kueue admission check controller");
			ctl_stop = 1;
		}
	}
	/* The lease (when electing), and retries: anything Plinth refused for a
	 * passing reason (unreachable, 5xx, a time a little ahead of its clock)
	 * is tried again. */
	for (unsigned tick = 0; !ctl_stop; tick++) {
		struct timespec ts = { 1, 0 };
		bool all = tick > 0 && tick % CTL_RETRY_S == 0;
		bool check = tick > 0 && tick % (unsigned)check_interval == 0;

		if (lease_ns != NULL && tick % CTL_LEASE_EVERY_S == 0)
			all = ctl_lease_round(&st, &lease) || all;
		if (all && pthread_mutex_lock(&st.mu) == 0) {
			for (size_t i = 0; i < st.n; i++)
				alloc_reconcile(&st, &st.a[i]);
			ctl_prune(&st);
			pthread_mutex_unlock(&st.mu);
		}
		if (check && st.jobs_synced && st.pods_synced && pthread_mutex_lock(&st.mu) == 0) {
			ctl_check_round(&st);
			ctl_enforce_round(&st);
			pthread_mutex_unlock(&st.mu);
		}
		if (kq != NULL)
			kueue_tick(kq);
		nanosleep(&ts, NULL);
	}
	kueue_stop(kq);
	if (tj_ok)
		pthread_join(tj, NULL);
	if (tp_ok)
		pthread_join(tp, NULL);
	if (metrics != NULL)
		MHD_stop_daemon(metrics);
	if (lease_ns != NULL)
		kube_lease_release(&lease);
	ctl_log("stopped (%lu starts, %lu completions reported)", st.starts, st.completes);
	for (size_t i = 0; i < st.n; i++)
		free(st.a[i].pods);
	free(st.a);
	kube_config_done(&kc);
	return tj_ok && tp_ok ? CLI_EXIT_OK : CLI_EXIT_API;
}
