/*
 * ops_tokens.c - API tokens: create, look up by hash, revoke, list.  The
 * secret is never stored: only its sha-256 hash, which never reaches the
 * audit log (store_json_token leaves it out).
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <stdlib.h>

#include "core/err.h"

static const char SQL_TOKEN_INSERT[] =
	"INSERT INTO tokens(id, name, role, teams_json, hash, created_at, revoked_at)"
	" VALUES (?, ?, ?, ?, ?, ?, 0)";
static const char SQL_TOKEN_BY_HASH[] =
	"SELECT " TOKEN_COLS " FROM tokens WHERE hash = ? AND revoked_at = 0";
static const char SQL_TOKEN_LOCK[] = "SELECT " TOKEN_COLS " FROM tokens WHERE id = ?" DB_LOCK;
static const char SQL_TOKEN_REVOKE[] = "UPDATE tokens SET revoked_at = ? WHERE id = ?";
static const char SQL_ADMIN_EXISTS[] =
	"SELECT 1 FROM tokens WHERE role = 'admin' AND revoked_at = 0 LIMIT 1";
static const char SQL_TOKEN_LIST[] = "SELECT " TOKEN_COLS " FROM tokens ORDER BY created_at, id";

struct token_write {
	const struct actor *who;
	const struct token *t;
	const char *hash;
	const char *id;
	int64_t now;
};

static int token_create_tx(struct store_conn *c, void *ctx)
{
	struct token_write *w = ctx;
	struct token rec = *w->t;
	int n;

	rec.created_at = w->now;
	rec.revoked_at = 0;
	n = db_exec(c, SQL_TOKEN_INSERT, "ttttti", rec.id, rec.name, role_name(rec.role),
		    rec.teams_json, w->hash, w->now);
	if (n < 0)
		return n;
	return db_audit(c, w->who, w->now, "token.create", "token", rec.id, "", store_json_token,
			NULL, &rec);
}

int ops_token_create(struct store_conn *c, const struct actor *who, const struct token *t,
		     const char *hash, int64_t now)
{
	struct token_write w = {.who = who, .t = t, .hash = hash, .now = now};

	return db_run(c, true, token_create_tx, &w);
}

int ops_token_by_hash(struct store_conn *c, const char *hash, struct token *out)
{
	if (db_drv(c)->token_by_hash) /* a cache in front of ops_token_read */
		return db_drv(c)->token_by_hash(c, hash, out);
	return ops_token_read(c, hash, out);
}

/* For a driver's cached lookup: the database's answer; *out untouched on failure. */
int ops_token_read(struct store_conn *c, const char *hash, struct token *out)
{
	return db_get(c, SQL_TOKEN_BY_HASH, hash, db_row_token, out, sizeof(*out));
}

static int token_revoke_tx(struct store_conn *c, void *ctx)
{
	struct token_write *w = ctx;
	struct token before, after;
	int rc, n;

	rc = db_load(c, SQL_TOKEN_LOCK, w->id, db_row_token, &before);
	if (rc != 0 || before.revoked_at != 0)
		return rc; /* already revoked: nothing changes, no audit row */
	after = before;
	after.revoked_at = w->now;
	n = db_exec(c, SQL_TOKEN_REVOKE, "it", w->now, w->id);
	if (n < 0)
		return n;
	if (db_drv(c)->token_revoking) {
		rc = db_drv(c)->token_revoking(c);
		if (rc != 0)
			return rc;
	}
	return db_audit(c, w->who, w->now, "token.revoke", "token", w->id, "", store_json_token,
			&before, &after);
}

int ops_token_revoke(struct store_conn *c, const struct actor *who, const char *id, int64_t now)
{
	struct token_write w = {.who = who, .id = id, .now = now};
	int rc = db_run(c, true, token_revoke_tx, &w);

	/* This replica forgets at once, even on a failure: the COMMIT may have happened. */
	if (db_drv(c)->token_revoked)
		db_drv(c)->token_revoked(c->store);
	return rc;
}

int ops_admin_exists(struct store_conn *c, bool *out)
{
	int64_t one = 0;
	int rc = db_op(c);

	if (rc == 0)
		rc = db_query_i64(c, SQL_ADMIN_EXISTS, &one, "");
	if (rc != 0 && rc != ERR_NOT_FOUND)
		return rc;
	*out = rc == 0;
	return 0;
}

DB_EACH_TYPED(token_each, store_token_cb)

int ops_token_list(struct store_conn *c, store_token_cb cb, void *ctx)
{
	struct token_each e = {cb, ctx};
	struct token t;

	return db_list(c, SQL_TOKEN_LIST, "tokens", db_row_token, &t, token_each, &e);
}
