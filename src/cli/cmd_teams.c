/*
 * cmd_teams.c - `plinth teams [TEAM]`: the teams' budgets for the current
 * period.  Read-only; must never change a budget (that is `curl -X PUT` for
 * an admin, deliberately not a one-word command).
 */
#include "cli/cli.h"

static const char teams_help[] =
	"Usage: plinth teams [TEAM]\n"
	"\n"
	"List the teams you may see with their budget for the current period, or\n"
	"show one team's budget view: spent, reserved, accrued, available, burn\n"
	"rate and forecast.\n"
	"\n"
	"Options:\n"
	"  TEAM             show only this team, in detail\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Examples:\n"
	"  plinth teams\n"
	"  plinth teams ml\n";

static const char *teams_currency(const json_t *t)
{
	const char *cur = json_string_value(json_object_get(t, "currency"));
	return cur ? cur : "USD";
}

static int teams_list(const json_t *res)
{
	static const char *const headers[] = { "TEAM", "NAME", "PERIOD", "BUDGET", "SPENT",
		"RESERVED", "AVAILABLE", "RUNNING" };
	struct cli_table *t = cli_table_new(8, headers, "lllrrrrr");
	size_t i;
	json_t *team;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	json_array_foreach(json_object_get(res, "items"), i, team) {
		const json_t *budget = json_object_get(team, "budget");
		const char *cur = teams_currency(team);
		cli_table_cell_json(t, team, "id");
		cli_table_cell_json(t, team, "display_name");
		cli_table_cell_json(t, budget, "period");
		cli_table_cell_money(t, budget, "amount", cur);
		cli_table_cell_money(t, team, "spent", cur);
		cli_table_cell_money(t, team, "reserved", cur);
		cli_table_cell_money(t, team, "available", cur);
		cli_table_cell_json(t, team, "running_allocations");
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

static int teams_show(const json_t *team)
{
	static const char *const money[] = { "spent", "reserved", "accrued", "available",
		"burn_rate_per_day", "forecast_period_end" };
	const json_t *budget = json_object_get(team, "budget");
	const char *cur = teams_currency(team);
	struct cli_table *t = cli_table_new(2, NULL, "ll");
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	cli_table_cell(t, "id");
	cli_table_cell_json(t, team, "id");
	cli_table_cell(t, "display_name");
	cli_table_cell_json(t, team, "display_name");
	cli_table_cell(t, "budget");
	cli_table_cell_money(t, budget, "amount", cur);
	cli_table_cell(t, "period");
	cli_table_cell_json(t, budget, "period");
	cli_table_cell(t, "period_start");
	cli_table_cell_json(t, team, "period_start");
	cli_table_cell(t, "period_end");
	cli_table_cell_json(t, team, "period_end");
	for (size_t i = 0; i < sizeof money / sizeof money[0]; i++) {
		cli_table_cell(t, money[i]);
		cli_table_cell_money(t, team, money[i], cur);
	}
	cli_table_cell(t, "budget_exhausted_at");
	cli_table_cell_json(t, team, "budget_exhausted_at");
	cli_table_cell(t, "running_allocations");
	cli_table_cell_json(t, team, "running_allocations");
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

int cmd_teams(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	json_t *res = NULL;
	struct cli_path p;
	int o, rc;

	c->help = teams_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		rc = cli_option_common(c, o, argc, argv);
		if (rc != CLI_CONTINUE)
			return rc;
	}
	if (optind + 1 < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind + 1]);
	cli_path_init(&p, "/v1/teams");
	if (optind < argc)
		cli_path_segment(&p, argv[optind]);
	rc = cli_call(c, "GET", &p, NULL, NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = optind < argc ? teams_show(res) : teams_list(res);
	json_decref(res);
	return rc;
}
