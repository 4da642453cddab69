/*
 * usage.c - an allocation's billed use and THE per-UTC-day split (usage.h).
 *
 * Use is capped at the max runtime, as the ledger caps the actual cost, so
 * the cost views never show more than was approved.  Integer arithmetic
 * only; the split gives the remainder to the last day so that no micro is
 * lost or invented.  Must never do I/O or read the clock.
 */
#include "core/usage.h"

#include <stdio.h>

#include "core/cost.h"
#include "core/ledger.h"
#include "core/period.h"
#include "core/timeutil.h"

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* GPU micro-hours used over `secs` seconds, capped at the max runtime. */
static int used_microhours(int64_t gpu_count, int64_t max_us, int64_t secs, int64_t *out)
{
	return cost_gpu_microhours(gpu_count, min64(max64(secs, 0) * USEC_PER_SEC, max_us), out);
}

/* The max runtime in whole seconds, rounded up: the last second billed. */
static int64_t max_secs(int64_t max_us)
{
	return (max_us + USEC_PER_SEC - 1) / USEC_PER_SEC;
}

int usage_completed(int64_t gpu_count, int64_t max_us, int64_t started, int64_t ended,
		    int64_t *ue, int64_t *gpu_mh)
{
	*ue = min64(ended, started + max_secs(max_us));
	return used_microhours(gpu_count, max_us, ended - started, gpu_mh);
}

int usage_running(int64_t price_micros, int64_t gpu_count, int64_t max_us, int64_t started,
		  int64_t now, int64_t *ue, int64_t *money, int64_t *gpu_mh)
{
	int rc = ledger_accrued(price_micros, gpu_count, max_us, started, now, money);

	*ue = min64(max64(now, started), started + max_secs(max_us));
	return rc == 0 ? used_microhours(gpu_count, max_us, now - started, gpu_mh) : rc;
}

int usage_split_days(int64_t us, int64_t ue, int64_t money, int64_t gpu_mh, usage_day_cb cb,
		     void *ctx)
{
	int64_t span = ue - us, given_m = 0, given_g = 0;

	if (span <= 0)
		return cb(ctx, time_day_start(us), money, gpu_mh);
	for (int64_t d = time_day_start(us); d < ue; d += TIME_DAY) {
		int64_t a = max64(d, us), b = min64(d + TIME_DAY, ue), pm, pg;
		int rc;

		if (b >= ue) {
			pm = money - given_m;
			pg = gpu_mh - given_g;
		} else {
			pm = (int64_t)((__int128)money * (b - a) / span);
			pg = (int64_t)((__int128)gpu_mh * (b - a) / span);
		}
		given_m += pm;
		given_g += pg;
		rc = cb(ctx, d, pm, pg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Adds to sums[t] at day and to sums[t + 1], its monthly table, at its month. */
static int roll_add(struct cost_table *sums, int t, int64_t day, int64_t money, int64_t gpu_mh)
{
	int64_t at[2] = {day, period_floor(PERIOD_MONTHLY, day)};
	char key[24];
	int rc = 0;

	for (int i = 0; rc == 0 && i < 2; i++) {
		snprintf(key, sizeof(key), "%020lld", (long long)at[i]);
		rc = cost_table_add(&sums[t + i], key, money, 0, 0, gpu_mh);
	}
	return rc;
}

static int roll_part(void *ctx, int64_t day, int64_t money, int64_t gpu_mh)
{
	return roll_add(ctx, USAGE_ROLL_DAY, day, money, gpu_mh);
}

int usage_rollup_add(struct cost_table sums[USAGE_ROLL_N], int64_t approved_at, int64_t gpu_count,
		     int64_t max_us, int64_t started, int64_t ended, int64_t actual)
{
	int64_t ue = 0, gpu_mh = 0;
	int rc = usage_completed(gpu_count, max_us, started, ended, &ue, &gpu_mh);

	if (rc == 0)
		rc = roll_add(sums, USAGE_ROLL_DAY_APPROVED, time_day_start(approved_at), actual,
			      gpu_mh);
	return rc == 0 ? usage_split_days(started, ue, actual, gpu_mh, roll_part, sums) : rc;
}
