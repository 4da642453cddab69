/*
 * cmd_allocate.c - `plinth allocate`: ask the daemon to reserve GPUs for a
 * team's project.  The daemon decides approval atomically; this command must
 * never retry a refused request or invent an idempotency key on its own.
 */
#include <string.h>

#include "cli/cli.h"

static const char allocate_help[] =
	"Usage: plinth allocate --team T --project P --gpu-type G --gpus N --hours H\n"
	"                       [--purpose S] [--label k=v]... [--idempotency-key K]\n"
	"\n"
	"Reserve GPUs for a project. The estimated cost is reserved from the team's\n"
	"budget at once; a refusal (budget or capacity) exits 1 and says what is left.\n"
	"\n"
	"Options:\n"
	"  --team T               team that pays\n"
	"  --project P            project name (a DNS label, e.g. llm-pretrain)\n"
	"  --gpu-type G           GPU type id, e.g. h100-80gb\n"
	"  --gpus N               number of GPUs (integer >= 1)\n"
	"  --hours H              maximum runtime in hours (decimal, e.g. 1.5)\n"
	"  --purpose S            free text, why these GPUs are needed\n"
	"  --label k=v            a label; repeat for more\n"
	"  --idempotency-key K    resend safely: the same key returns the first answer\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth allocate --team ml --project llm --gpu-type h100-80gb --gpus 8 --hours 24 \\\n"
	"      --label run=42 --idempotency-key run-42\n";

enum { OPT_TEAM = 1000, OPT_PROJECT, OPT_GPU_TYPE, OPT_GPUS, OPT_HOURS, OPT_PURPOSE,
	OPT_LABEL, OPT_IDEM };

/* Adds "k=v" to labels; returns 0 or a usage error. */
static int allocate_label_add(struct cli *c, json_t *labels, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[256];

	if (eq == NULL || eq == kv)
		return cli_usage(c, "--label must look like key=value, got '%s'", kv);
	if ((size_t)(eq - kv) >= sizeof key)
		return cli_usage(c, "--label key is too long");
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	if (json_object_set_new(labels, key, json_string(eq + 1)) != 0)
		return cli_usage(c, "--label '%s' is not valid UTF-8", kv);
	return CLI_EXIT_OK;
}

int cmd_allocate(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "team", required_argument, NULL, OPT_TEAM },
		{ "project", required_argument, NULL, OPT_PROJECT },
		{ "gpu-type", required_argument, NULL, OPT_GPU_TYPE },
		{ "gpus", required_argument, NULL, OPT_GPUS },
		{ "hours", required_argument, NULL, OPT_HOURS },
		{ "purpose", required_argument, NULL, OPT_PURPOSE },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "idempotency-key", required_argument, NULL, OPT_IDEM },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *team = NULL, *project = NULL, *gpu_type = NULL, *gpus = NULL, *hours = NULL;
	const char *purpose = NULL, *idem = NULL;
	json_t *body = NULL, *labels = NULL, *res = NULL;
	char idem_header[300];
	struct cli_path p;
	int o, rc = CLI_EXIT_API;

	c->help = allocate_help;
	labels = json_object(); /* owned here until moved into body */
	if (labels == NULL)
		goto out;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		switch (o) {
		case OPT_TEAM: team = optarg; break;
		case OPT_PROJECT: project = optarg; break;
		case OPT_GPU_TYPE: gpu_type = optarg; break;
		case OPT_GPUS: gpus = optarg; break;
		case OPT_HOURS: hours = optarg; break;
		case OPT_PURPOSE: purpose = optarg; break;
		case OPT_IDEM: idem = optarg; break;
		case OPT_LABEL:
			rc = allocate_label_add(c, labels, optarg);
			if (rc != CLI_EXIT_OK)
				goto out;
			break;
		default:
			rc = cli_option_common(c, o, argc, argv);
			if (rc != CLI_CONTINUE)
				goto out;
		}
	}
	if (optind < argc) {
		rc = cli_usage(c, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (project == NULL) {
		rc = cli_usage(c, "--project is required");
		goto out;
	}
	if (idem != NULL) {
		size_t len = strlen(idem);
		int ok = len >= 1 && len <= 255;
		for (size_t i = 0; ok && i < len; i++)
			ok = idem[i] >= 0x21 && idem[i] <= 0x7e;
		if (!ok) {
			rc = cli_usage(c, "--idempotency-key must be 1..255 printable ASCII characters");
			goto out;
		}
		snprintf(idem_header, sizeof idem_header, "Idempotency-Key: %s", idem);
	}

	rc = CLI_EXIT_API;
	body = json_object();
	if (body == NULL)
		goto out;
	rc = cli_body_request(c, body, team, gpu_type, gpus, hours);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (json_object_set_new(body, "project", json_string(project)) != 0 ||
	    (purpose != NULL && json_object_set_new(body, "purpose", json_string(purpose)) != 0)) {
		rc = cli_usage(c, "--project and --purpose must be valid UTF-8");
		goto out;
	}
	if (json_object_size(labels) > 0) {
		if (json_object_set(body, "labels", labels) != 0) {
			rc = CLI_EXIT_API;
			goto out;
		}
	}
	cli_path_init(&p, "/v1/allocations");
	rc = cli_call(c, "POST", &p, body, idem ? idem_header : NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = cli_print_allocation(res);
out:
	json_decref(res);
	json_decref(body);
	json_decref(labels);
	return rc;
}
