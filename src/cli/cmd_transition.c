/*
 * cmd_transition.c - `plinth start|complete|cancel ID`: move an allocation
 * through its lifecycle.  The daemon owns the state machine and the billing;
 * this file must never decide whether a transition is allowed.
 */
#include <string.h>

#include "cli/cli.h"

static const char start_help[] =
	"Usage: plinth start ID [--at RFC3339]\n"
	"\n"
	"Mark an approved allocation as running; accrual starts then.\n"
	"\n"
	"Options:\n"
	"  --at TIME        when it started (RFC 3339 UTC, default the daemon's clock);\n"
	"                   service and admin tokens only, not in the future\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth start alloc_7kq2m6x4tjvw3bzpcd5c --at 2026-11-29T20:40:00Z\n";

static const char complete_help[] =
	"Usage: plinth complete ID [--at RFC3339]\n"
	"\n"
	"Finish a running allocation: the actual cost (per second, capped at the\n"
	"maximum runtime) is billed and the rest of the reservation is released.\n"
	"\n"
	"Options:\n"
	"  --at TIME        when it ended (RFC 3339 UTC, default the daemon's clock);\n"
	"                   service and admin tokens only, not in the future\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth complete alloc_7kq2m6x4tjvw3bzpcd5c --at 2026-11-30T02:10:00Z\n";

static const char cancel_help[] =
	"Usage: plinth cancel ID\n"
	"\n"
	"Cancel an approved (not yet started) allocation and release its whole\n"
	"reservation.\n"
	"\n"
	"Options:\n"
	"  (none besides the global options)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth cancel alloc_7kq2m6x4tjvw3bzpcd5c\n";

enum { OPT_AT = 1000 };

/* verb: "start", "complete" or "cancel"; at_field: the body's time field or NULL. */
static int transition_run(struct cli *c, int argc, char **argv, const char *verb,
	const char *at_field)
{
	static const struct option with_at[] = {
		{ "at", required_argument, NULL, OPT_AT },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	static const struct option without_at[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	const char *at = NULL, *id;
	json_t *body = NULL, *res = NULL;
	struct cli_path p;
	int o, rc;

	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, at_field ? with_at : without_at,
			NULL)) != -1) {
		if (o == OPT_AT) {
			at = optarg;
			continue;
		}
		rc = cli_option_common(c, o, argc, argv);
		if (rc != CLI_CONTINUE)
			return rc;
	}
	if (optind >= argc)
		return cli_usage(c, "an allocation ID is required");
	if (optind + 1 != argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind + 1]);
	id = argv[optind];

	body = json_object(); /* always a JSON body, "{}" when there is nothing to say */
	if (body == NULL)
		return CLI_EXIT_API;
	if (at != NULL && json_object_set_new(body, at_field, json_string(at)) != 0) {
		rc = cli_usage(c, "--at must be valid UTF-8");
		goto out;
	}
	cli_path_init(&p, "/v1/allocations");
	cli_path_segment(&p, id);
	cli_path_literal(&p, "/");
	cli_path_literal(&p, verb);
	rc = cli_call(c, "POST", &p, body, NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		rc = cli_print_allocation(res);
out:
	json_decref(res);
	json_decref(body);
	return rc;
}

int cmd_start(struct cli *c, int argc, char **argv)
{
	c->help = start_help;
	return transition_run(c, argc, argv, "start", "started_at");
}

int cmd_complete(struct cli *c, int argc, char **argv)
{
	c->help = complete_help;
	return transition_run(c, argc, argv, "complete", "ended_at");
}

int cmd_cancel(struct cli *c, int argc, char **argv)
{
	c->help = cancel_help;
	return transition_run(c, argc, argv, "cancel", NULL);
}
