/*
 * integrations.h - the daemon's neighbours for the self-service job flow:
 * the MLflow registry (optional) and the GitOps repository (always; an
 * embedded bare repository by default).  Opened once by `plinth serve`
 * from the environment, shared read-only by request threads (the GitOps
 * handle serialises itself).
 */
#ifndef PLINTH_INTEGRATIONS_H
#define PLINTH_INTEGRATIONS_H

#include <stdbool.h>

#include "integrations/gitops.h"
#include "integrations/mlflow.h"

struct integrations {
	bool mlflow_enabled; /* MLFLOW_TRACKING_URI set */
	struct mlflow mlflow;
	struct gitops *gitops;
	/* The URL Argo CD clones: each Application's repoURL and the job
	 * answer's repository (owned; default the push remote's URL). */
	char *repo_url;
};

/*
 * Reads MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME,
 * MLFLOW_TRACKING_PASSWORD and PLINTH_GITOPS_REMOTE; opens the GitOps
 * repository under data_dir.  repo_url: what Argo CD clones (NULL or "":
 * the push remote's URL, with a warning when that is a local path).  Returns 0 and *out (integrations_close) or an
 * error with detail (256 bytes).
 */
int integrations_open(const char *data_dir, const char *repo_url, struct integrations **out,
		      char *detail);
void integrations_close(struct integrations *in);

#endif
