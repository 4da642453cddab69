/* test_usage.c - the rules of src/controller/usage.c, one case per situation
 * a Job or its pods can be in (docs/kubernetes.md, "Usage: how the controller
 * measures GPU time"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "controller/usage.h"

#define T0 1796083200 /* 2026-12-01T00:00:00Z */

static const struct usage_pod pending = {.phase = USAGE_PHASE_PENDING};

static struct usage derive(const struct usage_job *job, const struct usage_pod *pods, size_t n)
{
	struct usage u = {.started_at = -1, .ended_at = -1, .finished = true};

	usage_derive(job, pods, n, &u);
	return u;
}

/* --- one pod ------------------------------------------------------------- */

static void pod_pending_has_not_started(void **state)
{
	struct usage_pod p = {.phase = USAGE_PHASE_PENDING, .start_time = T0};

	(void)state;
	/* startTime alone (the kubelet accepted it, pulling the image) is not a start... */
	assert_int_equal(usage_pod_started(&pending), 0);
	assert_int_equal(usage_pod_started(&p), 0);
	/* ...until it runs: then billing goes back to startTime. */
	p.phase = USAGE_PHASE_RUNNING;
	assert_int_equal(usage_pod_started(&p), T0);
}

static void pod_pending_with_a_started_container_has_started(void **state)
{
	struct usage_pod p = {.phase = USAGE_PHASE_PENDING, .container_started = T0 + 3};

	(void)state;
	assert_int_equal(usage_pod_started(&p), T0 + 3);
	p.start_time = T0;
	assert_int_equal(usage_pod_started(&p), T0);
}

static void pod_start_is_the_earliest_known(void **state)
{
	struct usage_pod p = {.phase = USAGE_PHASE_RUNNING, .start_time = T0 + 10,
		.container_started = T0 + 4};

	(void)state;
	assert_int_equal(usage_pod_started(&p), T0 + 4);
	p.container_started = 0;
	assert_int_equal(usage_pod_started(&p), T0 + 10);
	p.start_time = 0;
	p.container_started = T0 + 7;
	assert_int_equal(usage_pod_started(&p), T0 + 7);
}

static void pod_running_without_any_time_has_no_start(void **state)
{
	struct usage_pod p = {.phase = USAGE_PHASE_RUNNING};

	(void)state;
	assert_int_equal(usage_pod_started(&p), 0);
	assert_int_equal(usage_pod_ended(&p), 0);
}

static void pod_failed_before_running_never_started(void **state)
{
	struct usage_pod p = {.phase = USAGE_PHASE_FAILED};

	(void)state;
	assert_int_equal(usage_pod_started(&p), 0);
	assert_int_equal(usage_pod_ended(&p), 0);
}

static void pod_end_prefers_container_finish(void **state)
{
	struct usage_pod p = {.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0,
		.container_finished = T0 + 60, .deletion = T0 + 90, .deleted = true,
		.deleted_seen = T0 + 95};

	(void)state;
	assert_int_equal(usage_pod_ended(&p), T0 + 60);
	p.container_finished = 0;
	assert_int_equal(usage_pod_ended(&p), T0 + 90);
	p.deletion = 0;
	assert_int_equal(usage_pod_ended(&p), T0 + 95);
	p.deleted = false;
	/* Over, but nothing says when: nothing after its start. */
	assert_int_equal(usage_pod_ended(&p), T0);
}

static void pod_running_not_ended_even_when_terminating(void **state)
{
	struct usage_pod p = {.phase = USAGE_PHASE_RUNNING, .start_time = T0, .deletion = T0 + 30};

	(void)state;
	assert_int_equal(usage_pod_ended(&p), 0);
	p.deleted = true;
	p.deleted_seen = T0 + 40;
	assert_int_equal(usage_pod_ended(&p), T0 + 30);
	p.deletion = 0;
	assert_int_equal(usage_pod_ended(&p), T0 + 40);
	p.container_finished = T0 + 20;
	assert_int_equal(usage_pod_ended(&p), T0 + 20);
}

/* --- Jobs ---------------------------------------------------------------- */

static void job_without_pods_has_nothing(void **state)
{
	struct usage_job j = {0};
	struct usage u = derive(&j, NULL, 0);

	(void)state;
	assert_int_equal(u.started_at, 0);
	assert_int_equal(u.ended_at, 0);
	assert_false(u.finished);
}

static void job_with_pending_pod_has_not_started(void **state)
{
	struct usage_job j = {0};
	struct usage_pod p = {.phase = USAGE_PHASE_PENDING, .start_time = T0};
	struct usage u = derive(&j, &p, 1);

	(void)state;
	assert_int_equal(u.started_at, 0);
	assert_false(u.finished);
}

static void job_running(void **state)
{
	struct usage_job j = {0};
	struct usage_pod p = {.phase = USAGE_PHASE_RUNNING, .start_time = T0};
	struct usage u = derive(&j, &p, 1);

	(void)state;
	assert_int_equal(u.started_at, T0);
	assert_int_equal(u.ended_at, 0);
	assert_false(u.finished);
}

static void job_complete_ends_at_its_condition(void **state)
{
	struct usage_job j = {.complete_at = T0 + 125};
	/* A pod that says nothing about its finish: the Job's condition ends it. */
	struct usage_pod p = {.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0};
	struct usage u = derive(&j, &p, 1);

	(void)state;
	assert_int_equal(u.started_at, T0);
	assert_int_equal(u.ended_at, T0 + 125);
	assert_true(u.finished);
}

static void job_complete_ends_when_its_last_pod_finished(void **state)
{
	/* The Job controller marked it Complete 5 s (or an outage) after the pod
	 * stopped: the GPUs were free at the pod's finish. */
	struct usage_job j = {.complete_at = T0 + 125};
	struct usage_pod p = {.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0,
		.container_finished = T0 + 120};
	struct usage u = derive(&j, &p, 1);

	(void)state;
	assert_int_equal(u.ended_at, T0 + 120);
	/* Not before the condition exists: a finished pod of a Job that may retry
	 * does not end it. */
	j.complete_at = 0;
	u = derive(&j, &p, 1);
	assert_int_equal(u.ended_at, 0);
	assert_false(u.finished);
	/* A pod finishing after the condition (killed at the deadline) does not
	 * move the end later. */
	j.failed_at = T0 + 100;
	u = derive(&j, &p, 1);
	assert_int_equal(u.ended_at, T0 + 100);
}

static void job_end_needs_every_pod_that_ran_to_have_finished(void **state)
{
	struct usage_job j = {.complete_at = T0 + 200};
	struct usage_pod pods[] = {
		{.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0, .container_finished = T0 + 150},
		{.phase = USAGE_PHASE_RUNNING, .start_time = T0 + 10},
		{.phase = USAGE_PHASE_PENDING, .deleted = true, .deleted_seen = T0 + 201},
	};
	struct usage u = derive(&j, pods, 3);

	(void)state;
	/* One pod still running (its status not yet written): the condition. */
	assert_int_equal(u.ended_at, T0 + 200);
	pods[1].phase = USAGE_PHASE_SUCCEEDED;
	pods[1].container_finished = T0 + 180;
	u = derive(&j, pods, 3);
	/* Every pod that ran finished; the one that never ran does not count. */
	assert_int_equal(u.ended_at, T0 + 180);
}

static void job_failed_ends_at_its_condition(void **state)
{
	struct usage_job j = {.failed_at = T0 + 300};
	struct usage_pod pods[] = {
		{.phase = USAGE_PHASE_FAILED, .start_time = T0, .container_finished = T0 + 100},
		{.phase = USAGE_PHASE_FAILED, .start_time = T0 + 110, .container_finished = T0 + 200},
		{.phase = USAGE_PHASE_FAILED, .start_time = T0 + 210, .container_finished = T0 + 299},
	};
	struct usage u = derive(&j, pods, 3);

	(void)state;
	/* Retries: from the first pod's start to the last pod's finish. */
	assert_int_equal(u.started_at, T0);
	assert_int_equal(u.ended_at, T0 + 299);
	assert_true(u.finished);
}

static void job_deadline_exceeded_is_failed(void **state)
{
	/* activeDeadlineSeconds kills the running pod and marks the Job Failed. */
	struct usage_job j = {.failed_at = T0 + 3600};
	struct usage_pod p = {.phase = USAGE_PHASE_RUNNING, .start_time = T0, .deletion = T0 + 3630};
	struct usage u = derive(&j, &p, 1);

	(void)state;
	assert_int_equal(u.ended_at, T0 + 3600);
	assert_true(u.finished);
}

static void job_first_of_complete_and_failed(void **state)
{
	struct usage_job j = {.complete_at = T0 + 50, .failed_at = T0 + 40};
	struct usage_pod p = {.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0};

	(void)state;
	assert_int_equal(derive(&j, &p, 1).ended_at, T0 + 40);
}

static void job_deleted_while_running(void **state)
{
	struct usage_job j = {.deletion = T0 + 70};
	struct usage_pod p = {.phase = USAGE_PHASE_RUNNING, .start_time = T0};
	struct usage u = derive(&j, &p, 1);

	(void)state;
	/* Being deleted (foreground, finalizers) already ends it. */
	assert_int_equal(u.ended_at, T0 + 70);
	assert_true(u.finished);
	j.deleted = true;
	j.deleted_seen = T0 + 80;
	assert_int_equal(derive(&j, &p, 1).ended_at, T0 + 70);
	/* Gone without a deletionTimestamp in its last state: when we saw it go. */
	j.deletion = 0;
	assert_int_equal(derive(&j, &p, 1).ended_at, T0 + 80);
}

static void job_deleted_after_completion_keeps_the_completion(void **state)
{
	struct usage_job j = {.complete_at = T0 + 60, .deletion = T0 + 3660, .deleted = true,
		.deleted_seen = T0 + 3661};
	struct usage_pod p = {.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0, .deleted = true,
		.deleted_seen = T0 + 3661};
	struct usage u = derive(&j, &p, 1);

	(void)state;
	assert_int_equal(u.started_at, T0);
	assert_int_equal(u.ended_at, T0 + 60);
}

static void job_suspended_is_not_billed_until_pods_run(void **state)
{
	/* Created suspended at T0 (e.g. by Kueue): no pod, nothing. */
	struct usage_job j = {0};
	struct usage_pod p = {.phase = USAGE_PHASE_PENDING};
	struct usage u = derive(&j, NULL, 0);

	(void)state;
	assert_int_equal(u.started_at, 0);
	/* Resumed at T0+600: a pod is created, pending... */
	u = derive(&j, &p, 1);
	assert_int_equal(u.started_at, 0);
	/* ...and runs from T0+660: that is the start. */
	p.phase = USAGE_PHASE_RUNNING;
	p.start_time = T0 + 660;
	u = derive(&j, &p, 1);
	assert_int_equal(u.started_at, T0 + 660);
}

static void job_deleted_before_any_pod_ran(void **state)
{
	struct usage_job j = {.deleted = true, .deleted_seen = T0 + 5};
	struct usage_pod p = {.phase = USAGE_PHASE_PENDING, .deleted = true, .deleted_seen = T0 + 5};
	struct usage u = derive(&j, &p, 1);

	(void)state;
	assert_int_equal(u.started_at, 0);
	assert_true(u.finished);
}

static void job_complete_with_pods_gone_still_gives_the_end(void **state)
{
	/* A controller restarted after ttlSecondsAfterFinished removed the pods:
	 * no start is known any more, the end is. */
	struct usage_job j = {.complete_at = T0 + 60};
	struct usage u = derive(&j, NULL, 0);

	(void)state;
	assert_int_equal(u.started_at, 0);
	assert_int_equal(u.ended_at, T0 + 60);
	assert_true(u.finished);
}

static void job_start_is_the_first_pod_to_run(void **state)
{
	struct usage_job j = {0};
	struct usage_pod pods[] = {
		{.phase = USAGE_PHASE_PENDING, .start_time = T0 + 1},
		{.phase = USAGE_PHASE_RUNNING, .start_time = T0 + 30},
		{.phase = USAGE_PHASE_FAILED, .start_time = T0 + 20, .deleted = true},
		{.phase = USAGE_PHASE_RUNNING, .container_started = T0 + 25},
	};
	struct usage u = derive(&j, pods, 4);

	(void)state;
	assert_int_equal(u.started_at, T0 + 20);
}

static void end_never_before_start(void **state)
{
	/* A node's clock ahead of the control plane's. */
	struct usage_job j = {.complete_at = T0 + 8};
	struct usage_pod p = {.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0 + 10};
	struct usage u = derive(&j, &p, 1);

	(void)state;
	assert_int_equal(u.started_at, T0 + 10);
	assert_int_equal(u.ended_at, T0 + 10);
}

/* --- bare pods ------------------------------------------------------------ */

static void bare_no_pods_is_nothing(void **state)
{
	struct usage u = derive(NULL, NULL, 0);

	(void)state;
	assert_int_equal(u.started_at, 0);
	assert_int_equal(u.ended_at, 0);
	assert_false(u.finished);
}

static void bare_ends_when_the_last_pod_terminates(void **state)
{
	struct usage_pod pods[] = {
		{.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0, .container_finished = T0 + 50},
		{.phase = USAGE_PHASE_RUNNING, .start_time = T0 + 5},
	};
	struct usage u = derive(NULL, pods, 2);

	(void)state;
	assert_int_equal(u.started_at, T0);
	assert_int_equal(u.ended_at, 0);
	assert_false(u.finished);
	pods[1].phase = USAGE_PHASE_FAILED;
	pods[1].container_finished = T0 + 90;
	u = derive(NULL, pods, 2);
	assert_int_equal(u.ended_at, T0 + 90);
	assert_true(u.finished);
}

static void bare_pod_deleted_while_running(void **state)
{
	struct usage_pod p = {.phase = USAGE_PHASE_RUNNING, .start_time = T0, .deletion = T0 + 40};
	struct usage u = derive(NULL, &p, 1);

	(void)state;
	assert_false(u.finished); /* terminating: its grace period may still run */
	p.deleted = true;
	p.deleted_seen = T0 + 41;
	u = derive(NULL, &p, 1);
	assert_true(u.finished);
	assert_int_equal(u.ended_at, T0 + 40);
}

static void bare_pods_that_never_ran(void **state)
{
	struct usage_pod pods[] = {
		{.phase = USAGE_PHASE_PENDING, .deleted = true, .deleted_seen = T0 + 9},
		{.phase = USAGE_PHASE_FAILED},
	};
	struct usage u = derive(NULL, pods, 2);

	(void)state;
	assert_int_equal(u.started_at, 0);
	assert_int_equal(u.ended_at, 0);
	assert_true(u.finished);
}

static void bare_pending_pod_keeps_it_open(void **state)
{
	struct usage_pod pods[] = {
		{.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0, .container_finished = T0 + 10},
		{.phase = USAGE_PHASE_PENDING},
	};
	struct usage u = derive(NULL, pods, 2);

	(void)state;
	assert_int_equal(u.started_at, T0);
	assert_false(u.finished);
	assert_int_equal(u.ended_at, 0);
}

static void bare_ended_pod_without_finish_time(void **state)
{
	struct usage_pod pods[] = {
		{.phase = USAGE_PHASE_SUCCEEDED, .start_time = T0, .container_finished = T0 + 10},
		{.phase = USAGE_PHASE_FAILED, .start_time = T0 + 3},
	};
	struct usage u = derive(NULL, pods, 2);

	(void)state;
	assert_true(u.finished);
	assert_int_equal(u.ended_at, T0 + 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pod_pending_has_not_started),
		cmocka_unit_test(pod_pending_with_a_started_container_has_started),
		cmocka_unit_test(pod_start_is_the_earliest_known),
		cmocka_unit_test(pod_running_without_any_time_has_no_start),
		cmocka_unit_test(pod_failed_before_running_never_started),
		cmocka_unit_test(pod_end_prefers_container_finish),
		cmocka_unit_test(pod_running_not_ended_even_when_terminating),
		cmocka_unit_test(job_without_pods_has_nothing),
		cmocka_unit_test(job_with_pending_pod_has_not_started),
		cmocka_unit_test(job_running),
		cmocka_unit_test(job_complete_ends_at_its_condition),
		cmocka_unit_test(job_complete_ends_when_its_last_pod_finished),
		cmocka_unit_test(job_end_needs_every_pod_that_ran_to_have_finished),
		cmocka_unit_test(job_failed_ends_at_its_condition),
		cmocka_unit_test(job_deadline_exceeded_is_failed),
		cmocka_unit_test(job_first_of_complete_and_failed),
		cmocka_unit_test(job_deleted_while_running),
		cmocka_unit_test(job_deleted_after_completion_keeps_the_completion),
		cmocka_unit_test(job_suspended_is_not_billed_until_pods_run),
		cmocka_unit_test(job_deleted_before_any_pod_ran),
		cmocka_unit_test(job_complete_with_pods_gone_still_gives_the_end),
		cmocka_unit_test(job_start_is_the_first_pod_to_run),
		cmocka_unit_test(end_never_before_start),
		cmocka_unit_test(bare_no_pods_is_nothing),
		cmocka_unit_test(bare_ends_when_the_last_pod_terminates),
		cmocka_unit_test(bare_pod_deleted_while_running),
		cmocka_unit_test(bare_pods_that_never_ran),
		cmocka_unit_test(bare_pending_pod_keeps_it_open),
		cmocka_unit_test(bare_ended_pod_without_finish_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
