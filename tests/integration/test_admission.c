/*
 * test_admission.c - the Kubernetes admission webhook (issue 13, part 2)
 * against the real daemon (SQLite, and PostgreSQL with ITEST_PG=1): real
 * admission.k8s.io/v1 AdmissionReview documents posted over plain HTTP and
 * over the TLS listener (a throwaway CA, server and client certificate made
 * with openssl in the test's own temporary directory; libcurl trusts the CA
 * and presents the client certificate).
 *
 * The TLS listener serves the review route alone and without a token (a
 * managed control plane sends none); with --webhook-client-ca the client
 * certificate is the caller's identity.  Plain HTTP keeps requiring a
 * service or admin token for the review.
 */
#include "itest.h"
#include "itest_pg.h"

#include "api/admission_cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define H100 "NVIDIA-H100-80GB-HBM3"
#define A100 "NVIDIA-A100-SXM4-80GB"

struct fixture {
	struct itest_daemon *d;
	char pki[ITEST_PATH_LEN]; /* CA, server and client certificates */
	char tls_url[128];        /* "https://127.0.0.1:PORT" */
	const char *service;      /* a service token */
	const char *member;       /* a member token of team nlp */
	const char *ok;           /* approved, nlp, h100 x 4 */
	const char *other;        /* approved, vision, h100 x 4 */
	const char *cancelled;    /* cancelled, nlp, h100 x 4 */
};

static struct fixture fx;

static int run(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "test_admission: `%s` failed (%d)\n", cmd, rc);
	return rc;
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate. */
static int make_pki(const char *dir)
{
	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && "
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
		 "-subj /CN=plinth-test-ca && "
		 "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && "
		 "printf 'subjectAltName=IP:127.0.0.1\\n' > srv.ext && "
		 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
		 "-days 1 -extfile srv.ext && "
		 "openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr -subj /CN=kube-apiserver && "
		 "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 1 && "
		 /* the same key, certified for TLS servers only: not a client */
		 "printf 'extendedKeyUsage=serverAuth\\n' > srvonly.ext && "
		 "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli-srv.pem "
		 "-days 1 -extfile srvonly.ext && "
		 "openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 1 "
		 "-subj /CN=rogue",
		 dir);
	return run(cmd);
}

/* Reads d's webhook URL (the ready file's second line) into url[128]. */
static int read_tls_url(const struct itest_daemon *d, char *url)
{
	FILE *f = fopen(d->ready, "r");
	char line[256] = "", second[256] = "";
	if (f == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL || fgets(second, sizeof(second), f) == NULL)
		second[0] = '\0';
	fclose(f);
	second[strcspn(second, "\r\n")] = '\0';
	if (strncmp(second, "https://127.0.0.1:", 18) != 0)
		return -1;
	snprintf(url, 128, "%s", second);
	return 0;
}

static const char *alloc_id(struct itest_resp *r)
{
	ITEST_STATUS(r, 201);
	return itest_jstr(r->json, "id");
}

static int setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	const char *tmp = getenv("TMPDIR");
	snprintf(fx.pki, sizeof(fx.pki), "%s/plinth-pki-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(fx.pki) == NULL || make_pki(fx.pki) != 0)
		return -1;
	char cert[600], key[600], ca[600];
	snprintf(cert, sizeof(cert), "%s/srv.pem", fx.pki);
	snprintf(key, sizeof(key), "%s/srv.key", fx.pki);
	snprintf(ca, sizeof(ca), "%s/ca.pem", fx.pki);
	const char *args[] = {"--webhook-listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key",
			      key, "--webhook-client-ca", ca, NULL};
	fx.d = itest_daemon_new(args);
	if (fx.d == NULL || read_tls_url(fx.d, fx.tls_url) != 0)
		return -1;
	struct itest_daemon *d = fx.d;
	itest_put_gpu(d, "h100-80gb", "4.00", 64);
	itest_put_team(d, "nlp", "100000");
	itest_put_team(d, "vision", "100000");
	fx.service = itest_make_token(d, "service", "[]", NULL);
	fx.member = itest_make_token(d, "member", "[\"nlp\"]", NULL);
	fx.ok = alloc_id(itest_allocate(d, d->admin, "nlp", "llm", "h100-80gb", 4, "1"));
	fx.other = alloc_id(itest_allocate(d, d->admin, "vision", "cv", "h100-80gb", 4, "1"));
	fx.cancelled = alloc_id(itest_allocate(d, d->admin, "nlp", "llm", "h100-80gb", 4, "1"));
	ITEST_STATUS(itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/cancel", fx.cancelled),
			       d->admin, "{}"),
		     200);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	int rc = 0;
	if (fx.d != NULL) {
		rc = itest_daemon_stop(fx.d) == 0 ? 0 : -1;
		if (rc != 0)
			itest_daemon_dump_log(fx.d, 8192);
		itest_daemon_free(fx.d);
	}
	if (fx.pki[0] != '\0') {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.pki);
		if (run(cmd) != 0)
			rc = -1;
	}
	return rc;
}

/* What a review asks: a Pod or a Job in a namespace. */
struct ask {
	const char *kind;      /* "Pod" or "Job" */
	const char *op;        /* "CREATE" / "UPDATE" */
	const char *ns;
	const char *label;     /* plinth.io/allocation-id, NULL = none */
	const char *product;   /* nodeSelector nvidia.com/gpu.product, NULL = none */
	long gpus;             /* per container limit; 0 = no GPU resources */
	long init_gpus;        /* one init container's limit, 0 = none */
	long parallelism;      /* Job only, 0 = absent */
	bool deleting;         /* metadata.deletionTimestamp set */
};

/* The pod spec (new reference). */
static json_t *pod_spec(const struct ask *a)
{
	json_t *c = json_pack("{s:s, s:s}", "name", "trainer", "image", "pytorch/pytorch:2.5.1");
	if (a->gpus > 0)
		json_object_set_new(c, "resources",
				    json_pack("{s:{s:s, s:s}, s:{s:s}}", "limits", "nvidia.com/gpu",
					      itest_strf(fx.d, "%ld", a->gpus), "memory", "8Gi",
					      "requests", "cpu", "2"));
	json_t *spec = json_pack("{s:s, s:[o]}", "restartPolicy", "Never", "containers", c);
	if (a->init_gpus > 0)
		json_object_set_new(spec, "initContainers",
				    json_pack("[{s:s, s:s, s:{s:{s:i}}}]", "name", "prep", "image",
					      "busybox", "resources", "limits", "nvidia.com/gpu",
					      (json_int_t)a->init_gpus));
	if (a->product != NULL)
		json_object_set_new(spec, "nodeSelector",
				    json_pack("{s:s, s:s}", "nvidia.com/gpu.product", a->product,
					      "kubernetes.io/os", "linux"));
	return spec;
}

static json_t *labels(const struct ask *a)
{
	json_t *l = json_pack("{s:s}", "app", "train");
	if (a->label != NULL)
		json_object_set_new(l, "plinth.io/allocation-id", json_string(a->label));
	return l;
}

static json_t *object_plain(const struct ask *a);

/* The object of the review (new reference). */
static json_t *object(const struct ask *a)
{
	json_t *o = object_plain(a);
	if (a->deleting)
		json_object_set_new(json_object_get(o, "metadata"), "deletionTimestamp",
				    json_string("2026-12-06T07:00:00Z"));
	return o;
}

static json_t *object_plain(const struct ask *a)
{
	if (strcmp(a->kind, "Pod") == 0)
		return json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:o}", "apiVersion", "v1", "kind", "Pod",
				 "metadata", "name", "train-0", "namespace", a->ns, "labels",
				 labels(a), "spec", pod_spec(a));
	json_t *spec = json_pack("{s:i, s:{s:{s:o}, s:o}}", "backoffLimit", 2, "template",
				 "metadata", "labels", labels(a), "spec", pod_spec(a));
	if (a->parallelism > 0)
		json_object_set_new(spec, "parallelism", json_integer(a->parallelism));
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:o}", "apiVersion", "batch/v1", "kind", "Job",
			 "metadata", "name", "train", "namespace", a->ns, "labels", labels(a), "spec",
			 spec);
}

/* An AdmissionReview as the API server sends it (owned by fx.d). */
static const char *review(const char *uid, const struct ask *a, const struct ask *old)
{
	bool pod = strcmp(a->kind, "Pod") == 0;
	json_t *req = json_pack(
		"{s:s, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:s, s:s, "
		"s:{s:s, s:s}, s:o, s:b}",
		"uid", uid, "kind", "group", pod ? "" : "batch", "version", "v1", "kind", a->kind,
		"resource", "group", pod ? "" : "batch", "version", "v1", "resource",
		pod ? "pods" : "jobs", "requestKind", "group", pod ? "" : "batch", "version", "v1",
		"kind", a->kind, "name", pod ? "train-0" : "train", "namespace", a->ns, "operation",
		a->op, "userInfo", "username", "alice", "uid", "u1", "object", object(a), "dryRun", 0);
	assert_non_null(req);
	json_object_set_new(req, "oldObject", old ? object(old) : json_null());
	json_t *rv = json_pack("{s:s, s:s, s:o}", "apiVersion", "admission.k8s.io/v1", "kind",
			       "AdmissionReview", "request", req);
	char *text = json_dumps(rv, JSON_COMPACT);
	json_decref(rv);
	assert_non_null(text);
	return itest_keep(fx.d, text);
}

/* Checks a 200 AdmissionReview answer: same apiVersion/kind, our uid, the
 * verdict, and on denial a 403 Forbidden status whose message has `why`. */
static void check_answer(const struct itest_resp *r, const char *uid, bool allowed, const char *why)
{
	ITEST_STATUS(r, 200);
	assert_non_null(r->json);
	ITEST_STREQ(itest_jstr(r->json, "apiVersion"), "admission.k8s.io/v1");
	ITEST_STREQ(itest_jstr(r->json, "kind"), "AdmissionReview");
	ITEST_STREQ(itest_jstr(r->json, "response.uid"), uid);
	json_t *al = itest_jget(r->json, "response.allowed");
	assert_true(json_is_boolean(al));
	if (json_is_true(al) != allowed) {
		fprintf(stderr, "expected allowed=%d: %s\n", allowed, r->body);
		fail();
	}
	if (allowed) {
		assert_null(itest_jget(r->json, "response.status"));
		return;
	}
	assert_int_equal(itest_jint(r->json, "response.status.code"), 403);
	ITEST_STREQ(itest_jstr(r->json, "response.status.reason"), "Forbidden");
	const char *msg = itest_jstr(r->json, "response.status.message");
	if (msg == NULL || strstr(msg, why) == NULL) {
		fprintf(stderr, "the message lacks \"%s\": %s\n", why, r->body);
		fail();
	}
}

static struct itest_resp *post_review(const char *token, const char *body)
{
	return itest_req(fx.d, "POST", "/v1/admission/review", token, body);
}

static void expect(const char *uid, const struct ask *a, const struct ask *old, bool allowed,
		   const char *why)
{
	check_answer(post_review(fx.service, review(uid, a, old)), uid, allowed, why);
}

static void test_decisions_http(void **state)
{
	(void)state;
	struct ask a = {"Pod", "CREATE", "nlp", NULL, NULL, 0, 0, 0, false};
	/* No GPUs: allowed, no label or selection needed. */
	expect("u-nogpu", &a, NULL, true, NULL);
	a.label = "alloc_does_not_matter";
	expect("u-nogpu-label", &a, NULL, true, NULL);

	/* GPUs without a label. */
	a = (struct ask){"Pod", "CREATE", "nlp", NULL, H100, 4, 0, 0, false};
	expect("u-nolabel", &a, NULL, false, "no plinth.io/allocation-id label");
	expect("u-nolabel2", &a, NULL, false, "plinth quote");
	/* Another team's allocation. */
	a.label = fx.other;
	expect("u-other", &a, NULL, false, "belongs to team vision");
	/* A cancelled allocation. */
	a.label = fx.cancelled;
	expect("u-cancel", &a, NULL, false, "is cancelled");
	/* An allocation that does not exist. */
	a.label = "alloc_00000000000000000000000000";
	expect("u-unknown", &a, NULL, false, "does not exist");
	/* The wrong GPU type, and no GPU type at all. */
	a.label = fx.ok;
	a.product = A100;
	expect("u-type", &a, NULL, false, "selects GPU type a100-80gb");
	a.product = NULL;
	expect("u-nosel", &a, NULL, false, "nvidia.com/gpu.product: " H100);
	/* More GPUs than the allocation holds (also through an init container). */
	a.product = H100;
	a.gpus = 8;
	expect("u-more", &a, NULL, false, "holds 4");
	a.gpus = 1;
	a.init_gpus = 5;
	expect("u-init", &a, NULL, false, "asks for 5");
	/* The approved allocation: allowed. */
	a.gpus = 4;
	a.init_gpus = 0;
	expect("u-ok", &a, NULL, true, NULL);

	/* A Job: per pod x parallelism. */
	struct ask j = {"Job", "CREATE", "nlp", fx.ok, H100, 4, 0, 2, false};
	expect("u-job2", &j, NULL, false, "4 per pod x parallelism 2");
	j.parallelism = 0; /* absent: 1 */
	expect("u-job1", &j, NULL, true, NULL);
	j.gpus = 2;
	j.parallelism = 2;
	expect("u-job2x2", &j, NULL, true, NULL);
	/* UPDATE raising parallelism past the allocation: denied. */
	struct ask old = j;
	j.parallelism = 4;
	j.op = "UPDATE";
	expect("u-job-up", &j, &old, false, "parallelism 4");
	/* UPDATE asking nothing new of a cancelled allocation: allowed (metadata). */
	struct ask c = {"Job", "UPDATE", "nlp", fx.cancelled, H100, 4, 0, 0, false};
	expect("u-job-same", &c, &c, true, NULL);
	c.op = "CREATE";
	expect("u-job-cancelled", &c, NULL, false, "is cancelled");

	/* A Job being deleted may lose its finalizers even if the update
	 * changed what it asks; a Pod CREATE gets nothing from the field. */
	struct ask del = {"Job", "UPDATE", "nlp", fx.cancelled, H100, 8, 0, 0, true};
	struct ask del_old = del;
	del_old.gpus = 4;
	expect("u-job-deleting", &del, &del_old, true, NULL);
	struct ask pdel = {"Pod", "CREATE", "nlp", NULL, H100, 4, 0, 0, true};
	expect("u-pod-deleting", &pdel, NULL, false, "no plinth.io/allocation-id label");

	/* A Pod UPDATE or a DELETE is not judged. */
	a = (struct ask){"Pod", "UPDATE", "nlp", NULL, H100, 4, 0, 0, false};
	expect("u-pod-update", &a, &a, true, NULL);
}

/* A team's namespaces as "a,b" (owned by fx.d). */
static const char *team_namespaces(const char *team)
{
	struct itest_resp *r = itest_req(fx.d, "GET", itest_strf(fx.d, "/v1/teams/%s", team),
					 fx.d->admin, NULL);
	ITEST_STATUS(r, 200);
	json_t *a = itest_jget(r->json, "namespaces");
	assert_true(json_is_array(a));
	char buf[1200] = "";
	size_t i, len = 0;
	json_t *v;
	json_array_foreach(a, i, v)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? "," : "",
					json_string_value(v));
	return itest_strf(fx.d, "%s", buf);
}

static struct itest_resp *put_team_ns(const char *team, const char *namespaces_json)
{
	return itest_req(fx.d, "PUT", itest_strf(fx.d, "/v1/teams/%s", team), fx.d->admin,
			 itest_strf(fx.d,
				    "{\"display_name\":\"%s\",\"budget\":{\"amount\":\"100000\","
				    "\"period\":\"monthly\"}%s%s}",
				    team, namespaces_json ? ",\"namespaces\":" : "",
				    namespaces_json ? namespaces_json : ""));
}

/* A team owns one or more namespaces (default: its id); an allocation is
 * used only in its team's namespaces; a namespace belongs to one team. */
static void test_team_namespaces(void **state)
{
	(void)state;
	ITEST_STREQ(team_namespaces("nlp"), "nlp"); /* the default, also for teams made before v6 */
	struct itest_resp *r = put_team_ns("speech", "[\"speech-prod\",\"speech-dev\"]");
	ITEST_STATUS(r, 201);
	ITEST_STREQ(team_namespaces("speech"), "speech-dev,speech-prod"); /* sorted */
	const char *sp = alloc_id(itest_allocate(fx.d, fx.d->admin, "speech", "asr", "h100-80gb",
						 2, "1"));
	struct ask a = {"Pod", "CREATE", "speech-prod", sp, H100, 2, 0, 0, false};
	expect("ns-prod", &a, NULL, true, NULL);
	a.ns = "speech-dev";
	expect("ns-dev", &a, NULL, true, NULL);
	a.ns = "speech"; /* the team's id is not one of its namespaces any more */
	expect("ns-id", &a, NULL, false, "not to namespace speech (team speech's namespaces: "
					 "speech-dev,speech-prod)");
	a.ns = "nlp";
	expect("ns-nlp", &a, NULL, false, "belongs to team speech, not to namespace nlp");

	/* Another team's namespace: 409 naming the owner, nothing changed. */
	r = put_team_ns("vision", "[\"vision\",\"speech-dev\"]");
	ITEST_STATUS(r, 409);
	assert_non_null(strstr(itest_jstr(r->json, "detail"), "'speech-dev' belongs to team 'speech'"));
	ITEST_STREQ(team_namespaces("vision"), "vision");
	/* A PUT without namespaces keeps them. */
	ITEST_STATUS(put_team_ns("speech", NULL), 200);
	ITEST_STREQ(team_namespaces("speech"), "speech-dev,speech-prod");
	/* Bad lists: 422 naming the field, nothing changed. */
	const char *bad[][2] = {
		{"[]", "namespaces"},
		{"[\"Speech_Dev\"]", "namespaces[0]"},
		{"[\"ok\", 7]", "namespaces[1]"},
		{"[\"a\",\"b\",\"a\"]", "namespaces"},
		{"[\"a1\",\"a2\",\"a3\",\"a4\",\"a5\",\"a6\",\"a7\",\"a8\",\"a9\",\"b1\","
		 "\"b2\",\"b3\",\"b4\",\"b5\",\"b6\",\"b7\",\"b8\"]",
		 "namespaces"},
		{"\"speech-dev\"", "namespaces"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = put_team_ns("speech", bad[i][0]);
		ITEST_STATUS(r, 422);
		json_t *e0 = json_array_get(itest_jget(r->json, "errors"), 0);
		ITEST_STREQ(json_string_value(json_object_get(e0, "field")), bad[i][1]);
	}
	ITEST_STREQ(team_namespaces("speech"), "speech-dev,speech-prod");
	/* Given up by one team, a namespace can go to another. */
	ITEST_STATUS(put_team_ns("speech", "[\"speech-prod\"]"), 200);
	ITEST_STATUS(put_team_ns("vision", "[\"vision\",\"speech-dev\"]"), 200);
	ITEST_STREQ(team_namespaces("vision"), "speech-dev,vision");
	/* The audit log records the namespaces a change gave. */
	r = itest_req(fx.d, "GET", "/v1/audit?team=vision", fx.d->admin, NULL);
	ITEST_STATUS(r, 200);
	assert_non_null(strstr(r->body, "\"namespaces\":[\"speech-dev\",\"vision\"]"));
}

/* The allocation cache (api/admission_cache.h) never outlives a transition
 * made through this daemon: a pod admitted a moment ago (its allocation now
 * cached) is refused right after the cancel returns, and after a completion. */
static void test_cache_follows_transitions(void **state)
{
	(void)state;
	struct itest_daemon *d = fx.d;
	const char *id = alloc_id(itest_allocate(d, d->admin, "nlp", "llm", "h100-80gb", 4, "1"));
	struct ask a = {"Pod", "CREATE", "nlp", id, H100, 4, 0, 0, false};
	expect("c-1", &a, NULL, true, NULL);
	expect("c-2", &a, NULL, true, NULL); /* answered from the cache */
	ITEST_STATUS(itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/cancel", id), d->admin,
			       "{}"),
		     200);
	expect("c-3", &a, NULL, false, "is cancelled");

	const char *run = alloc_id(itest_allocate(d, d->admin, "nlp", "llm", "h100-80gb", 4, "1"));
	a.label = run;
	ITEST_STATUS(itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/start", run), d->admin,
			       "{}"),
		     200);
	expect("c-4", &a, NULL, true, NULL);
	ITEST_STATUS(itest_req(d, "POST", itest_strf(d, "/v1/allocations/%s/complete", run),
			       d->admin, "{}"),
		     200);
	expect("c-5", &a, NULL, false, "is completed");
}

/* Across replicas (two daemons on one store): an allocation cancelled
 * through B is refused by A once ADMISSION_CACHE_TTL_US has passed since the
 * cancel returned, although A had it cached as approved (the documented
 * staleness bound).  On PostgreSQL (ITEST_PG=1) a fresh schema, else one
 * SQLite file. */
static void test_cache_bound_across_replicas(void **state)
{
	(void)state;
	char url[1024];
	if (itest_pg_enabled())
		assert_int_equal(itest_pg_fresh_url(url, sizeof(url)), 0);
	else
		assert_true(snprintf(url, sizeof(url), "sqlite:%s/replicas.db", fx.pki) <
			    (int)sizeof(url));
	const char *args[] = {"--database-url", url, NULL};
	struct itest_daemon *a = itest_daemon_new(args);
	assert_non_null(a);
	struct itest_daemon *b = itest_daemon_new(args);
	assert_non_null(b);
	itest_put_gpu(a, "h100-80gb", "4.00", 64);
	itest_put_team(a, "nlp", "100000");
	const char *svc = itest_make_token(a, "service", "[]", NULL);
	const char *id = alloc_id(itest_allocate(a, a->admin, "nlp", "llm", "h100-80gb", 4, "1"));
	struct ask ask = {"Pod", "CREATE", "nlp", id, H100, 4, 0, 0, false};
	check_answer(itest_req(a, "POST", "/v1/admission/review", svc, review("r-1", &ask, NULL)),
		     "r-1", true, NULL); /* now in A's cache */
	ITEST_STATUS(itest_req(b, "POST", itest_strf(b, "/v1/allocations/%s/cancel", id), b->admin,
			       "{}"),
		     200);
	/* Not asserted: A may still answer from its entry for up to the bound. */
	(void)itest_req(a, "POST", "/v1/admission/review", svc, review("r-2", &ask, NULL));
	usleep(ADMISSION_CACHE_TTL_US + 100000);
	check_answer(itest_req(a, "POST", "/v1/admission/review", svc, review("r-3", &ask, NULL)),
		     "r-3", false, "is cancelled");
	assert_int_equal(itest_daemon_stop(a), 0);
	assert_int_equal(itest_daemon_stop(b), 0);
	itest_daemon_free(a);
	itest_daemon_free(b);
}

static void test_bad_reviews(void **state)
{
	(void)state;
	struct itest_daemon *d = fx.d;
	struct ask a = {"Pod", "CREATE", "nlp", fx.ok, H100, 4, 0, 0, false};
	const char *good = review("u-x", &a, NULL);
	/* Who may call it: service and admin tokens only. */
	ITEST_PROBLEM(post_review(NULL, good), 401, "unauthorized");
	ITEST_PROBLEM(post_review(fx.member, good), 403, "forbidden");
	check_answer(post_review(d->admin, good), "u-x", true, NULL);
	/* Malformed reviews: 400 problems. */
	ITEST_PROBLEM(post_review(fx.service, "{not json"), 400, "malformed-json");
	ITEST_PROBLEM(post_review(fx.service, "[]"), 422, "validation-error");
	ITEST_PROBLEM(post_review(fx.service, "{\"apiVersion\":\"admission.k8s.io/v1beta1\","
					      "\"kind\":\"AdmissionReview\",\"request\":{}}"),
		      400, "malformed-json");
	ITEST_PROBLEM(post_review(fx.service, "{\"apiVersion\":\"admission.k8s.io/v1\","
					      "\"kind\":\"AdmissionReview\"}"),
		      400, "malformed-json");
	ITEST_PROBLEM(post_review(fx.service,
				  "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
				  "\"request\":{\"uid\":\"u\",\"kind\":{\"group\":\"\",\"version\":\"v1\","
				  "\"kind\":\"Pod\"},\"operation\":\"CREATE\",\"namespace\":\"nlp\","
				  "\"object\":{\"spec\":{\"containers\":[{\"resources\":{\"limits\":"
				  "{\"nvidia.com/gpu\":\"half\"}}}]}}}}"),
		      400, "malformed-json");
	/* Members of the wrong type, or an unknown operation (found by the
	 * schemathesis suite: an array oldObject was allowed). */
	static const char *const wrong[] = {
		"\"operation\":\"CREATE\",\"namespace\":\"nlp\",\"object\":{},\"oldObject\":[null]",
		"\"operation\":\"\",\"namespace\":\"nlp\",\"object\":{}",
		"\"operation\":\"CREATE\",\"namespace\":7,\"object\":{}",
		"\"operation\":\"CREATE\",\"namespace\":\"nlp\",\"object\":\"pod\"",
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		char body[512];
		int n = snprintf(body, sizeof(body),
				 "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
				 "\"request\":{\"uid\":\"u\",\"kind\":{\"group\":\"\",\"version\":\"v1\","
				 "\"kind\":\"Pod\"},%s}}",
				 wrong[i]);
		assert_true(n > 0 && (size_t)n < sizeof(body));
		ITEST_PROBLEM(post_review(fx.service, body), 400, "malformed-json");
	}
	const char *ct[] = {"Content-Type: text/plain", NULL};
	ITEST_PROBLEM(itest_req_h(d, "POST", "/v1/admission/review", fx.service, good, ct), 415,
		      "unsupported-media-type");
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/admission/review", fx.service, NULL), 405,
		      "method-not-allowed");
}

/* One request over TLS to url (a webhook listener); token NULL: no
 * Authorization; cert/key NULL: no client certificate; body NULL: none.
 * 0 when an answer came, -1 otherwise (no TLS session, for instance). */
static int tls_req(const char *url, const char *method, const char *path, const char *token,
		   const char *cert, const char *key, const char *body, struct itest_resp *out)
{
	CURL *h = curl_easy_init();
	char ca[600], c[600], k[600], auth[200];
	struct curl_slist *hdr = NULL;
	FILE *mem = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc = -1;
	memset(out, 0, sizeof(*out));
	if (h == NULL)
		return -1;
	snprintf(ca, sizeof(ca), "%s/ca.pem", fx.pki);
	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdr = curl_slist_append(hdr, auth);
	}
	if (body != NULL)
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
	mem = open_memstream(&buf, &len);
	if (((token != NULL || body != NULL) && hdr == NULL) || mem == NULL)
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, itest_strf(fx.d, "%s%s", url, path));
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	if (cert != NULL) {
		snprintf(c, sizeof(c), "%s/%s", fx.pki, cert);
		snprintf(k, sizeof(k), "%s/%s", fx.pki, key);
		curl_easy_setopt(h, CURLOPT_SSLCERT, c);
		curl_easy_setopt(h, CURLOPT_SSLKEY, k);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	if (body != NULL)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, mem);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	out->curl_rc = curl_easy_perform(h);
	fclose(mem);
	mem = NULL;
	if (out->curl_rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
		out->body = buf;
		out->body_len = len;
		buf = NULL;
		out->json = json_loadb(out->body, out->body_len, 0, NULL);
		char *type = NULL;
		curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type);
		snprintf(out->content_type, sizeof(out->content_type), "%s", type ? type : "");
		rc = 0;
	}
out:
	if (mem != NULL)
		fclose(mem);
	free(buf);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return rc;
}

/* A review over fx's TLS listener, without a bearer token. */
static int tls_post(const char *cert, const char *key, const char *body, struct itest_resp *out)
{
	return tls_req(fx.tls_url, "POST", "/v1/admission/review", NULL, cert, key, body, out);
}

/* Every route but the review is absent from a webhook listener: 404 whatever
 * the token (an admin's here), or 405 for the review path's other methods. */
static void check_only_review(const char *url, const char *cert, const char *key,
			      const char *admin)
{
	static const struct {
		const char *method, *path, *body;
	} other[] = {
		{"GET", "/healthz", NULL},
		{"GET", "/readyz", NULL},
		{"GET", "/metrics", NULL},
		{"GET", "/", NULL},
		{"GET", "/v1/teams", NULL},
		{"GET", "/v1/allocations", NULL},
		{"GET", "/v1/openapi.json", NULL},
		{"POST", "/v1/tokens", "{\"name\":\"x\",\"role\":\"admin\"}"},
		{"PUT", "/v1/teams/evil", "{\"display_name\":\"e\",\"budget\":{\"amount\":\"1\","
					  "\"period\":\"monthly\"}}"},
		{"POST", "/v1/allocations", "{}"},
	};
	struct itest_resp r;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		for (int with_token = 0; with_token < 2; with_token++) {
			assert_int_equal(tls_req(url, other[i].method, other[i].path,
						 with_token ? admin : NULL, cert, key, other[i].body,
						 &r),
					 0);
			if (!itest_is_problem(&r, 404, "not-found")) {
				fprintf(stderr, "%s %s on the webhook listener (token: %d): %ld %s\n",
					other[i].method, other[i].path, with_token, r.status,
					r.body ? r.body : "");
				fail();
			}
			itest_resp_clear(&r);
		}
	}
	assert_int_equal(tls_req(url, "GET", "/v1/admission/review", admin, cert, key, NULL, &r), 0);
	ITEST_PROBLEM(&r, 405, "method-not-allowed");
	itest_resp_clear(&r);
}

/* Does d's log (request lines) hold needle?  Waits a little: a request is
 * logged just after its answer is sent.  Bounded: 50 x 100 ms. */
static bool log_has(const struct itest_daemon *d, const char *needle)
{
	for (int i = 0; i < 50; i++) {
		FILE *f = fopen(d->log, "r");
		char line[4096];
		bool found = false;
		while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
			found = strstr(line, needle) != NULL;
		if (f != NULL)
			fclose(f);
		if (found)
			return true;
		itest_sleep_ms(100);
	}
	return false;
}

static void test_tls_listener(void **state)
{
	(void)state;
	struct itest_resp r;
	struct ask a = {"Pod", "CREATE", "nlp", fx.ok, H100, 4, 0, 0, false};
	/* With the API server's client certificate and no bearer token: the same
	 * decisions as over plain HTTP with a service token. */
	assert_int_equal(tls_post("cli.pem", "cli.key", review("t-ok", &a, NULL), &r), 0);
	check_answer(&r, "t-ok", true, NULL);
	itest_resp_clear(&r);
	a.label = fx.cancelled;
	assert_int_equal(tls_post("cli.pem", "cli.key", review("t-cancel", &a, NULL), &r), 0);
	check_answer(&r, "t-cancel", false, "is cancelled");
	itest_resp_clear(&r);
	/* A token, even an unknown one (a kubeconfig left from an older setup),
	 * changes nothing there: the certificate is the identity. */
	assert_int_equal(tls_req(fx.tls_url, "POST", "/v1/admission/review", "plt_unknown",
				 "cli.pem", "cli.key", review("t-oldtoken", &a, NULL), &r),
			 0);
	check_answer(&r, "t-oldtoken", false, "is cancelled");
	itest_resp_clear(&r);
	/* The verified certificate's subject is the caller, in the request log. */
	assert_true(log_has(fx.d, "\"path\":\"/v1/admission/review\",\"status\":200"));
	assert_true(log_has(fx.d, "\"client_cert\":\"CN=kube-apiserver\""));

	/* Without a client certificate, with one the CA did not sign, or with
	 * one the CA signed for TLS servers only: 403, even with a service
	 * token. */
	assert_int_equal(tls_post(NULL, NULL, review("t-nocert", &a, NULL), &r), 0);
	ITEST_PROBLEM(&r, 403, "forbidden");
	itest_resp_clear(&r);
	assert_int_equal(tls_req(fx.tls_url, "POST", "/v1/admission/review", fx.service, NULL, NULL,
				 review("t-nocert-token", &a, NULL), &r),
			 0);
	ITEST_PROBLEM(&r, 403, "forbidden");
	itest_resp_clear(&r);
	if (tls_post("rogue.pem", "rogue.key", review("t-rogue", &a, NULL), &r) == 0)
		ITEST_PROBLEM(&r, 403, "forbidden");
	itest_resp_clear(&r);
	assert_int_equal(tls_post("cli-srv.pem", "cli.key", review("t-srvonly", &a, NULL), &r), 0);
	ITEST_PROBLEM(&r, 403, "forbidden");
	itest_resp_clear(&r);

	/* Nothing but the review there, even for the API server or an admin. */
	check_only_review(fx.tls_url, "cli.pem", "cli.key", fx.d->admin);
	/* Refused calls wrote nothing: the evil team does not exist. */
	ITEST_PROBLEM(itest_req(fx.d, "GET", "/v1/teams/evil", fx.d->admin, NULL), 404, "not-found");

	/* Plain HTTP to the TLS port gets no answer. */
	struct itest_resp p;
	char plain[sizeof(fx.tls_url)];
	int np = snprintf(plain, sizeof(plain), "http://%s", fx.tls_url + strlen("https://"));
	assert_true(np > 0 && (size_t)np < sizeof(plain));
	CURL *h = curl_easy_init();
	assert_non_null(h);
	int rc = itest_http(h, plain, "GET", "/healthz", NULL, NULL, 0, NULL, &p);
	assert_true(rc != 0 || p.status != 200);
	itest_resp_clear(&p);
	curl_easy_cleanup(h);
}

/*
 * A TLS listener without --webhook-client-ca, as on EKS/GKE/AKS where the API
 * server presents no certificate and sends no token: the review is answered
 * for anyone who reaches the port, and nothing else is served there.
 */
static void test_tls_no_client_ca(void **state)
{
	(void)state;
	char cert[600], key[600], url[128];
	snprintf(cert, sizeof(cert), "%s/srv.pem", fx.pki);
	snprintf(key, sizeof(key), "%s/srv.key", fx.pki);
	const char *args[] = {"--webhook-listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key",
			      key, NULL};
	struct itest_daemon *d = itest_daemon_new(args);
	assert_non_null(d);
	assert_int_equal(read_tls_url(d, url), 0);
	itest_put_gpu(d, "h100-80gb", "4.00", 64);
	itest_put_team(d, "nlp", "100000");
	struct itest_resp *ar = itest_allocate(d, d->admin, "nlp", "llm", "h100-80gb", 2, "1");
	ITEST_STATUS(ar, 201);
	const char *id = itest_jstr(ar->json, "id");
	assert_non_null(id);

	struct itest_resp r;
	struct ask a = {"Pod", "CREATE", "nlp", id, H100, 2, 0, 0, false};
	assert_int_equal(tls_req(url, "POST", "/v1/admission/review", NULL, NULL, NULL,
				 review("n-ok", &a, NULL), &r),
			 0);
	check_answer(&r, "n-ok", true, NULL);
	itest_resp_clear(&r);
	a.gpus = 4;
	assert_int_equal(tls_req(url, "POST", "/v1/admission/review", NULL, NULL, NULL,
				 review("n-big", &a, NULL), &r),
			 0);
	check_answer(&r, "n-big", false, "holds 2");
	itest_resp_clear(&r);
	a = (struct ask){"Pod", "CREATE", "nlp", NULL, H100, 1, 0, 0, false};
	assert_int_equal(tls_req(url, "POST", "/v1/admission/review", NULL, NULL, NULL,
				 review("n-nolabel", &a, NULL), &r),
			 0);
	check_answer(&r, "n-nolabel", false, "no plinth.io/allocation-id label");
	itest_resp_clear(&r);
	/* A bad review is still a 400 problem there. */
	assert_int_equal(tls_req(url, "POST", "/v1/admission/review", NULL, NULL, NULL, "{not json",
				 &r),
			 0);
	ITEST_PROBLEM(&r, 400, "malformed-json");
	itest_resp_clear(&r);
	check_only_review(url, NULL, NULL, d->admin);
	/* The plain listener of the same daemon still wants a token. */
	ITEST_PROBLEM(itest_req(d, "POST", "/v1/admission/review", NULL, review("n-plain", &a, NULL)),
		      401, "unauthorized");
	ITEST_PROBLEM(itest_req(d, "GET", "/v1/teams/evil", d->admin, NULL), 404, "not-found");
	/* An anonymous caller has no identity in the log. */
	assert_false(log_has(d, "\"client_cert\""));
	int st = itest_daemon_stop(d);
	if (st != 0)
		itest_daemon_dump_log(d, 8192);
	itest_daemon_free(d);
	assert_int_equal(st, 0);
}

int main(void)
{
	itest_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions_http),
		cmocka_unit_test(test_team_namespaces),
		cmocka_unit_test(test_cache_follows_transitions),
		cmocka_unit_test(test_cache_bound_across_replicas),
		cmocka_unit_test(test_bad_reviews),
		cmocka_unit_test(test_tls_listener),
		cmocka_unit_test(test_tls_no_client_ca),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
