/*
 * auth.c - bearer tokens and team scoping.
 *
 * The secret is hashed (SHA-256) at once and only the hash is looked up:
 * the secret is never stored, logged or kept beyond this function.  A token
 * is high-entropy random, so a fast hash is the right tool (no password
 * stretching needed).  Revocation takes effect at the next request: every
 * request looks the token up (the PostgreSQL store answers from a cache that
 * every replica forgets when any revocation commits, store_pg_tokens.c).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "http/http.h"
#include "util/util.h"

static void unauthorized(struct req *r, const char *detail)
{
	reply_problem(r, 401, "unauthorized", "Unauthorized", detail, NULL);
}

/* An entity reference such as user:default/jane: [kind:][namespace/]name. */
static bool entity_ref_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > AUTH_ON_BEHALF_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("._-:/", *p)))
			return false;
	return true;
}

/*
 * A portal that acts for a person (Backstage's scaffolder) names that person
 * in X-Plinth-On-Behalf-Of: the audit log then says "user:default/jane via
 * <the portal's token>".  Only a service token may; the token still decides
 * what is allowed.  0, or -1 after replying.
 */
static int on_behalf_of(struct req *r)
{
	const char *who = req_header(r, AUTH_ON_BEHALF_HEADER);

	if (who == NULL)
		return 0;
	if (r->token.role != ROLE_SERVICE) {
		reply_problem(r, 403, "forbidden", "Forbidden",
			      "only a service token may act on behalf of someone (" AUTH_ON_BEHALF_HEADER ")",
			      NULL);
		return -1;
	}
	if (!entity_ref_ok(who) ||
	    util_fmt(r->actor.name, sizeof(r->actor.name), "%s via %s", who, r->token.name) != 0) {
		reply_problem(r, 400, "bad-request", "Bad request",
			      AUTH_ON_BEHALF_HEADER " must be an entity reference such as"
			      " user:default/jane: letters, digits and . _ - : / (the reference and the"
			      " token's name together at most 120 characters)",
			      NULL);
		return -1;
	}
	return 0;
}

int auth_authenticate(struct req *r)
{
	const char *h = req_header(r, "Authorization");
	if (h == NULL) {
		unauthorized(r, "missing Authorization: Bearer <token> header");
		return -1;
	}
	if (strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0' || strlen(h + 7) > 256) {
		unauthorized(r, "the Authorization header must be 'Bearer <token>'");
		return -1;
	}
	char hash[STORE_HASH_LEN];
	if (util_sha256_hex(h + 7, strlen(h + 7), hash) != 0) {
		reply_err(r, ERR_STORE, "cannot hash the token");
		return -1;
	}
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->token_by_hash(db, hash, &r->token);
	if (rc == ERR_NOT_FOUND) {
		unauthorized(r, "unknown or revoked token");
		return -1;
	}
	if (rc != 0) {
		reply_err(r, rc, "cannot check the token");
		return -1;
	}
	r->authed = true;
	snprintf(r->actor.token_id, sizeof(r->actor.token_id), "%s", r->token.id);
	snprintf(r->actor.name, sizeof(r->actor.name), "%s", r->token.name);
	r->actor.role = r->token.role;
	if (on_behalf_of(r) != 0)
		return -1;
	json_t *teams = json_loads(r->token.teams_json, 0, NULL);
	size_t i;
	json_t *t;
	json_array_foreach(teams, i, t) {
		if (r->nteams < HTTP_MAX_TOKEN_TEAMS && json_is_string(t))
			snprintf(r->teams[r->nteams++], STORE_ID_LEN, "%s", json_string_value(t));
	}
	json_decref(teams);
	return 0;
}

bool auth_team_allowed(const struct req *r, const char *team)
{
	if (r->token.role != ROLE_MEMBER)
		return true;
	for (size_t i = 0; i < r->nteams; i++)
		if (strcmp(r->teams[i], team) == 0)
			return true;
	return false;
}

const char *const *auth_team_scope(struct req *r, const char **buf, size_t *n)
{
	if (r->token.role != ROLE_MEMBER) {
		*n = 0;
		return NULL;
	}
	for (size_t i = 0; i < r->nteams; i++)
		buf[i] = r->teams[i];
	*n = r->nteams;
	return buf;
}
