/*
 * store_pg.h - constructor of the PostgreSQL backend (store_pg.c), used by
 * store_open() for postgres:// and postgresql:// URLs.  It must never be
 * needed by anything above the store module.
 */
#ifndef PLINTH_STORE_PG_H
#define PLINTH_STORE_PG_H

#include "store/store.h"

/*
 * A PostgreSQL store on `url` (a libpq URI; TLS and other options pass
 * through) with statement and lock timeouts of timeout_ms, no pool and no
 * migrations yet.  Returns 0 and *out (owned by store_open's caller), or
 * ERR_NOMEM.
 */
int store_pg_new(const char *url, long timeout_ms, struct store **out);

#endif
