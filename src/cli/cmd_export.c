/*
 * cmd_export.c - `plinth export --format focus --month 2026-11 -o file.csv`:
 * downloads GET /v1/costs/export (the FOCUS CSV) to a file or stdout.  The
 * bytes are written as the daemon sent them; nothing is summed or reformatted
 * here, so the file is the one the API and the dashboard's download give.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "net/httpc.h"

/* The daemon caps an export at 512 MiB (api_export.c); accept that much. */
#define EXPORT_MAX_BODY ((size_t)512 * 1024 * 1024 + 1)

static const char export_help[] =
	"Usage: plinth export [--format focus] [--month YYYY-MM | --from D --to D]\n"
	"                     [--team T] [--no-running] [-o FILE]\n"
	"\n"
	"Download costs as a FinOps FOCUS CSV: one row per allocation per UTC day of use.\n"
	"The default range is the current calendar month.  Its BilledCost column sums to\n"
	"the spent + accrued that `plinth costs` shows for the same range and options.\n"
	"\n"
	"Options:\n"
	"  --format F       focus (the only format)\n"
	"  --month M        one UTC calendar month, YYYY-MM\n"
	"  --from D         start of the range (YYYY-MM-DD or RFC 3339)\n"
	"  --to D           end of the range (YYYY-MM-DD or RFC 3339)\n"
	"  --team T         only this team\n"
	"  --no-running     leave out running allocations (default: their cost so far)\n"
	"  -o, --output F   write to file F and say how many rows on stderr\n"
	"                   (default, or '-': standard output, nothing else printed)\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth export --format focus --month 2026-11 -o plinth-focus-2026-11.csv\n";

enum { OPT_FORMAT = 1000 };

/* The CSV's data rows: records after the header line.  A line break inside a
 * quoted field (a purpose may hold one) does not end a record; "" inside
 * quotes toggles twice, so it needs no case of its own. */
static size_t csv_rows(const char *body, size_t len)
{
	size_t records = 0;
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		if (body[i] == '"')
			quoted = !quoted;
		else if (body[i] == '\n' && !quoted)
			records++;
	}
	if (len > 0 && body[len - 1] != '\n')
		records++; /* a last record without its line break */
	return records > 0 ? records - 1 : 0;
}

/* Writes the body to path ("-" or NULL: stdout).  0, or prints why and -1.
 * Written to a file, it says so on stderr (the command is not silent about
 * where the data went); on stdout, the CSV is all that is printed. */
static int write_out(const char *path, const struct httpc_response *r)
{
	bool to_stdout = path == NULL || strcmp(path, "-") == 0;
	FILE *f = to_stdout ? stdout : fopen(path, "wb");
	int rc = 0;

	if (f == NULL) {
		cli_printf(stderr, "plinth: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (r->len > 0 && fwrite(r->body, 1, r->len, f) != r->len)
		rc = -1;
	if (to_stdout ? fflush(f) != 0 : fclose(f) != 0)
		rc = -1;
	if (rc != 0)
		cli_printf(stderr, "plinth: cannot write %s: %s\n", to_stdout ? "stdout" : path,
			   strerror(errno));
	else if (!to_stdout) {
		size_t rows = csv_rows(r->body, r->len);
		cli_printf(stderr, "wrote %zu row%s to %s\n", rows, rows == 1 ? "" : "s", path);
	}
	return rc;
}

int cmd_export(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "output", required_argument, NULL, 'o' },
		CLI_COST_RANGE_LONGOPTS,
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct cli_cost_range range = { 0 };
	const char *format = "focus", *output = NULL;
	struct httpc_response r = { 0 };
	struct cli_path p;
	int o, rc;

	c->help = export_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING "o:", opts, NULL)) != -1) {
		if (cli_cost_range_option(&range, o))
			continue;
		if (o == OPT_FORMAT || o == 'o') {
			*(o == 'o' ? &output : &format) = optarg;
			continue;
		}
		rc = cli_option_common(c, o, argc, argv);
		if (rc != CLI_CONTINUE)
			return rc;
	}
	if (optind < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[optind]);
	if (strcmp(format, "focus") != 0)
		return cli_usage(c, "--format must be focus, got '%s'", format);
	cli_path_init(&p, "/v1/costs/export");
	cli_path_query(&p, "format", format);
	rc = cli_cost_range_query(c, &range, &p);
	if (rc != CLI_CONTINUE)
		return rc;
	rc = cli_call_raw(c, "GET", &p, NULL, NULL, EXPORT_MAX_BODY, &r);
	if (rc == CLI_EXIT_OK && write_out(output, &r) != 0)
		rc = CLI_EXIT_API;
	httpc_response_done(&r);
	return rc;
}
