/*
 * admission.c - the admission decision for GPU Pods and Jobs (pure).
 *
 * An object that asks for no nvidia.com/gpu is always allowed: the webhook
 * must never stand between a cluster and its ordinary workloads.  An object
 * that asks for GPUs is allowed only with an allocation that is live
 * (approved and not past its start deadline, or running), of the namespace's
 * team, of the GPU type its node selection asks for, and big enough.  Each
 * refusal says what is wrong and what to do.  Never does I/O.
 */
#include "core/admission.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/gpuproduct.h"

static int64_t sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
	if (a == 0 || b == 0)
		return 0;
	return a > INT64_MAX / b ? INT64_MAX : a * b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

int64_t admission_pod_gpus(const struct admission_object *o)
{
	int64_t sum = 0, init_max = 0, sidecars = 0;
	for (size_t i = 0; i < o->ncontainers; i++)
		sum = sat_add(sum, max64(o->containers[i].gpus, 0));
	/* In order: a sidecar keeps running beside every container started after
	 * it (so it adds to the sum), a regular init container runs beside the
	 * sidecars started before it. */
	for (size_t i = 0; i < o->ninit; i++) {
		int64_t g = max64(o->init[i].gpus, 0);
		if (o->init[i].sidecar) {
			sum = sat_add(sum, g);
			sidecars = sat_add(sidecars, g);
			init_max = max64(init_max, sidecars);
		} else {
			init_max = max64(init_max, sat_add(g, sidecars));
		}
	}
	return max64(sum, init_max);
}

int64_t admission_total_gpus(const struct admission_object *o)
{
	int64_t per_pod = admission_pod_gpus(o);
	return o->is_job ? sat_mul(per_pod, max64(o->parallelism, 0)) : per_pod;
}

bool admission_needs_alloc(const struct admission_object *o)
{
	return admission_pod_gpus(o) > 0 && o->allocation_id != NULL && o->allocation_id[0] != '\0';
}

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

bool admission_same_ask(const struct admission_object *a, const struct admission_object *b)
{
	return admission_pod_gpus(a) == admission_pod_gpus(b) &&
	       admission_total_gpus(a) == admission_total_gpus(b) &&
	       str_eq(a->allocation_id, b->allocation_id) &&
	       str_eq(a->job_allocation_id, b->job_allocation_id) &&
	       str_eq(a->gpu_type_sel, b->gpu_type_sel) &&
	       str_eq(a->gpu_product_sel, b->gpu_product_sel);
}

/* A refusal: formats the reason (ending in "..." if it had to be cut). */
__attribute__((format(printf, 3, 4))) static bool deny(char *reason, size_t len, const char *fmt,
						       ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(reason, len, fmt, ap);
	va_end(ap);
	if (n < 0 && len > 0)
		snprintf(reason, len, "refused");
	else if ((size_t)n >= len && len > 4)
		memcpy(reason + len - 4, "...", 4);
	return false;
}

/* The GPU type the object's node selection asks for; NULL with a reason
 * when it asks for none, for an unknown product, or for two types. */
static const char *selected_type(const struct admission_object *o, const struct admission_alloc *a,
				 const char *what, char *reason, size_t len)
{
	const char *by_product = NULL;
	if (o->gpu_product_sel != NULL) {
		by_product = gpu_type_of_product(o->gpu_product_sel);
		if (by_product == NULL) {
			deny(reason, len,
			     "the %s selects nodes with " GPU_PRODUCT_LABEL "=%s, which is no GPU type "
			     "Plinth prices: select the product of allocation %s's type %s",
			     what, o->gpu_product_sel, a->id, a->gpu_type);
			return NULL;
		}
	}
	if (o->gpu_type_sel != NULL && by_product != NULL && strcmp(o->gpu_type_sel, by_product) != 0) {
		deny(reason, len,
		     "the %s selects two GPU types (" GPU_TYPE_LABEL "=%s and " GPU_PRODUCT_LABEL
		     "=%s, which is %s): keep one",
		     what, o->gpu_type_sel, o->gpu_product_sel, by_product);
		return NULL;
	}
	const char *t = o->gpu_type_sel != NULL ? o->gpu_type_sel : by_product;
	if (t == NULL) {
		const char *product = gpu_product_of_type(a->gpu_type);
		if (product != NULL)
			deny(reason, len,
			     "the %s asks for GPUs without selecting a GPU type, so it could run on any "
			     "GPU: add nodeSelector " GPU_PRODUCT_LABEL ": %s (allocation %s is for %s)",
			     what, product, a->id, a->gpu_type);
		else
			deny(reason, len,
			     "the %s asks for GPUs without selecting a GPU type, so it could run on any "
			     "GPU: add nodeSelector " GPU_TYPE_LABEL ": %s (allocation %s is for %s)",
			     what, a->gpu_type, a->id, a->gpu_type);
	}
	return t;
}

bool admission_team_has_namespace(const char *list, const char *ns)
{
	size_t n = strlen(ns);
	for (const char *s = list; s != NULL && *s != '\0';) {
		size_t m = strcspn(s, ",");
		if (m == n && strncmp(s, ns, n) == 0)
			return true;
		s += m + (s[m] == ',');
	}
	return false;
}

bool admission_decide(const struct admission_object *o, const struct admission_alloc *a,
		      int64_t now, char *reason, size_t len)
{
	const char *what = o->is_job ? "Job" : "Pod";
	int64_t per_pod = admission_pod_gpus(o);
	int64_t total = admission_total_gpus(o);
	if (len > 0)
		reason[0] = '\0';
	if (per_pod == 0)
		return true;
	if (o->is_job && o->job_allocation_id != NULL &&
	    (o->allocation_id == NULL || strcmp(o->allocation_id, o->job_allocation_id) != 0))
		return deny(reason, len,
			    "the Job is labelled " GPU_ALLOCATION_LABEL "=%s but its pod template %s: "
			    "its pods carry the template's labels, so label spec.template.metadata "
			    "with the same allocation id",
			    o->job_allocation_id,
			    o->allocation_id ? "names another allocation" : "has no such label");
	if (o->allocation_id == NULL || o->allocation_id[0] == '\0')
		return deny(reason, len,
			    "the %s asks for %" PRId64 " " GPU_RESOURCE " but has no " GPU_ALLOCATION_LABEL
			    " label: get an allocation with `plinth quote ...` then `plinth allocate "
			    "...` (or submit it with `plinth submit`), and label the %s "
			    GPU_ALLOCATION_LABEL "=<allocation id>",
			    what, total, what);
	if (a == NULL)
		return deny(reason, len,
			    "allocation %s (label " GPU_ALLOCATION_LABEL ") does not exist: get one with "
			    "`plinth allocate ...` and label the %s with its id",
			    o->allocation_id, what);
	if (o->namespace_ == NULL || !admission_team_has_namespace(a->team_namespaces, o->namespace_))
		return deny(reason, len,
			    "allocation %s belongs to team %s, not to namespace %s (team %s's "
			    "namespaces: %s): allocate for the team that owns namespace %s, or have "
			    "an admin add it to team %s's namespaces",
			    a->id, a->team, o->namespace_ ? o->namespace_ : "(none)", a->team,
			    a->team_namespaces ? a->team_namespaces : "(none)",
			    o->namespace_ ? o->namespace_ : "(none)", a->team);
	if (a->status == ALLOC_APPROVED && now >= a->expires_at)
		return deny(reason, len,
			    "allocation %s expired: it was not started before its start deadline; "
			    "get a new one with `plinth allocate ...`",
			    a->id);
	if (a->status != ALLOC_APPROVED && a->status != ALLOC_RUNNING)
		return deny(reason, len,
			    "allocation %s is %s: only an approved or running allocation admits GPU "
			    "workloads; get a new one with `plinth allocate ...`",
			    a->id, alloc_status_name(a->status));
	const char *t = selected_type(o, a, what, reason, len);
	if (t == NULL)
		return false;
	if (strcmp(t, a->gpu_type) != 0)
		return deny(reason, len,
			    "the %s selects GPU type %s but allocation %s is for %s: select %s, or "
			    "allocate %s GPUs",
			    what, t, a->id, a->gpu_type, a->gpu_type, t);
	if (total > a->gpu_count) {
		if (o->is_job)
			return deny(reason, len,
				    "the Job asks for %" PRId64 " " GPU_RESOURCE " (%" PRId64
				    " per pod x parallelism %" PRId64 ") but allocation %s holds %" PRId64
				    ": lower the ask or parallelism, or allocate more GPUs",
				    total, per_pod, o->parallelism, a->id, a->gpu_count);
		return deny(reason, len,
			    "the Pod asks for %" PRId64 " " GPU_RESOURCE " but allocation %s holds %" PRId64
			    ": lower the ask, or allocate more GPUs",
			    total, a->id, a->gpu_count);
	}
	return true;
}
