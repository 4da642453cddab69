/*
 * cost.h - the cost formula, exact, in integer arithmetic.
 *
 * cost = gpu_count x price_per_gpu_hour x duration, where the duration is in
 * microseconds and the price in micros per GPU-hour:
 *     cost_micros = round_half_up(gpu_count * price_micros * duration_us / 3.6e9)
 * computed with 128-bit intermediates.  Rounding is monotonic in each
 * argument, so an actual cost (duration <= max runtime) never exceeds the
 * estimate.  Pure: no I/O.
 */
#ifndef PLINTH_COST_H
#define PLINTH_COST_H

#include <stdint.h>

#define USEC_PER_SEC INT64_C(1000000)
#define USEC_PER_HOUR INT64_C(3600000000)
/* Micro-hours to microseconds: 1 micro-hour = 3.6 ms = 3600 us. */
#define USEC_PER_MICROHOUR INT64_C(3600)

/*
 * Sets *out to the cost of gpu_count GPUs at price_micros per GPU-hour for
 * duration_us.  All inputs must be >= 0.  Returns 0, ERR_INVALID for a
 * negative input, ERR_OVERFLOW when the result exceeds MONEY_MAX_MICROS.
 */
int cost_compute(int64_t price_micros, int64_t gpu_count, int64_t duration_us, int64_t *out);

/*
 * Converts a JSON number of hours to whole microseconds.  The number must be
 * > 0, <= max_hours and have at most 6 decimals (checked as micro-hours:
 * |h*1e6 - round(h*1e6)| <= 1e-6, safe because h <= 1e6 keeps the double's
 * error far below half a micro-hour).  Durations are not money; this is the
 * one place a double is read, and it is converted to integers at once.
 * Returns 0 and sets *out_us, or ERR_INVALID.
 */
int cost_runtime_from_hours(double hours, int64_t max_hours, int64_t *out_us);

/*
 * GPU-hours used, in micro-GPU-hours: gpu_count * duration_us / 3600,
 * rounded half up.  Returns 0 or ERR_OVERFLOW.
 */
int cost_gpu_microhours(int64_t gpu_count, int64_t duration_us, int64_t *out);

#endif
