/*
 * cmd_costs.c - `plinth costs`: spend, accruals and reservations grouped by
 * team, project, GPU type or day.  Read-only; totals come from the daemon and
 * must never be summed here (the client holds no money arithmetic).
 */
#include <string.h>

#include "cli/cli.h"

static const char costs_help[] =
	"Usage: plinth costs [--from D] [--to D] [--group-by team|project|gpu_type|day]\n"
	"\n"
	"Show spent, accrued and reserved money and GPU hours, grouped, with a total.\n"
	"The default range is the current calendar month, grouped by team.\n"
	"\n"
	"Options:\n"
	"  --from D         start of the range (YYYY-MM-DD or RFC 3339)\n"
	"  --to D           end of the range (YYYY-MM-DD or RFC 3339)\n"
	"  --group-by G     team, project, gpu_type or day (default team)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth costs --from 2026-11-01 --to 2026-12-01 --group-by project\n";

enum { OPT_FROM = 1000, OPT_TO, OPT_GROUP_BY };

static void costs_row(struct cli_table *t, const char *key, const json_t *row, const char *cur)
{
	cli_table_cell(t, key);
	cli_table_cell_json(t, row, "gpu_hours");
	cli_table_cell_money(t, row, "spent", cur);
	cli_table_cell_money(t, row, "accrued", cur);
	cli_table_cell_money(t, row, "reserved", cur);
}

static int costs_print(const json_t *res)
{
	static const char *const headers[] = { "KEY", "GPU HOURS", "SPENT", "ACCRUED", "RESERVED" };
	struct cli_table *t = cli_table_new(5, headers, "lrrrr");
	const char *cur = json_string_value(json_object_get(res, "currency"));
	char from[64], to[64], by[64];
	size_t i;
	json_t *row;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	if (cur == NULL)
		cur = "USD";
	cli_printf(stdout, "Costs from %s to %s by %s\n",
		cli_json_text(json_object_get(res, "from"), from, sizeof from),
		cli_json_text(json_object_get(res, "to"), to, sizeof to),
		cli_json_text(json_object_get(res, "group_by"), by, sizeof by));
	json_array_foreach(json_object_get(res, "items"), i, row) {
		char key[256];
		costs_row(t, cli_json_text(json_object_get(row, "key"), key, sizeof key), row, cur);
	}
	costs_row(t, "TOTAL", json_object_get(res, "total"), cur);
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

int cmd_costs(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, OPT_FROM },
		{ "to", required_argument, NULL, OPT_TO },
		{ "group-by", required_argument, NULL, OPT_GROUP_BY },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *from = NULL, *to = NULL, *group_by = NULL;
	json_t *res = NULL;
	struct cli_path p;
	int o, rc;

	c->help = costs_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (o) {
		case OPT_FROM: from = optarg; break;
		case OPT_TO: to = optarg; break;
		case OPT_GROUP_BY: group_by = optarg; break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				return rc;
		}
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (group_by != NULL && strcmp(group_by, "team") != 0 && strcmp(group_by, "project") != 0 &&
	    strcmp(group_by, "gpu_type") != 0 && strcmp(group_by, "day") != 0)
		return cli_usage(c, "--group-by must be team, project, gpu_type or day, got '%s'",
			group_by);
	cli_path_init(&p, "/v1/costs");
	cli_path_query(&p, "from", from);
	cli_path_query(&p, "to", to);
	cli_path_query(&p, "group_by", group_by);
	rc = cli_call(c, "GET", &p, NULL, NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = costs_print(res);
	json_decref(res);
	return rc;
}
