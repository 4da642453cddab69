/*
 * lifecycle.c - the allocation state machine as one table, and the rule of
 * retiring and reactivating a record (team, GPU type).
 *
 * Decides transitions only; the store applies them.  Must never let a
 * finished allocation (completed, cancelled, expired) move again, except
 * the idempotent repeat of the event that finished it.  Pure.
 */
#include "core/lifecycle.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

#define NSTATUS 5
#define NEVENT 4
#define X (-1) /* conflict */

/* next[status][event]; a repeat is an entry equal to its own row. */
static const int next_table[NSTATUS][NEVENT] = {
	/*                   start          complete         cancel           expire */
	[ALLOC_APPROVED] = {ALLOC_RUNNING, X, ALLOC_CANCELLED, ALLOC_EXPIRED},
	[ALLOC_RUNNING] = {ALLOC_RUNNING, ALLOC_COMPLETED, X, X},
	[ALLOC_COMPLETED] = {X, ALLOC_COMPLETED, X, X},
	[ALLOC_CANCELLED] = {X, X, ALLOC_CANCELLED, X},
	[ALLOC_EXPIRED] = {X, X, X, ALLOC_EXPIRED},
};

static const char *const status_names[NSTATUS] = {
	[ALLOC_APPROVED] = "approved",
	[ALLOC_RUNNING] = "running",
	[ALLOC_COMPLETED] = "completed",
	[ALLOC_CANCELLED] = "cancelled",
	[ALLOC_EXPIRED] = "expired",
};

static const char *const event_names[NEVENT] = {
	[ALLOC_EV_START] = "start",
	[ALLOC_EV_COMPLETE] = "complete",
	[ALLOC_EV_CANCEL] = "cancel",
	[ALLOC_EV_EXPIRE] = "expire",
};

/* Out-of-range status or event values are ERR_INVALID (a programmer error). */
int lifecycle_next(enum alloc_status cur, enum alloc_event ev, enum alloc_status *next, bool *repeat)
{
	if ((unsigned)cur >= NSTATUS || (unsigned)ev >= NEVENT || next == NULL || repeat == NULL)
		return ERR_INVALID;
	int n = next_table[cur][ev];
	if (n == X)
		return ERR_CONFLICT;
	*next = (enum alloc_status)n;
	*repeat = (enum alloc_status)n == cur;
	return 0;
}

bool lifecycle_holds_resources(enum alloc_status s)
{
	return s == ALLOC_APPROVED || s == ALLOC_RUNNING;
}

/* Returns the wire name, or "unknown" for a value outside the enum. */
const char *alloc_status_name(enum alloc_status s)
{
	return (unsigned)s < NSTATUS ? status_names[s] : "unknown";
}

int alloc_status_parse(const char *s, enum alloc_status *out)
{
	if (s == NULL || out == NULL)
		return ERR_INVALID;
	for (int i = 0; i < NSTATUS; i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*out = (enum alloc_status)i;
			return 0;
		}
	}
	return ERR_INVALID;
}

/* Returns the event's name ("start"...), or "unknown". */
const char *alloc_event_name(enum alloc_event ev)
{
	return (unsigned)ev < NEVENT ? event_names[ev] : "unknown";
}

int retire_rule(int64_t retired, bool names_retired, bool only_retired, int64_t to,
		int64_t *merged)
{
	*merged = !names_retired ? retired : to == 0 ? 0 : retired ? retired : to;
	if (!retired)
		return 0;
	if (only_retired && to != 0)
		return 1;
	return names_retired && to == 0 ? 0 : ERR_CONFLICT;
}

const char *retire_action(const char *type, bool exists, int64_t before, int64_t after, char *buf,
			  size_t len)
{
	const char *verb = !exists ? "create"
			   : !before && after ? "retire"
			   : before && !after ? "reactivate"
					      : "update";

	snprintf(buf, len, "%s.%s", type, verb);
	return buf;
}
