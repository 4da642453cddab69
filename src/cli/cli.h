/*
 * cli.h - what every `plinth` client command shares: the global options
 * (--url, --token, --json, --help), calling the daemon over HTTP, printing
 * problems, and aligned tables.
 *
 * The CLI is a plain HTTP client of the daemon: it must never reach into the
 * daemon's internals (store, core ledger) and never do money arithmetic
 * beyond rounding an amount for a table (cli_money_text); --json prints
 * amounts exactly as the API returns them.
 */
#ifndef PLINTH_CLI_H
#define PLINTH_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#ifndef PLINTH_VERSION
#define PLINTH_VERSION "0.1.0"
#endif

/* Exit codes: scripts rely on these. */
enum cli_exit {
	CLI_EXIT_OK = 0,          /* success */
	CLI_EXIT_API = 1,         /* the API refused or failed (4xx/5xx, quote not approved) */
	CLI_EXIT_USAGE = 2,       /* bad or missing option */
	CLI_EXIT_UNREACHABLE = 3, /* cannot reach the daemon */
};

/* Returned by cli_option_common when parsing should simply go on. */
#define CLI_CONTINUE (-1)

/* Long-option codes of the shared options; commands use values >= 1000. */
enum cli_opt {
	CLI_OPT_URL = 900,
	CLI_OPT_TOKEN,
	CLI_OPT_JSON,
};

/* The shared long options, to splice into every command's option table. */
#define CLI_COMMON_LONGOPTS                                     \
	{ "url", required_argument, NULL, CLI_OPT_URL },        \
	{ "token", required_argument, NULL, CLI_OPT_TOKEN },    \
	{ "json", no_argument, NULL, CLI_OPT_JSON },            \
	{ "help", no_argument, NULL, 'h' }

/* The optstring every command passes to getopt_long (':' = report missing values). */
#define CLI_OPTSTRING ":h"

/* The help lines of the shared options, appended to every command's help. */
#define CLI_COMMON_HELP                                                              \
	"Global options:\n"                                                          \
	"  --url URL        daemon base URL (env PLINTH_URL, default http://127.0.0.1:8080)\n" \
	"  --token TOKEN    bearer token (env PLINTH_TOKEN)\n"                       \
	"  --json           print the raw JSON response instead of a table\n"       \
	"  -h, --help       show this help and exit\n"

/* Settings shared by all commands; strings point into argv or the environment. */
struct cli {
	const char *url;   /* daemon base URL, never NULL after cli_init */
	const char *token; /* bearer token or NULL */
	int json;          /* 1: print raw JSON */
	const char *cmd;   /* the command name, for messages ("quote") */
	const char *help;  /* the command's help text, for --help */
	long status;       /* the HTTP status of the last cli_call (0: none) */
	long quiet_status; /* cli_call prints no problem for this status (0: none) */
};

/* The client commands; each returns a cli_exit code.  argv[0] is the command name. */
typedef int (*cli_run_fn)(struct cli *c, int argc, char **argv);

int cmd_quote(struct cli *c, int argc, char **argv);
int cmd_allocate(struct cli *c, int argc, char **argv);
int cmd_allocations(struct cli *c, int argc, char **argv);
int cmd_start(struct cli *c, int argc, char **argv);
int cmd_complete(struct cli *c, int argc, char **argv);
int cmd_cancel(struct cli *c, int argc, char **argv);
int cmd_gpu_types(struct cli *c, int argc, char **argv);
int cmd_costs(struct cli *c, int argc, char **argv);
int cmd_export(struct cli *c, int argc, char **argv);

/*
 * The range options `plinth costs` and `plinth export` share (cmd_costs.c),
 * so both ask the daemon for a month the same way: --month, --from, --to,
 * --team, --no-running.  Option codes 1100.. ; splice CLI_COST_RANGE_LONGOPTS
 * into the option table, hand every option to cli_cost_range_option.
 */
struct cli_path;
struct cli_cost_range {
	const char *month, *from, *to, *team, *running;
};
enum { CLI_OPT_MONTH = 1100, CLI_OPT_FROM, CLI_OPT_TO, CLI_OPT_TEAM, CLI_OPT_NO_RUNNING };
#define CLI_COST_RANGE_LONGOPTS                                          \
	{ "month", required_argument, NULL, CLI_OPT_MONTH },             \
	{ "from", required_argument, NULL, CLI_OPT_FROM },               \
	{ "to", required_argument, NULL, CLI_OPT_TO },                   \
	{ "team", required_argument, NULL, CLI_OPT_TEAM },               \
	{ "no-running", no_argument, NULL, CLI_OPT_NO_RUNNING }
/* 1 when o was one of them (kept in r), else 0. */
int cli_cost_range_option(struct cli_cost_range *r, int o);
/* Checks them (a usage error's exit code, or CLI_CONTINUE) and adds them to p. */
int cli_cost_range_query(struct cli *c, const struct cli_cost_range *r, struct cli_path *p);
int cmd_token(struct cli *c, int argc, char **argv);
int cmd_submit(struct cli *c, int argc, char **argv);
int cmd_audit(struct cli *c, int argc, char **argv);
int cmd_job(struct cli *c, int argc, char **argv);
int cmd_team(struct cli *c, int argc, char **argv);
int cmd_gpu_type(struct cli *c, int argc, char **argv);
/* `plinth teams [TEAM]`: the old spelling of `team list` / `team get TEAM`. */
int cmd_team_alias(struct cli *c, int argc, char **argv);
/* `plinth controller` (src/cli/cmd_controller.c): runs until SIGINT/SIGTERM. */
int cmd_controller(struct cli *c, int argc, char **argv);
/* `plinth completion bash|zsh` (src/cli/cmd_completion.c). */
int cmd_completion(struct cli *c, int argc, char **argv);

/* The daemon (src/cli/cmd_serve.c): argv[0] is "serve"; returns the process exit code. */
int cmd_serve(int argc, char **argv);
/* `plinth migrate` (src/cli/cmd_migrate.c): argv[0] is "migrate"; returns the exit code. */
int cmd_migrate(int argc, char **argv);

/*
 * Terminal output.  Everything the CLI prints goes through cli_printf (or
 * cli_write), which neutralises what a daemon, a purpose, a label or a
 * problem detail could use to drive the terminal: C0 controls (ESC, CR,
 * BEL...), DEL and the C1 controls U+0080..U+009F are written as the text
 * \u00XX, and bytes that are not valid UTF-8 as \ufffd; valid UTF-8 stays
 * intact.  Inside a JSON string that text is the same character, so --json
 * output stays valid JSON.
 */
/* Writes len bytes of s to f, neutralised; '\n' is kept when keep_newline. */
void cli_write(FILE *f, const char *s, size_t len, int keep_newline);
/* printf to f through cli_write (newlines kept). Returns 0 or -1. */
int cli_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A neutralised copy of s with no line breaks either (one table cell, one
 * line of a problem); the caller frees it.  NULL when out of memory. */
char *cli_text_safe(const char *s);

/* Fills c with defaults: PLINTH_URL or http://127.0.0.1:8080, PLINTH_TOKEN. */
void cli_init(struct cli *c);

/*
 * Handles an option getopt_long returned that the command itself does not know:
 * the shared options, --help (prints c->help to stdout, returns CLI_EXIT_OK),
 * unknown options and missing values (prints an error with a hint to --help,
 * returns CLI_EXIT_USAGE).  Returns CLI_CONTINUE when parsing should go on.
 */
int cli_option_common(struct cli *c, int opt, int argc, char **argv);

/*
 * The option loop of a command that has only the shared options: parses argv
 * (c->help set first) and returns CLI_CONTINUE with optind at the first
 * argument that is no option, or the exit code of --help or a usage error.
 */
int cli_options_common_only(struct cli *c, int argc, char **argv);

/* Prints "plinth <cmd>: <message>" and the --help hint to stderr; returns CLI_EXIT_USAGE. */
int cli_usage(const struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole decimal integer into *out (untouched on failure). Returns 0 or -1. */
int cli_parse_int(const char *s, long long *out);

/*
 * Checks the four options of a quote or allocation (all required; --gpus a
 * whole number, --hours a number) and sets team, gpu_type, gpu_count and
 * max_runtime_hours (a JSON real: a duration, never money) in body.
 * Returns CLI_EXIT_OK or CLI_EXIT_USAGE after printing why.
 */
int cli_body_request(struct cli *c, json_t *body, const char *team, const char *gpu_type,
	const char *gpus, const char *hours);

/* A request path with percent-encoded segments and query parameters. */
struct cli_path {
	char buf[4096];
	size_t len;
	int nquery;   /* query parameters added so far */
	int overflow; /* set when something did not fit */
};

/* Starts p with a literal path such as "/v1/allocations". */
void cli_path_init(struct cli_path *p, const char *literal);
/* Appends "/" + the percent-encoded segment. */
void cli_path_segment(struct cli_path *p, const char *segment);
/* Appends a literal ("/start"). */
void cli_path_literal(struct cli_path *p, const char *literal);
/* Appends "?key=value" or "&key=value" (both encoded); a NULL value is skipped. */
void cli_path_query(struct cli_path *p, const char *key, const char *value);

/*
 * Calls the daemon: method path (from a cli_path) with an optional JSON body
 * (borrowed, not consumed) and an optional extra header ("Name: value").
 * On a 2xx answer returns CLI_EXIT_OK and sets *out to the parsed JSON (the
 * caller owns it; NULL for an empty body); with --json it first prints the raw
 * body to stdout.  Otherwise prints the problem to stderr once (one line, then
 * one line per invalid field the line does not already name), leaves *out
 * alone and returns CLI_EXIT_API, CLI_EXIT_UNREACHABLE or CLI_EXIT_USAGE; with
 * --json it also prints the problem document to stdout (the daemon's, or one
 * made here when the daemon sent none or could not be reached), so a script
 * reading stdout always gets JSON.
 */
int cli_call(struct cli *c, const char *method, const struct cli_path *path, json_t *body,
	const char *extra_header, json_t **out);

/*
 * GETs a list endpoint (base: its path and filters) page after page,
 * following next_cursor until `max` items or the last page, and sets *items
 * to every item (the caller owns it).  With --json it prints one document
 * {"items": [...], "next_cursor": ...} of what it read, not each page.
 * Returns as cli_call; *more is set when the list goes on past `max`.
 */
int cli_list_pages(struct cli *c, const struct cli_path *base, long long max, json_t **items,
	int *more);
/* cli_call without the JSON: on a 2xx answer returns CLI_EXIT_OK with the
 * body (at most max_body bytes) in *r; on any return the caller frees *r
 * with httpc_response_done (a CSV download, `plinth export`). */
struct httpc_response;
int cli_call_raw(struct cli *c, const char *method, const struct cli_path *path, json_t *body,
	const char *extra_header, size_t max_body, struct httpc_response *r);

/* An aligned text table; cells are copied.  Errors are sticky and reported by print. */
struct cli_table;

/* headers: ncols names or NULL (no header line, e.g. a key/value view);
 * aligns: ncols chars, 'l' or 'r'.  Returns NULL when out of memory. */
struct cli_table *cli_table_new(size_t ncols, const char *const *headers, const char *aligns);
/* Appends one cell to the current row; a full row starts the next one. */
void cli_table_cell(struct cli_table *t, const char *s);
void cli_table_cellf(struct cli_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends obj[key] rendered as text: strings as-is, numbers, null/absent as "-". */
void cli_table_cell_json(struct cli_table *t, const json_t *obj, const char *key);
/*
 * Money in tables and text lines: the API's decimal string rounded half-up
 * (away from zero) to two decimals, by integer arithmetic on micro-units, then
 * the currency: "29999.694222" -> "29999.69 USD", "0.125" -> "0.13 USD".  No
 * thousands separators, so the number pastes back into a command.  NULL or ""
 * gives "-"; a string that is not a money amount is shown as received.
 * currency NULL means USD.  buf should hold CLI_MONEY_LEN bytes.  Returns buf.
 */
#define CLI_MONEY_LEN 96
const char *cli_money_text(const char *amount, const char *currency, char *buf, size_t n);
/*
 * A price per GPU-hour the same way, but to at most four decimals, trailing
 * zeros trimmed down to two: "6.880000" -> "6.88 USD", "1.6688" -> "1.6688
 * USD", "7.912" -> "7.912 USD", "0.123456" -> "0.1235 USD" (a price
 * multiplies: cents would hide what a job costs).  Same buffer rules.
 */
const char *cli_price_text(const char *amount, const char *currency, char *buf, size_t n);

/* Appends the money obj[key] via cli_money_text ("12.50 USD"), or "-". */
void cli_table_cell_money(struct cli_table *t, const json_t *obj, const char *key,
	const char *currency);
/* Appends the price obj[key] via cli_price_text ("1.6688 USD"), or "-". */
void cli_table_cell_price(struct cli_table *t, const json_t *obj, const char *key,
	const char *currency);
/* Writes the table to f; returns 0, or -1 if an earlier cell failed (out of memory). */
int cli_table_print(const struct cli_table *t, FILE *f);
void cli_table_free(struct cli_table *t);

/* Renders a JSON scalar as text into buf ("-" for NULL/null). Returns buf. */
const char *cli_json_text(const json_t *v, char *buf, size_t n);

/*
 * A refusal's suggestions (quote, allocate, submit) as one or two lines on
 * f: what fits now, when the budget renews, whom to ask, which GPU types are
 * free.  doc: the problem (or quote); req: the request body sent (its
 * gpu_count and max_runtime_hours).  Prints nothing without suggestions.
 */
void cli_refusal_lines(FILE *f, const json_t *doc, const json_t *req);

/*
 * An admin-managed resource of the API (cmd_resource.c): `plinth team` and
 * `plinth gpu-type` are list|get|set|retire over one of these.
 */
struct cli_resource {
	const char *path; /* the collection, e.g. "/v1/teams" */
	int (*print_one)(const json_t *v);  /* a table of one; returns an exit code */
	int (*print_list)(const json_t *v); /* a table of {"items": [...]} */
};
/* METHOD path[/id][suffix][?include_retired=true] (body borrowed), printed
 * with the resource's printers unless --json.  Returns an exit code. */
int cli_resource_call(struct cli *c, const struct cli_resource *r, const char *method,
	const char *id, const char *suffix, int include_retired, json_t *body);
/* Whether path/id exists (*exists; a 404 prints nothing): CLI_EXIT_OK, or the
 * exit code of another failure (printed). */
int cli_resource_exists(struct cli *c, const struct cli_resource *r, const char *id, int *exists);
/* Runs the subcommand at argv[optind]: list [--include-retired], get ID,
 * set ID (calls set with ctx; named: set options were given), retire ID. */
int cli_resource_run(struct cli *c, const struct cli_resource *r, int argc, char **argv,
	int named, int include_retired, int (*set)(struct cli *c, const char *id, void *ctx),
	void *ctx);

/* Prints one allocation as a key/value view (shared by allocate, show, start...). */
int cli_print_allocation(const json_t *a);

#endif
