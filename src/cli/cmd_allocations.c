/*
 * cmd_allocations.c - `plinth allocations` (a page of allocations, newest
 * first) and `plinth allocations show ID`.  Read-only: must never change state.
 */
#include <string.h>

#include "cli/cli.h"

static const char allocations_help[] =
	"Usage: plinth allocations [--team T] [--status S] [--limit N] [--cursor C]\n"
	"       plinth allocations show ID\n"
	"\n"
	"List allocations, newest first, one page at a time; or show one allocation.\n"
	"\n"
	"Options:\n"
	"  --team T         only this team's allocations\n"
	"  --status S       only this status: approved, running, completed, cancelled, expired\n"
	"  --limit N        page size, 1..500 (default 50)\n"
	"  --cursor C       continue after a previous page (its next cursor)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Examples:\n"
	"  plinth allocations --team ml --status running\n"
	"  plinth allocations show alloc_7kq2m6x4tjvw3bzpcd5c\n";

enum { OPT_TEAM = 1000, OPT_STATUS, OPT_LIMIT, OPT_CURSOR };

static int allocations_table(const json_t *page)
{
	static const char *const headers[] = { "ID", "TEAM", "PROJECT", "GPU TYPE", "GPUS",
		"HOURS", "STATUS", "ESTIMATED", "ACTUAL", "APPROVED AT" };
	struct cli_table *t = cli_table_new(10, headers, "llllrrlrrl");
	const json_t *items = json_object_get(page, "items");
	const char *next = json_string_value(json_object_get(page, "next_cursor"));
	size_t i;
	json_t *a;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	json_array_foreach(items, i, a) {
		cli_table_cell_json(t, a, "id");
		cli_table_cell_json(t, a, "team");
		cli_table_cell_json(t, a, "project");
		cli_table_cell_json(t, a, "gpu_type");
		cli_table_cell_json(t, a, "gpu_count");
		cli_table_cell_json(t, a, "max_runtime_hours");
		cli_table_cell_json(t, a, "status");
		cli_table_cell_money(t, a, "estimated_cost", "USD");
		/* While running, what has accrued so far is the interesting number. */
		if (json_is_string(json_object_get(a, "actual_cost")))
			cli_table_cell_money(t, a, "actual_cost", "USD");
		else
			cli_table_cell_money(t, a, "accrued_cost", "USD");
		cli_table_cell_json(t, a, "approved_at");
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	if (json_array_size(items) == 0)
		cli_printf(stdout, "(no allocations)\n");
	if (next != NULL)
		cli_printf(stdout, "More: --cursor %s\n", next);
	cli_table_free(t);
	return rc;
}

int cmd_allocations(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "team", required_argument, NULL, OPT_TEAM },
		{ "status", required_argument, NULL, OPT_STATUS },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "cursor", required_argument, NULL, OPT_CURSOR },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *team = NULL, *status = NULL, *limit = NULL, *cursor = NULL;
	json_t *res = NULL;
	struct cli_path p;
	long long n;
	int o, rc;

	c->help = allocations_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (o) {
		case OPT_TEAM: team = optarg; break;
		case OPT_STATUS: status = optarg; break;
		case OPT_LIMIT: limit = optarg; break;
		case OPT_CURSOR: cursor = optarg; break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				return rc;
		}
	}

	if (optind < argc) {
		/* `allocations show ID` */
		if (strcmp(argv[optind], "show") != 0)
			return cli_usage(c, "unexpected argument '%s'", argv[optind]);
		if (optind + 2 != argc)
			return cli_usage(c, "show needs exactly one allocation ID");
		if (team || status || limit || cursor)
			return cli_usage(c, "show takes no filters");
		cli_path_init(&p, "/v1/allocations");
		cli_path_segment(&p, argv[optind + 1]);
		rc = cli_call(c, "GET", &p, NULL, NULL, &res);
		if (rc == CLI_EXIT_OK && !c->json)
			rc = cli_print_allocation(res);
		json_decref(res);
		return rc;
	}

	if (limit != NULL && cli_parse_int(limit, &n) != 0)
		return cli_usage(c, "--limit must be a whole number, got '%s'", limit);
	cli_path_init(&p, "/v1/allocations");
	cli_path_query(&p, "team", team);
	cli_path_query(&p, "status", status);
	cli_path_query(&p, "limit", limit);
	cli_path_query(&p, "cursor", cursor);
	rc = cli_call(c, "GET", &p, NULL, NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = allocations_table(res);
	json_decref(res);
	return rc;
}
