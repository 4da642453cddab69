/*
 * err.c - stable names for the error codes of err.h.
 *
 * The names appear in logs and in problem "type" URIs, so they must never
 * change once published.  Pure: no I/O, no allocation.
 */
#include "core/err.h"

/* Returns the kebab-case name of err, or "unknown" for a value not in enum err. */
const char *err_name(int err)
{
	switch (err) {
	case ERR_OK: return "ok";
	case ERR_NOMEM: return "out-of-memory";
	case ERR_INVALID: return "invalid";
	case ERR_NOT_FOUND: return "not-found";
	case ERR_CONFLICT: return "conflict";
	case ERR_BUDGET: return "budget-exceeded";
	case ERR_CAPACITY: return "capacity-exceeded";
	case ERR_FORBIDDEN: return "forbidden";
	case ERR_UNAUTHORIZED: return "unauthorized";
	case ERR_IDEMPOTENCY: return "idempotency-mismatch";
	case ERR_STORE: return "store-failure";
	case ERR_UNAVAILABLE: return "unavailable";
	case ERR_OVERFLOW: return "overflow";
	case ERR_TOO_LARGE: return "too-large";
	case ERR_MALFORMED: return "malformed";
	}
	return "unknown";
}
