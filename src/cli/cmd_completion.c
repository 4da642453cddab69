/*
 * cmd_completion.c - `plinth completion bash|zsh`: prints a shell completion
 * script for every command, subcommand and option of the CLI, and the fixed
 * values of options such as --group-by.
 *
 * Both scripts are generated from the one table below (the words) and one
 * shell body (the logic, identical in bash and zsh but for how words are
 * read and offered).  The table also names commands other files implement
 * (team, gpu-type, audit, job, export); tests/cli/test_cli.sh checks that
 * every option a command's --help shows is in it, so the two cannot drift.
 * It must never call the daemon: completion works offline and prints no ids.
 */
#include <stdarg.h>
#include <string.h>

#include "cli/cli.h"

static const char completion_help[] =
	"Usage: plinth completion bash|zsh\n"
	"\n"
	"Print a shell completion script for plinth: commands, subcommands, options\n"
	"and the fixed values of options (--group-by, --status, --role, --period).\n"
	"\n"
	"Options:\n"
	"  (none besides the global options)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Examples:\n"
	"  source <(plinth completion bash)     # bash, this shell; or save it under\n"
	"                                       # ~/.local/share/bash-completion/completions/plinth\n"
	"  plinth completion zsh > \"${fpath[1]}/_plinth\"   # zsh, then restart it\n";

/*
 * One command: its first words (subcommands; "@file" completes a file name,
 * "@commands" the command names) and its options, space-separated; an option
 * ending in '=' takes a value.  client: also takes the global options.
 */
static const struct comp_cmd {
	const char *name;
	const char *subs;
	const char *opts;
	int client;
} comp_cmds[] = {
	{ "serve", "",
		"--listen= --data= --database-url= --admin-token= --start-timeout= "
		"--sweep-interval= --max-runtime-hours= --threads= --db-wait= --max-connections= "
		"--max-connections-per-ip= --request-timeout= --ready-file= --demo --alert-webhook= "
		"--alert-interval= --webhook-listen= --tls-cert= --tls-key= --webhook-client-ca= "
		"--gitops-repo-url=", 0 },
	{ "migrate", "", "--database-url= --data= --rebuild-rollups", 0 },
	{ "quote", "", "--team= --gpu-type= --gpus= --hours=", 1 },
	{ "allocate", "", "--team= --project= --gpu-type= --gpus= --hours= --purpose= --label= "
		"--idempotency-key=", 1 },
	{ "allocations", "show", "--team= --status= --limit= --cursor=", 1 },
	{ "start", "", "--at=", 1 },
	{ "complete", "", "--at=", 1 },
	{ "cancel", "", "", 1 },
	{ "teams", "", "", 1 },
	{ "team", "list get set retire", "--display-name= --budget= --period= --alert-thresholds= "
		"--admins= --namespaces= --include-retired", 1 },
	{ "gpu-type", "list get set retire", "--name= --price= --capacity= --include-retired", 1 },
	{ "gpu-types", "", "", 1 },
	{ "costs", "", "--month= --from= --to= --team= --group-by= --view= --no-running "
		"--budget-history --limit=", 1 },
	{ "export", "", "--format= --month= --from= --to= --team= --no-running -o= --output=", 1 },
	{ "audit", "", "--team= --actor= --action= --since= --until= --limit=", 1 },
	{ "job", "list get", "--team= --limit=", 1 },
	{ "token", "create list revoke", "--name= --role= --team= --active", 1 },
	{ "submit", "@file", "--idempotency-key=", 1 },
	{ "controller", "", "--kubeconfig= --namespace= --watch-timeout= --lease-namespace= "
		"--lease-name= --lease-duration= --check-interval= --metrics-listen= --enforce --kueue "
		"--kueue-default-runtime=", 1 },
	{ "version", "", "", 1 },
	{ "help", "@commands", "", 1 },
	{ "completion", "bash zsh", "", 1 },
};

/* The global options (CLI_COMMON_LONGOPTS), in the same notation. */
static const char comp_global[] = "--url= --token= --json --help";

/* Options whose values are a fixed list ("@file": a file name). */
static const struct {
	const char *opt;
	const char *values;
} comp_values[] = {
	{ "--group-by", "team project gpu_type day month" },
	{ "--status", "approved running completed cancelled expired" },
	{ "--role", "admin finance member service" },
	{ "--period", "weekly monthly quarterly yearly" },
	{ "--view", "use budget" },
	{ "--output", "@file" },
	{ "--format", "focus" },
	{ "-o", "@file" },
	{ "--kubeconfig", "@file" },
	{ "--data", "@file" },
	{ "--ready-file", "@file" },
	{ "--tls-cert", "@file" },
	{ "--tls-key", "@file" },
	{ "--webhook-client-ca", "@file" },
};

/* The script is this file's own text, not the daemon's: written as is (tabs
 * included), where cli_printf would neutralise them. */
static void __attribute__((format(printf, 1, 2))) out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

/* Steps *p to the next word of a space-separated list: sets *word, *len
 * (without the '=' marker) and *takes (1: an option with a value).
 * Returns 0 at the end of the list. */
static int comp_next(const char **p, const char **word, size_t *len, int *takes)
{
	size_t n;

	while (**p == ' ')
		(*p)++;
	if (**p == '\0')
		return 0;
	n = strcspn(*p, " ");
	*word = *p;
	*takes = (*p)[n - 1] == '=';
	*len = n - (size_t)*takes;
	*p += n;
	return 1;
}

/* Prints the words of list, '=' markers dropped, each preceded by sep; with
 * only_values, only the options that take one. */
static void comp_words(const char *list, int only_values, const char *sep)
{
	const char *word;
	size_t len;
	int takes;

	while (comp_next(&list, &word, &len, &takes))
		if (!only_values || takes)
			out("%s%.*s", sep, (int)len, word);
}

/* Whether the option opt (len bytes) takes a value in the global options or
 * in a command before comp_cmds[before]. */
static int comp_seen(const char *opt, size_t len, size_t before)
{
	for (size_t i = 0; i <= before; i++) {
		const char *p = i == 0 ? comp_global : comp_cmds[i - 1].opts, *word;
		size_t wlen;
		int takes;

		while (comp_next(&p, &word, &wlen, &takes))
			if (takes && wlen == len && memcmp(word, opt, len) == 0)
				return 1;
	}
	return 0;
}

/* "|a|b|c": every option that takes a value, each once, for a case pattern. */
static void comp_value_options(void)
{
	comp_words(comp_global, 1, "|");
	for (size_t i = 0; i < sizeof comp_cmds / sizeof comp_cmds[0]; i++) {
		const char *p = comp_cmds[i].opts, *word;
		size_t len;
		int takes;

		while (comp_next(&p, &word, &len, &takes))
			if (takes && !comp_seen(word, len, i))
				out("|%.*s", (int)len, word);
	}
}

/* The shell-independent middle of the function: from $cmd, $sub, $prev and
 * $cur it sets $what ("words", "files" or "none") and $offer, the words
 * (not $words: zsh's own array of the line). */
static void comp_body(void)
{
	size_t i;

	out("\twhat=words offer=\n\tcase $prev in\n");
	for (i = 0; i < sizeof comp_values / sizeof comp_values[0]; i++) {
		if (strcmp(comp_values[i].values, "@file") == 0)
			out("\t%s) what=files ;;\n", comp_values[i].opt);
		else
			out("\t%s) offer='%s' ;;\n", comp_values[i].opt,
				comp_values[i].values);
	}
	/* Any other option with a value: a free value, nothing to offer. */
	out("\t--__none__");
	comp_value_options();
	out(") what=none ;;\n\t*)\n\tcase $cmd in\n\t'')\n\t\tcase $cur in\n\t\t-*) offer='");
	comp_words(comp_global, 0, " ");
	out("' ;;\n\t\t*) offer='");
	for (i = 0; i < sizeof comp_cmds / sizeof comp_cmds[0]; i++)
		out("%s%s", i ? " " : "", comp_cmds[i].name);
	out("' ;;\n\t\tesac ;;\n");
	for (i = 0; i < sizeof comp_cmds / sizeof comp_cmds[0]; i++) {
		const struct comp_cmd *k = &comp_cmds[i];

		out("\t%s)\n\t\toffer='", k->name);
		comp_words(k->opts, 0, " ");
		comp_words(k->client ? comp_global : "--help", 0, " ");
		out("'\n");
		if (k->subs[0] == '\0')
			;
		else if (strcmp(k->subs, "@file") == 0)
			out("\t\tcase $cur in -*) ;; *) what=files ;; esac\n");
		else if (strcmp(k->subs, "@commands") == 0) {
			out("\t\tcase $cur in -*) ;; *) [ -z \"$sub\" ] && offer='");
			for (size_t j = 0; j < sizeof comp_cmds / sizeof comp_cmds[0]; j++)
				out("%s%s", j ? " " : "", comp_cmds[j].name);
			out("' ;; esac\n");
		} else
			out("\t\tcase $cur in -*) ;; *) [ -z \"$sub\" ] && offer='%s' ;; "
				"esac\n", k->subs);
		out("\t\t;;\n");
	}
	out("\t*) what=none ;;\n\tesac ;;\n\tesac\n");
}

/* The loop that finds the command and its first word, skipping options and
 * their values: the same text in both shells once $w and $n are set. */
static void comp_scan(const char *first)
{
	out("\tcmd= sub=\n\tfor ((i = %s; i < n; i++)); do\n\t\tcase ${w[i]} in\n"
		"\t\t--__none__", first);
	comp_value_options();
	out(") ((i++)) ;;\n"
		"\t\t-*) ;;\n"
		"\t\t*) if [ -z \"$cmd\" ]; then cmd=${w[i]}; elif [ -z \"$sub\" ]; then sub=${w[i]}; fi ;;\n"
		"\t\tesac\n\tdone\n");
}

static void comp_bash(void)
{
	out(
		"# bash completion for plinth, generated by `plinth completion bash` (plinth "
		PLINTH_VERSION ").\n"
		"# Load it with: source <(plinth completion bash)\n"
		"_plinth() {\n"
		"\tlocal cur=${COMP_WORDS[COMP_CWORD]} line=${COMP_LINE:0:COMP_POINT}\n"
		"\tlocal -a w\n"
		"\tlocal n i cmd sub prev what offer\n"
		/* Words split on blanks only: COMP_WORDS also splits at ':' and '=' (URLs). */
		"\tread -ra w <<<\"$line\"\n"
		"\tcase $line in *[[:space:]]) w+=(\"\") ;; esac\n"
		"\tn=$((${#w[@]} - 1))\n"
		"\tprev=\n\t[ \"$n\" -ge 1 ] && prev=${w[n-1]}\n");
	comp_scan("1");
	comp_body();
	out(
		"\tcase $what in\n"
		"\tfiles) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
		"\twords) COMPREPLY=($(compgen -W \"$offer\" -- \"$cur\")) ;;\n"
		"\t*) COMPREPLY=() ;;\n"
		"\tesac\n"
		"\treturn 0\n"
		"}\n"
		"complete -o filenames -F _plinth plinth\n");
}

static void comp_zsh(void)
{
	out(
		"#compdef plinth\n"
		"# zsh completion for plinth, generated by `plinth completion zsh` (plinth "
		PLINTH_VERSION ").\n"
		"# Install it as _plinth in a directory of $fpath, or: source <(plinth completion zsh)\n"
		"_plinth() {\n"
		"\tlocal cur=${words[CURRENT]} n=$CURRENT i cmd sub prev what\n"
		/* zsh arrays start at 1: w[1] is "plinth", like COMP_WORDS[0] in bash. */
		"\tlocal -a w\n"
		"\tw=(\"${(@)words[1,CURRENT]}\")\n"
		"\tprev=${w[n-1]}\n"
		"\tlocal offer\n");
	comp_scan("2");
	comp_body();
	out(
		"\tcase $what in\n"
		"\tfiles) _files ;;\n"
		"\twords) compadd -- ${=offer} ;;\n"
		"\tesac\n"
		"}\n"
		"if [ \"$funcstack[1]\" = _plinth ]; then\n"
		"\t_plinth \"$@\"\n"
		"else\n"
		"\tcompdef _plinth plinth\n"
		"fi\n");
}

int cmd_completion(struct cli *c, int argc, char **argv)
{
	int rc;

	c->help = completion_help;
	rc = cli_options_common_only(c, argc, argv);
	if (rc != CLI_CONTINUE)
		return rc;
	if (optind >= argc)
		return cli_usage(c, "a shell is required: bash or zsh");
	if (optind + 1 < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind + 1]);
	if (strcmp(argv[optind], "bash") == 0)
		comp_bash();
	else if (strcmp(argv[optind], "zsh") == 0)
		comp_zsh();
	else
		return cli_usage(c, "unknown shell '%s': bash or zsh", argv[optind]);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_printf(stderr, "plinth: cannot write the completion script\n");
		return CLI_EXIT_API;
	}
	return CLI_EXIT_OK;
}
