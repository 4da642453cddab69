/*
 * store_pg_tokens.c - the PostgreSQL store's cache of token lookups.
 *
 * Every authenticated request looks its token up; on PostgreSQL that is a
 * network round trip that costs more than the rest of a cheap request.  The
 * cache keeps found tokens (never misses) by hash.  It is only trusted while
 * this process holds a connection that LISTENs on PG_TOKENS_CHANNEL: a
 * revocation, on any replica, notifies that channel in its own transaction,
 * so every replica forgets its whole cache within milliseconds of the
 * COMMIT, and the replica that revoked forgets at once (pg_tokens_forget).
 * Without the listener (database down, restarting, unreachable) the cache
 * is empty and off: every lookup goes to the database, as without a cache.
 *
 * The race a cache must not lose: a lookup reads an active token, a
 * revocation commits and its notification is handled, then the lookup
 * stores the stale row.  A generation counter closes it: a lookup takes the
 * generation before it reads, and pg_tokens_put stores only if nothing was
 * forgotten (and the listener did not drop) since.
 *
 * A silently dead network path cannot be seen at once; TCP keepalives and
 * a user timeout on the listener's connection bound that window to about
 * ten seconds.  The listener's connection runs LISTEN and nothing else: no
 * data goes through it, so it is not a fault-injection point.
 */
#include "store/store_pg_tokens.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"

#define SLOTS 128          /* direct-mapped by hash; a collision just replaces */
#define RECONNECT_MS 1000  /* between attempts while the database is away */
#define IDLE_CHECK_MS 5000 /* how often an idle listener checks its connection */

struct slot {
	bool used;
	char hash[STORE_HASH_LEN];
	struct token tok;
};

struct pg_tokens {
	char *url; /* owned */
	pthread_mutex_t mu;
	uint64_t gen; /* bumped by every forget; guarded by mu */
	bool live;    /* the listener is listening: entries may be used */
	bool started;
	pthread_t thread;
	int wake[2]; /* a byte here stops the listener promptly */
	struct slot slots[SLOTS];
};

static unsigned slot_of(const char *hash)
{
	unsigned h = 2166136261u; /* FNV-1a over the hex hash's first bytes */

	for (int i = 0; i < 16 && hash[i]; i++)
		h = (h ^ (unsigned char)hash[i]) * 16777619u;
	return h % SLOTS;
}

/* Under mu: forgets everything and sets whether entries may be used. */
static void reset_locked(struct pg_tokens *t, bool live)
{
	t->gen++;
	t->live = live;
	for (int i = 0; i < SLOTS; i++)
		t->slots[i].used = false;
}

static void reset(struct pg_tokens *t, bool live)
{
	pthread_mutex_lock(&t->mu);
	reset_locked(t, live);
	pthread_mutex_unlock(&t->mu);
}

static PGconn *listen_connect(const struct pg_tokens *t)
{
	/* Our defaults first: settings in the URL override them. */
	const char *keys[] = {"connect_timeout", "application_name", "keepalives_idle",
			      "keepalives_interval", "keepalives_count", "tcp_user_timeout",
			      "dbname", NULL};
	const char *vals[] = {"10", "plinth-listen", "5", "2", "2", "10000", t->url, NULL};
	PGconn *db = PQconnectdbParams(keys, vals, 1);
	PGresult *r;

	if (!db || PQstatus(db) != CONNECTION_OK) {
		PQfinish(db);
		return NULL;
	}
	r = PQexec(db, "LISTEN " PG_TOKENS_CHANNEL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		PQfinish(db);
		return NULL;
	}
	PQclear(r);
	return db;
}

/* Waits for the database or the stop pipe; false when asked to stop. */
static bool wait_for(struct pg_tokens *t, int fd, int ms, bool *readable)
{
	struct pollfd p[2] = {{.fd = t->wake[0], .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	int n = poll(p, fd >= 0 ? 2 : 1, ms);

	*readable = n > 0 && fd >= 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP));
	return !(n > 0 && (p[0].revents & POLLIN));
}

/* Serves one listening connection until it breaks or we are stopped. */
static bool listen_serve(struct pg_tokens *t, PGconn *db)
{
	for (;;) {
		bool readable = false;
		PGnotify *n;

		if (!wait_for(t, PQsocket(db), IDLE_CHECK_MS, &readable))
			return false;
		if (!readable) {
			/* Idle: make sure the connection still answers. */
			PGresult *r = PQexec(db, "SELECT 1");
			bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;

			PQclear(r);
			if (!ok)
				return true;
		} else if (!PQconsumeInput(db)) {
			return true;
		}
		while ((n = PQnotifies(db)) != NULL) {
			PQfreemem(n);
			reset(t, true);
		}
		if (PQstatus(db) != CONNECTION_OK)
			return true;
	}
}

static void *listener_main(void *arg)
{
	struct pg_tokens *t = arg;

	for (;;) {
		PGconn *db = listen_connect(t);
		bool go_on = true, readable;

		if (db) {
			reset(t, true); /* listening from now on: a fresh, trusted cache */
			go_on = listen_serve(t, db);
			reset(t, false);
			PQfinish(db);
		}
		if (!go_on || !wait_for(t, -1, RECONNECT_MS, &readable))
			return NULL;
	}
}

int pg_tokens_new(const char *url, struct pg_tokens **out)
{
	struct pg_tokens *t = calloc(1, sizeof(*t));

	if (!t)
		return ERR_NOMEM;
	t->url = strdup(url);
	t->wake[0] = -1;
	if (!t->url || pipe(t->wake) != 0 || pthread_mutex_init(&t->mu, NULL) != 0) {
		if (t->wake[0] >= 0) {
			close(t->wake[0]);
			close(t->wake[1]);
		}
		free(t->url);
		free(t);
		return ERR_NOMEM;
	}
	*out = t;
	return 0;
}

void pg_tokens_free(struct pg_tokens *t)
{
	if (!t)
		return;
	if (t->started) {
		char b = 1;
		ssize_t w;

		/* One byte into an empty pipe whose reader is open cannot fail but for EINTR. */
		while ((w = write(t->wake[1], &b, 1)) < 0 && errno == EINTR)
			;
		if (w == 1)
			pthread_join(t->thread, NULL);
		else
			return; /* the listener may still run: leak t rather than free it under it */
	}
	close(t->wake[0]);
	close(t->wake[1]);
	pthread_mutex_destroy(&t->mu);
	free(t->url);
	free(t);
}

bool pg_tokens_get(struct pg_tokens *t, const char *hash, struct token *out, uint64_t *gen)
{
	const struct slot *s = &t->slots[slot_of(hash)];
	bool hit = false;

	pthread_mutex_lock(&t->mu);
	if (!t->started)
		t->started = pthread_create(&t->thread, NULL, listener_main, t) == 0;
	if (t->live && s->used && strcmp(s->hash, hash) == 0) {
		*out = s->tok;
		hit = true;
	}
	*gen = t->gen;
	pthread_mutex_unlock(&t->mu);
	return hit;
}

void pg_tokens_put(struct pg_tokens *t, uint64_t gen, const char *hash, const struct token *tok)
{
	struct slot *s = &t->slots[slot_of(hash)];

	pthread_mutex_lock(&t->mu);
	if (t->live && t->gen == gen && tok->revoked_at == 0) {
		s->used = true;
		snprintf(s->hash, sizeof(s->hash), "%s", hash);
		s->tok = *tok;
	}
	pthread_mutex_unlock(&t->mu);
}

void pg_tokens_forget(struct pg_tokens *t)
{
	pthread_mutex_lock(&t->mu);
	reset_locked(t, t->live);
	pthread_mutex_unlock(&t->mu);
}
