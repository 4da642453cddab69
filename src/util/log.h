/*
 * log.h - the daemon's event log: one JSON line per event on stderr.
 *
 * Every layer above util logs through it: the HTTP server (connection
 * limits), the API (a job's outcome it cannot record), the integrations
 * (alerts, job clean-up) and `plinth serve`'s wiring (start, stop, sweeps).
 * The per-request access line is the HTTP layer's own (http/reqlog.c).
 * Never pass a secret in extra: no token, request body or query string.
 */
#ifndef PLINTH_UTIL_LOG_H
#define PLINTH_UTIL_LOG_H

#include <jansson.h>

/*
 * Writes {"ts","level","msg",...extra} as one line on stderr.  extra: an
 * object whose members are added (reference stolen), or NULL; a NULL from a
 * failed json_pack() at the call just logs without it.  A line is written
 * with one call, so lines from several threads never interleave; a line that
 * cannot be built (out of memory) is dropped.
 */
void log_event(const char *level, const char *msg, json_t *extra);

#endif
