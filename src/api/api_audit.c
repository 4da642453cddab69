/*
 * api_audit.c - the append-only audit log (admin and finance).
 */
#include <stdio.h>

#include "api/api.h"
#include "api/query.h"
#include "core/err.h"
#include "http/jsonv.h"

static int add_entry(void *ctx, const struct audit_entry *e)
{
	json_t *items = ctx;
	return json_array_append_new(
		items, json_pack("{s:I, s:o, s:{s:s, s:s}, s:s, s:s, s:s, s:s?, s:o, s:o}", "seq",
				 (json_int_t)e->seq, "at", render_time(e->at), "actor", "id",
				 e->actor_id, "name", e->actor_name, "action", e->action,
				 "object_type", e->object_type, "object_id", e->object_id, "team",
				 e->team[0] ? e->team : NULL, "before",
				 e->before_json ? render_json_text(e->before_json) : json_null(),
				 "after",
				 e->after_json ? render_json_text(e->after_json) : json_null()));
}

void api_audit_list(struct req *r)
{
	json_t *errors = json_array();
	const char *team = NULL;
	query_team(r, errors, &team);
	int limit = query_limit(r, errors);
	const char *cursor = query_cursor(r, errors);
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		return;
	}
	json_decref(errors);
	struct store_conn *db;
	char next[STORE_ID_LEN * 2] = "";
	json_t *items = json_array();
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->audit_list(db, team, cursor, limit, add_entry, items, next);
	if (rc != 0) {
		json_decref(items);
		if (rc == ERR_INVALID) {
			json_t *cerr = json_array();
			jsonv_error(cerr, "cursor", "is not a cursor returned by this API");
			reply_invalid(r, cerr);
		} else {
			reply_err(r, rc, "cannot read the audit log");
		}
		return;
	}
	reply_json(r, 200, json_pack("{s:o, s:s?}", "items", items, "next_cursor",
				     next[0] ? next : NULL));
}
