/*
 * log.c - the daemon's event log (log.h): one compact JSON line per event on
 * stderr, where the service manager collects it.
 */
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/timeutil.h"
#include "util/util.h"

/* Compact, reals with 15 significant digits (0.8 prints as 0.8): the same
 * text the HTTP answers use. */
#define LOG_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

void log_event(const char *level, const char *msg, json_t *extra)
{
	char ts[TIME_FMT_LEN];
	time_format_rfc3339(util_now(), ts);
	json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", level, "msg", msg);
	if (o != NULL && extra != NULL)
		json_object_update(o, extra);
	json_decref(extra);
	char *line = o ? json_dumps(o, LOG_JSON_FLAGS) : NULL;
	json_decref(o);
	if (line != NULL) {
		/* One write per line keeps lines whole across threads. */
		fprintf(stderr, "%s\n", line);
		free(line);
	}
}
