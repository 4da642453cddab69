/*
 * usage.c - the rules that turn a Job's and its pods' status into the
 * allocation's started_at and ended_at (see usage.h and docs/kubernetes.md).
 *
 * Pure: it must never read a clock, the network or a file; everything it knows
 * comes in the records, so the rules are tested exhaustively in isolation.
 */
#include "controller/usage.h"

/* The smaller of two instants where 0 means "absent". */
static int64_t earliest(int64_t a, int64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

static int64_t latest(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static bool phase_terminal(enum usage_phase ph)
{
	return ph == USAGE_PHASE_SUCCEEDED || ph == USAGE_PHASE_FAILED;
}

int64_t usage_pod_started(const struct usage_pod *p)
{
	/* A Pending pod holds no GPU yet unless a container already started
	 * (its status may lag behind its containers'). */
	if (p->phase == USAGE_PHASE_PENDING && p->container_started == 0)
		return 0;
	/* startTime is when the kubelet admitted the pod and the device plugin
	 * gave it its GPUs: from then on they are the pod's, image pull included. */
	return earliest(p->start_time, p->container_started);
}

int64_t usage_pod_ended(const struct usage_pod *p)
{
	if (phase_terminal(p->phase)) {
		if (p->container_finished != 0)
			return p->container_finished;
		if (p->deletion != 0)
			return p->deletion;
		if (p->deleted)
			return p->deleted_seen;
		/* Over, but nothing says when: it used nothing after it started. */
		return usage_pod_started(p);
	}
	if (!p->deleted)
		return 0; /* still running, or terminating: wait until it is gone */
	if (p->container_finished != 0)
		return p->container_finished;
	return earliest(p->deletion, p->deleted_seen);
}

/* The latest container finish of the pods that ran, or 0 unless every pod
 * that ran has one (then the kubelet said when each released its GPUs). */
static int64_t pods_finished(const struct usage_pod *pods, size_t npods)
{
	int64_t last = 0;

	for (size_t i = 0; i < npods; i++) {
		if (usage_pod_started(&pods[i]) == 0)
			continue;
		if (!phase_terminal(pods[i].phase) || pods[i].container_finished == 0)
			return 0;
		last = latest(last, pods[i].container_finished);
	}
	return last;
}

void usage_derive(const struct usage_job *job, const struct usage_pod *pods, size_t npods,
	struct usage *out)
{
	int64_t started = 0, ended = 0;
	bool finished;

	for (size_t i = 0; i < npods; i++)
		started = earliest(started, usage_pod_started(&pods[i]));

	if (job != NULL) {
		/* The Job decides that it is over: its terminal condition, or its deletion. */
		ended = earliest(job->complete_at, job->failed_at);
		ended = earliest(ended, job->deletion);
		if (job->deleted)
			ended = earliest(ended, job->deletion != 0 ? job->deletion : job->deleted_seen);
		finished = ended != 0 || job->deleted;
		/* The Job controller notices a pod's end a little later (or much later
		 * when it is down): when every pod that ran says when it finished,
		 * the GPUs were free from the last of those instants. */
		if (ended != 0)
			ended = earliest(ended, pods_finished(pods, npods));
	} else {
		/* Bare pods: over when every pod is over; the last one to stop ends it. */
		finished = npods > 0;
		for (size_t i = 0; i < npods; i++) {
			if (!phase_terminal(pods[i].phase) && !pods[i].deleted) {
				finished = false;
				break;
			}
			if (usage_pod_started(&pods[i]) != 0)
				ended = latest(ended, usage_pod_ended(&pods[i]));
		}
		if (!finished)
			ended = 0;
	}
	if (started != 0 && ended != 0 && ended < started)
		ended = started; /* clocks of nodes and control plane disagree */
	out->started_at = started;
	out->ended_at = ended;
	out->finished = finished;
}
