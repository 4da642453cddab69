/* test_catalog.c - seed_catalog_parse over the embedded CSV and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "seed/embedded.h"
#include "seed/seed.h"

#define MAXT 64

static struct gpu_type types[MAXT];

static const struct gpu_type *find(size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(types[i].id, id) == 0)
			return &types[i];
	fail_msg("gpu type %s not in the catalog", id);
	return NULL;
}

static void test_embedded(void **state)
{
	(void)state;
	size_t n = 0;
	char detail[STORE_DETAIL_LEN] = "";
	int rc = seed_catalog_parse((const char *)catalog_csv, types, MAXT, &n, detail);
	if (rc != 0)
		fail_msg("embedded catalog: %d %s", rc, detail);
	/* H100 80, H200 141, A100 40, A100 80, V100 16, V100 32, A10G 24, L4 24, L40S 48 */
	assert_int_equal(n, 9);

	const struct gpu_type *g = find(n, "h100-80gb");
	assert_int_equal(g->price_micros, 6880000);
	assert_string_equal(g->name, "NVIDIA H100 80GB");
	assert_string_equal(g->price_source, "aws p5.48xlarge us-east-1 on-demand");
	assert_string_equal(g->price_date, "2026-07-20");
	assert_int_equal(g->capacity, 0);
	assert_int_equal(g->allocated, 0);

	g = find(n, "a100-80gb");
	assert_int_equal(g->price_micros, 3430888);
	assert_string_equal(g->price_source, "aws p4de.24xlarge us-east-1 on-demand");
	/* L4: 8-GPU g6.48xlarge wins over single-GPU sizes. */
	g = find(n, "l4-24gb");
	assert_int_equal(g->price_micros, 1668800);
	assert_string_equal(g->price_source, "aws g6.48xlarge us-east-1 on-demand");
	g = find(n, "l40s-48gb");
	assert_int_equal(g->price_micros, 3766400);
	assert_string_equal(g->name, "NVIDIA L40S 48GB");
	g = find(n, "a10g-24gb");
	assert_int_equal(g->price_micros, 2036000);
	/* V100 16: the 8-GPU p3.16xlarge. */
	g = find(n, "v100-16gb");
	assert_int_equal(g->price_micros, 3060000);
	assert_string_equal(g->price_source, "aws p3.16xlarge us-east-1 on-demand");
	g = find(n, "h200-141gb");
	assert_int_equal(g->price_micros, 7912000);
}

#define HDR "instance_type,gpu_model,gpu_memory_gib,gpu_count,usd_per_hour,usd_per_gpu_hour,region,price_date\n"

static void test_tie_breaks_to_lower_price(void **state)
{
	(void)state;
	const char *csv = HDR
		"x.a,T4,16,4,8.000000,2.000000,us-east-1,2026-07-20\r\n"
		"x.b,T4,16,4,6.000000,1.500000,us-east-1,2026-07-20\r\n"
		"x.c,T4,16,2,2.000000,1.000000,us-east-1,2026-07-20\r\n"
		"x.d,T4,16,4,7.000000,1.750000,us-east-1,2026-07-20\r\n"
		"\n";
	size_t n = 0;
	assert_int_equal(seed_catalog_parse(csv, types, MAXT, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(types[0].id, "t4-16gb");
	assert_int_equal(types[0].price_micros, 1500000);
	assert_string_equal(types[0].price_source, "aws x.b us-east-1 on-demand");
}

static void expect_invalid(const char *csv, const char *want_in_detail)
{
	size_t n = 12345;
	char detail[STORE_DETAIL_LEN] = "";
	int rc = seed_catalog_parse(csv, types, MAXT, &n, detail);
	if (rc != ERR_INVALID)
		fail_msg("want ERR_INVALID, got %d for:\n%s", rc, csv);
	assert_int_equal(n, 12345); /* untouched on failure */
	if (strstr(detail, want_in_detail) == NULL)
		fail_msg("detail \"%s\" does not mention \"%s\"", detail, want_in_detail);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_invalid("", "empty");
	expect_invalid("instance_type,gpu_model\n", "header");
	expect_invalid(HDR "p5.48xlarge,H100,80,8,55.0400,6.8800,us-east-1\n", "line 2");
	expect_invalid(HDR "p5.48xlarge,H100,80,8,55.0400,6.8800,us-east-1,2026-07-20,x\n", "line 2");
	expect_invalid(HDR "p5.48xlarge,H100,80,8,55.0400,6.8800,us-east-1,2026-07-20\n"
			   "p5.4xlarge,H100,80,1,6.8800,-6.8800,us-east-1,2026-07-20\n",
		       "line 3");
	expect_invalid(HDR "p5.48xlarge,H100,80,8,55.0400,6.8800,us-east-1,2026-02-30\n", "price_date");
	expect_invalid(HDR "p5.48xlarge,H100,80,8,55.0400,6.8800000,us-east-1,2026-07-20\n",
		       "usd_per_gpu_hour");
	expect_invalid(HDR "p5.48xlarge,H100,80,0,55.0400,6.8800,us-east-1,2026-07-20\n", "gpu_count");
	expect_invalid(HDR "p5.48xlarge,H100,x,8,55.0400,6.8800,us-east-1,2026-07-20\n", "memory");
	expect_invalid(HDR "p5.48xlarge,H 100,80,8,55.0400,6.8800,us-east-1,2026-07-20\n", "gpu_model");
	expect_invalid(HDR ",H100,80,8,55.0400,6.8800,us-east-1,2026-07-20\n", "instance_type");
	expect_invalid(HDR "p5.48xlarge,H100,80,8,55.0400,6.8800,,2026-07-20\n", "region");
	/* Per-GPU price that does not match the instance price. */
	expect_invalid(HDR "p5.48xlarge,H100,80,8,55.0400,6.9800,us-east-1,2026-07-20\n", "match");
	/* A line longer than any real one. */
	char big[1200];
	memset(big, 'a', sizeof(big));
	memcpy(big, HDR, strlen(HDR));
	big[sizeof(big) - 1] = '\0';
	expect_invalid(big, "too long");
}

static void test_too_many_types(void **state)
{
	(void)state;
	const char *csv = HDR
		"a,A1,8,1,1.00,1.00,r,2026-07-20\n"
		"b,A2,8,1,1.00,1.00,r,2026-07-20\n"
		"c,A3,8,1,1.00,1.00,r,2026-07-20\n";
	size_t n = 99;
	assert_int_equal(seed_catalog_parse(csv, types, 2, &n, NULL), ERR_INVALID);
	assert_int_equal(n, 99);
	assert_int_equal(seed_catalog_parse(csv, types, 3, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_string_equal(types[2].id, "a3-8gb");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded),
		cmocka_unit_test(test_tie_breaks_to_lower_price),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_many_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
