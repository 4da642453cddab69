/*
 * usage.h - what an allocation has used, as the cost views bill it: the
 * billed end of its use, its GPU micro-hours (capped at the max runtime),
 * the accrued cost of a running one, and THE per-UTC-day split shared by the
 * day totals, the usage rollups and the FOCUS export.  Pure: no I/O, no clock.
 */
#ifndef PLINTH_CORE_USAGE_H
#define PLINTH_CORE_USAGE_H

#include <stdint.h>

#include "core/costsum.h"

/*
 * A completed allocation (gpu_count GPUs, max runtime max_us, started and
 * ended in seconds): *ue = its billed end (ended, at most started + the max
 * runtime rounded up to a second), *gpu_mh = its GPU micro-hours over
 * ended - started, capped at the max runtime.  0 or cost_gpu_microhours'
 * error.
 */
int usage_completed(int64_t gpu_count, int64_t max_us, int64_t started, int64_t ended,
		    int64_t *ue, int64_t *gpu_mh);

/* A running allocation at now: its accrued cost (ledger_accrued, the daemon's
 * accrual formula) into *money, the end of its use so far into *ue and its
 * GPU micro-hours into *gpu_mh, all capped at the max runtime. */
int usage_running(int64_t price_micros, int64_t gpu_count, int64_t max_us, int64_t started,
		  int64_t now, int64_t *ue, int64_t *money, int64_t *gpu_mh);

/* Receives one UTC day's part of a split: non-zero stops the split. */
typedef int (*usage_day_cb)(void *ctx, int64_t day, int64_t money, int64_t gpu_mh);

/*
 * THE per-day split: money and GPU micro-hours used over [us, ue) are split
 * across UTC days by seconds (128-bit products, truncated); the last day
 * takes the remainder so the parts sum exactly to the totals.  An empty span
 * puts everything on the day of us.  0, or the first non-zero of cb.
 */
int usage_split_days(int64_t us, int64_t ue, int64_t money, int64_t gpu_mh, usage_day_cb cb,
		     void *ctx);

/* The sums of the four cost rollups (completed allocations only): by day and
 * month of approval, by day and month of use; each daily one is followed by
 * its monthly one.  A row's key is the start of its day or month as 20-digit
 * zero-padded decimal text, which sorts as the number. */
enum usage_roll { USAGE_ROLL_DAY_APPROVED, USAGE_ROLL_MONTH_APPROVED, USAGE_ROLL_DAY,
		  USAGE_ROLL_MONTH, USAGE_ROLL_N };

/*
 * Adds a completed allocation (usage_completed's arguments, approved at
 * approved_at, actual cost in micros) to sums: all of it at its approval day
 * and month, its use split by usage_split_days at each day of use and that
 * day's month.  0 or an error (ERR_NOMEM, ERR_OVERFLOW).
 */
int usage_rollup_add(struct cost_table sums[USAGE_ROLL_N], int64_t approved_at, int64_t gpu_count,
		     int64_t max_us, int64_t started, int64_t ended, int64_t actual);

#endif
