/* test_kueue_price.c - how `plinth controller --kueue` prices a Kueue
 * Workload (src/controller/kueue.c, kueue_price and kueue_flavor_gpu_type):
 * GPU type from the assigned ResourceFlavor's node labels, GPU count from the
 * pod set assignments' resourceUsage, runtime from maximumExecutionTimeSeconds
 * or the default (docs/kueue.md, "Pricing"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "controller/kueue.h"

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);

	assert_non_null(j);
	return j;
}

/* Flavors of the tests: h100 -> h100-80gb, cpu -> none. */
static const char *lookup(void *ctx, const char *flavor)
{
	(void)ctx;
	if (strcmp(flavor, "h100") == 0)
		return "h100-80gb";
	if (strcmp(flavor, "a100") == 0)
		return "a100-80gb";
	return NULL;
}

static void flavor_by_product_or_plinth_label(void **state)
{
	char t[64];
	json_t *f1 = parse("{\"spec\":{\"nodeLabels\":{\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}}}");
	json_t *f2 = parse("{\"spec\":{\"nodeLabels\":{\"plinth.io/gpu-type\":\"l4-24gb\","
			   "\"nvidia.com/gpu.product\":\"NVIDIA-H100-80GB-HBM3\"}}}");
	json_t *f3 = parse("{\"spec\":{\"nodeLabels\":{\"nvidia.com/gpu.product\":\"Unknown-GPU\"}}}");
	json_t *f4 = parse("{\"spec\":{}}");

	(void)state;
	assert_true(kueue_flavor_gpu_type(f1, t, sizeof t));
	assert_string_equal(t, "h100-80gb");
	/* Plinth's own label wins: an operator's explicit choice. */
	assert_true(kueue_flavor_gpu_type(f2, t, sizeof t));
	assert_string_equal(t, "l4-24gb");
	assert_false(kueue_flavor_gpu_type(f3, t, sizeof t));
	assert_string_equal(t, "");
	assert_false(kueue_flavor_gpu_type(f4, t, sizeof t));
	json_decref(f1);
	json_decref(f2);
	json_decref(f3);
	json_decref(f4);
}

static void sums_gpu_pod_sets_of_one_type(void **state)
{
	struct kueue_price p;
	json_t *wl = parse("{\"spec\":{\"maximumExecutionTimeSeconds\":5400},"
		"\"status\":{\"admission\":{\"podSetAssignments\":["
		"{\"name\":\"launcher\",\"flavors\":{\"cpu\":\"cpu\"},\"resourceUsage\":{\"cpu\":\"1\"}},"
		"{\"name\":\"workers\",\"flavors\":{\"nvidia.com/gpu\":\"h100\"},"
		"\"resourceUsage\":{\"nvidia.com/gpu\":\"8\"}},"
		"{\"name\":\"eval\",\"flavors\":{\"nvidia.com/gpu\":\"h100\"},"
		"\"resourceUsage\":{\"nvidia.com/gpu\":\"2\"}}]}}}");

	(void)state;
	assert_int_equal(kueue_price(wl, lookup, NULL, 86400, &p), 0);
	assert_string_equal(p.gpu_type, "h100-80gb");
	assert_int_equal(p.gpus, 10);
	assert_int_equal(p.max_seconds, 5400);
	json_decref(wl);
}

static void default_runtime_and_no_gpus(void **state)
{
	struct kueue_price p;
	json_t *wl = parse("{\"spec\":{},\"status\":{\"admission\":{\"podSetAssignments\":["
		"{\"name\":\"main\",\"flavors\":{\"cpu\":\"cpu\"},\"resourceUsage\":{\"cpu\":\"4\"}}]}}}");

	(void)state;
	assert_int_equal(kueue_price(wl, lookup, NULL, 7200, &p), 0);
	assert_int_equal(p.gpus, 0);
	assert_string_equal(p.gpu_type, "");
	assert_int_equal(p.max_seconds, 7200);
	json_decref(wl);
}

static void refusals_say_why(void **state)
{
	struct kueue_price p;
	json_t *two = parse("{\"spec\":{},\"status\":{\"admission\":{\"podSetAssignments\":["
		"{\"name\":\"a\",\"flavors\":{\"nvidia.com/gpu\":\"h100\"},\"resourceUsage\":{\"nvidia.com/gpu\":\"1\"}},"
		"{\"name\":\"b\",\"flavors\":{\"nvidia.com/gpu\":\"a100\"},\"resourceUsage\":{\"nvidia.com/gpu\":\"1\"}}]}}}");
	json_t *unknown = parse("{\"spec\":{},\"status\":{\"admission\":{\"podSetAssignments\":["
		"{\"name\":\"a\",\"flavors\":{\"nvidia.com/gpu\":\"mystery\"},\"resourceUsage\":{\"nvidia.com/gpu\":\"1\"}}]}}}");
	json_t *milli = parse("{\"spec\":{},\"status\":{\"admission\":{\"podSetAssignments\":["
		"{\"name\":\"a\",\"flavors\":{\"nvidia.com/gpu\":\"h100\"},\"resourceUsage\":{\"nvidia.com/gpu\":\"500m\"}}]}}}");
	json_t *none = parse("{\"spec\":{},\"status\":{}}");

	(void)state;
	assert_int_equal(kueue_price(two, lookup, NULL, 3600, &p), -1);
	assert_non_null(strstr(p.why, "two GPU types"));
	assert_int_equal(kueue_price(unknown, lookup, NULL, 3600, &p), -1);
	assert_non_null(strstr(p.why, "ResourceFlavor mystery"));
	assert_int_equal(kueue_price(milli, lookup, NULL, 3600, &p), -1);
	assert_non_null(strstr(p.why, "not a whole number"));
	assert_int_equal(kueue_price(none, lookup, NULL, 3600, &p), -1);
	json_decref(two);
	json_decref(unknown);
	json_decref(milli);
	json_decref(none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flavor_by_product_or_plinth_label),
		cmocka_unit_test(sums_gpu_pod_sets_of_one_type),
		cmocka_unit_test(default_runtime_and_no_gpus),
		cmocka_unit_test(refusals_say_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
