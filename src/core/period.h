/*
 * period.h - budget periods (calendar-aligned, UTC).
 *
 * A team's budget renews each period.  Spend belongs to the period in which
 * its allocation was approved.  Pure.
 */
#ifndef PLINTH_PERIOD_H
#define PLINTH_PERIOD_H

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

#endif
