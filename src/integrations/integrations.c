/*
 * integrations.c - builds struct integrations from the environment.
 * It must never print the MLflow password.
 */
#include "integrations/integrations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "util/log.h"

/* A repository URL only the daemon's own host can read. */
static bool url_is_local(const char *u)
{
	return u[0] == '/' || u[0] == '.' || strncmp(u, "file:", 5) == 0;
}

int integrations_open(const char *data_dir, const char *repo_url, struct integrations **out,
		      char *detail)
{
	struct integrations *in = calloc(1, sizeof(*in));
	int rc;
	if (in == NULL) {
		snprintf(detail, 256, "out of memory");
		return ERR_NOMEM;
	}
	const char *uri = getenv("MLFLOW_TRACKING_URI");
	if (uri != NULL && uri[0] != '\0') {
		rc = mlflow_init(&in->mlflow, uri, getenv("MLFLOW_TRACKING_USERNAME"),
				 getenv("MLFLOW_TRACKING_PASSWORD"), detail);
		if (rc != 0)
			goto fail;
		in->mlflow_enabled = true;
	}
	rc = gitops_open(data_dir, getenv("PLINTH_GITOPS_REMOTE"), &in->gitops, detail);
	if (rc != 0)
		goto fail;
	in->repo_url = strdup(repo_url && repo_url[0] ? repo_url : gitops_remote_url(in->gitops));
	if (in->repo_url == NULL) {
		snprintf(detail, 256, "out of memory");
		rc = ERR_NOMEM;
		goto fail;
	}
	if (!(repo_url && repo_url[0]) && url_is_local(in->repo_url))
		log_event("warn",
			  "job Applications name a path on this host as their repoURL; set "
			  "--gitops-repo-url (PLINTH_GITOPS_REPO_URL) to the URL Argo CD clones",
			  json_pack("{s:s}", "repo_url", in->repo_url));
	*out = in;
	return 0;
fail:
	integrations_close(in);
	return rc;
}

void integrations_close(struct integrations *in)
{
	if (in == NULL)
		return;
	gitops_close(in->gitops);
	free(in->repo_url);
	free(in);
}
