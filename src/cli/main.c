/*
 * main.c - the `plinth` entry point: one binary that is both the daemon
 * (`plinth serve`) and its command-line client.
 *
 * It only parses the global options and dispatches through the command table;
 * it must never do a command's work itself.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static int cmd_version(struct cli *c, int argc, char **argv);
static int cmd_help(struct cli *c, int argc, char **argv);

/* The command table is data: adding a command is one line here. */
static const struct {
	const char *name;
	cli_run_fn run;
	const char *summary;
} commands[] = {
	{ "quote", cmd_quote, "price a request and check it against budget and capacity" },
	{ "allocate", cmd_allocate, "reserve GPUs for a team's project" },
	{ "allocations", cmd_allocations, "list allocations, or `allocations show ID`" },
	{ "start", cmd_start, "mark an approved allocation as running" },
	{ "complete", cmd_complete, "finish a running allocation and bill it" },
	{ "cancel", cmd_cancel, "cancel an approved allocation and release its reservation" },
	{ "team", cmd_team, "list, show, create, change or retire teams and budgets" },
	{ "teams", cmd_team_alias, "list teams, or show one team's budget (= team list/get)" },
	{ "gpu-type", cmd_gpu_type, "list, show, create, change or retire GPU types and prices" },
	{ "gpu-types", cmd_gpu_types, "list the GPU types: ids, prices, free GPUs (= gpu-type list)" },
	{ "costs", cmd_costs, "spend grouped by team, project, GPU type, day or month" },
	{ "export", cmd_export, "download a month's costs as a FOCUS CSV file" },
	{ "token", cmd_token, "create, list or revoke API tokens (admin)" },
	{ "submit", cmd_submit, "submit a training job file (allocation, MLflow, GitOps)" },
	{ "job", cmd_job, "list submitted jobs, or `job get ID`" },
	{ "audit", cmd_audit, "who changed what: the audit log with filters (admin, finance)" },
	{ "controller", cmd_controller, "report real GPU time from Kubernetes Jobs and Pods" },
	{ "version", cmd_version, "print the version" },
	{ "help", cmd_help, "show help for a command" },
	{ "completion", cmd_completion, "print a bash or zsh completion script" },
};

static void usage_print(FILE *f)
{
	cli_printf(f, "%s", "Usage: plinth [global options] <command> [options]\n"
	      "\n"
	      "Plinth keeps GPU spend inside team budgets.\n"
	      "\n"
	      "Commands:\n"
	      "  serve         run the daemon (see `plinth serve --help`)\n"
	      "  migrate       apply database migrations and exit (see `plinth migrate --help`)\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		cli_printf(f, "  %-12s  %s\n", commands[i].name, commands[i].summary);
	cli_printf(f, "%s", "\n" CLI_COMMON_HELP
	      "\n"
	      "Exit codes: 0 ok, 1 refused or failed by the API, 2 usage error, 3 daemon unreachable.\n"
	      "\n"
	      "Example:\n"
	      "  PLINTH_TOKEN=plt_... plinth quote --team ml --gpu-type h100-80gb --gpus 8 --hours 24\n"
	      "Run `plinth <command> --help` for a command's options.\n");
}

static const char version_help[] =
	"Usage: plinth version\n"
	"\n"
	"Print the version of this plinth binary.\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth version\n";

static int cmd_version(struct cli *c, int argc, char **argv)
{
	int rc;

	c->help = version_help;
	optind = 0;
	rc = cli_options_common_only(c, argc, argv);
	if (rc != CLI_CONTINUE)
		return rc;
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (c->json)
		cli_printf(stdout, "{\"version\":\"%s\"}\n", PLINTH_VERSION);
	else
		cli_printf(stdout, "plinth %s\n", PLINTH_VERSION);
	return CLI_EXIT_OK;
}

static int dispatch(struct cli *c, int argc, char **argv);

/* `plinth help CMD` is `plinth CMD --help`. */
static int cmd_help(struct cli *c, int argc, char **argv)
{
	char help_flag[] = "--help";
	char *sub[3] = { NULL, help_flag, NULL };

	if (argc < 2 || strcmp(argv[1], "help") == 0) {
		usage_print(stdout);
		return CLI_EXIT_OK;
	}
	sub[0] = argv[1];
	return dispatch(c, 2, sub);
}

static int dispatch(struct cli *c, int argc, char **argv)
{
	optind = 0; /* every command parses its own argv from the start */
	if (strcmp(argv[0], "serve") == 0)
		return cmd_serve(argc, argv);
	if (strcmp(argv[0], "migrate") == 0)
		return cmd_migrate(argc, argv);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[0], commands[i].name) == 0) {
			c->cmd = commands[i].name;
			return commands[i].run(c, argc, argv);
		}
	}
	cli_printf(stderr, "plinth: unknown command '%s'\nTry 'plinth --help'.\n", argv[0]);
	return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { CLI_COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	struct cli c;
	int o, rc;

	cli_init(&c);
	opterr = 0; /* we print our own messages, with the --help hint */
	/* '+' stops at the command name: the rest belongs to the command. */
	while ((o = getopt_long(argc, argv, "+" CLI_OPTSTRING, opts, NULL)) != -1) {
		if (o == 'h') {
			usage_print(stdout);
			return CLI_EXIT_OK;
		}
		rc = cli_option_common(&c, o, argc, argv);
		if (rc != CLI_CONTINUE)
			return rc;
	}
	if (optind >= argc) {
		usage_print(stderr);
		return CLI_EXIT_USAGE;
	}
	return dispatch(&c, argc - optind, argv + optind);
}
