/*
 * period.h - budget periods (calendar-aligned, UTC).
 *
 * A team's budget renews each period.  Spend belongs to the period in which
 * its allocation was approved.  Pure.
 */
#ifndef PLINTH_PERIOD_H
#define PLINTH_PERIOD_H

#include <stddef.h>
#include <stdint.h>

enum period_kind {
	PERIOD_WEEKLY,    /* Monday 00:00 UTC to the next Monday */
	PERIOD_MONTHLY,   /* 1st of the month */
	PERIOD_QUARTERLY, /* Jan, Apr, Jul, Oct 1st */
	PERIOD_YEARLY,    /* Jan 1st */
};

/* "weekly" | "monthly" | "quarterly" | "yearly" -> kind; 0 or ERR_INVALID. */
int period_kind_parse(const char *s, enum period_kind *out);
const char *period_kind_name(enum period_kind kind);

/* The half-open period [*start, *end) that contains t. */
void period_bounds(enum period_kind kind, int64_t t, int64_t *start, int64_t *end);
/* The start of the period containing t; the first period start at or after t. */
int64_t period_floor(enum period_kind kind, int64_t t);
int64_t period_ceil(enum period_kind kind, int64_t t);

/*
 * A team's period kind changed: its live (approved, running) allocations of
 * other periods move into the new current period, so the new period's check
 * counts them (issue 11, finding 5).  The plan lists one step per period
 * row, ascending by period start: the global lock order of period rows.
 */
struct period_delta {
	int64_t ps;
	int64_t delta; /* added to the row's reserved */
};

/* The period rows a change touches, ascending; d owned (free) by the caller. */
struct period_plan {
	struct period_delta *d;
	size_t n, cap;
	int64_t total; /* live reservations moving */
};

/* Another period's live reservations `sum` leave its row ps (each ps once,
 * any order).  0, ERR_NOMEM, ERR_OVERFLOW. */
int period_plan_leave(struct period_plan *p, int64_t ps, int64_t sum);
/* They all arrive in the new current period's row ps, merged with ps's own
 * entry if it left too (no-op when nothing left).  Cannot fail: leave kept room. */
void period_plan_arrive(struct period_plan *p, int64_t ps);

#endif
