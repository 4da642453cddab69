/*
 * mlflow.h - the MLflow model registry over its REST API (/api/2.0/mlflow).
 *
 * Talks HTTP only through src/net/httpc.h.  Errors are enum err plus a
 * one-line detail naming what MLflow said (its error_code), never a crash
 * on a malformed or oversized answer.
 */
#ifndef PLINTH_INTEGRATIONS_MLFLOW_H
#define PLINTH_INTEGRATIONS_MLFLOW_H

#include <stddef.h>

#define MLFLOW_DETAIL_LEN 256
#define MLFLOW_URI_MAX 1024
#define MLFLOW_TIMEOUT_MS 10000
#define MLFLOW_MAX_RESPONSE (1024 * 1024)

struct mlflow {
	char uri[MLFLOW_URI_MAX];    /* tracking URI without a trailing '/' */
	char auth[MLFLOW_URI_MAX];   /* "Authorization: Basic ..." or "" */
	long timeout_ms;
};

struct mlflow_tag {
	const char *key;
	const char *value;
};

/*
 * Fills m from a tracking URI (http:// or https://) and optional basic-auth
 * credentials (NULL = none).  Returns 0 or ERR_INVALID with detail.
 */
int mlflow_init(struct mlflow *m, const char *uri, const char *user, const char *password,
		char *detail);

/*
 * Creates the registered model `name` if absent (an existing one is fine),
 * then sets each tag.  Returns 0, or ERR_UNAVAILABLE (MLflow unreachable,
 * timed out or answered 5xx), ERR_INVALID (MLflow refused the request),
 * ERR_UNAUTHORIZED/ERR_FORBIDDEN, ERR_TOO_LARGE, ERR_NOMEM; with detail.
 */
int mlflow_model_ensure(const struct mlflow *m, const char *name, const char *description,
			const struct mlflow_tag *tags, size_t ntags, char *detail);

/* Sets tags on an existing registered model (same errors). */
int mlflow_model_tag(const struct mlflow *m, const char *name, const struct mlflow_tag *tags,
		     size_t ntags, char *detail);

/* The UI URL of a registered model: URI + "/#/models/" + name. */
void mlflow_model_url(const struct mlflow *m, const char *name, char *out, size_t n);

#endif
