/*
 * api_admission.c - POST /v1/admission/review: the Kubernetes validating
 * admission webhook (admission.k8s.io/v1 AdmissionReview).
 *
 * Parses the review into the facts core/admission.c decides on, reads the
 * allocation the object's label names with ONE indexed read (the store's
 * get-by-id) and only when the object asks for GPUs and carries a label.  It
 * is on the path of every pod creation in the cluster, so the allocation's
 * facts are kept in memory for up to a second (api/admission_cache.h: the
 * staleness bound) and the review is parsed with util/jscan.h (a strict
 * parser into a flat node array, strings unescaped in place: jansson's lexer
 * cost ~95% of a review).  A
 * review that cannot be parsed is a 400 problem (JSON that is not an object a
 * 422, as on every endpoint; the API server then applies the webhook's
 * failurePolicy); a decision, allowed or not, is a 200 AdmissionReview.  It
 * never changes anything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/admission.h"
#include "api/admission_cache.h"
#include "core/err.h"
#include "core/gpuproduct.h"
#include "http/jsonv.h"
#include "util/jscan.h"
#include "util/jsonw.h"
#include "util/util.h"

#define REVIEW_API_VERSION "admission.k8s.io/v1"
#define REVIEW_KIND "AdmissionReview"
#define REVIEW_UID_MAX 128

/* The facts of one object (Pod or Job), pointing into its JSON. */
struct parsed {
	struct admission_object o;
	struct admission_container init[ADMISSION_MAX_CONTAINERS];
	struct admission_container containers[ADMISSION_MAX_CONTAINERS];
	bool deleting; /* metadata.deletionTimestamp is set */
};

/* A label / selector value: a string, or NULL when absent; *bad when present
 * but not a string or longer than a label value may be. */
static const char *str_member(struct jdoc *d, const struct jnode *obj, const char *key, bool *bad)
{
	const struct jnode *v = jscan_get(d, obj, key);
	if (v == NULL || v->type == JS_NULL)
		return NULL;
	if (v->type != JS_STRING || v->len >= STORE_ID_LEN) {
		*bad = true;
		return NULL;
	}
	return v->v.s;
}

/*
 * A Kubernetes quantity of a whole resource: an integer, or a string of
 * digits with an optional decimal (k M G T P E) or binary (Ki ... Ei) suffix.
 * The API server has validated the object, so an extended resource is whole.
 * Saturates.  0 or -1.
 */
static int quantity_parse(const struct jnode *v, int64_t *out)
{
	if (jscan_is(v, JS_INT)) {
		*out = v->v.i < 0 ? 0 : v->v.i;
		return 0;
	}
	const char *s = jscan_str(v);
	if (s == NULL)
		return -1;
	size_t nd = strspn(s, "0123456789");
	if (nd == 0 || nd > 19)
		return -1;
	static const struct {
		const char *suffix;
		int64_t base;
		int power;
	} units[] = {{"", 1, 0},       {"k", 1000, 1}, {"M", 1000, 2}, {"G", 1000, 3},
		     {"T", 1000, 4},   {"P", 1000, 5}, {"E", 1000, 6}, {"Ki", 1024, 1},
		     {"Mi", 1024, 2},  {"Gi", 1024, 3}, {"Ti", 1024, 4}, {"Pi", 1024, 5},
		     {"Ei", 1024, 6}};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + nd, units[i].suffix) != 0)
			continue;
		errno = 0;
		long long n = strtoll(s, NULL, 10);
		int64_t q = errno == ERANGE ? INT64_MAX : (int64_t)n;
		for (int p = 0; p < units[i].power; p++)
			q = q > INT64_MAX / units[i].base ? INT64_MAX : q * units[i].base;
		*out = q;
		return 0;
	}
	return -1;
}

/* One container list into out[]; 0 or -1 with *why. */
static int containers_parse(struct jdoc *d, const struct jnode *list, bool init,
			    struct admission_container *out, size_t *n, const char **why)
{
	*n = 0;
	if (list == NULL || list->type == JS_NULL)
		return 0;
	if (list->type != JS_ARRAY || list->len > ADMISSION_MAX_CONTAINERS) {
		*why = "a container list is not an array of at most 256 containers";
		return -1;
	}
	size_t i = 0;
	for (const struct jnode *c = jscan_first(list); c != NULL; c = jscan_next(d, list, c), i++) {
		int64_t gpus = 0;
		const struct jnode *res = jscan_get(d, c, "resources");
		const char *kinds[] = {"limits", "requests"};
		for (size_t k = 0; k < 2; k++) {
			const struct jnode *m = jscan_get(d, res, kinds[k]);
			const struct jnode *q = jscan_get(d, m, GPU_RESOURCE);
			int64_t v = 0;
			if (q != NULL && quantity_parse(q, &v) != 0) {
				*why = "an nvidia.com/gpu quantity is not a whole number";
				return -1;
			}
			if (v > gpus)
				gpus = v;
		}
		const char *rp = jscan_str(jscan_get(d, c, "restartPolicy"));
		out[i].gpus = gpus;
		out[i].sidecar = init && rp != NULL && strcmp(rp, "Always") == 0;
	}
	*n = i;
	return 0;
}

/* A Pod (or a Job, whose pods are its template) into p.  0 or -1 with *why. */
static int object_parse(struct jdoc *d, const struct jnode *obj, bool is_job, const char *ns,
			struct parsed *p, const char **why)
{
	bool bad = false;
	memset(&p->o, 0, sizeof(p->o));
	p->o.is_job = is_job;
	p->o.namespace_ = ns;
	p->o.parallelism = 1;
	if (!jscan_is(obj, JS_OBJECT)) {
		*why = "request.object is not an object";
		return -1;
	}
	const struct jnode *meta = jscan_get(d, obj, "metadata");
	const struct jnode *spec = jscan_get(d, obj, "spec");
	const struct jnode *ts = jscan_get(d, meta, "deletionTimestamp");
	p->deleting = ts != NULL && ts->type != JS_NULL;
	const struct jnode *pod_meta = meta, *pod_spec = spec;
	if (is_job) {
		const struct jnode *labels = jscan_get(d, meta, "labels");
		p->o.job_allocation_id = str_member(d, labels, GPU_ALLOCATION_LABEL, &bad);
		const struct jnode *par = jscan_get(d, spec, "parallelism");
		if (par != NULL && par->type != JS_NULL) {
			if (par->type != JS_INT || par->v.i < 0) {
				*why = "spec.parallelism is not a non-negative integer";
				return -1;
			}
			p->o.parallelism = par->v.i;
		}
		const struct jnode *tmpl = jscan_get(d, spec, "template");
		pod_meta = jscan_get(d, tmpl, "metadata");
		pod_spec = jscan_get(d, tmpl, "spec");
	}
	if (!jscan_is(pod_spec, JS_OBJECT)) {
		*why = is_job ? "the Job has no spec.template.spec" : "the Pod has no spec";
		return -1;
	}
	const struct jnode *labels = jscan_get(d, pod_meta, "labels");
	p->o.allocation_id = str_member(d, labels, GPU_ALLOCATION_LABEL, &bad);
	const struct jnode *sel = jscan_get(d, pod_spec, "nodeSelector");
	p->o.gpu_type_sel = str_member(d, sel, GPU_TYPE_LABEL, &bad);
	p->o.gpu_product_sel = str_member(d, sel, GPU_PRODUCT_LABEL, &bad);
	if (bad) {
		*why = "a label or nodeSelector value is not a string of at most 63 bytes";
		return -1;
	}
	if (containers_parse(d, jscan_get(d, pod_spec, "initContainers"), true, p->init,
			     &p->o.ninit, why) != 0 ||
	    containers_parse(d, jscan_get(d, pod_spec, "containers"), false, p->containers,
			     &p->o.ncontainers, why) != 0)
		return -1;
	p->o.init = p->init;
	p->o.containers = p->containers;
	return 0;
}

/* The answer: the same apiVersion/kind, the request's uid, allowed, and on
 * denial a metav1.Status with code 403, reason Forbidden and the message.
 * Written with jsonw, not a jansson tree: it is on every review's path. */
static void reply_review(struct req *r, const char *uid, bool allowed, const char *message)
{
	struct jsonw w;
	jw_init(&w);
	jw_open(&w, NULL);
	jw_str(&w, "apiVersion", REVIEW_API_VERSION);
	jw_str(&w, "kind", REVIEW_KIND);
	jw_open(&w, "response");
	jw_str(&w, "uid", uid);
	jw_raw(&w, "allowed", allowed ? "true" : "false");
	if (!allowed) {
		jw_open(&w, "status");
		jw_int(&w, "code", 403);
		jw_str(&w, "reason", "Forbidden");
		jw_str(&w, "message", message);
		jw_close(&w);
	}
	jw_close(&w);
	jw_close(&w);
	size_t len = 0;
	char *text = jw_finish(&w, &len);
	if (text == NULL) {
		reply_err(r, ERR_NOMEM, NULL);
		return;
	}
	reply_take(r, 200, "application/json", text, len);
}

/* Is member key of o absent or a string? */
static bool string_or_absent(struct jdoc *d, const struct jnode *o, const char *key)
{
	const struct jnode *v = jscan_get(d, o, key);
	return v == NULL || v->type == JS_STRING;
}

/* Absent, null or an object (what the API server sends for object/oldObject). */
static bool object_or_null(const struct jnode *v)
{
	return v == NULL || v->type == JS_NULL || v->type == JS_OBJECT;
}

static bool ctype_is_json(const char *ct)
{
	return ct != NULL && strncasecmp(ct, "application/json", 16) == 0 &&
	       (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* Decides one parsed review: reads the allocation if needed, then replies. */
static void review_decide(struct req *r, const char *uid, struct parsed *p, struct parsed *old)
{
	char reason[ADMISSION_REASON_LEN] = "";
	if (old != NULL && (p->deleting || admission_same_ask(&p->o, &old->o))) {
		/* An UPDATE that asks for nothing new: finalizers come off, a
		 * finished Job's metadata may change, whatever its allocation's
		 * state.  (A CREATE never carries a deletionTimestamp that counts.) */
		reply_review(r, uid, true, NULL);
		return;
	}
	struct allocation a;
	struct team team;
	struct admission_alloc facts;
	struct admission_cached cached;
	const struct admission_alloc *found = NULL;
	if (admission_needs_alloc(&p->o) && strlen(p->o.allocation_id) < sizeof(a.id)) {
		/* From memory when read less than ADMISSION_CACHE_TTL_US ago (the
		 * documented staleness bound), else one indexed read. */
		int64_t t = util_mono_us();
		if (admission_cache_get(p->o.allocation_id, t, &cached)) {
			found = &cached.facts;
		} else {
			uint64_t gen = admission_cache_generation();
			struct store_conn *db;
			int rc = req_db(r, &db);
			if (rc == 0)
				rc = store_conn_ops(db)->alloc_get(db, p->o.allocation_id, &a);
			if (rc == 0) /* whose namespaces may use it */
				rc = store_conn_ops(db)->team_get(db, a.team, &team);
			req_db_release(r);
			if (rc != 0 && rc != ERR_NOT_FOUND) {
				reply_err(r, rc, "cannot read the allocation");
				return;
			}
			if (rc == 0) {
				facts = (struct admission_alloc){
					.id = a.id,
					.team = a.team,
					.team_namespaces = team.namespaces,
					.gpu_type = a.gpu_type,
					.gpu_count = a.gpu_count,
					.status = a.status,
					.expires_at = a.expires_at,
				};
				found = &facts;
				admission_cache_put(&facts, t, gen);
			}
		}
	}
	bool allowed = admission_decide(&p->o, found, r->now, reason, sizeof(reason));
	reply_review(r, uid, allowed, reason);
}

void api_admission_review(struct req *r)
{
	struct jdoc doc = {0}; /* its strings live in r->body, rewritten by the parse */
	struct parsed *cur = NULL, *old = NULL;
	const char *why = NULL;
	if (r->body.len == 0) {
		reply_err(r, ERR_MALFORMED, "an AdmissionReview body is required");
		goto out;
	}
	if (!ctype_is_json(req_header(r, "Content-Type"))) {
		reply_problem(r, 415, "unsupported-media-type", "Unsupported media type",
			      "send the AdmissionReview as Content-Type: application/json", NULL);
		goto out;
	}
	/* Not req_json_object(): a Pod or Job is nested deeper than the API's
	 * bodies may be; the body is still capped at 1 MiB by the server. */
	if (jscan_parse(&doc, r->body.p, r->body.len) != 0) {
		reply_err(r, ERR_MALFORMED, doc.err);
		goto out;
	}
	const struct jnode *review = &doc.nodes[0];
	if (review->type != JS_OBJECT) {
		/* As on every endpoint: JSON that is not an object is a 422. */
		json_t *errors = json_array();
		if (errors == NULL) {
			reply_err(r, ERR_NOMEM, NULL);
			goto out;
		}
		jsonv_error(errors, "", "the body must be a JSON object");
		reply_invalid(r, errors);
		goto out;
	}
	const struct jnode *req = jscan_get(&doc, review, "request");
	const struct jnode *uid = jscan_get(&doc, req, "uid");
	const struct jnode *kind = jscan_get(&doc, req, "kind");
	const char *api_version = jscan_str(jscan_get(&doc, review, "apiVersion"));
	const char *review_kind = jscan_str(jscan_get(&doc, review, "kind"));
	const char *op = jscan_str(jscan_get(&doc, req, "operation"));
	const char *group = jscan_str(jscan_get(&doc, kind, "group"));
	const char *kname = jscan_str(jscan_get(&doc, kind, "kind"));
	const char *ns = jscan_str(jscan_get(&doc, req, "namespace"));
	const struct jnode *object = jscan_get(&doc, req, "object");
	const struct jnode *old_object = jscan_get(&doc, req, "oldObject");
	if (api_version == NULL || strcmp(api_version, REVIEW_API_VERSION) != 0 ||
	    review_kind == NULL || strcmp(review_kind, REVIEW_KIND) != 0)
		why = "not an admission.k8s.io/v1 AdmissionReview";
	else if (!jscan_is(req, JS_OBJECT))
		why = "the review has no request";
	else if (!jscan_is(uid, JS_STRING) || uid->len == 0 || uid->len > REVIEW_UID_MAX)
		why = "request.uid is missing or longer than 128 bytes";
	else if (op == NULL || !jscan_is(kind, JS_OBJECT) || kname == NULL ||
		 !string_or_absent(&doc, kind, "group") || !string_or_absent(&doc, kind, "version"))
		why = "request.operation or request.kind is missing";
	else if (strcmp(op, "CREATE") != 0 && strcmp(op, "UPDATE") != 0 && strcmp(op, "DELETE") != 0 &&
		 strcmp(op, "CONNECT") != 0)
		why = "request.operation must be CREATE, UPDATE, DELETE or CONNECT";
	else if (!string_or_absent(&doc, req, "namespace"))
		why = "request.namespace must be a string";
	else if (!object_or_null(object) || !object_or_null(old_object))
		why = "request.object and request.oldObject must be objects";
	if (why == NULL && doc.duplicate)
		why = "a member the webhook reads is given twice";
	if (why != NULL) {
		reply_err(r, ERR_MALFORMED, why);
		goto out;
	}
	bool is_pod = strcmp(kname, "Pod") == 0 && (group == NULL || group[0] == '\0');
	bool is_job = strcmp(kname, "Job") == 0 && group != NULL && strcmp(group, "batch") == 0;
	bool is_update = strcmp(op, "UPDATE") == 0;
	if (!(is_pod && strcmp(op, "CREATE") == 0) &&
	    !(is_job && (strcmp(op, "CREATE") == 0 || is_update))) {
		/* Not ours to judge (the webhook configuration should not send it). */
		reply_review(r, uid->v.s, true, NULL);
		goto out;
	}
	cur = malloc(sizeof(*cur));
	old = is_update ? malloc(sizeof(*old)) : NULL;
	if (cur == NULL || (is_update && old == NULL)) {
		reply_err(r, ERR_NOMEM, NULL);
		goto out;
	}
	if (object_parse(&doc, object, is_job, ns, cur, &why) != 0 ||
	    (is_update && object_parse(&doc, old_object, is_job, ns, old, &why) != 0)) {
		reply_err(r, ERR_MALFORMED, why);
		goto out;
	}
	if (doc.duplicate) {
		reply_err(r, ERR_MALFORMED, "a member the webhook reads is given twice");
		goto out;
	}
	review_decide(r, uid->v.s, cur, old);
out:
	free(cur);
	free(old);
	jscan_free(&doc);
}
