/*
 * api_meta.c - health, readiness and the OpenAPI document.
 */
#include "api/api.h"
#include "core/err.h"
#include "seed/embedded.h"

void api_healthz(struct req *r)
{
	reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

/* Ready = the database answers.  With its own short deadline for a pool
 * connection: a probe must answer promptly even when the pool is busy. */
void api_readyz(struct req *r)
{
	struct store_conn *db;
	int rc = req_db_within(r, HTTP_READY_WAIT_MS, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->ping(db);
	if (rc != 0) {
		reply_err(r, ERR_UNAVAILABLE, "the database does not answer");
		return;
	}
	/* Ready also means writable: not while writes fail for a full disk
	 * (store_write_full: a recent failure and no successful write since). */
	if (store_write_full(r->app->store)) {
		reply_err(r, ERR_UNAVAILABLE, "writes fail: the database or its disk is full");
		return;
	}
	reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

void api_openapi(struct req *r)
{
	reply_raw(r, 200, "application/json", (const char *)openapi_json, openapi_json_len);
}
