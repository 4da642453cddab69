/*
 * itest_pg.h - PostgreSQL for the integration harness.  With ITEST_PG=1 in
 * the environment (the 'integration-pg' registrations) every daemon the
 * harness starts gets a fresh, empty schema in the run's throwaway database
 * (PLINTH_TEST_PG_URL, made by tools/pg-start.sh); without it nothing here
 * does anything.  It must never touch a schema it did not create.
 */
#ifndef PLINTH_ITEST_PG_H
#define PLINTH_ITEST_PG_H

#include <stddef.h>

/* Is this run against PostgreSQL (ITEST_PG=1)? */
int itest_pg_enabled(void);

/*
 * Creates a fresh schema and writes a daemon URL that uses it to out.
 * Returns 0, or -1 after printing why (also when PLINTH_TEST_PG_URL is unset).
 */
int itest_pg_fresh_url(char *out, size_t len);

/*
 * The harness hook: with ITEST_PG=1 and no "--database-url" in args (a
 * NULL-terminated array with room for `cap` entries), appends
 * "--database-url" and a fresh URL (strdup'd, owned by args).  0 or -1.
 */
int itest_pg_args(char **args, size_t cap);

/* Runs `PLINTH_TEST_PG_CTL <action>` (stop, start, restart).  0 or -1. */
int itest_pg_ctl(const char *action);

#endif
