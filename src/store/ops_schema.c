/*
 * ops_schema.c - migrations, written once: each missing version of the
 * driver's schema (schema.h) is applied in its own transaction with its
 * row in schema_migrations; a database newer than this program is refused.
 * Several processes starting together migrate one at a time (the driver's
 * lock statement, or its write transaction).
 */
#include "store/db.h"
#include "store/ops.h"

#include "core/err.h"
#include "util/util.h"

static const char SQL_MIG_TABLE[] = "CREATE TABLE IF NOT EXISTS schema_migrations("
				    " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)";
static const char SQL_MIG_VERSION[] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
static const char SQL_MIG_INSERT[] =
	"INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)";

/* One step: the next missing version, or *done. */
static int migrate_step(struct store_conn *c, void *ctx)
{
	const struct db_driver *d = db_drv(c);
	bool *done = ctx;
	int64_t version = 0;
	int rc, n;

	if (d->migrate_lock_sql) {
		n = db_exec(c, d->migrate_lock_sql, "");
		if (n < 0)
			return n;
	}
	n = db_exec(c, SQL_MIG_TABLE, "");
	if (n < 0)
		return n;
	rc = db_query_i64(c, SQL_MIG_VERSION, &version, "");
	if (rc != 0)
		return rc == ERR_NOT_FOUND ? ERR_STORE : rc;
	if (version > d->nmigrations) {
		db_err(c, "database schema version %lld is newer than this plinth (%d)",
		       (long long)version, d->nmigrations);
		return ERR_STORE;
	}
	if (version == d->nmigrations) {
		*done = true;
		return 0;
	}
	rc = db_fault_hit(c) ? ERR_STORE : d->script(c, d->migrations[version]);
	if (rc == 0 && version + 1 == d->rollup_fill_version)
		rc = ops_rollup_fill(c);
	if (rc != 0)
		return rc;
	n = db_exec(c, SQL_MIG_INSERT, "ii", version + 1, util_now());
	return n < 0 ? n : 0;
}

int ops_migrate(struct store_conn *c, char *detail)
{
	bool done = false;
	int rc = 0;

	while (rc == 0 && !done)
		rc = db_run(c, true, migrate_step, &done);
	db_detail(c, rc, detail);
	return rc;
}
