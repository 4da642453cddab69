/*
 * cost.c - the cost formula in exact integer arithmetic.
 *
 * All products go through 128-bit intermediates so no input combination can
 * wrap; results above MONEY_MAX_MICROS are refused, never clamped.  Rounding
 * is half up, which is monotonic, so an actual cost never exceeds its
 * estimate.  Must never do I/O; the one double (hours from JSON) is turned
 * into integers at once.
 */
#include "core/cost.h"

#include "core/err.h"
#include "core/money.h"

typedef unsigned __int128 u128;

/* round_half_up(num / den) for num >= 0, den > 0. */
static u128 div_round_half_up(u128 num, u128 den)
{
	return (num + den / 2) / den;
}

int cost_compute(int64_t price_micros, int64_t gpu_count, int64_t duration_us, int64_t *out)
{
	if (out == NULL || price_micros < 0 || gpu_count < 0 || duration_us < 0)
		return ERR_INVALID;

	/* Both factors < 2^63, so their product < 2^126 fits. */
	u128 a = (u128)price_micros * (u128)gpu_count;
	u128 max = ~(u128)0;
	if (duration_us != 0 && a > max / (u128)duration_us)
		return ERR_OVERFLOW; /* far beyond MONEY_MAX_MICROS * 3.6e9 */
	u128 q = div_round_half_up(a * (u128)duration_us, (u128)USEC_PER_HOUR);
	if (q > (u128)MONEY_MAX_MICROS)
		return ERR_OVERFLOW;
	*out = (int64_t)q;
	return 0;
}

int cost_runtime_from_hours(double hours, int64_t max_hours, int64_t *out_us)
{
	/* The negated comparisons also refuse NaN. */
	if (out_us == NULL || max_hours <= 0 || !(hours > 0.0) || !(hours <= (double)max_hours))
		return ERR_INVALID;
	if (hours > 1e6)
		return ERR_INVALID; /* beyond where the micro-hour check below is exact */

	double mh = hours * 1e6;
	int64_t r = (int64_t)(mh + 0.5); /* mh > 0: truncation after +0.5 rounds */
	double diff = mh - (double)r;
	/* 1e-6 absolute, widened to a few ulps for large values so a number
	 * typed with 6 decimals is never refused for its binary representation. */
	double tol = mh * 4e-16 > 1e-6 ? mh * 4e-16 : 1e-6;
	if (diff > tol || diff < -tol)
		return ERR_INVALID; /* more than 6 decimals */
	if (r <= 0 || r > INT64_MAX / USEC_PER_MICROHOUR)
		return ERR_INVALID;
	*out_us = r * USEC_PER_MICROHOUR;
	return 0;
}

int cost_gpu_microhours(int64_t gpu_count, int64_t duration_us, int64_t *out)
{
	if (out == NULL || gpu_count < 0 || duration_us < 0)
		return ERR_INVALID;
	u128 q = div_round_half_up((u128)gpu_count * (u128)duration_us, (u128)USEC_PER_MICROHOUR);
	if (q > (u128)INT64_MAX)
		return ERR_OVERFLOW;
	*out = (int64_t)q;
	return 0;
}
