/*
 * cmd_quote.c - `plinth quote`: price a request and check it against the
 * team's budget and the GPU type's capacity.  Changes nothing on the daemon;
 * must never compute the price itself (the daemon's answer is the truth).
 */
#include "cli/cli.h"

static const char quote_help[] =
	"Usage: plinth quote --team T --gpu-type G --gpus N --hours H\n"
	"\n"
	"Price a GPU request and check it against the team's budget and the\n"
	"GPU type's free capacity. Nothing is reserved. Exits 1 when not approved.\n"
	"\n"
	"Options:\n"
	"  --team T         team that would pay\n"
	"  --gpu-type G     GPU type id, e.g. h100-80gb\n"
	"  --gpus N         number of GPUs (integer >= 1)\n"
	"  --hours H        maximum runtime in hours (decimal, e.g. 1.5)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth quote --team ml --gpu-type h100-80gb --gpus 8 --hours 24\n";

enum { OPT_TEAM = 1000, OPT_GPU_TYPE, OPT_GPUS, OPT_HOURS };

static int quote_print(const json_t *q)
{
	struct cli_table *t = cli_table_new(2, NULL, "ll");
	const json_t *reasons = json_object_get(q, "reasons");
	int approved = json_is_true(json_object_get(q, "approved"));
	size_t i;
	json_t *r;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	cli_table_cell(t, "approved");
	cli_table_cell(t, approved ? "yes" : "no");
	cli_table_cell(t, "team");
	cli_table_cell_json(t, q, "team");
	cli_table_cell(t, "gpu_type");
	cli_table_cell_json(t, q, "gpu_type");
	cli_table_cell(t, "gpu_count");
	cli_table_cell_json(t, q, "gpu_count");
	cli_table_cell(t, "max_runtime_hours");
	cli_table_cell_json(t, q, "max_runtime_hours");
	cli_table_cell(t, "price_per_gpu_hour");
	cli_table_cell_money(t, q, "price_per_gpu_hour", "USD");
	cli_table_cell(t, "estimated_cost");
	cli_table_cell_money(t, q, "estimated_cost", "USD");
	cli_table_cell(t, "available");
	cli_table_cell_money(t, q, "available", "USD");
	cli_table_cell(t, "gpus_available");
	cli_table_cell_json(t, q, "gpus_available");
	json_array_foreach(reasons, i, r) {
		cli_table_cell(t, "reason");
		cli_table_cell(t, json_string_value(r));
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

int cmd_quote(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "team", required_argument, NULL, OPT_TEAM },
		{ "gpu-type", required_argument, NULL, OPT_GPU_TYPE },
		{ "gpus", required_argument, NULL, OPT_GPUS },
		{ "hours", required_argument, NULL, OPT_HOURS },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *team = NULL, *gpu_type = NULL, *gpus = NULL, *hours = NULL;
	json_t *body = NULL, *res = NULL;
	int o, rc;

	c->help = quote_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (o) {
		case OPT_TEAM: team = optarg; break;
		case OPT_GPU_TYPE: gpu_type = optarg; break;
		case OPT_GPUS: gpus = optarg; break;
		case OPT_HOURS: hours = optarg; break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				return rc;
		}
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);

	body = json_object();
	if (body == NULL)
		return CLI_EXIT_API;
	rc = cli_body_request(c, body, team, gpu_type, gpus, hours);
	if (rc != CLI_EXIT_OK)
		goto out;
	{
		struct cli_path p;
		cli_path_init(&p, "/v1/quotes");
		rc = cli_call(c, "POST", &p, body, NULL, &res);
	}
	if (rc != CLI_EXIT_OK)
		goto out;
	if (!c->json)
		rc = quote_print(res);
	/* Not approved is a refusal: scripts see it in the exit code.  The reasons
	 * are in the table (or the JSON) already: said once. */
	if (rc == CLI_EXIT_OK && !json_is_true(json_object_get(res, "approved"))) {
		cli_printf(stderr, "plinth: quote not approved\n");
		rc = CLI_EXIT_API;
	}
out:
	json_decref(res);
	json_decref(body);
	return rc;
}
