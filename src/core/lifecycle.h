/*
 * lifecycle.h - the allocation state machine, and retirement of records (pure).
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
#include <stddef.h>
#include <stdint.h>

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

/*
 * Retirement of a record (a team, a GPU type): retired at `retired` (0:
 * active), a write that sets retired_at to `to` (ignored unless
 * names_retired; only_retired: it names nothing else).  0 = write it, 1 = a
 * retire of a retired record (nothing to do), ERR_CONFLICT = a change of a
 * retired record that does not reactivate it.  *merged gets retired_at after
 * the write (a retired record keeps its first instant).
 */
int retire_rule(int64_t retired, bool names_retired, bool only_retired, int64_t to,
		int64_t *merged);

/* The audit action of such a write: "<type>.create", ".retire", ".reactivate"
 * or ".update" into buf (len bytes). */
const char *retire_action(const char *type, bool exists, int64_t before, int64_t after, char *buf,
			  size_t len);

#endif
