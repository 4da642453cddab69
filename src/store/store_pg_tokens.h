/*
 * store_pg_tokens.h - the PostgreSQL store's cache of token lookups, kept
 * true across replicas by LISTEN/NOTIFY (internal to store_pg.c).
 */
#ifndef PLINTH_STORE_PG_TOKENS_H
#define PLINTH_STORE_PG_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* The channel a token revocation notifies in its own transaction. */
#define PG_TOKENS_CHANNEL "plinth_tokens"

struct pg_tokens;

/* A cache for the database at url (libpq URL or keywords, as the store's). */
int pg_tokens_new(const char *url, struct pg_tokens **out);
/* Stops the listener and frees everything; NULL is fine. */
void pg_tokens_free(struct pg_tokens *t);

/* True and *out filled on a hit.  On a miss *gen is the generation to pass
 * to pg_tokens_put with what the database says.  The first call starts the
 * listener; until it listens, every call misses. */
bool pg_tokens_get(struct pg_tokens *t, const char *hash, struct token *out, uint64_t *gen);
/* Remembers a token read from the database, unless anything was forgotten
 * since *gen was handed out (the read may predate a revocation). */
void pg_tokens_put(struct pg_tokens *t, uint64_t gen, const char *hash, const struct token *tok);
/* Forgets every entry at once (a revocation committed by this process). */
void pg_tokens_forget(struct pg_tokens *t);

#endif
