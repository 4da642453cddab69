/*
 * mlflow.c - the MLflow registry client: ensure a registered model, tag it.
 *
 * Requests are JSON built with jansson (never by hand); responses are capped
 * at MLFLOW_MAX_RESPONSE and bounded by a timeout.  A RESOURCE_ALREADY_EXISTS
 * answer to create is success: MLflow reports it as 400, matched on
 * error_code, never on the message text.  It must never log credentials or
 * put them in a detail.
 */
#include "integrations/mlflow.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "net/httpc.h"

int mlflow_init(struct mlflow *m, const char *uri, const char *user, const char *password,
		char *detail)
{
	memset(m, 0, sizeof(*m));
	m->timeout_ms = MLFLOW_TIMEOUT_MS;
	size_t n = uri ? strlen(uri) : 0;
	while (n > 0 && uri[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(m->uri) - 64 ||
	    (strncmp(uri, "http://", 7) != 0 && strncmp(uri, "https://", 8) != 0)) {
		snprintf(detail, MLFLOW_DETAIL_LEN,
			 "MLFLOW_TRACKING_URI must be an http:// or https:// URL");
		return ERR_INVALID;
	}
	memcpy(m->uri, uri, n);
	m->uri[n] = '\0';
	if (user != NULL && user[0] != '\0') {
		char plain[512];
		unsigned char enc[700];
		int len = snprintf(plain, sizeof(plain), "%s:%s", user, password ? password : "");
		if (len < 0 || (size_t)len >= sizeof(plain)) {
			snprintf(detail, MLFLOW_DETAIL_LEN, "MLflow credentials are too long");
			return ERR_INVALID;
		}
		EVP_EncodeBlock(enc, (const unsigned char *)plain, len);
		snprintf(m->auth, sizeof(m->auth), "Authorization: Basic %s", (const char *)enc);
		memset(plain, 0, sizeof(plain));
	}
	return 0;
}

void mlflow_model_url(const struct mlflow *m, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/#/models/%s", m->uri, name);
}

/*
 * POSTs body (reference stolen) to path.  0 on 2xx; *code gets MLflow's
 * error_code for 4xx (or "" if none).
 */
static int call(const struct mlflow *m, const char *path, json_t *body, char *code, size_t code_n,
		char *detail)
{
	struct httpc_response resp;
	char url[MLFLOW_URI_MAX + 128];
	const char *headers[3] = {"Content-Type: application/json", NULL, NULL};
	char *text = NULL;
	int rc;

	memset(&resp, 0, sizeof(resp));
	code[0] = '\0';
	if (m->auth[0])
		headers[1] = m->auth;
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text == NULL) {
		snprintf(detail, MLFLOW_DETAIL_LEN, "out of memory");
		return ERR_NOMEM;
	}
	snprintf(url, sizeof(url), "%s/api/2.0/mlflow/%s", m->uri, path);
	char hd[HTTPC_DETAIL_LEN] = "";
	rc = httpc_request("POST", url, headers, text, strlen(text), m->timeout_ms,
			   MLFLOW_MAX_RESPONSE, &resp, hd);
	free(text);
	if (rc != 0) {
		snprintf(detail, MLFLOW_DETAIL_LEN, "MLflow at %.80s: %.150s", m->uri, hd); /* a diagnostic */
		return rc;
	}
	if (resp.status >= 200 && resp.status < 300) {
		rc = 0;
		goto out;
	}
	json_t *err = json_loadb(resp.body, resp.len, 0, NULL);
	const char *ec = json_string_value(json_object_get(err, "error_code"));
	const char *msg = json_string_value(json_object_get(err, "message"));
	snprintf(code, code_n, "%s", ec ? ec : "");
	snprintf(detail, MLFLOW_DETAIL_LEN, "MLflow %s answered %ld %s: %.120s", path, resp.status,
		 ec ? ec : "", msg ? msg : "");
	json_decref(err);
	if (resp.status == 401)
		rc = ERR_UNAUTHORIZED;
	else if (resp.status == 403)
		rc = ERR_FORBIDDEN;
	else if (resp.status >= 400 && resp.status < 500 && resp.status != 429)
		rc = ERR_INVALID;
	else
		rc = ERR_UNAVAILABLE;
out:
	httpc_response_done(&resp);
	return rc;
}

int mlflow_model_tag(const struct mlflow *m, const char *name, const struct mlflow_tag *tags,
		     size_t ntags, char *detail)
{
	char code[64];
	for (size_t i = 0; i < ntags; i++) {
		json_t *b = json_pack("{s:s, s:s, s:s}", "name", name, "key", tags[i].key, "value",
				      tags[i].value);
		int rc = call(m, "registered-models/set-tag", b, code, sizeof(code), detail);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int mlflow_model_ensure(const struct mlflow *m, const char *name, const char *description,
			const struct mlflow_tag *tags, size_t ntags, char *detail)
{
	char code[64];
	json_t *b = json_pack("{s:s, s:s}", "name", name, "description",
			      description ? description : "");
	int rc = call(m, "registered-models/create", b, code, sizeof(code), detail);
	if (rc == ERR_INVALID && strcmp(code, "RESOURCE_ALREADY_EXISTS") == 0)
		rc = 0;
	if (rc != 0)
		return rc;
	return mlflow_model_tag(m, name, tags, ntags, detail);
}
