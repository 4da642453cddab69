/*
 * cmd_costs.c - `plinth costs`: spend, accruals and reservations grouped by
 * team, project, GPU type, day or month, by use or by budget period.  Read-only; totals come from the daemon and
 * must never be summed here (the client holds no money arithmetic).
 */
#include <stdbool.h>
#include <string.h>

#include "cli/cli.h"

static const char costs_help[] =
	"Usage: plinth costs [--month YYYY-MM | --from D --to D] [--team T]\n"
	"                    [--group-by team|project|gpu_type|day|month] [--view use|budget]\n"
	"                    [--no-running]\n"
	"       plinth costs --budget-history --team T [--limit N]\n"
	"\n"
	"Show spent, accrued and reserved money and GPU hours, grouped, with a total.\n"
	"The default range is the current calendar month, grouped by team.\n"
	"\n"
	"view use (default): cost counts on the UTC days the GPUs were used, split by\n"
	"  seconds; the same number as `plinth export` for the range (spent + accrued).\n"
	"view budget: an allocation's whole cost counts at its approval time, i.e. in\n"
	"  the budget period it was charged to.\n"
	"\n"
	"Options:\n"
	"  --month M        one UTC calendar month, YYYY-MM\n"
	"  --from D         start of the range (YYYY-MM-DD or RFC 3339)\n"
	"  --to D           end of the range (YYYY-MM-DD or RFC 3339)\n"
	"  --team T         only this team\n"
	"  --group-by G     team, project, gpu_type, day or month (default team)\n"
	"  --view V         use or budget (default use)\n"
	"  --no-running     leave out running allocations' cost so far (accrued)\n"
	"  --budget-history budget versus actual of the team's last periods (view budget;\n"
	"                   a past period's budget is the one in force at its end)\n"
	"  --limit N        how many periods (1-36, default 6)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth costs --month 2026-11 --group-by project\n"
	"  plinth costs --from 2026-01-01 --to 2027-01-01 --group-by month\n"
	"  plinth costs --budget-history --team nlp\n";

enum { OPT_GROUP_BY = 1000, OPT_VIEW, OPT_HISTORY, OPT_LIMIT };

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
	char from[64], to[64], by[64], view[64];
	size_t i;
	json_t *row;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	if (cur == NULL)
		cur = "USD";
	cli_printf(stdout, "Costs from %s to %s by %s (view %s%s)\n",
		cli_json_text(json_object_get(res, "from"), from, sizeof from),
		cli_json_text(json_object_get(res, "to"), to, sizeof to),
		cli_json_text(json_object_get(res, "group_by"), by, sizeof by),
		cli_json_text(json_object_get(res, "view"), view, sizeof view),
		json_is_false(json_object_get(res, "include_running")) ? ", running left out" : "");
	json_array_foreach(json_object_get(res, "items"), i, row) {
		char key[256];
		costs_row(t, cli_json_text(json_object_get(row, "key"), key, sizeof key), row, cur);
	}
	costs_row(t, "TOTAL", json_object_get(res, "total"), cur);
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

int cli_cost_range_option(struct cli_cost_range *r, int o)
{
	switch (o) {
	case CLI_OPT_MONTH: r->month = optarg; return 1;
	case CLI_OPT_FROM: r->from = optarg; return 1;
	case CLI_OPT_TO: r->to = optarg; return 1;
	case CLI_OPT_TEAM: r->team = optarg; return 1;
	case CLI_OPT_NO_RUNNING: r->running = "false"; return 1;
	default: return 0;
	}
}

int cli_cost_range_query(struct cli *c, const struct cli_cost_range *r, struct cli_path *p)
{
	if (r->month != NULL && (r->from != NULL || r->to != NULL))
		return cli_usage(c, "give either --month or --from/--to, not both");
	cli_path_query(p, "month", r->month);
	cli_path_query(p, "from", r->from);
	cli_path_query(p, "to", r->to);
	cli_path_query(p, "team", r->team);
	cli_path_query(p, "include_running", r->running);
	return CLI_CONTINUE;
}

/* `plinth costs --budget-history --team T`: GET /v1/costs/periods as a table. */
static int periods_print(const json_t *res)
{
	static const char *const headers[] = { "PERIOD START", "BUDGET", "ACTUAL", "RESERVED",
		"DIFFERENCE" };
	struct cli_table *t = cli_table_new(5, headers, "lrrrr");
	const char *cur = json_string_value(json_object_get(res, "currency"));
	char team[64], kind[64];
	size_t i;
	json_t *row;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	cli_printf(stdout, "Budget versus actual of team %s, %s periods, newest first\n"
		"(actual = spent + accrued charged to the period; difference = budget - actual)\n",
		cli_json_text(json_object_get(res, "team"), team, sizeof team),
		cli_json_text(json_object_get(res, "period"), kind, sizeof kind));
	json_array_foreach(json_object_get(res, "items"), i, row) {
		char start[64];
		cli_table_cellf(t, "%.10s%s", cli_json_text(json_object_get(row, "period_start"),
			start, sizeof start), json_is_true(json_object_get(row, "current")) ? " (now)" : "");
		cli_table_cell_money(t, row, "budget", cur);
		cli_table_cell_money(t, row, "actual", cur);
		cli_table_cell_money(t, row, "reserved", cur);
		cli_table_cell_money(t, row, "difference", cur);
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	if (rc == CLI_EXIT_OK && json_is_false(json_object_get(res, "budget_history_complete")))
		cli_printf(stderr, "plinth: the audit log was read in part: older budgets may be missing\n");
	return rc;
}

int cmd_costs(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "group-by", required_argument, NULL, OPT_GROUP_BY },
		{ "view", required_argument, NULL, OPT_VIEW },
		{ "budget-history", no_argument, NULL, OPT_HISTORY },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		CLI_COST_RANGE_LONGOPTS,
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_cost_range range = { 0 };
	const char *group_by = NULL, *view = NULL, *limit = NULL;
	bool history = false;
	json_t *res = NULL;
	struct cli_path p;
	int o, rc;

	c->help = costs_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		if (cli_cost_range_option(&range, o))
			continue;
		switch (o) {
		case OPT_GROUP_BY: group_by = optarg; break;
		case OPT_VIEW: view = optarg; break;
		case OPT_HISTORY: history = true; break;
		case OPT_LIMIT: limit = optarg; break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				return rc;
		}
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (history) {
		if (range.team == NULL)
			return cli_usage(c, "--budget-history needs --team");
		if (group_by || view || range.month || range.from || range.to || range.running)
			return cli_usage(c, "--budget-history takes only --team and --limit");
		cli_path_init(&p, "/v1/costs/periods");
		cli_path_query(&p, "team", range.team);
		cli_path_query(&p, "limit", limit);
		rc = cli_call(c, "GET", &p, NULL, NULL, &res);
		if (rc == CLI_EXIT_OK && !c->json)
			rc = periods_print(res);
		json_decref(res);
		return rc;
	}
	if (limit != NULL)
		return cli_usage(c, "--limit goes with --budget-history");
	if (group_by != NULL && strcmp(group_by, "team") != 0 && strcmp(group_by, "project") != 0 &&
	    strcmp(group_by, "gpu_type") != 0 && strcmp(group_by, "day") != 0 &&
	    strcmp(group_by, "month") != 0)
		return cli_usage(c, "--group-by must be team, project, gpu_type, day or month, got '%s'",
			group_by);
	if (view != NULL && strcmp(view, "use") != 0 && strcmp(view, "budget") != 0)
		return cli_usage(c, "--view must be use or budget, got '%s'", view);
	cli_path_init(&p, "/v1/costs");
	rc = cli_cost_range_query(c, &range, &p);
	if (rc != CLI_CONTINUE)
		return rc;
	cli_path_query(&p, "view", view);
	cli_path_query(&p, "group_by", group_by);
	rc = cli_call(c, "GET", &p, NULL, NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = costs_print(res);
	json_decref(res);
	return rc;
}
