/*
 * kueue.c - Plinth as a Kueue AdmissionCheck controller (see kueue.h and
 * docs/kueue.md).
 *
 * Three list-then-watch threads (AdmissionChecks, ResourceFlavors,
 * Workloads) share one state under one mutex.  A Workload is handled when it
 * changes: its events arrive in order per object, and Plinth's Idempotency-Key
 * (the Workload's uid, plus the eviction count after an eviction) makes a
 * repeated allocation return the first answer, so a restart or a conflicting
 * status write never allocates twice.  What failed for a passing reason
 * (Plinth unreachable or 5xx, a 409 on the status write) is fetched again
 * from the API server by kueue_tick.
 */
#include "controller/kueue.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/gpuproduct.h"
#include "core/timeutil.h"
#include "net/httpc.h"
#include "util/util.h"

#define KQ_NAME_LEN 254
#define KQ_ID_LEN 64
#define KQ_RETRY_MAX 64 /* Workloads fetched again per tick */
#define KQ_API_TIMEOUT_MS 15000L
#define KQ_MSG_MAX 1024
#define KQ_RETRY_BASE_S 5L /* requeueAfterSeconds of a first Retry (capacity) */ /* of Plinth's detail copied into a check's message */

struct kq_flavor {
	char name[KQ_NAME_LEN];
	char gpu_type[64];
};

/* A Workload Plinth allocated for, until its end was handed on. */
struct kq_alloc {
	char uid[KQ_ID_LEN];
	char id[KQ_ID_LEN];
	bool ended; /* on_end was called for id */
};

struct kq_ref {
	char ns[64], name[KQ_NAME_LEN];
};

struct kueue;
struct kq_cb {
	struct kueue *k;
	int kind;
};

struct kueue {
	struct kueue_opts o;
	pthread_mutex_t mu;
	char (*checks)[KQ_NAME_LEN];
	size_t nchecks, capchecks;
	struct kq_flavor *flavors;
	size_t nflavors, capflavors;
	struct kq_alloc *allocs;
	size_t nallocs, capallocs;
	struct kq_ref *retry;
	size_t nretry, capretry;
	bool checks_synced, flavors_synced;
	char wl_path[512];
	struct kube_informer inf[3];
	struct kq_cb cbs[3];
	pthread_t th[3];
	bool th_ok[3];
};

static void kq_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void kq_log(const char *fmt, ...)
{
	char when[TIME_FMT_LEN], msg[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	time_format_rfc3339((int64_t)time(NULL), when);
	fprintf(stderr, "%s controller: kueue: %s\n", when, msg);
	fflush(stderr);
}

/* Grows an array of elements of size sz to hold one more; 0 or ERR_NOMEM. */
static int grow(void **arr, size_t n, size_t *cap, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 16;
	void *p = realloc(*arr, nc * sz);
	if (p == NULL)
		return ERR_NOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

static const char *str_at(const json_t *obj, const char *a, const char *b)
{
	return json_string_value(json_object_get(json_object_get(obj, a), b));
}

/* --- pure parts -------------------------------------------------------------- */

bool kueue_flavor_gpu_type(const json_t *flavor, char *out, size_t outlen)
{
	const json_t *labels = json_object_get(json_object_get(flavor, "spec"), "nodeLabels");
	const char *t = json_string_value(json_object_get(labels, GPU_TYPE_LABEL));
	const char *product = json_string_value(json_object_get(labels, GPU_PRODUCT_LABEL));

	if (t == NULL && product != NULL)
		t = gpu_type_of_product(product);
	out[0] = '\0';
	if (t == NULL || t[0] == '\0' || strlen(t) >= outlen)
		return false;
	snprintf(out, outlen, "%s", t);
	return true;
}

/* A Kubernetes quantity that is a whole number ("2", "2000m" is refused on
 * purpose: GPUs are whole).  Returns -1 when it is not one. */
static long long whole_quantity(const json_t *v)
{
	const char *s = json_string_value(v);
	long long n = 0;

	if (json_is_integer(v))
		return json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
	if (s == NULL || s[0] == '\0' || strlen(s) > 9)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n;
}

int kueue_price(const json_t *wl, const char *(*lookup)(void *ctx, const char *flavor),
	void *ctx, long long default_seconds, struct kueue_price *out)
{
	const json_t *psa = json_object_get(json_object_get(json_object_get(wl, "status"),
		"admission"), "podSetAssignments");
	const json_t *mx = json_object_get(json_object_get(wl, "spec"),
		"maximumExecutionTimeSeconds");

	memset(out, 0, sizeof *out);
	out->max_seconds = json_is_integer(mx) && json_integer_value(mx) > 0
		? json_integer_value(mx) : default_seconds;
	if (!json_is_array(psa)) {
		snprintf(out->why, sizeof out->why, "the workload has no admission yet");
		return -1;
	}
	for (size_t i = 0; i < json_array_size(psa); i++) {
		const json_t *a = json_array_get(psa, i);
		const json_t *use = json_object_get(json_object_get(a, "resourceUsage"), GPU_RESOURCE);
		const char *flavor = str_at(a, "flavors", GPU_RESOURCE);
		const char *ps = json_string_value(json_object_get(a, "name"));
		const char *type;
		long long n;

		if (use == NULL)
			continue;
		n = whole_quantity(use);
		if (n < 0) {
			snprintf(out->why, sizeof out->why, "pod set %.60s: %s is not a whole number",
				ps ? ps : "?", GPU_RESOURCE);
			return -1;
		}
		if (n == 0)
			continue;
		type = flavor ? lookup(ctx, flavor) : NULL;
		if (type == NULL || type[0] == '\0') {
			snprintf(out->why, sizeof out->why,
				"pod set %.60s: ResourceFlavor %.60s has no %s or known %s node label",
				ps ? ps : "?", flavor ? flavor : "(none)", GPU_TYPE_LABEL, GPU_PRODUCT_LABEL);
			return -1;
		}
		if (out->gpu_type[0] != '\0' && strcmp(out->gpu_type, type) != 0) {
			snprintf(out->why, sizeof out->why,
				"pod sets use two GPU types (%.60s and %.60s); one allocation has one type",
				out->gpu_type, type);
			return -1;
		}
		snprintf(out->gpu_type, sizeof out->gpu_type, "%s", type);
		out->gpus += n;
	}
	return 0;
}

/* --- state ----------------------------------------------------------------- */

static bool check_ours(const struct kueue *k, const char *name)
{
	for (size_t i = 0; name && i < k->nchecks; i++)
		if (strcmp(k->checks[i], name) == 0)
			return true;
	return false;
}

static const char *flavor_lookup(void *ctx, const char *name)
{
	struct kueue *k = ctx;

	for (size_t i = 0; i < k->nflavors; i++)
		if (strcmp(k->flavors[i].name, name) == 0)
			return k->flavors[i].gpu_type;
	return NULL;
}

static struct kq_alloc *alloc_find(struct kueue *k, const char *uid)
{
	for (size_t i = 0; i < k->nallocs; i++)
		if (strcmp(k->allocs[i].uid, uid) == 0)
			return &k->allocs[i];
	return NULL;
}

static struct kq_alloc *alloc_add(struct kueue *k, const char *uid)
{
	struct kq_alloc *a = alloc_find(k, uid);

	if (a != NULL)
		return a;
	if (grow((void **)&k->allocs, k->nallocs, &k->capallocs, sizeof *k->allocs) != 0)
		return NULL;
	a = &k->allocs[k->nallocs++];
	memset(a, 0, sizeof *a);
	snprintf(a->uid, sizeof a->uid, "%s", uid);
	return a;
}

static void retry_add(struct kueue *k, const char *ns, const char *name)
{
	for (size_t i = 0; i < k->nretry; i++)
		if (strcmp(k->retry[i].ns, ns) == 0 && strcmp(k->retry[i].name, name) == 0)
			return;
	if (strlen(ns) >= sizeof k->retry[0].ns || strlen(name) >= sizeof k->retry[0].name)
		return;
	if (grow((void **)&k->retry, k->nretry, &k->capretry, sizeof *k->retry) != 0) {
		kq_log("out of memory: %s/%s is not retried", ns, name);
		return;
	}
	snprintf(k->retry[k->nretry].ns, sizeof k->retry[0].ns, "%s", ns);
	snprintf(k->retry[k->nretry].name, sizeof k->retry[0].name, "%s", name);
	k->nretry++;
}

static bool leader(const struct kueue *k)
{
	return k->o.is_leader == NULL || k->o.is_leader(k->o.ctx);
}

/* The condition of obj's status named type: its status string and, in *at,
 * its lastTransitionTime (0 when absent). */
static const char *condition(const json_t *obj, const char *type, int64_t *at)
{
	const json_t *conds = json_object_get(json_object_get(obj, "status"), "conditions");

	*at = 0;
	for (size_t i = 0; i < json_array_size(conds); i++) {
		const json_t *c = json_array_get(conds, i);
		const char *t = json_string_value(json_object_get(c, "type"));
		if (t != NULL && strcmp(t, type) == 0) {
			const char *lt = json_string_value(json_object_get(c, "lastTransitionTime"));
			if (lt == NULL || time_parse_rfc3339(lt, at) != 0)
				*at = 0;
			return json_string_value(json_object_get(c, "status"));
		}
	}
	return NULL;
}

static bool condition_true(const json_t *obj, const char *type, int64_t *at)
{
	const char *s = condition(obj, type, at);
	return s != NULL && strcmp(s, "True") == 0;
}

/* --- writing to the API server --------------------------------------------- */

/* PUT obj (owned copy) to PATH/status; returns the HTTP status or 0. */
static long put_status(struct kueue *k, const char *path, json_t *obj)
{
	char detail[KUBE_DETAIL_LEN] = "";
	json_t *res = NULL;
	long status = 0;

	if (kube_request(k->o.kc, "PUT", path, obj, &status, &res, detail) != 0) {
		kq_log("PUT %s: %s", path, detail);
		return 0;
	}
	if (status != 200 && status != 409) {
		const char *m = json_string_value(json_object_get(res, "message"));
		kq_log("PUT %s answered %ld %.300s", path, status, m ? m : "");
	}
	json_decref(res);
	return status;
}

static void on_check(struct kueue *k, enum kube_event ev, json_t *obj)
{
	const char *name = str_at(obj, "metadata", "name");
	const char *ctl = str_at(obj, "spec", "controllerName");
	char path[600], when[TIME_FMT_LEN];
	int64_t at;
	json_t *copy, *conds, *c;

	if (name == NULL || strlen(name) >= KQ_NAME_LEN)
		return;
	if (ev == KUBE_EV_DELETED || ctl == NULL || strcmp(ctl, KUEUE_CONTROLLER_NAME) != 0) {
		for (size_t i = 0; i < k->nchecks; i++)
			if (strcmp(k->checks[i], name) == 0) {
				memmove(&k->checks[i], &k->checks[i + 1],
					(k->nchecks - i - 1) * sizeof k->checks[0]);
				k->nchecks--;
				break;
			}
		return;
	}
	if (!check_ours(k, name)) {
		if (grow((void **)&k->checks, k->nchecks, &k->capchecks, sizeof k->checks[0]) != 0)
			return;
		snprintf(k->checks[k->nchecks++], KQ_NAME_LEN, "%s", name);
		kq_log("owning AdmissionCheck %s", name);
	}
	if (condition_true(obj, "Active", &at) || !leader(k))
		return;
	/* Active=True tells Kueue the check's controller runs; without it the
	 * ClusterQueue using the check stays inactive. */
	copy = json_deep_copy(obj);
	if (copy == NULL)
		return;
	time_format_rfc3339((int64_t)time(NULL), when);
	conds = json_array();
	c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O*}", "type", "Active", "status", "True",
		"reason", "Active", "message", "Plinth prices and allocates the workloads of this check",
		"lastTransitionTime", when, "observedGeneration",
		json_object_get(json_object_get(obj, "metadata"), "generation"));
	if (conds == NULL || c == NULL) {
		json_decref(conds);
		json_decref(c);
		json_decref(copy);
		return;
	}
	/* Each call takes its argument's reference, also when it fails. */
	if (json_array_append_new(conds, c) != 0) {
		json_decref(conds);
		json_decref(copy);
		return;
	}
	if (json_object_set_new(copy, "status", json_pack("{s:o}", "conditions", conds)) != 0) {
		json_decref(copy);
		return;
	}
	if (util_fmt(path, sizeof path, KUEUE_API "/admissionchecks/%s/status", name) == 0 &&
	    put_status(k, path, copy) == 200)
		kq_log("AdmissionCheck %s: Active", name);
	json_decref(copy);
}

static void on_flavor(struct kueue *k, enum kube_event ev, json_t *obj)
{
	const char *name = str_at(obj, "metadata", "name");
	char type[64];
	size_t i;

	if (name == NULL || strlen(name) >= KQ_NAME_LEN)
		return;
	for (i = 0; i < k->nflavors; i++)
		if (strcmp(k->flavors[i].name, name) == 0)
			break;
	if (ev == KUBE_EV_DELETED) {
		if (i < k->nflavors) {
			k->flavors[i] = k->flavors[k->nflavors - 1];
			k->nflavors--;
		}
		return;
	}
	(void)kueue_flavor_gpu_type(obj, type, sizeof type);
	if (i == k->nflavors) {
		if (grow((void **)&k->flavors, k->nflavors, &k->capflavors, sizeof *k->flavors) != 0)
			return;
		k->nflavors++;
		snprintf(k->flavors[i].name, sizeof k->flavors[i].name, "%s", name);
	}
	snprintf(k->flavors[i].gpu_type, sizeof k->flavors[i].gpu_type, "%s", type);
}

/* --- Plinth ---------------------------------------------------------------- */

enum kq_answer { KQ_READY, KQ_RETRY, KQ_REJECTED, KQ_LATER };

/* POST /v1/allocations for wl.  On KQ_READY id holds the allocation id;
 * otherwise msg says why (Plinth's detail). */
static enum kq_answer allocate(struct kueue *k, const json_t *wl, const struct kueue_price *p,
	const char *key, char *id, size_t idlen, char *msg, size_t msglen)
{
	const char *ns = str_at(wl, "metadata", "namespace");
	const char *name = str_at(wl, "metadata", "name");
	const char *team = str_at(wl, "spec", "queueName");
	char url[1024], auth[1024], idem[160], purpose[400], detail[HTTPC_DETAIL_LEN] = "";
	const char *headers[4] = { auth, idem, "Content-Type: application/json", NULL };
	struct httpc_response r = { 0 };
	json_t *body, *res;
	char *text;
	/* Plinth takes at most 6 decimals of an hour: round the time up to a micro-hour. */
	long long micro_h = (p->max_seconds * 1000000LL + 3599) / 3600;
	enum kq_answer ans = KQ_LATER;
	const char *type, *d;

	if (util_fmt(url, sizeof url, "%s/v1/allocations", k->o.url) != 0 ||
	    util_fmt(auth, sizeof auth, "Authorization: Bearer %s", k->o.token) != 0 ||
	    util_fmt(idem, sizeof idem, "Idempotency-Key: %s", key) != 0)
		return KQ_LATER;
	snprintf(purpose, sizeof purpose, "Kueue workload %s/%s", ns ? ns : "?", name ? name : "?");
	body = json_pack("{s:s, s:s, s:s, s:I, s:f, s:s}", "team", team ? team : "",
		"project", ns ? ns : "", "gpu_type", p->gpu_type, "gpu_count", (json_int_t)p->gpus,
		"max_runtime_hours", (double)micro_h / 1e6, "purpose", purpose);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text == NULL)
		return KQ_LATER;
	if (httpc_request("POST", url, headers, text, strlen(text), KQ_API_TIMEOUT_MS, 1u << 20,
		    &r, detail) != 0) {
		kq_log("POST %s: %s (will retry)", url, detail);
		free(text);
		return KQ_LATER;
	}
	free(text);
	res = json_loadb(r.body, r.len, 0, NULL);
	type = json_string_value(json_object_get(res, "type"));
	d = json_string_value(json_object_get(res, "detail"));
	if ((r.status == 201 || r.status == 200) &&
	    json_string_value(json_object_get(res, "id")) != NULL &&
	    strlen(json_string_value(json_object_get(res, "id"))) < idlen) {
		snprintf(id, idlen, "%s", json_string_value(json_object_get(res, "id")));
		ans = KQ_READY;
	} else if (r.status == 409 && type != NULL && strstr(type, "capacity-exceeded") != NULL) {
		snprintf(msg, msglen, "plinth: capacity-exceeded: %.*s", KQ_MSG_MAX,
			d ? d : "GPU capacity exceeded");
		ans = KQ_RETRY;
	} else if (r.status >= 400 && r.status < 500 && r.status != 401 && r.status != 429) {
		/* Budget exceeded, an unknown team or GPU type, a runtime over the
		 * deployment's limit: asking again changes nothing.  The problem
		 * type's last segment names the kind (budget-exceeded, ...). */
		const char *kind = type && strrchr(type, '/') ? strrchr(type, '/') + 1 : "";
		snprintf(msg, msglen, "plinth: %.60s%s%.*s", kind, kind[0] ? ": " : "", KQ_MSG_MAX,
			d ? d : "refused");
		ans = KQ_REJECTED;
	} else {
		kq_log("POST %s answered %ld %.300s (will retry)", url, r.status, d ? d : "");
	}
	json_decref(res);
	httpc_response_done(&r);
	return ans;
}

/* --- Workloads ---------------------------------------------------------------- */

/*
 * Kueue resets a Rejected or Retry check to Pending when it evicts the
 * Workload ("Reset to Pending after eviction. Previously: Rejected"), so
 * Plinth's reason would vanish with the check's message: it is also kept in
 * the Workload's annotation plinth.io/refusal (removed once Ready).  PUTs wl
 * with it when it changes; returns the object to build on (owned: the
 * server's answer, or a copy of wl), or NULL on a failure.
 */
static json_t *annotate(struct kueue *k, const json_t *wl, const char *refusal)
{
	const char *ns = str_at(wl, "metadata", "namespace");
	const char *name = str_at(wl, "metadata", "name");
	const json_t *ann = json_object_get(json_object_get(wl, "metadata"), "annotations");
	const char *cur = json_string_value(json_object_get(ann, KUEUE_REFUSAL_ANNOTATION));
	char path[700], detail[KUBE_DETAIL_LEN] = "";
	json_t *copy, *meta, *anns, *res = NULL;
	long status = 0;

	if ((refusal == NULL && cur == NULL) || (refusal && cur && strcmp(refusal, cur) == 0))
		return json_deep_copy(wl);
	copy = json_deep_copy(wl);
	meta = json_object_get(copy, "metadata");
	anns = json_object_get(meta, "annotations");
	if (copy == NULL || meta == NULL)
		goto fail;
	if (anns == NULL) {
		anns = json_object();
		if (anns == NULL || json_object_set_new(meta, "annotations", anns) != 0)
			goto fail;
	}
	if (refusal != NULL ? json_object_set_new(anns, KUEUE_REFUSAL_ANNOTATION,
				      json_string(refusal)) != 0
			    : json_object_del(anns, KUEUE_REFUSAL_ANNOTATION) != 0)
		goto fail;
	if (util_fmt(path, sizeof path, KUEUE_API "/namespaces/%s/workloads/%s", ns, name) != 0)
		goto fail;
	if (kube_request(k->o.kc, "PUT", path, copy, &status, &res, detail) != 0) {
		kq_log("PUT %s: %s", path, detail);
		goto fail;
	}
	json_decref(copy);
	if (status == 200 && json_is_object(res))
		return res;
	if (status != 409) {
		const char *m = json_string_value(json_object_get(res, "message"));
		kq_log("PUT %s answered %ld %.300s", path, status, m ? m : "");
	}
	json_decref(res);
	return NULL;
fail:
	json_decref(copy);
	return NULL;
}

/* Writes our check's new state into a copy of wl and PUTs it.  id: the
 * allocation to label the pods with (Ready), else NULL.  Returns 0 when the
 * API server took it; a conflict or failure puts the Workload on the retry list. */
static int set_check(struct kueue *k, const json_t *wl, size_t ci, const char *state,
	const char *msg, const char *id, long requeue_s)
{
	const char *ns = str_at(wl, "metadata", "namespace");
	const char *name = str_at(wl, "metadata", "name");
	const json_t *podsets = json_object_get(json_object_get(wl, "spec"), "podSets");
	char path[700], when[TIME_FMT_LEN];
	json_t *copy, *chk, *updates = NULL;
	long st;

	copy = annotate(k, wl, strcmp(state, "Ready") == 0 ? NULL : msg);
	if (copy == NULL) {
		retry_add(k, ns, name);
		return ERR_CONFLICT;
	}
	chk = json_array_get(json_object_get(json_object_get(copy, "status"), "admissionChecks"), ci);
	time_format_rfc3339((int64_t)time(NULL), when);
	if (id != NULL) {
		updates = json_array();
		for (size_t i = 0; updates && i < json_array_size(podsets); i++) {
			const char *ps = json_string_value(json_object_get(json_array_get(podsets, i), "name"));
			json_t *u = ps ? json_pack("{s:s, s:{s:s}}", "name", ps, "labels",
				GPU_ALLOCATION_LABEL, id) : NULL;
			if (u == NULL || json_array_append_new(updates, u) != 0) {
				json_decref(updates);
				updates = NULL;
			}
		}
		if (updates == NULL) {
			json_decref(copy);
			return ERR_NOMEM;
		}
	}
	if (chk == NULL) {
		json_decref(updates);
		json_decref(copy);
		return ERR_INVALID;
	}
	if (json_object_set_new(chk, "state", json_string(state)) != 0 ||
	    json_object_set_new(chk, "message", json_string(msg)) != 0 ||
	    json_object_set_new(chk, "lastTransitionTime", json_string(when)) != 0 ||
	    (requeue_s > 0 &&
		    json_object_set_new(chk, "requeueAfterSeconds", json_integer(requeue_s)) != 0) ||
	    (updates != NULL && json_object_set_new(chk, "podSetUpdates", updates) != 0)) {
		json_decref(copy);
		return ERR_NOMEM;
	}
	if (util_fmt(path, sizeof path, KUEUE_API "/namespaces/%s/workloads/%s/status", ns, name) != 0) {
		json_decref(copy);
		return ERR_INVALID;
	}
	st = put_status(k, path, copy);
	json_decref(copy);
	if (st != 200) {
		retry_add(k, ns, name);
		return ERR_CONFLICT;
	}
	kq_log("workload %s/%s: %s (%s)", ns, name, state, msg);
	return 0;
}

/* The allocation id our Ready check gave the pods, from its podSetUpdates. */
static const char *check_alloc_id(const json_t *chk)
{
	const json_t *u = json_object_get(chk, "podSetUpdates");
	for (size_t i = 0; i < json_array_size(u); i++) {
		const char *id = str_at(json_array_get(u, i), "labels", GPU_ALLOCATION_LABEL);
		if (id != NULL && strlen(id) < KQ_ID_LEN)
			return id;
	}
	return NULL;
}

/* How often Kueue evicted wl (status.schedulingStats.evictions): every
 * Retry, Rejected or preemption is one.  Part of the Idempotency-Key, so an
 * admission after an eviction asks Plinth afresh (Plinth replays refusals
 * too) while repeats within one admission, a restart included, do not. */
static long long evictions(const json_t *wl)
{
	const json_t *ev = json_object_get(json_object_get(json_object_get(wl, "status"),
		"schedulingStats"), "evictions");
	long long n = 0;

	for (size_t i = 0; i < json_array_size(ev); i++)
		n += json_integer_value(json_object_get(json_array_get(ev, i), "count"));
	return n;
}

static void end_alloc(struct kueue *k, struct kq_alloc *a, int64_t at, const char *why)
{
	if (a->ended || a->id[0] == '\0')
		return;
	a->ended = true;
	kq_log("allocation %s: workload %s at %lld", a->id, why, (long long)at);
	if (k->o.on_end != NULL)
		k->o.on_end(k->o.ctx, a->id, at);
}

static void on_workload(struct kueue *k, enum kube_event ev, const json_t *wl)
{
	const char *uid = str_at(wl, "metadata", "uid");
	const char *ns = str_at(wl, "metadata", "namespace");
	const char *name = str_at(wl, "metadata", "name");
	const json_t *checks = json_object_get(json_object_get(wl, "status"), "admissionChecks");
	struct kq_alloc *a;
	struct kueue_price p;
	int64_t fin_at, evict_at, qr_at;
	bool finished, evicted, reserved;
	const json_t *chk = NULL;
	size_t ci = 0;
	const char *state;
	char id[KQ_ID_LEN] = "", msg[KQ_MSG_MAX + 64] = "", key[96];
	enum kq_answer ans;

	if (uid == NULL || ns == NULL || name == NULL || strlen(uid) >= KQ_ID_LEN)
		return;
	a = alloc_find(k, uid);
	if (ev == KUBE_EV_DELETED) {
		if (a != NULL) {
			end_alloc(k, a, (int64_t)time(NULL), "deleted");
			*a = k->allocs[--k->nallocs]; /* forgotten with its Workload */
		}
		return;
	}
	finished = condition_true(wl, "Finished", &fin_at);
	evicted = condition_true(wl, "Evicted", &evict_at);
	reserved = condition_true(wl, "QuotaReserved", &qr_at);
	for (size_t i = 0; i < json_array_size(checks); i++) {
		const char *n = json_string_value(json_object_get(json_array_get(checks, i), "name"));
		if (check_ours(k, n)) {
			chk = json_array_get(checks, i);
			ci = i;
			break;
		}
	}
	state = json_string_value(json_object_get(chk, "state"));
	/* A Ready check we gave before a restart: learn its allocation. */
	if (a == NULL && chk != NULL && state != NULL && strcmp(state, "Ready") == 0 &&
	    check_alloc_id(chk) != NULL && (a = alloc_add(k, uid)) != NULL)
		snprintf(a->id, sizeof a->id, "%s", check_alloc_id(chk));
	if (a != NULL && !a->ended && a->id[0] != '\0') {
		if (finished) {
			end_alloc(k, a, fin_at ? fin_at : (int64_t)time(NULL), "finished");
			return;
		}
		if (evicted || !reserved) {
			/* Kueue evicted it (or gave its quota back): the pods stop; a
			 * later admission is a new allocation with a new key. */
			end_alloc(k, a, evict_at ? evict_at : (int64_t)time(NULL), "evicted");
			a->id[0] = '\0';
		}
	}
	if (finished || chk == NULL || !reserved || evicted || state == NULL ||
	    strcmp(state, "Pending") != 0)
		return;
	if (!leader(k)) {
		retry_add(k, ns, name);
		return;
	}
	/* Ready again without allocating when we already hold one for it (our
	 * earlier status write was lost). */
	if (a != NULL && !a->ended && a->id[0] != '\0') {
		snprintf(msg, sizeof msg, "plinth allocation %s", a->id);
		(void)set_check(k, wl, ci, "Ready", msg, a->id, 0);
		return;
	}
	if (kueue_price(wl, flavor_lookup, k, k->o.default_seconds, &p) != 0) {
		snprintf(msg, sizeof msg, "plinth: %s", p.why);
		(void)set_check(k, wl, ci, "Rejected", msg, NULL, 0);
		return;
	}
	if (p.gpus == 0) {
		(void)set_check(k, wl, ci, "Ready", "plinth: no GPUs asked, nothing to allocate", NULL, 0);
		return;
	}
	if (evictions(wl) > 0)
		snprintf(key, sizeof key, "%s#%lld", uid, evictions(wl));
	else
		snprintf(key, sizeof key, "%s", uid);
	ans = allocate(k, wl, &p, key, id, sizeof id, msg, sizeof msg);
	if (ans == KQ_LATER) {
		retry_add(k, ns, name);
		return;
	}
	if (ans == KQ_READY) {
		if (a == NULL)
			a = alloc_add(k, uid);
		if (a == NULL) {
			kq_log("out of memory tracking %s/%s", ns, name);
			return;
		}
		snprintf(a->id, sizeof a->id, "%s", id);
		a->ended = false;
		snprintf(msg, sizeof msg, "plinth allocation %s: %lld x %s for %lld s", id, p.gpus,
			p.gpu_type, p.max_seconds);
		(void)set_check(k, wl, ci, "Ready", msg, id, 0);
	} else if (ans == KQ_RETRY) {
		/* Backoff: 5 s doubling with Kueue's count of Retry transitions, at most 5 min. */
		long long tries = json_integer_value(json_object_get(chk, "retryCount"));
		long wait_s = KQ_RETRY_BASE_S << (tries < 6 ? tries : 6);
		(void)set_check(k, wl, ci, "Retry", msg, NULL, wait_s < 300 ? wait_s : 300);
	} else {
		(void)set_check(k, wl, ci, "Rejected", msg, NULL, 0);
	}
}

/* --- threads --------------------------------------------------------------------- */

enum { KQ_CHECKS, KQ_FLAVORS, KQ_WORKLOADS };

static void kq_on_event(void *ctx, enum kube_event ev, json_t *obj)
{
	struct kq_cb *cb = ctx;
	struct kueue *k = cb->k;

	if (pthread_mutex_lock(&k->mu) != 0)
		return;
	if (ev == KUBE_EV_LIST_END) {
		if (cb->kind == KQ_CHECKS)
			k->checks_synced = true;
		else if (cb->kind == KQ_FLAVORS)
			k->flavors_synced = true;
	} else if (ev != KUBE_EV_LIST_BEGIN && obj != NULL) {
		if (cb->kind == KQ_CHECKS)
			on_check(k, ev, obj);
		else if (cb->kind == KQ_FLAVORS)
			on_flavor(k, ev, obj);
		else if ((!k->checks_synced || !k->flavors_synced) && ev != KUBE_EV_DELETED &&
			 str_at(obj, "metadata", "namespace") && str_at(obj, "metadata", "name"))
			/* Not yet knowing our checks and flavors, it cannot decide: later. */
			retry_add(k, str_at(obj, "metadata", "namespace"), str_at(obj, "metadata", "name"));
		else
			on_workload(k, ev, obj);
	}
	pthread_mutex_unlock(&k->mu);
}

static void kq_on_log(void *ctx, const char *msg)
{
	(void)ctx;
	kq_log("%s", msg);
}

static void *kq_thread(void *arg)
{
	const struct kube_informer *inf = arg;

	if (kube_informer_run(inf) != 0)
		kq_log("watch of %s stopped: out of memory", inf->path);
	return NULL;
}

struct kueue *kueue_start(const struct kueue_opts *o)
{
	struct kueue *k = calloc(1, sizeof *k);
	static const char *const paths[2] = { KUEUE_API "/admissionchecks",
		KUEUE_API "/resourceflavors" };

	if (k == NULL)
		return NULL;
	k->o = *o;
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		free(k);
		return NULL;
	}
	if (util_fmt(k->wl_path, sizeof k->wl_path, KUEUE_API "%s%s/workloads",
		     o->ns ? "/namespaces/" : "", o->ns ? o->ns : "") != 0) {
		pthread_mutex_destroy(&k->mu);
		free(k);
		return NULL;
	}
	for (int i = 0; i < 3; i++) {
		k->cbs[i] = (struct kq_cb){ k, i };
		k->inf[i] = (struct kube_informer){ .cfg = o->kc,
			.path = i < 2 ? paths[i] : k->wl_path, .label_selector = "",
			.watch_timeout_s = o->watch_timeout_s, .on_event = kq_on_event,
			.ctx = &k->cbs[i], .stop = o->stop, .log = kq_on_log };
	}
	for (int i = 0; i < 3; i++) {
		k->th_ok[i] = pthread_create(&k->th[i], NULL, kq_thread, &k->inf[i]) == 0;
		if (!k->th_ok[i]) {
			*o->stop = 1;
			kueue_stop(k);
			return NULL;
		}
	}
	kq_log("watching %s, %s and %s", paths[0], paths[1], k->wl_path);
	return k;
}

void kueue_tick(struct kueue *k)
{
	struct kq_ref batch[KQ_RETRY_MAX];
	size_t n;

	if (pthread_mutex_lock(&k->mu) != 0)
		return;
	if (!k->checks_synced || !k->flavors_synced || !leader(k) || k->nretry == 0) {
		pthread_mutex_unlock(&k->mu);
		return;
	}
	n = k->nretry < KQ_RETRY_MAX ? k->nretry : KQ_RETRY_MAX;
	memcpy(batch, k->retry, n * sizeof batch[0]);
	memmove(k->retry, k->retry + n, (k->nretry - n) * sizeof k->retry[0]);
	k->nretry -= n;
	pthread_mutex_unlock(&k->mu);
	for (size_t i = 0; i < n; i++) {
		char path[700], detail[KUBE_DETAIL_LEN] = "";
		json_t *wl = NULL;
		long status = 0;

		if (util_fmt(path, sizeof path, KUEUE_API "/namespaces/%s/workloads/%s", batch[i].ns,
			     batch[i].name) != 0)
			continue;
		if (kube_request(k->o.kc, "GET", path, NULL, &status, &wl, detail) != 0) {
			kq_log("GET %s: %s", path, detail);
			if (pthread_mutex_lock(&k->mu) == 0) {
				retry_add(k, batch[i].ns, batch[i].name);
				pthread_mutex_unlock(&k->mu);
			}
		} else if (status == 200 && pthread_mutex_lock(&k->mu) == 0) {
			on_workload(k, KUBE_EV_MODIFIED, wl);
			pthread_mutex_unlock(&k->mu);
		}
		json_decref(wl);
	}
}

void kueue_stop(struct kueue *k)
{
	if (k == NULL)
		return;
	for (int i = 0; i < 3; i++)
		if (k->th_ok[i])
			pthread_join(k->th[i], NULL);
	pthread_mutex_destroy(&k->mu);
	free(k->checks);
	free(k->flavors);
	free(k->allocs);
	free(k->retry);
	free(k);
}
