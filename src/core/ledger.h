/*
 * ledger.h - the budget and capacity rules (pure arithmetic, no I/O).
 *
 * The store calls ledger_decide() inside its one atomic transaction with the
 * numbers it just read; this module only decides.
 */
#ifndef PLINTH_LEDGER_H
#define PLINTH_LEDGER_H

#include <stdbool.h>
#include <stdint.h>

struct ledger_check {
	int64_t budget;    /* micros, for the team's current period */
	int64_t spent;     /* micros charged in that period */
	int64_t reserved;  /* micros held by approved/running allocations of that period */
	int64_t estimated; /* micros this request would reserve */
	int64_t capacity;  /* GPUs of the type in the cluster */
	int64_t allocated; /* GPUs held now by approved/running allocations */
	int64_t gpu_count; /* GPUs this request asks for */
};

struct ledger_decision {
	bool approved;          /* budget_ok && capacity_ok */
	bool budget_ok;         /* spent + reserved + estimated <= budget */
	bool capacity_ok;       /* allocated + gpu_count <= capacity */
	int64_t available;      /* max(0, budget - spent - reserved), micros */
	int64_t gpus_available; /* max(0, capacity - allocated) */
};

/* Applies the approval rule of API.md.  Never overflows for inputs within
 * MONEY_MAX_MICROS and int32 GPU counts. */
void ledger_decide(const struct ledger_check *c, struct ledger_decision *d);

/*
 * What would fit the budget left in c (spent, reserved, budget; capacity and
 * allocated bound the GPUs) at price_micros per GPU-hour: *max_gpus, the most
 * GPUs free now for runtime_us, and *max_runtime_us, the most whole
 * micro-hours up to runtime_us for c->gpu_count GPUs.  Exact (cost_compute
 * decides each candidate), so quoting either answer is approved on budget
 * and one more GPU or micro-hour is not.  0 when nothing fits.
 */
void ledger_fit(const struct ledger_check *c, int64_t price_micros, int64_t runtime_us,
		int64_t *max_gpus, int64_t *max_runtime_us);

/*
 * The cost accrued so far by a running allocation:
 * gpu_count x price x min(now - started, max_runtime), billed per whole second.
 * now < started counts as 0.  Returns 0 or ERR_OVERFLOW.
 */
int ledger_accrued(int64_t price_micros, int64_t gpu_count, int64_t max_runtime_us,
		   int64_t started_s, int64_t now_s, int64_t *out);

/*
 * The actual cost at completion: the same formula with ended instead of now.
 * ended < started is ERR_INVALID.
 */
int ledger_actual(int64_t price_micros, int64_t gpu_count, int64_t max_runtime_us,
		  int64_t started_s, int64_t ended_s, int64_t *out);

/*
 * A simple forecast for the period [start, end) at instant now:
 *   burn_per_day = (spent + accrued) / days elapsed (at least one hour counted),
 *   forecast     = spent + accrued + burn_per_day * days remaining,
 * in micros, integer arithmetic, and never below spent + accrued + reserved
 * because reserved money is committed.  *exhaust_at is the instant the budget
 * runs out at that burn rate, or 0 if it does not run out before end.
 */
void ledger_forecast(int64_t start, int64_t end, int64_t now, int64_t budget, int64_t spent,
		     int64_t accrued, int64_t reserved, int64_t *burn_per_day, int64_t *forecast,
		     int64_t *exhaust_at);

/*
 * The same forecast with the burn rate taken from recent use: recent_used
 * micros of cost incurred (completed and accruing) during the window_s
 * seconds that end at now (at least one hour counted).  A team that sped up
 * or slowed down last week is projected at its current pace, not at the
 * period's average.
 */
void ledger_forecast_recent(int64_t start, int64_t end, int64_t now, int64_t budget, int64_t spent,
			    int64_t accrued, int64_t reserved, int64_t recent_used, int64_t window_s,
			    int64_t *burn_per_day, int64_t *forecast, int64_t *exhaust_at);

#endif
