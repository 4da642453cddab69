/*
 * reqlog.c - one JSON line per request (and per daemon event) on stderr.
 * Never logs a token, a body or a query string: they may hold secrets.
 */
#include <stdio.h>

#include "core/timeutil.h"
#include "http/http.h"
#include "http/jsonv.h"
#include "http/metrics.h"
#include "util/util.h"

void log_event(const char *level, const char *msg, json_t *extra)
{
	char ts[TIME_FMT_LEN];
	time_format_rfc3339(util_now(), ts);
	json_t *o = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", level, "msg", msg);
	if (o != NULL && extra != NULL)
		json_object_update(o, extra);
	json_decref(extra);
	char *line = o ? json_dumps(o, HTTP_JSON_FLAGS) : NULL;
	json_decref(o);
	if (line != NULL) {
		/* One write per line keeps lines whole across threads. */
		fprintf(stderr, "%s\n", line);
		free(line);
	}
}

void reqlog_write(const struct req *r)
{
	int64_t us = util_mono_us() - r->t0_us;
	char path[sizeof(r->path)];
	snprintf(path, sizeof(path), "%s", r->path);
	jsonv_utf8_sanitize(path); /* a decoded path may hold any bytes */
	metrics_http_observe(r->status, us);
	log_event(r->status >= 500 ? "error" : "info", "request",
		  json_pack("{s:s, s:s, s:s, s:i, s:f, s:s?}", "request_id", r->id, "method",
			    r->method, "path", path, "status", (int)r->status, "duration_ms",
			    (double)us / 1000.0, "actor", r->authed ? r->token.id : NULL));
}
