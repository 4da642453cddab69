/*
 * cmd_resource.c - what `plinth team` and `plinth gpu-type` share: the
 * list|get|set|retire subcommands of an admin-managed resource of the API
 * (a collection path, PUT/PATCH on /ID, POST /ID/retire), the probe that
 * tells `set` whether to create (PUT) or change (PATCH), and printing the
 * answer as a table or, with --json, as the API sent it.
 */
#include <string.h>

#include "cli/cli.h"

int cli_resource_call(struct cli *c, const struct cli_resource *r, const char *method,
	const char *id, const char *suffix, int include_retired, json_t *body)
{
	json_t *res = NULL;
	struct cli_path p;
	int rc;

	cli_path_init(&p, r->path);
	if (id != NULL)
		cli_path_segment(&p, id);
	if (suffix != NULL)
		cli_path_literal(&p, suffix);
	if (include_retired)
		cli_path_query(&p, "include_retired", "true");
	rc = cli_call(c, method, &p, body, NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = id != NULL ? r->print_one(res) : r->print_list(res);
	json_decref(res);
	return rc;
}

int cli_resource_exists(struct cli *c, const struct cli_resource *r, const char *id, int *exists)
{
	json_t *res = NULL;
	struct cli_path p;
	int json = c->json, rc;

	cli_path_init(&p, r->path);
	cli_path_segment(&p, id);
	c->json = 0; /* the probe prints nothing; the write prints the answer */
	c->quiet_status = 404;
	rc = cli_call(c, "GET", &p, NULL, NULL, &res);
	c->json = json;
	c->quiet_status = 0;
	json_decref(res);
	if (rc != CLI_EXIT_OK && c->status != 404)
		return rc;
	*exists = rc == CLI_EXIT_OK;
	return CLI_EXIT_OK;
}

int cli_resource_run(struct cli *c, const struct cli_resource *r, int argc, char **argv,
	int named, int include_retired, int (*set)(struct cli *c, const char *id, void *ctx),
	void *ctx)
{
	const char *sub;
	int nargs;

	if (optind >= argc)
		return cli_usage(c, "a subcommand is required: list, get, set or retire");
	sub = argv[optind];
	nargs = argc - optind - 1;
	if (strcmp(sub, "list") == 0 && nargs == 0 && !named)
		return cli_resource_call(c, r, "GET", NULL, NULL, include_retired, NULL);
	if (strcmp(sub, "get") == 0 && nargs == 1 && !named && !include_retired)
		return cli_resource_call(c, r, "GET", argv[optind + 1], NULL, 0, NULL);
	if (strcmp(sub, "set") == 0 && nargs == 1 && !include_retired)
		return set(c, argv[optind + 1], ctx);
	if (strcmp(sub, "retire") == 0 && nargs == 1 && !named && !include_retired)
		return cli_resource_call(c, r, "POST", argv[optind + 1], "/retire", 0, NULL);
	if (strcmp(sub, "list") != 0 && strcmp(sub, "get") != 0 && strcmp(sub, "set") != 0 &&
	    strcmp(sub, "retire") != 0)
		return cli_usage(c, "unknown subcommand '%s' (list, get, set or retire)", sub);
	if (named || include_retired)
		return cli_usage(c, "'%s' takes no such option", sub);
	return cli_usage(c, "'%s' takes %s", sub, strcmp(sub, "list") == 0 ? "no argument" : "one id");
}
