/*
 * cmd_submit.c - `plinth submit job.yaml`: reads a small job file (see
 * docs/jobs.md), sends it to POST /v1/jobs and prints what was created and
 * where to look.  The file is parsed with libyaml's document loader; the
 * daemon does all validation that matters.  It must never retry on its own
 * or invent an idempotency key.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli/cli.h"

#define SUBMIT_MAX_FILE (64 * 1024)

static const char submit_help[] =
	"Usage: plinth submit [--idempotency-key K] JOB_FILE\n"
	"\n"
	"Submit a training job: the daemon approves an allocation against the team's\n"
	"budget, registers the model in MLflow and commits a Kubernetes Job and an\n"
	"Argo CD Application to the GitOps repository. If a step fails the allocation\n"
	"is cancelled and the command exits 1 naming the step. JOB_FILE is YAML:\n"
	"\n"
	"  team: nlp                 # required, DNS label\n"
	"  project: llm              # required, DNS label\n"
	"  name: train-7b            # required, DNS label: the Job's name\n"
	"  framework: pytorch        # required: pytorch, tensorflow, jax or custom\n"
	"  image: reg.example/t:1    # optional (required for custom)\n"
	"  command: [python, train.py, --epochs, \"3\"]   # optional\n"
	"  gpu_type: h100-80gb       # required\n"
	"  gpu_count: 2              # required\n"
	"  max_runtime_hours: 4      # required\n"
	"  model_name: llm-7b        # optional, default TEAM-NAME\n"
	"  namespace: nlp-dev        # optional, one of the team's namespaces\n"
	"\n"
	"Options:\n"
	"  --idempotency-key K    resend safely: the same key returns the first outcome\n"
	"\n" CLI_COMMON_HELP
	"\n"
	"Example:\n"
	"  plinth submit --idempotency-key train-7b-1 job.yaml\n";

enum { OPT_IDEM = 1000 };

/* A scalar node's text, or NULL. */
static const char *node_text(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int is_string_key(const char *k)
{
	static const char *const keys[] = {"team", "project", "name", "framework", "image",
					   "gpu_type", "model_name", "namespace", NULL};
	for (size_t i = 0; keys[i]; i++)
		if (strcmp(k, keys[i]) == 0)
			return 1;
	return 0;
}

/* Converts the document's top mapping into the request body; usage errors print. */
static int submit_body(struct cli *c, yaml_document_t *doc, json_t *body)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	if (root == NULL || root->type != YAML_MAPPING_NODE)
		return cli_usage(c, "the job file must be a YAML mapping (key: value lines)");
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *kn = yaml_document_get_node(doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(doc, p->value);
		const char *k = node_text(kn), *v = node_text(vn);
		if (k == NULL)
			return cli_usage(c, "job file keys must be plain words");
		if (strcmp(k, "command") == 0) {
			json_t *argv_json = json_array();
			if (vn && vn->type == YAML_SCALAR_NODE) {
				/* A single string runs through a shell. */
				json_array_append_new(argv_json, json_string("/bin/sh"));
				json_array_append_new(argv_json, json_string("-c"));
				json_array_append_new(argv_json, json_string(v));
			} else if (vn && vn->type == YAML_SEQUENCE_NODE) {
				for (yaml_node_item_t *it = vn->data.sequence.items.start;
				     it < vn->data.sequence.items.top; it++) {
					const char *a = node_text(yaml_document_get_node(doc, *it));
					if (a == NULL) {
						json_decref(argv_json);
						return cli_usage(c, "command: every item must be a string");
					}
					json_array_append_new(argv_json, json_string(a));
				}
			} else {
				json_decref(argv_json);
				return cli_usage(c, "command must be a list of strings or a string");
			}
			json_object_set_new(body, "command", argv_json);
		} else if (v == NULL) {
			return cli_usage(c, "%s: must be a single value", k);
		} else if (is_string_key(k)) {
			if (json_object_set_new(body, k, json_string(v)) != 0)
				return cli_usage(c, "%s: not valid UTF-8", k);
		} else if (strcmp(k, "gpu_count") == 0) {
			long long n;
			if (cli_parse_int(v, &n) != 0)
				return cli_usage(c, "gpu_count must be a whole number, got '%s'", v);
			json_object_set_new(body, k, json_integer(n));
		} else if (strcmp(k, "max_runtime_hours") == 0) {
			/* A duration, never money: a JSON number is the API's type. */
			char *end = NULL;
			errno = 0;
			double h = strtod(v, &end);
			if (errno != 0 || end == v || *end != '\0')
				return cli_usage(c, "max_runtime_hours must be a number, got '%s'", v);
			json_object_set_new(body, k, json_real(h));
		} else {
			return cli_usage(c, "unknown key '%s' in the job file (see --help)", k);
		}
	}
	return CLI_EXIT_OK;
}

static void print_result(const json_t *res)
{
	const json_t *a = json_object_get(res, "allocation");
	const json_t *ml = json_object_get(res, "mlflow");
	const json_t *g = json_object_get(res, "gitops");
	const json_t *ar = json_object_get(res, "argocd");
	char b1[256], b2[256], b3[256];
	cli_printf(stdout, "job          %s\n", cli_json_text(json_object_get(res, "id"), b1, sizeof b1));
	cli_printf(stdout, "allocation   %s (%s, estimated cost %s)\n",
	       cli_json_text(json_object_get(a, "id"), b1, sizeof b1),
	       cli_json_text(json_object_get(a, "status"), b2, sizeof b2),
	       cli_money_text(json_string_value(json_object_get(a, "estimated_cost")),
		       json_string_value(json_object_get(a, "currency")), b3, sizeof b3));
	if (json_is_true(json_object_get(ml, "skipped")))
		cli_printf(stdout, "mlflow       skipped (%s)\n",
		       cli_json_text(json_object_get(ml, "reason"), b1, sizeof b1));
	else
		cli_printf(stdout, "mlflow       model %s: %s\n",
		       cli_json_text(json_object_get(ml, "registered_model"), b1, sizeof b1),
		       cli_json_text(json_object_get(ml, "url"), b2, sizeof b2));
	cli_printf(stdout, "gitops       %s/ in %s\n", cli_json_text(json_object_get(g, "path"), b1, sizeof b1),
	       cli_json_text(json_object_get(g, "repository"), b2, sizeof b2));
	cli_printf(stdout, "commit       %s\n", cli_json_text(json_object_get(g, "commit"), b1, sizeof b1));
	cli_printf(stdout, "argocd       application %s (namespace %s)\n",
	       cli_json_text(json_object_get(ar, "application"), b1, sizeof b1),
	       cli_json_text(json_object_get(ar, "namespace"), b2, sizeof b2));
	cli_printf(stdout, "\nWhere to look:\n");
	cli_printf(stdout, "  argocd app get argocd/%s\n",
	       cli_json_text(json_object_get(ar, "application"), b1, sizeof b1));
	cli_printf(stdout, "  kubectl -n %s get jobs -l plinth.io/allocation-id=%s\n",
	       cli_json_text(json_object_get(ar, "job_namespace"), b1, sizeof b1),
	       cli_json_text(json_object_get(a, "id"), b2, sizeof b2));
	cli_printf(stdout, "  plinth allocations show %s\n",
	       cli_json_text(json_object_get(a, "id"), b1, sizeof b1));
}

int cmd_submit(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "idempotency-key", required_argument, NULL, OPT_IDEM },
		CLI_COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *idem = NULL, *file;
	char idem_header[300], *text = NULL;
	json_t *body = NULL, *res = NULL;
	yaml_parser_t parser;
	yaml_document_t doc;
	bool parser_ok = false, doc_ok = false;
	FILE *f = NULL;
	struct cli_path p;
	int o, rc = CLI_EXIT_API;

	c->help = submit_help;
	while ((o = getopt_long(argc, argv, CLI_OPTSTRING, opts, NULL)) != -1) {
		if (o == OPT_IDEM) {
			idem = optarg;
			continue;
		}
		rc = cli_option_common(c, o, argc, argv);
		if (rc != CLI_CONTINUE)
			goto out;
	}
	if (optind + 1 != argc) {
		rc = cli_usage(c, "expected exactly one job file");
		goto out;
	}
	file = argv[optind];
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
	f = fopen(file, "rb");
	if (f == NULL) {
		rc = cli_usage(c, "cannot open %s: %s", file, strerror(errno));
		goto out;
	}
	text = malloc(SUBMIT_MAX_FILE + 1);
	if (text == NULL)
		goto out;
	size_t len = fread(text, 1, SUBMIT_MAX_FILE + 1, f);
	if (ferror(f) || len > SUBMIT_MAX_FILE) {
		rc = cli_usage(c, "%s: unreadable or larger than %d bytes", file, SUBMIT_MAX_FILE);
		goto out;
	}
	if (!yaml_parser_initialize(&parser))
		goto out;
	parser_ok = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = cli_usage(c, "%s: not valid YAML: %s (line %zu)", file,
			       parser.problem ? parser.problem : "?", parser.problem_mark.line + 1);
		goto out;
	}
	doc_ok = true;
	body = json_object();
	if (body == NULL)
		goto out;
	rc = submit_body(c, &doc, body);
	if (rc != CLI_EXIT_OK)
		goto out;
	cli_path_init(&p, "/v1/jobs");
	rc = cli_call(c, "POST", &p, body, idem ? idem_header : NULL, &res);
	if (rc == CLI_EXIT_OK && !c->json)
		print_result(res);
out:
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (f != NULL)
		fclose(f);
	free(text);
	json_decref(res);
	json_decref(body);
	return rc;
}
