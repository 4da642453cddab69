/*
 * api_gpu_types.c - the price catalog: GPU types with price, price date and
 * capacity.  A price change applies to new allocations only (each allocation
 * keeps the price it was approved at, in the store).
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "http/jsonv.h"
#include "util/util.h"

#define GPU_CAPACITY_MAX 1000000

static int add_item(void *ctx, const struct gpu_type *g)
{
	struct req *r = ((void **)ctx)[0];
	json_t *items = ((void **)ctx)[1];
	return json_array_append_new(items, render_gpu_type(g, r->app->currency));
}

void api_gpu_types_list(struct req *r)
{
	struct store_conn *db;
	json_t *items = json_array();
	void *ctx[2] = {r, items};
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_list(db, add_item, ctx);
	if (rc != 0) {
		json_decref(items);
		reply_err(r, rc, "cannot list GPU types");
		return;
	}
	reply_json(r, 200, json_pack("{s:o}", "items", items));
}

void api_gpu_type_get(struct req *r)
{
	struct store_conn *db;
	struct gpu_type g;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_get(db, r->params[0], &g);
	if (rc != 0) {
		reply_err(r, rc, rc == ERR_NOT_FOUND ? "no such GPU type" : "cannot read GPU type");
		return;
	}
	reply_json(r, 200, render_gpu_type(&g, r->app->currency));
}

static const struct jv_field gpu_type_fields[] = {
	{"name", JV_STRING, true, STORE_NAME_LEN - 1},
	{"price_per_gpu_hour", JV_MONEY, true, 32},
	{"capacity", JV_INTEGER, true, 0},
	{"price_date", JV_STRING, false, 10},
	{NULL, 0, false, 0},
};

void api_gpu_type_put(struct req *r)
{
	json_t *body = NULL, *errors = json_array();
	struct gpu_type g;
	memset(&g, 0, sizeof(g));
	if (req_json_object(r, false, &body) != 0)
		goto out;
	if (!jsonv_is_label(r->params[0]))
		jsonv_error(errors, "id", "must be a lower-case DNS label (a-z, 0-9, '-', <= 63)");
	jsonv_check(body, gpu_type_fields, "", errors);
	json_t *cap = json_object_get(body, "capacity");
	if (json_is_integer(cap) &&
	    (json_integer_value(cap) < 0 || json_integer_value(cap) > GPU_CAPACITY_MAX))
		jsonv_error(errors, "capacity", "must be between 0 and %d", GPU_CAPACITY_MAX);
	const char *date = json_string_value(json_object_get(body, "price_date"));
	char today[16];
	time_format_date(r->now, today);
	if (date != NULL) {
		char full[32];
		int64_t t;
		snprintf(full, sizeof(full), "%sT00:00:00Z", date);
		if (strlen(date) != 10 || time_parse_rfc3339(full, &t) != 0)
			jsonv_error(errors, "price_date", "must be a date YYYY-MM-DD");
	}
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	g.price_micros = jsonv_money(body, "price_per_gpu_hour");
	g.capacity = json_integer_value(cap);
	/* Validated above, so these fit; a value that would not is refused, never cut. */
	if (util_fmt(g.id, sizeof(g.id), "%s", r->params[0]) != 0 ||
	    util_fmt(g.name, sizeof(g.name), "%s",
		     json_string_value(json_object_get(body, "name"))) != 0 ||
	    util_fmt(g.price_date, sizeof(g.price_date), "%s", date ? date : today) != 0 ||
	    util_fmt(g.price_source, sizeof(g.price_source), "set by %s", r->actor.name) != 0) {
		reply_err(r, ERR_INVALID, "a value does not fit its field");
		goto out;
	}

	struct store_conn *db;
	bool created = false;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_put(db, &r->actor, &g, r->now, &created);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_get(db, g.id, &g);
	if (rc != 0) {
		reply_err(r, rc, "cannot store the GPU type");
		goto out;
	}
	reply_json(r, created ? 201 : 200, render_gpu_type(&g, r->app->currency));
out:
	json_decref(body);
	json_decref(errors);
}
