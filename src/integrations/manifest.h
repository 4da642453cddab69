/*
 * manifest.h - renders the Kubernetes batch/v1 Job and the Argo CD
 * Application of a self-service job as YAML text.
 *
 * Pure: no I/O, no clock.  Every user string goes through libyaml's emitter
 * as a double-quoted scalar, so no input can add keys, documents or tags.
 * The renderer re-validates names itself (defence in depth): a spec the API
 * would have refused is ERR_INVALID here too, never YAML.
 */
#ifndef PLINTH_INTEGRATIONS_MANIFEST_H
#define PLINTH_INTEGRATIONS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MANIFEST_NAME_MAX 63        /* DNS-1123 label */
#define MANIFEST_IMAGE_MAX 512
#define MANIFEST_ARG_MAX 4096       /* one command argument */
#define MANIFEST_ARGS_MAX 64        /* command arguments */
#define MANIFEST_COMMAND_TOTAL 16384
#define MANIFEST_MODEL_MAX 128
#define MANIFEST_URL_MAX 1024
#define MANIFEST_BACKOFF_LIMIT 2

/* What a job needs; every pointer is borrowed from the caller. */
struct job_spec {
	const char *team;      /* DNS label */
	const char *namespace_; /* where the Job runs: one of the team's; NULL = team */
	const char *project;   /* DNS label */
	const char *name;      /* DNS label: the Job's name and directory */
	const char *framework; /* pytorch | tensorflow | jax | custom */
	const char *image;     /* NULL or "" = the framework's default */
	const char *const *command; /* argv, NULL = the image's entrypoint */
	size_t ncommand;
	const char *gpu_type;  /* catalog id, DNS label */
	int64_t gpu_count;     /* >= 1 */
	int64_t max_runtime_s; /* >= 1: activeDeadlineSeconds */
	const char *allocation_id;
	const char *model_name;    /* MLflow registered model */
	const char *mlflow_uri;    /* NULL = no MLFLOW_TRACKING_URI env */
	const char *repo_url;      /* the GitOps repository, for the Application */
	const char *revision;      /* branch, e.g. "main" */
};

/* true if s is a DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, 1..63 bytes. */
bool manifest_is_label(const char *s);
/* true if framework is one of the four known names. */
bool manifest_framework_ok(const char *framework);
/* The default image of a framework; NULL for "custom" or unknown. */
const char *manifest_default_image(const char *framework);
/* true if s is a model name: [A-Za-z0-9._-], 1..128, not starting with '.'. */
bool manifest_model_name_ok(const char *s);
/* true if s is an image reference: 1..512 printable ASCII, no spaces. */
bool manifest_image_ok(const char *s);

/*
 * Render the Job / the Application.  Returns 0 and *out (malloc'd,
 * NUL-terminated, owned by the caller; *len without the NUL), or
 * ERR_INVALID with a one-line reason in detail (256 bytes, may be NULL), or
 * ERR_NOMEM.  Never writes *out on failure.
 */
int manifest_job_render(const struct job_spec *j, char **out, size_t *len, char *detail);
int manifest_application_render(const struct job_spec *j, char **out, size_t *len, char *detail);

/* The Argo CD Application's name: "<team>-<name>" (into out, >= 128 bytes). */
void manifest_application_name(const struct job_spec *j, char *out, size_t n);

#endif
