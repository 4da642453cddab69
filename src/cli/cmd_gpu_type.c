/*
 * cmd_gpu_type.c - `plinth gpu-type list|get|set|retire`: the GPU catalog
 * (price per GPU-hour, its provenance, capacity).  set and retire need an
 * admin token.  `set` on an unknown type creates it (PUT: --name, --price
 * and --capacity); on a known one it sends a merge patch of only what is
 * named, so `plinth gpu-type set h100-80gb --capacity 64` keeps the price
 * and where the price came from.
 */
#include <string.h>

#include "cli/cli.h"

static const char gpu_type_help[] =
	"Usage: plinth gpu-type list [--include-retired]\n"
	"       plinth gpu-type get ID\n"
	"       plinth gpu-type set ID [--name S] [--price AMOUNT] [--capacity N]\n"
	"       plinth gpu-type retire ID\n"
	"\n"
	"The GPU catalog: price per GPU-hour, where the price came from, capacity\n"
	"and free GPUs. `set` (admin) creates a type, naming --name, --price and\n"
	"--capacity, or changes only what it names of an existing one (the price's\n"
	"source and date change only with the price); `retire` (admin) stops new\n"
	"quotes and allocations of the type while running ones finish\n"
	"(reactivate: `curl -X PATCH .../v1/gpu-types/ID -d '{\"retired_at\":null}'`).\n"
	"\n"
	"Options:\n"
	"  --name S           the type's name for people, e.g. \"NVIDIA H100 80GB\"\n"
	"  --price AMOUNT     price per GPU-hour, a decimal such as 6.88\n"
	"  --capacity N       GPUs of the type in the cluster\n"
	"  --include-retired  list retired types too\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Examples:\n"
	"  plinth gpu-type list\n"
	"  plinth gpu-type set h100-80gb --capacity 64\n"
	"  plinth gpu-type set b200-192gb --name \"NVIDIA B200\" --price 11.25 --capacity 8\n"
	"  plinth gpu-type retire v100-16gb\n";

enum { OPT_NAME = 1000, OPT_PRICE, OPT_CAPACITY, OPT_INCLUDE_RETIRED };

static const char *gpu_currency(const json_t *g)
{
	const char *cur = json_string_value(json_object_get(g, "currency"));
	return cur ? cur : "USD";
}

static int gpu_print_list(const json_t *res)
{
	static const char *const headers[] = { "ID", "NAME", "PRICE/GPU-HOUR", "CAPACITY",
		"ALLOCATED", "AVAILABLE", "PRICE SOURCE", "STATUS" };
	struct cli_table *t = cli_table_new(8, headers, "llrrrrll");
	size_t i;
	json_t *g;
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	json_array_foreach(json_object_get(res, "items"), i, g) {
		cli_table_cell_json(t, g, "id");
		cli_table_cell_json(t, g, "name");
		cli_table_cell_price(t, g, "price_per_gpu_hour", gpu_currency(g));
		cli_table_cell_json(t, g, "capacity");
		cli_table_cell_json(t, g, "allocated");
		cli_table_cell_json(t, g, "available");
		cli_table_cell_json(t, g, "price_source");
		cli_table_cell(t, json_is_string(json_object_get(g, "retired_at")) ? "retired"
										  : "active");
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

static int gpu_print(const json_t *g)
{
	static const char *const keys[] = { "capacity", "allocated", "available", "price_date",
		"price_source", "updated_at", "retired_at" };
	struct cli_table *t = cli_table_new(2, NULL, "ll");
	int rc;

	if (t == NULL)
		return CLI_EXIT_API;
	cli_table_cell(t, "id");
	cli_table_cell_json(t, g, "id");
	cli_table_cell(t, "name");
	cli_table_cell_json(t, g, "name");
	cli_table_cell(t, "price_per_gpu_hour");
	/* A price has up to six decimals: shown whole, since it multiplies. */
	cli_table_cellf(t, "%s %s", json_string_value(json_object_get(g, "price_per_gpu_hour"))
			? json_string_value(json_object_get(g, "price_per_gpu_hour")) : "-",
		gpu_currency(g));
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		cli_table_cell(t, keys[i]);
		cli_table_cell_json(t, g, keys[i]);
	}
	rc = cli_table_print(t, stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
	cli_table_free(t);
	return rc;
}

static const struct cli_resource gpu_resource = { "/v1/gpu-types", gpu_print, gpu_print_list };

/* What a set names (NULL: not named). */
struct gpu_set {
	const char *name, *price, *capacity;
};

/* set: PATCH a known type with what is named, PUT an unknown one. */
static int gpu_set(struct cli *c, const char *id, void *ctx)
{
	const struct gpu_set *s = ctx;
	json_t *body = NULL;
	long long cap = 0;
	int exists = 0, rc;

	if (s->capacity != NULL && cli_parse_int(s->capacity, &cap) != 0)
		return cli_usage(c, "--capacity must be a whole number, not '%s'", s->capacity);
	if (s->name == NULL && s->price == NULL && s->capacity == NULL)
		return cli_usage(c, "name at least one field to set (see --help)");
	rc = cli_resource_exists(c, &gpu_resource, id, &exists);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (!exists && (s->name == NULL || s->price == NULL || s->capacity == NULL))
		return cli_usage(c, "a new GPU type needs%s%s%s", s->name ? "" : " --name",
			s->price ? "" : " --price", s->capacity ? "" : " --capacity");
	body = json_object();
	if (body == NULL)
		return CLI_EXIT_API;
	if ((s->name && json_object_set_new(body, "name", json_string(s->name)) != 0) ||
	    (s->price && json_object_set_new(body, "price_per_gpu_hour", json_string(s->price)) != 0) ||
	    (s->capacity && json_object_set_new(body, "capacity", json_integer(cap)) != 0))
		rc = cli_usage(c, "the values must be valid UTF-8");
	else
		rc = cli_resource_call(c, &gpu_resource, exists ? "PATCH" : "PUT", id, NULL, 0, body);
	json_decref(body);
	return rc;
}

int cmd_gpu_type(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, OPT_NAME },
		{ "price", required_argument, NULL, OPT_PRICE },
		{ "capacity", required_argument, NULL, OPT_CAPACITY },
		{ "include-retired", no_argument, NULL, OPT_INCLUDE_RETIRED },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct gpu_set s = { NULL, NULL, NULL };
	int o, rc, include_retired = 0;

	c->help = gpu_type_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (o) {
		case OPT_NAME: s.name = optarg; break;
		case OPT_PRICE: s.price = optarg; break;
		case OPT_CAPACITY: s.capacity = optarg; break;
		case OPT_INCLUDE_RETIRED: include_retired = 1; break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				return rc;
		}
	}
	return cli_resource_run(c, &gpu_resource, argc, argv, s.name || s.price || s.capacity,
		include_retired, gpu_set, &s);
}

static const char gpu_types_alias_help[] =
	"Usage: plinth gpu-types\n"
	"\n"
	"The GPU catalog: ids, names, prices, capacity and free GPUs; the same as\n"
	"`plinth gpu-type list` (see `plinth gpu-type --help` to change it).\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth gpu-types\n";

int cmd_gpu_types(struct cli *c, int argc, char **argv)
{
	int rc;

	c->help = gpu_types_alias_help;
	rc = cli_options_common_only(c, argc, argv);
	if (rc != CLI_CONTINUE)
		return rc;
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s' (to create or change a GPU type: "
				    "plinth gpu-type set %s ...)",
			argv[optind], argv[optind]);
	return cli_resource_call(c, &gpu_resource, "GET", NULL, NULL, 0, NULL);
}
