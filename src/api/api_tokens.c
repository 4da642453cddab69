/*
 * api_tokens.c - API tokens.  The secret is generated here, returned once in
 * the 201 response, and only its SHA-256 reaches the store.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/err.h"
#include "http/jsonv.h"
#include "util/util.h"

#define TOKEN_MAX_TEAMS 16

static const struct jv_field token_fields[] = {
	{"name", JV_STRING, true, STORE_NAME_LEN - 1},
	{"role", JV_STRING, true, 16},
	{"teams", JV_ARRAY, false, 0},
	{NULL, 0, false, 0},
};

void api_token_create(struct req *r)
{
	json_t *body = NULL, *errors = json_array();
	char *teams_text = NULL;
	struct token t;
	struct store_conn *db = NULL;
	memset(&t, 0, sizeof(t));
	if (req_json_object(r, false, &body) != 0)
		goto out;
	jsonv_check(body, token_fields, "", errors);
	const char *role = json_string_value(json_object_get(body, "role"));
	if (role != NULL && role_parse(role, &t.role) != 0)
		jsonv_error(errors, "role", "must be one of admin, finance, member, service");
	json_t *teams = json_object_get(body, "teams");
	bool teams_ok = json_array_size(teams) <= TOKEN_MAX_TEAMS;
	if (!teams_ok)
		jsonv_error(errors, "teams", "at most %d teams", TOKEN_MAX_TEAMS);
	/* The list is stored as JSON text in STORE_TEAMS_LEN bytes: 16 ids of
	 * 63 bytes do not fit, and that is the caller's input, not a 500. */
	teams_text = json_is_array(teams) ? json_dumps(teams, HTTP_JSON_FLAGS) : strdup("[]");
	if (teams_text == NULL) {
		reply_err(r, ERR_NOMEM, "cannot encode the team list");
		goto out;
	}
	if (teams_ok && strlen(teams_text) >= sizeof(t.teams_json)) {
		teams_ok = false;
		jsonv_error(errors, "teams", "the team list is %zu bytes as JSON; at most %zu",
			    strlen(teams_text), sizeof(t.teams_json) - 1);
	}
	int rc = req_db(r, &db);
	if (rc != 0) {
		reply_err(r, rc, "database unavailable");
		goto out;
	}
	size_t i;
	json_t *v;
	/* A refused list is not looked up team by team (one query each). */
	json_array_foreach(teams_ok ? teams : NULL, i, v) {
		char field[32];
		struct team team;
		snprintf(field, sizeof(field), "teams[%zu]", i);
		if (!json_is_string(v) || !jsonv_is_label(json_string_value(v)))
			jsonv_error(errors, field, "must be a team id");
		else if (store_conn_ops(db)->team_get(db, json_string_value(v), &team) != 0)
			jsonv_error(errors, field, "unknown team '%s'", json_string_value(v));
	}
	if (role != NULL && t.role == ROLE_MEMBER && json_array_size(teams) == 0)
		jsonv_error(errors, "teams", "a member token needs at least one team");
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	char secret[UTIL_SECRET_LEN], hash[STORE_HASH_LEN];
	if (util_random_id("tok_", 16, t.id, sizeof(t.id)) != 0 ||
	    util_random_secret(secret, sizeof(secret)) != 0 ||
	    util_sha256_hex(secret, strlen(secret), hash) != 0) {
		reply_err(r, ERR_STORE, "cannot generate a token");
		goto out;
	}
	snprintf(t.name, sizeof(t.name), "%s", json_string_value(json_object_get(body, "name")));
	snprintf(t.teams_json, sizeof(t.teams_json), "%s", teams_text);
	t.created_at = r->now;
	rc = store_conn_ops(db)->token_create(db, &r->actor, &t, hash, r->now);
	if (rc != 0) {
		reply_err(r, rc, "cannot store the token");
		goto out;
	}
	json_t *view = render_token(&t);
	json_object_set_new(view, "token", json_string(secret));
	reply_json(r, 201, view);
out:
	free(teams_text);
	json_decref(body);
	json_decref(errors);
}

void api_token_delete(struct req *r)
{
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->token_revoke(db, &r->actor, r->params[0], r->now);
	if (rc != 0) {
		reply_err(r, rc, rc == ERR_NOT_FOUND ? "no such token" : "cannot revoke the token");
		return;
	}
	reply_take(r, 204, NULL, NULL, 0);
}

struct token_page {
	json_t *items;
	int only; /* -1 every token, 0 active ones, 1 revoked ones */
};

static int add_token(void *ctx, const struct token *t)
{
	struct token_page *p = ctx;
	if (p->only >= 0 && (t->revoked_at != 0) != (p->only == 1))
		return 0;
	return json_array_append_new(p->items, render_token(t));
}

/* GET /v1/tokens[?status=active|revoked]: every token, never a secret. */
void api_tokens_list(struct req *r)
{
	struct token_page p = {NULL, -1};
	const char *status = req_query(r, "status");
	if (status != NULL && strcmp(status, "active") != 0 && strcmp(status, "revoked") != 0) {
		json_t *errors = json_array();
		jsonv_error(errors, "status", "must be active or revoked");
		reply_invalid(r, errors);
		return;
	}
	if (status != NULL)
		p.only = strcmp(status, "revoked") == 0;
	struct store_conn *db;
	p.items = json_array();
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->token_list(db, add_token, &p);
	if (rc != 0) {
		json_decref(p.items);
		reply_err(r, rc, "cannot list tokens");
		return;
	}
	reply_json(r, 200, json_pack("{s:o}", "items", p.items));
}
