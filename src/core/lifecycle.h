/*
 * lifecycle.h - the allocation state machine (pure).
 *
 *   approved -> running -> completed
 *   approved -> cancelled
 *   approved -> expired        (not started within the start timeout)
 *
 * Repeating the transition that produced the current state is a no-op that
 * succeeds (idempotent): start on running, complete on completed, cancel on
 * cancelled, expire on expired.  Everything else is a conflict.
 */
#ifndef PLINTH_LIFECYCLE_H
#define PLINTH_LIFECYCLE_H

#include <stdbool.h>

enum alloc_status {
	ALLOC_APPROVED,
	ALLOC_RUNNING,
	ALLOC_COMPLETED,
	ALLOC_CANCELLED,
	ALLOC_EXPIRED,
};

enum alloc_event {
	ALLOC_EV_START,
	ALLOC_EV_COMPLETE,
	ALLOC_EV_CANCEL,
	ALLOC_EV_EXPIRE,
};

/*
 * Decides the transition.  Returns 0 and sets *next (and *repeat = true when
 * it is an idempotent repeat with next == cur), or ERR_CONFLICT.
 */
int lifecycle_next(enum alloc_status cur, enum alloc_event ev, enum alloc_status *next, bool *repeat);

/* True while the allocation holds money in reserved and GPUs in allocated. */
bool lifecycle_holds_resources(enum alloc_status s);

const char *alloc_status_name(enum alloc_status s);
int alloc_status_parse(const char *s, enum alloc_status *out); /* 0 or ERR_INVALID */
const char *alloc_event_name(enum alloc_event ev);

#endif
