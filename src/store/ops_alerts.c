/*
 * ops_alerts.c - budget alerts to deliver: record a threshold crossing once
 * per webhook URL, claim due ones for a lease (so one replica sends each),
 * and note the outcome of an attempt.  Delivery itself is the daemon's.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <string.h>

#include "core/err.h"

static const char SQL_ALERT_INSERT[] =
	"INSERT INTO alerts(team_id, period_start, threshold_ppm, url, budget, committed,"
	" crossed_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING";
/* Rows another claimer holds are skipped: replicas claiming at once take disjoint rows. */
static const char SQL_ALERT_DUE[] =
	"SELECT team_id, period_start, threshold_ppm, url, budget, committed, crossed_at, attempts"
	" FROM alerts WHERE delivered_at = 0 AND next_attempt_at <= ?"
	" ORDER BY crossed_at, team_id, threshold_ppm LIMIT ?" DB_LOCK_SKIP;
static const char SQL_ALERT_LEASE[] =
	"UPDATE alerts SET next_attempt_at = ? WHERE team_id = ? AND period_start = ?"
	" AND threshold_ppm = ? AND url = ? AND delivered_at = 0 AND next_attempt_at <= ?";
static const char SQL_ALERT_DONE[] =
	"UPDATE alerts SET delivered_at = ?, attempts = attempts + 1, next_attempt_at = ?,"
	" last_error = ? WHERE team_id = ? AND period_start = ? AND threshold_ppm = ? AND url = ?";

struct alert_io {
	const struct alert *a;
	const char *const *urls;
	size_t nurls;
	int64_t now, lease_s;
	struct alert *out;
	int max, n;
};

static int alert_record_tx(struct store_conn *c, void *ctx)
{
	struct alert_io *x = ctx;
	const struct alert *a = x->a;

	x->n = 0;
	for (size_t i = 0; i < x->nurls; i++) {
		int n = db_exec(c, SQL_ALERT_INSERT, "tiitiiii", a->team, a->period_start,
				a->threshold_ppm, x->urls[i], a->budget, a->committed, x->now, x->now);

		if (n < 0)
			return n;
		x->n += n;
	}
	return 0;
}

int ops_alert_record(struct store_conn *c, const struct alert *a, const char *const *urls,
		     size_t nurls, int64_t now, int *created)
{
	struct alert_io x = {.a = a, .urls = urls, .nurls = nurls, .now = now};
	int rc = db_run(c, true, alert_record_tx, &x);

	if (rc == 0 && created)
		*created = x.n;
	return rc;
}

/* The current row into a: 0, or -1 for a text that does not fit (never a cut URL). */
static int row_alert(const struct db_rows *r, struct alert *a)
{
	int bad = 0;

	memset(a, 0, sizeof(*a));
	bad |= db_copy(r, 0, a->team, sizeof(a->team));
	a->period_start = db_i64(r, 1);
	a->threshold_ppm = db_i64(r, 2);
	bad |= db_copy(r, 3, a->url, sizeof(a->url));
	a->budget = db_i64(r, 4);
	a->committed = db_i64(r, 5);
	a->crossed_at = db_i64(r, 6);
	a->attempts = db_i64(r, 7);
	return bad;
}

static int alert_claim_tx(struct store_conn *c, void *ctx)
{
	struct alert_io *x = ctx;
	struct db_rows *r = NULL;
	int rc, got = 0;

	x->n = 0;
	rc = db_query(c, SQL_ALERT_DUE, &r, "ii", x->now, (int64_t)x->max);
	while (rc == 0 && got < x->max && (rc = db_next(r)) == 1) {
		rc = 0;
		if (row_alert(r, &x->out[got]) != 0) {
			store_bad_row("alerts", db_text(r, 0), "a text does not fit its field");
			continue;
		}
		got++;
	}
	db_rows_close(r);
	if (rc < 0)
		return rc;
	/* Lease each row so another replica does not send it at the same time. */
	for (int i = 0; i < got; i++) {
		const struct alert *a = &x->out[i];
		int ch = db_exec(c, SQL_ALERT_LEASE, "itiiti", x->now + x->lease_s, a->team,
				 a->period_start, a->threshold_ppm, a->url, x->now);

		if (ch < 0)
			return ch;
		if (ch == 1 && x->n++ != i) /* kept: moved down over the ones not leased */
			x->out[x->n - 1] = *a;
	}
	return 0;
}

int ops_alert_claim(struct store_conn *c, int64_t now, int64_t lease_s, struct alert *out, int max,
		    int *n)
{
	struct alert_io x = {.now = now, .lease_s = lease_s, .out = out, .max = max};
	int rc = db_run(c, true, alert_claim_tx, &x);

	if (rc == 0)
		*n = x.n;
	return rc;
}

int ops_alert_done(struct store_conn *c, const struct alert *a, bool delivered, int64_t next_at,
		   const char *error, int64_t now)
{
	int n = db_exec_tx(c, SQL_ALERT_DONE, "iittiit", delivered ? now : (int64_t)0, next_at,
			   error ? error : "", a->team, a->period_start, a->threshold_ppm, a->url);

	return n < 0 ? n : 0;
}
