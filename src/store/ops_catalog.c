/*
 * ops_catalog.c - the GPU catalog: create or replace a type, read one, list
 * them, seed the types that do not exist yet on first start.  `allocated`
 * (GPUs held by live allocations) belongs to the ledger: a put keeps it.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include "core/err.h"

static const char SQL_GPU_BY_ID[] = "SELECT " GPU_COLS " FROM gpu_types WHERE id = ?";
static const char SQL_GPU_LOCK[] = "SELECT " GPU_COLS " FROM gpu_types WHERE id = ?" DB_LOCK;
static const char SQL_GPU_INSERT[] =
	"INSERT INTO gpu_types(id, name, price_micros, price_date, price_source, capacity,"
	" allocated, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)";
static const char SQL_GPU_SEED[] =
	"INSERT INTO gpu_types(id, name, price_micros, price_date, price_source, capacity,"
	" allocated, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING";
static const char SQL_GPU_UPDATE[] =
	"UPDATE gpu_types SET name = ?, price_micros = ?, price_date = ?, price_source = ?,"
	" capacity = ?, updated_at = ? WHERE id = ?";
static const char SQL_GPU_LIST[] = "SELECT " GPU_COLS " FROM gpu_types ORDER BY id";

struct gpu_write {
	const struct actor *who;
	const struct gpu_type *g;
	size_t n; /* seed: how many in g */
	int64_t now;
	bool created;
};

static int gpu_type_put_tx(struct store_conn *c, void *ctx)
{
	struct gpu_write *w = ctx;
	struct gpu_type old, rec = *w->g;
	bool exists;
	int rc, n;

	rc = db_load(c, SQL_GPU_LOCK, rec.id, db_row_gpu_v, &old);
	if (rc != 0 && rc != ERR_NOT_FOUND)
		return rc;
	exists = rc == 0;
	rec.allocated = exists ? old.allocated : 0; /* held GPUs are the ledger's, not the admin's */
	rec.updated_at = w->now;
	if (exists)
		n = db_exec(c, SQL_GPU_UPDATE, "tittiit", rec.name, rec.price_micros, rec.price_date,
			    rec.price_source, rec.capacity, w->now, rec.id);
	else
		n = db_exec(c, SQL_GPU_INSERT, "ttittii", rec.id, rec.name, rec.price_micros,
			    rec.price_date, rec.price_source, rec.capacity, w->now);
	if (n < 0) /* two creators raced (row locks): the loser reruns and updates instead */
		return n == ERR_CONFLICT && !exists ? DB_RETRY : n;
	w->created = !exists;
	return db_audit(c, w->who, w->now, exists ? "gpu_type.update" : "gpu_type.create",
			"gpu_type", rec.id, "", store_json_gpu, exists ? &old : NULL, &rec);
}

int ops_gpu_type_put(struct store_conn *c, const struct actor *who, const struct gpu_type *g,
		     int64_t now, bool *created)
{
	struct gpu_write w = {.who = who, .g = g, .now = now};
	int rc = db_run(c, true, gpu_type_put_tx, &w);

	if (rc == 0)
		*created = w.created;
	return rc;
}

int ops_gpu_type_get(struct store_conn *c, const char *id, struct gpu_type *out)
{
	struct gpu_type g;
	int rc = db_op(c);

	if (rc == 0)
		rc = db_load(c, SQL_GPU_BY_ID, id, db_row_gpu_v, &g);
	if (rc == 0)
		*out = g;
	return rc;
}

/* A list's callback as db_each calls it. */
struct gpu_each {
	store_gpu_type_cb cb;
	void *ctx;
};

static int gpu_each(void *p, const void *rec)
{
	const struct gpu_each *e = p;

	return e->cb(e->ctx, rec);
}

int ops_gpu_type_list(struct store_conn *c, store_gpu_type_cb cb, void *ctx)
{
	struct gpu_each e = {cb, ctx};
	struct db_rows *r = NULL;
	struct gpu_type g;
	int rc = db_op(c);

	if (rc == 0)
		rc = db_query(c, SQL_GPU_LIST, &r, "");
	return rc != 0 ? rc : db_each(r, "gpu_types", db_row_gpu_v, &g, gpu_each, &e);
}

/* The seed's audit row: how many types it inserted. */
static json_t *seed_json(const void *p)
{
	return json_pack("{s:I}", "count", (json_int_t) * (const int64_t *)p);
}

static int gpu_type_seed_tx(struct store_conn *c, void *ctx)
{
	struct gpu_write *w = ctx;
	int64_t inserted = 0;

	for (size_t i = 0; i < w->n; i++) {
		const struct gpu_type *g = &w->g[i];
		int ch = db_exec(c, SQL_GPU_SEED, "ttittii", g->id, g->name, g->price_micros,
				 g->price_date, g->price_source, g->capacity, w->now);

		if (ch < 0)
			return ch;
		inserted += ch;
	}
	if (inserted == 0)
		return 0; /* every type existed: nothing changed, no audit row */
	return db_audit(c, NULL, w->now, "gpu_type.seed", "gpu_type", "", "", seed_json, NULL,
			&inserted);
}

int ops_gpu_type_seed(struct store_conn *c, const struct gpu_type *g, size_t n, int64_t now)
{
	struct gpu_write w = {.g = g, .n = n, .now = now};

	return db_run(c, true, gpu_type_seed_tx, &w);
}
