/*
 * kueue.h - Plinth as a Kueue AdmissionCheck controller (issue 17): money
 * budgets for workloads that Kueue queues.
 *
 * It owns the kueue.x-k8s.io/v1beta2 AdmissionChecks whose controllerName is
 * plinth.io/budget (marks them Active), and for every Workload that holds
 * quota with such a check Pending it prices the pod sets (GPU type from the
 * assigned ResourceFlavor's node labels, GPU count, maximum execution time),
 * allocates through Plinth's API (Idempotency-Key: the Workload's uid) and
 * sets the check's state: Ready (with a podSetUpdate labelling the pods
 * plinth.io/allocation-id), Retry (capacity) or Rejected (budget).
 *
 * It never reports start or completion itself: the pods carry the allocation
 * label, so the usage controller (cmd_controller.c, usage.c) bills them.  It
 * only tells its owner, through on_end, when a Workload that holds an
 * allocation is over (Finished, evicted or deleted) and when Kueue says so.
 */
#ifndef PLINTH_CONTROLLER_KUEUE_H
#define PLINTH_CONTROLLER_KUEUE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "controller/kube.h"

#define KUEUE_CONTROLLER_NAME "plinth.io/budget"
#define KUEUE_API "/apis/kueue.x-k8s.io/v1beta2"
/* Plinth's last refusal of a Workload (Kueue resets the check's message). */
#define KUEUE_REFUSAL_ANNOTATION "plinth.io/refusal"

/* What a Workload's pod sets ask of Plinth (pure; see kueue_price). */
struct kueue_price {
	char gpu_type[64]; /* "" when no pod set asks for GPUs */
	long long gpus;    /* over all pod sets */
	long long max_seconds;
	char why[256];     /* when kueue_price fails: why, for the Rejected message */
};

/* GPU type of a ResourceFlavor object (its spec.nodeLabels): the Plinth id
 * named by plinth.io/gpu-type, else the one nvidia.com/gpu.product maps to
 * (gpuproduct.c).  Returns false when neither says (out left ""). */
bool kueue_flavor_gpu_type(const json_t *flavor, char *out, size_t outlen);

/*
 * Prices a Workload (pure): for each pod set assignment in
 * status.admission with a nvidia.com/gpu resourceUsage, the flavor assigned
 * to nvidia.com/gpu names the GPU type (lookup(ctx, flavor) -> type or NULL).
 * All GPU pod sets must use one type.  max_seconds: the Workload's
 * spec.maximumExecutionTimeSeconds, else default_seconds.
 * Returns 0, or -1 with out->why filled.
 */
int kueue_price(const json_t *wl, const char *(*lookup)(void *ctx, const char *flavor),
	void *ctx, long long default_seconds, struct kueue_price *out);

struct kueue_opts {
	const struct kube_config *kc;
	const char *url, *token;      /* Plinth's API and a service token */
	const char *ns;               /* watch one namespace, or NULL */
	long watch_timeout_s;
	long long default_seconds;   /* when a Workload has no maximumExecutionTimeSeconds */
	volatile sig_atomic_t *stop;
	/* A Workload holding allocation id is over at `at` (epoch seconds);
	 * ran: whether Kueue admitted it (else the allocation can be released). */
	void (*on_end)(void *ctx, const char *alloc_id, int64_t at);
	void *ctx;
	bool (*is_leader)(void *ctx); /* only the leader writes; NULL = always */
};

struct kueue;

/* Starts the watches (AdmissionChecks, ResourceFlavors, Workloads) in
 * threads.  Returns NULL when it cannot (out of memory, no threads). */
struct kueue *kueue_start(const struct kueue_opts *o);

/* Once a second from the owner's loop: retries Workloads whose answer from
 * Plinth or the API server failed for a passing reason. */
void kueue_tick(struct kueue *k);

/* Joins the threads (after *o->stop was set) and frees everything. */
void kueue_stop(struct kueue *k);

#endif
