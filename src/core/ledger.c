/*
 * ledger.c - the budget and capacity rules as pure arithmetic.
 *
 * The store reads the numbers inside its transaction and asks this module to
 * decide, so the rule lives in exactly one place.  Must never do I/O, read
 * the clock or wrap around: sums go through 128-bit intermediates.
 */
#include "core/ledger.h"

#include "core/cost.h"
#include "core/err.h"

typedef __int128 i128;

#define SEC_PER_DAY INT64_C(86400)
#define SEC_PER_HOUR INT64_C(3600)

static int64_t clamp64(i128 v)
{
	if (v > (i128)INT64_MAX)
		return INT64_MAX;
	if (v < (i128)INT64_MIN)
		return INT64_MIN;
	return (int64_t)v;
}

void ledger_decide(const struct ledger_check *c, struct ledger_decision *d)
{
	i128 committed = (i128)c->spent + c->reserved;
	i128 left = (i128)c->budget - committed;
	i128 gpus_left = (i128)c->capacity - c->allocated;

	d->budget_ok = committed + c->estimated <= (i128)c->budget;
	d->capacity_ok = (i128)c->allocated + c->gpu_count <= (i128)c->capacity;
	d->approved = d->budget_ok && d->capacity_ok;
	d->available = left > 0 ? clamp64(left) : 0;
	d->gpus_available = gpus_left > 0 ? clamp64(gpus_left) : 0;
}

/* true when n GPUs for us microseconds at price fit the budget left in c. */
static bool fits(const struct ledger_check *c, int64_t price, int64_t n, int64_t us)
{
	int64_t est;

	if (cost_compute(price, n, us, &est) != 0)
		return false;
	return (i128)c->spent + c->reserved + est <= (i128)c->budget;
}

/* The largest x in [0, hi] with fits(x) (fits holds up to a point, the cost
 * being monotonic in GPUs and in time); 0 when none does. */
static int64_t fit_search(const struct ledger_check *c, int64_t price, int64_t hi, bool gpus,
			  int64_t other)
{
	int64_t lo = 0;

	while (lo < hi) {
		int64_t mid = lo + (hi - lo + 1) / 2;
		bool ok = gpus ? fits(c, price, mid, other)
			       : fits(c, price, other, mid * USEC_PER_MICROHOUR);

		if (ok)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

void ledger_fit(const struct ledger_check *c, int64_t price_micros, int64_t runtime_us,
		int64_t *max_gpus, int64_t *max_runtime_us)
{
	i128 free_gpus = (i128)c->capacity - c->allocated;
	int64_t hi = free_gpus > 0 ? clamp64(free_gpus) : 0;

	*max_gpus = fit_search(c, price_micros, hi, true, runtime_us);
	*max_runtime_us = fit_search(c, price_micros, runtime_us / USEC_PER_MICROHOUR, false,
				     c->gpu_count) * USEC_PER_MICROHOUR;
}

/* Billed duration in microseconds: whole seconds, capped at the max runtime. */
static int64_t billed_us(int64_t max_runtime_us, int64_t from_s, int64_t to_s)
{
	if (to_s <= from_s)
		return 0;
	i128 us = ((i128)to_s - from_s) * USEC_PER_SEC;
	return us < (i128)max_runtime_us ? (int64_t)us : max_runtime_us;
}

int ledger_accrued(int64_t price_micros, int64_t gpu_count, int64_t max_runtime_us,
		   int64_t started_s, int64_t now_s, int64_t *out)
{
	return cost_compute(price_micros, gpu_count, billed_us(max_runtime_us, started_s, now_s), out);
}

int ledger_actual(int64_t price_micros, int64_t gpu_count, int64_t max_runtime_us,
		  int64_t started_s, int64_t ended_s, int64_t *out)
{
	if (ended_s < started_s)
		return ERR_INVALID;
	return cost_compute(price_micros, gpu_count, billed_us(max_runtime_us, started_s, ended_s), out);
}

/*
 * Elapsed and remaining time are measured with `now` clamped into the
 * period, so a forecast asked for after the period ended is just the total.
 * burn_per_day is floored; the forecast uses that same rounded rate so
 * forecast = used + burn_per_day * remaining_days can be checked by hand.
 */
/* The projection shared by both forecasts: from instant n, the period's
 * remaining seconds are spent at `burn` per day on top of what is used. */
static void forecast_from_burn(int64_t n, int64_t end, int64_t now, int64_t budget, i128 used,
			       i128 committed, i128 burn, int64_t *burn_per_day, int64_t *forecast,
			       int64_t *exhaust_at)
{
	i128 remaining = (i128)end - n;
	i128 fc = used + burn * remaining / SEC_PER_DAY;
	if (fc < committed)
		fc = committed; /* reserved money is already promised */

	i128 ex;
	if (committed >= (i128)budget) {
		ex = now;
	} else if (burn <= 0) {
		ex = 0;
	} else {
		/* First second at which committed + burn * t / day >= budget. */
		i128 left = (i128)budget - committed;
		i128 secs = (left * SEC_PER_DAY + burn - 1) / burn;
		i128 at = (i128)n + secs;
		ex = at < (i128)end ? at : 0;
	}

	*burn_per_day = clamp64(burn);
	*forecast = clamp64(fc);
	*exhaust_at = clamp64(ex);
}

void ledger_forecast(int64_t start, int64_t end, int64_t now, int64_t budget, int64_t spent,
		     int64_t accrued, int64_t reserved, int64_t *burn_per_day, int64_t *forecast,
		     int64_t *exhaust_at)
{
	int64_t n = now < start ? start : now > end ? end : now;
	i128 elapsed = (i128)n - start;
	if (elapsed < SEC_PER_HOUR)
		elapsed = SEC_PER_HOUR; /* one hour at least, so a fresh period does not explode */
	i128 used = (i128)spent + accrued;
	i128 burn = used > 0 ? used * SEC_PER_DAY / elapsed : 0;
	/* committed = spent + reserved: a running allocation's accrued cost is
	 * part of its reservation already, so it is not added again. */
	forecast_from_burn(n, end, now, budget, used, (i128)spent + reserved, burn, burn_per_day,
			   forecast, exhaust_at);
}

void ledger_forecast_recent(int64_t start, int64_t end, int64_t now, int64_t budget, int64_t spent,
			    int64_t accrued, int64_t reserved, int64_t recent_used, int64_t window_s,
			    int64_t *burn_per_day, int64_t *forecast, int64_t *exhaust_at)
{
	int64_t n = now < start ? start : now > end ? end : now;
	i128 window = window_s < SEC_PER_HOUR ? SEC_PER_HOUR : window_s;
	i128 used = (i128)spent + accrued;
	i128 burn = recent_used > 0 ? (i128)recent_used * SEC_PER_DAY / window : 0;
	forecast_from_burn(n, end, now, budget, used, (i128)spent + reserved, burn, burn_per_day,
			   forecast, exhaust_at);
}
