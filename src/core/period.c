/*
 * period.c - calendar-aligned budget periods in UTC.
 *
 * Decides which [start, end) a budget instant belongs to.  Pure: never reads
 * the clock or a time zone; weeks start on Monday (ISO 8601).
 */
#include "core/period.h"

#include <string.h>

#include "core/err.h"
#include "core/grow.h"
#include "core/timeutil.h"

static const char *const period_names[] = {
	[PERIOD_WEEKLY] = "weekly",
	[PERIOD_MONTHLY] = "monthly",
	[PERIOD_QUARTERLY] = "quarterly",
	[PERIOD_YEARLY] = "yearly",
};

int period_kind_parse(const char *s, enum period_kind *out)
{
	if (s == NULL || out == NULL)
		return ERR_INVALID;
	for (size_t i = 0; i < sizeof(period_names) / sizeof(period_names[0]); i++) {
		if (strcmp(s, period_names[i]) == 0) {
			*out = (enum period_kind)i;
			return 0;
		}
	}
	return ERR_INVALID;
}

/* Returns the wire name, or "unknown" for a value outside the enum. */
const char *period_kind_name(enum period_kind kind)
{
	if ((unsigned)kind >= sizeof(period_names) / sizeof(period_names[0]))
		return "unknown";
	return period_names[kind];
}

void period_bounds(enum period_kind kind, int64_t t, int64_t *start, int64_t *end)
{
	int64_t day0 = time_day_start(t) / 86400;
	int64_t y;
	unsigned m, d;
	time_civil_from_days(day0, &y, &m, &d);

	switch (kind) {
	case PERIOD_WEEKLY: {
		/* 1970-01-01 was a Thursday: (days + 3) mod 7 is 0 on Mondays. */
		int64_t wd = ((day0 + 3) % 7 + 7) % 7;
		*start = (day0 - wd) * 86400;
		*end = *start + 7 * 86400;
		return;
	}
	case PERIOD_QUARTERLY: {
		unsigned qm = (m - 1) / 3 * 3 + 1;
		*start = time_from_civil(y, qm, 1);
		*end = qm == 10 ? time_from_civil(y + 1, 1, 1) : time_from_civil(y, qm + 3, 1);
		return;
	}
	case PERIOD_YEARLY:
		*start = time_from_civil(y, 1, 1);
		*end = time_from_civil(y + 1, 1, 1);
		return;
	case PERIOD_MONTHLY:
	default: /* an out-of-range kind is a programmer error; monthly is the default */
		*start = time_from_civil(y, m, 1);
		*end = m == 12 ? time_from_civil(y + 1, 1, 1) : time_from_civil(y, m + 1, 1);
		return;
	}
}

int64_t period_floor(enum period_kind kind, int64_t t)
{
	int64_t s = 0, e = 0;

	period_bounds(kind, t, &s, &e);
	return s;
}

int64_t period_ceil(enum period_kind kind, int64_t t)
{
	int64_t s = 0, e = 0;

	period_bounds(kind, t, &s, &e);
	return s == t ? s : e;
}

/* Inserts (ps, delta) in order (room for one more), or adds to ps's entry. */
static void plan_put(struct period_plan *p, int64_t ps, int64_t delta)
{
	size_t i = 0;

	while (i < p->n && p->d[i].ps < ps)
		i++;
	if (i < p->n && p->d[i].ps == ps) {
		p->d[i].delta += delta;
		return;
	}
	memmove(&p->d[i + 1], &p->d[i], (p->n - i) * sizeof(*p->d));
	p->d[i].ps = ps;
	p->d[i].delta = delta;
	p->n++;
}

int period_plan_leave(struct period_plan *p, int64_t ps, int64_t sum)
{
	/* Room for this one and the arrival. */
	struct period_delta *nd = grow(p->d, p->n + 1, &p->cap, sizeof(*nd), 8);

	if (!nd)
		return ERR_NOMEM;
	p->d = nd;
	if (__builtin_add_overflow(p->total, sum, &p->total))
		return ERR_OVERFLOW;
	plan_put(p, ps, -sum);
	return 0;
}

void period_plan_arrive(struct period_plan *p, int64_t ps)
{
	if (p->n > 0)
		plan_put(p, ps, p->total);
}
