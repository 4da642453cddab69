/*
 * cmd_migrate.c - `plinth migrate`: brings the database schema up to date
 * (SQLite file or PostgreSQL) and exits.  Idempotent: a second run applies
 * nothing.  Refuses (exit 1) a schema newer than this binary knows.
 *
 * It must never start the HTTP server, seed data or create tokens: schema
 * changes only, so a deploy can run it once before rolling out replicas.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/err.h"
#include "store/store.h"

static const char migrate_help[] =
	"Usage: plinth migrate [--database-url URL | --data DIR] [--rebuild-rollups]\n"
	"\n"
	"Apply pending database migrations and exit (safe to run again; replicas starting\n"
	"together migrate one at a time).  `plinth serve` also migrates at start.\n"
	"\n"
	"Options:\n"
	"  --database-url URL  postgres://... or sqlite:PATH (PLINTH_DATABASE_URL)\n"
	"  --data DIR          with no URL, the SQLite database DIR/plinth.db (PLINTH_DATA,\n"
	"                      default plinth-data)\n"
	"  --rebuild-rollups   then recompute the cost rollups from the allocations (after a\n"
	"                      rolling upgrade, when replicas of an older version wrote\n"
	"                      completions the new rollup tables did not see; one\n"
	"                      transaction, completions wait for it)\n"
	"  -h, --help          this help\n"
	"\n"
	"Exit codes: 0 up to date, 1 failed (unreachable, or a newer schema), 2 usage error.\n"
	"\n"
	"Example:\n"
	"  PLINTH_DATABASE_URL=postgres://plinth@db.internal/plinth plinth migrate\n";

int cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{"database-url", required_argument, NULL, 'D'},
		{"data", required_argument, NULL, 'd'},
		{"rebuild-rollups", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *url = getenv("PLINTH_DATABASE_URL");
	const char *data = getenv("PLINTH_DATA");
	char path[4200], detail[STORE_DETAIL_LEN] = "";
	struct store *s = NULL;
	int o, rc;
	bool rebuild = false;

	if (data == NULL || data[0] == '\0')
		data = "plinth-data";
	if (url != NULL && url[0] == '\0')
		url = NULL;
	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'D':
			url = optarg;
			break;
		case 'd':
			data = optarg;
			break;
		case 'R':
			rebuild = true;
			break;
		case 'h':
			cli_printf(stdout, "%s", migrate_help);
			return CLI_EXIT_OK;
		default:
			cli_printf(stderr, "%s", migrate_help);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_printf(stderr, "plinth migrate: unexpected argument '%s'\n", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (url == NULL) {
		if (mkdir(data, 0700) != 0 && errno != EEXIST) {
			cli_printf(stderr, "plinth migrate: cannot create %s: %s\n", data,
				strerror(errno));
			return CLI_EXIT_API;
		}
		snprintf(path, sizeof(path), "sqlite:%s/plinth.db", data);
	} else {
		snprintf(path, sizeof(path), "%s", url);
	}
	/* store_open applies the migrations before it returns. */
	{
		const char *t = getenv("PLINTH_PG_STATEMENT_TIMEOUT_MS");
		struct store_config cfg = {.url = path, .pool_size = 1,
					   .pg_statement_timeout_ms = t && *t ? strtol(t, NULL, 10) : 0};

		rc = store_open_config(&cfg, &s, detail);
	}
	if (rc != 0) {
		cli_printf(stderr, "plinth migrate: %s%s%s\n", err_name(rc), detail[0] ? ": " : "",
			detail);
		return CLI_EXIT_API;
	}
	cli_printf(stdout, "plinth migrate: the %s database schema is up to date\n", s->ops->name);
	if (rebuild) {
		struct store_conn *c = NULL;

		rc = store_conn_acquire(s, &c);
		if (rc == 0)
			rc = store_conn_ops(c)->cost_rollup_rebuild(c);
		store_conn_release(s, c);
		if (rc != 0) {
			cli_printf(stderr, "plinth migrate: cannot rebuild the cost rollups: %s\n",
				   err_name(rc));
			store_close(s);
			return CLI_EXIT_API;
		}
		cli_printf(stdout, "plinth migrate: the cost rollups were rebuilt from the allocations\n");
	}
	store_close(s);
	return CLI_EXIT_OK;
}
