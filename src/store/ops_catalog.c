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
/* A new type; the seed's unless it exists. */
#define GPU_INSERT                                                                         \
	"INSERT INTO gpu_types(id, name, price_micros, price_date, price_source, capacity," \
	" allocated, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)"
static const char SQL_GPU_INSERT[] = GPU_INSERT;
static const char SQL_GPU_SEED[] = GPU_INSERT " ON CONFLICT (id) DO NOTHING";
static const char SQL_GPU_UPDATE[] =
	"UPDATE gpu_types SET name = ?, price_micros = ?, price_date = ?, price_source = ?,"
	" capacity = ?, updated_at = ?, retired_at = ? WHERE id = ?";
static const char SQL_GPU_LIST[] = "SELECT " GPU_COLS " FROM gpu_types ORDER BY id";

/* What a put names: everything an admin sets (not retired_at). */
#define GPU_F_PUT (GPU_F_NAME | GPU_F_PRICE | GPU_F_PRICE_DATE | GPU_F_CAPACITY)

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

/* rec = old with the named fields of g (a new type: g as given, nothing
 * allocated); the provenance moves with the price. */
static void gpu_merge(void *out, const void *o, const void *in, unsigned f, int64_t now)
{
	struct gpu_type *rec = out;
	const struct gpu_type *old = o, *g = in;

	if (!old) {
		*rec = *g;
		rec->allocated = 0;
		if (rec->price_date[0] == '\0')
			time_format_date(now, rec->price_date);
	} else {
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
}

static int gpu_write(struct store_conn *c, const void *p, bool exists)
{
	const struct gpu_type *g = p;

	if (exists)
		return db_exec(c, SQL_GPU_UPDATE, "tittiiit", g->name, g->price_micros,
			       g->price_date, g->price_source, g->capacity, g->updated_at,
			       g->retired_at, g->id);
	return db_exec(c, SQL_GPU_INSERT, "ttittii", g->id, g->name, g->price_micros, g->price_date,
		       g->price_source, g->capacity, g->updated_at);
}

/* GPU types for db_put. */
static const struct db_put_kind GPU_KIND = {
	.type = "gpu_type", .name = "GPU type", DB_PUT_LAYOUT(struct gpu_type),
	.put_fields = GPU_F_PUT, .retired_field = GPU_F_RETIRED, .lock_sql = SQL_GPU_LOCK,
	.get_sql = SQL_GPU_BY_ID, .row = db_row_gpu, .merge = gpu_merge, .write = gpu_write,
	.audit_json = gpu_audit_json};

DB_PUT_OPS(ops_gpu_type, struct gpu_type, GPU_KIND)

DB_EACH_TYPED(gpu_each, store_gpu_type_cb)

int ops_gpu_type_list(struct store_conn *c, store_gpu_type_cb cb, void *ctx)
{
	struct gpu_each e = {cb, ctx};
	struct gpu_type g;

	return db_list(c, SQL_GPU_LIST, "gpu_types", db_row_gpu, &g, gpu_each, &e);
}

/* The seed's audit row: how many types it inserted. */
static json_t *seed_json(const void *p)
{
	return json_pack("{s:I}", "count", (json_int_t) * (const int64_t *)p);
}

/* The types to seed (n in g) at now. */
struct gpu_seed {
	const struct gpu_type *g;
	size_t n;
	int64_t now;
};

static int gpu_type_seed_tx(struct store_conn *c, void *ctx)
{
	struct gpu_seed *w = ctx;
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
	struct gpu_seed w = {g, n, now};

	return db_run(c, true, gpu_type_seed_tx, &w);
}
