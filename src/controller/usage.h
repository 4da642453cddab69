/*
 * usage.h - how long an allocation really used its GPUs, derived from what
 * the Kubernetes API says about its Job and pods (the rules are written once,
 * in docs/kubernetes.md, "Usage: how the controller measures GPU time").
 *
 * Pure: no I/O, no clock, no JSON.  The controller reads the objects, fills
 * these records (times are seconds since the epoch, 0 = absent) and asks
 * usage_derive() for the allocation's started_at and ended_at.
 */
#ifndef PLINTH_CONTROLLER_USAGE_H
#define PLINTH_CONTROLLER_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum usage_phase {
	USAGE_PHASE_PENDING = 0, /* also Unknown and anything unrecognised */
	USAGE_PHASE_RUNNING,
	USAGE_PHASE_SUCCEEDED,
	USAGE_PHASE_FAILED,
};

/* One pod carrying the allocation's label, as last seen. */
struct usage_pod {
	enum usage_phase phase;
	int64_t start_time;         /* status.startTime: the kubelet accepted it on a node */
	int64_t container_started;  /* earliest running/terminated startedAt of its containers */
	int64_t container_finished; /* latest terminated.finishedAt of its containers */
	int64_t deletion;           /* metadata.deletionTimestamp */
	bool deleted;               /* gone from the API (DELETED event, or absent from a list) */
	int64_t deleted_seen;       /* the controller's clock when it saw it gone */
};

/* The batch/v1 Job carrying the allocation's label, as last seen. */
struct usage_job {
	int64_t complete_at;   /* lastTransitionTime of condition Complete=True */
	int64_t failed_at;     /* lastTransitionTime of condition Failed=True */
	int64_t deletion;      /* metadata.deletionTimestamp */
	bool deleted;          /* gone from the API */
	int64_t deleted_seen;  /* the controller's clock when it saw it gone */
};

/* What the objects say about the allocation. */
struct usage {
	int64_t started_at; /* 0: no pod has run yet (or none is known any more) */
	int64_t ended_at;   /* 0: not over, or over without a known end (see finished) */
	bool finished;      /* the workload is over, whether or not a pod ever ran */
};

/* The instant a pod started using its node, or 0 when it has not run. */
int64_t usage_pod_started(const struct usage_pod *p);

/* The instant a pod stopped, or 0 while it may still run. */
int64_t usage_pod_ended(const struct usage_pod *p);

/*
 * Derives the usage of one allocation.  job: its Job, or NULL for bare pods;
 * pods: every pod seen with the label, deleted ones included (npods may be 0).
 * Always fills *out.  ended_at does not need started_at (a controller that
 * restarts after the pods were deleted still learns the end of an allocation
 * it already started); when both are set, ended_at >= started_at.
 */
void usage_derive(const struct usage_job *job, const struct usage_pod *pods, size_t npods,
	struct usage *out);

#endif
