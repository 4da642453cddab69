/*
 * fuzz_manifest.c - libFuzzer target for the manifest renderer.
 *
 * The input is split at '\n' into: team, project, name, framework, image,
 * gpu_type, model_name, mlflow_uri, repo_url, then command arguments.  The
 * property: the renderer either refuses (ERR_INVALID, the API's 422) or
 * produces YAML that libyaml parses back into one document in which the
 * image, every command argument and the names are exactly the input
 * strings (nothing escaped its scalar).  Anything else aborts.
 *
 * Compiled with -DFUZZ_REPLAY_MAIN it gets a main() that replays every file
 * of a corpus directory (`meson test --suite fuzz`).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/err.h"
#include "integrations/manifest.h"

#define FUZZ_MAX_INPUT 65536
#define FUZZ_FIELDS 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses text; counts documents and whether each wanted string is a scalar. */
static void check_yaml(const char *text, size_t len, const char *const *want, size_t nwant)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int docs = 0;
	unsigned char found[FUZZ_FIELDS + MANIFEST_ARGS_MAX] = {0};
	if (!yaml_parser_initialize(&p))
		abort();
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	for (;;) {
		if (!yaml_parser_parse(&p, &ev)) {
			fprintf(stderr, "rendered YAML does not parse: %s\n%s\n", p.problem, text);
			abort();
		}
		if (ev.type == YAML_DOCUMENT_START_EVENT)
			docs++;
		if (ev.type == YAML_ALIAS_EVENT || (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.tag &&
						     !ev.data.scalar.quoted_implicit))
			abort(); /* we never emit aliases or explicit tags */
		if (ev.type == YAML_SCALAR_EVENT)
			for (size_t i = 0; i < nwant; i++)
				if (ev.data.scalar.length == strlen(want[i]) &&
				    memcmp(ev.data.scalar.value, want[i], ev.data.scalar.length) == 0)
					found[i] = 1;
		int end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (end)
			break;
	}
	yaml_parser_delete(&p);
	if (docs != 1)
		abort();
	for (size_t i = 0; i < nwant; i++)
		if (!found[i]) {
			fprintf(stderr, "value %zu did not round-trip: '%s'\n", i, want[i]);
			abort();
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *fields[FUZZ_FIELDS + MANIFEST_ARGS_MAX + 1];
	size_t nf = 0;
	if (size > FUZZ_MAX_INPUT)
		return 0;
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *s = buf;
	while (nf < sizeof(fields) / sizeof(fields[0])) {
		fields[nf++] = s;
		char *nl = memchr(s, '\n', (size_t)(buf + size - s));
		if (nl == NULL)
			break;
		*nl = '\0';
		s = nl + 1;
	}
	while (nf < FUZZ_FIELDS)
		fields[nf++] = "";
	struct job_spec j = {
		.team = fields[0], .project = fields[1], .name = fields[2], .framework = fields[3],
		.image = fields[4], .gpu_type = fields[5], .model_name = fields[6],
		.mlflow_uri = fields[7], .repo_url = fields[8],
		.command = (const char *const *)&fields[FUZZ_FIELDS], .ncommand = nf - FUZZ_FIELDS,
		.gpu_count = 1 + (int64_t)(size % 8), .max_runtime_s = 3600,
		.allocation_id = "alloc_fuzz", .revision = "main",
	};
	for (int which = 0; which < 2; which++) {
		char *out = NULL, detail[256] = "";
		size_t len = 0;
		int rc = which == 0 ? manifest_job_render(&j, &out, &len, detail)
				    : manifest_application_render(&j, &out, &len, detail);
		if (rc == ERR_INVALID) {
			if (detail[0] == '\0')
				abort(); /* a refusal always says why */
			continue;
		}
		if (rc != 0 || out == NULL || strlen(out) != len)
			abort();
		const char *want[FUZZ_FIELDS + MANIFEST_ARGS_MAX];
		size_t nw = 0;
		want[nw++] = j.team;
		want[nw++] = j.name;
		if (which == 0) {
			want[nw++] = j.image[0] ? j.image : manifest_default_image(j.framework);
			want[nw++] = j.model_name;
			for (size_t i = 0; i < j.ncommand; i++)
				want[nw++] = j.command[i];
			if (j.mlflow_uri[0])
				want[nw++] = j.mlflow_uri;
		} else {
			want[nw++] = j.repo_url;
		}
		check_yaml(out, len, want, nw);
		/* No such key: user values are quoted, so a line starting with it is a key. */
		for (const char *l = out; l != NULL; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
			while (*l == ' ' || *l == '-')
				l++;
			if (strncmp(l, "ttlSecondsAfterFinished:", 24) == 0)
				abort();
		}
		free(out);
	}
	free(buf);
	return 0;
}

#ifdef FUZZ_REPLAY_MAIN
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	int ret = -1;
	if (f == NULL) {
		fprintf(stderr, "fuzz replay: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = malloc(FUZZ_MAX_INPUT + 1);
	if (buf == NULL)
		goto out;
	len = fread(buf, 1, FUZZ_MAX_INPUT + 1, f);
	if (ferror(f))
		goto out;
	(void)LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
	ret = 0;
out:
	free(buf);
	fclose(f);
	return ret;
}

int main(int argc, char **argv)
{
	int n = 0, bad = 0;
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	DIR *d = opendir(argv[1]);
	if (d == NULL) {
		fprintf(stderr, "cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
		if (replay_file(path) != 0)
			bad++;
		n++;
	}
	closedir(d);
	printf("replayed %d inputs, %d unreadable\n", n, bad);
	return n > 0 && bad == 0 ? 0 : 1;
}
#endif
