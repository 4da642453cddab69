/*
 * cmd_token.c - `plinth token create|list|revoke` (admin).  A new token's
 * secret is shown exactly once; this file must never write it anywhere but
 * stdout (no files, no logs).
 */
#include <string.h>

#include "cli/cli.h"

static const char token_help[] =
	"Usage: plinth token create --name N --role R [--team T]...\n"
	"       plinth token list [--active]\n"
	"       plinth token revoke ID\n"
	"\n"
	"Manage API tokens (needs an admin token). `create` prints the new secret\n"
	"once: store it safely, it cannot be shown again. `revoke` refuses it at once.\n"
	"\n"
	"Options:\n"
	"  --name N         a name for the token, e.g. ci-ml\n"
	"  --role R         admin, finance, member or service\n"
	"  --team T         a team the token is bound to (members need one); repeat for more\n"
	"  --active         list: only tokens that are not revoked (STATUS shows active/revoked)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Examples:\n"
	"  plinth token create --name alice --role member --team ml\n"
	"  plinth token list --active\n"
	"  plinth token revoke tok_4fj7w2nq6xkt3rmb\n";

enum { OPT_NAME = 1000, OPT_ROLE, OPT_TEAM, OPT_ACTIVE };

static int token_create(struct cli *c, const char *name, const char *role, json_t *teams)
{
	json_t *body = NULL, *res = NULL;
	struct cli_table *t = NULL;
	struct cli_path p;
	int rc = CLI_EXIT_API;

	if (name == NULL)
		return cli_usage(c, "--name is required");
	if (role == NULL)
		return cli_usage(c, "--role is required");
	body = json_object();
	if (body == NULL)
		goto out;
	if (json_object_set_new(body, "name", json_string(name)) != 0 ||
	    json_object_set_new(body, "role", json_string(role)) != 0 ||
	    json_object_set(body, "teams", teams) != 0) {
		rc = cli_usage(c, "--name, --role and --team must be valid UTF-8");
		goto out;
	}
	cli_path_init(&p, "/v1/tokens");
	rc = cli_call(c, "POST", &p, body, NULL, &res);
	if (rc != CLI_EXIT_OK)
		goto out;
	cli_printf(stderr, "plinth: warning: this is the only time the token secret is shown; "
		"store it now\n");
	if (c->json)
		goto out;
	t = cli_table_new(2, NULL, "ll");
	if (t == NULL) {
		rc = CLI_EXIT_API;
		goto out;
	}
	cli_table_cell(t, "id");
	cli_table_cell_json(t, res, "id");
	cli_table_cell(t, "name");
	cli_table_cell_json(t, res, "name");
	cli_table_cell(t, "role");
	cli_table_cell_json(t, res, "role");
	cli_table_cell(t, "teams");
	cli_table_cell_json(t, res, "teams");
	cli_table_cell(t, "created_at");
	cli_table_cell_json(t, res, "created_at");
	cli_table_cell(t, "token");
	cli_table_cell_json(t, res, "token");
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
out:
	cli_table_free(t);
	json_decref(res);
	json_decref(body);
	return rc;
}

static int token_list(struct cli *c, int active)
{
	static const char *const headers[] = { "ID", "NAME", "ROLE", "TEAMS", "STATUS",
		"CREATED AT", "REVOKED AT" };
	struct cli_table *t = NULL;
	json_t *res = NULL, *tok;
	struct cli_path p;
	size_t i;
	int rc;

	cli_path_init(&p, "/v1/tokens");
	cli_path_query(&p, "status", active ? "active" : NULL);
	rc = cli_call(c, "GET", &p, NULL, NULL, &res);
	if (rc != CLI_EXIT_OK || c->json)
		goto out;
	t = cli_table_new(7, headers, "lllllll");
	if (t == NULL) {
		rc = CLI_EXIT_API;
		goto out;
	}
	json_array_foreach(json_object_get(res, "items"), i, tok) {
		cli_table_cell_json(t, tok, "id");
		cli_table_cell_json(t, tok, "name");
		cli_table_cell_json(t, tok, "role");
		cli_table_cell_json(t, tok, "teams");
		cli_table_cell_json(t, tok, "status");
		cli_table_cell_json(t, tok, "created_at");
		cli_table_cell_json(t, tok, "revoked_at");
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
out:
	cli_table_free(t);
	json_decref(res);
	return rc;
}

static int token_revoke(struct cli *c, const char *id)
{
	json_t *res = NULL;
	struct cli_path p;
	int rc;

	cli_path_init(&p, "/v1/tokens");
	cli_path_segment(&p, id);
	rc = cli_call(c, "DELETE", &p, NULL, NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		cli_printf(stdout, "revoked %s\n", id);
	json_decref(res);
	return rc;
}

int cmd_token(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, OPT_NAME },
		{ "role", required_argument, NULL, OPT_ROLE },
		{ "team", required_argument, NULL, OPT_TEAM },
		{ "active", no_argument, NULL, OPT_ACTIVE },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *role = NULL, *sub;
	json_t *teams = json_array(); /* owned here */
	int o, active = 0, rc = CLI_EXIT_API;

	c->help = token_help;
	if (teams == NULL)
		return CLI_EXIT_API;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (o) {
		case OPT_NAME: name = optarg; break;
		case OPT_ROLE: role = optarg; break;
		case OPT_ACTIVE: active = 1; break;
		case OPT_TEAM:
			if (json_array_append_new(teams, json_string(optarg)) != 0) {
				rc = cli_usage(c, "--team must be valid UTF-8");
				goto out;
			}
			break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				goto out;
		}
	}
	if (optind >= argc) {
		rc = cli_usage(c, "a subcommand is required: create, list or revoke");
		goto out;
	}
	sub = argv[optind];
	if (strcmp(sub, "create") == 0 && optind + 1 == argc) {
		rc = token_create(c, name, role, teams);
	} else if (strcmp(sub, "list") == 0 && optind + 1 == argc) {
		rc = token_list(c, active);
	} else if (strcmp(sub, "revoke") == 0 && optind + 2 == argc) {
		rc = token_revoke(c, argv[optind + 1]);
	} else if (strcmp(sub, "create") == 0 || strcmp(sub, "list") == 0 ||
		   strcmp(sub, "revoke") == 0) {
		rc = cli_usage(c, "wrong number of arguments for '%s'", sub);
	} else {
		rc = cli_usage(c, "unknown subcommand '%s'", sub);
	}
out:
	json_decref(teams);
	return rc;
}
