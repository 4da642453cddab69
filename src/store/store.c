/*
 * store.c - the backend-independent half of the storage layer: the table of
 * operations, opening a store from a URL, the connection pool, fault
 * injection for tests, and the reports of bad rows, failed connections and
 * a full disk.
 *
 * It must never speak SQL or know a backend's internals: everything that
 * touches a database goes through the driver (db.h) or the operations.
 */
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"
#include "store/store_pg.h"
#include "util/util.h"

/*
 * The pool: connections are opened lazily up to `size`; released ones sit in
 * a free list.  acquire waits on the condition variable (on the monotonic
 * clock, so a wall-clock step cannot stretch a deadline) while every
 * connection is out.  The pool owns the free connections; a caller owns an
 * acquired one until it releases it.
 */
struct store_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct store_conn *free; /* singly linked through next_free */
	int open;                /* connections opened (free + acquired) */
	int size;
};

/* Every operation but allocate's engine is the same for both drivers. */
#define STORE_OPS(backend)                                                                    \
	{                                                                                     \
		.name = backend, .migrate = ops_migrate, .ping = ops_ping,                    \
		.token_create = ops_token_create, .token_by_hash = ops_token_by_hash,         \
		.token_revoke = ops_token_revoke, .admin_exists = ops_admin_exists,           \
		.gpu_type_put = ops_gpu_type_put, .gpu_type_get = ops_gpu_type_get,           \
		.gpu_type_list = ops_gpu_type_list, .gpu_type_seed = ops_gpu_type_seed,       \
		.team_put = ops_team_put, .team_get = ops_team_get, .team_list = ops_team_list, \
		.team_ledger = ops_team_ledger, .allocate = ops_allocate,                     \
		.alloc_get = ops_alloc_get, .alloc_list = ops_alloc_list,                     \
		.alloc_transition = ops_alloc_transition,                                     \
		.alloc_expire_due = ops_alloc_expire_due, .costs = ops_costs,                 \
		.audit_list = ops_audit_list, .audit_find = ops_audit_find,                   \
		.token_list = ops_token_list,                                                 \
		.cost_usage = ops_cost_usage, .cost_rollup_rebuild = ops_cost_rollup_rebuild, \
		.alert_record = ops_alert_record, .alert_claim = ops_alert_claim,             \
		.alert_done = ops_alert_done, .job_begin = ops_job_begin,                     \
		.job_update = ops_job_update, .job_get = ops_job_get,                         \
		.job_list = ops_job_list,                                                     \
		.job_take = ops_job_take,                                                     \
		.job_cleanup_due = ops_job_cleanup_due, .job_cleanup_done = ops_job_cleanup_done, \
		.gpu_type_patch = ops_gpu_type_patch, .team_patch = ops_team_patch,           \
	}
static const struct store_ops ops_sqlite = STORE_OPS("sqlite");
static const struct store_ops ops_postgres = STORE_OPS("postgres");

static void set_detail(char *detail, const char *msg)
{
	if (detail)
		snprintf(detail, STORE_DETAIL_LEN, "%s", msg);
}

static long bad_rows; /* accessed atomically */
static void (*bad_row_log)(const char *, const char *, const char *);

void store_set_bad_row_log(void (*fn)(const char *table, const char *id, const char *why))
{
	__atomic_store_n(&bad_row_log, fn, __ATOMIC_RELEASE);
}

static void (*conn_fail_log)(const char *);

void store_set_conn_fail_log(void (*fn)(const char *why))
{
	__atomic_store_n(&conn_fail_log, fn, __ATOMIC_RELEASE);
}

/* A connection could not be opened: the caller only sees ERR_UNAVAILABLE. */
void store_conn_failed(const char *why)
{
	void (*fn)(const char *) = __atomic_load_n(&conn_fail_log, __ATOMIC_ACQUIRE);

	if (fn)
		fn(why);
	else
		fprintf(stderr, "plinth: cannot open a database connection: %s\n", why);
}

void store_bad_row(const char *table, const char *id, const char *why)
{
	void (*fn)(const char *, const char *, const char *) =
		__atomic_load_n(&bad_row_log, __ATOMIC_ACQUIRE);

	__atomic_add_fetch(&bad_rows, 1, __ATOMIC_RELAXED);
	if (fn)
		fn(table, id ? id : "", why ? why : "");
	else
		fprintf(stderr, "plinth: skipped a bad %s row '%s': %s\n", table, id ? id : "",
			why ? why : "");
}

long store_bad_rows_total(void)
{
	return __atomic_load_n(&bad_rows, __ATOMIC_RELAXED);
}

void store_note_write(struct store *s, bool full)
{
	long was = __atomic_load_n(&s->full_at, __ATOMIC_RELAXED);

	if (full)
		__atomic_store_n(&s->full_at, (long)util_now(), __ATOMIC_RELAXED);
	else if (was != 0)
		__atomic_store_n(&s->full_at, 0L, __ATOMIC_RELAXED);
}

bool store_write_full(struct store *s)
{
	long at = __atomic_load_n(&s->full_at, __ATOMIC_RELAXED);

	return at != 0 && util_now() - at < STORE_FULL_WINDOW_S;
}

void store_audit_entry_done(struct audit_entry *e)
{
	if (!e)
		return;
	free(e->before_json);
	free(e->after_json);
	e->before_json = NULL;
	e->after_json = NULL;
}

bool store_fault_hit(struct store *s)
{
	long v = __atomic_load_n(&s->fault_after, __ATOMIC_SEQ_CST);

	/* A CAS loop so that concurrent statements consume the countdown
	 * exactly once each and exactly one of them fails. */
	while (v >= 0) {
		long next = v == 0 ? -1 : v - 1;
		if (__atomic_compare_exchange_n(&s->fault_after, &v, next, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return v == 0;
	}
	return false;
}

void store_fault_after(struct store *s, long n)
{
	__atomic_store_n(&s->fault_after, n < 0 ? -1 : n, __ATOMIC_SEQ_CST);
}

const struct store_ops *store_conn_ops(struct store_conn *c)
{
	return c->store->ops;
}

int store_conn_durable(struct store_conn *c, bool durable)
{
	return db_drv(c)->set_durable(c, durable);
}

int store_conn_acquire_within(struct store *s, long timeout_ms, struct store_conn **out)
{
	struct store_pool *p = s->pool;
	struct store_conn *c = NULL;
	/* On the monotonic clock, the pool's condvar clock. */
	int64_t until_us = util_mono_us() + (int64_t)timeout_ms * 1000;
	struct timespec deadline = {until_us / 1000000, until_us % 1000000 * 1000};
	char why[STORE_DETAIL_LEN];
	int rc;

	if (pthread_mutex_lock(&p->mu) != 0)
		return ERR_STORE;
	while (!p->free && p->open >= p->size) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		/* On a timeout the loop condition is checked once more: a
		 * release that signalled this waiter just as it timed out
		 * must not be lost, so a free connection is still taken. */
		if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT &&
		    !p->free && p->open >= p->size) {
			pthread_mutex_unlock(&p->mu);
			return ERR_UNAVAILABLE;
		}
	}
	if (p->free) {
		c = p->free;
		p->free = c->next_free;
	} else {
		p->open++; /* reserve the slot, then open outside the lock: opening touches disk */
	}
	pthread_mutex_unlock(&p->mu);
	if (!c) {
		rc = s->drv->conn_open(s, &c, why);
		if (rc != 0) {
			store_conn_failed(why);
			pthread_mutex_lock(&p->mu);
			p->open--;
			pthread_cond_signal(&p->cv);
			pthread_mutex_unlock(&p->mu);
			return rc;
		}
		c->store = s;
	}
	c->next_free = NULL;
	*out = c;
	return 0;
}

int store_conn_acquire(struct store *s, struct store_conn **out)
{
	return store_conn_acquire_within(s, -1, out);
}

void store_conn_release(struct store *s, struct store_conn *c)
{
	struct store_pool *p = s->pool;

	if (!c)
		return;
	pthread_mutex_lock(&p->mu);
	c->next_free = p->free;
	p->free = c;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int store_open_config(const struct store_config *cfg, struct store **out, char *detail)
{
	const char *url = cfg->url;
	long timeout = cfg->pg_statement_timeout_ms ? cfg->pg_statement_timeout_ms : 5000;
	struct store *s = NULL;
	struct store_pool *p = NULL;
	struct store_conn *c = NULL;
	const char *path;
	bool pg;
	int rc;

	if (!url || !*url) {
		set_detail(detail, "empty database URL");
		return ERR_INVALID;
	}
	if (timeout < 1 || timeout > STORE_PG_TIMEOUT_MAX_MS) {
		set_detail(detail, "the PostgreSQL statement timeout must be 1..3600000 ms");
		return ERR_INVALID;
	}
	/* SQLite: "sqlite:PATH", "sqlite://PATH" or a plain path. */
	pg = strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
	path = pg ? url : url + (strncmp(url, "sqlite://", 9) == 0 ? 9
				 : strncmp(url, "sqlite:", 7) == 0 ? 7 : 0);
	if (!*path) {
		set_detail(detail, "empty sqlite path");
		return ERR_INVALID;
	}

	p = calloc(1, sizeof(*p));
	if (!p) {
		set_detail(detail, "out of memory");
		return ERR_NOMEM;
	}
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p);
		set_detail(detail, "pthread_mutex_init failed");
		return ERR_STORE;
	}
	pthread_condattr_t ca;
	bool cv_ok = pthread_condattr_init(&ca) == 0;
	if (cv_ok) {
		cv_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
			pthread_cond_init(&p->cv, &ca) == 0;
		pthread_condattr_destroy(&ca);
	}
	if (!cv_ok) {
		pthread_mutex_destroy(&p->mu);
		free(p);
		set_detail(detail, "pthread_cond_init failed");
		return ERR_STORE;
	}
	p->size = cfg->pool_size > 0 ? cfg->pool_size : 1;

	rc = pg ? store_pg_new(url, timeout, &s) : store_sqlite_new(path, &s);
	if (rc != 0) {
		set_detail(detail, rc == ERR_NOMEM ? "out of memory" : "pthread mutex/condvar init failed");
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return rc;
	}
	s->pool = p; /* from here store_close() frees everything */
	s->ops = pg ? &ops_postgres : &ops_sqlite;
	s->fault_after = -1;

	/* Bring the schema up to date before anyone uses the store. */
	rc = store_conn_acquire(s, &c);
	if (rc != 0) {
		set_detail(detail, "cannot open a database connection");
		goto fail;
	}
	rc = s->ops->migrate(c, detail);
	store_conn_release(s, c);
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

int store_open(const char *url, int pool_size, struct store **out, char *detail)
{
	struct store_config cfg = {.url = url, .pool_size = pool_size};

	return store_open_config(&cfg, out, detail);
}

void store_close(struct store *s)
{
	struct store_pool *p;

	if (!s)
		return;
	p = s->pool;
	if (p) {
		/* Every connection must have been released by now. */
		while (p->free) {
			struct store_conn *c = p->free;
			p->free = c->next_free;
			s->drv->conn_close(c);
		}
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p);
		s->pool = NULL;
	}
	s->drv->destroy(s);
}
