/*
 * alerter.h - the daemon's budget-alert thread (plinth serve).
 *
 * Every interval it (1) records, for each team whose spent + reserved has
 * reached a threshold of its budget, one alert per webhook URL (the store
 * ignores ones already recorded for that period: once per threshold per
 * period, across restarts and replicas), then (2) claims due alerts and
 * POSTs each as JSON with a Slack-compatible "text" to its URL through
 * net/httpc, retrying failures with exponential backoff.
 */
#ifndef PLINTH_CLI_ALERTER_H
#define PLINTH_CLI_ALERTER_H

#include <stddef.h>

#include "store/store.h"

#define ALERTER_MAX_URLS 16

struct alerter;

/*
 * Starts the thread.  urls (nurls <= ALERTER_MAX_URLS) are copied.  With no
 * URL nothing is started and *out is NULL.  Returns 0 or ERR_NOMEM /
 * ERR_STORE (thread creation).
 */
int alerter_start(struct store *store, const char *const *urls, size_t nurls, long interval_s,
		  const char *currency, struct alerter **out);
/* Stops and joins the thread, frees it; NULL is a no-op. */
void alerter_stop(struct alerter *a);

#endif
