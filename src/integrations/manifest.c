/*
 * manifest.c - the Job and Application renderer (libyaml's emitter).
 *
 * Keys we choose are plain scalars; every value that comes from a user is a
 * double-quoted scalar, so YAML syntax in it is data, not structure; numbers
 * are plain integers.  It must never build YAML by string concatenation,
 * never emit ttlSecondsAfterFinished (Argo CD would re-create a finished
 * Job), and never do I/O.
 */
#include "integrations/manifest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/err.h"
#include "core/gpuproduct.h"
#include "util/buf.h"

#define MANIFEST_OUT_MAX (256 * 1024)
#define MANIFEST_DETAIL_LEN 256

static const struct {
	const char *name;
	const char *image;
} frameworks[] = {
	{"pytorch", "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"},
	{"tensorflow", "tensorflow/tensorflow:2.18.0-gpu"},
	{"jax", "nvcr.io/nvidia/jax:24.10-py3"},
	{"custom", NULL},
};

bool manifest_is_label(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > MANIFEST_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (c != '-' || i == 0 || i == n - 1))
			return false;
	}
	return true;
}

bool manifest_framework_ok(const char *framework)
{
	for (size_t i = 0; framework && i < sizeof(frameworks) / sizeof(frameworks[0]); i++)
		if (strcmp(framework, frameworks[i].name) == 0)
			return true;
	return false;
}

const char *manifest_default_image(const char *framework)
{
	for (size_t i = 0; framework && i < sizeof(frameworks) / sizeof(frameworks[0]); i++)
		if (strcmp(framework, frameworks[i].name) == 0)
			return frameworks[i].image;
	return NULL;
}

bool manifest_model_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > MANIFEST_MODEL_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool manifest_image_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > MANIFEST_IMAGE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

void manifest_application_name(const struct job_spec *j, char *out, size_t n)
{
	snprintf(out, n, "%s-%s", j->team, j->name);
}

/* ---- the emitter ---------------------------------------------------------- */

struct em {
	yaml_emitter_t e;
	struct buf out;
	bool too_large;
	int rc; /* first failure */
	char *detail;
};

static int em_write(void *data, unsigned char *bytes, size_t size)
{
	struct em *m = data;
	if (m->out.len + size + 1 > MANIFEST_OUT_MAX) {
		m->too_large = true;
		return 0;
	}
	return buf_add(&m->out, bytes, size) ? 1 : 0;
}

static void em_fail(struct em *m)
{
	if (m->rc != 0)
		return;
	if (m->too_large) {
		m->rc = ERR_INVALID;
		snprintf(m->detail, MANIFEST_DETAIL_LEN, "the manifest would exceed %d bytes",
			 MANIFEST_OUT_MAX);
	} else if (m->e.error == YAML_EMITTER_ERROR && m->e.problem != NULL) {
		/* libyaml refuses what it cannot represent, e.g. invalid UTF-8. */
		m->rc = ERR_INVALID;
		snprintf(m->detail, MANIFEST_DETAIL_LEN, "cannot render: %s", m->e.problem);
	} else {
		m->rc = ERR_NOMEM;
		snprintf(m->detail, MANIFEST_DETAIL_LEN, "out of memory rendering the manifest");
	}
}

static void em_event(struct em *m, yaml_event_t *ev, int init_ok)
{
	if (m->rc != 0) {
		if (init_ok)
			yaml_event_delete(ev);
		return;
	}
	if (!init_ok) {
		m->rc = ERR_NOMEM;
		snprintf(m->detail, MANIFEST_DETAIL_LEN, "out of memory rendering the manifest");
		return;
	}
	/* yaml_emitter_emit takes the event in every case. */
	if (!yaml_emitter_emit(&m->e, ev))
		em_fail(m);
}

/* A key or other text we chose: plain when possible. */
static void em_plain(struct em *m, const char *s)
{
	yaml_event_t ev;
	int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1,
					      1, YAML_PLAIN_SCALAR_STYLE);
	em_event(m, &ev, ok);
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static bool utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t len;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* A string value, always double-quoted: user data stays a string. */
static void em_str(struct em *m, const char *s)
{
	yaml_event_t ev;
	if (m->rc == 0 && !utf8_ok((const unsigned char *)s, strlen(s))) {
		m->rc = ERR_INVALID;
		snprintf(m->detail, MANIFEST_DETAIL_LEN, "a value is not valid UTF-8");
		return;
	}
	int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 0,
					      1, YAML_DOUBLE_QUOTED_SCALAR_STYLE);
	em_event(m, &ev, ok);
}

static void em_int(struct em *m, int64_t v)
{
	char b[32];
	snprintf(b, sizeof(b), "%" PRId64, v);
	em_plain(m, b);
}

static void em_bool(struct em *m, bool v)
{
	em_plain(m, v ? "true" : "false");
}

static void em_map(struct em *m)
{
	yaml_event_t ev;
	int ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
	em_event(m, &ev, ok);
}

static void em_map_end(struct em *m)
{
	yaml_event_t ev;
	em_event(m, &ev, yaml_mapping_end_event_initialize(&ev));
}

static void em_seq(struct em *m)
{
	yaml_event_t ev;
	int ok = yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
	em_event(m, &ev, ok);
}

static void em_seq_end(struct em *m)
{
	yaml_event_t ev;
	em_event(m, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void em_kv(struct em *m, const char *k, const char *v)
{
	em_plain(m, k);
	em_str(m, v);
}

static void em_begin(struct em *m, char *detail)
{
	yaml_event_t ev;
	memset(m, 0, sizeof(*m));
	m->detail = detail;
	if (!yaml_emitter_initialize(&m->e)) {
		m->rc = ERR_NOMEM;
		snprintf(detail, MANIFEST_DETAIL_LEN, "out of memory");
		return;
	}
	yaml_emitter_set_output(&m->e, em_write, m);
	yaml_emitter_set_unicode(&m->e, 1);
	yaml_emitter_set_width(&m->e, -1);
	em_event(m, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
	em_event(m, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
}

static int em_end(struct em *m, char **out, size_t *len)
{
	yaml_event_t ev;
	em_event(m, &ev, yaml_document_end_event_initialize(&ev, 1));
	em_event(m, &ev, yaml_stream_end_event_initialize(&ev));
	if (m->rc == 0 && !yaml_emitter_flush(&m->e))
		em_fail(m);
	yaml_emitter_delete(&m->e);
	if (m->rc != 0) {
		free(m->out.p);
		return m->rc;
	}
	*out = m->out.p;
	*len = m->out.len;
	return 0;
}

/* ---- validation shared by both renderers ---------------------------------- */

static int spec_check(const struct job_spec *j, char *detail)
{
	const char *bad = NULL;
	size_t total = 0;
	if (!manifest_is_label(j->team))
		bad = "team must be a DNS-1123 label";
	else if (j->namespace_ != NULL && !manifest_is_label(j->namespace_))
		bad = "namespace must be a DNS-1123 label";
	else if (!manifest_is_label(j->project))
		bad = "project must be a DNS-1123 label";
	else if (!manifest_is_label(j->name))
		bad = "name must be a DNS-1123 label";
	else if (!manifest_is_label(j->gpu_type))
		bad = "gpu_type must be a DNS-1123 label";
	else if (!manifest_framework_ok(j->framework))
		bad = "framework must be pytorch, tensorflow, jax or custom";
	else if (j->image && j->image[0] && !manifest_image_ok(j->image))
		bad = "image must be 1 to 512 printable characters without spaces";
	else if ((!j->image || !j->image[0]) && !manifest_default_image(j->framework))
		bad = "a custom framework needs an image";
	else if (j->gpu_count < 1 || j->gpu_count > 1024)
		bad = "gpu_count must be 1 to 1024";
	else if (j->max_runtime_s < 1)
		bad = "the maximum runtime must be at least one second";
	else if (!j->allocation_id || !j->allocation_id[0] || strlen(j->allocation_id) > 63)
		bad = "an allocation id is needed";
	else if (!manifest_model_name_ok(j->model_name))
		bad = "model_name must be 1 to 128 of [A-Za-z0-9._-]";
	else if (!j->repo_url || !j->repo_url[0] || strlen(j->repo_url) > MANIFEST_URL_MAX)
		bad = "a repository URL is needed";
	else if (!j->revision || !j->revision[0] || strlen(j->revision) > 255)
		bad = "a revision is needed";
	else if (j->mlflow_uri && strlen(j->mlflow_uri) > MANIFEST_URL_MAX)
		bad = "the MLflow URI is too long";
	else if (j->ncommand > MANIFEST_ARGS_MAX)
		bad = "command has too many arguments";
	for (size_t i = 0; !bad && i < j->ncommand; i++) {
		size_t n = j->command[i] ? strlen(j->command[i]) : 0;
		if (j->command[i] == NULL || n > MANIFEST_ARG_MAX)
			bad = "a command argument is too long";
		total += n;
	}
	if (!bad && total > MANIFEST_COMMAND_TOTAL)
		bad = "command is too long";
	if (bad) {
		snprintf(detail, MANIFEST_DETAIL_LEN, "%s", bad);
		return ERR_INVALID;
	}
	return 0;
}

static void em_labels(struct em *m, const struct job_spec *j)
{
	em_plain(m, "labels");
	em_map(m);
	em_kv(m, "app.kubernetes.io/name", j->name);
	em_kv(m, "app.kubernetes.io/instance", j->allocation_id);
	em_kv(m, "app.kubernetes.io/component", "training");
	em_kv(m, "app.kubernetes.io/part-of", j->project);
	em_kv(m, "app.kubernetes.io/managed-by", "plinth");
	em_kv(m, "plinth.io/allocation-id", j->allocation_id);
	em_kv(m, "plinth.io/team", j->team);
	em_kv(m, "plinth.io/project", j->project);
	em_map_end(m);
}

static void em_env(struct em *m, const char *name, const char *value)
{
	em_map(m);
	em_kv(m, "name", name);
	em_kv(m, "value", value);
	em_map_end(m);
}

int manifest_job_render(const struct job_spec *j, char **out, size_t *len, char *detail)
{
	char dbuf[MANIFEST_DETAIL_LEN], experiment[2 * MANIFEST_NAME_MAX + 2];
	struct em m;
	if (detail == NULL)
		detail = dbuf;
	int rc = spec_check(j, detail);
	if (rc != 0)
		return rc;
	const char *image = j->image && j->image[0] ? j->image : manifest_default_image(j->framework);
	snprintf(experiment, sizeof(experiment), "%s-%s", j->team, j->project);

	em_begin(&m, detail);
	em_map(&m);
	em_kv(&m, "apiVersion", "batch/v1");
	em_kv(&m, "kind", "Job");
	em_plain(&m, "metadata");
	em_map(&m);
	em_kv(&m, "name", j->name);
	em_kv(&m, "namespace", j->namespace_ ? j->namespace_ : j->team);
	em_labels(&m, j);
	em_plain(&m, "annotations");
	em_map(&m);
	em_kv(&m, "plinth.io/gpu-type", j->gpu_type);
	em_kv(&m, "plinth.io/model-name", j->model_name);
	em_map_end(&m);
	em_map_end(&m); /* metadata */
	em_plain(&m, "spec");
	em_map(&m);
	em_plain(&m, "activeDeadlineSeconds");
	em_int(&m, j->max_runtime_s);
	em_plain(&m, "backoffLimit");
	em_int(&m, MANIFEST_BACKOFF_LIMIT);
	em_plain(&m, "template");
	em_map(&m);
	em_plain(&m, "metadata");
	em_map(&m);
	em_labels(&m, j);
	em_map_end(&m);
	em_plain(&m, "spec");
	em_map(&m);
	em_kv(&m, "restartPolicy", "Never");
	em_plain(&m, "nodeSelector");
	em_map(&m);
	/* The same table the admission webhook reads (core/gpuproduct). */
	const char *product = gpu_product_of_type(j->gpu_type);
	if (product)
		em_kv(&m, GPU_PRODUCT_LABEL, product);
	else
		em_kv(&m, GPU_TYPE_LABEL, j->gpu_type);
	em_map_end(&m);
	em_plain(&m, "tolerations");
	em_seq(&m);
	em_map(&m);
	em_kv(&m, "key", "nvidia.com/gpu");
	em_kv(&m, "operator", "Exists");
	em_kv(&m, "effect", "NoSchedule");
	em_map_end(&m);
	em_seq_end(&m);
	em_plain(&m, "containers");
	em_seq(&m);
	em_map(&m);
	em_kv(&m, "name", "trainer");
	em_kv(&m, "image", image);
	if (j->ncommand > 0) {
		em_plain(&m, "command");
		em_seq(&m);
		for (size_t i = 0; i < j->ncommand; i++)
			em_str(&m, j->command[i]);
		em_seq_end(&m);
	}
	em_plain(&m, "env");
	em_seq(&m);
	if (j->mlflow_uri && j->mlflow_uri[0])
		em_env(&m, "MLFLOW_TRACKING_URI", j->mlflow_uri);
	em_env(&m, "MLFLOW_EXPERIMENT_NAME", experiment);
	em_env(&m, "MLFLOW_REGISTERED_MODEL_NAME", j->model_name);
	em_env(&m, "PLINTH_ALLOCATION_ID", j->allocation_id);
	em_seq_end(&m);
	em_plain(&m, "resources");
	em_map(&m);
	em_plain(&m, "limits");
	em_map(&m);
	em_plain(&m, "nvidia.com/gpu");
	em_int(&m, j->gpu_count);
	em_map_end(&m);
	em_plain(&m, "requests");
	em_map(&m);
	em_plain(&m, "nvidia.com/gpu");
	em_int(&m, j->gpu_count);
	em_map_end(&m);
	em_map_end(&m); /* resources */
	em_map_end(&m); /* container */
	em_seq_end(&m);
	em_map_end(&m); /* pod spec */
	em_map_end(&m); /* template */
	em_map_end(&m); /* spec */
	em_map_end(&m);
	return em_end(&m, out, len);
}

int manifest_application_render(const struct job_spec *j, char **out, size_t *len, char *detail)
{
	char dbuf[MANIFEST_DETAIL_LEN], app[2 * MANIFEST_NAME_MAX + 2], path[2 * MANIFEST_NAME_MAX + 8];
	struct em m;
	if (detail == NULL)
		detail = dbuf;
	int rc = spec_check(j, detail);
	if (rc != 0)
		return rc;
	manifest_application_name(j, app, sizeof(app));
	snprintf(path, sizeof(path), "apps/%s/%s", j->team, j->name);

	em_begin(&m, detail);
	em_map(&m);
	em_kv(&m, "apiVersion", "argoproj.io/v1alpha1");
	em_kv(&m, "kind", "Application");
	em_plain(&m, "metadata");
	em_map(&m);
	em_kv(&m, "name", app);
	em_kv(&m, "namespace", "argocd");
	em_labels(&m, j);
	em_plain(&m, "finalizers");
	em_seq(&m);
	em_str(&m, "resources-finalizer.argocd.argoproj.io");
	em_seq_end(&m);
	em_map_end(&m);
	em_plain(&m, "spec");
	em_map(&m);
	em_kv(&m, "project", "default");
	em_plain(&m, "source");
	em_map(&m);
	em_kv(&m, "repoURL", j->repo_url);
	em_kv(&m, "path", path);
	em_kv(&m, "targetRevision", j->revision);
	/* Only the Job: this file sits in the same directory. */
	em_plain(&m, "directory");
	em_map(&m);
	em_kv(&m, "include", "job.yaml");
	em_map_end(&m);
	em_map_end(&m);
	em_plain(&m, "destination");
	em_map(&m);
	em_kv(&m, "server", "https://kubernetes.default.svc");
	em_kv(&m, "namespace", j->namespace_ ? j->namespace_ : j->team);
	em_map_end(&m);
	em_plain(&m, "syncPolicy");
	em_map(&m);
	em_plain(&m, "automated");
	em_map(&m);
	em_plain(&m, "prune");
	em_bool(&m, true);
	em_plain(&m, "selfHeal");
	em_bool(&m, true);
	em_map_end(&m);
	em_plain(&m, "syncOptions");
	em_seq(&m);
	em_str(&m, "CreateNamespace=true");
	em_seq_end(&m);
	em_plain(&m, "retry");
	em_map(&m);
	em_plain(&m, "limit");
	em_int(&m, 5);
	em_plain(&m, "backoff");
	em_map(&m);
	em_kv(&m, "duration", "5s");
	em_plain(&m, "factor");
	em_int(&m, 2);
	em_kv(&m, "maxDuration", "3m");
	em_map_end(&m);
	em_map_end(&m); /* retry */
	em_map_end(&m); /* syncPolicy */
	em_map_end(&m); /* spec */
	em_map_end(&m);
	return em_end(&m, out, len);
}
