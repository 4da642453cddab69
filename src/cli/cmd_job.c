/*
 * cmd_job.c - `plinth job list` (jobs made by `plinth submit` / POST
 * /v1/jobs, newest first; a member sees its teams' jobs) and `plinth job
 * get ID` (one job: its state, allocation, and where its manifests went).
 * Read-only: must never change state.
 */
#include <string.h>

#include "cli/cli.h"

static const char job_help[] =
	"Usage: plinth job list [--team T] [--limit N]\n"
	"       plinth job get ID\n"
	"\n"
	"List the training jobs submitted with `plinth submit`, newest first, or show one.\n"
	"A job is created (its allocation approved, its manifests committed), failed\n"
	"(refused or a step failed: the problem is shown), or in progress.\n"
	"\n"
	"Options:\n"
	"  --team T         only this team's jobs\n"
	"  --limit N        show at most N jobs (default 100); pages are followed\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Examples:\n"
	"  plinth job list --team ml\n"
	"  plinth job get job_tlmlipjqs65ecogxhkoj\n";

enum { OPT_TEAM = 1000, OPT_LIMIT };

#define JOB_DEFAULT_LIMIT 100

/* The allocation of a job: in its outcome once created, else while in progress. */
static const json_t *job_allocation_id(const json_t *j)
{
	const json_t *id = json_object_get(j, "allocation_id");
	if (json_is_string(id))
		return id;
	id = json_object_get(json_object_get(json_object_get(j, "outcome"), "allocation"), "id");
	if (json_is_string(id))
		return id;
	return json_object_get(json_object_get(j, "outcome"), "allocation");
}

static int job_list_table(const json_t *items, int more)
{
	static const char *const headers[] = { "ID", "TEAM", "NAME", "STATE", "ALLOCATION",
		"CREATED AT" };
	struct cli_table *t = cli_table_new(6, headers, "llllll");
	char buf[128];
	size_t i;
	json_t *j;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	json_array_foreach(items, i, j) {
		cli_table_cell_json(t, j, "id");
		cli_table_cell_json(t, j, "team");
		cli_table_cell_json(t, j, "name");
		cli_table_cell_json(t, j, "state");
		cli_table_cell(t, cli_json_text(job_allocation_id(j), buf, sizeof(buf)));
		cli_table_cell_json(t, j, "created_at");
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	if (json_array_size(items) == 0)
		cli_printf(stdout, "(no jobs)\n");
	if (more)
		cli_printf(stdout, "(more jobs: raise --limit)\n");
	cli_table_free(t);
	return rc;
}

static int job_show(const json_t *j)
{
	const json_t *out = json_object_get(j, "outcome");
	const json_t *git = json_object_get(out, "gitops");
	struct cli_table *t = cli_table_new(2, NULL, "ll");
	char buf[128];
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	cli_table_cell(t, "id");
	cli_table_cell_json(t, j, "id");
	cli_table_cell(t, "team");
	cli_table_cell_json(t, j, "team");
	cli_table_cell(t, "name");
	cli_table_cell_json(t, j, "name");
	cli_table_cell(t, "state");
	cli_table_cell_json(t, j, "state");
	cli_table_cell(t, "allocation");
	cli_table_cell(t, cli_json_text(job_allocation_id(j), buf, sizeof(buf)));
	cli_table_cell(t, "created_at");
	cli_table_cell_json(t, j, "created_at");
	if (json_is_object(git)) {
		cli_table_cell(t, "gitops_path");
		cli_table_cell_json(t, git, "path");
		cli_table_cell(t, "gitops_commit");
		cli_table_cell_json(t, git, "commit");
	}
	if (json_is_string(json_object_get(out, "detail"))) {
		cli_table_cell(t, "problem");
		cli_table_cell_json(t, out, "detail");
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

int cmd_job(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "team", required_argument, NULL, OPT_TEAM },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *team = NULL, *limit = NULL, *sub;
	long long n = JOB_DEFAULT_LIMIT;
	json_t *res = NULL;
	struct cli_path p;
	int o, rc, more = 0;

	c->help = job_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (o) {
		case OPT_TEAM: team = optarg; break;
		case OPT_LIMIT: limit = optarg; break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				return rc;
		}
	}
	if (optind >= argc)
		return cli_usage(c, "a subcommand is required: list or get");
	sub = argv[optind];
	if (strcmp(sub, "get") == 0) {
		if (optind + 2 != argc)
			return cli_usage(c, "get needs exactly one job ID");
		if (team || limit)
			return cli_usage(c, "get takes no filters");
		cli_path_init(&p, "/v1/jobs");
		cli_path_segment(&p, argv[optind + 1]);
		rc = cli_call(c, "GET", &p, NULL, NULL, &res);
		if (rc == CLI_EXIT_OK && !c->json)
			rc = job_show(res);
		json_decref(res);
		return rc;
	}
	if (strcmp(sub, "list") != 0)
		return cli_usage(c, "unknown subcommand '%s'", sub);
	if (optind + 1 != argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind + 1]);
	if (limit != NULL && (cli_parse_int(limit, &n) != 0 || n < 1))
		return cli_usage(c, "--limit must be a whole number of at least 1, got '%s'", limit);
	cli_path_init(&p, "/v1/jobs");
	cli_path_query(&p, "team", team);
	rc = cli_list_pages(c, &p, n, &res, &more);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = job_list_table(res, more);
	json_decref(res);
	return rc;
}
