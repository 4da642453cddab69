/*
 * cmd_team.c - `plinth team list|get|set|retire`: teams, their budgets and
 * admins, for a platform engineer (set and retire need an admin token).
 * `set` on an unknown team creates it (PUT, every required field named); on
 * a known one it sends a merge patch of only the fields named, so
 * `plinth team set ml --budget 60000` keeps everything else.  `plinth teams`
 * is the old spelling of `team list` / `team get`.
 *
 * Like every command it is a plain HTTP client: it never computes money; it
 * only rounds an amount the API returns to two decimals for a table.
 */
#include <string.h>

#include "cli/cli.h"

static const char team_help[] =
	"Usage: plinth team list [--include-retired]\n"
	"       plinth team get TEAM\n"
	"       plinth team set TEAM [--display-name S] [--budget AMOUNT] [--period P]\n"
	"                            [--alert-thresholds LIST] [--admins LIST]\n"
	"                            [--namespaces LIST]\n"
	"       plinth team retire TEAM\n"
	"\n"
	"Teams and their budgets. `list` and `get` show the budget of the current\n"
	"period; `set` (admin) creates a team, naming --display-name, --budget and\n"
	"--period, or changes only the fields it names of an existing one; `retire`\n"
	"(admin) stops new quotes and allocations for a team while its history\n"
	"stays (reactivate: `curl -X PATCH .../v1/teams/TEAM -d '{\"retired_at\":null}'`).\n"
	"Money in tables has two decimals; --json prints the API's full precision.\n"
	"\n"
	"Options:\n"
	"  --display-name S        the team's name for people, e.g. \"Speech\"\n"
	"  --budget AMOUNT         budget per period, a decimal such as 60000 or 1250.50\n"
	"  --period P              weekly, monthly, quarterly or yearly\n"
	"  --alert-thresholds L    comma-separated fractions of the budget, e.g. 0.5,0.8,1\n"
	"  --admins L              comma-separated people to ask about the budget (e-mail or\n"
	"                          Backstage ref such as user:default/jane); \"\" clears them\n"
	"  --namespaces L          comma-separated Kubernetes namespaces the team owns (its\n"
	"                          GPU pods may run there; default: the one named after it)\n"
	"  --include-retired       list retired teams too\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Examples:\n"
	"  plinth team set speech --display-name Speech --budget 40000 --period quarterly \\\n"
	"      --admins jane@example.com\n"
	"  plinth team set speech --budget 45000\n"
	"  plinth team list\n"
	"  plinth team retire speech\n";

static const char teams_alias_help[] =
	"Usage: plinth teams [TEAM]\n"
	"\n"
	"The teams you may see with their budget for the current period, or one\n"
	"team in detail: the same as `plinth team list` and `plinth team get TEAM`\n"
	"(see `plinth team --help` to create, change or retire teams).\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Examples:\n"
	"  plinth teams\n"
	"  plinth teams ml\n";

enum {
	OPT_DISPLAY_NAME = 1000,
	OPT_BUDGET,
	OPT_PERIOD,
	OPT_THRESHOLDS,
	OPT_ADMINS,
	OPT_NAMESPACES,
	OPT_INCLUDE_RETIRED,
};

static const char *team_currency(const json_t *t)
{
	const char *cur = json_string_value(json_object_get(t, "currency"));
	return cur ? cur : "USD";
}

static int team_print_list(const json_t *res)
{
	static const char *const headers[] = { "TEAM", "NAME", "PERIOD", "BUDGET", "SPENT",
		"RESERVED", "AVAILABLE", "RUNNING", "ADMINS", "STATUS" };
	struct cli_table *t = cli_table_new(10, headers, "lllrrrrrll");
	size_t i;
	json_t *team;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	json_array_foreach(json_object_get(res, "items"), i, team) {
		const json_t *budget = json_object_get(team, "budget");
		const char *cur = team_currency(team);
		json_t *retired = json_object_get(team, "retired_at");
		cli_table_cell_json(t, team, "id");
		cli_table_cell_json(t, team, "display_name");
		cli_table_cell_json(t, budget, "period");
		cli_table_cell_money(t, budget, "amount", cur);
		cli_table_cell_money(t, team, "spent", cur);
		cli_table_cell_money(t, team, "reserved", cur);
		cli_table_cell_money(t, team, "available", cur);
		cli_table_cell_json(t, team, "running_allocations");
		cli_table_cell_json(t, team, "admins");
		cli_table_cell(t, json_is_string(retired) ? "retired" : "active");
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

static int team_print(const json_t *team)
{
	static const char *const money[] = { "spent", "reserved", "accrued", "available",
		"burn_rate_per_day", "forecast_period_end" };
	static const char *const tail[] = { "budget_exhausted_at", "running_allocations",
		"alert_thresholds", "admins", "namespaces", "retired_at" };
	const json_t *budget = json_object_get(team, "budget");
	const char *cur = team_currency(team);
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
	for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++) {
		cli_table_cell(t, tail[i]);
		cli_table_cell_json(t, team, tail[i]);
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

static const struct cli_resource team_resource = { "/v1/teams", team_print, team_print_list };

/* Splits a comma-separated list into a JSON array (strings, or numbers when
 * numbers is set); "" is the empty list.  NULL after printing why. */
static json_t *split_list(struct cli *c, const char *opt, const char *s, int numbers)
{
	json_t *a = json_array();
	const char *p = s;

	while (a != NULL && *s != '\0') {
		size_t n = strcspn(p, ",");
		char item[256];
		json_t *v;
		if (n == 0 || n >= sizeof item) {
			cli_usage(c, "%s: an item is empty or too long", opt);
			json_decref(a);
			return NULL;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		if (numbers) {
			char *end = NULL;
			double x = strtod(item, &end);
			v = end != NULL && *end == '\0' ? json_real(x) : NULL;
		} else {
			v = json_string(item);
		}
		if (v == NULL) {
			cli_usage(c, "%s: '%s' is not a %s", opt, item, numbers ? "number" : "UTF-8 text");
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, v);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	return a;
}

struct team_set {
	const char *display_name, *budget, *period, *thresholds, *admins, *namespaces;
};

/* The body of a set: the fields named (put: every required one). */
static int team_set_body(struct cli *c, const struct team_set *s, int put, json_t **out)
{
	json_t *body = json_object(), *budget = NULL, *v;

	if (body == NULL)
		return CLI_EXIT_API;
	if (put && (s->display_name == NULL || s->budget == NULL || s->period == NULL)) {
		json_decref(body);
		return cli_usage(c, "a new team needs%s%s%s",
			s->display_name ? "" : " --display-name", s->budget ? "" : " --budget",
			s->period ? "" : " --period");
	}
	if (s->display_name && json_object_set_new(body, "display_name",
				       json_string(s->display_name)) != 0)
		goto bad;
	if (s->budget || s->period) {
		budget = json_object();
		if (budget == NULL || json_object_set_new(body, "budget", budget) != 0)
			goto bad;
		if (s->budget && json_object_set_new(budget, "amount", json_string(s->budget)) != 0)
			goto bad;
		if (s->period && json_object_set_new(budget, "period", json_string(s->period)) != 0)
			goto bad;
	}
	if (s->thresholds) {
		v = split_list(c, "--alert-thresholds", s->thresholds, 1);
		if (v == NULL || json_object_set_new(body, "alert_thresholds", v) != 0) {
			json_decref(body);
			return CLI_EXIT_USAGE;
		}
	}
	if (s->admins) {
		v = split_list(c, "--admins", s->admins, 0);
		if (v == NULL || json_object_set_new(body, "admins", v) != 0) {
			json_decref(body);
			return CLI_EXIT_USAGE;
		}
	}
	if (s->namespaces) {
		v = split_list(c, "--namespaces", s->namespaces, 0);
		if (v == NULL || json_object_set_new(body, "namespaces", v) != 0) {
			json_decref(body);
			return CLI_EXIT_USAGE;
		}
	}
	if (json_object_size(body) == 0) {
		json_decref(body);
		return cli_usage(c, "name at least one field to set (see --help)");
	}
	*out = body;
	return CLI_EXIT_OK;
bad:
	json_decref(body);
	return cli_usage(c, "the values must be valid UTF-8");
}

/* set: PATCH a known team with what is named, PUT an unknown one. */
static int team_set(struct cli *c, const char *id, void *ctx)
{
	const struct team_set *s = ctx;
	json_t *body = NULL;
	int exists = 0, rc;

	rc = cli_resource_exists(c, &team_resource, id, &exists);
	if (rc == CLI_EXIT_OK)
		rc = team_set_body(c, s, !exists, &body);
	if (rc == CLI_EXIT_OK)
		rc = cli_resource_call(c, &team_resource, exists ? "PATCH" : "PUT", id, NULL, 0, body);
	json_decref(body);
	return rc;
}

int cmd_team(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "display-name", required_argument, NULL, OPT_DISPLAY_NAME },
		{ "budget", required_argument, NULL, OPT_BUDGET },
		{ "period", required_argument, NULL, OPT_PERIOD },
		{ "alert-thresholds", required_argument, NULL, OPT_THRESHOLDS },
		{ "admins", required_argument, NULL, OPT_ADMINS },
		{ "namespaces", required_argument, NULL, OPT_NAMESPACES },
		{ "include-retired", no_argument, NULL, OPT_INCLUDE_RETIRED },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct team_set s = { NULL, NULL, NULL, NULL, NULL, NULL };
	int o, rc, include_retired = 0;

	c->help = team_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (o) {
		case OPT_DISPLAY_NAME: s.display_name = optarg; break;
		case OPT_BUDGET: s.budget = optarg; break;
		case OPT_PERIOD: s.period = optarg; break;
		case OPT_THRESHOLDS: s.thresholds = optarg; break;
		case OPT_ADMINS: s.admins = optarg; break;
		case OPT_NAMESPACES: s.namespaces = optarg; break;
		case OPT_INCLUDE_RETIRED: include_retired = 1; break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				return rc;
		}
	}
	return cli_resource_run(c, &team_resource, argc, argv,
		s.display_name || s.budget || s.period || s.thresholds || s.admins || s.namespaces,
		include_retired,
		team_set, &s);
}

int cmd_team_alias(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	int o, rc;

	c->help = teams_alias_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		rc = cli_option_common(c, o, argc, argv);
		if (rc != CLI_CONTINUE)
			return rc;
	}
	if (optind + 1 < argc)
		return cli_usage(c, "unexpected argument '%s' (to create or change a team: "
				    "plinth team set %s ...)",
			argv[optind + 1], argv[optind + 1]);
	return cli_resource_call(c, &team_resource, "GET", optind < argc ? argv[optind] : NULL, NULL,
		0, NULL);
}
