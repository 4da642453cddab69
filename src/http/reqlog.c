/*
 * reqlog.c - one JSON line per request on stderr (daemon events are
 * util/log.c's).  Never logs a token, a body or a query string: they may
 * hold secrets.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/timeutil.h"
#include "http/http.h"
#include "http/jsonv.h"
#include "util/jsonw.h"
#include "util/metrics.h"
#include "util/util.h"

/* The hot path: written with jsonw, no jansson tree per request. */
void reqlog_write(const struct req *r)
{
	int64_t us = util_mono_us() - r->t0_us;
	char ts[TIME_FMT_LEN];
	struct jsonw w;
	char *line;

	metrics_http_observe(r->status, us);
	time_format_rfc3339(util_now(), ts);
	jw_init(&w);
	jw_open(&w, NULL);
	jw_str(&w, "ts", ts);
	jw_str(&w, "level", r->status >= 500 ? "error" : "info");
	jw_str(&w, "msg", "request");
	jw_str(&w, "request_id", r->id);
	jw_str(&w, "method", r->method);
	jw_str(&w, "path", r->path); /* a decoded path may hold any bytes: jsonw makes them valid */
	jw_int(&w, "status", (int64_t)r->status);
	jw_fixed(&w, "duration_ms", us > 0 ? us : 0, 3);
	jw_str(&w, "actor", r->authed ? r->token.id : NULL);
	if (r->client_cert[0] != '\0')
		jw_str(&w, "client_cert", r->client_cert);
	jw_close(&w);
	line = jw_finish(&w, NULL);
	if (line != NULL) {
		fprintf(stderr, "%s\n", line);
		free(line);
	}
}
