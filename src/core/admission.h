/*
 * admission.h - the Kubernetes admission decision (pure): may this Pod or
 * Job exist, given what it asks for and the allocation its label names?
 *
 * The handler (src/api/api_admission.c) parses the AdmissionReview into the
 * facts below and reads the allocation with one indexed read; everything
 * that decides lives here so it can be tested case by case.
 */
#ifndef PLINTH_ADMISSION_H
#define PLINTH_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/lifecycle.h"

#define ADMISSION_REASON_LEN 512
#define ADMISSION_MAX_CONTAINERS 256 /* per list; more is refused as malformed */

/* One container's nvidia.com/gpu ask. */
struct admission_container {
	int64_t gpus;  /* max(requests, limits) of nvidia.com/gpu; 0 when absent */
	bool sidecar;  /* an init container with restartPolicy: Always */
};

/* What a Pod (or a Job's pod template) asks for. */
struct admission_object {
	bool is_job;
	const struct admission_container *init; /* spec.initContainers, in order */
	size_t ninit;
	const struct admission_container *containers; /* spec.containers */
	size_t ncontainers;
	int64_t parallelism;         /* Job: spec.parallelism (default 1); pod: 1 */
	const char *namespace_;      /* the request's namespace */
	const char *allocation_id;   /* label plinth.io/allocation-id of the Pod, or of the
				      * Job's pod template (what its pods carry); NULL if absent */
	const char *job_allocation_id; /* Job: the same label on the Job itself, NULL if absent */
	const char *gpu_type_sel;    /* nodeSelector plinth.io/gpu-type, NULL if absent */
	const char *gpu_product_sel; /* nodeSelector nvidia.com/gpu.product, NULL if absent */
};

/* The allocation named by the label, as the store has it. */
struct admission_alloc {
	const char *id;
	const char *team;
	const char *team_namespaces; /* the team's namespaces, comma-joined: "nlp,nlp-dev" */
	const char *gpu_type;
	int64_t gpu_count;
	enum alloc_status status;
	int64_t expires_at; /* an approved allocation is expired from here on */
};

/*
 * The pod's effective nvidia.com/gpu request, by the Kubernetes rule
 * (k8s.io/component-helpers resource.PodRequests): the larger of the sum over
 * containers plus sidecars, and, for each regular init container, its own ask
 * plus the sidecars started before it.  Saturates at INT64_MAX.
 */
int64_t admission_pod_gpus(const struct admission_object *o);

/* admission_pod_gpus x parallelism (saturating): GPUs held at once. */
int64_t admission_total_gpus(const struct admission_object *o);

/* Is ns one of a team's namespaces, given comma-joined ("nlp,nlp-dev"; NULL = none)? */
bool admission_team_has_namespace(const char *namespaces, const char *ns);

/* Does the decision need the allocation (GPUs asked and a label given)? */
bool admission_needs_alloc(const struct admission_object *o);

/*
 * Decides.  a: the allocation the label names, NULL when it does not exist
 * (or when admission_needs_alloc() is false).  now: the server's clock.
 * Returns true to allow; false with a one-line reason (what is wrong and what
 * to do) in reason[len].
 */
bool admission_decide(const struct admission_object *o, const struct admission_alloc *a,
		      int64_t now, char *reason, size_t len);

/*
 * For an UPDATE: do old and new ask the same thing (same per-pod GPUs,
 * parallelism, allocation label and GPU node selection)?  Then the update
 * asks for nothing new and is allowed whatever the allocation's state, so a
 * finished Job's metadata can still change.
 */
bool admission_same_ask(const struct admission_object *a, const struct admission_object *b);

#endif
