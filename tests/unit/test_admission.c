/* test_admission.c - the admission decision: the effective GPU request rule
 * (init containers, sidecars, parallelism), every refusal and its reason, the
 * UPDATE shortcut, and the GPU product table shared with the manifest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/admission.h"
#include "core/gpuproduct.h"

#define NOW 1000000

static const struct admission_container one_gpu[] = {{1, false}};
static const struct admission_container four_gpus[] = {{4, false}};
static const struct admission_container no_gpu[] = {{0, false}};

/* A Pod in namespace nlp asking 4 GPUs on H100 nodes with allocation a1. */
static struct admission_object pod4(void)
{
	struct admission_object o = {
		.containers = four_gpus,
		.ncontainers = 1,
		.parallelism = 1,
		.namespace_ = "nlp",
		.allocation_id = "a1",
		.gpu_product_sel = "NVIDIA-H100-80GB-HBM3",
	};
	return o;
}

static struct admission_alloc alloc4(void)
{
	struct admission_alloc a = {
		.id = "a1",
		.team = "nlp",
		.team_namespaces = "nlp",
		.gpu_type = "h100-80gb",
		.gpu_count = 4,
		.status = ALLOC_APPROVED,
		.expires_at = NOW + 3600,
	};
	return a;
}

/* Denied, with a reason containing each of the NULL-terminated words. */
static void assert_denied(const struct admission_object *o, const struct admission_alloc *a, ...)
{
	char reason[ADMISSION_REASON_LEN];
	assert_false(admission_decide(o, a, NOW, reason, sizeof(reason)));
	va_list ap;
	va_start(ap, a);
	for (const char *w = va_arg(ap, const char *); w != NULL; w = va_arg(ap, const char *)) {
		if (strstr(reason, w) == NULL)
			fail_msg("reason \"%s\" lacks \"%s\"", reason, w);
	}
	va_end(ap);
}

static void assert_allowed(const struct admission_object *o, const struct admission_alloc *a)
{
	char reason[ADMISSION_REASON_LEN] = "x";
	bool ok = admission_decide(o, a, NOW, reason, sizeof(reason));
	if (!ok)
		fail_msg("denied: %s", reason);
	assert_string_equal(reason, "");
}

static void test_gpus_containers_sum(void **state)
{
	(void)state;
	struct admission_container c[] = {{2, false}, {3, false}, {0, false}};
	struct admission_object o = {.containers = c, .ncontainers = 3, .parallelism = 1};
	assert_int_equal(admission_pod_gpus(&o), 5);
}

static void test_gpus_init_max(void **state)
{
	(void)state;
	/* max(max over init containers, sum over containers). */
	struct admission_container c[] = {{1, false}, {1, false}};
	struct admission_container init[] = {{3, false}, {1, false}};
	struct admission_object o = {.containers = c, .ncontainers = 2, .init = init, .ninit = 2};
	assert_int_equal(admission_pod_gpus(&o), 3);
	init[0].gpus = 1;
	assert_int_equal(admission_pod_gpus(&o), 2);
	/* Init containers alone ask for GPUs. */
	struct admission_object only_init = {.containers = no_gpu, .ncontainers = 1, .init = init,
					     .ninit = 2};
	init[1].gpus = 2;
	assert_int_equal(admission_pod_gpus(&only_init), 2);
}

static void test_gpus_sidecars(void **state)
{
	(void)state;
	/* A sidecar (restartPolicy Always) adds to the containers' sum... */
	struct admission_container c[] = {{2, false}};
	struct admission_container init[] = {{1, true}};
	struct admission_object o = {.containers = c, .ncontainers = 1, .init = init, .ninit = 1};
	assert_int_equal(admission_pod_gpus(&o), 3);
	/* ...and to every regular init container started after it, not before. */
	struct admission_container init2[] = {{4, false}, {1, true}, {3, false}};
	o.init = init2;
	o.ninit = 3;
	/* containers + sidecar = 3; first init = 4; last init 3 + sidecar 1 = 4. */
	assert_int_equal(admission_pod_gpus(&o), 4);
	init2[2].gpus = 5; /* 5 + 1 sidecar */
	assert_int_equal(admission_pod_gpus(&o), 6);
	struct admission_container init3[] = {{5, false}, {1, true}};
	o.init = init3;
	o.ninit = 2; /* the sidecar starts after the 5-GPU init container */
	assert_int_equal(admission_pod_gpus(&o), 5);
	/* Two sidecars accumulate. */
	struct admission_container init4[] = {{1, true}, {1, true}, {1, false}};
	o.init = init4;
	o.ninit = 3;
	assert_int_equal(admission_pod_gpus(&o), 4); /* 2 + 1 + 1 */
}

static void test_gpus_parallelism_and_saturation(void **state)
{
	(void)state;
	struct admission_object o = pod4();
	o.is_job = true;
	o.parallelism = 3;
	assert_int_equal(admission_total_gpus(&o), 12);
	o.parallelism = 0;
	assert_int_equal(admission_total_gpus(&o), 0);
	o.is_job = false; /* parallelism means nothing for a Pod */
	o.parallelism = 7;
	assert_int_equal(admission_total_gpus(&o), 4);
	struct admission_container big[] = {{INT64_MAX, false}, {5, false}};
	struct admission_object b = {.containers = big, .ncontainers = 2, .is_job = true,
				     .parallelism = 2};
	assert_true(admission_pod_gpus(&b) == INT64_MAX);
	assert_true(admission_total_gpus(&b) == INT64_MAX);
	struct admission_container neg[] = {{-5, false}};
	struct admission_object n = {.containers = neg, .ncontainers = 1};
	assert_int_equal(admission_pod_gpus(&n), 0);
}

static void test_no_gpus_allowed(void **state)
{
	(void)state;
	struct admission_object o = {.containers = no_gpu, .ncontainers = 1, .namespace_ = "nlp"};
	assert_false(admission_needs_alloc(&o));
	assert_allowed(&o, NULL);
	o.allocation_id = "whatever"; /* a label alone asks for nothing */
	assert_false(admission_needs_alloc(&o));
	assert_allowed(&o, NULL);
	struct admission_object empty = {.namespace_ = "nlp"};
	assert_allowed(&empty, NULL);
}

static void test_approved_and_running_allowed(void **state)
{
	(void)state;
	struct admission_object o = pod4();
	struct admission_alloc a = alloc4();
	assert_true(admission_needs_alloc(&o));
	assert_allowed(&o, &a);
	a.status = ALLOC_RUNNING;
	a.expires_at = NOW - 10; /* a running allocation no longer has a start deadline */
	assert_allowed(&o, &a);
	/* Fewer GPUs than the allocation holds. */
	o.containers = one_gpu;
	assert_allowed(&o, &a);
	/* Selected by plinth.io/gpu-type instead of the product. */
	o.gpu_product_sel = NULL;
	o.gpu_type_sel = "h100-80gb";
	assert_allowed(&o, &a);
	/* Both, agreeing. */
	o.gpu_product_sel = "NVIDIA-H100-80GB-HBM3";
	assert_allowed(&o, &a);
}

static void test_type_outside_table(void **state)
{
	(void)state;
	struct admission_object o = pod4();
	struct admission_alloc a = alloc4();
	a.gpu_type = "mi300x";
	o.gpu_product_sel = NULL;
	o.gpu_type_sel = "mi300x";
	assert_allowed(&o, &a);
	o.gpu_type_sel = NULL;
	assert_denied(&o, &a, "without selecting a GPU type", "plinth.io/gpu-type: mi300x", NULL);
}

static void test_no_label(void **state)
{
	(void)state;
	struct admission_object o = pod4();
	o.allocation_id = NULL;
	assert_false(admission_needs_alloc(&o));
	assert_denied(&o, NULL, "no plinth.io/allocation-id label", "plinth quote",
		      "plinth allocate", "asks for 4 nvidia.com/gpu", NULL);
	o.allocation_id = "";
	assert_denied(&o, NULL, "no plinth.io/allocation-id label", NULL);
}

static void test_unknown_alloc(void **state)
{
	(void)state;
	struct admission_object o = pod4();
	assert_denied(&o, NULL, "allocation a1", "does not exist", "plinth allocate", NULL);
}

static void test_other_team(void **state)
{
	(void)state;
	struct admission_object o = pod4();
	struct admission_alloc a = alloc4();
	a.team = "vision";
	a.team_namespaces = "vision";
	assert_denied(&o, &a, "belongs to team vision", "not to namespace nlp", NULL);
	o.namespace_ = NULL;
	assert_denied(&o, &a, "not to namespace (none)", NULL);
}

/* A team with several namespaces: any of them, and only whole names. */
static void test_team_namespaces(void **state)
{
	(void)state;
	char reason[ADMISSION_REASON_LEN];
	struct admission_object o = pod4();
	struct admission_alloc a = alloc4();
	a.team_namespaces = "nlp-dev,nlp-prod";
	o.namespace_ = "nlp-prod";
	assert_true(admission_decide(&o, &a, NOW, reason, sizeof(reason)));
	o.namespace_ = "nlp-dev";
	assert_true(admission_decide(&o, &a, NOW, reason, sizeof(reason)));
	o.namespace_ = "nlp";
	assert_denied(&o, &a, "not to namespace nlp", "namespaces: nlp-dev,nlp-prod", NULL);
	o.namespace_ = "nlp-pro";
	assert_denied(&o, &a, "not to namespace nlp-pro", NULL);
	o.namespace_ = "nlp-prodx";
	assert_denied(&o, &a, "not to namespace nlp-prodx", NULL);
	a.team_namespaces = NULL;
	o.namespace_ = "nlp";
	assert_denied(&o, &a, "not to namespace nlp", NULL);
}

static void test_finished_allocations(void **state)
{
	(void)state;
	static const struct {
		enum alloc_status st;
		const char *name;
	} cases[] = {
		{ALLOC_COMPLETED, "completed"},
		{ALLOC_CANCELLED, "cancelled"},
		{ALLOC_EXPIRED, "expired"},
	};
	struct admission_object o = pod4();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct admission_alloc a = alloc4();
		a.status = cases[i].st;
		assert_denied(&o, &a, cases[i].name, "approved or running", NULL);
	}
}

static void test_approved_past_deadline(void **state)
{
	(void)state;
	/* The sweeper has not expired it yet; the webhook does not wait for it. */
	struct admission_object o = pod4();
	struct admission_alloc a = alloc4();
	a.expires_at = NOW;
	assert_denied(&o, &a, "expired", "start deadline", NULL);
	a.expires_at = NOW + 1;
	assert_allowed(&o, &a);
}

static void test_wrong_type(void **state)
{
	(void)state;
	struct admission_object o = pod4();
	struct admission_alloc a = alloc4();
	o.gpu_product_sel = "NVIDIA-A100-SXM4-80GB";
	assert_denied(&o, &a, "selects GPU type a100-80gb", "allocation a1 is for h100-80gb", NULL);
	o.gpu_product_sel = NULL;
	o.gpu_type_sel = "t4-16gb";
	assert_denied(&o, &a, "selects GPU type t4-16gb", NULL);
}

static void test_no_or_bad_selection(void **state)
{
	(void)state;
	struct admission_object o = pod4();
	struct admission_alloc a = alloc4();
	o.gpu_product_sel = NULL;
	assert_denied(&o, &a, "without selecting a GPU type",
		      "nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3", NULL);
	o.gpu_product_sel = "NVIDIA-GeForce-RTX-4090";
	assert_denied(&o, &a, "NVIDIA-GeForce-RTX-4090", "no GPU type", NULL);
	o.gpu_product_sel = "NVIDIA-H100-80GB-HBM3";
	o.gpu_type_sel = "t4-16gb";
	assert_denied(&o, &a, "two GPU types", NULL);
}

static void test_too_many_gpus(void **state)
{
	(void)state;
	struct admission_object o = pod4();
	struct admission_alloc a = alloc4();
	a.gpu_count = 2;
	assert_denied(&o, &a, "asks for 4 nvidia.com/gpu", "holds 2", NULL);
	/* A Job: per pod x parallelism. */
	struct admission_object j = pod4();
	j.is_job = true;
	j.parallelism = 2;
	a.gpu_count = 4;
	assert_denied(&j, &a, "asks for 8", "4 per pod x parallelism 2", "holds 4", NULL);
	a.gpu_count = 8;
	assert_allowed(&j, &a);
	/* Init containers count by the effective rule. */
	struct admission_container init[] = {{6, false}};
	o.init = init;
	o.ninit = 1;
	a.gpu_count = 4;
	assert_denied(&o, &a, "asks for 6", "holds 4", NULL);
	a.gpu_count = 6;
	assert_allowed(&o, &a);
}

static void test_job_labels(void **state)
{
	(void)state;
	struct admission_object j = pod4();
	struct admission_alloc a = alloc4();
	j.is_job = true;
	j.job_allocation_id = "a1";
	assert_allowed(&j, &a);
	j.allocation_id = NULL; /* only the Job is labelled: its pods would not be */
	assert_denied(&j, &a, "pod template has no such label", NULL);
	j.allocation_id = "a2";
	assert_denied(&j, &a, "names another allocation", NULL);
	j.job_allocation_id = NULL; /* the template alone is enough */
	j.allocation_id = "a1";
	assert_allowed(&j, &a);
	/* Without GPUs the labels are not checked at all. */
	j.containers = no_gpu;
	j.job_allocation_id = "zz";
	assert_allowed(&j, NULL);
}

static void test_reason_never_overflows(void **state)
{
	(void)state;
	char small[16];
	struct admission_object o = pod4();
	o.allocation_id = NULL;
	assert_false(admission_decide(&o, NULL, NOW, small, sizeof(small)));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_string_equal(small + sizeof(small) - 4, "...");
}

static void test_same_ask(void **state)
{
	(void)state;
	struct admission_object a = pod4(), b = pod4();
	assert_true(admission_same_ask(&a, &b));
	b.containers = one_gpu;
	assert_false(admission_same_ask(&a, &b));
	b = pod4();
	b.is_job = a.is_job = true;
	b.parallelism = 2;
	assert_false(admission_same_ask(&a, &b));
	b = a;
	b.allocation_id = "a2";
	assert_false(admission_same_ask(&a, &b));
	b = a;
	b.allocation_id = NULL;
	assert_false(admission_same_ask(&a, &b));
	b = a;
	b.job_allocation_id = "a1";
	assert_false(admission_same_ask(&a, &b));
	b = a;
	b.gpu_product_sel = NULL;
	assert_false(admission_same_ask(&a, &b));
	b = a;
	b.gpu_type_sel = "h100-80gb";
	assert_false(admission_same_ask(&a, &b));
	b = a;
	b.namespace_ = "other"; /* a namespace never changes on UPDATE; not compared */
	assert_true(admission_same_ask(&a, &b));
}

static void test_product_table(void **state)
{
	(void)state;
	assert_string_equal(gpu_product_of_type("h100-80gb"), "NVIDIA-H100-80GB-HBM3");
	assert_string_equal(gpu_type_of_product("Tesla-T4"), "t4-16gb");
	assert_null(gpu_product_of_type("mi300x"));
	assert_null(gpu_type_of_product("NVIDIA-H100"));
	assert_null(gpu_product_of_type(NULL));
	assert_null(gpu_type_of_product(NULL));
	/* Both directions agree for every entry. */
	static const char *const ids[] = {"h100-80gb", "h200-141gb", "a100-40gb", "a100-80gb",
					  "v100-16gb", "v100-32gb", "a10g-24gb", "l4-24gb",
					  "l40s-48gb", "t4-16gb"};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const char *p = gpu_product_of_type(ids[i]);
		assert_non_null(p);
		assert_string_equal(gpu_type_of_product(p), ids[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpus_containers_sum),
		cmocka_unit_test(test_gpus_init_max),
		cmocka_unit_test(test_gpus_sidecars),
		cmocka_unit_test(test_gpus_parallelism_and_saturation),
		cmocka_unit_test(test_no_gpus_allowed),
		cmocka_unit_test(test_approved_and_running_allowed),
		cmocka_unit_test(test_type_outside_table),
		cmocka_unit_test(test_no_label),
		cmocka_unit_test(test_unknown_alloc),
		cmocka_unit_test(test_other_team),
		cmocka_unit_test(test_team_namespaces),
		cmocka_unit_test(test_finished_allocations),
		cmocka_unit_test(test_approved_past_deadline),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_no_or_bad_selection),
		cmocka_unit_test(test_too_many_gpus),
		cmocka_unit_test(test_job_labels),
		cmocka_unit_test(test_reason_never_overflows),
		cmocka_unit_test(test_same_ask),
		cmocka_unit_test(test_product_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
