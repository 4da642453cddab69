/*
 * ops_catalog.c - the GPU catalog: create or replace a type, change the
 * fields a patch names, retire and reactivate one, read one, list them, seed
 * the types that do not exist yet on first start.  `allocated` (GPUs held by
 * live allocations) belongs to the ledger: a put or patch keeps it.  A
 * type's price provenance (price_source, price_date) changes only with its
 * price: re-sending the same price must never rewrite where it came from.
 */
#include "store/db.h"
#include "store/ops.h"
#include "store/store_int.h"

#include <string.h>

#include "core/err.h"
#include "core/timeutil.h"

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
	" capacity = ?, updated_at = ?, retired_at = ? WHERE id = ?";
static const char SQL_GPU_LIST[] = "SELECT " GPU_COLS " FROM gpu_types ORDER BY id";

/* What a put names: everything an admin sets (not retired_at). */
#define GPU_F_PUT (GPU_F_NAME | GPU_F_PRICE | GPU_F_PRICE_DATE | GPU_F_CAPACITY)

struct gpu_write {
	const struct actor *who;
	const struct gpu_type *g;
	size_t n; /* seed: how many in g */
	unsigned fields; /* enum gpu_field named by the write */
	bool patch;      /* true: the type must exist */
	int64_t now;
	bool created;
	struct gpu_type out; /* the record after the write */
};

/* The audit rendering: the record with its retirement. */
static json_t *gpu_audit_json(const void *p)
{
	const struct gpu_type *g = p;
	json_t *j = store_json_gpu(p);

	if (j && json_object_set_new(j, "retired_at", store_json_time(g->retired_at)) != 0) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* rec = old with the named fields of g; the provenance moves with the price. */
static void gpu_merge(struct gpu_type *rec, const struct gpu_type *old, const struct gpu_type *g,
		      unsigned f, int64_t now)
{
	*rec = *old;
	if (f & GPU_F_NAME)
		memcpy(rec->name, g->name, sizeof(rec->name));
	if (f & GPU_F_CAPACITY)
		rec->capacity = g->capacity;
	if ((f & GPU_F_PRICE) && g->price_micros != old->price_micros) {
		rec->price_micros = g->price_micros;
		memcpy(rec->price_source, g->price_source, sizeof(rec->price_source));
		if (g->price_date[0] == '\0')
			time_format_date(now, rec->price_date);
	}
	/* A date given with the price (or alone) is the caller's statement of
	 * when the price was taken; without one an unchanged price keeps its. */
	if ((f & GPU_F_PRICE_DATE) && g->price_date[0] != '\0')
		memcpy(rec->price_date, g->price_date, sizeof(rec->price_date));
}

static int gpu_type_write_tx(struct store_conn *c, void *ctx)
{
	struct gpu_write *w = ctx;
	struct gpu_type old, rec;
	char action[48];
	int64_t retired = 0;
	bool exists;
	int rc, n;

	rc = db_load(c, SQL_GPU_LOCK, w->g->id, db_row_gpu_v, &old);
	if (rc != 0 && (rc != ERR_NOT_FOUND || w->patch))
		return rc;
	exists = rc == 0;
	rc = !exists ? 0 : retire_rule(old.retired_at, w->fields & GPU_F_RETIRED,
				       w->fields == GPU_F_RETIRED, w->g->retired_at, &retired);
	if (rc == 1) { /* retire again: nothing to do */
		w->out = old;
		return 0;
	}
	if (rc != 0) {
		db_err(c, "GPU type '%s' is retired", old.id);
		return rc;
	}
	if (exists) {
		gpu_merge(&rec, &old, w->g, w->fields, w->now);
		rec.retired_at = retired;
	} else {
		rec = *w->g;
		rec.allocated = 0;
		rec.retired_at = 0;
		if (rec.price_date[0] == '\0')
			time_format_date(w->now, rec.price_date);
	}
	rec.updated_at = w->now;
	if (exists)
		n = db_exec(c, SQL_GPU_UPDATE, "tittiiit", rec.name, rec.price_micros, rec.price_date,
			    rec.price_source, rec.capacity, w->now, rec.retired_at, rec.id);
	else
		n = db_exec(c, SQL_GPU_INSERT, "ttittii", rec.id, rec.name, rec.price_micros,
			    rec.price_date, rec.price_source, rec.capacity, w->now);
	if (n < 0) /* two creators raced (row locks): the loser reruns and updates instead */
		return n == ERR_CONFLICT && !exists ? DB_RETRY : n;
	w->created = !exists;
	w->out = rec;
	retire_action("gpu_type", exists, exists ? old.retired_at : 0, rec.retired_at, action,
		      sizeof(action));
	return db_audit(c, w->who, w->now, action, "gpu_type", rec.id, "", gpu_audit_json,
			exists ? &old : NULL, &rec);
}

int ops_gpu_type_put(struct store_conn *c, const struct actor *who, const struct gpu_type *g,
		     int64_t now, bool *created)
{
	struct gpu_write w = {.who = who, .g = g, .fields = GPU_F_PUT, .now = now};
	int rc = db_run(c, true, gpu_type_write_tx, &w);

	if (rc == 0)
		*created = w.created;
	return rc;
}

int ops_gpu_type_patch(struct store_conn *c, const struct actor *who, const struct gpu_type *g,
		       unsigned fields, int64_t now, struct gpu_type *out)
{
	struct gpu_write w = {.who = who, .g = g, .fields = fields, .patch = true, .now = now};
	int rc = db_run(c, true, gpu_type_write_tx, &w);

	if (rc == 0)
		*out = w.out;
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
