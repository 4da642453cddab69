/*
 * integrations.c - builds struct integrations from the environment.
 * It must never print the MLflow password.
 */
#include "integrations/integrations.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"

int integrations_open(const char *data_dir, struct integrations **out, char *detail)
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
	free(in);
}
