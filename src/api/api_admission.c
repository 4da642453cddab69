/*
 * api_admission.c - POST /v1/admission/review: the Kubernetes validating
 * admission webhook (admission.k8s.io/v1 AdmissionReview).
 *
 * Parses the review into the facts core/admission.c decides on, reads the
 * allocation the object's label names with ONE indexed read (the store's
 * get-by-id) and only when the object asks for GPUs and carries a label: it
 * is on the path of every pod creation in the cluster.  The review is read
 * with util/jtok (no tree is built).  A review that cannot be parsed is a 400
 * problem (JSON that is not an object a 422, as on every endpoint; the API
 * server then applies the webhook's failurePolicy); a decision, allowed or
 * not, is a 200 AdmissionReview.  It never changes anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/admission.h"
#include "core/err.h"
#include "core/gpuproduct.h"
#include "http/jsonv.h"
#include "util/jtok.h"

#define REVIEW_API_VERSION "admission.k8s.io/v1"
#define REVIEW_KIND "AdmissionReview"
#define REVIEW_UID_MAX 128

/* The facts of one object (Pod or Job), with copies of its strings. */
struct parsed {
	struct admission_object o;
	struct admission_container init[ADMISSION_MAX_CONTAINERS];
	struct admission_container containers[ADMISSION_MAX_CONTAINERS];
	char alloc_id[STORE_ID_LEN], job_alloc_id[STORE_ID_LEN];
	char type_sel[STORE_ID_LEN], product_sel[STORE_ID_LEN];
	bool deleting; /* metadata.deletionTimestamp is set */
};

/* The review being read: the body's text and its tokens. */
struct doc {
	const char *s;
	struct jtok *t;
};

static long get(const struct doc *d, long obj, const char *key)
{
	return jtok_get(d->s, d->t, obj, key);
}

/*
 * A label or selector value into buf (STORE_ID_LEN): 0 with *out = buf, or
 * *out = NULL when absent; -1 when present but not a string of at most 63
 * bytes (a Kubernetes label value's limit).
 */
static int str_member(const struct doc *d, long obj, const char *key, char *buf,
		      const char **out)
{
	long v = get(d, obj, key);
	*out = NULL;
	if (v < 0 || jtok_is(d->t, v, JTOK_NULL))
		return 0;
	if (jtok_str(d->s, d->t, v, buf, STORE_ID_LEN) < 0)
		return -1;
	*out = buf;
	return 0;
}

/*
 * A Kubernetes quantity of a whole resource: an integer, or a string of
 * digits with an optional decimal (k M G T P E) or binary (Ki ... Ei) suffix.
 * The API server has validated the object, so an extended resource is whole.
 * Saturates.  0 or -1.
 */
static int quantity_parse(const struct doc *d, long i, int64_t *out)
{
	char s[32];
	if (jtok_is(d->t, i, JTOK_NUMBER)) {
		if (jtok_int(d->s, d->t, i, out) != 0)
			return -1;
		if (*out < 0)
			*out = 0;
		return 0;
	}
	if (jtok_str(d->s, d->t, i, s, sizeof(s)) < 0)
		return -1;
	size_t nd = strspn(s, "0123456789");
	if (nd == 0 || nd > 18)
		return -1;
	static const struct {
		const char *suffix;
		int64_t base;
		int power;
	} units[] = {{"", 1, 0},       {"k", 1000, 1}, {"M", 1000, 2}, {"G", 1000, 3},
		     {"T", 1000, 4},   {"P", 1000, 5}, {"E", 1000, 6}, {"Ki", 1024, 1},
		     {"Mi", 1024, 2},  {"Gi", 1024, 3}, {"Ti", 1024, 4}, {"Pi", 1024, 5},
		     {"Ei", 1024, 6}};
	for (size_t i2 = 0; i2 < sizeof(units) / sizeof(units[0]); i2++) {
		if (strcmp(s + nd, units[i2].suffix) != 0)
			continue;
		int64_t q = strtoll(s, NULL, 10); /* at most 18 digits: no overflow */
		for (int p = 0; p < units[i2].power; p++)
			q = q > INT64_MAX / units[i2].base ? INT64_MAX : q * units[i2].base;
		*out = q;
		return 0;
	}
	return -1;
}

/* One container list into out[]; 0 or -1 with *why. */
static int containers_parse(const struct doc *d, long list, bool init,
			    struct admission_container *out, size_t *n, const char **why)
{
	*n = 0;
	if (list < 0 || jtok_is(d->t, list, JTOK_NULL))
		return 0;
	if (!jtok_is(d->t, list, JTOK_ARRAY)) {
		*why = "a container list is not an array";
		return -1;
	}
	for (long c = jtok_first(d->t, list); c >= 0; c = jtok_after(d->t, list, c)) {
		if (*n >= ADMISSION_MAX_CONTAINERS) {
			*why = "a container list has more than 256 containers";
			return -1;
		}
		int64_t gpus = 0;
		long res = get(d, c, "resources");
		const char *kinds[] = {"limits", "requests"};
		for (size_t k = 0; k < 2; k++) {
			long q = get(d, get(d, res, kinds[k]), GPU_RESOURCE);
			int64_t v = 0;
			if (q >= 0 && quantity_parse(d, q, &v) != 0) {
				*why = "an nvidia.com/gpu quantity is not a whole number";
				return -1;
			}
			if (v > gpus)
				gpus = v;
		}
		out[*n].gpus = gpus;
		out[*n].sidecar = init && jtok_str_eq(d->s, d->t, get(d, c, "restartPolicy"), "Always");
		(*n)++;
	}
	return 0;
}

/* A Pod (or a Job, whose pods are its template) into p.  0 or -1 with *why. */
static int object_parse(const struct doc *d, long obj, bool is_job, const char *ns,
			struct parsed *p, const char **why)
{
	int bad = 0;
	memset(&p->o, 0, sizeof(p->o));
	p->o.is_job = is_job;
	p->o.namespace_ = ns;
	p->o.parallelism = 1;
	if (!jtok_is(d->t, obj, JTOK_OBJECT)) {
		*why = "request.object is not an object";
		return -1;
	}
	long meta = get(d, obj, "metadata");
	long spec = get(d, obj, "spec");
	long ts = get(d, meta, "deletionTimestamp");
	p->deleting = ts >= 0 && !jtok_is(d->t, ts, JTOK_NULL);
	long pod_meta = meta, pod_spec = spec;
	if (is_job) {
		bad |= str_member(d, get(d, meta, "labels"), GPU_ALLOCATION_LABEL, p->job_alloc_id,
				  &p->o.job_allocation_id);
		long par = get(d, spec, "parallelism");
		if (par >= 0 && !jtok_is(d->t, par, JTOK_NULL)) {
			int64_t v = 0;
			if (jtok_int(d->s, d->t, par, &v) != 0 || v < 0) {
				*why = "spec.parallelism is not a non-negative integer";
				return -1;
			}
			p->o.parallelism = v;
		}
		long tmpl = get(d, spec, "template");
		pod_meta = get(d, tmpl, "metadata");
		pod_spec = get(d, tmpl, "spec");
	}
	if (!jtok_is(d->t, pod_spec, JTOK_OBJECT)) {
		*why = is_job ? "the Job has no spec.template.spec" : "the Pod has no spec";
		return -1;
	}
	bad |= str_member(d, get(d, pod_meta, "labels"), GPU_ALLOCATION_LABEL, p->alloc_id,
			  &p->o.allocation_id);
	long sel = get(d, pod_spec, "nodeSelector");
	bad |= str_member(d, sel, GPU_TYPE_LABEL, p->type_sel, &p->o.gpu_type_sel);
	bad |= str_member(d, sel, GPU_PRODUCT_LABEL, p->product_sel, &p->o.gpu_product_sel);
	if (bad) {
		*why = "a label or nodeSelector value is not a string of at most 63 bytes";
		return -1;
	}
	if (containers_parse(d, get(d, pod_spec, "initContainers"), true, p->init, &p->o.ninit,
			     why) != 0 ||
	    containers_parse(d, get(d, pod_spec, "containers"), false, p->containers,
			     &p->o.ncontainers, why) != 0)
		return -1;
	p->o.init = p->init;
	p->o.containers = p->containers;
	return 0;
}

/* The answer: the same apiVersion/kind, the request's uid, allowed, and on
 * denial a metav1.Status with code 403, reason Forbidden and the message. */
static void reply_review(struct req *r, const char *uid, bool allowed, const char *message)
{
	json_t *resp = json_pack("{s:s, s:b}", "uid", uid, "allowed", allowed);
	if (resp != NULL && !allowed &&
	    json_object_set_new(resp, "status",
				json_pack("{s:i, s:s, s:s}", "code", 403, "reason", "Forbidden",
					  "message", message)) != 0) {
		json_decref(resp);
		resp = NULL;
	}
	json_t *body = resp ? json_pack("{s:s, s:s, s:o}", "apiVersion", REVIEW_API_VERSION, "kind",
					REVIEW_KIND, "response", resp)
			    : NULL;
	if (body == NULL) {
		reply_err(r, ERR_NOMEM, NULL);
		return;
	}
	reply_json(r, 200, body);
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
	struct admission_alloc facts;
	const struct admission_alloc *found = NULL;
	if (admission_needs_alloc(&p->o) && strlen(p->o.allocation_id) < sizeof(a.id)) {
		struct store_conn *db;
		int rc = req_db(r, &db);
		if (rc == 0)
			rc = store_conn_ops(db)->alloc_get(db, p->o.allocation_id, &a);
		req_db_release(r);
		if (rc != 0 && rc != ERR_NOT_FOUND) {
			reply_err(r, rc, "cannot read the allocation");
			return;
		}
		if (rc == 0) {
			facts = (struct admission_alloc){
				.id = a.id,
				.team = a.team,
				.gpu_type = a.gpu_type,
				.gpu_count = a.gpu_count,
				.status = a.status,
				.expires_at = a.expires_at,
			};
			found = &facts;
		}
	}
	bool allowed = admission_decide(&p->o, found, r->now, reason, sizeof(reason));
	reply_review(r, uid, allowed, reason);
}

void api_admission_review(struct req *r)
{
	struct jtok *toks = NULL;
	struct parsed *cur = NULL, *old = NULL;
	const char *why = NULL;
	char uid[REVIEW_UID_MAX + 1], ns[STORE_ID_LEN] = "", d_why[200];
	if (r->body.len == 0) {
		reply_err(r, ERR_MALFORMED, "an AdmissionReview body is required");
		goto out;
	}
	if (!ctype_is_json(req_header(r, "Content-Type"))) {
		reply_problem(r, 415, "unsupported-media-type", "Unsupported media type",
			      "send the AdmissionReview as Content-Type: application/json", NULL);
		goto out;
	}
	/* Not jansson: a Pod is a few hundred values of which a dozen matter,
	 * and a tree of them costs more than the rest of the request (make
	 * bench).  Not req_json_object() either: a Pod or Job is nested deeper
	 * than the API's bodies may be; the body is still capped at 1 MiB. */
	size_t max = jtok_max_tokens(r->body.len);
	toks = malloc(max * sizeof(*toks));
	if (toks == NULL) {
		reply_err(r, ERR_NOMEM, NULL);
		goto out;
	}
	struct doc d = {r->body.p, toks};
	if (jtok_parse(r->body.p, r->body.len, toks, max, d_why, sizeof(d_why)) < 0) {
		reply_err(r, ERR_MALFORMED, d_why);
		goto out;
	}
	if (!jtok_is(toks, 0, JTOK_OBJECT)) {
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
	long req = get(&d, 0, "request");
	long kind = get(&d, req, "kind");
	long op = get(&d, req, "operation");
	long ns_tok = get(&d, req, "namespace");
	long kname = get(&d, kind, "kind"), group = get(&d, kind, "group");
	if (!jtok_str_eq(d.s, toks, get(&d, 0, "apiVersion"), REVIEW_API_VERSION) ||
	    !jtok_str_eq(d.s, toks, get(&d, 0, "kind"), REVIEW_KIND))
		why = "not an admission.k8s.io/v1 AdmissionReview";
	else if (!jtok_is(toks, req, JTOK_OBJECT))
		why = "the review has no request";
	else if (jtok_str(d.s, toks, get(&d, req, "uid"), uid, sizeof(uid)) <= 0)
		why = "request.uid is missing or longer than 128 bytes";
	else if (!jtok_is(toks, op, JTOK_STRING) || !jtok_is(toks, kname, JTOK_STRING))
		why = "request.operation or request.kind is missing";
	else if (ns_tok >= 0 && !jtok_is(toks, ns_tok, JTOK_NULL) &&
		 jtok_str(d.s, toks, ns_tok, ns, sizeof(ns)) < 0)
		why = "request.namespace is not a string of at most 63 bytes";
	if (why != NULL) {
		reply_err(r, ERR_MALFORMED, why);
		goto out;
	}
	bool core_group = group < 0 || jtok_str_eq(d.s, toks, group, "");
	bool is_pod = jtok_str_eq(d.s, toks, kname, "Pod") && core_group;
	bool is_job = jtok_str_eq(d.s, toks, kname, "Job") && jtok_str_eq(d.s, toks, group, "batch");
	bool is_create = jtok_str_eq(d.s, toks, op, "CREATE");
	bool is_update = jtok_str_eq(d.s, toks, op, "UPDATE");
	if (!(is_pod && is_create) && !(is_job && (is_create || is_update))) {
		/* Not ours to judge (the webhook configuration should not send it). */
		reply_review(r, uid, true, NULL);
		goto out;
	}
	cur = malloc(sizeof(*cur));
	old = is_update ? malloc(sizeof(*old)) : NULL;
	if (cur == NULL || (is_update && old == NULL)) {
		reply_err(r, ERR_NOMEM, NULL);
		goto out;
	}
	const char *nsp = ns_tok >= 0 && jtok_is(toks, ns_tok, JTOK_STRING) ? ns : NULL;
	if (object_parse(&d, get(&d, req, "object"), is_job, nsp, cur, &why) != 0 ||
	    (is_update && object_parse(&d, get(&d, req, "oldObject"), is_job, nsp, old, &why) != 0)) {
		reply_err(r, ERR_MALFORMED, why);
		goto out;
	}
	review_decide(r, uid, cur, old);
out:
	free(cur);
	free(old);
	free(toks);
}
