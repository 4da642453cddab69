/*
 * metrics.h - process-wide counters for GET /metrics: HTTP request latency
 * histogram, request counts by status class, allocation outcomes and alert
 * deliveries.  Lock-free (C11 atomics) so the request path never waits on
 * it.  It never touches the store: gauges (budgets, GPUs) are read at scrape
 * time by api_metrics.c.  In util, below every layer that counts: the HTTP
 * server (reqlog.c), the API and the alerter.
 */
#ifndef PLINTH_UTIL_METRICS_H
#define PLINTH_UTIL_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metrics_outcome {
	METRICS_ALLOC_APPROVED,
	METRICS_ALLOC_BUDGET_EXCEEDED,
	METRICS_ALLOC_CAPACITY_EXCEEDED,
	METRICS_ALLOC_COMPLETED,
	METRICS_ALLOC_CANCELLED,
	METRICS_ALLOC_ERROR,
	METRICS_ALLOC_NOUTCOMES,
};

/* One finished HTTP request: its status and duration in microseconds. */
void metrics_http_observe(unsigned status, int64_t duration_us);
/* One allocation decision or transition. */
void metrics_alloc_count(enum metrics_outcome o);
/* One webhook delivery attempt. */
void metrics_alert_count(int delivered);

/*
 * Appends the counters and the histogram in Prometheus text format to *buf
 * (malloc'd, grown; len and cap track it).  Returns 0 or ERR_NOMEM (the
 * buffer stays owned by the caller either way).
 */
int metrics_render(char **buf, size_t *len, size_t *cap);
/* printf-style append to the same kind of buffer. */
int metrics_appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
