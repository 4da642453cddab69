/*
 * cmd_audit.c - `plinth audit`: the audit log (admin and finance tokens),
 * filtered by team, actor, action and time, oldest first, following the
 * API's cursors up to --limit entries.  Read-only: must never change state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char audit_help[] =
	"Usage: plinth audit [--team T] [--actor A] [--action X] [--since TIME] [--until TIME]\n"
	"                    [--limit N]\n"
	"\n"
	"Show who changed what, oldest first: one line per change with its time (RFC 3339),\n"
	"actor, action, team and a short summary. Needs an admin or finance token.\n"
	"\n"
	"Options:\n"
	"  --team T         only this team's entries\n"
	"  --actor A        only changes made by this token (its id or its name)\n"
	"  --action X       only this action, e.g. team.update, allocation.approve,\n"
	"                   gpu_type.update, token.revoke\n"
	"  --since TIME     only entries at or after TIME (RFC 3339 or YYYY-MM-DD)\n"
	"  --until TIME     only entries before TIME (RFC 3339 or YYYY-MM-DD)\n"
	"  --limit N        show at most N entries (default 100); pages are followed\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Examples:\n"
	"  plinth audit --team ml --since 2026-11-01 --until 2026-12-01\n"
	"  plinth audit --action team.update --actor admin\n";

enum { OPT_TEAM = 1000, OPT_ACTOR, OPT_ACTION, OPT_SINCE, OPT_UNTIL, OPT_LIMIT };

#define AUDIT_DEFAULT_LIMIT 100

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

/* One line on what an entry changed, from its after (or before) record. */
static void audit_summary(struct cli_table *t, const json_t *e)
{
	const char *type = str(e, "object_type");
	const json_t *b = json_object_get(e, "before"), *a = json_object_get(e, "after");
	const json_t *r = json_is_object(a) ? a : b;
	char h[32];

	if (strcmp(type, "team") == 0) {
		const json_t *bb = json_object_get(b, "budget"), *ab = json_object_get(r, "budget");
		if (json_is_object(bb) && strcmp(str(bb, "amount"), str(ab, "amount")) != 0)
			cli_table_cellf(t, "budget %s -> %s %s %s", str(bb, "amount"),
				str(ab, "amount"), str(r, "currency"), str(ab, "period"));
		else
			cli_table_cellf(t, "budget %s %s %s", str(ab, "amount"), str(r, "currency"),
				str(ab, "period"));
	} else if (strcmp(type, "gpu_type") == 0 && json_is_object(r) &&
		   json_object_get(r, "price_per_gpu_hour") != NULL) {
		cli_table_cellf(t, "%s %s %s/GPU-hour, capacity %s", str(r, "id"),
			str(r, "price_per_gpu_hour"), str(r, "currency"),
			cli_json_text(json_object_get(r, "capacity"), h, sizeof(h)));
	} else if (strcmp(type, "allocation") == 0 && json_is_object(r)) {
		char n[32], m[CLI_MONEY_LEN];
		const char *cost = json_is_string(json_object_get(r, "actual_cost")) ?
			"actual_cost" : "estimated_cost";
		/* Money to cents as in every table; --json keeps the full value. */
		cli_table_cellf(t, "%s x %s, %s h, %s %s",
			cli_json_text(json_object_get(r, "gpu_count"), n, sizeof(n)),
			str(r, "gpu_type"),
			cli_json_text(json_object_get(r, "max_runtime_hours"), h, sizeof(h)),
			strcmp(cost, "actual_cost") == 0 ? "actual" : "estimated",
			cli_money_text(json_string_value(json_object_get(r, cost)),
				       json_string_value(json_object_get(r, "currency")), m,
				       sizeof(m)));
	} else if (strcmp(type, "token") == 0 && json_is_object(r)) {
		cli_table_cellf(t, "%s (%s)", str(r, "name"), str(r, "role"));
	} else {
		char *text = json_is_null(r) || r == NULL ? NULL : json_dumps(r, JSON_COMPACT);
		cli_table_cell(t, text ? text : "-");
		free(text);
	}
}

static int audit_table(const json_t *items, int more)
{
	static const char *const headers[] = { "AT", "ACTOR", "ACTION", "TEAM", "OBJECT",
		"SUMMARY" };
	struct cli_table *t = cli_table_new(6, headers, "llllll");
	size_t i;
	json_t *e;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	json_array_foreach(items, i, e) {
		const json_t *actor = json_object_get(e, "actor");
		cli_table_cell_json(t, e, "at");
		cli_table_cell(t, json_is_string(json_object_get(actor, "name")) &&
				json_string_length(json_object_get(actor, "name")) > 0 ?
				str(actor, "name") : str(actor, "id"));
		cli_table_cell_json(t, e, "action");
		cli_table_cell_json(t, e, "team");
		cli_table_cell_json(t, e, "object_id");
		audit_summary(t, e);
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	if (json_array_size(items) == 0)
		cli_printf(stdout, "(no audit entries)\n");
	if (more)
		cli_printf(stdout, "(more entries: raise --limit or narrow the filters)\n");
	cli_table_free(t);
	return rc;
}

int cmd_audit(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "team", required_argument, NULL, OPT_TEAM },
		{ "actor", required_argument, NULL, OPT_ACTOR },
		{ "action", required_argument, NULL, OPT_ACTION },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *team = NULL, *actor = NULL, *action = NULL, *since = NULL, *until = NULL;
	const char *limit = NULL;
	long long n = AUDIT_DEFAULT_LIMIT;
	json_t *items = NULL;
	struct cli_path p;
	int o, rc, more = 0;

	c->help = audit_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (o) {
		case OPT_TEAM: team = optarg; break;
		case OPT_ACTOR: actor = optarg; break;
		case OPT_ACTION: action = optarg; break;
		case OPT_SINCE: since = optarg; break;
		case OPT_UNTIL: until = optarg; break;
		case OPT_LIMIT: limit = optarg; break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				return rc;
		}
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (limit != NULL && (cli_parse_int(limit, &n) != 0 || n < 1))
		return cli_usage(c, "--limit must be a whole number of at least 1, got '%s'", limit);
	cli_path_init(&p, "/v1/audit");
	cli_path_query(&p, "team", team);
	cli_path_query(&p, "actor", actor);
	cli_path_query(&p, "action", action);
	cli_path_query(&p, "since", since);
	cli_path_query(&p, "until", until);
	rc = cli_list_pages(c, &p, n, &items, &more);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = audit_table(items, more);
	json_decref(items);
	return rc;
}
