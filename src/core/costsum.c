/*
 * costsum.c - cost totals by group key (costsum.h).
 *
 * Binary search and sorted insert, so the rows come out in key order for
 * every backend; sums are 128-bit and checked, never wrapped.  Pure.
 */
#include "core/costsum.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/grow.h"
#include "core/timeutil.h"

/* The row of key in acc (inserted zeroed when missing), or NULL without memory. */
static struct cost_row *acc_row(struct cost_table *acc, const char *key)
{
	struct cost_row *nr;
	size_t lo = 0, hi = acc->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(acc->rows[mid].key, key);

		if (cmp == 0)
			return &acc->rows[mid];
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	nr = grow(acc->rows, acc->n, &acc->cap, sizeof(*nr), 16);
	if (!nr)
		return NULL;
	acc->rows = nr;
	memmove(&acc->rows[lo + 1], &acc->rows[lo], (acc->n - lo) * sizeof(*acc->rows));
	memset(&acc->rows[lo], 0, sizeof(*acc->rows));
	snprintf(acc->rows[lo].key, sizeof(acc->rows[lo].key), "%s", key);
	acc->n++;
	return &acc->rows[lo];
}

int cost_table_add(struct cost_table *acc, const char *key, int64_t spent, int64_t accrued,
		 int64_t reserved, int64_t gpu_mh)
{
	struct cost_row *r = acc_row(acc, key);

	if (!r)
		return ERR_NOMEM;
	/* 128-bit sums of int64 parts: 2^63 rows would be needed to overflow. */
	if (__builtin_add_overflow(r->spent, (cost_sum_t)spent, &r->spent) ||
	    __builtin_add_overflow(r->accrued, (cost_sum_t)accrued, &r->accrued) ||
	    __builtin_add_overflow(r->reserved, (cost_sum_t)reserved, &r->reserved) ||
	    __builtin_add_overflow(r->gpu_microhours, (cost_sum_t)gpu_mh, &r->gpu_microhours))
		return ERR_OVERFLOW;
	return 0;
}

void cost_group_key(enum cost_group g, int64_t t, const char *team, const char *project,
		    const char *gpu, char *key)
{
	char date[16];

	if (g == COST_BY_TEAM)
		snprintf(key, COST_KEY_LEN, "%s", team);
	else if (g == COST_BY_PROJECT)
		snprintf(key, COST_KEY_LEN, "%s/%s", team, project);
	else if (g == COST_BY_GPU_TYPE)
		snprintf(key, COST_KEY_LEN, "%s", gpu);
	else {
		time_format_date(t, date); /* YYYY-MM-DD; a month key is its first 7 */
		snprintf(key, COST_KEY_LEN, "%.*s", g == COST_BY_MONTH ? 7 : 10, date);
	}
}
