/*
 * cmd_quote.c - `plinth quote`: price a request and check it against the
 * team's budget and the GPU type's capacity.  Changes nothing on the daemon;
 * must never compute the price itself (the daemon's answer is the truth).
 */
#include <stdbool.h>
#include <string.h>

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

/* "a, b and c" of a JSON array of strings into buf; "" when empty. */
static void names_join(const json_t *a, char *buf, size_t len)
{
	size_t i, n = json_array_size(a), off = 0;
	json_t *e;

	buf[0] = '\0';
	json_array_foreach(a, i, e) {
		const char *v = json_string_value(e);
		int w = snprintf(buf + off, len - off, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
				 v ? v : "?");
		if (w < 0 || (size_t)w >= len - off)
			break;
		off += (size_t)w;
	}
}

void cli_refusal_lines(FILE *f, const json_t *doc, const json_t *req)
{
	const json_t *mg = json_object_get(doc, "max_gpus_that_fit");
	const json_t *mh = json_object_get(doc, "max_hours_that_fit");
	const json_t *free_types = json_object_get(doc, "free_gpu_types");
	char gpus[32], hours[32], line[1024];
	size_t i;
	json_t *e;

	cli_json_text(json_object_get(req, "gpu_count"), gpus, sizeof gpus);
	cli_json_text(json_object_get(req, "max_runtime_hours"), hours, sizeof hours);
	if (json_is_integer(mg) && json_is_string(mh)) {
		long long g = json_integer_value(mg);
		char h[32];
		/* Two decimals at most, cut (not rounded) so that it still fits. */
		const char *dot = strchr(json_string_value(mh), '.');
		snprintf(h, sizeof h, "%.*s", dot ? (int)(dot - json_string_value(mh)) + 3 : 31,
			 json_string_value(mh));
		for (size_t k = strlen(h); dot && k > 0 && (h[k - 1] == '0' || h[k - 1] == '.'); k--) {
			bool was_dot = h[k - 1] == '.';
			h[k - 1] = '\0';
			if (was_dot)
				break;
		}
		const char *renews = json_string_value(json_object_get(doc, "budget_renews_at"));
		char admins[512];
		bool hfit = strcmp(json_string_value(mh), "0") != 0;

		if (hfit && strcmp(h, "0") == 0) /* less than 0.01 h: all of it */
			snprintf(h, sizeof h, "%s", json_string_value(mh));

		if (g > 0 && hfit)
			cli_printf(f, "Fits now: %lld GPU%s for %s h, or %s GPU%s for %s h.", g,
				   g == 1 ? "" : "s", hours, gpus, strcmp(gpus, "1") ? "s" : "", h);
		else if (g > 0)
			cli_printf(f, "Fits now: %lld GPU%s for %s h.", g, g == 1 ? "" : "s", hours);
		else if (hfit)
			cli_printf(f, "Fits now: %s GPU%s for %s h.", gpus, strcmp(gpus, "1") ? "s" : "",
				   h);
		else
			cli_printf(f, "Nothing fits the budget left now.");
		if (renews != NULL)
			cli_printf(f, " Budget renews %.10s.", renews);
		cli_printf(f, "\n");
		names_join(json_object_get(doc, "team_admins"), admins, sizeof admins);
		cli_printf(f, "Ask: %s.\n", admins[0] ? admins : "a Plinth admin to raise the budget");
	}
	if (json_array_size(free_types) > 0) {
		const char *cur = json_string_value(json_object_get(doc, "currency"));
		size_t off = (size_t)snprintf(line, sizeof line, "Free now:");
		json_array_foreach(free_types, i, e) {
			long long nf = json_integer_value(json_object_get(e, "free_gpus"));
			char price[CLI_MONEY_LEN];
			int w = snprintf(line + off, sizeof line - off, "%s %s (%lld GPU%s, %s/GPU-h)",
					 i ? "," : "", json_string_value(json_object_get(e, "id")), nf,
					 nf == 1 ? "" : "s",
					 cli_price_text(json_string_value(json_object_get(e,
						"price_per_gpu_hour")), cur, price, sizeof price));
			if (w < 0 || (size_t)w >= sizeof line - off)
				break;
			off += (size_t)w;
		}
		cli_printf(f, "%s.\n", line);
	}
}

static int quote_print(const json_t *q, const json_t *req)
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
	cli_table_cell_price(t, q, "price_per_gpu_hour", "USD");
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
	/* Not approved: what would fit instead, under the table. */
	if (rc == CLI_EXIT_OK && !approved)
		cli_refusal_lines(stdout, q, req);
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
		rc = quote_print(res, body);
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
