/*
 * ops_jobs.c - self-service jobs (POST /v1/jobs): begin one (or find the job
 * its Idempotency-Key already made), save its outcome, read or list them, and the
 * GitOps clean-up queue (jobs whose allocation ended and whose manifests
 * are still in the repository).  No audit rows: the allocation's approval
 * and end are audited.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define JOB_COLS                                                                       \
	"id, token_id, idem_key, request_hash, team_id, name, allocation_id, status, body," \
	" created_at, updated_at"
static const char SQL_JOB_BY_ID[] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?";
static const char SQL_JOB_BY_KEY[] =
	"SELECT " JOB_COLS " FROM jobs WHERE token_id = ? AND idem_key = ?";
#define JOB_INSERT "INSERT INTO jobs(" JOB_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
static const char SQL_JOB_INSERT[] = JOB_INSERT;
/*
 * With an Idempotency-Key.  A second request with the same key waits on the
 * unique index (jobs_idem) for the first one's COMMIT, then inserts nothing
 * and reads the first one's job; if the first rolled back, it inserts.
 */
static const char SQL_JOB_INSERT_KEYED[] =
	JOB_INSERT " ON CONFLICT (token_id, idem_key) WHERE idem_key <> '' DO NOTHING";
/* The job that holds a name: its manifests were committed and are not removed yet. */
static const char SQL_JOB_BY_NAME[] =
	"SELECT " JOB_COLS " FROM jobs WHERE team_id = ? AND name = ? AND id <> ?"
	" AND status = 201 AND manifests_removed_at = 0 ORDER BY created_at DESC, id LIMIT 1";
static const char SQL_JOB_UPDATE[] =
	"UPDATE jobs SET allocation_id = ?, status = ?, body = ?, updated_at = ? WHERE id = ?";
/* A compare-and-set: only the request that read this updated_at takes the job over. */
static const char SQL_JOB_TAKE[] = "UPDATE jobs SET updated_at = ? WHERE id = ? AND status = 0"
				   " AND updated_at = ?";
static const char SQL_JOB_CLEANUP_DUE[] =
	"SELECT j.id, j.team_id, j.name, j.allocation_id, a.status FROM jobs j"
	" JOIN allocations a ON a.id = j.allocation_id"
	" WHERE j.status = 201 AND j.manifests_removed_at = 0"
	" AND a.status IN ('cancelled', 'expired', 'completed')"
	" AND (CAST(? AS TEXT) = '' OR j.allocation_id = ?) ORDER BY j.created_at, j.id LIMIT ?";
static const char SQL_JOB_CLEANUP_DONE[] =
	"UPDATE jobs SET manifests_removed_at = ? WHERE id = ? AND manifests_removed_at = 0";

/* A job row from column col on: 0, or ERR_STORE for a row that does not fit. */
static int row_job(const struct db_rows *r, int col, void *out)
{
	struct job *j = out;
	int64_t status = db_i64(r, col + 7);
	int bad = status < 0 || status > 999; /* 0 or an HTTP status */

	bad |= db_copy(r, col, j->id, sizeof(j->id));
	bad |= db_copy(r, col + 1, j->token_id, sizeof(j->token_id));
	bad |= db_copy(r, col + 2, j->idem_key, sizeof(j->idem_key));
	bad |= db_copy(r, col + 3, j->request_hash, sizeof(j->request_hash));
	bad |= db_copy(r, col + 4, j->team, sizeof(j->team));
	bad |= db_copy(r, col + 5, j->name, sizeof(j->name));
	bad |= db_copy(r, col + 6, j->allocation_id, sizeof(j->allocation_id));
	j->status = (int)status;
	bad |= db_copy(r, col + 8, j->body, sizeof(j->body));
	j->created_at = db_i64(r, col + 9);
	j->updated_at = db_i64(r, col + 10);
	return bad ? ERR_STORE : 0;
}

/* The job made with j's token and Idempotency-Key: 0, ERR_NOT_FOUND or an error. */
static int job_by_key(struct store_conn *c, const struct job *j, struct job *out)
{
	struct db_rows *r = NULL;
	int rc = db_query(c, SQL_JOB_BY_KEY, &r, "tt", j->token_id, j->idem_key);

	if (rc == 0 && (rc = db_next(r)) == 1) {
		rc = row_job(r, 0, out);
		if (rc != 0)
			db_err(c, "corrupt job row for Idempotency-Key '%s'", j->idem_key);
	} else if (rc == 0) {
		rc = ERR_NOT_FOUND;
	}
	db_rows_close(r);
	return rc;
}

struct job_io {
	const struct job *j;
	struct job *out;
	bool created;
};

static int job_begin_tx(struct store_conn *c, void *ctx)
{
	struct job_io *x = ctx;
	const struct job *j = x->j;
	int rc, n;

	x->created = false;
	n = db_exec(c, j->idem_key[0] ? SQL_JOB_INSERT_KEYED : SQL_JOB_INSERT, "tttttttitii", j->id,
		    j->token_id, j->idem_key, j->request_hash, j->team, j->name, j->allocation_id,
		    (int64_t)j->status, j->body, j->created_at, j->updated_at);
	if (n < 0)
		return n;
	if (n == 1) {
		/* A name in use is refused before anything is allocated; the
		 * insert above rolls back with this transaction. */
		struct db_rows *r = NULL;

		rc = db_query(c, SQL_JOB_BY_NAME, &r, "ttt", j->team, j->name, j->id);
		if (rc == 0 && (rc = db_next(r)) == 1) {
			rc = row_job(r, 0, x->out);
			if (rc == 0) {
				db_err(c, "job '%s' of team '%s' exists", j->name, j->team);
				rc = ERR_CONFLICT;
			}
		}
		db_rows_close(r);
		if (rc != 0)
			return rc;
		*x->out = *j;
		x->created = true;
		return 0;
	}
	/* The key was used before: its job answers, if it was the same request. */
	rc = job_by_key(c, j, x->out);
	if (rc == 0 && strcmp(x->out->request_hash, j->request_hash) != 0) {
		db_err(c, "Idempotency-Key '%s' was used with a different request", j->idem_key);
		rc = ERR_IDEMPOTENCY;
	}
	return rc;
}

int ops_job_begin(struct store_conn *c, const struct job *j, struct job *out, bool *created,
		  char *detail)
{
	struct job_io x = {.j = j, .out = out};
	int rc = db_run(c, true, job_begin_tx, &x);

	*created = rc == 0 && x.created;
	db_detail(c, rc, detail);
	return rc;
}

int ops_job_update(struct store_conn *c, const struct job *j, char *detail)
{
	int rc = db_exec_tx(c, SQL_JOB_UPDATE, "titit", j->allocation_id, (int64_t)j->status,
			    j->body, j->updated_at, j->id);

	rc = rc < 0 ? rc : rc == 0 ? ERR_NOT_FOUND : 0;
	db_detail(c, rc, detail);
	return rc;
}

int ops_job_take(struct store_conn *c, const struct job *j, int64_t seen, char *detail)
{
	int rc = db_exec_tx(c, SQL_JOB_TAKE, "iti", j->updated_at, j->id, seen);

	if (rc == 0)
		db_err(c, "job '%s' was taken over by another request", j->id);
	rc = rc < 0 ? rc : rc == 0 ? ERR_CONFLICT : 0;
	db_detail(c, rc, detail);
	return rc;
}

int ops_job_get(struct store_conn *c, const char *id, struct job *out)
{
	int rc = db_op(c);

	return rc != 0 ? rc : db_load(c, SQL_JOB_BY_ID, id, row_job, out);
}

static int list_take(void *ctx, void *rec, const struct db_rows *r, const char **why)
{
	const struct db_list_to *k = ctx;

	(void)why; /* the default: a text does not fit its field */
	if (row_job(r, 0, rec) != 0)
		return ERR_STORE;
	return k->cb.job(k->ctx, rec) != 0;
}

static int list_where(struct store_conn *c, const void *filter, char **sql, struct db_param *p,
		      int *np)
{
	const struct job_filter *f = filter;

	return db_sql_teams(c, sql, f->team, f->teams, f->nteams, p, np);
}

static const struct db_page LIST_PAGE = {"SELECT " JOB_COLS " FROM jobs WHERE 1 = 1", "jobs",
					 "created_at", 9 /* in JOB_COLS */, list_where, list_take,
					 sizeof(struct job)};

int ops_job_list(struct store_conn *c, const struct job_filter *f, store_job_cb cb, void *ctx,
		 char *next_cursor)
{
	struct db_list_to k = {.cb.job = cb, .ctx = ctx};

	return db_page_walk(c, &LIST_PAGE, f, &k, f->cursor, f->limit, next_cursor);
}

int ops_job_cleanup_due(struct store_conn *c, const char *alloc_id, struct job_cleanup *out,
			int max, int *n)
{
	const char *only = alloc_id ? alloc_id : "";
	struct db_rows *r = NULL;
	int rc = db_op(c);

	*n = 0;
	if (rc == 0)
		rc = db_query(c, SQL_JOB_CLEANUP_DUE, &r, "tti", only, only, (int64_t)max);
	while (rc == 0 && *n < max && (rc = db_next(r)) == 1) {
		struct job_cleanup *jc = &out[*n];
		char status[16];
		int bad = db_copy(r, 0, jc->id, sizeof(jc->id));

		bad |= db_copy(r, 1, jc->team, sizeof(jc->team));
		bad |= db_copy(r, 2, jc->name, sizeof(jc->name));
		bad |= db_copy(r, 3, jc->allocation_id, sizeof(jc->allocation_id));
		bad |= db_copy(r, 4, status, sizeof(status));
		rc = 0;
		if (bad || alloc_status_parse(status, &jc->status) != 0) {
			store_bad_row("jobs", db_text(r, 0), "a field does not fit");
			continue;
		}
		(*n)++;
	}
	db_rows_close(r);
	return rc < 0 ? rc : 0;
}

int ops_job_cleanup_done(struct store_conn *c, const char *job_id, int64_t at)
{
	int n = db_exec_tx(c, SQL_JOB_CLEANUP_DONE, "it", at, job_id);

	return n < 0 ? n : 0;
}
