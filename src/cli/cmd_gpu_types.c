/*
 * cmd_gpu_types.c - `plinth gpu-types`: the GPU catalog (ids, names, prices
 * and free GPUs), so a data scientist can find a valid --gpu-type.  Read-only;
 * the admin's `plinth gpu-type list|get|set|retire` manages the catalog.
 */
#include "cli/cli.h"

static const char gpu_types_help[] =
	"Usage: plinth gpu-types\n"
	"\n"
	"List the GPU types: the id to pass as --gpu-type, the name, the price per\n"
	"GPU hour, and the capacity with how many GPUs are allocated and free now.\n"
	"\n"
	"Options:\n"
	"  (none besides the global options)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth gpu-types\n";

static int gpu_types_print(const json_t *res)
{
	static const char *const headers[] = { "ID", "NAME", "PRICE/GPU-HOUR", "CAPACITY",
		"ALLOCATED", "AVAILABLE" };
	struct cli_table *t = cli_table_new(6, headers, "llrrrr");
	size_t i;
	json_t *g;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	json_array_foreach(json_object_get(res, "items"), i, g) {
		cli_table_cell_json(t, g, "id");
		cli_table_cell_json(t, g, "name");
		cli_table_cell_money(t, g, "price_per_gpu_hour",
			json_string_value(json_object_get(g, "currency")));
		cli_table_cell_json(t, g, "capacity");
		cli_table_cell_json(t, g, "allocated");
		cli_table_cell_json(t, g, "available");
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	if (rc == CLI_EXIT_OK && json_array_size(json_object_get(res, "items")) == 0)
		cli_printf(stdout, "(no GPU types)\n");
	cli_table_free(t);
	return rc;
}

int cmd_gpu_types(struct cli *c, int argc, char **argv)
{
	json_t *res = NULL;
	struct cli_path p;
	int rc;

	c->help = gpu_types_help;
	rc = cli_options_common_only(c, argc, argv);
	if (rc != CLI_CONTINUE)
		return rc;
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	cli_path_init(&p, "/v1/gpu-types");
	rc = cli_call(c, "GET", &p, NULL, NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = gpu_types_print(res);
	json_decref(res);
	return rc;
}
