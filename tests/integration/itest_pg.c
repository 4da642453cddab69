/*
 * itest_pg.c - fresh PostgreSQL schemas for integration tests (see
 * itest_pg.h).  Each schema is named after a random tag, so parallel runs
 * and repeated daemons never share state unless a test asks for it.
 */
#include "itest_pg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <libpq-fe.h>

int itest_pg_enabled(void)
{
	const char *v = getenv("ITEST_PG");

	return v != NULL && strcmp(v, "1") == 0;
}

static int random_tag(char *out, size_t len)
{
	unsigned char b[8];
	FILE *f = fopen("/dev/urandom", "rb");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(b, 1, sizeof(b), f);
	fclose(f);
	if (n != sizeof(b))
		return -1;
	snprintf(out, len, "t_%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4],
		 b[5], b[6], b[7]);
	return 0;
}

int itest_pg_fresh_url(char *out, size_t len)
{
	const char *base = getenv("PLINTH_TEST_PG_URL");
	char tag[40], sql[96];
	PGconn *db = NULL;
	PGresult *r = NULL;
	int rc = -1, n;

	if (base == NULL || base[0] == '\0') {
		fprintf(stderr, "itest: ITEST_PG=1 but PLINTH_TEST_PG_URL is not set "
				"(run through tools/run-tests.sh or eval \"$(tools/pg-start.sh)\")\n");
		return -1;
	}
	if (random_tag(tag, sizeof(tag)) != 0)
		return -1;
	db = PQconnectdb(base);
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "itest: cannot connect to PostgreSQL: %s", PQerrorMessage(db));
		goto out;
	}
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", tag);
	r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "itest: %s: %s", sql, PQresultErrorMessage(r));
		goto out;
	}
	n = snprintf(out, len, "%s%soptions=-csearch_path%%3D%s", base,
		     strchr(base, '?') ? "&" : "?", tag);
	if (n < 0 || (size_t)n >= len)
		goto out;
	rc = 0;
out:
	PQclear(r);
	PQfinish(db);
	return rc;
}

int itest_pg_args(char **args, size_t cap)
{
	char url[1024];
	size_t n = 0;

	if (!itest_pg_enabled())
		return 0;
	for (n = 0; n < cap && args[n] != NULL; n++)
		if (strcmp(args[n], "--database-url") == 0)
			return 0;
	if (n + 3 > cap)
		return -1;
	if (itest_pg_fresh_url(url, sizeof(url)) != 0)
		return -1;
	args[n] = strdup("--database-url");
	args[n + 1] = strdup(url);
	args[n + 2] = NULL;
	return args[n] != NULL && args[n + 1] != NULL ? 0 : -1;
}

int itest_pg_ctl(const char *action)
{
	const char *ctl = getenv("PLINTH_TEST_PG_CTL");
	char cmd[1024];
	int st;

	if (ctl == NULL || ctl[0] == '\0') {
		fprintf(stderr, "itest: PLINTH_TEST_PG_CTL is not set\n");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "%s %s >/dev/null", ctl, action);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "itest: '%s' failed (status %d)\n", cmd, st);
		return -1;
	}
	return 0;
}
