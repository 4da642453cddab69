/*
 * test_store_ops.c - the store operations written once over the driver
 * interface (ops_catalog.c, ops_teams.c, ops_audit.c, ops_alerts.c,
 * ops_jobs.c), run on either backend by the same code: a SQLite file in a
 * mkdtemp directory, or with ITEST_PG=1 (the store-pg-ops registration) a
 * fresh schema in PLINTH_TEST_PG_URL's database (tools/pg-start.sh, see
 * tests/integration/itest_pg.h).
 *
 * Races run on real connections of the store's pool, released by one
 * barrier: creators of one new GPU type and of one new team (PostgreSQL: the
 * losers of the unique index rerun as updates), one Idempotency-Key sent by
 * many job requests at once, retries taking over one job whose lease ran
 * out (exactly one wins the compare-and-set), and alert claimers that must never claim one
 * alert twice.  Also: scope lists, audit pages, seeding, job outcomes, the
 * GitOps clean-up queue, partial updates and retirement of teams and GPU
 * types (price provenance, admins, no new allocation while retired), and rows
 * planted past the store that do not fit (lists and audit pages go on past
 * them); audit filters (team, actor, action, time) and job pages, walked page
 * by page; a bad team or GPU type row fails only the allocations that need it;
 * a batch that finds more due allocations than one pipeline takes.
 * Nothing outside its directory or schema.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "core/err.h"
#include "core/timeutil.h"
#include "itest_pg.h"
#include "store/store.h"

#define RACERS 8
#define POOL (RACERS + 2)

static bool use_pg;

struct fx {
	char dir[64];
	char path[128];
	char url[1200];
	struct store *s;
	struct store_conn *c;
	const struct store_ops *ops;
	int64_t now;
};

static const struct actor ADMIN = {"tok_admin", "admin", ROLE_ADMIN};

static int setup(void **state)
{
	char detail[STORE_DETAIL_LEN] = "";
	struct fx *f = calloc(1, sizeof(*f));
	int rc;

	assert_non_null(f);
	if (use_pg) {
		assert_int_equal(itest_pg_fresh_url(f->url, sizeof(f->url)), 0);
	} else {
		strcpy(f->dir, "/tmp/plinth-ops-XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->path, sizeof(f->path), "%s/plinth.db", f->dir);
		snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
	}
	rc = store_open(f->url, POOL, &f->s, detail);
	if (rc != 0)
		fail_msg("store_open: %s", detail);
	assert_int_equal(store_conn_acquire(f->s, &f->c), 0);
	f->ops = store_conn_ops(f->c);
	assert_string_equal(f->ops->name, use_pg ? "postgres" : "sqlite");
	/* The pool's other connections one after another, before any race: a
	 * storm of handshakes (slow under valgrind) can outlast connect_timeout. */
	{
		struct store_conn *c[POOL];

		for (int i = 0; i < POOL - 1; i++)
			assert_int_equal(store_conn_acquire(f->s, &c[i]), 0);
		for (int i = 0; i < POOL - 1; i++)
			store_conn_release(f->s, c[i]);
	}
	f->now = time_from_civil(2026, 7, 15) + 12 * 3600;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	const char *sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[160];

	store_conn_release(f->s, f->c);
	store_close(f->s);
	if (!use_pg) {
		for (size_t i = 0; i < 4; i++) {
			snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
			unlink(p);
		}
		rmdir(f->dir);
	}
	free(f);
	return 0;
}

/* Runs sql on the database itself, past the store (planting rows it did not write). */
static void raw_exec(struct fx *f, const char *sql)
{
	if (use_pg) {
		PGconn *db = PQconnectdb(f->url);
		PGresult *r = PQexec(db, sql);

		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(db));
		PQclear(r);
		PQfinish(db);
	} else {
		sqlite3 *db = NULL;

		assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			fail_msg("%s: %s", sql, sqlite3_errmsg(db));
		sqlite3_close(db);
	}
}

static struct gpu_type gpu_rec(const char *id, int64_t capacity)
{
	struct gpu_type g;

	memset(&g, 0, sizeof(g));
	snprintf(g.id, sizeof(g.id), "%s", id);
	snprintf(g.name, sizeof(g.name), "GPU %s", id);
	g.price_micros = 3600000;
	strcpy(g.price_date, "2026-07-01");
	strcpy(g.price_source, "admin");
	g.capacity = capacity;
	return g;
}

static struct team team_rec(const char *id)
{
	struct team t;

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", id);
	snprintf(t.display_name, sizeof(t.display_name), "Team %s", id);
	t.budget_micros = INT64_C(1000000000000);
	t.period = PERIOD_MONTHLY;
	strcpy(t.thresholds_json, "[0.5]");
	return t;
}

/* A request of count GPUs of gpu for one hour, for team. */
static struct alloc_request req_rec(const char *team, const char *gpu, int64_t count)
{
	struct alloc_request r;

	memset(&r, 0, sizeof(r));
	snprintf(r.team, sizeof(r.team), "%s", team);
	strcpy(r.project, "p");
	snprintf(r.gpu_type, sizeof(r.gpu_type), "%s", gpu);
	r.gpu_count = count;
	r.max_runtime_us = INT64_C(3600000000);
	strcpy(r.labels_json, "{}");
	return r;
}

/* ---- audit helpers -------------------------------------------------------- */

struct audit_seen {
	int n;
	int stop_after; /* 0 = never stop */
	int64_t last_seq;
	bool ordered;
	char action[64];  /* count rows with this action ("" = all) */
	char object[STORE_ID_LEN];
	int matched;
	char after_json[1024];
};

static int audit_cb(void *ctx, const struct audit_entry *e)
{
	struct audit_seen *s = ctx;

	if (e->seq <= s->last_seq)
		s->ordered = false;
	s->last_seq = e->seq;
	s->n++;
	if ((!s->action[0] || strcmp(e->action, s->action) == 0) &&
	    (!s->object[0] || strcmp(e->object_id, s->object) == 0)) {
		s->matched++;
		snprintf(s->after_json, sizeof(s->after_json), "%s",
			 e->after_json ? e->after_json : "(null)");
	}
	return s->stop_after && s->n >= s->stop_after;
}

/* Rows of the whole log with action on object (either "" = any), one big page. */
static int audit_matching(struct fx *f, const char *action, const char *object,
			  struct audit_seen *s)
{
	char next[STORE_ID_LEN * 2];

	memset(s, 0, sizeof(*s));
	s->ordered = true;
	snprintf(s->action, sizeof(s->action), "%s", action);
	snprintf(s->object, sizeof(s->object), "%s", object);
	assert_int_equal(f->ops->audit_list(f->c, NULL, NULL, STORE_MAX_PAGE, audit_cb, s, next), 0);
	assert_string_equal(next, "");
	return s->matched;
}

/* ---- 1. creators racing on one new GPU type and one new team --------------- */

struct racer {
	struct fx *f;
	pthread_barrier_t *bar;
	int kind; /* 0 GPU type, 1 team, 2 job, 3 alert claim, 4 job take-over */
	const char *key;
	int rc;
	bool created;
	struct job *job; /* kind 2: in (id, request) and out */
	struct alert got[16];
	int ngot;
	char err[STORE_DETAIL_LEN]; /* the connection's detail of a failure */
};

static void *racer_run(void *p)
{
	struct racer *r = p;
	struct store_conn *c = NULL;
	char detail[STORE_DETAIL_LEN] = "";

	r->rc = store_conn_acquire(r->f->s, &c);
	pthread_barrier_wait(r->bar); /* always: the others wait for it */
	if (r->rc != 0)
		return NULL;
	if (r->kind == 0) {
		struct gpu_type g = gpu_rec(r->key, 8);

		r->rc = r->f->ops->gpu_type_put(c, &ADMIN, &g, r->f->now, &r->created);
	} else if (r->kind == 1) {
		struct team t = team_rec(r->key);

		r->rc = r->f->ops->team_put(c, &ADMIN, &t, r->f->now, &r->created);
	} else if (r->kind == 2) {
		struct job *out = calloc(1, sizeof(*out));

		r->rc = out ? r->f->ops->job_begin(c, r->job, out, &r->created, detail) : ERR_NOMEM;
		if (out && r->rc == 0)
			*r->job = *out;
		free(out);
	} else if (r->kind == 4) {
		/* The job as read: nothing updated it since it was made. */
		r->rc = r->f->ops->job_take(c, r->job, r->job->created_at, detail);
	} else {
		r->rc = r->f->ops->alert_claim(c, r->f->now, 60, r->got, 16, &r->ngot);
	}
	if (r->rc != 0)
		snprintf(r->err, sizeof(r->err), "%s", c->err);
	store_conn_release(r->f->s, c);
	return NULL;
}

/* Runs RACERS racers of one kind at once (job racers get jobs[i]). */
static void race(struct fx *f, int kind, const char *key, struct racer *rs, struct job *jobs)
{
	pthread_barrier_t bar;
	pthread_t th[RACERS];

	assert_int_equal(pthread_barrier_init(&bar, NULL, RACERS), 0);
	for (int i = 0; i < RACERS; i++) {
		memset(&rs[i], 0, sizeof(rs[i]));
		rs[i].f = f;
		rs[i].bar = &bar;
		rs[i].kind = kind;
		rs[i].key = key;
		rs[i].job = jobs ? &jobs[i] : NULL;
		assert_int_equal(pthread_create(&th[i], NULL, racer_run, &rs[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&bar);
}

static int created_count(const struct racer *rs)
{
	int n = 0;

	for (int i = 0; i < RACERS; i++) {
		if (rs[i].rc != 0)
			fail_msg("racer %d: %s (%s)", i, err_name(rs[i].rc), rs[i].err);
		n += rs[i].created;
	}
	return n;
}

static void test_put_races(void **state)
{
	struct fx *f = *state;
	struct racer rs[RACERS];
	struct audit_seen s;
	struct gpu_type g;
	struct team t;

	race(f, 0, "b200", rs, NULL);
	assert_int_equal(created_count(rs), 1); /* every racer succeeded, one created it */
	assert_int_equal(f->ops->gpu_type_get(f->c, "b200", &g), 0);
	assert_int_equal(g.capacity, 8);
	assert_int_equal(g.allocated, 0);
	assert_int_equal(audit_matching(f, "gpu_type.create", "b200", &s), 1);
	assert_int_equal(audit_matching(f, "gpu_type.update", "b200", &s), RACERS - 1);

	race(f, 1, "vision", rs, NULL);
	assert_int_equal(created_count(rs), 1);
	assert_int_equal(f->ops->team_get(f->c, "vision", &t), 0);
	assert_int_equal(t.created_at, f->now);
	assert_int_equal(audit_matching(f, "team.create", "vision", &s), 1);
	assert_int_equal(audit_matching(f, "team.update", "vision", &s), RACERS - 1);
	assert_true(s.ordered);
}

/* ---- 2. catalog seeding and lists ------------------------------------------ */

struct ids {
	char v[8][STORE_ID_LEN];
	int n;
	int stop_after;
};

static int team_id_cb(void *ctx, const struct team *t)
{
	struct ids *x = ctx;

	if (x->n < 8)
		snprintf(x->v[x->n], STORE_ID_LEN, "%s", t->id);
	x->n++;
	return x->stop_after && x->n >= x->stop_after;
}

static int gpu_id_cb(void *ctx, const struct gpu_type *g)
{
	struct ids *x = ctx;

	if (x->n < 8)
		snprintf(x->v[x->n], STORE_ID_LEN, "%s", g->id);
	x->n++;
	return 0;
}

static void test_seed_and_lists(void **state)
{
	struct fx *f = *state;
	struct gpu_type seed[2] = {gpu_rec("h100", 16), gpu_rec("l4", 4)};
	const char *scope[] = {"c", "zz", "a"};
	const char *big[65];
	struct audit_seen s;
	struct ids x;
	bool created;

	/* h100 exists (and keeps its capacity): the seed inserts l4 only. */
	struct gpu_type h = gpu_rec("h100", 99);
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &h, f->now, &created), 0);
	assert_true(created);
	assert_int_equal(f->ops->gpu_type_seed(f->c, seed, 2, f->now), 0);
	assert_int_equal(audit_matching(f, "gpu_type.seed", "", &s), 1);
	assert_string_equal(s.after_json, "{\"count\":1}");
	assert_int_equal(f->ops->gpu_type_seed(f->c, seed, 2, f->now), 0); /* nothing new: no row */
	assert_int_equal(audit_matching(f, "gpu_type.seed", "", &s), 1);
	memset(&x, 0, sizeof(x));
	assert_int_equal(f->ops->gpu_type_list(f->c, gpu_id_cb, &x), 0);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.v[0], "h100");
	assert_string_equal(x.v[1], "l4");
	assert_int_equal(f->ops->gpu_type_get(f->c, "h100", &h), 0);
	assert_int_equal(h.capacity, 99);

	for (const char *id = "abc"; *id; id++) {
		char one[2] = {*id, '\0'};
		struct team t = team_rec(one);

		assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
	}
	memset(&x, 0, sizeof(x));
	assert_int_equal(f->ops->team_list(f->c, NULL, 0, team_id_cb, &x), 0);
	assert_int_equal(x.n, 3);
	memset(&x, 0, sizeof(x));
	assert_int_equal(f->ops->team_list(f->c, scope, 3, team_id_cb, &x), 0);
	assert_int_equal(x.n, 2); /* in id order, the unknown one absent */
	assert_string_equal(x.v[0], "a");
	assert_string_equal(x.v[1], "c");
	memset(&x, 0, sizeof(x));
	assert_int_equal(f->ops->team_list(f->c, scope, 0, team_id_cb, &x), 0);
	assert_int_equal(x.n, 0); /* an empty scope sees nothing */
	memset(&x, 0, sizeof(x));
	x.stop_after = 1;
	assert_int_equal(f->ops->team_list(f->c, NULL, 0, team_id_cb, &x), 0);
	assert_int_equal(x.n, 1);
	/* A scope over the statement's parameter limit fails: never a cut list. */
	for (int i = 0; i < 65; i++)
		big[i] = "a";
	memset(&x, 0, sizeof(x));
	assert_true(f->ops->team_list(f->c, big, 65, team_id_cb, &x) < 0);
	assert_int_equal(x.n, 0);
	assert_int_equal(f->ops->ping(f->c), 0);
}

/* ---- 3. audit pages -------------------------------------------------------- */

static void test_audit_pages(void **state)
{
	struct fx *f = *state;
	char cursor[STORE_ID_LEN * 2] = "", next[STORE_ID_LEN * 2];
	struct audit_seen s;
	int pages = 0;
	bool created;

	for (int i = 0; i < 5; i++) {
		char id[8];
		struct gpu_type g;

		snprintf(id, sizeof(id), "g%d", i);
		g = gpu_rec(id, 1);
		assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
	}
	struct team t1 = team_rec("t1"), t2 = team_rec("t2");
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t1, f->now, &created), 0);
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t2, f->now, &created), 0);

	/* Pages of 2 walk all 7 rows in order; the last page has no cursor. */
	memset(&s, 0, sizeof(s));
	s.ordered = true;
	do {
		assert_int_equal(f->ops->audit_list(f->c, NULL, cursor[0] ? cursor : NULL, 2, audit_cb,
						    &s, next),
				 0);
		snprintf(cursor, sizeof(cursor), "%s", next);
		pages++;
	} while (cursor[0] && pages < 10);
	assert_int_equal(s.n, 7);
	assert_int_equal(pages, 4);
	assert_true(s.ordered);

	/* One team's rows only. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(f->ops->audit_list(f->c, "t2", NULL, 50, audit_cb, &s, next), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.matched, 1);
	assert_string_equal(next, "");

	/* The caller stops: one row, no cursor; a bad cursor is refused. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	assert_int_equal(f->ops->audit_list(f->c, NULL, NULL, 50, audit_cb, &s, next), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(next, "");
	assert_int_equal(f->ops->audit_list(f->c, NULL, "x1", 50, audit_cb, &s, next), ERR_INVALID);
	assert_int_equal(f->ops->audit_list(f->c, NULL, "99999999999999999999", 50, audit_cb, &s, next),
			 ERR_INVALID);
}

/* Every row of filter f, walked in pages of 2 (each page with the same
 * filters and the last page's cursor): how many, in order. */
static int audit_walk(struct fx *f, struct audit_filter q, struct audit_seen *s)
{
	char cursor[STORE_ID_LEN * 2] = "", next[STORE_ID_LEN * 2];
	int pages = 0;

	memset(s, 0, sizeof(*s));
	s->ordered = true;
	q.limit = 2;
	do {
		q.cursor = cursor[0] ? cursor : NULL;
		assert_int_equal(f->ops->audit_find(f->c, &q, audit_cb, s, next), 0);
		snprintf(cursor, sizeof(cursor), "%s", next);
		pages++;
	} while (cursor[0] && pages < 20);
	assert_true(s->ordered);
	return s->n;
}

static void test_audit_filters(void **state)
{
	struct fx *f = *state;
	static const struct actor BOB = {"tok_bob", "bob", ROLE_ADMIN};
	struct audit_seen s;
	bool created;

	/* At now: admin creates g0, t1; at now + 100: bob updates g0 and
	 * creates t2; at now + 200: admin updates t1 three times. */
	struct gpu_type g = gpu_rec("g0", 1);
	struct team t1 = team_rec("t1"), t2 = team_rec("t2");
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t1, f->now, &created), 0);
	g.capacity = 2;
	assert_int_equal(f->ops->gpu_type_put(f->c, &BOB, &g, f->now + 100, &created), 0);
	assert_int_equal(f->ops->team_put(f->c, &BOB, &t2, f->now + 100, &created), 0);
	for (int i = 0; i < 3; i++) {
		t1.budget_micros += 1000000;
		assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t1, f->now + 200, &created), 0);
	}

	struct audit_filter q = {0};
	assert_int_equal(audit_walk(f, q, &s), 7);

	q = (struct audit_filter){.action = "team.update"};
	assert_int_equal(audit_walk(f, q, &s), 3);
	q = (struct audit_filter){.action = "team"}; /* exact, not a prefix */
	assert_int_equal(audit_walk(f, q, &s), 0);

	/* The actor by token id or by name. */
	q = (struct audit_filter){.actor = "bob"};
	assert_int_equal(audit_walk(f, q, &s), 2);
	q = (struct audit_filter){.actor = "tok_bob"};
	assert_int_equal(audit_walk(f, q, &s), 2);
	q = (struct audit_filter){.actor = "tok_admin"};
	assert_int_equal(audit_walk(f, q, &s), 5);

	/* since is inclusive, until exclusive. */
	q = (struct audit_filter){.since = f->now + 100};
	assert_int_equal(audit_walk(f, q, &s), 5);
	q = (struct audit_filter){.until = f->now + 100};
	assert_int_equal(audit_walk(f, q, &s), 2);
	q = (struct audit_filter){.since = f->now + 100, .until = f->now + 200};
	assert_int_equal(audit_walk(f, q, &s), 2);

	/* Filters combine, and every page of a walk keeps them. */
	q = (struct audit_filter){.team = "t1", .actor = "admin", .action = "team.update",
				  .since = f->now + 1};
	assert_int_equal(audit_walk(f, q, &s), 3);
	q = (struct audit_filter){.team = "t2", .actor = "admin"};
	assert_int_equal(audit_walk(f, q, &s), 0);
	q = (struct audit_filter){.action = "gpu_type.update", .actor = "bob"};
	assert_int_equal(audit_walk(f, q, &s), 1);
}

/* ---- 4. jobs ---------------------------------------------------------------- */

static void job_rec(struct job *j, const char *id, const char *key, const char *hash)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", id);
	strcpy(j->token_id, "tok_admin");
	snprintf(j->idem_key, sizeof(j->idem_key), "%s", key);
	snprintf(j->request_hash, sizeof(j->request_hash), "%s", hash);
	strcpy(j->team, "nlp");
	strcpy(j->name, "train");
}

/* How many jobs are due for clean-up (of allocation only, or all). */
static int cleanup_due(struct fx *f, const char *only, struct job_cleanup *out)
{
	int n = -1;

	assert_int_equal(f->ops->job_cleanup_due(f->c, only, out, 4, &n), 0);
	return n;
}

static void test_jobs(void **state)
{
	struct fx *f = *state;
	struct job *jobs = calloc(RACERS + 2, sizeof(*jobs));
	struct racer rs[RACERS];
	char detail[STORE_DETAIL_LEN] = "";
	struct alloc_request r;
	struct alloc_outcome o;
	struct allocation a;
	struct job_cleanup jc[4];
	bool created, repeat;
	int winner = -1;

	assert_non_null(jobs);
	/* One key sent by RACERS requests at once: one job, every answer names it. */
	for (int i = 0; i < RACERS; i++) {
		char id[16];

		snprintf(id, sizeof(id), "job_r%d", i);
		job_rec(&jobs[i], id, "key-1", "hash-1");
	}
	race(f, 2, NULL, rs, jobs);
	assert_int_equal(created_count(rs), 1);
	for (int i = 0; i < RACERS; i++)
		if (rs[i].created)
			winner = i;
	for (int i = 0; i < RACERS; i++)
		assert_string_equal(jobs[i].id, jobs[winner].id);

	/* The same key with another request is refused and changes nothing. */
	job_rec(&jobs[0], "job_other", "key-1", "hash-2");
	assert_int_equal(f->ops->job_begin(f->c, &jobs[0], &jobs[1], &created, detail),
			 ERR_IDEMPOTENCY);
	assert_false(created);
	assert_non_null(strstr(detail, "was used with a different request"));
	assert_int_equal(f->ops->job_get(f->c, "job_other", &jobs[1]), ERR_NOT_FOUND);

	/* Without a key every request is a job. */
	job_rec(&jobs[0], "job_k1", "", "h");
	assert_int_equal(f->ops->job_begin(f->c, &jobs[0], &jobs[1], &created, detail), 0);
	assert_true(created);
	job_rec(&jobs[0], "job_k2", "", "h");
	assert_int_equal(f->ops->job_begin(f->c, &jobs[0], &jobs[1], &created, detail), 0);
	assert_true(created);

	/* Retries of one job whose lease ran out, at once: one takes it over,
	 * the others lose the compare-and-set and change nothing. */
	job_rec(&jobs[0], "job_stale", "key-stale", "hash-s");
	jobs[0].created_at = jobs[0].updated_at = f->now - 3600;
	assert_int_equal(f->ops->job_begin(f->c, &jobs[0], &jobs[1], &created, detail), 0);
	for (int i = RACERS - 1; i >= 0; i--) {
		jobs[i] = jobs[0];
		jobs[i].updated_at = f->now + i;
	}
	race(f, 4, NULL, rs, jobs);
	winner = -1;
	for (int i = 0; i < RACERS; i++) {
		if (rs[i].rc == 0) {
			assert_int_equal(winner, -1); /* no second winner */
			winner = i;
		} else {
			assert_int_equal(rs[i].rc, ERR_CONFLICT);
			assert_non_null(strstr(rs[i].err, "was taken over by another request"));
		}
	}
	assert_int_not_equal(winner, -1);
	assert_int_equal(f->ops->job_get(f->c, "job_stale", &jobs[1]), 0);
	assert_int_equal(jobs[1].updated_at, f->now + winner);
	assert_int_equal(jobs[1].status, 0);
	/* The old value read again loses too. */
	assert_int_equal(f->ops->job_take(f->c, &jobs[0], f->now - 3600, detail), ERR_CONFLICT);

	job_rec(&jobs[0], "job_nope", "", "h");
	assert_int_equal(f->ops->job_update(f->c, &jobs[0], detail), ERR_NOT_FOUND);

	/* The clean-up queue: a 201 job whose allocation ended, until done. */
	struct gpu_type g = gpu_rec("h100", 8);
	struct team t = team_rec("nlp");
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
	r = req_rec("nlp", "h100", 1);
	strcpy(r.purpose, "job");
	assert_int_equal(f->ops->allocate(f->c, &ADMIN, &r, 3600, f->now, NULL, &o, detail), 0);

	/* An outcome as large as the record holds comes back whole. */
	assert_int_equal(f->ops->job_get(f->c, "job_k1", &jobs[0]), 0);
	snprintf(jobs[0].allocation_id, sizeof(jobs[0].allocation_id), "%s", o.alloc.id);
	jobs[0].status = 201;
	memset(jobs[0].body, 'x', sizeof(jobs[0].body) - 1);
	jobs[0].body[sizeof(jobs[0].body) - 1] = '\0';
	jobs[0].updated_at = f->now + 1;
	assert_int_equal(f->ops->job_update(f->c, &jobs[0], detail), 0);
	assert_int_equal(f->ops->job_get(f->c, "job_k1", &jobs[1]), 0);
	assert_int_equal(jobs[1].status, 201);
	assert_int_equal(strlen(jobs[1].body), sizeof(jobs[1].body) - 1);
	assert_string_equal(jobs[1].allocation_id, o.alloc.id);
	assert_int_equal(jobs[1].updated_at, f->now + 1);

	assert_int_equal(cleanup_due(f, NULL, jc), 0); /* the allocation is live */
	assert_int_equal(f->ops->alloc_transition(f->c, &ADMIN, o.alloc.id, ALLOC_EV_CANCEL,
						  f->now + 2, f->now + 2, &a, &repeat, detail),
			 0);
	assert_int_equal(cleanup_due(f, NULL, jc), 1);
	assert_string_equal(jc[0].id, "job_k1");
	assert_string_equal(jc[0].allocation_id, o.alloc.id);
	assert_int_equal(jc[0].status, ALLOC_CANCELLED);
	assert_int_equal(cleanup_due(f, o.alloc.id, jc), 1);
	assert_int_equal(cleanup_due(f, "alloc_other", jc), 0);
	assert_int_equal(f->ops->job_cleanup_done(f->c, "job_k1", f->now + 3), 0);
	assert_int_equal(cleanup_due(f, NULL, jc), 0);
	free(jobs);
}

/* ---- 5. alerts -------------------------------------------------------------- */

static void test_alerts(void **state)
{
	struct fx *f = *state;
	const char *urls[] = {"http://hook/a", "http://hook/b"};
	struct alert a, got[16], all[16];
	struct racer rs[RACERS];
	char seen[16][64];
	int created = -1, total = 0, n = -1;

	memset(&a, 0, sizeof(a));
	strcpy(a.team, "nlp");
	a.period_start = time_from_civil(2026, 7, 1);
	a.budget = 1000;
	a.committed = 600;
	/* 4 thresholds x 2 URLs = 8 alerts; recording one again adds nothing. */
	for (int i = 0; i < 4; i++) {
		a.threshold_ppm = 500000 + 100000 * i;
		assert_int_equal(f->ops->alert_record(f->c, &a, urls, 2, f->now, &created), 0);
		assert_int_equal(created, 2);
	}
	assert_int_equal(f->ops->alert_record(f->c, &a, urls, 2, f->now, &created), 0);
	assert_int_equal(created, 0);

	/* Claimers at once: every alert claimed by exactly one of them. */
	race(f, 3, NULL, rs, NULL);
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(rs[i].rc, 0);
		for (int k = 0; k < rs[i].ngot; k++) {
			const struct alert *x = &rs[i].got[k];

			assert_true(total < 16);
			snprintf(seen[total], sizeof(seen[total]), "%lld %s",
				 (long long)x->threshold_ppm, x->url);
			for (int j = 0; j < total; j++)
				assert_string_not_equal(seen[j], seen[total]);
			assert_string_equal(x->team, "nlp");
			assert_int_equal(x->committed, 600);
			all[total++] = *x;
		}
	}
	assert_int_equal(total, 8);
	assert_int_equal(f->ops->alert_claim(f->c, f->now, 60, got, 16, &n), 0);
	assert_int_equal(n, 0); /* all leased */

	/* One delivered, one failed until now + 10; the others' leases end at now + 60. */
	assert_int_equal(f->ops->alert_done(f->c, &all[0], true, 0, NULL, f->now), 0);
	assert_int_equal(f->ops->alert_done(f->c, &all[1], false, f->now + 10, "boom", f->now), 0);
	assert_int_equal(f->ops->alert_claim(f->c, f->now + 10, 60, got, 16, &n), 0);
	assert_int_equal(n, 1); /* the failed one, due again */
	assert_string_equal(got[0].url, all[1].url);
	assert_int_equal(got[0].threshold_ppm, all[1].threshold_ppm);
	assert_int_equal(got[0].attempts, 1);
	assert_int_equal(f->ops->alert_claim(f->c, f->now + 61, 60, got, 16, &n), 0);
	assert_int_equal(n, 6); /* the leases ran out; the delivered one never comes back */
	assert_int_equal(f->ops->alert_claim(f->c, f->now + 200, 60, got, 3, &n), 0);
	assert_int_equal(n, 3); /* at most max */
}

/* ---- 6. rows the store cannot read ------------------------------------------ */

/* Puts team `team` and GPU type `gpu` (64 GPUs). */
static void put_team_gpu(struct fx *f, const char *team, const char *gpu)
{
	struct team t = team_rec(team);
	struct gpu_type g = gpu_rec(gpu, 64);
	bool created;

	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
}

/* Names longer than the records hold for team `team` and GPU type `gpu`
 * (longtext: 201 bytes, filled here). */
static void plant_long_names(struct fx *f, const char *team, const char *gpu, char *longtext)
{
	char sql[512];

	memset(longtext, 'n', 200);
	longtext[200] = '\0';
	snprintf(sql, sizeof(sql), "UPDATE teams SET display_name = '%s' WHERE id = '%s'", longtext,
		 team);
	raw_exec(f, sql);
	snprintf(sql, sizeof(sql), "UPDATE gpu_types SET name = '%s' WHERE id = '%s'", longtext, gpu);
	raw_exec(f, sql);
}

static void test_bad_rows(void **state)
{
	struct fx *f = *state;
	char sql[512], longtext[201];
	char cursor[STORE_ID_LEN * 2] = "", next[STORE_ID_LEN * 2];
	struct audit_seen s;
	long bad0 = store_bad_rows_total();
	struct gpu_type g;
	struct team t;
	struct ids x;
	bool created;
	int pages = 0, total;

	for (const char *id = "abc"; *id; id++) {
		char one[2] = {*id, '\0'};

		t = team_rec(one);
		assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
		g = gpu_rec(one, 1);
		assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
	}
	total = audit_matching(f, "", "", &s);
	/* Names longer than the records hold, and an audit row with a long action. */
	plant_long_names(f, "b", "a", longtext);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO audit(at, actor_id, actor_name, action, object_type, object_id, team)"
		 " VALUES (1, 'x', 'x', '%.100s', 'team', 'b', '')",
		 longtext);
	raw_exec(f, sql);

	/* The lists go on past them; reading one alone fails; each is counted. */
	memset(&x, 0, sizeof(x));
	assert_int_equal(f->ops->team_list(f->c, NULL, 0, team_id_cb, &x), 0);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.v[0], "a");
	assert_string_equal(x.v[1], "c");
	assert_int_equal(f->ops->team_get(f->c, "b", &t), ERR_STORE);
	memset(&x, 0, sizeof(x));
	assert_int_equal(f->ops->gpu_type_list(f->c, gpu_id_cb, &x), 0);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.v[0], "b");
	assert_int_equal(f->ops->gpu_type_get(f->c, "a", &g), ERR_STORE);
	assert_true(store_bad_rows_total() >= bad0 + 2);

	/* Two rows after the bad one: pages of one row walk past it to the end,
	 * never a silent stop before them. */
	for (const char *id = "de"; *id; id++) {
		char one[2] = {*id, '\0'};

		t = team_rec(one);
		assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
	}
	total += 2;
	memset(&s, 0, sizeof(s));
	s.ordered = true;
	do {
		assert_int_equal(f->ops->audit_list(f->c, NULL, cursor[0] ? cursor : NULL, 1, audit_cb,
						    &s, next),
				 0);
		snprintf(cursor, sizeof(cursor), "%s", next);
		pages++;
	} while (cursor[0] && pages < 20);
	assert_int_equal(s.n, total); /* every good row, not the bad one */
	assert_true(s.ordered);
	assert_true(store_bad_rows_total() >= bad0 + 3);
}

static int token_good_cb(void *ctx, const struct token *t)
{
	*(int *)ctx += strcmp(t->id, "tok_good") == 0 ? 1 : 100; /* tok_bad must not come */
	return 0;
}

/* Counts the allocations listed, keeping the last one's id. */
static int alloc_last_cb(void *ctx, const struct allocation *a)
{
	struct ids *x = ctx;

	memcpy(x->v[0], a->id, STORE_ID_LEN);
	return ++x->n > 8;
}

/*
 * Each rule of the rows' column tables (db_read_cols): a name that is not one
 * of its enum (period, role, status) and a text longer than its field make a
 * bad row, a purpose longer than its field a row that cannot be rendered;
 * one read alone is an error, a list skips it, and nothing is cut silently.
 */
static void test_bad_row_kinds(void **state)
{
	struct fx *f = *state;
	struct alloc_filter flt = {.status = -1, .limit = 10};
	struct alloc_outcome o;
	struct alloc_request rq = req_rec("p", "g", 1);
	struct allocation a;
	struct gpu_type g;
	struct team t;
	struct token tk;
	struct ids x;
	char sql[2048], detail[STORE_DETAIL_LEN], ids[3][STORE_ID_LEN];
	long bad0 = store_bad_rows_total();
	int n = 0;

	for (int i = 0; i < 2; i++) {
		put_team_gpu(f, i ? "q" : "p", i ? "h" : "g");
		memset(&tk, 0, sizeof(tk));
		strcpy(tk.id, i ? "tok_bad" : "tok_good");
		strcpy(tk.name, "n");
		tk.role = ROLE_MEMBER;
		strcpy(tk.teams_json, "[\"p\"]");
		assert_int_equal(f->ops->token_create(f->c, &ADMIN, &tk, i ? "hb" : "hg", f->now), 0);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(f->ops->allocate(f->c, &ADMIN, &rq, 86400, f->now + i, NULL, &o,
						  detail),
				 0);
		snprintf(ids[i], STORE_ID_LEN, "%s", o.alloc.id);
	}
	raw_exec(f, "UPDATE teams SET period = 'fortnightly' WHERE id = 'q'");
	raw_exec(f, "UPDATE gpu_types SET price_date = '2026-07-01 and more' WHERE id = 'h'");
	raw_exec(f, "UPDATE tokens SET role = 'root' WHERE id = 'tok_bad'");
	snprintf(sql, sizeof(sql), "UPDATE allocations SET status = 'lost' WHERE id = '%s'", ids[1]);
	raw_exec(f, sql);
	snprintf(sql, sizeof(sql), "UPDATE allocations SET purpose = '%01030d' WHERE id = '%s'", 7,
		 ids[2]);
	raw_exec(f, sql);

	assert_int_equal(f->ops->team_get(f->c, "q", &t), ERR_STORE);
	assert_int_equal(f->ops->team_get(f->c, "p", &t), 0);
	assert_int_equal(t.period, PERIOD_MONTHLY);
	memset(&x, 0, sizeof(x));
	assert_int_equal(f->ops->team_list(f->c, NULL, 0, team_id_cb, &x), 0);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.v[0], "p");
	assert_int_equal(f->ops->gpu_type_get(f->c, "h", &g), ERR_STORE);
	assert_int_equal(f->ops->gpu_type_get(f->c, "g", &g), 0);
	assert_string_equal(g.price_date, "2026-07-01");
	memset(&x, 0, sizeof(x));
	assert_int_equal(f->ops->gpu_type_list(f->c, gpu_id_cb, &x), 0);
	assert_int_equal(x.n, 1);
	assert_int_equal(f->ops->token_by_hash(f->c, "hb", &tk), ERR_STORE);
	assert_int_equal(f->ops->token_by_hash(f->c, "hg", &tk), 0);
	assert_int_equal(tk.role, ROLE_MEMBER);
	assert_int_equal(f->ops->token_list(f->c, token_good_cb, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(f->ops->alloc_get(f->c, ids[1], &a), ERR_STORE);
	assert_int_equal(f->ops->alloc_get(f->c, ids[2], &a), ERR_STORE);
	assert_int_equal(f->ops->alloc_get(f->c, ids[0], &a), 0);
	assert_int_equal(a.status, ALLOC_APPROVED);
	memset(&x, 0, sizeof(x));
	assert_int_equal(f->ops->alloc_list(f->c, &flt, alloc_last_cb, &x, detail), 0);
	assert_int_equal(x.n, 1);
	assert_string_equal(x.v[0], ids[0]);
	assert_true(store_bad_rows_total() >= bad0 + 5); /* one a list */
}

/* ---- jobs list ------------------------------------------------------------ */

struct jobs_seen {
	int n;
	char ids[8][STORE_ID_LEN];
};

static int job_seen_cb(void *ctx, const struct job *j)
{
	struct jobs_seen *s = ctx;

	if (s->n < 8)
		snprintf(s->ids[s->n], STORE_ID_LEN, "%s", j->id);
	s->n++;
	return 0;
}

/* Walks filter q in pages of 2 into s. */
static void jobs_walk(struct fx *f, struct job_filter q, struct jobs_seen *s)
{
	char cursor[STORE_ID_LEN * 2] = "", next[STORE_ID_LEN * 2];
	int pages = 0;

	memset(s, 0, sizeof(*s));
	q.limit = 2;
	do {
		q.cursor = cursor[0] ? cursor : NULL;
		assert_int_equal(f->ops->job_list(f->c, &q, job_seen_cb, s, next), 0);
		snprintf(cursor, sizeof(cursor), "%s", next);
		pages++;
	} while (cursor[0] && pages < 20);
}

static void test_job_list(void **state)
{
	struct fx *f = *state;
	char detail[STORE_DETAIL_LEN], next[STORE_ID_LEN * 2];
	struct job *j = calloc(2, sizeof(*j));
	struct jobs_seen s;
	bool created;

	assert_non_null(j);
	/* Five jobs: job_a1..a3 of nlp (a2 and a3 at the same second), b1 and b2 of cv. */
	static const struct { const char *id, *team; int64_t dt; } rows[] = {
		{"job_a1", "nlp", 0}, {"job_b1", "cv", 10}, {"job_a2", "nlp", 20},
		{"job_a3", "nlp", 20}, {"job_b2", "cv", 30},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		job_rec(&j[0], rows[i].id, "", "h");
		snprintf(j[0].team, sizeof(j[0].team), "%s", rows[i].team);
		j[0].created_at = j[0].updated_at = f->now + rows[i].dt;
		assert_int_equal(f->ops->job_begin(f->c, &j[0], &j[1], &created, detail), 0);
	}

	/* Newest first, ties by id (descending), across pages. */
	jobs_walk(f, (struct job_filter){0}, &s);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.ids[0], "job_b2");
	assert_string_equal(s.ids[1], "job_a3");
	assert_string_equal(s.ids[2], "job_a2");
	assert_string_equal(s.ids[3], "job_b1");
	assert_string_equal(s.ids[4], "job_a1");

	/* One team; a member's scope; an empty scope sees nothing. */
	jobs_walk(f, (struct job_filter){.team = "cv"}, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.ids[0], "job_b2");
	const char *scope[] = {"nlp"};
	jobs_walk(f, (struct job_filter){.teams = scope, .nteams = 1}, &s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.ids[2], "job_a1");
	jobs_walk(f, (struct job_filter){.team = "cv", .teams = scope, .nteams = 1}, &s);
	assert_int_equal(s.n, 0);
	jobs_walk(f, (struct job_filter){.teams = scope, .nteams = 0}, &s);
	assert_int_equal(s.n, 0);

	/* A bad cursor is refused: also a key past int64 (strtoll would clamp it
	 * to INT64_MAX and answer the first page again). */
	struct job_filter q = {.cursor = "nope", .limit = 2};
	assert_int_equal(f->ops->job_list(f->c, &q, job_seen_cb, &s, next), ERR_INVALID);
	q.cursor = "99999999999999999999:job_a1";
	assert_int_equal(f->ops->job_list(f->c, &q, job_seen_cb, &s, next), ERR_INVALID);
	free(j);
}

/* ---- 7. partial updates, retirement, admins (issue 16) ---------------------- */

static int alloc_one(struct fx *f, const char *team, const char *gpu, int64_t now,
		     struct alloc_outcome *o)
{
	char detail[STORE_DETAIL_LEN] = "";
	struct alloc_request r;

	memset(&r, 0, sizeof(r));
	snprintf(r.team, sizeof(r.team), "%s", team);
	snprintf(r.project, sizeof(r.project), "p");
	snprintf(r.gpu_type, sizeof(r.gpu_type), "%s", gpu);
	r.gpu_count = 1;
	r.max_runtime_us = INT64_C(3600000000);
	strcpy(r.labels_json, "{}");
	return f->ops->allocate(f->c, &ADMIN, &r, 86400, now, NULL, o, detail);
}

static void test_team_patch_retire(void **state)
{
	struct fx *f = *state;
	struct team t = team_rec("speech"), got, p;
	struct gpu_type g = gpu_rec("h100", 8);
	struct alloc_outcome o;
	struct audit_seen s;
	bool created;

	strcpy(t.admins_json, "[\"jane@example.com\",\"user:default/bob\"]");
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
	assert_int_equal(f->ops->team_get(f->c, "speech", &got), 0);
	assert_string_equal(got.admins_json, "[\"jane@example.com\",\"user:default/bob\"]");
	assert_string_equal(store_team_admins_json(&got), got.admins_json);

	/* A budget alone: every other field is kept. */
	memset(&p, 0, sizeof(p));
	strcpy(p.id, "speech");
	p.budget_micros = 42;
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &p, TEAM_F_BUDGET, f->now + 1, &got), 0);
	assert_int_equal(f->ops->team_get(f->c, "speech", &got), 0);
	assert_int_equal(got.budget_micros, 42);
	assert_string_equal(got.display_name, "Team speech");
	assert_string_equal(got.thresholds_json, "[0.5]");
	assert_int_equal(got.period, PERIOD_MONTHLY);
	assert_string_equal(got.admins_json, t.admins_json);
	assert_int_equal(got.created_at, f->now);
	assert_int_equal(got.updated_at, f->now + 1);
	assert_int_equal(audit_matching(f, "team.update", "speech", &s), 1);
	assert_non_null(strstr(s.after_json, "\"budget\":\"0.000042\""));
	/* Admins alone; an unknown team is not created by a patch. */
	strcpy(p.admins_json, "[]");
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &p, TEAM_F_ADMINS, f->now + 2, &got), 0);
	assert_string_equal(got.admins_json, "[]");
	assert_int_equal(got.budget_micros, 42);
	strcpy(p.id, "nope");
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &p, TEAM_F_BUDGET, f->now, &got),
			 ERR_NOT_FOUND);
	assert_int_equal(f->ops->team_get(f->c, "nope", &got), ERR_NOT_FOUND);

	/* Retire: once (a second retire keeps the first instant, no audit row). */
	p.budget_micros = INT64_C(1000000000000);
	strcpy(p.id, "speech");
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &p, TEAM_F_BUDGET, f->now + 3, &got), 0);
	assert_int_equal(alloc_one(f, "speech", "h100", f->now + 3, &o), 0); /* before: approved */
	char live[STORE_ID_LEN];
	snprintf(live, sizeof(live), "%s", o.alloc.id);
	p.retired_at = f->now + 4;
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &p, TEAM_F_RETIRED, f->now + 4, &got), 0);
	assert_int_equal(got.retired_at, f->now + 4);
	p.retired_at = f->now + 5;
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &p, TEAM_F_RETIRED, f->now + 5, &got), 0);
	assert_int_equal(got.retired_at, f->now + 4);
	assert_int_equal(audit_matching(f, "team.retire", "speech", &s), 1);

	/* Retired: no new allocation (the field named), no change by put or patch. */
	memset(&o, 0, sizeof(o));
	assert_int_equal(alloc_one(f, "speech", "h100", f->now + 6, &o), ERR_CONFLICT);
	assert_string_equal(o.field, "team");
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &p, TEAM_F_BUDGET, f->now + 6, &got),
			 ERR_CONFLICT);
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now + 6, &created), ERR_CONFLICT);
	assert_int_equal(f->ops->team_get(f->c, "speech", &got), 0);
	assert_int_equal(got.budget_micros, INT64_C(1000000000000));
	assert_int_equal(got.retired_at, f->now + 4);
	/* The allocation approved before goes on and completes. */
	struct allocation a;
	bool repeat;
	char detail[STORE_DETAIL_LEN];
	assert_int_equal(f->ops->alloc_transition(f->c, &ADMIN, live, ALLOC_EV_START, f->now + 7,
						  f->now + 7, &a, &repeat, detail), 0);
	assert_int_equal(f->ops->alloc_transition(f->c, &ADMIN, live, ALLOC_EV_COMPLETE, f->now + 8,
						  f->now + 8, &a, &repeat, detail), 0);
	assert_int_equal(a.status, ALLOC_COMPLETED);

	/* Reactivate (retired_at 0) with a change in the same patch. */
	p.retired_at = 0;
	p.budget_micros = 7;
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &p, TEAM_F_RETIRED | TEAM_F_BUDGET,
					    f->now + 9, &got), 0);
	assert_int_equal(got.retired_at, 0);
	assert_int_equal(got.budget_micros, 7);
	assert_int_equal(audit_matching(f, "team.reactivate", "speech", &s), 1);
	assert_non_null(strstr(s.after_json, "\"retired_at\":null"));
	assert_int_equal(audit_matching(f, "team.retire", "speech", &s), 1);
	assert_non_null(strstr(s.after_json, "\"retired_at\":\"2026-07-15T12:00:04Z\""));
}

static void test_gpu_patch_retire(void **state)
{
	struct fx *f = *state;
	struct gpu_type g = gpu_rec("h100", 8), got, p;
	struct team t = team_rec("ml");
	struct alloc_outcome o;
	struct audit_seen s;
	bool created;

	strcpy(g.price_source, "aws p5.48xlarge");
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);

	/* Put with the same price: the provenance stays (date "" = not given). */
	g.capacity = 16;
	strcpy(g.price_source, "set by admin");
	g.price_date[0] = '\0';
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now + 1, &created), 0);
	assert_false(created);
	assert_int_equal(f->ops->gpu_type_get(f->c, "h100", &got), 0);
	assert_string_equal(got.price_source, "aws p5.48xlarge");
	assert_string_equal(got.price_date, "2026-07-01");
	assert_int_equal(got.capacity, 16);

	/* Capacity alone: name, price and provenance kept. */
	memset(&p, 0, sizeof(p));
	strcpy(p.id, "h100");
	p.capacity = 64;
	assert_int_equal(f->ops->gpu_type_patch(f->c, &ADMIN, &p, GPU_F_CAPACITY, f->now + 2, &got),
			 0);
	assert_int_equal(got.capacity, 64);
	assert_string_equal(got.name, "GPU h100");
	assert_int_equal(got.price_micros, 3600000);
	assert_string_equal(got.price_source, "aws p5.48xlarge");
	/* The same price in a patch: still kept; a new price: new source, today's date. */
	p.price_micros = 3600000;
	strcpy(p.price_source, "set by admin");
	assert_int_equal(f->ops->gpu_type_patch(f->c, &ADMIN, &p, GPU_F_PRICE, f->now + 3, &got), 0);
	assert_string_equal(got.price_source, "aws p5.48xlarge");
	p.price_micros = 4000000;
	assert_int_equal(f->ops->gpu_type_patch(f->c, &ADMIN, &p, GPU_F_PRICE, f->now + 4, &got), 0);
	assert_int_equal(f->ops->gpu_type_get(f->c, "h100", &got), 0);
	assert_int_equal(got.price_micros, 4000000);
	assert_string_equal(got.price_source, "set by admin");
	assert_string_equal(got.price_date, "2026-07-15");
	strcpy(p.id, "nope");
	assert_int_equal(f->ops->gpu_type_patch(f->c, &ADMIN, &p, GPU_F_CAPACITY, f->now, &got),
			 ERR_NOT_FOUND);

	/* Retired: no allocation of the type, no change but a reactivation. */
	strcpy(p.id, "h100");
	p.retired_at = f->now + 5;
	assert_int_equal(f->ops->gpu_type_patch(f->c, &ADMIN, &p, GPU_F_RETIRED, f->now + 5, &got),
			 0);
	assert_int_equal(got.retired_at, f->now + 5);
	assert_int_equal(audit_matching(f, "gpu_type.retire", "h100", &s), 1);
	memset(&o, 0, sizeof(o));
	assert_int_equal(alloc_one(f, "ml", "h100", f->now + 6, &o), ERR_CONFLICT);
	assert_string_equal(o.field, "gpu_type");
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now + 6, &created), ERR_CONFLICT);
	assert_int_equal(f->ops->gpu_type_patch(f->c, &ADMIN, &p, GPU_F_CAPACITY, f->now + 6, &got),
			 ERR_CONFLICT);
	p.retired_at = 0;
	assert_int_equal(f->ops->gpu_type_patch(f->c, &ADMIN, &p, GPU_F_RETIRED, f->now + 7, &got),
			 0);
	assert_int_equal(got.retired_at, 0);
	assert_int_equal(got.capacity, 64);
	assert_int_equal(alloc_one(f, "ml", "h100", f->now + 8, &o), 0);
}

/* A patch whose merged record equals the stored one writes nothing: no
 * audit row, updated_at kept, the record answered (team and GPU type). */
static void test_patch_unchanged(void **state)
{
	struct fx *f = *state;
	struct team t = team_rec("vision"), tp, tgot;
	struct gpu_type g = gpu_rec("a100", 8), gp, ggot;
	struct audit_seen s;
	bool created;

	strcpy(t.namespaces, "vision,vision-dev");
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);

	/* Every field a team patch names, with the values it has ("" namespaces:
	 * keep them), and a reactivation of an active team. */
	tp = t;
	tp.namespaces[0] = '\0';
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &tp,
					    TEAM_F_DISPLAY_NAME | TEAM_F_BUDGET | TEAM_F_PERIOD |
						    TEAM_F_THRESHOLDS | TEAM_F_ADMINS |
						    TEAM_F_NAMESPACES | TEAM_F_RETIRED,
					    f->now + 1, &tgot), 0);
	assert_int_equal(tgot.updated_at, f->now);
	assert_int_equal(tgot.budget_micros, t.budget_micros);
	assert_string_equal(tgot.namespaces, "vision,vision-dev");
	assert_string_equal(tgot.admins_json, "[]");
	strcpy(tp.admins_json, "[]");
	strcpy(tp.namespaces, "vision,vision-dev");
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &tp, TEAM_F_ADMINS | TEAM_F_NAMESPACES,
					    f->now + 2, &tgot), 0);
	assert_int_equal(f->ops->team_get(f->c, "vision", &tgot), 0);
	assert_int_equal(tgot.updated_at, f->now);
	assert_int_equal(audit_matching(f, "team.update", "vision", &s), 0);
	/* One changed field is written and audited. */
	tp.budget_micros = 5;
	assert_int_equal(f->ops->team_patch(f->c, &ADMIN, &tp, TEAM_F_BUDGET, f->now + 3, &tgot), 0);
	assert_int_equal(tgot.updated_at, f->now + 3);
	assert_int_equal(audit_matching(f, "team.update", "vision", &s), 1);

	/* The GPU type: the same name, capacity, price (its provenance kept)
	 * and date, and a reactivation of an active type. */
	gp = g;
	strcpy(gp.price_source, "someone else");
	assert_int_equal(f->ops->gpu_type_patch(f->c, &ADMIN, &gp,
						GPU_F_NAME | GPU_F_CAPACITY | GPU_F_PRICE |
							GPU_F_PRICE_DATE | GPU_F_RETIRED,
						f->now + 4, &ggot), 0);
	assert_int_equal(ggot.updated_at, f->now);
	assert_string_equal(ggot.price_source, "admin");
	assert_int_equal(ggot.capacity, 8);
	assert_int_equal(f->ops->gpu_type_get(f->c, "a100", &ggot), 0);
	assert_int_equal(ggot.updated_at, f->now);
	assert_int_equal(audit_matching(f, "gpu_type.update", "a100", &s), 0);
	gp.capacity = 9;
	assert_int_equal(f->ops->gpu_type_patch(f->c, &ADMIN, &gp, GPU_F_CAPACITY, f->now + 5, &ggot),
			 0);
	assert_int_equal(ggot.updated_at, f->now + 5);
	assert_int_equal(audit_matching(f, "gpu_type.update", "a100", &s), 1);
}

/* ---- 7. a bad row in a concurrent allocate batch --------------------------- */

struct allocator {
	struct fx *f;
	pthread_barrier_t *bar;
	const char *team, *gpu;
	int64_t count; /* GPUs asked (0: one) */
	int rc;
	char detail[STORE_DETAIL_LEN];
	struct alloc_outcome o;
};

static void *allocator_run(void *p)
{
	struct allocator *a = p;
	struct store_conn *c = NULL;
	struct alloc_request r;

	r = req_rec(a->team, a->gpu, a->count ? a->count : 1);
	a->rc = store_conn_acquire(a->f->s, &c);
	pthread_barrier_wait(a->bar); /* always: the others wait for it */
	if (a->rc != 0)
		return NULL;
	a->rc = a->f->ops->allocate(c, &ADMIN, &r, 86400, a->f->now, NULL, &a->o, a->detail);
	store_conn_release(a->f->s, c);
	return NULL;
}

/*
 * A team row and a GPU type row the store cannot read, asked for by requests
 * released at once with requests of a good team (on PostgreSQL they share
 * group-commit batches): only the requests that need a bad row fail, each
 * naming it; every other request is approved (a bad row once failed every
 * request of its batch).
 */
static void test_bad_row_batch(void **state)
{
	struct fx *f = *state;
	static const char *const want[][2] = {{"bad", "g1"}, {"ok", "g2"}, {"ok", "g1"},
					     {"ok", "g1"}};
	struct allocator al[RACERS];
	pthread_t th[RACERS];
	long bad0 = store_bad_rows_total();
	char longtext[201];
	int approved = 0;

	put_team_gpu(f, "ok", "g1");
	put_team_gpu(f, "bad", "g2");
	plant_long_names(f, "bad", "g2", longtext);
	for (int round = 0; round < 3; round++) {
		pthread_barrier_t bar;

		assert_int_equal(pthread_barrier_init(&bar, NULL, RACERS), 0);
		for (int i = 0; i < RACERS; i++) {
			al[i] = (struct allocator){.f = f, .bar = &bar, .team = want[i % 4][0],
						   .gpu = want[i % 4][1]};
			assert_int_equal(pthread_create(&th[i], NULL, allocator_run, &al[i]), 0);
		}
		for (int i = 0; i < RACERS; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
		pthread_barrier_destroy(&bar);
		for (int i = 0; i < RACERS; i++) {
			if (strcmp(al[i].team, "ok") == 0 && strcmp(al[i].gpu, "g1") == 0) {
				if (al[i].rc != 0)
					fail_msg("round %d, request %d: %s (%s)", round, i,
						 err_name(al[i].rc), al[i].detail);
				approved++;
				continue;
			}
			assert_int_equal(al[i].rc, ERR_STORE);
			assert_string_equal(al[i].detail, strcmp(al[i].team, "bad") == 0
								  ? "corrupt row for 'bad'"
								  : "corrupt row for 'g2'");
		}
	}
	assert_int_equal(approved, 3 * RACERS / 2);
	/* The batch reports what it skipped (SQLite's one-request path fails alone). */
	if (use_pg)
		assert_true(store_bad_rows_total() >= bad0 + 2);
}

/*
 * A refusal that lists GPU types (capacity, unknown type) reads the whole
 * catalog: a bad row of ANOTHER type is skipped and reported there, so the
 * refusal is still answered, and on PostgreSQL the other requests of its
 * batch are still decided (a bad catalog row once failed the refusal and,
 * through the batch, every request batched with it).
 */
static void test_bad_row_suggest(void **state)
{
	struct fx *f = *state;
	static const char *const gpus[] = {"g1", "g2", "g3"};
	static const int64_t caps[] = {2, 64, 64};
	struct allocator al[RACERS];
	pthread_t th[RACERS];
	long bad0 = store_bad_rows_total();
	struct gpu_type g;
	struct team t = team_rec("ok");
	char longtext[201], sql[512];
	bool created;
	int wrong = 0;

	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
	for (int i = 0; i < 3; i++) {
		g = gpu_rec(gpus[i], caps[i]);
		assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
	}
	memset(longtext, 'n', 200);
	longtext[200] = '\0';
	snprintf(sql, sizeof(sql), "UPDATE gpu_types SET name = '%s' WHERE id = 'g2'", longtext);
	raw_exec(f, sql);

	/* Alone: one GPU of g1 (capacity 2) is approved, two more are refused,
	 * naming the free g3 and g1 (g2 is unreadable). */
	for (int i = 0; i < 2; i++) {
		pthread_barrier_t bar;

		assert_int_equal(pthread_barrier_init(&bar, NULL, 1), 0);
		al[0] = (struct allocator){.f = f, .bar = &bar, .team = "ok", .gpu = "g1",
					   .count = i + 1};
		allocator_run(&al[0]);
		pthread_barrier_destroy(&bar);
		if (i == 0) {
			assert_int_equal(al[0].rc, 0);
			continue;
		}
		if (al[0].rc != ERR_CAPACITY)
			fail_msg("capacity refusal: %s (%s)", err_name(al[0].rc), al[0].detail);
		assert_int_equal(al[0].o.suggest.nfree, 2); /* g3's 64, g1's 1; never g2 */
		assert_string_equal(al[0].o.suggest.free[0].id, "g3");
		assert_string_equal(al[0].o.suggest.free[1].id, "g1");
		assert_true(store_bad_rows_total() > bad0);
	}
	/* Together: refusals of g1 and of an unknown type, approvals of g3. */
	for (int round = 0; round < 3; round++) {
		pthread_barrier_t bar;

		assert_int_equal(pthread_barrier_init(&bar, NULL, RACERS), 0);
		for (int i = 0; i < RACERS; i++) {
			al[i] = (struct allocator){.f = f, .bar = &bar, .team = "ok",
						   .gpu = i % 4 == 0 ? "g1" : i % 4 == 1 ? "nope" : "g3",
						   .count = i % 4 == 0 ? 2 : 1};
			assert_int_equal(pthread_create(&th[i], NULL, allocator_run, &al[i]), 0);
		}
		for (int i = 0; i < RACERS; i++)
			assert_int_equal(pthread_join(th[i], NULL), 0);
		pthread_barrier_destroy(&bar);
		for (int i = 0; i < RACERS; i++) {
			int want = i % 4 == 0 ? ERR_CAPACITY : i % 4 == 1 ? ERR_NOT_FOUND : 0;

			if (al[i].rc != want) {
				print_message("round %d, request %d (%s x%lld): %s (%s), want %s\n",
					      round, i, al[i].gpu,
					      (long long)(al[i].count ? al[i].count : 1),
					      err_name(al[i].rc), al[i].detail, err_name(want));
				wrong++;
			}
		}
		assert_int_equal(wrong, 0);
		/* The approvals of this round took their GPUs. */
		assert_int_equal(f->ops->gpu_type_get(f->c, "g3", &g), 0);
		assert_int_equal(g.allocated, (round + 1) * (RACERS / 2));
	}
}

/*
 * More due allocations (of more teams) than one pipeline takes: the batch
 * that finds them locks all their rows (on PostgreSQL in several pipelines,
 * one after the other), expires them and decides on what they gave back.
 */
static void test_many_due(void **state)
{
	struct fx *f = *state;
	enum { DUE = 1100 };
	char sql[1024], detail[STORE_DETAIL_LEN] = "";
	int64_t ps = time_from_civil(2026, 7, 1), pe = time_from_civil(2026, 8, 1);
	struct gpu_type g = gpu_rec("big", DUE + 1);
	struct team t = team_rec("ok");
	struct alloc_request r;
	struct alloc_outcome o;
	struct allocation a;
	bool created;

	assert_int_equal(f->ops->gpu_type_put(f->c, &ADMIN, &g, f->now, &created), 0);
	assert_int_equal(f->ops->team_put(f->c, &ADMIN, &t, f->now, &created), 0);
	/* DUE teams m1.. with one approved allocation of one "big" GPU each,
	 * due a second ago, and the ledger rows that hold them. */
#define DUE_SERIES "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1100) "
	raw_exec(f, "UPDATE gpu_types SET allocated = 1100 WHERE id = 'big'");
	snprintf(sql, sizeof(sql),
		 DUE_SERIES "INSERT INTO teams(id, display_name, budget_micros, period,"
		 " thresholds_json, created_at, updated_at) SELECT 'm' || i, 'M', 1000000000,"
		 " 'monthly', '[]', %lld, %lld FROM n",
		 (long long)f->now, (long long)f->now);
	raw_exec(f, sql);
	snprintf(sql, sizeof(sql),
		 DUE_SERIES "INSERT INTO team_periods(team_id, period_start, period_end, spent,"
		 " reserved) SELECT 'm' || i, %lld, %lld, 0, 3600000 FROM n",
		 (long long)ps, (long long)pe);
	raw_exec(f, sql);
	snprintf(sql, sizeof(sql),
		 DUE_SERIES "INSERT INTO allocations(id, team_id, project, gpu_type, gpu_count,"
		 " max_runtime_us, price_micros, estimated_micros, status, purpose, labels_json,"
		 " created_by, period_start, approved_at, expires_at) SELECT 'a_m' || i, 'm' || i,"
		 " 'p', 'big', 1, 3600000000, 3600000, 3600000, 'approved', '', '{}', 'tok_admin',"
		 " %lld, %lld, %lld FROM n",
		 (long long)ps, (long long)(f->now - 100), (long long)(f->now - 1));
	raw_exec(f, sql);
#undef DUE_SERIES

	memset(&r, 0, sizeof(r));
	strcpy(r.team, "ok");
	strcpy(r.project, "p");
	strcpy(r.gpu_type, "big");
	r.gpu_count = 2; /* only after the expiry */
	r.max_runtime_us = INT64_C(3600000000);
	strcpy(r.labels_json, "{}");
	if (f->ops->allocate(f->c, &ADMIN, &r, 86400, f->now, NULL, &o, detail) != 0)
		fail_msg("allocate: %s", detail);
	assert_int_equal(f->ops->gpu_type_get(f->c, "big", &g), 0);
	assert_int_equal(g.allocated, 2);
	assert_int_equal(f->ops->alloc_get(f->c, "a_m1100", &a), 0);
	assert_int_equal(a.status, ALLOC_EXPIRED);
	assert_int_equal(f->ops->team_get(f->c, "m777", &t), 0);
	{
		struct team_ledger l;

		assert_int_equal(f->ops->team_ledger(f->c, &t, f->now, &l), 0);
		assert_int_equal(l.period_start, ps);
		assert_int_equal(l.reserved, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_races, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seed_and_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_job_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alerts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_row_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_team_patch_retire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gpu_patch_retire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_patch_unchanged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_row_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_row_suggest, setup, teardown),
	};

	use_pg = itest_pg_enabled();
	return cmocka_run_group_tests_name(use_pg ? "store ops (postgres)" : "store ops (sqlite)",
					   tests, NULL, NULL);
}
