/*
 * metrics.c - the counters behind GET /metrics (see metrics.h).
 * Only atomics: nothing here allocates on the request path, takes a lock or
 * does I/O.  Rendering reads each atomic once, so a scrape taken during
 * traffic is a consistent-enough snapshot (each series is monotonic).
 */
#include "util/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"

/* Upper bounds in microseconds (le="0.001" ... le="10"), then +Inf. */
static const int64_t bucket_us[] = {1000, 2500, 5000, 10000, 25000, 50000, 100000,
				    250000, 500000, 1000000, 2500000, 10000000};
static const char *const bucket_le[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
					"0.1", "0.25", "0.5", "1", "2.5", "10"};
#define NBUCKETS (sizeof(bucket_us) / sizeof(bucket_us[0]))

static atomic_ullong http_bucket[NBUCKETS]; /* non-cumulative; summed when rendered */
static atomic_ullong http_count;
static atomic_ullong http_sum_us;
static atomic_ullong http_class[6]; /* 1xx..5xx by status / 100; [0] = other */
static atomic_ullong alloc_outcome[METRICS_ALLOC_NOUTCOMES];
static atomic_ullong alert_sent, alert_failed;

static const char *const outcome_name[METRICS_ALLOC_NOUTCOMES] = {
	"approved", "budget_exceeded", "capacity_exceeded", "completed", "cancelled", "error"};

void metrics_http_observe(unsigned status, int64_t duration_us)
{
	size_t i = 0;

	if (duration_us < 0)
		duration_us = 0;
	while (i < NBUCKETS && duration_us > bucket_us[i])
		i++;
	if (i < NBUCKETS)
		atomic_fetch_add_explicit(&http_bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&http_sum_us, (unsigned long long)duration_us,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&http_count, 1, memory_order_relaxed);
	unsigned cls = status / 100;
	atomic_fetch_add_explicit(&http_class[cls >= 1 && cls <= 5 ? cls : 0], 1,
				  memory_order_relaxed);
}

void metrics_alloc_count(enum metrics_outcome o)
{
	if ((unsigned)o < METRICS_ALLOC_NOUTCOMES)
		atomic_fetch_add_explicit(&alloc_outcome[o], 1, memory_order_relaxed);
}

void metrics_alert_count(int delivered)
{
	atomic_fetch_add_explicit(delivered ? &alert_sent : &alert_failed, 1, memory_order_relaxed);
}

int metrics_appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		size_t room = *cap - *len;
		int n;

		if (*buf != NULL) {
			va_start(ap, fmt);
			n = vsnprintf(*buf + *len, room, fmt, ap);
			va_end(ap);
			if (n < 0)
				return ERR_INVALID;
			if ((size_t)n < room) {
				*len += (size_t)n;
				return 0;
			}
		} else {
			n = 0;
		}
		size_t ncap = *cap ? *cap * 2 : 4096;
		while (ncap < *len + (size_t)n + 1)
			ncap *= 2;
		char *nb = realloc(*buf, ncap);
		if (nb == NULL)
			return ERR_NOMEM;
		*buf = nb;
		*cap = ncap;
	}
}

int metrics_render(char **buf, size_t *len, size_t *cap)
{
	static const char *const cls_name[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	unsigned long long cum = 0, count, sum_us;
	int rc;

	rc = metrics_appendf(buf, len, cap,
			     "# HELP plinth_http_request_duration_seconds Time from request start to response.\n"
			     "# TYPE plinth_http_request_duration_seconds histogram\n");
	for (size_t i = 0; rc == 0 && i < NBUCKETS; i++) {
		cum += atomic_load_explicit(&http_bucket[i], memory_order_relaxed);
		rc = metrics_appendf(buf, len, cap,
				     "plinth_http_request_duration_seconds_bucket{le=\"%s\"} %llu\n",
				     bucket_le[i], cum);
	}
	count = atomic_load_explicit(&http_count, memory_order_relaxed);
	sum_us = atomic_load_explicit(&http_sum_us, memory_order_relaxed);
	if (count < cum)
		count = cum; /* a request counted between the two loads */
	if (rc == 0)
		rc = metrics_appendf(buf, len, cap,
				     "plinth_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
				     "plinth_http_request_duration_seconds_sum %llu.%06llu\n"
				     "plinth_http_request_duration_seconds_count %llu\n",
				     count, sum_us / 1000000, sum_us % 1000000, count);
	if (rc == 0)
		rc = metrics_appendf(buf, len, cap,
				     "# HELP plinth_http_requests_total HTTP requests answered, by status class.\n"
				     "# TYPE plinth_http_requests_total counter\n");
	for (size_t i = 0; rc == 0 && i < 6; i++)
		rc = metrics_appendf(buf, len, cap, "plinth_http_requests_total{code=\"%s\"} %llu\n",
				     cls_name[i], atomic_load_explicit(&http_class[i], memory_order_relaxed));
	if (rc == 0)
		rc = metrics_appendf(buf, len, cap,
				     "# HELP plinth_allocations_total Allocation decisions and transitions handled by this process.\n"
				     "# TYPE plinth_allocations_total counter\n");
	for (size_t i = 0; rc == 0 && i < METRICS_ALLOC_NOUTCOMES; i++)
		rc = metrics_appendf(buf, len, cap, "plinth_allocations_total{outcome=\"%s\"} %llu\n",
				     outcome_name[i],
				     atomic_load_explicit(&alloc_outcome[i], memory_order_relaxed));
	if (rc == 0)
		rc = metrics_appendf(buf, len, cap,
				     "# HELP plinth_alert_deliveries_total Budget alert webhook attempts.\n"
				     "# TYPE plinth_alert_deliveries_total counter\n"
				     "plinth_alert_deliveries_total{result=\"delivered\"} %llu\n"
				     "plinth_alert_deliveries_total{result=\"failed\"} %llu\n",
				     atomic_load_explicit(&alert_sent, memory_order_relaxed),
				     atomic_load_explicit(&alert_failed, memory_order_relaxed));
	return rc;
}
